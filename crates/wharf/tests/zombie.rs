//! A zombie is not running (issue 10): when a container's monitor is killed and nobody reaps
//! it yet (here: this test process, a child subreaper that holds off), the container must not
//! show `Up`. Its own test binary: being a subreaper changes where every orphan of the process
//! goes, which must not leak into other suites.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn unreaped_monitor_is_not_running() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    let w = Wharf::new().with_busybox();
    // the monitor (and, once it dies, the container's pid 1) are re-parented to us
    let id = w
        .ok(&["run", "-d", "busybox", "sleep", "30"])
        .trim()
        .to_string();
    let state = w.root().join("containers").join(&id).join("state.json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state).expect("state.json")).expect("json");
    let monitor = v["MonitorPid"].as_i64().expect("monitor pid") as i32;
    let pid = v["Pid"].as_i64().expect("pid") as i32;
    let mpid = nix::unistd::Pid::from_raw(monitor);
    nix::sys::signal::kill(mpid, nix::sys::signal::Signal::SIGKILL).expect("kill monitor");
    // wait until it is a zombie, and leave it one
    let zombie = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_string))
            })
            .is_some_and(|st| st == "Z")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !zombie(monitor) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(zombie(monitor), "monitor {monitor} did not become a zombie");
    let st = w
        .ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id,
        ])
        .trim()
        .to_string();
    let ps = w.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    // reap what is ours, then clean up
    for p in [monitor, pid] {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(p), None);
    }
    w.ok(&["rm", "-f", &id]);
    assert_eq!(st, "exited 137", "a zombie monitor is a dead monitor");
    assert!(ps.trim().starts_with("Exited (137)"), "{ps}");
    assert!(cgroup_dirs(&id).is_empty());
}
