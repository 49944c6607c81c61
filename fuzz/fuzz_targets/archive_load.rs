//! Archive load: arbitrary bytes as a `docker load` input (docker-archive or OCI layout tar,
//! plain/gzip/zstd) into one store per process. Must never panic; whatever fails must leave
//! no temporaries behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Fx {
    _tmp: tempfile::TempDir,
    store: wharf_store::Store,
}

fn fx() -> Option<&'static Fx> {
    static FX: OnceLock<Option<Fx>> = OnceLock::new();
    FX.get_or_init(|| {
        let tmp = tempfile::tempdir().ok()?;
        let store = wharf_store::Store::open(tmp.path()).ok()?;
        Some(Fx { _tmp: tmp, store })
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(fx) = fx() else { return };
    let opts = wharf_store::archive::LoadOptions {
        platform: None,
        // bound what one input may unpack (the store's free space otherwise)
        max_bytes: Some(64 << 20),
    };
    if fx.store.load(data, &opts).is_err() {
        let ingest = fx.store.root().join("ingest");
        let left = std::fs::read_dir(&ingest)
            .map(|rd| rd.flatten().count())
            .unwrap_or(0);
        assert_eq!(
            left,
            0,
            "a failed load left temporaries in {}",
            ingest.display()
        );
    }
});
