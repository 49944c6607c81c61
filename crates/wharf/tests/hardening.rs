//! Issue 10 (hardening), runtime and create-time validation: uid/gid ranges, bounded reads
//! of image-controlled files, the container's umask, the cgroup v1 view, mount targets over
//! /proc and /sys, host names, and the newer moby security defaults. Real binary, real
//! kernel; every test counts only its own containers.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const RANGE: &str = "uids and gids must be in range 0-2147483647";

/// `run`/`create` fails with 125 and a message containing `want`.
fn refused(o: &Output, want: &str) {
    refused_with(o, 125, want)
}

/// `exec` (like every command but `run`/`create`) fails with docker's 1.
fn exec_refused(o: &Output, want: &str) {
    refused_with(o, 1, want)
}

fn refused_with(o: &Output, code: i32, want: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout={} stderr={}",
        stdout(o),
        stderr(o)
    );
    assert!(stderr(o).contains(want), "want {want:?} in {}", stderr(o));
}

/// `wharf args`, killed (and the test failed) if it is still running after `bound`: a hang
/// detector, not a speed assertion.
fn run_bounded(w: &Wharf, args: &[&str], bound: Duration) -> Output {
    let child = w
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn wharf");
    let pid = child.id();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(bound) {
        Ok(o) => o.expect("wait wharf"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("wharf {args:?} still running after {:?}", start.elapsed());
        }
    }
}

/// Processes whose environment carries `tag` (this test's containers and their inits).
fn procs_with(tag: &str) -> Vec<u32> {
    let tag = tag.as_bytes();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(e.path().join("environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == tag))
        {
            out.push(pid);
        }
    }
    out
}

/// Appends entries to an image's tarball.
type Extra<'a> = &'a dyn Fn(&mut tar::Builder<std::fs::File>);

/// Imports a busybox image whose /etc/passwd is what `passwd` appends, as `name`.
fn image_with_passwd(w: &Wharf, name: &str, passwd: Extra<'_>) {
    let tar = w.dir.path().join(format!("{name}.tar"));
    write_busybox_tar_with(&tar, &["etc/passwd"], passwd);
    w.ok(&["import", tar.to_str().unwrap(), name]);
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

#[test]
fn uid_and_gid_out_of_range_are_refused() {
    let w = Wharf::new().with_busybox();
    for args in [
        &["--user", "4294967295"][..],
        &["--user", "0:4294967295"],
        &["--user", "2147483648"],
        &["--user", "-1"],
        &["--group-add", "4294967296"],
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "id"]);
        refused(&w.run(&a), RANGE);
    }
    // the largest valid id runs as itself, not as root
    let out = w.ok(&[
        "run",
        "--rm",
        "--user",
        "2147483647:2147483647",
        "busybox",
        "id",
    ]);
    assert!(out.contains("uid=2147483647 gid=2147483647"), "{out}");
    // the image's User
    let tar = w.dir.path().join("busybox.tar");
    w.ok(&[
        "import",
        "-c",
        "USER 4294967295",
        tar.to_str().unwrap(),
        "baduser",
    ]);
    refused(&w.run(&["run", "--rm", "baduser", "id"]), RANGE);
    // --user overrides it
    let out = w.ok(&["run", "--rm", "--user", "1000", "baduser", "id", "-u"]);
    assert_eq!(out.trim(), "1000");
    // exec -u
    w.ok(&["run", "-d", "--name", "uids", "busybox", "sleep", "60"]);
    let o = w.run(&["exec", "-u", "4294967295", "uids", "id"]);
    exec_refused(&o, RANGE);
    let o = w.run(&["exec", "-u", "0:4294967295", "uids", "id"]);
    exec_refused(&o, RANGE);
    let out = w.ok(&["exec", "-u", "nobody", "uids", "id", "-u"]);
    assert_eq!(out.trim(), "65534");
    w.ok(&["rm", "-f", "uids"]);
}

#[test]
fn passwd_entries_out_of_range_are_refused() {
    let w = Wharf::new().with_busybox();
    image_with_passwd(&w, "evilpw", &|b| {
        let pw = "root:x:0:0:root:/root:/bin/sh\nevil:x:4294967295:0::/:/bin/sh\nevilgid:x:5:4294967295::/:/bin/sh\n";
        let mut h = header(tar::EntryType::Regular, 0o644);
        h.set_size(pw.len() as u64);
        b.append_data(&mut h, "etc/passwd", pw.as_bytes()).unwrap();
    });
    for user in ["evil", "evilgid"] {
        let o = w.run(&["run", "--rm", "--user", user, "evilpw", "id"]);
        refused(&o, RANGE);
        assert!(
            stderr(&o).contains(&format!("passwd entry \"{user}\"")),
            "{}",
            stderr(&o)
        );
    }
    // and through exec -u, resolved inside the running container
    w.ok(&["run", "-d", "--name", "pw", "evilpw", "sleep", "60"]);
    exec_refused(&w.run(&["exec", "-u", "evil", "pw", "id"]), RANGE);
    w.ok(&["rm", "-f", "pw"]);
}

