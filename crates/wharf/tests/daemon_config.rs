//! daemon.json read once by the engine and applied at create: `log-driver`/`log-opts`
//! (defaults under the flags), `default-ulimits` (visible in the container's
//! /proc/self/limits, `--ulimit` wins), `data-root` (the store when no --root/WHARF_ROOT), and
//! a malformed file refused with its name. Real binary, real containers; only this test's
//! store. (Registry mirrors from the same load: tests/pull.rs.)

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::PathBuf;

/// The test's daemon.json (in its own directory).
fn daemon_json(w: &Wharf, v: serde_json::Value) -> PathBuf {
    let p = w.dir.path().join("daemon.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

fn with_config(w: &Wharf, cfg: &PathBuf, args: &[&str]) -> std::process::Output {
    w.command(args).env("WHARF_CONFIG", cfg).output().unwrap()
}

fn nofile(limits: &str) -> Vec<String> {
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default()
        .split_whitespace()
        .skip(3)
        .take(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn log_driver_and_default_ulimits_apply_at_create() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let cfg = daemon_json(
        &w,
        serde_json::json!({
            "log-driver": "none",
            "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}},
            "unknown-docker-key": true,
        }),
    );
    // log-driver none: inspect shows it, logs says it cannot read
    let o = with_config(&w, &cfg, &["run", "--name", "dj1", "busybox", "echo", "hi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = with_config(
        &w,
        &cfg,
        &[
            "inspect",
            "--format",
            "{{.HostConfig.LogConfig.Type}}",
            "dj1",
        ],
    );
    assert_eq!(stdout(&o).trim(), "none", "{}", stderr(&o));
    let o = with_config(&w, &cfg, &["logs", "dj1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
    // the flag still wins
    let o = with_config(
        &w,
        &cfg,
        &[
            "run",
            "-d",
            "--name",
            "dj2",
            "--log-driver",
            "json-file",
            "busybox",
            "echo",
            "hi",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    w.ok(&["wait", "dj2"]);
    assert_eq!(
        stdout(&with_config(&w, &cfg, &["logs", "dj2"])).trim(),
        "hi"
    );

    // default-ulimits in the container's limits; --ulimit wins for its resource
    let o = with_config(
        &w,
        &cfg,
        &["run", "--rm", "busybox", "cat", "/proc/self/limits"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(nofile(&stdout(&o)), ["1024", "2048"], "{}", stdout(&o));
    let o = with_config(
        &w,
        &cfg,
        &[
            "run",
            "--rm",
            "--ulimit",
            "nofile=512:4096",
            "busybox",
            "cat",
            "/proc/self/limits",
        ],
    );
    assert_eq!(nofile(&stdout(&o)), ["512", "4096"], "{}", stdout(&o));
    // without the file: neither default
    let o = w.run(&["run", "--rm", "busybox", "cat", "/proc/self/limits"]);
    assert_ne!(nofile(&stdout(&o)), ["1024", "2048"]);
    let o = w.run(&["create", "--name", "dj3", "busybox", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        w.ok(&[
            "inspect",
            "--format",
            "{{.HostConfig.LogConfig.Type}}",
            "dj3"
        ])
        .trim(),
        "json-file"
    );

    // log-opts go with the default driver, under --log-opt
    let cfg = daemon_json(
        &w,
        serde_json::json!({"log-opts": {"max-size": "1m", "max-file": "2"}}),
    );
    let o = with_config(
        &w,
        &cfg,
        &[
            "create",
            "--name",
            "dj4",
            "--log-opt",
            "max-size=5m",
            "busybox",
            "true",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let got = w.ok(&[
        "inspect",
        "--format",
        "{{json .HostConfig.LogConfig}}",
        "dj4",
    ]);
    let v: serde_json::Value = serde_json::from_str(got.trim()).unwrap();
    assert_eq!(v["Type"], "json-file");
    assert_eq!(v["Config"]["max-size"], "5m", "{got}");
    assert_eq!(v["Config"]["max-file"], "2", "{got}");
}

#[test]
fn data_root_is_the_store_without_root() {
    let w = Wharf::new();
    let tar = w.dir.path().join("busybox.tar");
    write_busybox_tar(&tar);
    let data_root = w.dir.path().join("data-root");
    let cfg = daemon_json(&w, serde_json::json!({ "data-root": data_root }));
    let plain = |args: &[&str]| {
        w.command(args)
            .env_remove("WHARF_ROOT")
            .env("WHARF_CONFIG", &cfg)
            .output()
            .unwrap()
    };
    let o = plain(&["import", tar.to_str().unwrap(), "dr:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(data_root.join("meta").is_dir());
    assert!(stdout(&plain(&["images", "--format", "{{.Repository}}"])).contains("dr"));
    // a detached container's monitor is handed the data-root too
    struct Rm<'a>(&'a dyn Fn(&[&str]) -> std::process::Output);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["rm", "-f", "drc"]);
        }
    }
    let _rm = Rm(&plain);
    let o = plain(&["run", "-d", "--name", "drc", "dr:1", "sleep", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = plain(&["inspect", "--format", "{{.State.Status}}", "drc"]);
    assert_eq!(stdout(&o).trim(), "running", "{}", stderr(&o));
    let o = plain(&["stop", "-t", "1", "drc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = plain(&["inspect", "--format", "{{.State.Status}}", "drc"]);
    assert_eq!(stdout(&o).trim(), "exited", "{}", stderr(&o));
    assert!(data_root.join("containers").read_dir().unwrap().count() > 0);
    // a given root wins over data-root
    let o = with_config(&w, &cfg, &["images", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).trim().is_empty(), "{}", stdout(&o));
    // a relative data-root is refused, naming the file
    let cfg = daemon_json(&w, serde_json::json!({ "data-root": "rel/dir" }));
    let o = w
        .command(&["images"])
        .env_remove("WHARF_ROOT")
        .env("WHARF_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not an absolute path"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_daemon_json_names_the_file() {
    let w = Wharf::new();
    for bad in [
        "{nope".to_string(),
        r#"{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1, "Soft": 2}}}"#.into(),
        r#"{"log-driver": "nosuch"}"#.into(),
        r#"{"registry-mirrors": "not-a-list"}"#.into(),
    ] {
        let p = w.dir.path().join("daemon.json");
        std::fs::write(&p, &bad).unwrap();
        let o = with_config(&w, &p, &["images"]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("invalid config file {}", p.display())),
            "{bad}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // too large (bounded read), a directory: refused too
    let p = w.dir.path().join("big.json");
    std::fs::write(&p, vec![b' '; (1 << 20) + 1]).unwrap();
    let o = with_config(&w, &p, &["images"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid config file"), "{}", stderr(&o));
    let o = with_config(&w, &w.dir.path().to_path_buf(), &["images"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid config file"), "{}", stderr(&o));
}
