//! Detached containers and their lifecycle, against the real kernel (root): the monitor keeps
//! a container running after the CLI exits, stop/start/restart/kill/wait/pause, restart
//! policies, a killed monitor is noticed, attach, system boot, and 50 containers leave nothing
//! behind.

mod common;

use common::*;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

const LOOP: &str = "while true; do echo tick; sleep 0.2; done";

fn detach(w: &Wharf, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let id = w.ok(&a).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id:?}");
    id
}

fn inspect(w: &Wharf, id: &str, fmt: &str) -> String {
    w.ok(&["inspect", "-f", fmt, id]).trim().to_string()
}

fn state_json(w: &Wharf, id: &str) -> serde_json::Value {
    let p = w.root().join("containers").join(id).join("state.json");
    serde_json::from_slice(&std::fs::read(p).expect("state.json")).expect("json")
}

fn alive(pid: i64) -> bool {
    pid > 0 && PathBuf::from(format!("/proc/{pid}")).exists()
}

/// Processes whose command line mentions this test's root (monitors) or run under it.
fn processes_of(w: &Wharf) -> Vec<String> {
    let root = w.root().display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path().join("cmdline");
        if let Ok(c) = std::fs::read(&p) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains("__monitor") && c.contains(&root) {
                out.push(c);
            }
        }
    }
    out
}

#[test]
fn detached_container_outlives_cli_and_stops_starts_restarts() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(&w, &["--name", "web", "busybox", "sh", "-c", LOOP]);
    // the CLI has exited (ok() waited for it); the container keeps running
    std::thread::sleep(Duration::from_millis(500));
    let ps = w.ok(&["ps"]);
    assert!(ps.contains("Up "), "{ps}");
    assert!(ps.contains("web"), "{ps}");
    let log = w
        .root()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    assert!(eventually(5, || std::fs::read_to_string(&log).is_ok_and(
        |l| l.contains(r#""log":"tick\n","stream":"stdout""#)
    )));

    // sh as pid 1 ignores SIGTERM: killed after 1 s, 137
    let t = Instant::now();
    assert_eq!(w.ok(&["stop", "-t", "1", "web"]).trim(), "web");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        inspect(&w, "web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    let ps = w.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(processes_of(&w).is_empty());

    // start again, restart
    w.ok(&["start", "web"]);
    assert_eq!(inspect(&w, "web", "{{.State.Status}}"), "running");
    let pid1 = inspect(&w, "web", "{{.State.Pid}}");
    w.ok(&["restart", "-t", "0", "web"]);
    assert_eq!(inspect(&w, "web", "{{.State.Status}}"), "running");
    assert_ne!(inspect(&w, "web", "{{.State.Pid}}"), pid1);

    // docker's errors
    let o = w.run(&["rm", "web"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("container is running"),
        "{}",
        stderr(&o)
    );
    w.ok(&["rm", "-f", "web"]);
    assert!(eventually(5, || processes_of(&w).is_empty()));
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(mounts_under(w.dir.path()).is_empty());
}

#[test]
fn kill_signal_reaches_trap_and_wait_prints_code() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(
        &w,
        &[
            "busybox",
            "sh",
            "-c",
            "trap 'exit 3' HUP; while true; do sleep 0.1; done",
        ],
    );
    let waiter = w
        .command(&["wait", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wait");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.ok(&["kill", "-s", "HUP", &id]).trim(), id);
    let out = waiter.wait_with_output().expect("wait output");
    assert_eq!(stdout(&out).trim(), "3");
    assert_eq!(w.ok(&["wait", &id]).trim(), "3");
    // stopped container: docker's errors, exit 1 (a command on existing objects)
    for (args, msg) in [
        (vec!["kill", &id], "is not running"),
        (vec!["pause", &id], "is not running"),
        (vec!["stop", "no-such"], "No such container: no-such"),
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).contains("Error response from daemon: "),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains(msg), "{}", stderr(&o));
    }
    w.ok(&["rm", &id]);
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(&w, &["busybox", "sh", "-c", LOOP]);
    w.ok(&["pause", &id]);
    let ps = w.ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    assert_eq!(inspect(&w, &id, "{{.State.Status}}"), "paused");
    let frozen = cgroup_dirs(&id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("freezer.state")).ok())
        .any(|s| s.trim() == "FROZEN");
    assert!(frozen);
    let o = w.run(&["pause", &id]);
    assert!(stderr(&o).contains("is already paused"), "{}", stderr(&o));
    w.ok(&["unpause", &id]);
    assert_eq!(inspect(&w, &id, "{{.State.Status}}"), "running");
    w.ok(&["rm", "-f", &id]);
    assert!(cgroup_dirs(&id).is_empty());
}

