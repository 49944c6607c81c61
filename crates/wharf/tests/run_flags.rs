//! Root-level tests of docker's `run`/`create` flags beyond the basics: each applied flag's
//! effect seen from inside the container or in its cgroup files, each refused flag's error
//! (naming the flag, exit 125), and clap's error for an unknown flag.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The container's directory in the hierarchy that has `file` (v1: the controller's; v2:
/// the unified one).
fn cg_file(id: &str, file: &str) -> PathBuf {
    cgroup_dirs(id)
        .into_iter()
        .map(|d| d.join(file))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no cgroup file {file} for {id}"))
}

fn pure_v2() -> bool {
    !Path::new("/sys/fs/cgroup/memory").exists()
        && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A block device of this host (`/dev/<name>`, its `major:minor`).
fn block_device() -> Option<(String, String)> {
    for e in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("loop") || name.starts_with("ram") {
            continue;
        }
        let dev = format!("/dev/{name}");
        if Path::new(&dev).exists() {
            let numbers = std::fs::read_to_string(e.path().join("dev")).ok()?;
            return Some((dev, numbers.trim().to_string()));
        }
    }
    None
}

#[test]
fn cgroup_limits_are_applied() {
    let w = Wharf::new().with_busybox();
    let mut args = vec![
        "run",
        "-d",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--memory-reservation",
        "32m",
        "-c",
        "512",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--pids-limit",
        "50",
    ];
    if !pure_v2() {
        args.extend(["--memory-swappiness", "10", "--oom-kill-disable"]);
    }
    let dev = block_device();
    let bps;
    let iops;
    if let Some((d, _)) = &dev {
        bps = format!("{d}:1mb");
        iops = format!("{d}:100");
        args.extend(["--device-read-bps", &bps, "--device-write-iops", &iops]);
    }
    args.extend(["busybox", "sleep", "60"]);
    let id = w.ok(&args).trim().to_string();
    if pure_v2() {
        assert_eq!(read(&cg_file(&id, "memory.max")), "67108864");
        assert_eq!(read(&cg_file(&id, "memory.swap.max")), "67108864");
        assert_eq!(read(&cg_file(&id, "memory.low")), "33554432");
        assert_eq!(read(&cg_file(&id, "cpu.weight")), "20");
        assert_eq!(read(&cg_file(&id, "cpu.max")), "25000 50000");
        if let Some((_, numbers)) = &dev {
            let io = read(&cg_file(&id, "io.max"));
            assert!(io.contains(&format!("{numbers} rbps=1048576")), "{io}");
        }
    } else {
        assert_eq!(read(&cg_file(&id, "memory.limit_in_bytes")), "67108864");
        assert_eq!(
            read(&cg_file(&id, "memory.memsw.limit_in_bytes")),
            "134217728"
        );
        assert_eq!(
            read(&cg_file(&id, "memory.soft_limit_in_bytes")),
            "33554432"
        );
        assert_eq!(read(&cg_file(&id, "memory.swappiness")), "10");
        assert!(read(&cg_file(&id, "memory.oom_control")).contains("oom_kill_disable 1"));
        assert_eq!(read(&cg_file(&id, "cpu.shares")), "512");
        assert_eq!(read(&cg_file(&id, "cpu.cfs_period_us")), "50000");
        assert_eq!(read(&cg_file(&id, "cpu.cfs_quota_us")), "25000");
        if let Some((_, numbers)) = &dev {
            assert_eq!(
                read(&cg_file(&id, "blkio.throttle.read_bps_device")),
                format!("{numbers} 1048576")
            );
            assert_eq!(
                read(&cg_file(&id, "blkio.throttle.write_iops_device")),
                format!("{numbers} 100")
            );
        }
    }
    assert_eq!(read(&cg_file(&id, "cpuset.cpus")), "0");
    assert_eq!(read(&cg_file(&id, "pids.max")), "50");
    // the record says what was asked (docker's HostConfig keys)
    let f = "{{.HostConfig.CpuShares}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpusetCpus}}";
    assert_eq!(
        w.ok(&["inspect", "-f", f, &id]).trim(),
        "512 134217728 33554432 25000 0"
    );
    w.ok(&["rm", "-f", &id]);
    assert!(cgroup_dirs(&id).is_empty(), "cgroup left behind");
}

