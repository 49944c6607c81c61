//! `wharf check` (= `wharf system check`): one line per feature, the verdict, and the exit
//! code a package's postinst and an admin's script read: 0 when wharf can run containers
//! here, 1 when something a container needs is missing.

mod common;

use common::{stdout, Wharf};
use std::process::Command;

#[test]
fn check_reports_the_isolation_features_and_exits_0_here() {
    let w = Wharf::new();
    let o = w.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for f in [
        "namespace mnt",
        "namespace pid",
        "namespace net",
        "overlayfs",
        "seccomp ",
        "user namespaces",
        "cgroups",
        "nf_tables",
        "kernel",
    ] {
        assert!(out.lines().any(|l| l.starts_with(f)), "no {f} line:\n{out}");
    }
    assert!(
        out.ends_with("wharf can run containers on this host\n") || out.contains("\ndegraded: "),
        "{out}"
    );
    // the same command under `system`
    let sys = w.run(&["system", "check"]);
    assert_eq!(sys.status.code(), Some(0));
    assert_eq!(
        stdout(&sys).lines().count(),
        out.lines().count(),
        "system check differs"
    );
    // --summary: the verdict alone
    let s = stdout(&w.run(&["check", "--summary"]));
    assert!(
        s.starts_with("wharf can run containers on this host\n"),
        "{s}"
    );
    assert!(s.lines().count() <= 2, "{s}");
}

/// Without procfs nothing can be probed and no container can start: exit 1, naming it. The
/// empty /proc is a tmpfs in a private mount namespace (gone with the process).
#[test]
fn check_without_procfs_exits_1() {
    let o = Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(format!(
            "mount --make-rprivate / && mount -t tmpfs none /proc && exec {} check --summary",
            Wharf::bin()
        ))
        .output()
        .expect("unshare");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with("wharf cannot run containers on this host: missing procfs"),
        "{out}"
    );
}
