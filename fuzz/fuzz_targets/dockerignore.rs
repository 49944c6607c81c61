//! `.dockerignore` (`wharf_build::dockerignore`): the input up to the first NUL is the ignore
//! file, the rest are paths to match. Must never panic, and walk pruning must be safe: when
//! `may_include_under(dir)` says no, every path under `dir` is excluded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_build::dockerignore::Dockerignore;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, paths) = text.split_once('\0').unwrap_or((text, "a/b/c"));
    let Ok(ig) = Dockerignore::parse(file) else {
        return;
    };
    for path in paths.split('\0').take(16) {
        let _ = ig.excluded(path);
        let clean = wharf_build::dockerignore::clean(path);
        let clean = clean.trim_start_matches('/');
        if clean == "." || clean.starts_with("..") {
            continue;
        }
        let parts: Vec<&str> = clean.split('/').collect();
        for i in 1..parts.len() {
            let dir = parts[..i].join("/");
            if !ig.may_include_under(&dir) {
                assert!(
                    ig.excluded(&parts.join("/")),
                    "{dir:?} pruned but {path:?} is included by {file:?}"
                );
            }
        }
    }
});
