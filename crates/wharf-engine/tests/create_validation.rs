//! The engine decides what a create request may ask for: typed requests (no argv) are
//! refused with docker's messages before anything is written, and seccomp profile files are
//! read by the engine (bounded, regular files only).

use wharf_engine::create::CreateRequest;
use wharf_engine::validate::{self, CreateFlags};
use wharf_engine::{Engine, EngineError, EngineOptions};
use wharf_types::container::{MountConfig, MountKind, NetworkMode};
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
    assert!(e.containers(true).map(|l| l.is_empty()).unwrap_or(true));
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
    // which networks exist is decided at create; the flags only name one
    let mode = |n: &str| {
        let mut r = req(CreateFlags {
            network: Some(n.into()),
            ..Default::default()
        });
        let f = r.flags.clone();
        validate::apply_flags(&mut r, &f).expect("network flag");
        r.host.network_mode
    };
    assert_eq!(mode("bridge"), NetworkMode::Bridge);
    assert_eq!(mode("default"), NetworkMode::Bridge);
    assert_eq!(mode("mynet"), NetworkMode::User("mynet".into()));
    assert_eq!(mode("container:web"), NetworkMode::Container("web".into()));
    // docker's conflicts, and publishing where there is no network
    assert_eq!(
        msg(CreateFlags {
            network: Some("container:web".into()),
            publish: vec!["80:80".into()],
            ..Default::default()
        }),
        "conflicting options: port publishing and the container type network mode"
    );
    assert!(msg(CreateFlags {
        network: Some("none".into()),
        publish_all: true,
        ..Default::default()
    })
    .contains("port publishing and the none network mode"));
    assert_eq!(
        msg(CreateFlags {
            ip: Some("172.17.0.9".into()),
            ..Default::default()
        }),
        "user specified IP address is supported on user defined networks only"
    );
    assert_eq!(
        msg(CreateFlags {
            publish: vec!["80:80:80:80".into()],
            ..Default::default()
        }),
        "invalid IP address: 80:80"
    );
    // -p: one binding per container port, each also exposed
    let mut r = req(CreateFlags {
        publish: vec!["127.0.0.1:8000-8001:80-81/udp".into(), "90".into()],
        expose: vec!["7000".into()],
        publish_all: true,
        dns: vec!["10.0.0.2".into()],
        add_hosts: vec!["h=10.0.0.3".into()],
        mac_address: Some("02-42-AC-11-00-09".into()),
        ..Default::default()
    });
    let f = r.flags.clone();
    validate::apply_flags(&mut r, &f).expect("publish");
    let b = &r.host.port_bindings;
    assert_eq!(b["80/udp"][0].host_ip, "127.0.0.1");
    assert_eq!(b["80/udp"][0].host_port, "8000");
    assert_eq!(b["81/udp"][0].host_port, "8001");
    assert_eq!(b["90/tcp"][0].host_port, "");
    assert!(r.host.publish_all_ports);
    assert_eq!(
        r.exposed_ports.iter().cloned().collect::<Vec<_>>(),
        ["7000/tcp", "80/udp", "81/udp", "90/tcp"]
    );
    assert_eq!(r.host.dns, ["10.0.0.2"]);
    assert_eq!(r.host.extra_hosts, ["h:10.0.0.3"]);
    assert_eq!(r.mac_address, "02:42:ac:11:00:09");
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

/// `-v`, `--mount`, `--tmpfs` as the user typed them: parsed and checked by the engine.
fn mounts_of(flags: CreateFlags) -> Result<Vec<MountConfig>, EngineError> {
    validate::prepare(req(flags)).map(|r| r.host.mounts)
}

