//! wharf on the kernels our users run (RHEL 7's 3.10, RHEL 8's 4.18), on this machine's new
//! kernel: every command runs under `tests/tools/oldkernel.c`, a seccomp filter that makes the
//! syscalls those kernels lack fail as they would there (ENOSYS for new syscall numbers, EISDIR
//! for O_TMPFILE on 3.10, ...), inherited by the monitor, `__init`, `__exec` and the container.
//! What a filter cannot show — cgroup controllers, the `oom_kill` counter, seccomp's
//! `actions_avail` — is hidden with `WHARF_DISABLE` as the old kernel would lack it.
//!
//! Each table runs the everyday paths: run, -d, logs, exec (-u, -t), cp (running and stopped),
//! restart, healthchecks, stop/rm; then what degrades: no pids controller, no OOM counter, no
//! SCMP_ACT_LOG.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The harness, compiled once per test binary.
fn harness() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/oldkernel.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("oldkernel");
        let st = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("gcc (the old-kernel harness is C)");
        assert!(st.success(), "compile {}", src.display());
        out
    })
}

struct Old<'a> {
    w: &'a Wharf,
    kernel: &'static str,
    disable: &'static str,
}

impl Old<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(harness());
        c.arg(self.kernel)
            .arg("--")
            .arg(Wharf::bin())
            .args(args)
            .env("WHARF_ROOT", self.w.root())
            .env("WHARF_RUNROOT", self.w.run_root())
            .env("WHARF_DISABLE", self.disable)
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn")
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "[{}] wharf {args:?} failed ({:?}): {}{}",
            self.kernel,
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }
    fn inspect(&self, id: &str, fmt: &str) -> String {
        self.ok(&["inspect", "-f", fmt, id]).trim().to_string()
    }
}

/// What the 3.10 kernel lacks beyond syscalls; on 4.18 everything else is there.
const RHEL7: &str = "seccomplog,oomkill";

