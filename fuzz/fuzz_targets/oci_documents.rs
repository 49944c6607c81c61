//! Manifest, index and image-config parsing: the serde structs, the ambiguity check every
//! pull/load goes through, and the config-vs-descriptor platform check. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_types::oci::{self, Descriptor, ImageConfig, Manifest, Platform};

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Index {
    manifests: Vec<Descriptor>,
}

fuzz_target!(|data: &[u8]| {
    for declared in [
        None,
        Some(oci::MEDIA_OCI_MANIFEST),
        Some(oci::MEDIA_DOCKER_LIST),
        Some("application/json"),
    ] {
        let _ = oci::document_kind(data, declared);
    }
    let _ = serde_json::from_slice::<Manifest>(data);
    if let Ok(i) = serde_json::from_slice::<Index>(data) {
        for d in i.manifests {
            let _ = d.digest.hex();
        }
    }
    if let Ok(cfg) = serde_json::from_slice::<ImageConfig>(data) {
        let p = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        let _ = oci::check_config_platform(&p, &cfg);
        // a parsed config serialises again
        assert!(serde_json::to_vec(&cfg).is_ok());
    }
});
