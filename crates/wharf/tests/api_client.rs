//! The wharf CLI as an Engine API client: endpoint selection (`-H`, `DOCKER_HOST`,
//! `--context`/`DOCKER_CONTEXT`/`docker context use` with contexts made by the real docker
//! CLI), remote output equal to local mode's, docker's exit codes, a non-root user through
//! the socket with no flag (and no access to the store's files), and the same client
//! against a private dockerd.

mod common;

use common::api::{docker_bin, Service};
use common::{stderr, stdout, Wharf};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn host(s: &Service) -> String {
    format!("unix://{}", s.sock.display())
}

/// `wharf ARGS` with `client`'s store as the local one (so an answer from the server's
/// store proves the command went remote) and `env` added.
fn client(client: &Wharf, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = client.command(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("spawn wharf")
}

fn names(o: &Output) -> String {
    assert!(o.status.success(), "{} {}", stdout(o), stderr(o));
    stdout(o)
}

#[test]
fn host_env_and_contexts_select_the_endpoint() {
    let w = Wharf::new().with_busybox();
    w.ok(&["create", "--name", "only-in-server", "busybox", "true"]);
    let s = Service::start(&w, &[]);
    let other = Wharf::new();
    let h = host(&s);
    let ps = ["ps", "-a", "--format", "{{.Names}}"];
    // no endpoint: root's local store (empty)
    assert_eq!(names(&client(&other, &ps, &[])), "");
    let mut args = vec!["-H", h.as_str()];
    args.extend(ps);
    assert_eq!(names(&client(&other, &args, &[])), "only-in-server\n");
    assert_eq!(
        names(&client(&other, &ps, &[("DOCKER_HOST", &h)])),
        "only-in-server\n"
    );
    // a context made by the real docker CLI
    let cfg = common::tmp_dir("wharf-client-docker-config-");
    let cfgp = cfg.path().to_str().expect("utf-8").to_string();
    let dk = |a: &[&str]| {
        let o = Command::new(docker_bin())
            .args(a)
            .env("DOCKER_CONFIG", &cfgp)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("docker");
        assert!(o.status.success(), "docker {a:?}: {}", stderr(&o));
    };
    dk(&["context", "create", "wx", "--docker", &format!("host={h}")]);
    let env = [("DOCKER_CONFIG", cfgp.as_str())];
    let mut args = vec!["--context", "wx"];
    args.extend(ps);
    assert_eq!(names(&client(&other, &args, &env)), "only-in-server\n");
    let envc = [("DOCKER_CONFIG", cfgp.as_str()), ("DOCKER_CONTEXT", "wx")];
    assert_eq!(names(&client(&other, &ps, &envc)), "only-in-server\n");
    // DOCKER_HOST beats DOCKER_CONTEXT; `--context default` is the local store
    let envh = [
        ("DOCKER_CONFIG", cfgp.as_str()),
        ("DOCKER_CONTEXT", "nope"),
        ("DOCKER_HOST", h.as_str()),
    ];
    assert_eq!(names(&client(&other, &ps, &envh)), "only-in-server\n");
    let mut args = vec!["--context", "default"];
    args.extend(ps);
    assert_eq!(names(&client(&other, &args, &env)), "");
    // `docker context use` → currentContext
    dk(&["context", "use", "wx"]);
    assert_eq!(names(&client(&other, &ps, &env)), "only-in-server\n");
    // refusals: -H with --context, tcp://, an unknown context
    let o = client(&other, &["-H", &h, "--context", "wx", "ps"], &env);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("conflicting options"), "{}", stderr(&o));
    let o = client(&other, &["-H", "tcp://127.0.0.1:2375", "ps"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("only unix://"), "{}", stderr(&o));
    let o = client(&other, &["--context", "missing", "ps"], &env);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("context \"missing\" does not exist"),
        "{}",
        stderr(&o)
    );
    // a command without a remote version is refused, never run locally
    let o = client(&other, &["-H", &h, "system", "df"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        format!("wharf: \"system df\" is not available through the API endpoint ({h}) yet")
    );
    w.ok(&["rm", "only-in-server"]);
}

/// Remote output equals local output (a relative time may tick between the two: one retry).
fn same_output(w: &Wharf, h: &str, args: &[&str]) {
    let mut remote = vec!["-H", h];
    remote.extend_from_slice(args);
    for attempt in 0..3 {
        let local = w.ok(args);
        let o = w.run(&remote);
        assert!(o.status.success(), "{remote:?}: {}", stderr(&o));
        if stdout(&o) == local {
            return;
        }
        assert!(
            attempt < 2,
            "{args:?}\nlocal:\n{local}\nremote:\n{}",
            stdout(&o)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn output_equals_local_mode() {
    let w = Wharf::new().with_busybox();
    w.ok(&["tag", "busybox", "bb:two"]);
    w.run(&[
        "run", "--name", "done3", "--label", "a=b", "busybox", "sh", "-c", "exit 3",
    ]);
    w.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sleep",
        "30",
    ]);
    let s = Service::start(&w, &[]);
    let h = host(&s);
    for args in [
        &["ps"][..],
        &["ps", "-a"],
        &["ps", "-a", "--no-trunc"],
        &["ps", "-aq"],
        &["ps", "-l"],
        &[
            "ps",
            "-a",
            "--filter",
            "label=a=b",
            "--format",
            "{{.Names}} {{.Labels}} {{.State}}",
        ],
        &[
            "ps",
            "-a",
            "--format",
            "table {{.ID}}\t{{.Command}}\t{{.Ports}}",
        ],
        &["images"],
        &["images", "-q"],
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ],
        &["images", "busybox"],
        &["inspect", "done3"],
        &["inspect", "busybox"],
        &[
            "inspect",
            "--format",
            "{{.State.ExitCode}} {{.Name}}",
            "done3",
        ],
        &["image", "inspect", "bb:two"],
        &["volume", "ls"],
    ] {
        same_output(&w, &h, args);
    }
    w.ok(&["rm", "-f", "up", "done3"]);
}

#[test]
fn containers_through_the_api_and_exit_codes() {
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let h = host(&s);
    let r = |args: &[&str]| {
        let mut a = vec!["-H", h.as_str()];
        a.extend_from_slice(args);
        w.run(&a)
    };
    let o = r(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "hi\n"),
        "{}",
        stderr(&o)
    );
    let o = r(&[
        "run",
        "--name",
        "three",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // logs: stdout and stderr apart, --tail
    let o = r(&["logs", "three"]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    // stdin piped, closed with the client's input
    let mut c = w.command(&["-H", &h, "run", "-i", "--rm", "busybox", "cat"]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut i = child.stdin.take().expect("stdin");
        i.write_all(b"piped\n").expect("write");
    }
    let o = child.wait_with_output().expect("wait");
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "piped\n"));
    // detached, exec (-e -w -u, exit code, a missing command), stop, wait, rm
    let o = r(&["run", "-d", "--name", "bg", "busybox", "sleep", "60"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim().len(), 64);
    let o = r(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "65534",
        "bg",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u); exit 4",
    ]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(4), "1 /tmp 65534\n"),
        "{}",
        stderr(&o)
    );
    // docker: an exec whose command cannot start exits 126 (a run's 127)
    let o = r(&["exec", "bg", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    let o = r(&["top", "bg"]);
    assert!(stdout(&o).contains("sleep 60"), "{}", stdout(&o));
    let o = r(&["pause", "bg"]);
    assert_eq!(stdout(&o), "bg\n");
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.State.Status}}", "bg"]),
        "paused\n"
    );
    r(&["unpause", "bg"]);
    let o = r(&["kill", "bg"]);
    assert_eq!(stdout(&o), "bg\n");
    let o = r(&["wait", "bg"]);
    assert_eq!(stdout(&o), "137\n");
    let o = r(&["rename", "bg", "bg2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // create + start -a: the container's exit code
    let o = r(&[
        "create",
        "--name",
        "later",
        "busybox",
        "sh",
        "-c",
        "echo started; exit 5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r(&["start", "-a", "later"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(5), "started\n")
    );
    let o = r(&["rm", "three", "bg2", "later"]);
    assert_eq!(stdout(&o), "three\nbg2\nlater\n", "{}", stderr(&o));
    // docker's codes: missing image 125 (run), missing container 1, a refused create 125
    let o = r(&["run", "--rm", "--pull", "never", "no-such-image:1"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{}",
        stderr(&o)
    );
    let o = r(&["rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error response from daemon: No such container: nosuch\n"
    );
    let o = r(&["stop", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    let o = r(&["run", "--rm", "--memory", "1k", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let o = r(&["run", "--rm", "-m", "lots", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    // volumes and networks
    assert_eq!(stdout(&r(&["volume", "create", "vq1"])), "vq1\n");
    assert!(stdout(&r(&["volume", "inspect", "vq1"])).contains("\"Name\": \"vq1\""));
    assert_eq!(stdout(&r(&["volume", "rm", "vq1"])), "vq1\n");
    let o = r(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(stdout(&o).contains("bridge\n"), "{}", stdout(&o));
    // version: Client and Server blocks
    let o = r(&["version"]);
    let v = stdout(&o);
    assert!(
        v.starts_with("Client:\n") && v.contains("\nServer: wharf\n"),
        "{v}"
    );
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

/// The run root and the socket in it, reachable by others: `<dir>` 0711.
fn service_in_run_root(w: &Wharf, env: &[(&str, &Path)]) -> (std::process::Child, String) {
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    std::fs::create_dir_all(w.run_root()).expect("run root");
    let sock = w.run_root().join("wharf.sock");
    let h = format!("unix://{}", sock.display());
    let mut cmd = w.command(&["system", "service", "-H", &h, "--group", "nogroup"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn service");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "the service did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, h)
}

/// `wharf ARGS` as uid 65534 with `gid`, a clean environment, `w`'s run root.
fn as_nobody(w: &Wharf, gid: u32, args: &[&str]) -> Output {
    Command::new(Wharf::bin())
        .args(args)
        .env_clear()
        .env("WHARF_RUNROOT", w.run_root())
        .uid(65534)
        .gid(gid)
        .stdin(Stdio::null())
        .output()
        .expect("spawn wharf as nobody")
}

#[test]
fn non_root_user_goes_through_the_socket_with_no_flag() {
    let w = Wharf::new().with_busybox();
    let policy = w.dir.path().join("policy.toml");
    std::fs::write(&policy, "[run]\nprivileged = false\n").expect("policy");
    let audit = w.dir.path().join("log").join("audit.log");
    let (mut child, h) = service_in_run_root(
        &w,
        &[("WHARF_POLICY", &policy), ("WHARF_AUDIT_LOG", &audit)],
    );
    let stop = scopeguard(&mut child);
    // a member of the socket's group (nobody:nogroup): no flag needed
    let o = as_nobody(&w, 65534, &["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "hi\n"),
        "{}",
        stderr(&o)
    );
    let o = as_nobody(
        &w,
        65534,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    assert_eq!(stdout(&o), "busybox:latest\n", "{}", stderr(&o));
    let o = as_nobody(&w, 65534, &["ps", "-a"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("CONTAINER ID"), "{}", stdout(&o));
    let o = as_nobody(
        &w,
        65534,
        &["run", "--rm", "--privileged", "busybox", "true"],
    );
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    // the audit log names the non-root caller
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .expect("audit log")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["caller_uid"] == 65534 && l["result"] == "refused"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["caller_uid"] == 65534 && l["result"] != "refused"),
        "{lines:?}"
    );
    // not a member of the group: a clear error naming the socket and the group
    let o = as_nobody(&w, 12345, &["ps"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&h)
            && e.contains("group (wharf)")
            && e.contains("permission denied: not a member"),
        "{e}"
    );
    // nothing of the store is readable for a non-root uid
    let mode = std::fs::metadata(w.root())
        .expect("root")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "store root mode {mode:o}");
    let run_mode = std::fs::metadata(w.run_root())
        .expect("run")
        .permissions()
        .mode();
    assert_eq!(run_mode & 0o777, 0o711, "run root mode {run_mode:o}");
    for f in ["meta/images.json", "wharf.json"] {
        let o = Command::new("cat")
            .arg(w.root().join(f))
            .uid(65534)
            .gid(65534)
            .output()
            .expect("cat");
        assert!(!o.status.success(), "nobody read {f}");
    }
    let o = Command::new("ls")
        .arg(w.run_root())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("ls");
    assert!(!o.status.success(), "nobody listed the run root");
    drop(stop);
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

/// Stops the service when dropped.
struct Stop<'a>(&'a mut std::process::Child);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

fn scopeguard(c: &mut std::process::Child) -> Stop<'_> {
    Stop(c)
}

#[test]
fn speaks_the_real_docker_api() {
    let Some(d) = common::dockerd::Dockerd::start() else {
        eprintln!("skipped: no dockerd here");
        return;
    };
    let w = Wharf::new();
    let tar = w.dir.path().join("busybox.tar");
    common::write_busybox_tar(&tar);
    d.ok(&["import", tar.to_str().expect("utf-8"), "busybox:latest"]);
    let h = d.host();
    let r = |args: &[&str]| {
        let mut a = vec!["-H", h.as_str()];
        a.extend_from_slice(args);
        w.run(&a)
    };
    let o = r(&["version"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\nServer:"), "{}", stdout(&o));
    let o = r(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(stdout(&o), "busybox:latest\n", "{}", stderr(&o));
    let o = r(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "hi\n"),
        "{}",
        stderr(&o)
    );
    let o = r(&[
        "run",
        "--name",
        "x3",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = r(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(stdout(&o), "x3 exited\n", "{}", stderr(&o));
    // wharf's ps of dockerd's state matches docker's own
    let ours = stdout(&r(&[
        "ps",
        "-a",
        "--format",
        "{{.ID}} {{.Image}} {{.Command}} {{.Names}}",
    ]));
    let theirs = d.ok(&[
        "ps",
        "-a",
        "--format",
        "{{.ID}} {{.Image}} {{.Command}} {{.Names}}",
    ]);
    assert_eq!(ours, theirs);
    let o = r(&["rm", "x3"]);
    assert_eq!(stdout(&o), "x3\n", "{}", stderr(&o));
    let o = r(&["rm", "x3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Error response from daemon: No such container"),
        "{}",
        stderr(&o)
    );
}

fn read_until(master: &mut std::fs::File, needle: &str, timeout: Duration) -> String {
    use std::io::Read;
    use std::os::fd::AsFd;
    let deadline = Instant::now() + timeout;
    let mut acc = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !String::from_utf8_lossy(&acc).contains(needle) {
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLIN))
        {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => acc.extend_from_slice(&buf[..n]),
            }
        }
    }
    String::from_utf8_lossy(&acc).into_owned()
}

/// `run -it` and `exec -it` through the API on a real pty: raw terminal, the terminal's
/// size sent, the exit code back.
#[test]
fn run_and_exec_it_on_a_real_tty_through_the_api() {
    use std::io::Write;
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let h = host(&s);
    w.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "60"]);
    for args in [
        vec!["-H", h.as_str(), "run", "--rm", "-it", "busybox", "sh"],
        vec!["-H", h.as_str(), "exec", "-it", "box", "sh"],
    ] {
        let pty = nix::pty::openpty(
            Some(&nix::pty::Winsize {
                ws_row: 33,
                ws_col: 111,
                ws_xpixel: 0,
                ws_ypixel: 0,
            }),
            None,
        )
        .expect("openpty");
        let slave = pty.slave;
        let mut master = std::fs::File::from(pty.master);
        let mut child = w
            .command(&args)
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("spawn");
        master
            .write_all(b"echo MARK-$((40+2)); tty; stty size; exit 5\n")
            .expect("type");
        let out = read_until(&mut master, "33 111", Duration::from_secs(15));
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{args:?} did not exit; output so far: {out:?}");
            }
            let _ = read_until(&mut master, "\u{0}", Duration::from_millis(50));
        };
        assert!(out.contains("MARK-42"), "{args:?}: {out:?}");
        assert!(out.contains("/dev/pts/"), "{args:?}: {out:?}");
        assert!(out.contains("33 111"), "{args:?}: {out:?}");
        assert_eq!(status.code(), Some(5), "{args:?}: {out:?}");
    }
    w.ok(&["rm", "-f", "box"]);
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

/// `pull` through the API (docker's progress stream rendered as local mode renders it), and
/// `run` pulling a missing image first, from wharf's own registry on loopback.
#[test]
fn pull_and_run_pull_through_the_api() {
    let w = Wharf::new().with_busybox();
    let port = common::registry::free_port("127.0.0.1");
    let addr = format!("127.0.0.1:{port}");
    let mut reg = Command::new(Wharf::bin());
    reg.args(["registry", "serve", "--addr", &addr, "--root"])
        .arg(w.dir.path().join("reg"));
    let _reg = common::registry::Serve::start(reg);
    let name = format!("{addr}/bb:v1");
    w.ok(&["tag", "busybox", &name]);
    w.ok(&["push", &name]);
    w.ok(&["rmi", &name]);
    let s = Service::start(&w, &[]);
    let h = host(&s);
    let o = w.run(&["-H", &h, "pull", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Pull complete") && out.contains("Status: Downloaded newer image"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(name.as_str()), "{out}");
    assert_eq!(w.ok(&["images", "-q", &name]).lines().count(), 1);
    w.ok(&["rmi", &name]);
    let o = w.run(&["-H", &h, "run", "--rm", &name, "echo", "pulled"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "pulled\n"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).starts_with(&format!("Unable to find image '{name}' locally")),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["-H", &h, "pull", &format!("{addr}/nosuch:v1")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{}",
        stderr(&o)
    );
}
