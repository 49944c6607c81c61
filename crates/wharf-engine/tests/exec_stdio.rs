//! Exec with caller-supplied stdio, driven through the engine's typed API as an Engine API
//! server would: pipes and a socketpair as the command's stdin/stdout/stderr, a pty whose
//! master comes back to the caller (with its size and a resize), the exit code, and the
//! container's own output untouched. Needs root and a real kernel.
//!
//! harness = false: /proc/self/exe is this binary, so it dispatches the hidden `__init`,
//! `__exec` and `__monitor` entrypoints like the `wharf` binary does.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use wharf_engine::create::CreateRequest;
use wharf_engine::exec::{ExecRequest, ExecStdio};
use wharf_engine::{Engine, EngineOptions};
use wharf_types::error::{ErrorKind, HasKind};

const APPLETS: &[&str] = &["sh", "echo", "cat", "sleep", "true", "tty", "stty", "read"];

fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    };
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, std::io::empty()).expect("dir");
    }
    let data = std::fs::read("/bin/busybox").expect("busybox-static at /bin/busybox");
    let mut h = header(tar::EntryType::Regular, 0o755, data.len() as u64);
    b.append_data(&mut h, "bin/busybox", &data[..])
        .expect("busybox");
    for a in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .expect("link");
    }
    for (name, content) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, content.len() as u64);
        b.append_data(&mut h, name, content.as_bytes())
            .expect("file");
    }
    b.into_inner().expect("tar")
}

struct Fixture {
    dir: tempfile::TempDir,
    engine: Engine,
    id: String,
}

impl Fixture {
    /// A detached busybox container that says `main-2` on its stdout and sleeps.
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("wharf-engine-exec-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        let engine = Engine::open(EngineOptions {
            root: dir.path().join("root"),
            run_root: dir.path().join("run"),
            debug: false,
        })
        .expect("open engine");
        let tar = busybox_tar();
        engine
            .import_image(wharf_engine::images::ImportRequest {
                source: wharf_engine::images::ImportSource::Reader(&mut &tar[..]),
                reference: Some("busybox:latest".into()),
                changes: vec![],
                message: None,
            })
            .expect("import busybox");
        let rec = engine
            .run_detached(
                CreateRequest {
                    image: "busybox:latest".into(),
                    args: ["sh", "-c", "echo main-$((1+1)); exec sleep 600"]
                        .map(String::from)
                        .to_vec(),
                    ..Default::default()
                },
                &mut |_| {},
            )
            .expect("run -d");
        Fixture {
            dir,
            engine,
            id: rec.id.to_string(),
        }
    }

    /// Everything the container's own log holds (every file of its directory but the record).
    fn container_output(&self) -> String {
        let mut out = String::new();
        let d = self.dir.path().join("root");
        collect(&d, &mut out);
        out
    }
}

fn collect(dir: &Path, out: &mut String) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && !matches!(name, "snapshots" | "blobs" | "tarsplit" | "merged") {
            collect(&p, out);
        } else if name.ends_with(".log") || name.contains("json.log") {
            out.push_str(&String::from_utf8_lossy(
                &std::fs::read(&p).unwrap_or_default(),
            ));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.engine.remove_container(&self.id, true, true);
        // the container was on this store's default network: its address on the shared
        // bridge and its rules go with the store
        if let Ok(net) = self.engine.network("bridge") {
            let _ = wharf_engine::network::bridge::detach(&self.dir.path().join("run"), &net);
        }
    }
}

fn req(cmd: &[&str]) -> ExecRequest {
    ExecRequest {
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe")
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut s)
        .expect("read");
    s
}

type TestResult = Result<(), String>;

