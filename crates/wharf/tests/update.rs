//! Root-level tests of `wharf update`: live limits change in the running container's cgroup,
//! the record keeps them (inspect, a restart), docker's refusals and output; and the same
//! through the Engine API (`POST /containers/{id}/update`) with the docker CLI.

mod common;
use common::api::{have_docker, Service};
use common::*;
use std::path::{Path, PathBuf};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn cg_file(id: &str, file: &str) -> PathBuf {
    cgroup_dirs(id)
        .into_iter()
        .map(|d| d.join(file))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no cgroup file {file} for {id}"))
}

fn v1() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
}

/// (memory limit, cpu shares/weight, cfs quota) as the live cgroup has them.
fn limits(id: &str) -> (String, String, String) {
    if v1() {
        (
            read(&cg_file(id, "memory.limit_in_bytes")),
            read(&cg_file(id, "cpu.shares")),
            read(&cg_file(id, "cpu.cfs_quota_us")),
        )
    } else {
        let max = read(&cg_file(id, "cpu.max"));
        (
            read(&cg_file(id, "memory.max")),
            read(&cg_file(id, "cpu.weight")),
            max.split(' ').next().unwrap_or_default().to_string(),
        )
    }
}

#[test]
fn update_changes_live_limits_and_the_record() {
    let w = Wharf::new().with_busybox();
    let id = w
        .ok(&[
            "run", "-d", "--name", "upd", "-m", "64m", "busybox", "sleep", "300",
        ])
        .trim()
        .to_string();
    let out = w.ok(&[
        "update",
        "-m",
        "96m",
        "--memory-swap",
        "200m",
        "-c",
        "512",
        "--cpus",
        "0.5",
        "--pids-limit",
        "40",
        "--restart",
        "on-failure:3",
        "upd",
    ]);
    assert_eq!(out, "upd\n", "docker prints the names it updated");
    let (mem, shares, quota) = limits(&id);
    assert_eq!(mem, (96u64 << 20).to_string());
    assert_eq!(shares, if v1() { "512" } else { "20" });
    assert_eq!(quota, "50000");
    assert_eq!(read(&cg_file(&id, "pids.max")), "40");
    if v1() {
        assert_eq!(
            read(&cg_file(&id, "memory.memsw.limit_in_bytes")),
            (200u64 << 20).to_string()
        );
    }
    let f = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}";
    let want = format!(
        "{} {} 512 500000000 40 on-failure:3",
        96u64 << 20,
        200u64 << 20
    );
    assert_eq!(w.ok(&["inspect", "-f", f, "upd"]).trim(), want);
    // a restart starts with the updated limits
    w.ok(&["restart", "-t", "0", "upd"]);
    let (mem, shares, _) = limits(&id);
    assert_eq!(mem, (96u64 << 20).to_string());
    assert_eq!(shares, if v1() { "512" } else { "20" });
    // a lower memory limit without --memory-swap keeps the recorded swap limit
    w.ok(&["update", "-m", "80m", "upd"]);
    if v1() {
        assert_eq!(
            read(&cg_file(&id, "memory.memsw.limit_in_bytes")),
            (200u64 << 20).to_string()
        );
    }
    w.ok(&["rm", "-f", "upd"]);
    assert!(cgroup_dirs(&id).is_empty(), "cgroup left behind");
}

#[test]
fn update_refusals_as_docker() {
    let w = Wharf::new().with_busybox();
    w.ok(&["create", "--name", "auto", "--rm", "busybox", "sleep", "1"]);
    w.ok(&[
        "create",
        "--name",
        "plain",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "busybox",
        "true",
    ]);
    for (args, want) in [
        (
            vec!["update", "--restart", "always", "auto"],
            "Error response from daemon: Restart policy cannot be updated because AutoRemove is enabled for the container",
        ),
        (
            vec!["update", "-m", "256m", "plain"],
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
        ),
        (vec!["update", "plain"], "you must provide one or more flags when using this command"),
        (vec!["update", "--cpu-rt-runtime", "10", "plain"], "--cpu-rt-runtime is not supported by wharf"),
        (vec!["update", "-m", "1m", "plain"], "minimum memory limit allowed is 6MB"),
        (vec!["update", "--cpus", "1", "nosuch"], "No such container: nosuch"),
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // one failure among several: the others are updated, their names printed, exit 1
    let o = w.run(&["update", "--cpu-shares", "256", "plain", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "plain\n");
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.HostConfig.CpuShares}}", "plain"])
            .trim(),
        "256"
    );
    // a stopped container: recorded, applied at its start
    let id = w
        .ok(&["inspect", "-f", "{{.Id}}", "plain"])
        .trim()
        .to_string();
    w.ok(&[
        "update",
        "--memory",
        "100m",
        "--memory-swap",
        "300m",
        "plain",
    ]);
    w.ok(&["start", "plain"]);
    assert_eq!(w.ok(&["wait", "plain"]).trim(), "0");
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.HostConfig.Memory}}", &id])
            .trim(),
        (100u64 << 20).to_string()
    );
}

#[test]
fn update_through_the_api() {
    if !have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let s = Service::start(&w, &[]);
    let id = s
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "apiupd",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    assert_eq!(
        s.ok(&[
            "update",
            "-m",
            "72m",
            "--cpu-shares",
            "300",
            "--restart",
            "always",
            "apiupd"
        ]),
        "apiupd\n"
    );
    let (mem, shares, _) = limits(&id);
    assert_eq!(mem, (72u64 << 20).to_string());
    if v1() {
        assert_eq!(shares, "300");
    }
    assert_eq!(
        s.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}",
            "apiupd"
        ])
        .trim(),
        format!("{} always", 72u64 << 20)
    );
    // docker's Warnings body, and a field wharf does not update refused by name
    let body = r#"{"CpuShares":400}"#;
    let (code, text) = s.raw(
        format!(
            "POST /containers/apiupd/update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(code, 200, "{text}");
    assert!(text.contains(r#"{"Warnings":[]}"#), "{text}");
    let body = r#"{"CpuRealtimeRuntime":1000}"#;
    let (code, text) = s.raw(
        format!(
            "POST /containers/apiupd/update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("CpuRealtimeRuntime"), "{text}");
    // the API's create applies the new HostConfig fields too
    let o = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--oom-score-adj",
        "222",
        "--shm-size",
        "8m",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/oom_score_adj; df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2",
    ]);
    assert_eq!(o, "222\n8192\n");
    let o = s.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "container:x",
        "busybox",
        "true",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("--pid container:x is not supported by wharf"),
        "{}",
        stderr(&o)
    );
    s.ok(&["rm", "-f", "apiupd"]);
}

/// The admin policy judges the updated record: `[limits]` cannot be raised past by update.
#[test]
fn update_is_checked_by_the_policy() {
    let w = Wharf::new().with_busybox();
    let p = common::policy::Pol::new(&w, "[limits]\nmemory = \"64m\"\n");
    p.ok(&["create", "--name", "lim", "-m", "32m", "busybox", "true"]);
    let o = p.run(&["update", "-m", "128m", "--memory-swap", "256m", "lim"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("limits.memory"), "{}", stderr(&o));
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.HostConfig.Memory}}", "lim"])
            .trim(),
        (32u64 << 20).to_string(),
        "a refused update changes nothing"
    );
    p.ok(&["update", "-m", "48m", "lim"]);
}
