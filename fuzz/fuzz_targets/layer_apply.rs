//! Layer apply: arbitrary bytes as an (uncompressed) layer tar, applied into a fresh temp
//! dir. Must never panic, and never write outside the destination (a sentinel next to it
//! must stay untouched).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tmp) = tempfile::tempdir() else { return };
    let dest = tmp.path().join("dest");
    let sentinel = tmp.path().join("sentinel");
    if std::fs::create_dir(&dest).is_err() || std::fs::write(&sentinel, b"s").is_err() {
        return;
    }
    let _ = wharf_store::layer::apply_layer(&dest, data);
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    assert_eq!(names, ["dest", "sentinel"], "layer wrote outside its root");
    assert_eq!(std::fs::read(&sentinel).ok().as_deref(), Some(&b"s"[..]));
});