#[test]
fn process_and_namespace_options_seen_inside() {
    let w = Wharf::new().with_busybox();
    let run = |extra: &[&str], cmd: &str| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.extend(["busybox", "sh", "-c", cmd]);
        w.ok(&a).trim().to_string()
    };
    assert_eq!(
        run(&["--oom-score-adj", "345"], "cat /proc/self/oom_score_adj"),
        "345"
    );
    // /dev/shm's size: docker's 64m default, --shm-size otherwise (df's 1K blocks)
    assert_eq!(
        run(&[], "df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2"),
        "65536"
    );
    assert_eq!(
        run(
            &["--shm-size", "8m"],
            "df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2"
        ),
        "8192"
    );
    assert_eq!(
        run(
            &["--domainname", "example.org"],
            "cat /proc/sys/kernel/domainname"
        ),
        "example.org"
    );
    // --uts host: the host's hostname and UTS namespace
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_eq!(
        run(&["--uts", "host"], "readlink /proc/self/ns/uts"),
        host_uts.to_string_lossy()
    );
    let o = w.run(&["run", "--rm", "--uts", "host", "-h", "x", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("Conflicting options: hostname and the UTS mode"),
        "{}",
        stderr(&o)
    );
    // accepted defaults
    assert_eq!(
        run(
            &[
                "--ipc",
                "shareable",
                "--userns",
                "host",
                "--cgroupns",
                "host",
                "--isolation",
                "default",
                "--runtime",
                "runc"
            ],
            "echo ok"
        ),
        "ok"
    );
}