fn check(ok: bool, what: impl FnOnce() -> String) -> TestResult {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// Pipes: stdin written by the caller, stdout and stderr read apart, the exit code back.
fn t_pipes(f: &Fixture) -> TestResult {
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let session = f
        .engine
        .exec_with(
            &f.id,
            req(&[
                "sh",
                "-c",
                "read x; echo \"out:$x\"; echo \"err:$x\" >&2; exit 7",
            ]),
            ExecStdio::Fds {
                stdin: Some(in_r),
                stdout: out_w,
                stderr: err_w,
            },
        )
        .map_err(|e| format!("exec: {e}"))?;
    check(session.pid() > 0, || "no pid".into())?;
    std::fs::File::from(in_w)
        .write_all(b"hello\n")
        .map_err(|e| e.to_string())?;
    // both pipes reach EOF once the command exits: the engine kept no copy of the write ends
    let out = read_all(out_r);
    let err = read_all(err_r);
    let code = session.wait().map_err(|e| format!("wait: {e}"))?;
    check(out == "out:hello\n", || format!("stdout {out:?}"))?;
    check(err == "err:hello\n", || format!("stderr {err:?}"))?;
    check(code == 7, || format!("exit code {code}"))
}

/// A socketpair as stdin+stdout (an API connection), no stdin given → /dev/null works too.
fn t_socket(f: &Fixture) -> TestResult {
    let (mine, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let theirs_out: OwnedFd = theirs.try_clone().map_err(|e| e.to_string())?.into();
    let (err_r, err_w) = pipe();
    let session = f
        .engine
        .exec_with(
            &f.id,
            req(&["cat"]),
            ExecStdio::Fds {
                stdin: Some(theirs.into()),
                stdout: theirs_out,
                stderr: err_w,
            },
        )
        .map_err(|e| format!("exec: {e}"))?;
    let mut mine = mine;
    mine.write_all(b"ping over a socket\n")
        .map_err(|e| e.to_string())?;
    mine.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut got = String::new();
    mine.read_to_string(&mut got).map_err(|e| e.to_string())?;
    let code = session.wait().map_err(|e| format!("wait: {e}"))?;
    check(got == "ping over a socket\n", || format!("echoed {got:?}"))?;
    check(read_all(err_r).is_empty(), || "stderr not empty".into())?;
    check(code == 0, || format!("exit code {code}"))?;

    // no stdin: the command reads /dev/null (EOF at once), never the caller's stdin
    let (out_r, out_w) = pipe();
    let (_err_r, err_w) = pipe();
    let session = f
        .engine
        .exec_with(
            &f.id,
            req(&["sh", "-c", "cat; echo done"]),
            ExecStdio::Fds {
                stdin: None,
                stdout: out_w,
                stderr: err_w,
            },
        )
        .map_err(|e| format!("exec: {e}"))?;
    let out = read_all(out_r);
    let code = session.wait().map_err(|e| format!("wait: {e}"))?;
    check(out == "done\n" && code == 0, || {
        format!("no-stdin exec: {out:?} {code}")
    })
}

/// Reads the pty master until `want` shows up (or EIO/EOF/timeout); returns what was read.
fn read_pty_until(master: &OwnedFd, want: &str) -> String {
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !got.contains(want) && Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(master),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(_) => continue,
        }
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(master), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    got
}

/// A pty: the master comes back, output arrives there with the requested size, a resize
/// reaches the command, input written to the master reaches it.
fn t_pty(f: &Fixture) -> TestResult {
    let session = f
        .engine
        .exec_with(
            &f.id,
            req(&[
                "sh",
                "-c",
                "tty; stty size; echo ready; read x; stty size; echo \"got:$x\"; exit 3",
            ]),
            ExecStdio::Pty {
                size: Some(wharf_sys::tty::WinSize {
                    rows: 30,
                    cols: 100,
                }),
            },
        )
        .map_err(|e| format!("exec: {e}"))?;
    let master = session
        .master()
        .map_err(|e| e.to_string())?
        .ok_or("no pty master handed back")?;
    let first = read_pty_until(&master, "ready");
    check(first.contains("/dev/pts/"), || format!("tty: {first:?}"))?;
    check(first.contains("30 100"), || {
        format!("first size: {first:?}")
    })?;
    session.resize(40, 120).map_err(|e| e.to_string())?;
    nix::unistd::write(&master, b"typed\n").map_err(|e| e.to_string())?;
    let second = read_pty_until(&master, "got:typed");
    check(second.contains("40 120"), || format!("resized: {second:?}"))?;
    check(second.contains("got:typed"), || {
        format!("input: {second:?}")
    })?;
    let code = session.wait().map_err(|e| format!("wait: {e}"))?;
    check(code == 3, || format!("exit code {code}"))
}

/// Refusals are typed, and the container's own stdio saw none of the execs.
fn t_refusals_and_container_untouched(f: &Fixture) -> TestResult {
    let (_r, w) = pipe();
    let (_r2, w2) = pipe();
    let mut tty = req(&["true"]);
    tty.tty = true;
    let e = f
        .engine
        .exec_with(
            &f.id,
            tty,
            ExecStdio::Fds {
                stdin: None,
                stdout: w,
                stderr: w2,
            },
        )
        .err()
        .ok_or("tty with fds accepted")?;
    check(e.kind() == ErrorKind::InvalidArgument, || format!("{e}"))?;
    let mut detach = req(&["true"]);
    detach.detach = true;
    let e = f
        .engine
        .exec_with(&f.id, detach, ExecStdio::Pty { size: None })
        .err()
        .ok_or("detach with a pty accepted")?;
    check(e.kind() == ErrorKind::InvalidArgument, || format!("{e}"))?;
    let e = f
        .engine
        .exec_with(
            "no-such-container-xyz",
            req(&["true"]),
            ExecStdio::Pty { size: None },
        )
        .err()
        .ok_or("exec into a missing container")?;
    check(e.kind() == ErrorKind::NotFound, || format!("{e}"))?;

    let info = f.engine.container(&f.id).map_err(|e| e.to_string())?;
    check(info.state.process_alive(), || {
        "the container died during the execs".into()
    })?;
    // the container's log has its own line and nothing of the execs
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut log = f.container_output();
    while !log.contains("main-2") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        log = f.container_output();
    }
    check(log.contains("main-2"), || format!("container log: {log:?}"))?;
    for s in ["out:hello", "err:hello", "ping over", "got:typed", "ready"] {
        check(!log.contains(s), || {
            format!("{s:?} leaked into the container log")
        })?;
    }
    Ok(())
}

type TestFn = fn(&Fixture) -> TestResult;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__init") => wharf_runtime::init::init_main(),
        Some("__exec") => wharf_runtime::exec::exec_main(),
        Some("__monitor") => wharf_engine::monitor::monitor_main(&args[2..]),
        _ => {}
    }
    let filter = args
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|a| !a.starts_with('-'))
        .map(str::to_string);
    if !nix::unistd::geteuid().is_root() {
        println!("exec_stdio: needs root");
        std::process::exit(1);
    }
    let tests: &[(&str, TestFn)] = &[
        ("exec_pipes_stdin_stdout_stderr_exit_code", t_pipes),
        ("exec_socketpair_and_no_stdin", t_socket),
        ("exec_pty_master_size_resize_input", t_pty),
        (
            "exec_refusals_and_container_stdio_untouched",
            t_refusals_and_container_untouched,
        ),
    ];
    // a copy of a write end left open somewhere would block a read forever: fail instead
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(180));
        println!("exec_stdio: timed out after 180 s (a pipe never reached EOF?)");
        std::process::exit(1);
    });
    let fixture = Fixture::new();
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in tests {
        if filter.as_deref().is_some_and(|flt| !name.contains(flt)) {
            continue;
        }
        match f(&fixture) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    drop(fixture);
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
