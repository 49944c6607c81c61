//! Root-level integration tests of `wharf run`: exit codes, env, users, mounts, cleanup.
//! They use the real kernel (namespaces, overlayfs, cgroups) and the real binary.

mod common;
use common::*;

#[test]
fn run_echo_hello() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n");
    // --rm leaves nothing behind
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    assert!(mounts_under(w.dir.path()).is_empty());
}

#[test]
fn exit_codes_like_docker() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    let o = w.run(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("nosuchcommand"), "{}", stderr(&o));
    let o = w.run(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "stderr: {}", stderr(&o));
    // a missing image: docker's line before the pull, then the pull's one-line error
    let o = w.run(&["run", "--rm", "nosuchimage", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        "Unable to find image 'nosuchimage:latest' locally"
    );
    // without pulling: the store's one-line error
    let o = w.run(&["run", "--rm", "--pull", "never", "nosuchimage", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("nosuchimage"), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim().lines().count(),
        1,
        "one-line error: {}",
        stderr(&o)
    );
    // a process killed by a signal: 128+N
    let o = w.run(&["run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(137), "stderr: {}", stderr(&o));
    let o = w.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "sh -c 'kill -TERM $$'; exit $?",
    ]);
    assert_eq!(o.status.code(), Some(143));
}

#[test]
fn killed_from_outside_reports_137() {
    let w = Wharf::new().with_busybox();
    let child = w
        .command(&["run", "--name", "victim", "busybox", "sleep", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut pid = 0;
    for _ in 0..200 {
        let out = w.run(&["inspect", "-f", "{{.State.Pid}}", "victim"]);
        pid = stdout(&out).trim().parse().unwrap_or(0);
        if pid > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(pid > 0, "container never reported a pid");
    assert_eq!(
        w.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "victim running\n"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(137));
    let st = w.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(st.starts_with("Exited (137)"), "{st}");
}

#[test]
fn signals_are_forwarded() {
    let w = Wharf::new().with_busybox();
    let child = w
        .command(&[
            "run",
            "--rm",
            "--name",
            "sig",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let cli_pid = child.id() as i32;
    // wait until the container is up
    for _ in 0..200 {
        if stdout(&w.run(&["ps", "-q"])).trim().len() == 12 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cli_pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(
        o.status.code(),
        Some(7),
        "stdout={} stderr={}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("got-term"));
}

#[test]
fn env_workdir_user() {
    let w = Wharf::new().with_busybox();
    let envf = w.dir.path().join("env.list");
    std::fs::write(&envf, "# comment\nFROM_FILE=yes\n\nB=from-file\n").unwrap();
    let out = w.ok(&[
        "run",
        "--rm",
        "--name",
        "web",
        "-e",
        "A=1",
        "-e",
        "B=flag",
        "--env-file",
        envf.to_str().unwrap(),
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "busybox",
        "sh",
        "-c",
        "env; pwd; id",
    ]);
    assert!(out.contains("A=1\n"), "{out}");
    assert!(out.contains("FROM_FILE=yes\n"), "{out}");
    assert!(out.contains("B=flag\n"), "-e after --env-file wins: {out}");
    assert!(out.contains("PATH=/usr/local/sbin:"), "{out}");
    assert!(out.contains("HOSTNAME="), "{out}");
    assert!(out.contains("\n/tmp\n"), "{out}");
    assert!(
        out.contains("uid=65534(nobody) gid=65534(nogroup)"),
        "{out}"
    );
    // user:group, numeric ids, supplementary groups from /etc/group
    let out = w.ok(&["run", "--rm", "-u", "app", "busybox", "id"]);
    assert!(out.contains("uid=1000(app) gid=1000(app)"), "{out}");
    assert!(
        out.contains("groups=") && out.contains("10(wheel)") && out.contains("29(audio)"),
        "{out}"
    );
    let out = w.ok(&["run", "--rm", "-u", "4242:4343", "busybox", "id"]);
    assert!(out.starts_with("uid=4242 gid=4343"), "{out}");
    let o = w.run(&["run", "--rm", "-u", "ghost", "busybox", "id"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("ghost"), "{}", stderr(&o));
    // bad env file: a clear error and nothing created
    std::fs::write(&envf, "BAD KEY=1\n").unwrap();
    let o = w.run(&[
        "run",
        "--rm",
        "--env-file",
        envf.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("BAD KEY"), "{}", stderr(&o));
    let o = w.run(&[
        "run",
        "--rm",
        "--env-file",
        "/nonexistent/env",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn hostname_and_etc_files() {
    let w = Wharf::new().with_busybox();
    let out = w.ok(&[
        "run",
        "--name",
        "h1",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; cat /etc/hosts",
    ]);
    let id = w.ok(&["inspect", "-f", "{{.Id}}", "h1"]);
    let short = &id.trim()[..12];
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(short));
    assert_eq!(lines.next(), Some(short));
    assert!(out.contains("127.0.0.1\tlocalhost"));
    let out = w.ok(&["run", "--rm", "-h", "myhost", "busybox", "hostname"]);
    assert_eq!(out, "myhost\n");
    w.ok(&["rm", "h1"]);
}

#[test]
fn lifecycle_ps_inspect_rm() {
    let w = Wharf::new().with_busybox();
    w.ok(&["run", "--name", "web", "busybox", "true"]);
    let ps = w.ok(&["ps", "-a"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(ps.contains("Exited (0)"), "{ps}");
    assert!(ps.contains("web"), "{ps}");
    assert_eq!(w.ok(&["ps"]).lines().count(), 1, "not running: header only");
    let js = w.ok(&["inspect", "web"]);
    let v: serde_json::Value = serde_json::from_str(&js).expect("inspect is JSON");
    assert_eq!(v[0]["Name"], "/web");
    assert_eq!(v[0]["State"]["Status"], "exited");
    assert_eq!(v[0]["State"]["ExitCode"], 0);
    assert_eq!(v[0]["Config"]["Cmd"][0], "true");
    let j = w.ok(&["ps", "-a", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(j.trim()).expect("ps json");
    assert_eq!(v["Names"], "web");
    // name in use
    let o = w.run(&["run", "--name", "web", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    assert_eq!(w.ok(&["ps", "-a", "-q"]).lines().count(), 1);
    w.ok(&["rm", "web"]);
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    let o = w.run(&["rm", "web"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));
    let o = w.run(&["inspect", "nothing-here"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn rm_running_needs_force() {
    let w = Wharf::new().with_busybox();
    let mut child = w
        .command(&["run", "--name", "busy", "busybox", "sleep", "60"])
        .spawn()
        .expect("spawn");
    let mut up = false;
    for _ in 0..200 {
        if w.ok(&["ps", "-q"]).trim().len() == 12 {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(up);
    let id = w
        .ok(&["inspect", "-f", "{{.Id}}", "busy"])
        .trim()
        .to_string();
    assert!(!cgroup_dirs(&id).is_empty(), "cgroup exists while running");
    let o = w.run(&["rm", "busy"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("container is running"),
        "{}",
        stderr(&o)
    );
    w.ok(&["rm", "-f", "busy"]);
    let _ = child.wait();
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    assert!(
        cgroup_dirs(&id).is_empty(),
        "cgroup removed: {:?}",
        cgroup_dirs(&id)
    );
    assert!(!w.root().join("containers").join(&id).exists());
}

#[test]
fn mounts_volumes_readonly_tmpfs() {
    let w = Wharf::new().with_busybox();
    let host = w.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from-host").unwrap();
    let spec = format!("{}:/data", host.display());
    let out = w.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /data/f; echo new > /data/g",
    ]);
    assert_eq!(out, "from-host");
    assert_eq!(std::fs::read_to_string(host.join("g")).unwrap(), "new\n");
    let spec_ro = format!("{}:/data:ro", host.display());
    let o = w.run(&["run", "--rm", "-v", &spec_ro, "busybox", "touch", "/data/h"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!host.join("h").exists());
    // named volume persists between containers
    w.ok(&["volume", "create", "vol1"]);
    w.ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/x",
    ]);
    assert_eq!(
        w.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/x"]),
        "kept\n"
    );
    assert!(w.ok(&["volume", "ls"]).contains("vol1"));
    // in use → refused
    w.ok(&["run", "--name", "user", "-v", "vol1:/v", "busybox", "true"]);
    let o = w.run(&["volume", "rm", "vol1"]);
    assert_ne!(o.status.code(), Some(0));
    w.ok(&["rm", "user"]);
    w.ok(&["volume", "rm", "vol1"]);
    assert!(!w.ok(&["volume", "ls", "-q"]).contains("vol1"));
    // read-only rootfs with a tmpfs
    let o = w.run(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    let out = w.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "sh",
        "-c",
        "echo ok > /scratch/y && cat /scratch/y",
    ]);
    assert_eq!(out, "ok\n");
    // writes to the rootfs stay in the container's own layer
    w.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo scribble > /etc/passwd",
    ]);
    let out = w.ok(&["run", "--rm", "busybox", "head", "-n1", "/etc/passwd"]);
    assert!(out.starts_with("root:x:0:0"), "{out}");
    assert!(mounts_under(w.dir.path()).is_empty());
}

#[test]
fn bad_flags_are_125() {
    let w = Wharf::new().with_busybox();
    for args in [
        vec!["run", "--memory", "lots", "busybox", "true"],
        vec!["run", "--cpus", "abc", "busybox", "true"],
        vec!["run", "--nosuchflag", "busybox", "true"],
        vec!["run", "-v", "relative:dir:bad:x", "busybox", "true"],
        vec!["run", "--cap-add", "NOT_A_CAP", "busybox", "true"],
        vec![
            "run",
            "--security-opt",
            "seccomp=/nonexistent.json",
            "busybox",
            "true",
        ],
        vec!["run", "--name", "bad/name", "busybox", "true"],
        vec!["run", "--network", "bogus", "busybox", "true"],
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    // the engine's messages reach the user (docker's wording)
    for (args, want) in [
        (
            vec!["run", "-m", "5m", "busybox", "true"],
            "minimum memory limit allowed is 6MB",
        ),
        (
            vec!["run", "-m", "1e400", "busybox", "true"],
            "invalid size: '1e400'",
        ),
        (
            vec!["run", "--rm", "--restart", "always", "busybox", "true"],
            "cannot specify both --restart and --rm",
        ),
        (
            vec!["run", "-e", "BAD KEY=1", "busybox", "true"],
            "variable \"BAD KEY\" contains whitespaces",
        ),
        (
            vec!["run", "--health-interval", "10x", "busybox", "true"],
            "unknown unit \"x\" in duration",
        ),
        (
            vec![
                "run",
                "--security-opt",
                "seccomp=/nonexistent.json",
                "busybox",
                "true",
            ],
            "opening seccomp profile (/nonexistent.json) failed",
        ),
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn tty_allocates_a_pty() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&["run", "--rm", "-t", "busybox", "tty"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("/dev/pts/0"), "{:?}", stdout(&o));
    // -i passes stdin through
    let o = w.run_stdin(&["run", "--rm", "-i", "busybox", "cat"], b"piped input\n");
    assert_eq!(stdout(&o), "piped input\n");
    // without -i, stdin is /dev/null
    let o = w.run_stdin(&["run", "--rm", "busybox", "cat"], b"ignored\n");
    assert_eq!(stdout(&o), "");
}

#[test]
fn kernel_fallbacks_still_run() {
    let w = Wharf::new().with_busybox();
    let o = w
        .command(&["run", "--rm", "busybox", "echo", "legacy"])
        .env("WHARF_DISABLE", "openat2,clone3,mountapi")
        .output()
        .expect("spawn");
    assert_eq!(stdout(&o), "legacy\n", "stderr: {}", stderr(&o));
    let host = w.dir.path().join("b");
    std::fs::create_dir(&host).unwrap();
    let spec = format!("{}:/b", host.display());
    let o = w
        .command(&[
            "run",
            "--rm",
            "-v",
            &spec,
            "busybox",
            "sh",
            "-c",
            "echo x > /b/y",
        ])
        .env("WHARF_DISABLE", "openat2,clone3,mountapi")
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(host.join("y").exists());
}

#[test]
fn docker_symlink_and_help() {
    let w = Wharf::new().with_busybox();
    let link = w.dir.path().join("docker");
    std::os::unix::fs::symlink(Wharf::bin(), &link).unwrap();
    let o = std::process::Command::new(&link)
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .env("WHARF_ROOT", w.root())
        .env("WHARF_RUNROOT", w.run_root())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "busybox:latest\n");
    let o = std::process::Command::new(&link)
        .arg("--help")
        .output()
        .unwrap();
    assert!(stdout(&o).contains("Usage: docker"), "{}", stdout(&o));
    for cmd in [
        vec!["run", "--help"],
        vec!["ps", "--help"],
        vec!["images", "--help"],
        vec!["import", "--help"],
        vec!["inspect", "--help"],
        vec!["rm", "--help"],
        vec!["rmi", "--help"],
        vec!["tag", "--help"],
        vec!["volume", "--help"],
        vec!["volume", "create", "--help"],
        vec!["volume", "ls", "--help"],
        vec!["volume", "rm", "--help"],
        vec!["volume", "inspect", "--help"],
        vec!["image", "ls", "--help"],
        vec!["container", "ls", "--help"],
    ] {
        let o = w.run(&cmd);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}");
        assert!(stdout(&o).contains("Usage:"), "{cmd:?}");
    }
}

#[test]
fn network_none_and_host() {
    let w = Wharf::new().with_busybox();
    let ifaces_of = |out: &str| -> Vec<String> {
        let mut v: Vec<String> = out
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|s| s.trim().to_string())
            .collect();
        v.sort();
        v
    };
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/net/dev",
    ]);
    assert_eq!(ifaces_of(&out), vec!["lo"], "{out}");
    // the default is docker's: the `bridge` network, with eth0
    let out = w.ok(&["run", "--rm", "busybox", "cat", "/proc/net/dev"]);
    assert_eq!(ifaces_of(&out), vec!["eth0", "lo"], "{out}");
    // lo is up
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "cat",
        "/sys/class/net/lo/operstate",
    ]);
    assert!(out.trim() == "unknown" || out.trim() == "up", "{out}");
    // the host's interfaces (those other tests' containers come and go with are left out)
    let stable = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|i| {
                !["wv", "wh-", "wharf", "veth", "docker", "br-"]
                    .iter()
                    .any(|p| i.starts_with(p))
            })
            .collect()
    };
    let host_ifaces = stable(ifaces_of(
        &std::fs::read_to_string("/proc/net/dev").unwrap(),
    ));
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "cat",
        "/proc/net/dev",
    ]);
    assert_eq!(stable(ifaces_of(&out)), host_ifaces, "{out}");
    let o = w.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080:80",
        "busybox",
        "true",
    ]);
    assert_eq!(
        o.status.code(),
        Some(125),
        "no network to publish on: {}",
        stderr(&o)
    );
}

#[test]
fn rlimits_clamp_instead_of_failing() {
    let w = Wharf::new().with_busybox();
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .expect("hard nofile");
    // within the hard limit: applied exactly
    let out = w.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:1024",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "512\n1024\n");
    // above it (no CAP_SYS_RESOURCE here): clamped, not an error, and --debug says so
    let want = hard + 1000;
    let o = w.run(&[
        "--debug",
        "run",
        "--rm",
        "--ulimit",
        &format!("nofile={want}:{want}"),
        "busybox",
        "sh",
        "-c",
        "ulimit -Hn",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: u64 = stdout(&o).trim().parse().unwrap();
    let has_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1).unwrap_or("0"), 16).ok())
        .is_some_and(|m| m & (1 << 24) != 0);
    if has_sys_resource {
        assert_eq!(got, want);
    } else {
        assert_eq!(got, hard);
        assert!(
            stderr(&o).contains("nofile"),
            "--debug explains the clamp: {}",
            stderr(&o)
        );
    }
}

fn volume_names(w: &Wharf) -> Vec<String> {
    w.ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn anonymous_volumes_and_bind_sources_like_docker() {
    let w = Wharf::new().with_busybox();
    // a name conflict leaves no anonymous volume behind
    w.ok(&["create", "--name", "dup", "busybox", "true"]);
    let o = w.run(&["run", "--name", "dup", "-v", "/anon", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert_eq!(volume_names(&w), Vec::<String>::new());
    w.ok(&["rm", "dup"]);

    // rm -v removes the anonymous volume, never a named one, whatever its name's length
    let named64 = "a".repeat(64);
    w.ok(&["volume", "create", &named64]);
    w.ok(&[
        "run",
        "--name",
        "c1",
        "-v",
        &format!("{named64}:/n"),
        "-v",
        "/anon",
        "busybox",
        "true",
    ]);
    let vols = volume_names(&w);
    assert_eq!(vols.len(), 2, "{vols:?}");
    let anon = vols.iter().find(|v| **v != named64).expect("anon").clone();
    let inspect = w.ok(&["volume", "inspect", &anon]);
    assert!(inspect.contains("com.docker.volume.anonymous"), "{inspect}");
    w.ok(&["rm", "-v", "c1"]);
    assert_eq!(volume_names(&w), vec![named64.clone()]);

    // --rm removes the anonymous volume too, in the foreground and detached
    w.ok(&["run", "--rm", "-v", "/anon", "busybox", "true"]);
    assert_eq!(volume_names(&w), vec![named64.clone()]);
    w.ok(&["run", "-d", "--rm", "-v", "/anon", "busybox", "true"]);
    assert!(
        eventually(20, || volume_names(&w) == vec![named64.clone()]),
        "{:?}",
        volume_names(&w)
    );

    // --mount type=bind refuses a missing source (and creates nothing); -v creates it
    let missing = w.dir.path().join("missing");
    let o = w.run(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/x", missing.display()),
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains(&format!(
            "bind source path does not exist: {}",
            missing.display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(!missing.exists());
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    w.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/x", missing.display()),
        "busybox",
        "true",
    ]);
    assert!(missing.is_dir());

    // -v ./rel:/x is relative to the current directory (docker 23+)
    let proj = w.dir.path().join("proj");
    std::fs::create_dir_all(proj.join("data")).unwrap();
    std::fs::write(proj.join("data/f"), "rel-ok").unwrap();
    let o = w
        .command(&["run", "--rm", "-v", "./data:/x", "busybox", "cat", "/x/f"])
        .current_dir(&proj)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "rel-ok", "{}", stderr(&o));
    assert_eq!(volume_names(&w), vec![named64.clone()]);
    assert!(mounts_under(w.dir.path()).is_empty());
}

/// A start that fails in the container's monitor (`run -d`, `start -a`) keeps its kind across
/// the monitor's report: 127 for a command that does not exist, 126 for one that cannot be
/// executed, as in the foreground.
#[test]
fn detached_start_failures_keep_their_exit_code() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&["run", "-d", "--name", "nf", "busybox", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["run", "-d", "--name", "nx", "busybox", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    // the recorded error is the runtime's message
    let err = w.ok(&["inspect", "-f", "{{.State.Error}}", "nf"]);
    assert!(err.contains("nosuchcommand"), "{err}");
    // start (with -a through the monitor too) is a command on an existing container: docker's
    // CLI exits 1 whatever the error; without -a it reports per container
    let o = w.run(&["start", "-a", "nf"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("nosuchcommand"), "{}", stderr(&o));
    let o = w.run(&["start", "nx"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["start", "nosuchcontainer"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    w.ok(&["rm", "nf", "nx"]);
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    assert!(mounts_under(w.dir.path()).is_empty());
}