#[test]
fn restart_on_failure_stops_after_n() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(
        &w,
        &["--restart", "on-failure:3", "busybox", "sh", "-c", "exit 1"],
    );
    assert!(
        eventually(15, || inspect(
            &w,
            &id,
            "{{.State.Status}} {{.RestartCount}}"
        ) == "exited 3"),
        "{}",
        inspect(
            &w,
            &id,
            "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}"
        )
    );
    assert_eq!(inspect(&w, &id, "{{.State.ExitCode}}"), "1");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&w, &id, "{{.RestartCount}}"), "3");
    assert!(processes_of(&w).is_empty());
    w.ok(&["rm", &id]);
}

#[test]
fn restart_always_after_outside_kill_and_stop_wins() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(&w, &["--restart", "always", "busybox", "sh", "-c", LOOP]);
    let pid: i64 = inspect(&w, &id, "{{.State.Pid}}").parse().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    assert!(eventually(10, || {
        inspect(&w, &id, "{{.State.Status}} {{.RestartCount}}") == "running 1"
            && inspect(&w, &id, "{{.State.Pid}}") != pid.to_string()
    }));
    // a manual stop is not undone by the policy
    w.ok(&["stop", "-t", "0", &id]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&w, &id, "{{.State.Status}}"), "exited");
    assert!(processes_of(&w).is_empty());
    w.ok(&["rm", &id]);
}

#[test]
fn killed_monitor_is_noticed() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(&w, &["busybox", "sh", "-c", LOOP]);
    let st = state_json(&w, &id);
    let mon = st["MonitorPid"].as_i64().expect("monitor pid");
    let pid = st["Pid"].as_i64().expect("pid");
    assert!(alive(mon) && alive(pid));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mon as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill monitor");
    // the container dies with its monitor (PR_SET_PDEATHSIG)
    assert!(
        eventually(5, || !alive(pid)),
        "container outlived its monitor"
    );
    assert_eq!(inspect(&w, &id, "{{.State.Status}}"), "exited");
    let err = inspect(&w, &id, "{{.State.Error}}");
    assert!(err.contains("monitor died"), "{err}");
    assert!(!w.ok(&["ps"]).contains(&id[..12]));
    assert!(cgroup_dirs(&id).is_empty());
    w.ok(&["rm", &id]);
}

#[test]
fn attach_sees_output() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(&w, &["busybox", "sh", "-c", LOOP]);
    let mut child = w
        .command(&["attach", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("attach");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 64];
    let n = out.read(&mut buf).expect("read attach");
    if n == 0 {
        let mut e = String::new();
        let _ = child.stderr.take().expect("stderr").read_to_string(&mut e);
        panic!("attach ended: {e}");
    }
    assert!(String::from_utf8_lossy(&buf[..n]).contains("tick"));
    w.ok(&["rm", "-f", &id]);
    // the monitor closes the attach stream when the container is gone
    let status = child.wait().expect("attach exits");
    assert!(status.code().is_some());
}

#[test]
fn system_boot_restarts_always_containers() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let always = detach(&w, &["--restart", "always", "busybox", "sh", "-c", LOOP]);
    let plain = detach(&w, &["busybox", "sh", "-c", LOOP]);
    // simulate a host reboot: everything dies, and the boot id changes
    for id in [&always, &plain] {
        let mut st = state_json(&w, id);
        let mon = st["MonitorPid"].as_i64().expect("monitor pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(mon as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill");
        assert!(eventually(5, || !alive(mon)));
        st["BootId"] = serde_json::json!("00000000-0000-0000-0000-000000000000");
        let p = w.root().join("containers").join(id).join("state.json");
        std::fs::write(p, st.to_string()).expect("write state");
    }
    let out = w.ok(&["system", "boot"]);
    assert_eq!(out.trim(), always);
    assert_eq!(inspect(&w, &always, "{{.State.Status}}"), "running");
    assert_eq!(
        inspect(&w, &plain, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 255"
    );
    w.ok(&["rm", "-f", &always, &plain]);
    assert!(eventually(5, || processes_of(&w).is_empty()));
}

