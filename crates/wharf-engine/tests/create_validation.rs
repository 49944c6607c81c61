//! The engine decides what a create request may ask for: typed requests (no argv) are
//! refused with docker's messages before anything is written, and seccomp profile files are
//! read by the engine (bounded, regular files only).

use wharf_engine::create::CreateRequest;
use wharf_engine::validate::{self, CreateFlags};
use wharf_engine::{Engine, EngineError, EngineOptions};
use wharf_types::container::NetworkMode;
use wharf_types::error::{ErrorKind, HasKind};

fn engine(dir: &tempfile::TempDir) -> Engine {
    Engine::open(EngineOptions {
        root: dir.path().join("root"),
        run_root: dir.path().join("run"),
        debug: false,
    })
    .expect("open engine")
}

fn req(flags: CreateFlags) -> CreateRequest {
    CreateRequest {
        image: "busybox".into(),
        flags,
        ..Default::default()
    }
}

/// Creates through the engine; the image does not exist, so only a validation error can come
/// before "no such image".
fn create_err(flags: CreateFlags, edit: &dyn Fn(&mut CreateRequest)) -> EngineError {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = engine(&dir);
    let mut r = req(flags);
    edit(&mut r);
    let err = e.create_container(r).expect_err("create must fail");
    // nothing was written: no container records
    assert!(e.store().containers().map(|l| l.is_empty()).unwrap_or(true));
    err
}

fn msg(flags: CreateFlags) -> String {
    create_err(flags, &|_| {}).to_string()
}

#[test]
fn memory_minimum_and_sizes() {
    let m = |s: &str| {
        msg(CreateFlags {
            memory: Some(s.into()),
            ..Default::default()
        })
    };
    assert_eq!(m("5m"), "minimum memory limit allowed is 6MB");
    assert_eq!(m("6291455"), "minimum memory limit allowed is 6MB");
    assert_eq!(m("10x"), "invalid size: '10x'");
    assert_eq!(m("1e400"), "invalid size: '1e400'");
    assert_eq!(m("-1"), "invalid size: '-1'");
    // a valid size gets past validation to the image lookup
    assert!(!m("6m").contains("memory"), "{}", m("6m"));
    // typed callers are checked too
    let err = create_err(CreateFlags::default(), &|r| r.host.memory = 1024);
    assert_eq!(err.to_string(), "minimum memory limit allowed is 6MB");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn rm_with_restart_conflicts() {
    let err = create_err(
        CreateFlags {
            restart: Some("always".into()),
            ..Default::default()
        },
        &|r| r.host.auto_remove = true,
    );
    assert_eq!(
        err.to_string(),
        "conflicting options: cannot specify both --restart and --rm"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = create_err(
        CreateFlags {
            restart: Some("no".into()),
            ..Default::default()
        },
        &|r| r.host.auto_remove = true,
    );
    assert!(!err.to_string().contains("conflicting"), "{err}");
    assert!(msg(CreateFlags {
        restart: Some("sometimes".into()),
        ..Default::default()
    })
    .contains("invalid restart policy"));
}

#[test]
fn network_gating() {
    let net = |n: &str| {
        msg(CreateFlags {
            network: Some(n.into()),
            ..Default::default()
        })
    };
    assert!(net("bridge").contains("not available in this build"));
    assert_eq!(net("mynet"), "network mynet not found");
    assert!(msg(CreateFlags {
        publish: vec!["80:80".into()],
        ..Default::default()
    })
    .contains("publishing ports"));
    let mut r = req(CreateFlags {
        network: Some("host".into()),
        ..Default::default()
    });
    let f = r.flags.clone();
    validate::apply_flags(&mut r, &f).expect("host network");
    assert_eq!(r.host.network_mode, NetworkMode::Host);
}

#[test]
fn cpus_ulimits_logs_health() {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus = |s: &str| {
        msg(CreateFlags {
            cpus: Some(s.into()),
            ..Default::default()
        })
    };
    assert!(cpus(&(ncpu + 1).to_string()).starts_with("range of CPUs is from 0.01"));
    assert!(cpus("0.001").starts_with("range of CPUs"));
    assert!(cpus("NaN").contains("--cpus"));
    assert_eq!(
        msg(CreateFlags {
            ulimits: vec!["nofile=2048:1024".into()],
            ..Default::default()
        }),
        "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"
    );
    assert!(msg(CreateFlags {
        log_opts: vec!["max-size".into()],
        ..Default::default()
    })
    .contains("expected key=value"));
    assert!(msg(CreateFlags {
        log_driver: Some("json-file".into()),
        log_opts: vec!["max-size=lots".into()],
        ..Default::default()
    })
    .contains("max-size"));
    assert_eq!(
        msg(CreateFlags {
            health_interval: Some("10x".into()),
            ..Default::default()
        }),
        "time: unknown unit \"x\" in duration \"10x\""
    );
    // negative and sub-millisecond durations are refused after the image's are merged in
    let mut r = req(CreateFlags {
        health_cmd: Some("true".into()),
        health_interval: Some("1.5s".into()),
        health_retries: Some(3),
        ..Default::default()
    });
    let f = r.flags.clone();
    validate::apply_flags(&mut r, &f).expect("health flags");
    let h = r.healthcheck.expect("healthcheck");
    assert_eq!(h.test, vec!["CMD-SHELL", "true"]);
    assert_eq!(h.interval, Some(1_500_000_000));
    assert_eq!(h.retries, Some(3));
}

#[test]
fn seccomp_profiles_are_read_by_the_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("profile.json");
    std::fs::write(&good, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).expect("write");
    let mut opts = vec![
        format!("seccomp={}", good.display()),
        "no-new-privileges".to_string(),
        "seccomp=unconfined".to_string(),
    ];
    validate::read_seccomp_profiles(&mut opts).expect("read profile");
    assert_eq!(
        opts,
        vec![
            r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#,
            "no-new-privileges",
            "seccomp=unconfined"
        ]
    );
    // inline JSON (an API caller's) stays as it is
    let mut inline = vec![r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#.to_string()];
    validate::read_seccomp_profiles(&mut inline).expect("inline");
    assert_eq!(inline.len(), 1);

    let refuse = |path: &std::path::Path| {
        let mut o = vec![format!("seccomp={}", path.display())];
        validate::read_seccomp_profiles(&mut o)
            .expect_err("must refuse")
            .to_string()
    };
    let missing = dir.path().join("missing.json");
    assert!(refuse(&missing).starts_with(&format!(
        "opening seccomp profile ({}) failed",
        missing.display()
    )));
    // a directory, a FIFO (which must not block), an oversized file, not JSON
    assert!(refuse(dir.path()).contains("opening seccomp profile"));
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    assert!(refuse(&fifo).contains("opening seccomp profile"));
    let big = dir.path().join("big.json");
    std::fs::write(
        &big,
        vec![b' '; (validate::SECCOMP_PROFILE_MAX + 1) as usize],
    )
    .expect("w");
    assert!(refuse(&big).contains("opening seccomp profile"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"not json").expect("write");
    assert!(refuse(&bad).starts_with("decoding seccomp profile"));

    // and through Engine::create_container: the file is read before the image is looked up
    let err = create_err(CreateFlags::default(), &|r| {
        r.host.security_opt = vec![format!("seccomp={}", missing.display())]
    });
    assert!(err.to_string().contains("opening seccomp profile"), "{err}");
}
