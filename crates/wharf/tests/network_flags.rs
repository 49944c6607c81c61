//! The remaining run flags of bridge networking, through the binary: `--sysctl` (written in
//! the container's namespaces and read back there, docker's refusals, a sysctl the kernel
//! lacks fails the start).

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

#[test]
fn sysctls_are_written_in_the_containers_namespaces() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    let host_somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let host_rmid = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let out = w.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "net.core.somaxconn=1024",
        "--sysctl",
        "kernel.shm_rmid_forced=1",
        "--sysctl",
        "net.ipv4.conf.eth0.rp_filter=2",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/core/somaxconn",
        "/proc/sys/kernel/shm_rmid_forced",
        "/proc/sys/net/ipv4/conf/eth0/rp_filter",
    ]);
    assert_eq!(out, "1\n1024\n1\n2\n");
    // the host's own values are untouched (they are the container's namespaces' only)
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        host_somaxconn
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_rmid
    );
    // recorded as docker's HostConfig.Sysctls; /proc/sys stays read-only for the process
    w.ok(&[
        "create",
        "--name",
        "sx",
        "--network",
        "none",
        "--sysctl",
        "net.core.somaxconn=512",
        "busybox",
        "sh",
        "-c",
        "cat /proc/sys/net/core/somaxconn; echo 1 > /proc/sys/net/core/somaxconn && echo WROTE",
    ]);
    assert_eq!(
        w.ok(&["inspect", "-f", "{{json .HostConfig.Sysctls}}", "sx"])
            .trim(),
        r#"{"net.core.somaxconn":"512"}"#
    );
    let o = w.run(&["start", "-a", "sx"]);
    assert_eq!(stdout(&o), "512\n", "{}", stderr(&o));
    // a sysctl the kernel does not have, or a value it refuses: the start fails naming it
    for (flag, want) in [
        ("net.ipv4.no_such_knob=1", "net.ipv4.no_such_knob"),
        ("net.core.somaxconn=notanumber", "net.core.somaxconn"),
    ] {
        let o = w.run(&["run", "--rm", "--sysctl", flag, "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{flag}: {}", stderr(&o));
    }
    // docker's refusals, before anything is created
    for (args, want) in [
        (
            vec!["--sysctl", "kernel.hostname=x"],
            r#"invalid argument "kernel.hostname=x" for "--sysctl" flag: sysctl 'kernel.hostname=x' is not allowed"#,
        ),
        (
            vec!["--sysctl", "vm.swappiness=1"],
            "sysctl 'vm.swappiness=1' is not allowed",
        ),
        (
            vec!["--sysctl", "net.ipv4.ip_forward"],
            "sysctl 'net.ipv4.ip_forward' is not allowed",
        ),
        (
            vec!["--sysctl", "net./../kernel/core_pattern=x"],
            "a sysctl name is dot-separated components",
        ),
        (
            vec!["--network", "host", "--sysctl", "net.core.somaxconn=1"],
            r#"sysctl "net.core.somaxconn" not allowed in host network namespace"#,
        ),
        (
            vec![
                "--network",
                "container:sx",
                "--sysctl",
                "net.core.somaxconn=1",
            ],
            r#"sysctl "net.core.somaxconn" not allowed in a joined network namespace"#,
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let o = w.run(&a);
        assert_eq!(o.status.code(), Some(125), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{a:?}: {}", stderr(&o));
    }
    // the IPC ones are the container's own with the host's network too
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "fs.mqueue.msg_max=20",
        "busybox",
        "cat",
        "/proc/sys/fs/mqueue/msg_max",
    ]);
    assert_eq!(out, "20\n");
    w.ok(&["rm", "sx"]);
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}
