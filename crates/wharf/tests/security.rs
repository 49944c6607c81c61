//! Confinement seen from inside a container: capabilities, seccomp, masked and read-only
//! paths, cgroup limits (pids, memory), and cleanup.

mod common;
use common::*;

const DOCKER_CAPS: &str = "00000000a80425fb";

fn cap_line(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn capabilities_match_docker() {
    let w = Wharf::new().with_busybox();
    let out = w.ok(&["run", "--rm", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(cap_line(&out, "CapEff:"), DOCKER_CAPS, "{out}");
    assert_eq!(cap_line(&out, "CapBnd:"), DOCKER_CAPS);
    assert_eq!(cap_line(&out, "CapInh:"), "0000000000000000");
    assert_eq!(cap_line(&out, "CapAmb:"), "0000000000000000");
    assert_eq!(
        out.lines()
            .find(|l| l.starts_with("NoNewPrivs:"))
            .map(|l| l.ends_with('1')),
        Some(true)
    );
    assert_eq!(
        out.lines()
            .find(|l| l.starts_with("Seccomp:"))
            .map(|l| l.ends_with('2')),
        Some(true)
    );
    // non-root user: no effective caps
    let out = w.ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(cap_line(&out, "CapEff:"), "0000000000000000");
    // drop all, add one
    let out = w.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_RAW",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(cap_line(&out, "CapEff:"), "0000000000002000");
    let out = w.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(cap_line(&out, "CapEff:"), "00000000a80425fa");
}

#[test]
fn privileged_gets_what_the_host_has() {
    let w = Wharf::new().with_busybox();
    let out = w.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        cap_line(&out, "CapEff:"),
        cap_line(&host, "CapBnd:"),
        "{out}"
    );
    assert!(out
        .lines()
        .any(|l| l.starts_with("Seccomp:") && l.ends_with('0')));
    // and it can mount
    w.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "mount",
        "-t",
        "tmpfs",
        "none",
        "/tmp",
    ]);
}

#[test]
fn seccomp_and_paths_deny() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/tmp",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("ermission denied") || stderr(&o).contains("not permitted"),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["run", "--rm", "busybox", "reboot", "-f"]);
    assert_ne!(o.status.code(), Some(0));
    let o = w.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo h > /proc/sysrq-trigger",
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "sysrq-trigger must not be writable"
    );
    let o = w.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/panic",
    ]);
    assert_ne!(o.status.code(), Some(0));
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /proc/kcore | wc -c",
    ]);
    assert_eq!(out.trim(), "0", "/proc/kcore masked");
    let o = w.run(&["run", "--rm", "busybox", "touch", "/sys/kernel/x"]);
    assert_ne!(o.status.code(), Some(0), "/sys read-only");
    // seccomp=unconfined with CAP_SYS_ADMIN → mount works; a custom profile denies
    w.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "mount",
        "-t",
        "tmpfs",
        "none",
        "/tmp",
    ]);
    let profile = w.dir.path().join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let o = w.run(&[
        "run",
        "--rm",
        "--security-opt",
        &format!("seccomp={}", profile.display()),
        "busybox",
        "mkdir",
        "/tmp/x",
    ]);
    assert_ne!(o.status.code(), Some(0), "custom profile applied");
    w.ok(&["run", "--rm", "busybox", "mkdir", "/tmp/x"]);
}