#[test]
fn fifty_detached_containers_leave_nothing_behind() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let ids: Vec<String> = (0..50)
        .map(|_| detach(&w, &["busybox", "sleep", "1000"]))
        .collect();
    assert_eq!(processes_of(&w).len(), 50);
    let ps = w.ok(&["ps", "-q"]);
    assert_eq!(ps.lines().count(), 50);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(|s| s.as_str()));
    w.ok(&args);
    assert!(eventually(5, || processes_of(&w).is_empty()));
    for id in &ids {
        assert!(cgroup_dirs(id).is_empty(), "cgroup left for {id}");
    }
    assert!(mounts_under(w.dir.path()).is_empty());
    assert!(w.ok(&["ps", "-aq"]).trim().is_empty());
    let out = w.ok(&["container", "prune", "-f"]);
    assert_eq!(out.trim(), "Total reclaimed space: 0B");
}

#[test]
fn create_start_prune_port() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = w.ok(&["create", "busybox", "true"]).trim().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(inspect(&w, &id, "{{.State.Status}}"), "created");
    assert!(w.ok(&["ps", "-a"]).contains("Created"));
    w.ok(&["start", &id]);
    assert_eq!(w.ok(&["wait", &id]).trim(), "0");
    assert!(w.ok(&["port", &id]).is_empty());
    let o = w.run(&["port", "nope"]);
    assert!(
        stderr(&o).contains("No such container: nope"),
        "{}",
        stderr(&o)
    );
    let out = w.ok(&["container", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Containers:\n{id}\n\nTotal reclaimed space: 0B\n")
    );
}

#[test]
fn healthcheck_goes_healthy_then_unhealthy() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(
        &w,
        &[
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "busybox",
            "sh",
            "-c",
            "touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 1000",
        ],
    );
    assert!(
        eventually(5, || inspect(&w, &id, "{{.State.Health.Status}}")
            == "healthy"),
        "{}",
        inspect(&w, &id, "{{json .State.Health}}")
    );
    assert!(w.ok(&["ps"]).contains("(healthy)"));
    assert!(
        eventually(8, || inspect(&w, &id, "{{.State.Health.Status}}")
            == "unhealthy"),
        "{}",
        inspect(&w, &id, "{{json .State.Health}}")
    );
    assert!(w.ok(&["ps"]).contains("(unhealthy)"));
    let h: serde_json::Value =
        serde_json::from_str(&inspect(&w, &id, "{{json .State.Health}}")).expect("health json");
    assert!(h["FailingStreak"].as_u64().unwrap_or(0) >= 3, "{h}");
    let log = h["Log"].as_array().expect("log");
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_eq!(log.last().map(|l| l["ExitCode"].as_i64()), Some(Some(1)));
    w.ok(&["rm", "-f", &id]);
    assert!(eventually(5, || processes_of(&w).is_empty()));
}

#[test]
fn start_attach_sees_all_output_and_exit_code() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = w
        .ok(&[
            "create",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 2",
        ])
        .trim()
        .to_string();
    let o = w.run(&["start", "-a", &id]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // already running: start is a no-op that prints the name
    let id2 = detach(&w, &["busybox", "sh", "-c", LOOP]);
    assert_eq!(w.ok(&["start", &id2]).trim(), id2);
    let o = w.run(&["start", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No such container: nope"));
}

#[test]
fn rename_moves_the_name() {
    let w = Wharf::new().with_busybox();
    let _cleanup = Cleanup(&w);
    let id = detach(&w, &["--name", "old", "busybox", "sh", "-c", LOOP]);
    w.ok(&["create", "--name", "taken", "busybox", "true"]);
    w.ok(&["rename", "old", "new"]);
    assert_eq!(inspect(&w, "new", "{{.Name}}"), "/new");
    assert_eq!(inspect(&w, "new", "{{.Id}}"), id);
    assert!(stderr(&w.run(&["inspect", "old"])).contains("No such object"));
    // the old name is free again, the new one is taken, running state is unchanged
    w.ok(&["create", "--name", "old", "busybox", "true"]);
    let o = w.run(&["rename", "new", "taken"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    let o = w.run(&["rename", "new", "new"]);
    assert_eq!(o.status.code(), Some(1));
    let o = w.run(&["rename", "new", "bad/name"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(inspect(&w, "new", "{{.State.Status}}"), "running");
    w.ok(&["stop", "-t", "0", "new"]);
}