#[test]
fn mount_strings_are_parsed_by_the_engine() {
    // bad specifications: docker's messages, refused before the image is looked up and
    // before anything is written
    for (flags, want) in [
        (
            CreateFlags {
                volumes: vec!["a:b:c:d".into()],
                ..Default::default()
            },
            "invalid volume specification: \"a:b:c:d\"",
        ),
        (
            CreateFlags {
                volumes: vec!["/srv:/data:bogus".into()],
                ..Default::default()
            },
            "invalid volume specification: \"/srv:/data:bogus\": unknown option \"bogus\"",
        ),
        (
            CreateFlags {
                volumes: vec!["/srv:/proc/sys".into()],
                ..Default::default()
            },
            "invalid mount config for \"/srv:/proc/sys\": /proc/sys cannot be mounted over: /proc and everything below it belong to the container's own procfs",
        ),
        (
            CreateFlags {
                mounts: vec!["type=weird,target=/b".into()],
                ..Default::default()
            },
            "unsupported mount type \"weird\"",
        ),
        (
            CreateFlags {
                mounts: vec!["type=bind,source=rel,target=/b".into()],
                ..Default::default()
            },
            "invalid mount config for \"type=bind,source=rel,target=/b\": bind source must be an absolute path",
        ),
        (
            CreateFlags {
                tmpfs: vec!["/run:size=64m,context=x".into()],
                ..Default::default()
            },
            "invalid tmpfs option \"context=x\" in \"/run:size=64m,context=x\"",
        ),
        (
            CreateFlags {
                tmpfs: vec!["relative".into()],
                ..Default::default()
            },
            "invalid mount config for \"relative\": mount path must be absolute",
        ),
    ] {
        let err = create_err(flags, &|_| {});
        assert_eq!(err.to_string(), want);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{want}");
        assert_eq!(err.kind().exit_code(), 125);
        assert_eq!(err.kind().http_status(), 400);
    }
}

#[test]
fn relative_volume_sources_resolve_against_the_request_cwd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let proj = dir.path().join("home/u/proj");
    let ms = mounts_of(CreateFlags {
        volumes: vec![
            "./data:/x".into(),
            ".:/y:ro".into(),
            "../other/./d:/z".into(),
            "named:/n".into(),
            "/anon".into(),
        ],
        cwd: Some(proj.clone()),
        ..Default::default()
    })
    .expect("relative -v with a cwd");
    let got: Vec<(MountKind, String, String, bool)> = ms
        .iter()
        .map(|m| {
            (
                m.kind.clone(),
                m.source.clone(),
                m.target.clone(),
                m.read_only,
            )
        })
        .collect();
    let p = |s: &str| dir.path().join(s).display().to_string();
    assert_eq!(
        got,
        vec![
            (MountKind::Bind, p("home/u/proj/data"), "/x".into(), false),
            (MountKind::Bind, p("home/u/proj"), "/y".into(), true),
            (MountKind::Bind, p("home/u/other/d"), "/z".into(), false),
            (MountKind::Volume, "named".into(), "/n".into(), false),
            (MountKind::Volume, String::new(), "/anon".into(), false),
        ]
    );
    // `-v` creates a missing source later, at start: validation does not refuse it, and
    // creates nothing
    assert!(ms[..3].iter().all(|m| m.create_mountpoint));
    assert!(!proj.exists());
    // without a working directory (an API caller) a relative source is refused
    let err = mounts_of(CreateFlags {
        volumes: vec!["./data:/x".into()],
        ..Default::default()
    })
    .expect_err("no cwd");
    assert_eq!(
        err.to_string(),
        "invalid volume specification: \"./data:/x\": a host path must be absolute"
    );
}

#[test]
fn mount_bind_source_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let spec = format!("type=bind,src={},dst=/x", missing.display());
    let err = create_err(
        CreateFlags {
            mounts: vec![spec],
            ..Default::default()
        },
        &|_| {},
    );
    assert_eq!(
        err.to_string(),
        format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(!missing.exists(), "a refused --mount created its source");
    // the same source through -v passes validation (docker creates it at start)
    let ms = mounts_of(CreateFlags {
        volumes: vec![format!("{}:/x", missing.display())],
        ..Default::default()
    })
    .expect("-v with a missing source");
    assert_eq!(ms[0].source, missing.display().to_string());
    assert!(!missing.exists());
    // an existing source is accepted, read-only kept
    let ms = mounts_of(CreateFlags {
        mounts: vec![format!(
            "type=bind,source={},target=/data,readonly",
            dir.path().display()
        )],
        ..Default::default()
    })
    .expect("existing bind source");
    assert_eq!(
        (ms[0].kind.clone(), ms[0].read_only, ms[0].create_mountpoint),
        (MountKind::Bind, true, false)
    );
}