#[test]
fn pids_limit_contains_fork_bomb() {
    let w = Wharf::new().with_busybox();
    // a real fork bomb in the background; pid 1 then becomes `sleep` (exec, no fork needed)
    let mut child = w
        .command(&[
            "run",
            "--name",
            "bomb",
            "--pids-limit",
            "64",
            "busybox",
            "sh",
            "-c",
            "(f() { f | f & }; f) 2>/dev/null; exec sleep 300",
        ])
        .spawn()
        .expect("spawn");
    // wait (generously: CI machines are loaded) for the container's pids cgroup; the
    // controllers' directories appear one by one, so look for pids itself
    let pids_cgroup = || {
        let id = stdout(&w.run(&["inspect", "-f", "{{.Id}}", "bomb"]))
            .trim()
            .to_string();
        if id.len() != 64 {
            return None; // not created yet ("" would name the parent cgroup)
        }
        cgroup_dirs(&id)
            .into_iter()
            .find(|d| d.join("pids.current").exists())
            .map(|d| (id, d))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (id, pids_dir) = loop {
        if let Some(d) = pids_cgroup() {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pids cgroup for the container"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let read = |f: &str| std::fs::read_to_string(pids_dir.join(f)).unwrap_or_default();
    assert_eq!(read("pids.max").trim(), "64");
    // until the kernel reports a refused fork (the bomb may burst and die out between two
    // samples, so the sampled peak is only an upper-bound check)
    let mut peak = 0u64;
    let mut limited = 0u64;
    while std::time::Instant::now() < deadline {
        peak = peak.max(read("pids.current").trim().parse().unwrap_or(0));
        limited = read("pids.events")
            .lines()
            .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0);
        if limited > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    w.ok(&["rm", "-f", "bomb"]);
    let _ = child.wait();
    assert!(peak <= 64, "pids limit exceeded: {peak}");
    assert!(limited > 0, "the bomb never hit the limit (peak {peak})");
    assert!(
        cgroup_dirs(&id).is_empty(),
        "cgroup removed with the container"
    );
}

#[test]
fn memory_hog_is_oom_killed() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", "hog"])).unwrap();
    assert_eq!(v[0]["State"]["OOMKilled"], true);
    assert_eq!(v[0]["State"]["ExitCode"], 137);
    let id = v[0]["Id"].as_str().unwrap().to_string();
    w.ok(&["rm", "hog"]);
    assert!(cgroup_dirs(&id).is_empty());
}

#[test]
fn cgroup_limits_are_written() {
    let w = Wharf::new().with_busybox();
    let out = w.ok(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "100",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/cgroup",
    ]);
    // the container is in wharf/<id> for memory and pids
    assert!(out.lines().any(|l| l.contains(":memory:/wharf/")), "{out}");
    assert!(out.lines().any(|l| l.contains(":pids:/wharf/")), "{out}");
}

#[test]
fn no_leftovers_after_many_runs() {
    let w = Wharf::new().with_busybox();
    assert_eq!(procs_of(&w), Vec::<u32>::new());
    let tag = test_tag(&w);
    // the check itself can see what it looks for: a detached container and its monitor
    w.ok(&[
        "run", "-d", "--name", "probe", "-e", &tag, "busybox", "sleep", "60",
    ]);
    assert!(
        procs_of(&w).len() >= 2,
        "monitor and container process visible"
    );
    w.ok(&["rm", "-f", "probe"]);
    for i in 0..10 {
        let name = format!("c{i}");
        w.ok(&[
            "run",
            "--rm",
            "--name",
            &name,
            "-e",
            &tag,
            "busybox",
            "sh",
            "-c",
            "sleep 0.01 & echo hi",
        ]);
    }
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    assert!(mounts_under(w.dir.path()).is_empty());
    let containers = std::fs::read_dir(w.root().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(containers, 0);
    // no stray processes: no monitor of this store, nothing rooted in its containers
    assert_eq!(procs_of(&w), Vec::<u32>::new());
}

/// `NAME=value` unique to this test, given to its containers with `-e`.
fn test_tag(w: &Wharf) -> String {
    format!("WHARF_TEST_TAG={}", w.dir.path().display())
}

/// Processes of this test: wharf processes (monitors) with its WHARF_ROOT, and container
/// processes carrying its [`test_tag`]. Exact, so parallel tests (a fork bomb among them)
/// cannot disturb it.
fn procs_of(w: &Wharf) -> Vec<u32> {
    let root_env = format!("WHARF_ROOT={}", w.root().display()).into_bytes();
    let tag = test_tag(w).into_bytes();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let ours = std::fs::read(e.path().join("environ")).is_ok_and(|env| {
            env.split(|b| *b == 0)
                .any(|v| v == root_env.as_slice() || v == tag.as_slice())
        });
        if ours {
            out.push(pid);
        }
    }
    out
}