#[test]
fn devices_are_created_and_allowed() {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("skipped: no /dev/fuse");
        return;
    }
    let w = Wharf::new().with_busybox();
    let out = w.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/fuse:/dev/myfuse:rw",
        "busybox",
        "sh",
        "-c",
        "stat -c '%t:%T %F' /dev/myfuse",
    ]);
    assert_eq!(out.trim(), "a:e5 character special file");
    if !pure_v2() {
        let id = w
            .ok(&[
                "run",
                "-d",
                "--device",
                "/dev/fuse",
                "--device-cgroup-rule",
                "c 10:232 r",
                "busybox",
                "sleep",
                "60",
            ])
            .trim()
            .to_string();
        let list = read(&cg_file(&id, "devices.list"));
        assert!(list.lines().any(|l| l == "c 10:229 rwm"), "{list}");
        assert!(list.lines().any(|l| l == "c 10:232 r"), "{list}");
        w.ok(&["rm", "-f", &id]);
    }
    let o = w.run(&[
        "run",
        "--rm",
        "--device",
        "/etc/passwd:/dev/x",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("not a device node"), "{}", stderr(&o));
    let o = w.run(&[
        "run",
        "--rm",
        "--device",
        "/dev/fuse:/etc/fuse",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("container path below /dev/"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

#[test]
fn cidfile_label_file_and_volumes_from() {
    let w = Wharf::new().with_busybox();
    let cid = w.dir.path().join("cid");
    let id = w
        .ok(&[
            "run",
            "-d",
            "--cidfile",
            cid.to_str().unwrap(),
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    assert_eq!(read(&cid), id);
    // docker refuses an existing cidfile
    let o = w.run(&[
        "run",
        "--rm",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("Container ID file found"),
        "{}",
        stderr(&o)
    );
    w.ok(&["rm", "-f", &id]);
    // a foreground run writes it before the command ends
    let cid2 = w.dir.path().join("cid2");
    w.ok(&[
        "run",
        "--name",
        "fg",
        "--cidfile",
        cid2.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert_eq!(
        read(&cid2),
        w.ok(&["inspect", "-f", "{{.Id}}", "fg"]).trim()
    );

    let labels = w.dir.path().join("labels");
    std::fs::write(&labels, "# comment\n\na=1\nb\n").unwrap();
    let id = w
        .ok(&[
            "create",
            "--label-file",
            labels.to_str().unwrap(),
            "-l",
            "c=3",
            "busybox",
            "true",
        ])
        .trim()
        .to_string();
    assert_eq!(
        w.ok(&["inspect", "-f", "{{json .Config.Labels}}", &id])
            .trim(),
        r#"{"a":"1","b":"","c":"3"}"#
    );

    w.ok(&[
        "create",
        "--name",
        "data",
        "-v",
        "vol1:/data",
        "busybox",
        "true",
    ]);
    let out = w.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "data:ro",
        "busybox",
        "sh",
        "-c",
        "grep ' /data ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1",
    ]);
    assert_eq!(out.trim(), "ro");
    let out = w.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "data",
        "busybox",
        "sh",
        "-c",
        "touch /data/x && echo written",
    ]);
    assert_eq!(out.trim(), "written");
    let o = w.run(&["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
}

#[test]
fn refused_flags_name_themselves() {
    let w = Wharf::new().with_busybox();
    for (args, want) in [
        (
            vec!["--kernel-memory", "10m"],
            "--kernel-memory is not supported by wharf: kernel memory limits are deprecated",
        ),
        (
            vec!["--storage-opt", "size=1G"],
            "--storage-opt is not supported by wharf",
        ),
        (vec!["--gpus", "all"], "--gpus is not supported by wharf"),
        (
            vec!["--cpu-rt-runtime", "100"],
            "--cpu-rt-runtime is not supported by wharf",
        ),
        (
            vec!["--link-local-ip", "169.254.1.1"],
            "--link-local-ip is not supported by wharf",
        ),
        (
            vec!["--pid", "container:x"],
            "--pid container:x is not supported by wharf",
        ),
        (
            vec!["--ipc", "none"],
            "--ipc none is not supported by wharf",
        ),
        (
            vec!["--ipc", "host", "--sysctl", "kernel.shmmax=1000000"],
            "not allowed with --ipc host",
        ),
        (
            vec!["--userns", "private"],
            "--userns private is not supported by wharf",
        ),
        (
            vec!["--cgroupns", "private"],
            "--cgroupns private is not supported by wharf",
        ),
        (
            vec!["--cgroup-parent", "/x"],
            "--cgroup-parent is not supported by wharf",
        ),
        (
            vec!["--isolation", "hyperv"],
            "--isolation hyperv is not supported by wharf",
        ),
        (
            vec!["--runtime", "kata"],
            "--runtime kata is not supported by wharf",
        ),
        (
            vec!["--sig-proxy=false"],
            "--sig-proxy=false is not supported by wharf",
        ),
        (
            vec!["-a", "stdout"],
            "--attach stdout is not supported by wharf",
        ),
        (
            vec!["--oom-score-adj", "1001"],
            "range for oom score adj is [-1000, 1000]",
        ),
        (
            vec!["--memory-swap", "1g"],
            "You should always set the Memory limit when using Memoryswap limit",
        ),
        (
            vec!["--cpus", "1", "--cpu-quota", "50000"],
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            vec!["--blkio-weight", "5"],
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            vec!["--device-cgroup-rule", "x 1:2 rwm"],
            "invalid device cgroup rule",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // nothing was created by a refused run
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

#[test]
fn unknown_flag_gets_clap_error_and_usage() {
    let w = Wharf::new();
    for cmd in [vec!["run"], vec!["create"], vec!["container", "run"]] {
        let mut a = cmd.clone();
        a.extend(["--no-such-flag", "busybox"]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(125));
        let e = stderr(&o);
        assert!(
            e.contains("unexpected argument '--no-such-flag' found"),
            "{e}"
        );
        assert!(
            e.contains(&format!("Usage: wharf {} [OPTIONS]", cmd.join(" "))),
            "{e}"
        );
        assert!(!e.contains("invalid reference format"), "{e}");
    }
}

/// The same flags against docker (a private dockerd), where the daemon runs them.
#[test]
fn matches_docker_where_it_runs() {
    let w = Wharf::new().with_busybox();
    let Some(d) = dockerd::Dockerd::start() else {
        eprintln!("skipped: dockerd unavailable");
        return;
    };
    let tar = w.dir.path().join("busybox.tar");
    d.ok(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
    for (args, cmd) in [
        (
            vec!["--oom-score-adj", "123"],
            "cat /proc/self/oom_score_adj",
        ),
        (
            vec!["--shm-size", "8m"],
            "df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2",
        ),
        (
            vec!["--domainname", "ex.org"],
            "cat /proc/sys/kernel/domainname",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "sh", "-c", cmd]);
        let ours = w.run(&a);
        let theirs = d.docker(&a);
        assert_eq!(stdout(&ours), stdout(&theirs), "{args:?}");
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
    }
}

#[test]
fn ipc_namespaces_shared_as_docker() {
    let w = Wharf::new().with_busybox();
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap();
    // --ipc host: the host's namespace and /dev/shm
    let out = w.ok(&[
        "run",
        "--rm",
        "--ipc",
        "host",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]);
    assert_eq!(out.trim(), ns("self").to_string_lossy());
    // container:X joins X's namespace and /dev/shm; X must be shareable and running
    let donor = w
        .ok(&[
            "run",
            "-d",
            "--ipc",
            "shareable",
            "--name",
            "donor",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let pid = w
        .ok(&["inspect", "-f", "{{.State.Pid}}", &donor])
        .trim()
        .to_string();
    let out = w.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/ipc; echo shared > /dev/shm/x",
    ]);
    assert_eq!(out.trim(), ns(&pid).to_string_lossy());
    assert_eq!(
        w.ok(&["exec", "donor", "cat", "/dev/shm/x"]).trim(),
        "shared"
    );
    assert_ne!(ns(&pid), ns("self"), "the donor has its own namespace");
    w.ok(&["run", "-d", "--name", "private", "busybox", "sleep", "60"]);
    let o = w.run(&[
        "run",
        "--rm",
        "--ipc",
        "container:private",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o)
            .contains("non-shareable IPC (hint: use IpcMode:shareable for the donor container)"),
        "{}",
        stderr(&o)
    );
    w.ok(&["stop", "-t", "0", "donor"]);
    let o = w.run(&["run", "--rm", "--ipc", "container:donor", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("cannot join IPC of a non running container: donor"),
        "{}",
        stderr(&o)
    );
    w.ok(&["rm", "-f", "donor", "private"]);
    // the donor's host-side /dev/shm tmpfs went with it
    assert!(
        mounts_under(w.dir.path()).is_empty(),
        "{:?}",
        mounts_under(w.dir.path())
    );
}

/// The admin policy gates the host namespaces and devices (`run.host_namespaces`,
/// `run.devices`).
#[test]
fn policy_gates_host_namespaces_and_devices() {
    let w = Wharf::new().with_busybox();
    let p = common::policy::Pol::new(&w, "[run]\nhost_namespaces = false\ndevices = false\n");
    for (args, rule) in [
        (vec!["--uts", "host"], "run.host_namespaces"),
        (vec!["--ipc", "host"], "run.host_namespaces"),
        (vec!["--pid", "host"], "run.host_namespaces"),
        (vec!["--device", "/dev/null:/dev/n2"], "run.devices"),
        (vec!["--device-cgroup-rule", "c 1:3 r"], "run.devices"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let o = p.run(&a);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(rule), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        p.run(&["run", "--rm", "busybox", "true"]).status.code(),
        Some(0)
    );
}

/// `--pid host`: the host's PID namespace (its pid 1 visible), exit codes as usual, and the
/// container's processes gone with it.
#[test]
fn pid_host() {
    let w = Wharf::new().with_busybox();
    let host = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let out = w.ok(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; test -d /proc/1 && echo has-1; test $$ != 1 && echo not-1",
    ]);
    assert_eq!(out, format!("{}\nhas-1\nnot-1\n", host.to_string_lossy()));
    let o = w.run(&[
        "run", "--rm", "--pid", "host", "busybox", "sh", "-c", "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    let id = w
        .ok(&[
            "run",
            "-d",
            "--pid",
            "host",
            "busybox",
            "sh",
            "-c",
            "sleep 300 & sleep 300",
        ])
        .trim()
        .to_string();
    w.ok(&["rm", "-f", &id]);
    assert!(cgroup_dirs(&id).is_empty(), "cgroup left behind");
}
