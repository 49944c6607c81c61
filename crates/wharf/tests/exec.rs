//! `exec`, `top`, `stats`, `cp` against real containers (root). A container is kept running by
//! a foreground `run` in a child process; it is killed (and must leave nothing) at the end.

mod common;
use common::*;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A running container `name` (`run NAME busybox sleep 60` in the foreground, in a child).
struct Running {
    child: Child,
}

fn start(w: &Wharf, name: &str, extra: &[&str]) -> Running {
    let mut args = vec!["run", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "60"]);
    let mut child = w
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    for _ in 0..250 {
        if w.ok(&["ps", "-q"]).lines().count() >= 1
            && stdout(&w.run(&["exec", name, "true"])).is_empty()
            && w.run(&["exec", name, "true"]).status.success()
        {
            return Running { child };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("container {name} did not start");
}

impl Running {
    fn stop(mut self, w: &Wharf, name: &str) {
        w.ok(&["rm", "-f", name]);
        let _ = self.child.wait();
    }
}

fn id_of(w: &Wharf, name: &str) -> String {
    w.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

fn assert_clean(w: &Wharf, id: &str) {
    assert!(mounts_under(w.dir.path()).is_empty(), "leftover mounts");
    assert!(cgroup_dirs(id).is_empty(), "leftover cgroups");
}

#[test]
fn exec_basics_and_namespaces() {
    let w = Wharf::new().with_busybox();
    let c = start(&w, "ex1", &[]);
    let id = id_of(&w, "ex1");
    assert_eq!(w.ok(&["exec", "ex1", "echo", "hello"]), "hello\n");
    assert_eq!(
        w.run(&["exec", "ex1", "sh", "-c", "exit 5"]).status.code(),
        Some(5)
    );
    // docker's exec: 126 for a missing or non-executable command, runc's text; 1 for a
    // missing container
    let o = w.run(&["exec", "ex1", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "OCI runtime exec failed: exec failed: unable to start container process: \
         exec: \"nosuchcmd\": executable file not found in $PATH: unknown\n"
    );
    let o = w.run(&["exec", "ex1", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "OCI runtime exec failed: exec failed: unable to start container process: \
         exec: \"/etc\": permission denied: unknown\n"
    );
    let o = w.run(&["exec", "nosuch-ctr", "true"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "Error response from daemon: No such container: nosuch-ctr\n"
    );
    let o = w.ok(&[
        "exec",
        "-e",
        "X=1",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "ex1",
        "sh",
        "-c",
        "env; id; pwd",
    ]);
    assert!(o.contains("X=1"), "{o}");
    assert!(o.contains("uid=65534(nobody)"), "{o}");
    assert!(o.trim_end().ends_with("/tmp"), "{o}");
    // same hostname and pid namespace as the container: pid 1 is its sleep
    assert_eq!(w.ok(&["exec", "ex1", "hostname"]).trim(), &id[..12]);
    let ps = w.ok(&["exec", "ex1", "ps"]);
    assert!(
        ps.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("sleep 60")),
        "{ps}"
    );
    // missing working directory: docker's runtime error and 126
    let o = w.run(&["exec", "-w", "/nonexistent", "ex1", "true"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(stderr(&o).contains("chdir to cwd"));
    // -d returns while the command is still running (it would block for ten minutes
    // otherwise), and the command runs in the container
    w.ok(&[
        "exec",
        "-d",
        "ex1",
        "sh",
        "-c",
        "touch /tmp/detached; exec sleep 599",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !w
        .run(&["exec", "ex1", "test", "-e", "/tmp/detached"])
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "detached exec never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ps = w.ok(&["exec", "ex1", "ps"]);
    assert!(ps.contains("sleep 599"), "{ps}");
    // top lists the sleep; stats shows memory and pids
    let top = w.ok(&["top", "ex1"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 60"), "{top}");
    let st = w.ok(&["stats", "--no-stream", "ex1"]);
    let line = st.lines().nth(1).unwrap_or_default().to_string();
    assert!(line.starts_with(&id[..12]), "{st}");
    let cols: Vec<&str> = line
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cols.len(), 8, "{st}");
    assert!(
        !cols[3].starts_with("0B"),
        "memory usage must be nonzero: {st}"
    );
    assert_ne!(cols[7], "0", "pids must be nonzero: {st}");
    c.stop(&w, "ex1");
    assert_clean(&w, &id);
    // exec into a stopped container: docker's message
    let o = w.run(&["exec", "ex1", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));
}

#[test]
fn exec_cannot_gain_privilege() {
    let w = Wharf::new().with_busybox();
    let c = start(&w, "ex2", &["--cap-drop", "ALL"]);
    let id = id_of(&w, "ex2");
    let caps = w.ok(&["exec", "ex2", "grep", "Cap", "/proc/self/status"]);
    assert!(caps.contains("CapEff:\t0000000000000000"), "{caps}");
    assert!(caps.contains("CapBnd:\t0000000000000000"), "{caps}");
    assert!(caps.contains("NoNewPrivs") || !caps.is_empty());
    let o = w.run(&["exec", "--privileged", "ex2", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not privileged"), "{}", stderr(&o));
    let nnp = w.ok(&["exec", "ex2", "grep", "NoNewPrivs", "/proc/self/status"]);
    assert!(nnp.contains('1'), "{nnp}");
    c.stop(&w, "ex2");
    assert_clean(&w, &id);

    // default caps: exec == container; seccomp applies (mount denied even with CAP_SYS_ADMIN
    // absent — the filter is there: Seccomp mode 2)
    let c = start(&w, "ex3", &[]);
    let id = id_of(&w, "ex3");
    let caps = w.ok(&["exec", "ex3", "grep", "Cap", "/proc/self/status"]);
    assert!(caps.contains("CapEff:\t00000000a80425fb"), "{caps}");
    assert!(caps.contains("CapBnd:\t00000000a80425fb"), "{caps}");
    let sc = w.ok(&["exec", "ex3", "grep", "^Seccomp:", "/proc/self/status"]);
    assert!(sc.contains('2'), "{sc}");
    let o = w.run(&["exec", "ex3", "mount", "-t", "tmpfs", "x", "/mnt"]);
    assert!(!o.status.success());
    c.stop(&w, "ex3");
    assert_clean(&w, &id);
}

#[test]
fn exec_it_on_a_real_tty() {
    use std::io::{Read, Write};
    let w = Wharf::new().with_busybox();
    let c = start(&w, "ex4", &[]);
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = pty.slave;
    let mut master = std::fs::File::from(pty.master);
    let mut cmd = w.command(&["exec", "-it", "ex4", "sh"]);
    cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().expect("spawn");
    master
        .write_all(b"echo MARK-$((40+2)); tty; exit 3\n")
        .expect("write");
    let mut acc = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&master),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLIN))
        {
            let mut buf = [0u8; 4096];
            if let Ok(n) = master.read(&mut buf) {
                acc.extend_from_slice(&buf[..n]);
            }
        }
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "exec -it hung");
    };
    let out = String::from_utf8_lossy(&acc);
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(out.contains("MARK-42"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    c.stop(&w, "ex4");
}

#[test]
fn cp_both_ways_running_and_stopped() {
    let w = Wharf::new().with_busybox();
    let host = w.dir.path().join("host");
    std::fs::create_dir_all(host.join("d/sub")).expect("mkdir");
    std::fs::write(host.join("f"), b"file-data").expect("write");
    std::fs::write(host.join("d/sub/y"), b"y-data").expect("write");
    std::os::unix::fs::symlink("/etc", host.join("d/lnk")).expect("symlink");
    let h = |p: &str| host.join(p).display().to_string();

    let c = start(&w, "cp1", &[]);
    let id = id_of(&w, "cp1");
    w.ok(&["cp", &h("f"), "cp1:/tmp/"]);
    assert_eq!(w.ok(&["exec", "cp1", "cat", "/tmp/f"]), "file-data");
    w.ok(&["cp", &h("d"), "cp1:/tmp/d2"]);
    assert_eq!(w.ok(&["exec", "cp1", "cat", "/tmp/d2/sub/y"]), "y-data");
    assert_eq!(
        w.ok(&["exec", "cp1", "readlink", "/tmp/d2/lnk"]).trim(),
        "/etc"
    );
    w.ok(&["cp", "cp1:/etc/hostname", &h("hn")]);
    assert_eq!(
        std::fs::read_to_string(host.join("hn"))
            .expect("read")
            .trim(),
        &id[..12]
    );
    w.ok(&["cp", "cp1:/tmp/d2", &h("back")]);
    assert_eq!(
        std::fs::read(host.join("back/sub/y")).expect("read"),
        b"y-data"
    );
    assert!(std::fs::symlink_metadata(host.join("back/lnk"))
        .expect("lstat")
        .file_type()
        .is_symlink());
    let o = w.run(&["cp", "cp1:/nonexistent", &h("x")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Could not find the file /nonexistent in container cp1"),
        "{}",
        stderr(&o)
    );

    // hostile: a symlink to / inside the container never reaches the host
    w.ok(&["exec", "cp1", "ln", "-s", "/", "/tmp/evil"]);
    w.ok(&[
        "exec",
        "cp1",
        "ln",
        "-s",
        "../../../../../../",
        "/tmp/evil2",
    ]);
    let marker = format!("wharf-pwned-{}", std::process::id());
    w.ok(&["cp", &h("f"), &format!("cp1:/tmp/evil/{marker}")]);
    w.ok(&["cp", &h("f"), &format!("cp1:/tmp/evil2/{marker}-2")]);
    assert!(!std::path::Path::new(&format!("/{marker}")).exists());
    assert!(!std::path::Path::new(&format!("/{marker}-2")).exists());
    assert_eq!(
        w.ok(&["exec", "cp1", "cat", &format!("/{marker}")]),
        "file-data"
    );
    assert_eq!(
        w.ok(&["exec", "cp1", "cat", &format!("/{marker}-2")]),
        "file-data"
    );
    w.ok(&["cp", "cp1:/tmp/evil/etc/passwd", &h("pw")]);
    let pw = std::fs::read_to_string(host.join("pw")).expect("read");
    assert!(
        pw.contains("app:x:1000"),
        "the container's passwd, not the host's: {pw}"
    );
    c.stop(&w, "cp1");
    assert_clean(&w, &id);

    // stopped container: its overlay is mounted privately, only for the copy
    w.ok(&["run", "--name", "cp2", "busybox", "true"]);
    let id2 = id_of(&w, "cp2");
    w.ok(&["cp", &h("f"), "cp2:/tmp/sf"]);
    w.ok(&["cp", "cp2:/tmp/sf", &h("sf-back")]);
    assert_eq!(
        std::fs::read(host.join("sf-back")).expect("read"),
        b"file-data"
    );
    w.ok(&["cp", "cp2:/etc/passwd", &h("pw2")]);
    assert!(std::fs::read_to_string(host.join("pw2"))
        .expect("read")
        .contains("app:x:1000"));
    assert!(mounts_under(w.dir.path()).is_empty(), "leftover mounts");
    w.ok(&["rm", "cp2"]);
    assert_clean(&w, &id2);
}
