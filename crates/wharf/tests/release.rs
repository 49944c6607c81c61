//! One release path: a container that failed to start, and one whose foreground CLI was
//! killed (reconciled by the next command), leave nothing of theirs on the host — no mount
//! below the store, no cgroup directory, no run directory, no process — and releasing again
//! (`rm -f` after the reconcile, a second reader) is harmless. Counts only this test's own
//! containers: other wharf containers run on the same host meanwhile.

mod common;

use common::{cgroup_dirs, mounts_under, stderr, Wharf};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn id_of(w: &Wharf, name: &str) -> String {
    w.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

fn run_dir(w: &Wharf, id: &str) -> PathBuf {
    w.run_root().join("containers").join(id)
}

/// Processes whose cgroup names this container, or that run `marker` in their argv.
fn processes_of(id: &str, marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cg.contains(id) || cmd.contains(marker) {
            out.push(format!("{pid}: {cmd}"));
        }
    }
    out
}

/// What the container `id` still holds on the host (empty: released).
fn held(w: &Wharf, id: &str, marker: &str) -> Vec<String> {
    let mut out: Vec<String> = mounts_under(w.dir.path())
        .into_iter()
        .map(|m| format!("mount {m}"))
        .collect();
    out.extend(
        cgroup_dirs(id)
            .into_iter()
            .map(|p| format!("cgroup {}", p.display())),
    );
    if run_dir(w, id).exists() {
        out.push(format!("run dir {}", run_dir(w, id).display()));
    }
    out.extend(
        processes_of(id, marker)
            .into_iter()
            .map(|p| format!("process {p}")),
    );
    out
}

fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn failed_starts_release_everything() {
    let w = Wharf::new().with_busybox();
    // foreground: the cgroup exists when init fails to find the command (127)
    let o = w.run(&["run", "--name", "rel-fg", "busybox", "/no/such/cmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let id = id_of(&w, "rel-fg");
    assert_eq!(held(&w, &id, "/no/such/cmd"), Vec::<String>::new());
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.State.Status}}", "rel-fg"])
            .trim(),
        "created"
    );
    // detached: the monitor's start fails
    let o = w.run(&["run", "-d", "--name", "rel-d", "busybox", "/no/such/cmd2"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let id_d = id_of(&w, "rel-d");
    assert_eq!(held(&w, &id_d, "/no/such/cmd2"), Vec::<String>::new());
    // `--rm`: not even the record stays
    let o = w.run(&[
        "run",
        "--rm",
        "--name",
        "rel-rm",
        "busybox",
        "/no/such/cmd3",
    ]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(!w.run(&["inspect", "rel-rm"]).status.success());
    // releasing again through rm is fine
    w.ok(&["rm", "-f", "rel-fg", "rel-d"]);
    assert!(w.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn killed_cli_is_reconciled_and_released_once_and_again() {
    let w = Wharf::new().with_busybox();
    let marker = "sleep 7391";
    let mut cli = w
        .command(&["run", "--name", "rel-killed", "busybox", "sleep", "7391"])
        .spawn()
        .expect("spawn wharf run");
    let mut id = String::new();
    assert!(
        eventually(20, || {
            let o = w.run(&["inspect", "-f", "{{.Id}} {{.State.Status}}", "rel-killed"]);
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            match out.split_whitespace().collect::<Vec<_>>()[..] {
                [i, "running"] => {
                    id = i.to_string();
                    true
                }
                _ => false,
            }
        }),
        "the container never ran"
    );
    assert!(
        !cgroup_dirs(&id).is_empty(),
        "a running container has a cgroup"
    );
    assert!(
        run_dir(&w, &id).exists(),
        "a running container has a run dir"
    );
    let _ = cli.kill();
    let _ = cli.wait();
    // the next reader reconciles (killed with its client: 137) and releases
    assert!(
        eventually(10, || {
            w.ok(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "rel-killed",
            ])
            .trim()
                == "exited 137"
        }),
        "not reconciled: {}",
        w.ok(&["inspect", "-f", "{{.State.Status}}", "rel-killed"])
    );
    let mut left = Vec::new();
    assert!(
        eventually(10, || {
            left = held(&w, &id, marker);
            left.is_empty()
        }),
        "{left:#?}"
    );
    // a second reader and a removal release again without error
    w.ok(&["ps", "-a"]);
    w.ok(&["rm", "-f", "rel-killed"]);
    assert_eq!(held(&w, &id, marker), Vec::<String>::new());
}

#[test]
fn killed_cli_of_an_rm_container_removes_it() {
    let w = Wharf::new().with_busybox();
    let marker = "sleep 7392";
    let mut cli = w
        .command(&[
            "run",
            "--rm",
            "--name",
            "rel-rm-killed",
            "busybox",
            "sleep",
            "7392",
        ])
        .spawn()
        .expect("spawn wharf run");
    let mut id = String::new();
    assert!(eventually(20, || {
        let o = w.run(&[
            "inspect",
            "-f",
            "{{.Id}} {{.State.Status}}",
            "rel-rm-killed",
        ]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        match out.split_whitespace().collect::<Vec<_>>()[..] {
            [i, "running"] => {
                id = i.to_string();
                true
            }
            _ => false,
        }
    }));
    let _ = cli.kill();
    let _ = cli.wait();
    assert!(
        eventually(10, || !w
            .run(&["inspect", "rel-rm-killed"])
            .status
            .success()),
        "the --rm container stayed after its CLI was killed"
    );
    let mut left = Vec::new();
    assert!(
        eventually(10, || {
            left = held(&w, &id, marker);
            left.is_empty()
        }),
        "{left:#?}"
    );
}

/// The forced transition: `stop` while the restart policy waits between two runs leaves the
/// container exited with its last run's code, stopped by hand (no more restarts), released.
#[test]
fn stop_of_a_restarting_container_keeps_it_down() {
    let w = Wharf::new().with_busybox();
    let marker = "exit 3 # rel-flap";
    let id = w
        .ok(&[
            "run",
            "-d",
            "--restart",
            "always",
            "--name",
            "rel-flap",
            "busybox",
            "sh",
            "-c",
            marker,
        ])
        .trim()
        .to_string();
    // the backoff doubles from 100 ms: by the 4th restart it waits 1.6 s, in `restarting`
    let fmt = "{{.State.Status}} {{.RestartCount}}";
    assert!(
        eventually(20, || {
            let s = w.ok(&["inspect", "-f", fmt, &id]);
            let mut f = s.split_whitespace();
            f.next() == Some("restarting")
                && f.next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n >= 4)
        }),
        "never restarting: {}",
        w.ok(&["inspect", "-f", fmt, &id])
    );
    let count_before = w.ok(&["inspect", "-f", "{{.RestartCount}}", &id]);
    w.ok(&["stop", &id]);
    assert_eq!(
        w.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id
        ])
        .trim(),
        "exited 3"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", &id])
            .trim(),
        format!("exited {}", count_before.trim()),
        "restarted after the stop"
    );
    assert_eq!(held(&w, &id, marker), Vec::<String>::new());
    w.ok(&["rm", &id]);
}