fn everyday(kernel: &'static str, disable: &'static str) {
    let w = Wharf::new();
    let k = Old {
        w: &w,
        kernel,
        disable,
    };
    let tar = w.dir.path().join("busybox.tar");
    write_busybox_tar(&tar);
    k.ok(&["import", tar.to_str().unwrap(), "busybox"]);

    // foreground, exit codes, the container's own view
    assert_eq!(
        k.ok(&["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    assert_eq!(
        k.run(&["run", "--rm", "busybox", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    let o = k.run(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert_eq!(
        k.ok(&["run", "--rm", "-u", "nobody", "busybox", "id", "-u"]),
        "65534\n"
    );

    // detached with a healthcheck; logs; exec; cp
    let id = k
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--health-cmd",
            "test -f /tmp/ready",
            "--health-interval",
            "200ms",
            "busybox",
            "sh",
            "-c",
            "echo started; touch /tmp/ready; echo data > /tmp/file; while :; do sleep 0.1; done",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    assert!(
        eventually(10, || k.inspect("web", "{{.State.Health.Status}}")
            == "healthy"),
        "[{kernel}] never healthy: {}",
        k.inspect("web", "{{json .State.Health}}")
    );
    assert!(eventually(5, || k.ok(&["logs", "web"]) == "started\n"));
    assert_eq!(k.ok(&["exec", "web", "cat", "/tmp/file"]), "data\n");
    assert_eq!(
        k.ok(&["exec", "-u", "nobody", "web", "id", "-u"]),
        "65534\n"
    );
    let o = k.run(&["exec", "web", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    let host = w.dir.path().join("copied");
    k.ok(&["cp", "web:/tmp/file", host.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "data\n");

    // restart, stop, cp from the stopped container, rm
    k.ok(&["restart", "-t", "1", "web"]);
    assert_eq!(k.inspect("web", "{{.State.Status}}"), "running");
    assert_eq!(
        k.inspect("web", "{{.RestartCount}}").parse::<u32>().ok(),
        Some(0)
    );
    assert!(eventually(5, || k.ok(&["logs", "web"]) == "started\nstarted\n"));
    k.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(k.inspect("web", "{{.State.Status}}"), "exited");
    let host2 = w.dir.path().join("copied2");
    k.ok(&["cp", "web:/tmp/file", host2.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&host2).unwrap(), "data\n");
    k.ok(&["rm", "web"]);
    assert!(cgroup_dirs(&id).is_empty(), "[{kernel}] cgroups left");

    // a terminal: `run -t` and `exec -t` through script(1), which gives the CLI a pty
    let script = |args: &str| {
        let mut c = Command::new("script");
        c.args(["-qec"])
            .arg(format!(
                "{} {kernel} -- {} {args}",
                harness().display(),
                Wharf::bin()
            ))
            .arg("/dev/null")
            .env("WHARF_ROOT", w.root())
            .env("WHARF_RUNROOT", w.run_root())
            .env("WHARF_DISABLE", disable)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("script(1)");
        let _ = child.stdin.take().map(|mut s| s.write_all(b""));
        child.wait_with_output().expect("script")
    };
    let o = script("run --rm -t busybox tty");
    assert!(
        stdout(&o).contains("/dev/pts/0"),
        "[{kernel}] run -t: {}{}",
        stdout(&o),
        stderr(&o)
    );
    k.ok(&["run", "-d", "--name", "tt", "busybox", "sleep", "1000"]);
    let o = script("exec -t tt tty");
    assert!(
        stdout(&o).contains("/dev/pts/"),
        "[{kernel}] exec -t: {}{}",
        stdout(&o),
        stderr(&o)
    );
    k.ok(&["rm", "-f", "tt"]);
    assert!(k.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn everyday_commands_on_rhel7_3_10() {
    everyday("3.10", RHEL7);
}

#[test]
fn everyday_commands_on_rhel8_4_18() {
    everyday("4.18", "");
}

/// RHEL 7 before 7.3: no pids controller. The default limit is left out (said with --debug);
/// an explicit limit still fails closed. The OOM kill is still reported without the counter,
/// and a profile asking for SCMP_ACT_LOG is refused with the reason.
#[test]
fn what_degrades_on_rhel7() {
    let w = Wharf::new();
    let k = Old {
        w: &w,
        kernel: "3.10",
        disable: "seccomplog,oomkill,cgroup.pids",
    };
    let tar = w.dir.path().join("busybox.tar");
    write_busybox_tar(&tar);
    k.ok(&["import", tar.to_str().unwrap(), "busybox"]);

    let o = k.run(&["--debug", "run", "--rm", "busybox", "echo", "ok"]);
    assert_eq!(stdout(&o), "ok\n", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no pids cgroup controller"),
        "{}",
        stderr(&o)
    );
    let o = k.run(&["run", "--rm", "--pids-limit", "10", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("pids"), "{}", stderr(&o));

    let o = k.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert_eq!(k.inspect("hog", "{{.State.OOMKilled}}"), "true");
    k.ok(&["rm", "hog"]);
    // a clean SIGKILL below the limit is not an OOM kill
    k.ok(&[
        "run", "-d", "--name", "killed", "-m", "32m", "busybox", "sleep", "1000",
    ]);
    k.ok(&["kill", "killed"]);
    assert_eq!(k.ok(&["wait", "killed"]).trim(), "137");
    assert_eq!(k.inspect("killed", "{{.State.OOMKilled}}"), "false");
    k.ok(&["rm", "killed"]);

    let profile = w.dir.path().join("log.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_LOG"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = k.run(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("SCMP_ACT_LOG") && stderr(&o).contains("4.14"),
        "{}",
        stderr(&o)
    );
    // the same profile loads where the kernel has it
    let o = w.run(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "echo",
        "logged",
    ]);
    assert_eq!(stdout(&o), "logged\n", "{}", stderr(&o));
}

/// Overlay on a file system without d_type (XFS with ftype=0 on older RHEL 7 installs; here an
/// ext4 made without `filetype`, which reports DT_UNKNOWN the same way) would silently lose
/// whiteouts: the store refuses it when opened, naming the fix, and works on one with d_type.
#[test]
fn store_on_a_file_system_without_dtype_is_refused() {
    let dir = tmp_dir("wharf-dtype-");
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = |features: &str| {
        let o = sh(&format!(
            "mkfs.ext4 -q -F -O {features} {} && mount -o loop {} {}",
            img.display(),
            img.display(),
            mnt.display()
        ));
        assert!(o.status.success(), "mkfs/mount: {}", stderr(&o));
    };
    struct Umount<'a>(&'a Path);
    impl Drop for Umount<'_> {
        fn drop(&mut self) {
            let _ = sh(&format!("umount {}", self.0.display()));
        }
    }
    let run = |args: &[&str]| {
        Command::new(Wharf::bin())
            .args(args)
            .env("WHARF_ROOT", mnt.join("root"))
            .env("WHARF_RUNROOT", dir.path().join("run"))
            .env_remove("WHARF_DISABLE")
            .output()
            .unwrap()
    };
    mount("^filetype");
    let guard = Umount(&mnt);
    let o = run(&["images"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("d_type") && e.contains("ftype=1"), "{e}");
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    let o = run(&["system", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("overlay d_type") && l.contains("missing")),
        "{}",
        stdout(&o)
    );
    drop(guard);
    mount("filetype");
    let _guard = Umount(&mnt);
    let o = run(&["images"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `system check` names what degrades, from the same probes the runtime uses.
#[test]
fn system_check_names_what_degrades() {
    let w = Wharf::new();
    let new = w.ok(&["system", "check"]);
    let status = |out: &str, feature: &str| {
        out.lines()
            .find(|l| l.starts_with(feature))
            .and_then(|l| {
                l[feature.len()..]
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no {feature} line in {out}"))
    };
    assert_eq!(status(&new, "binary protection"), "ok", "{new}");
    assert_eq!(status(&new, "overlay d_type"), "ok", "{new}");
    let k = Old {
        w: &w,
        kernel: "3.10",
        disable: "seccomplog,oomkill,cgroup.pids",
    };
    let o = k.run(&["system", "check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "degraded is not missing: {}",
        stdout(&o)
    );
    let old = stdout(&o);
    for f in [
        "binary protection",
        "openat2",
        "mount API",
        "clone3",
        "pidfd",
        "cgroup pids",
        "OOM kill counter",
        "seccomp actions",
    ] {
        assert_eq!(status(&old, f), "degraded", "{f}: {old}");
    }
    assert!(old.contains("default pids limit not applied"), "{old}");
    let k = Old {
        w: &w,
        kernel: "4.18",
        disable: "",
    };
    let mid = stdout(&k.run(&["system", "check"]));
    assert_eq!(status(&mid, "binary protection"), "degraded", "{mid}");
    assert!(mid.contains("sealed memfd"), "{mid}");
    assert_eq!(status(&mid, "seccomp actions"), "ok", "{mid}");
}

/// Every way a container's processes enter their cgroups lands them in all of them: born in
/// the v2 one (CLONE_INTO_CGROUP) or moved by pid; joining each v1 hierarchy by itself
/// (`tasks` ← "0", no RCU grace period) or moved by pid; also for `exec`, and on 3.10 (no
/// clone3).
#[test]
fn processes_join_every_cgroup_by_each_path() {
    let w = Wharf::new().with_busybox();
    let in_all = |out: &str, id: &str| {
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| !l.contains("name=systemd") && !l.is_empty())
            .collect();
        assert!(lines.len() >= 2, "{out}");
        for l in lines {
            assert!(l.ends_with(&format!("/wharf/{id}")), "{l} in\n{out}");
        }
    };
    for (kernel, disable) in [
        (None, ""),
        (None, "cloneintocgroup"),
        (None, "selfjoin"),
        (None, "cloneintocgroup,selfjoin"),
        (Some("3.10"), ""),
    ] {
        let k = Old {
            w: &w,
            kernel: kernel.unwrap_or("4.18"),
            disable,
        };
        let run = |args: &[&str]| -> String {
            match kernel {
                Some(_) => k.ok(args),
                None => {
                    let mut c = w.command(args);
                    c.env("WHARF_DISABLE", disable);
                    let o = c.output().unwrap();
                    assert!(o.status.success(), "{disable}: {}", stderr(&o));
                    stdout(&o)
                }
            }
        };
        let id = run(&["run", "-d", "busybox", "sleep", "100"])
            .trim()
            .to_string();
        in_all(&run(&["exec", &id, "cat", "/proc/self/cgroup"]), &id);
        in_all(
            &std::fs::read_to_string(format!(
                "/proc/{}/cgroup",
                run(&["inspect", "-f", "{{.State.Pid}}", &id]).trim()
            ))
            .unwrap(),
            &id,
        );
        run(&["rm", "-f", &id]);
        let out = run(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "hostname; cat /proc/self/cgroup",
        ]);
        let short = out.lines().next().unwrap_or_default().to_string();
        let full: Vec<&str> = out.lines().skip(1).collect();
        let leaf = full
            .iter()
            .find(|l| l.contains("/wharf/"))
            .and_then(|l| l.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        assert!(leaf.starts_with(&short), "{out}");
        in_all(&full.join("\n"), &leaf);
    }
}
