//! Root-level runtime tests against the real kernel (harness = false: /proc/self/exe is this
//! binary, so `argv[1] == "__init"` dispatches to the container init). Each test starts real
//! containers from a busybox rootfs and asserts behaviour; at the end the host mount table and
//! process table are checked for leftovers.

use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wharf_runtime::spec::*;
use wharf_runtime::start::{start, ExitStatus, StartError, StartOptions};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "id", "env", "ls", "mount", "reboot", "sleep", "true", "false", "grep",
    "hostname", "touch", "pwd", "kill", "tty", "test", "[", "ip", "ping",
];

struct Env {
    _dir: tempfile::TempDir,
    lower: PathBuf,
    scratch: PathBuf,
    cache: PathBuf,
    escape: PathBuf,
}

fn build_env() -> Env {
    let dir = tempfile::Builder::new()
        .prefix("wharf-rt-test")
        .tempdir()
        .expect("tempdir");
    let lower = dir.path().join("lower");
    for d in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "root", "mnt", "usr/bin",
    ] {
        std::fs::create_dir_all(lower.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", lower.join("bin/busybox")).expect("copy busybox");
    for a in APPLETS {
        symlink("busybox", lower.join("bin").join(a)).expect("symlink");
    }
    std::fs::write(
        lower.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(
        lower.join("etc/group"),
        "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n",
    )
    .expect("group");
    // Escape attempt: an image symlink pointing "outside" the rootfs.
    let escape = PathBuf::from(format!("/tmp/wharf-escape-target-{}", std::process::id()));
    symlink(
        format!("/../../../..{}", escape.display()),
        lower.join("etc/hosts"),
    )
    .expect("symlink hosts");
    std::fs::write(lower.join("etc/noexec"), "data\n").expect("noexec");
    let scratch = dir.path().join("c");
    let cache = dir.path().join("seccomp-cache");
    std::fs::create_dir_all(&cache).expect("cache");
    Env {
        lower,
        scratch,
        cache,
        escape,
        _dir: dir,
    }
}

fn spec(env: &Env, args: &[&str]) -> ContainerSpec {
    let n = next();
    let base = env.scratch.join(n.to_string());
    for d in ["upper", "work", "target"] {
        std::fs::create_dir_all(base.join(d)).expect("mkdir");
    }
    let id = format!("{:064x}", (std::process::id() as u64) << 20 | n as u64);
    ContainerSpec {
        id: id.clone(),
        rootfs: RootfsSpec {
            lower: vec![env.lower.clone()],
            upper: base.join("upper"),
            work: base.join("work"),
            target: base.join("target"),
            readonly: false,
            nosuid: false,
        },
        process: ProcessSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "FOO=bar".into(),
            ],
            cwd: "/".into(),
            user: String::new(),
            additional_groups: vec![],
            terminal: false,
            stdin: false,
        },
        hostname: "wharftest".into(),
        mounts: vec![],
        network: Network::None,
        security: SecuritySpec {
            capabilities: wharf_runtime::caps::docker_default(),
            no_new_privileges: false,
            seccomp: Seccomp::Default,
            masked_paths: wharf_runtime::defaults::masked_paths(),
            readonly_paths: wharf_runtime::defaults::readonly_paths(),
            privileged: false,
        },
        cgroup: CgroupSpec {
            path: format!("{}/{id}", test_cgroup_parent()),
            memory: None,
            nano_cpus: None,
            pids_limit: Some(100),
            ..Default::default()
        },
        rlimits: vec![],
        init: false,
        debug: false,
        sysctl: Default::default(),
        domainname: String::new(),
        host_uts: false,
        oom_score_adj: None,
        shm_size: None,
        devices: vec![],
        ipc: Default::default(),
        host_pid: false,
    }
}

fn next() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static C: AtomicU32 = AtomicU32::new(0);
    C.fetch_add(1, Ordering::Relaxed)
}

fn opts(env: &Env) -> StartOptions {
    StartOptions {
        seccomp_cache_dir: env.cache.clone(),
        capture_output: false,
    }
}

