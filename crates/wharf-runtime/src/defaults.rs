//! Docker's default masked and read-only paths, as data (`resources/paths.json`, one reason
//! per entry, compiled in — invariant 5).
//!
//! Owns: the lists. Must not: mount anything (init applies them) or decide about
//! `--privileged` (the engine leaves them out for privileged containers).

use serde::Deserialize;

const PATHS_JSON: &str = include_str!("../../../resources/paths.json");

#[derive(Deserialize)]
struct PathsFile {
    masked: Vec<PathEntry>,
    readonly: Vec<PathEntry>,
}

#[derive(Deserialize)]
struct PathEntry {
    path: String,
    #[allow(dead_code)]
    reason: String,
}

fn load() -> Option<PathsFile> {
    serde_json::from_str(PATHS_JSON).ok()
}

/// Docker's masked paths: /dev/null (files) or an empty read-only tmpfs (directories) over each.
pub fn masked_paths() -> Vec<String> {
    load()
        .map(|f| f.masked.into_iter().map(|e| e.path).collect())
        .unwrap_or_default()
}

/// Docker's read-only paths: each bind-mounted onto itself read-only.
pub fn readonly_paths() -> Vec<String> {
    load()
        .map(|f| f.readonly.into_iter().map(|e| e.path).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_docker() {
        let f: PathsFile = serde_json::from_str(PATHS_JSON).expect("resource parses");
        for e in f.masked.iter().chain(f.readonly.iter()) {
            assert!(e.path.starts_with('/'), "{}", e.path);
            assert!(!e.reason.trim().is_empty(), "{} has no reason", e.path);
        }
        let m = masked_paths();
        assert_eq!(m.len(), 12);
        assert!(m.contains(&"/proc/kcore".to_string()));
        assert!(m.contains(&"/proc/interrupts".to_string()));
        assert!(m.contains(&"/sys/devices/virtual/powercap".to_string()));
        assert_eq!(
            readonly_paths(),
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        );
    }
}
