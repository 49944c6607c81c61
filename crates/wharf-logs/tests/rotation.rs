//! Rotation bounds disk use and the writer's memory stays flat (alone in its own test binary
//! so that RSS is not disturbed by other tests).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, SystemTime};
use wharf_logs::{open, LogContext, Stream};
use wharf_types::container::LogConfig;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn ctx(dir: &Path) -> LogContext {
    LogContext {
        container_id: ID.into(),
        container_name: "web".into(),
        image_name: "busybox:latest".into(),
        image_id: format!("sha256:{}", "ab".repeat(32)),
        dir: dir.to_path_buf(),
    }
}

fn cfg(driver: &str, kv: &[(&str, &str)]) -> LogConfig {
    LogConfig {
        driver: driver.into(),
        config: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn json_file_rotation_bounds_disk_and_memory() {
    let d = tempfile::tempdir().unwrap();
    let mut w = open(
        &cfg("json-file", &[("max-size", "1m"), ("max-file", "3")]),
        &ctx(d.path()),
    )
    .unwrap();
    let line = format!("{}\n", "x".repeat(1023));
    let mut split = wharf_logs::LineSplitter::new();
    // Warm up, then measure RSS across 128 MiB of container output.
    for _ in 0..1024 {
        w.log(Stream::Stdout, line.as_bytes(), SystemTime::now());
    }
    let before = rss_kib();
    let start = Instant::now();
    let chunk = line.repeat(64);
    let mut max_disk = 0;
    for i in 0..(128 * 1024 / 64) {
        split.push(chunk.as_bytes(), &mut |l| {
            w.log(Stream::Stdout, l, SystemTime::now())
        });
        if i % 64 == 0 {
            max_disk = max_disk.max(dir_bytes(d.path()));
        }
    }
    w.close();
    let el = start.elapsed();
    let after = rss_kib();
    let disk = dir_bytes(d.path());
    max_disk = max_disk.max(disk);
    let files: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    eprintln!("128 MiB through json-file max-size=1m max-file=3: {el:?}, disk max {max_disk} B, files {files:?}, rss {before} → {after} KiB");
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(max_disk <= 3 << 20, "disk {max_disk}");
    assert!(after <= before + 512, "rss grew {before} → {after} KiB");
    assert_eq!(w.dropped(), 0);
}