/// Run a container with fds 1 and 2 redirected to a file; returns (status or error, output).
fn run(env: &Env, s: &ContainerSpec) -> (Result<ExitStatus, StartError>, String) {
    let mut f = tempfile::tempfile().expect("tempfile");
    let saved1 = nix::unistd::dup(1).expect("dup");
    let saved2 = nix::unistd::dup(2).expect("dup");
    nix::unistd::dup2(f.as_raw_fd(), 1).expect("dup2");
    nix::unistd::dup2(f.as_raw_fd(), 2).expect("dup2");
    let r = start(s, &opts(env)).and_then(|r| r.wait_foreground());
    nix::unistd::dup2(saved1, 1).expect("dup2");
    nix::unistd::dup2(saved2, 2).expect("dup2");
    let _ = nix::unistd::close(saved1);
    let _ = nix::unistd::close(saved2);
    let mut out = String::new();
    f.rewind().expect("rewind");
    f.read_to_string(&mut out).expect("read");
    (r, out)
}

type TestResult = Result<(), String>;
type TestFn = fn(&Env) -> TestResult;

fn check(cond: bool, what: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn expect_exit(env: &Env, s: &ContainerSpec, code: i32) -> Result<String, String> {
    let (r, out) = run(env, s);
    match r {
        Ok(st) if st.code() == code => Ok(out),
        Ok(st) => Err(format!("expected exit {code}, got {st:?}; output: {out}")),
        Err(e) => Err(format!(
            "start failed: {e} (exit {}); output: {out}",
            e.exit_code()
        )),
    }
}

fn t_echo(env: &Env) -> TestResult {
    let out = expect_exit(env, &spec(env, &["echo", "hello"]), 0)?;
    check(out == "hello\n", || format!("output {out:?}"))
}

fn t_exit_code(env: &Env) -> TestResult {
    expect_exit(env, &spec(env, &["sh", "-c", "exit 3"]), 3).map(drop)
}

fn t_killed_by_signal(env: &Env) -> TestResult {
    let s = spec(env, &["sleep", "10"]);
    let r = start(&s, &opts(env)).map_err(|e| e.to_string())?;
    r.kill(9).map_err(|e| e.to_string())?;
    let st = r.wait_foreground().map_err(|e| e.to_string())?;
    check(st == ExitStatus::Signaled(9) && st.code() == 137, || {
        format!("{st:?}")
    })
}

fn t_not_found(env: &Env) -> TestResult {
    use wharf_types::error::{ErrorKind, HasKind};
    let (r, _) = run(env, &spec(env, &["nosuch"]));
    match r {
        Err(e) => check(
            e.exit_code() == 127
                && e.kind() == ErrorKind::CommandNotFound
                && e.to_string() == "exec: \"nosuch\": executable file not found in $PATH",
            || format!("{e} / {}", e.exit_code()),
        ),
        Ok(st) => Err(format!("started: {st:?}")),
    }?;
    // an absolute entrypoint that does not exist: execve's ENOENT
    let (r, _) = run(env, &spec(env, &["/no/such/entrypoint"]));
    match r {
        Err(e) => check(
            e.kind() == ErrorKind::CommandNotFound
                && e.exit_code() == 127
                && e.to_string().contains("no such file or directory"),
            || format!("{e} / {:?}", e.kind()),
        ),
        Ok(st) => Err(format!("started: {st:?}")),
    }
}

fn t_not_executable(env: &Env) -> TestResult {
    let (r, _) = run(env, &spec(env, &["/etc/noexec"]));
    match r {
        Err(e) => check(
            e.exit_code() == 126
                && wharf_types::error::HasKind::kind(&e)
                    == wharf_types::ErrorKind::CommandNotExecutable
                && e.to_string().contains("permission denied"),
            || format!("{e} / {}", e.exit_code()),
        ),
        Ok(st) => Err(format!("started: {st:?}")),
    }
}

fn t_env_cwd_user(env: &Env) -> TestResult {
    let out = expect_exit(env, &spec(env, &["env"]), 0)?;
    check(
        out.contains("FOO=bar\n") && out.contains("HOME=/root\n"),
        || out.clone(),
    )?;
    let mut s = spec(env, &["pwd"]);
    s.process.cwd = "/work/dir".into();
    let out = expect_exit(env, &s, 0)?;
    check(out == "/work/dir\n", || out.clone())?;
    let mut s = spec(env, &["id"]);
    s.process.user = "nobody".into();
    let out = expect_exit(env, &s, 0)?;
    check(
        out.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        || out.clone(),
    )?;
    let mut s = spec(env, &["id"]);
    s.process.user = "ghost".into();
    match run(env, &s).0 {
        Err(e) => check(
            e.to_string() == "unable to find user ghost: no matching entries in passwd file"
                && e.exit_code() == 125,
            || e.to_string(),
        ),
        Ok(st) => Err(format!("started as unknown user: {st:?}")),
    }
}

fn t_hostname(env: &Env) -> TestResult {
    let out = expect_exit(env, &spec(env, &["hostname"]), 0)?;
    check(out == "wharftest\n", || out.clone())
}

fn t_confinement(env: &Env) -> TestResult {
    let (r, out) = run(
        env,
        &spec(env, &["sh", "-c", "echo h > /proc/sysrq-trigger"]),
    );
    check(matches!(r, Ok(st) if st.code() != 0), || {
        format!("sysrq writable: {r:?} {out}")
    })?;
    let (r, out) = run(env, &spec(env, &["mount", "-t", "tmpfs", "none", "/mnt"]));
    check(matches!(r, Ok(st) if st.code() != 0), || {
        format!("mount worked: {r:?} {out}")
    })?;
    let (r, out) = run(env, &spec(env, &["reboot", "-f"]));
    check(matches!(r, Ok(st) if st.code() != 0), || {
        format!("reboot worked: {r:?} {out}")
    })?;
    let out = expect_exit(env, &spec(env, &["grep", "CapEff", "/proc/self/status"]), 0)?;
    check(out == "CapEff:\t00000000a80425fb\n", || out.clone())
}

fn t_no_new_privs_seccomp(env: &Env) -> TestResult {
    let mut s = spec(
        env,
        &["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"],
    );
    s.security.no_new_privileges = true;
    s.process.user = "nobody".into();
    let out = expect_exit(env, &s, 0)?;
    check(out == "NoNewPrivs:\t1\nSeccomp:\t2\n", || {
        format!("{out:?}")
    })?;
    let out = expect_exit(
        env,
        &spec(
            env,
            &["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"],
        ),
        0,
    )?;
    check(out == "NoNewPrivs:\t0\nSeccomp:\t2\n", || {
        format!("{out:?}")
    })
}

fn t_tty(env: &Env) -> TestResult {
    let mut s = spec(env, &["sh", "-c", "tty; echo ttyout"]);
    s.process.terminal = true;
    let out = expect_exit(env, &s, 0)?;
    check(out.contains("/dev/pts/0") && out.contains("ttyout"), || {
        format!("{out:?}")
    })
}

fn t_readonly_rootfs(env: &Env) -> TestResult {
    let mut s = spec(env, &["touch", "/x"]);
    s.rootfs.readonly = true;
    let (r, out) = run(env, &s);
    check(
        matches!(r, Ok(st) if st.code() != 0) && out.contains("Read-only"),
        || format!("{r:?} {out}"),
    )?;
    let mut s = spec(env, &["touch", "/dev/shm/x"]);
    s.rootfs.readonly = true;
    expect_exit(env, &s, 0).map(drop)
}

fn t_tmpfs_and_bind(env: &Env) -> TestResult {
    let host = env.scratch.join(format!("bind{}", next()));
    std::fs::create_dir_all(&host).map_err(|e| e.to_string())?;
    std::fs::write(host.join("f"), "from-host\n").map_err(|e| e.to_string())?;
    let mut s = spec(
        env,
        &[
            "sh",
            "-c",
            "grep ' /data ' /proc/mounts && cat /mnt/b/f && touch /data/ok && ! touch /mnt/b/g",
        ],
    );
    s.mounts = vec![
        Mount {
            kind: MountKind::Tmpfs,
            source: PathBuf::new(),
            destination: "/data".into(),
            readonly: false,
            options: "size=1m,mode=1777".into(),
        },
        Mount {
            kind: MountKind::Bind,
            source: host.clone(),
            destination: "/mnt/b".into(),
            readonly: true,
            options: String::new(),
        },
    ];
    let out = expect_exit(env, &s, 0)?;
    check(
        out.contains("tmpfs /data tmpfs") && out.contains("from-host"),
        || out.clone(),
    )?;
    check(!host.join("g").exists(), || "write through ro bind".into())
}

fn t_symlink_escape(env: &Env) -> TestResult {
    let _ = std::fs::remove_file(&env.escape);
    let src = env.scratch.join(format!("hosts{}", next()));
    std::fs::write(&src, "127.0.0.1 bound\n").map_err(|e| e.to_string())?;
    let mut s = spec(env, &["cat", "/etc/hosts"]);
    s.mounts = vec![Mount {
        kind: MountKind::Bind,
        source: src,
        destination: "/etc/hosts".into(),
        readonly: false,
        options: String::new(),
    }];
    let upper = s.rootfs.upper.clone();
    let out = expect_exit(env, &s, 0)?;
    check(out == "127.0.0.1 bound\n", || out.clone())?;
    check(!env.escape.exists(), || {
        format!("host file {} was created", env.escape.display())
    })?;
    let inside = upper.join(env.escape.strip_prefix("/").unwrap_or(Path::new("")));
    check(inside.exists(), || {
        format!("{} not created inside the rootfs", inside.display())
    })
}

fn t_init(env: &Env) -> TestResult {
    // The orphan is reparented to pid 1 (tiny init) which must reap it: no zombie remains.
    let script = "(sleep 0 &) ; sleep 0.2; for f in /proc/[0-9]*/stat; do read l < $f; case \"$l\" in *') Z '*) echo zombie; exit 9;; esac; done; exit 7";
    let mut s = spec(env, &["sh", "-c", script]);
    s.init = true;
    expect_exit(env, &s, 7)?;
    let mut s = spec(env, &["sh", "-c", "kill -9 $$"]);
    s.init = true;
    expect_exit(env, &s, 137).map(drop)
}

fn t_fallbacks(_env: &Env) -> TestResult {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .arg("__fallback_child")
        .env("WHARF_DISABLE", "clone3,mountapi,openat2")
        .env("WHARF_TEST_CGROUP_PARENT", test_cgroup_parent())
        .output()
        .map_err(|e| e.to_string())?;
    let so = String::from_utf8_lossy(&out.stdout);
    check(out.status.success() && so.contains("fallback-ok"), || {
        format!(
            "{:?} {so} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs in a child process with WHARF_DISABLE set: every fallback path in one container.
fn fallback_child() -> i32 {
    let env = build_env();
    let _ = std::fs::remove_file(&env.escape);
    let src = env.scratch.join("hosts");
    let _ = std::fs::create_dir_all(&env.scratch);
    let _ = std::fs::write(&src, "fallback-hosts\n");
    let mut s = spec(
        &env,
        &[
            "sh",
            "-c",
            "cat /etc/hosts && ! touch /etc/hosts && echo fallback-ok",
        ],
    );
    s.mounts = vec![Mount {
        kind: MountKind::Bind,
        source: src,
        destination: "/etc/hosts".into(),
        readonly: true,
        options: String::new(),
    }];
    match start(&s, &opts(&env)).and_then(|r| r.wait_foreground()) {
        Ok(st) if env.escape.exists() => {
            eprintln!("escaped ({st:?})");
            1
        }
        Ok(st) => st.code(),
        Err(e) => {
            eprintln!("fallback start: {e}");
            1
        }
    }
}

fn t_rlimit_clamp(env: &Env) -> TestResult {
    let mut s = spec(env, &["sh", "-c", "ulimit -n; ulimit -Hn"]);
    s.rlimits = vec![Rlimit {
        resource: wharf_types::container::RlimitResource::Nofile,
        soft: 4096,
        hard: 1 << 30,
    }];
    s.debug = true;
    let out = expect_exit(env, &s, 0)?;
    check(out.contains("clamped") && out.contains("4096\n"), || {
        out.clone()
    })
}

fn t_cgroup(env: &Env) -> TestResult {
    let s = spec(env, &["sleep", "10"]);
    let r = start(&s, &opts(env)).map_err(|e| e.to_string())?;
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", r.pid())).unwrap_or_default();
    let inside = cg.contains(&s.cgroup.path);
    r.kill(9).map_err(|e| e.to_string())?;
    r.wait_foreground().map_err(|e| e.to_string())?;
    check(inside, || {
        format!("pid not in cgroup {}: {cg}", s.cgroup.path)
    })?;
    let leftover: Vec<String> = cgroup_dirs()
        .into_iter()
        .filter(|d| d.ends_with(&s.cgroup.path))
        .collect();
    check(leftover.is_empty(), || format!("cgroup left: {leftover:?}"))
}

/// This test process's own cgroup parent (`wharf-test-<pid>`): another run on the same host
/// has its own.
fn test_cgroup_parent() -> String {
    std::env::var("WHARF_TEST_CGROUP_PARENT")
        .unwrap_or_else(|_| format!("wharf-test-{}", std::process::id()))
}

/// Every `wharf-test-<pid>/<id>` directory of this process under any cgroup hierarchy.
fn cgroup_dirs() -> Vec<String> {
    let mut v = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let parent = ctrl.path().join(test_cgroup_parent());
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                v.push(e.path().display().to_string());
            }
        }
    }
    v
}

fn t_bench(env: &Env) -> TestResult {
    let mut times = Vec::new();
    for _ in 0..20 {
        let s = spec(env, &["true"]);
        let t = Instant::now();
        let st = start(&s, &opts(env))
            .and_then(|r| r.wait_foreground())
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        check(st.code() == 0, || format!("{st:?}"))?;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "bench: start+wait `true` median {:.2} ms (min {:.2}, max {:.2})",
        times[10], times[0], times[19]
    );
    Ok(())
}

/// Container inits this test process started and left behind: its own children still
/// running as `wharf __init` (other wharf containers on the host, e.g. with `--init`, are not
/// ours to count).
/// Bridge networking: the veth's container end is born in the container's namespace as
/// `eth0`, configured by init (address, MAC, route, up), reaches the bridge's address on the
/// host; the host end is on the bridge while the container runs and gone after it exits.
fn t_bridge(env: &Env) -> TestResult {
    use std::net::{IpAddr, Ipv4Addr};
    use wharf_sys::netlink::{link, Family, Socket};
    let mut sock = Socket::open(Family::Route).map_err(|e| e.to_string())?;
    let bridge = format!("wrt{}", std::process::id() % 100_000);
    let host_veth = format!("wrv{}", std::process::id() % 100_000);
    let _ = link::delete(&mut sock, &bridge);
    link::create_bridge(&mut sock, &bridge, None).map_err(|e| e.to_string())?;
    let res = (|| {
        let br = link::index(&mut sock, &bridge).map_err(|e| e.to_string())?;
        let gw = IpAddr::V4(Ipv4Addr::new(10, 213, 77, 1));
        link::add_address(&mut sock, br, gw, 24).map_err(|e| e.to_string())?;
        link::set_up(&mut sock, br).map_err(|e| e.to_string())?;
        let ip = IpAddr::V4(Ipv4Addr::new(10, 213, 77, 2));
        let mut s = spec(
            env,
            &[
                "sh",
                "-c",
                "ip -o -4 addr show eth0; ip link show eth0; ip route; ping -c1 -W3 10.213.77.1 >/dev/null && echo PING-OK",
            ],
        );
        s.network = Network::Bridge(vec![BridgeNet {
            bridge: bridge.clone(),
            host_veth: host_veth.clone(),
            ifname: "eth0".into(),
            addresses: vec![(ip, 24)],
            gateway: Some(gw),
            gateway6: None,
            mac: wharf_runtime::net::mac_for(ip),
            mtu: Some(1450),
            hairpin: true,
        }]);
        // a leftover host end of the same name (a container that died unreaped) is replaced
        let peer = format!("wrp{}", std::process::id() % 100_000);
        link::create_veth(&mut sock, &host_veth, &peer, None, None).map_err(|e| e.to_string())?;
        let out = expect_exit(env, &s, 0)?;
        check(
            link::get(&mut sock, &peer)
                .map_err(|e| e.to_string())?
                .is_none(),
            || format!("leftover {host_veth}/{peer} still there"),
        )?;
        check(out.contains("inet 10.213.77.2/24"), || {
            format!("address: {out}")
        })?;
        check(out.contains("02:42:0a:d5:4d:02"), || format!("mac: {out}"))?;
        check(out.contains("mtu 1450"), || format!("mtu: {out}"))?;
        check(out.contains("default via 10.213.77.1 dev eth0"), || {
            format!("route: {out}")
        })?;
        check(out.contains("PING-OK"), || format!("ping: {out}"))?;
        // the host end goes with the namespace
        let t = Instant::now();
        while link::get(&mut sock, &host_veth)
            .map_err(|e| e.to_string())?
            .is_some()
        {
            if t.elapsed().as_secs() > 5 {
                return Err(format!("host end {host_veth} still there after exit"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // a bridge that does not exist fails the start with the interface named
        let mut s = spec(env, &["true"]);
        s.network = Network::Bridge(vec![BridgeNet {
            bridge: "nosuchbr0".into(),
            host_veth: host_veth.clone(),
            ifname: "eth0".into(),
            addresses: vec![(ip, 24)],
            gateway: Some(gw),
            gateway6: None,
            mac: None,
            mtu: None,
            hairpin: false,
        }]);
        let (r, _) = run(env, &s);
        match r {
            Err(e) => {
                let chain = format!(
                    "{e}: {}",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                );
                check(chain.contains("nosuchbr0"), || chain.clone())
            }
            Ok(st) => Err(format!("started without its bridge: {st:?}")),
        }
    })();
    let _ = link::delete(&mut sock, &bridge);
    res
}

fn leftover_inits() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .unwrap_or_default();
            if ppid != me {
                continue;
            }
            if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                if c.starts_with(b"wharf\0__init") {
                    v.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    v
}

fn main() {
    let arg1 = std::env::args().nth(1);
    match arg1.as_deref() {
        Some("__init") => wharf_runtime::init::init_main(),
        Some("__fallback_child") => {
            let code = fallback_child();
            std::process::exit(code);
        }
        _ => {}
    }
    let filter = arg1.filter(|a| !a.starts_with('-'));
    let env = build_env();
    let mountinfo_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let tests: &[(&str, TestFn)] = &[
        ("echo", t_echo),
        ("exit_code", t_exit_code),
        ("killed_by_signal", t_killed_by_signal),
        ("not_found_127", t_not_found),
        ("not_executable_126", t_not_executable),
        ("env_cwd_user", t_env_cwd_user),
        ("hostname", t_hostname),
        ("confinement_sysrq_mount_reboot_capeff", t_confinement),
        ("no_new_privs_and_seccomp_as_nobody", t_no_new_privs_seccomp),
        ("tty_without_caller_tty", t_tty),
        ("readonly_rootfs", t_readonly_rootfs),
        ("tmpfs_and_readonly_bind", t_tmpfs_and_bind),
        ("symlink_escape_bind_lands_inside", t_symlink_escape),
        ("init_reaps_and_propagates", t_init),
        ("rlimit_clamped_without_cap_sys_resource", t_rlimit_clamp),
        ("fallbacks_clone3_mountapi_openat2", t_fallbacks),
        ("cgroup_joined_and_removed", t_cgroup),
        ("bridge_veth_address_route", t_bridge),
        ("bench_start_wait", t_bench),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in tests {
        if filter.as_deref().is_some_and(|flt| !name.contains(flt)) {
            continue;
        }
        let t = Instant::now();
        match f(&env) {
            Ok(()) => {
                passed += 1;
                println!(
                    "test {name} ... ok ({:.0} ms)",
                    t.elapsed().as_secs_f64() * 1000.0
                );
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    let mountinfo_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if mountinfo_before == mountinfo_after {
        passed += 1;
        println!("test no_leftover_mounts ... ok");
    } else {
        failed += 1;
        println!("test no_leftover_mounts ... FAILED");
    }
    let left = leftover_inits();
    if left.is_empty() {
        passed += 1;
        println!("test no_leftover_processes ... ok");
    } else {
        failed += 1;
        println!("test no_leftover_processes ... FAILED: pids {left:?}");
    }
    let cgs = cgroup_dirs();
    if cgs.is_empty() {
        passed += 1;
        println!("test no_leftover_cgroups ... ok");
    } else {
        failed += 1;
        println!("test no_leftover_cgroups ... FAILED: {cgs:?}");
    }
    for ctrl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(ctrl.path().join(test_cgroup_parent()));
    }
    let _ = std::fs::remove_file(&env.escape);
    println!("{passed} passed, {failed} failed");
    std::process::exit(i32::from(failed > 0));
}