#[test]
fn tmpfs_options() {
    let ms = mounts_of(CreateFlags {
        tmpfs: vec!["/run:size=64m,mode=1777,ro".into(), "/cache".into()],
        mounts: vec!["type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700".into()],
        ..Default::default()
    })
    .expect("tmpfs");
    // --mount before --tmpfs, as the CLI passes them
    let got: Vec<(MountKind, String, String, bool)> = ms
        .iter()
        .map(|m| {
            (
                m.kind.clone(),
                m.target.clone(),
                m.options.clone(),
                m.read_only,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                MountKind::Tmpfs,
                "/t".into(),
                "size=1m,mode=700".into(),
                false
            ),
            (
                MountKind::Tmpfs,
                "/run".into(),
                "size=64m,mode=1777".into(),
                true
            ),
            (MountKind::Tmpfs, "/cache".into(), String::new(), false),
        ]
    );
    for bad in [
        "/run:mode=999",
        "/run:uid=root",
        "/run:size=",
        "/run:nosuid=1",
        "/proc",
    ] {
        let err = mounts_of(CreateFlags {
            tmpfs: vec![bad.into()],
            ..Default::default()
        })
        .expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        assert!(err.to_string().contains(bad), "{bad}: {err}");
    }
    let err = mounts_of(CreateFlags {
        mounts: vec!["type=tmpfs,dst=/t,tmpfs-mode=rwx".into()],
        ..Default::default()
    })
    .expect_err("tmpfs-mode");
    assert_eq!(
        err.to_string(),
        "invalid tmpfs option \"mode=rwx\" in \"type=tmpfs,dst=/t,tmpfs-mode=rwx\""
    );
}

#[test]
fn labels_and_env_are_parsed_by_the_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let envf = dir.path().join("env");
    std::fs::write(&envf, "# comment\nA=file\nB=2\n").expect("write");
    let r = validate::prepare(req(CreateFlags {
        labels: vec!["owner=me".into(), "flag".into()],
        env_files: vec![envf.clone()],
        env: vec!["A=flag".into()],
        ..Default::default()
    }))
    .expect("labels and env");
    assert_eq!(r.labels.get("owner").map(String::as_str), Some("me"));
    assert_eq!(r.labels.get("flag").map(String::as_str), Some(""));
    assert_eq!(r.env, vec!["A=file", "B=2", "A=flag"]);
    std::fs::write(&envf, "BAD KEY=1\n").expect("write");
    let err = create_err(
        CreateFlags {
            env_files: vec![envf.clone()],
            ..Default::default()
        },
        &|_| {},
    );
    assert!(err.to_string().contains("BAD KEY"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn defaults_are_the_engines() {
    // a front end that passes nothing gets docker's defaults: the default `bridge` network,
    // restart policy "no"
    let r = validate::prepare(req(CreateFlags::default())).expect("defaults");
    assert_eq!(r.host.network_mode, NetworkMode::Bridge);
    assert_eq!(r.host.restart_policy.name, "no");
    assert!(r.host.mounts.is_empty() && r.labels.is_empty() && r.env.is_empty());
    let r = validate::prepare(req(CreateFlags {
        restart: Some("on-failure:3".into()),
        ..Default::default()
    }))
    .expect("restart");
    assert_eq!(
        (
            r.host.restart_policy.name.as_str(),
            r.host.restart_policy.maximum_retry_count
        ),
        ("on-failure", 3)
    );
}