#[test]
fn hostile_passwd_files_fail_fast_and_leave_nothing() {
    let w = Wharf::new().with_busybox();
    let tag = format!("WHARF_TEST_TAG={}", w.dir.path().display());
    let bound = Duration::from_secs(60);
    let cases: [(&str, &str, Extra<'_>); 3] = [
        ("pwzero", "a character device", &|b| {
            let mut h = header(tar::EntryType::Symlink, 0o777);
            b.append_link(&mut h, "etc/passwd", "/dev/zero").unwrap();
        }),
        ("pwfifo", "a fifo", &|b| {
            let mut h = header(tar::EntryType::Fifo, 0o644);
            b.append_data(&mut h, "etc/passwd", std::io::empty())
                .unwrap();
        }),
        ("pwdir", "a directory", &|b| {
            let mut h = header(tar::EntryType::Directory, 0o755);
            b.append_data(&mut h, "etc/passwd", std::io::empty())
                .unwrap();
        }),
    ];
    for (image, what, build) in cases {
        image_with_passwd(&w, image, build);
        let o = run_bounded(&w, &["run", "--rm", "-e", &tag, image, "id"], bound);
        refused(&o, &format!("/etc/passwd is {what}"));
        // a named user and /etc/group the same way
        let o = run_bounded(
            &w,
            &["run", "--rm", "-e", &tag, "--user", "nobody", image, "id"],
            bound,
        );
        refused(&o, "/etc/passwd is");
    }
    // the group file too, and a 100 MiB passwd (sparse; bind-mounted over the image's)
    let big = w.dir.path().join("bigpasswd");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let bind = format!("{}:/etc/passwd:ro", big.display());
    let o = run_bounded(
        &w,
        &["run", "--rm", "-e", &tag, "-v", &bind, "busybox", "id"],
        bound,
    );
    refused(&o, "/etc/passwd is too large (104857600 bytes");
    let o = run_bounded(
        &w,
        &[
            "run",
            "--rm",
            "-e",
            &tag,
            "-v",
            "/dev/zero:/etc/group",
            "busybox",
            "id",
        ],
        bound,
    );
    refused(&o, "/etc/group is a character device");
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(procs_with(&tag), Vec::<u32>::new(), "orphan processes");
    assert!(mounts_under(w.dir.path()).is_empty());
}

#[test]
fn umask_is_0022() {
    let w = Wharf::new().with_busybox();
    let script = "touch /tmp/f && mkdir /tmp/d && stat -c '%a %a' /tmp/f /tmp/d && umask";
    let out = w.ok(&["run", "--rm", "busybox", "sh", "-c", script]);
    assert_eq!(out, "644 644\n755 755\n0022\n");
    // the tiny init's child
    let out = w.ok(&["run", "--rm", "--init", "busybox", "sh", "-c", script]);
    assert_eq!(out, "644 644\n755 755\n0022\n");
    w.ok(&["run", "-d", "--name", "um", "busybox", "sleep", "60"]);
    let out = w.ok(&["exec", "um", "sh", "-c", script]);
    assert_eq!(out, "644 644\n755 755\n0022\n");
    w.ok(&["rm", "-f", "um"]);
}

#[test]
fn cgroup_v1_view_is_the_containers_own_and_read_only() {
    if !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!("no cgroup v1 memory controller on this host: skipped");
        return;
    }
    let w = Wharf::new().with_busybox();
    let out = w.ok(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "busybox",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(out.trim(), "67108864");
    // pids limit through its own hierarchy
    let out = w.ok(&[
        "run",
        "--rm",
        "--pids-limit",
        "77",
        "busybox",
        "cat",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(out.trim(), "77");
    // read-only: neither the limit nor the tmpfs can be written, even by root
    for cmd in [
        "echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes",
        "mkdir /sys/fs/cgroup/memory/sub",
        "touch /sys/fs/cgroup/x",
    ] {
        let o = w.run(&["run", "--rm", "-m", "64m", "busybox", "sh", "-c", cmd]);
        assert_ne!(o.status.code(), Some(0), "{cmd} must fail");
        assert!(
            stderr(&o).contains("Read-only file system"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    // only its own cgroup: no sub-directories (the host's wharf/ and others) are visible
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "for d in /sys/fs/cgroup/*/*; do test -d \"$d\" && echo \"$d\"; done; ls /sys/fs/cgroup",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines.iter().any(|l| l.starts_with("/sys/")), "{out}");
    for ctrl in [
        "memory", "pids", "cpu", "cpuacct", "devices", "freezer", "blkio",
    ] {
        assert!(lines.contains(&ctrl), "{ctrl} in {out}");
    }
}

#[test]
fn mounts_over_proc_and_sys_are_refused() {
    let w = Wharf::new().with_busybox();
    for args in [
        &["--tmpfs", "/proc"][..],
        &["--tmpfs", "//proc"],
        &["--tmpfs", "/./proc/sys"],
        &["--tmpfs", "/sys/devices"],
        &["-v", "/proc:/proc"],
        &["-v", "/tmp:/sys/firmware"],
        &["-v", "/dev/null:/proc/kcore"],
        &["--mount", "type=tmpfs,target=/proc/"],
        &["--mount", "type=bind,source=/proc,target=/sys"],
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "true"]);
        refused(&w.run(&a), "cannot be mounted over");
    }
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    // lxcfs-style binds onto the few files runc allows
    let out = w.ok(&[
        "run",
        "--rm",
        "-v",
        "/proc/meminfo:/proc/meminfo:ro",
        "busybox",
        "head",
        "-n1",
        "/proc/meminfo",
    ]);
    assert!(out.starts_with("MemTotal:"), "{out}");
    // /sys paths that cover nothing masked stay mountable, as with docker
    let out = w.ok(&[
        "run",
        "--rm",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "busybox",
        // the directory itself: its entries are other tests' containers, which come and go
        // while `ls` stats them
        "ls",
        "-d",
        "/sys/fs/cgroup/memory/wharf",
    ]);
    assert!(!out.is_empty());
}

#[test]
fn hostnames_are_rfc1123() {
    let w = Wharf::new().with_busybox();
    for bad in ["a\n10.0.0.1 evil", "-x", "a_b", "a..b", &"x".repeat(65)] {
        refused(
            &w.run(&["run", "--rm", "--hostname", bad, "busybox", "true"]),
            "invalid hostname format",
        );
        refused(
            &w.run(&["create", "--hostname", bad, "busybox", "true"]),
            "invalid hostname format",
        );
    }
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    let out = w.ok(&[
        "run",
        "--rm",
        "--hostname",
        "web-1.example",
        "busybox",
        "hostname",
    ]);
    assert_eq!(out.trim(), "web-1.example");
}

#[test]
fn newer_moby_defaults_apply() {
    let w = Wharf::new().with_busybox();
    let out = w.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /proc/interrupts | wc -c",
    ]);
    assert_eq!(out.trim(), "0", "/proc/interrupts masked");
    // io_uring_setup through the host's python, bind-mounted read-only
    if !Path::new("/usr/bin/python3").exists() {
        // CI installs python3: there a missing tool is a failure, not a skip
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but /usr/bin/python3 is missing"
        );
        eprintln!("no /usr/bin/python3: io_uring probe skipped");
        return;
    }
    let probe = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.syscall(ctypes.c_long(425), ctypes.c_long(1), ctypes.c_long(0))\nprint(r, ctypes.get_errno())\n";
    let mut args = vec!["run", "--rm", "-v", "/usr:/usr:ro"];
    for d in ["/lib", "/lib64"] {
        if Path::new(d).exists() {
            args.push("-v");
            args.push(if d == "/lib" {
                "/lib:/lib:ro"
            } else {
                "/lib64:/lib64:ro"
            });
        }
    }
    args.extend_from_slice(&["busybox", "/usr/bin/python3", "-c", probe]);
    let out = w.ok(&args);
    // EPERM from the filter; the kernel itself would have said EFAULT (NULL params)
    assert_eq!(out.trim(), "-1 1", "io_uring_setup must be denied");
    let mut unconfined = args.clone();
    unconfined.splice(2..2, ["--security-opt", "seccomp=unconfined"]);
    let out = w.ok(&unconfined);
    assert_ne!(
        out.trim(),
        "-1 1",
        "the probe reaches the kernel without the filter"
    );
}
