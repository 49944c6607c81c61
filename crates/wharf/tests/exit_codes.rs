//! docker's CLI exit codes, through the real binary: every failed command but `run`/`create`
//! exits 1, whatever the error's kind; a command on several objects tries every one first
//! (`rm -f`/`rmi -f` of a missing object is no failure); `run`/`create` keep the kind's code
//! (125, 126, 127). Where dockerd can run here, the same commands against it are the oracle.

mod common;

use common::dockerd::Dockerd;
use common::*;

/// (arguments, exit code, a line stderr must contain, stdout) in order: the cases share state
/// (`ok1` is started by the first and removed by the last).
const CASES: &[(&[&str], i32, &str, &str)] = &[
    (
        &["start", "bad1", "ok1"],
        1,
        "failed to start containers: bad1",
        "ok1\n",
    ),
    (
        &["start", "missing", "missing2"],
        1,
        "Error: failed to start containers: missing, missing2",
        "",
    ),
    (
        &["start", "-a", "missing"],
        1,
        "No such container: missing",
        "",
    ),
    (&["start", "-a", "bad1"], 1, "/nonexistent", ""),
    (
        &["stop", "missing", "missing2"],
        1,
        "Error response from daemon: No such container: missing2",
        "",
    ),
    (&["restart", "missing"], 1, "No such container: missing", ""),
    (&["kill", "missing"], 1, "No such container: missing", ""),
    (&["wait", "missing"], 1, "No such container: missing", ""),
    (&["pause", "missing"], 1, "No such container: missing", ""),
    (&["unpause", "missing"], 1, "No such container: missing", ""),
    (&["attach", "missing"], 1, "No such container: missing", ""),
    (
        &["rename", "missing", "x"],
        1,
        "No such container: missing",
        "",
    ),
    (&["port", "missing"], 1, "No such container: missing", ""),
    (
        &["inspect", "-f", "{{.Name}}", "m1", "bad1", "m2"],
        1,
        "Error: No such object: m2",
        "/bad1\n",
    ),
    (&["rmi", "nosuch"], 1, "No such image: nosuch:latest", ""),
    (
        &["rmi", "-f", "nosuch"],
        0,
        "No such image: nosuch:latest",
        "",
    ),
    (&["volume", "rm", "nosuch"], 1, "no such volume", ""),
    (&["volume", "inspect", "nosuch"], 1, "no such volume", ""),
    (
        &["rm", "missing"],
        1,
        "Error response from daemon: No such container: missing",
        "",
    ),
    (
        &["rm", "-f", "missing"],
        0,
        "No such container: missing",
        "",
    ),
    (
        &["rm", "-f", "missing", "ok1"],
        0,
        "No such container: missing",
        "ok1\n",
    ),
    // every other failed command exits 1 too (wharf exited 125 for these before), with the
    // daemon's prefix where docker's daemon refused
    (
        &["logs", "missing"],
        1,
        "Error response from daemon: No such container: missing",
        "",
    ),
    (
        &["exec", "missing", "true"],
        1,
        "Error response from daemon: No such container: missing",
        "",
    ),
    (&["exec", "bad1", "true"], 1, "is not running", ""),
    (&["top", "missing"], 1, "No such container: missing", ""),
    (
        &["tag", "nosuch", "x"],
        1,
        "Error response from daemon: No such image: nosuch:latest",
        "",
    ),
    (&["network", "inspect", "nope"], 1, "nope", "[]\n"),
    (&["network", "rm", "nope"], 1, "nope", ""),
    (&["volume", "ls", "-f", "dangling=maybe"], 1, "maybe", ""),
    (
        &["images", "-f", "bogus=1"],
        1,
        "Error response from daemon: invalid filter 'bogus'",
        "",
    ),
    (
        &["ps", "-f", "colour=red"],
        1,
        "invalid filter 'colour'",
        "",
    ),
    // create: 1 for the daemon's refusal, 125 for a request that does not parse
    (
        &["create", "--name", "bad1", "busybox", "true"],
        1,
        "already in use",
        "",
    ),
    (
        &["create", "--memory", "lots", "busybox", "true"],
        125,
        "lots",
        "",
    ),
    // run keeps the kind's code: 127 for a command that is not found, 125 for the engine's
    (
        &["run", "--rm", "busybox", "/nonexistent"],
        127,
        "/nonexistent",
        "",
    ),
    (
        &["run", "--name", "bad1", "busybox", "true"],
        125,
        "already in use",
        "",
    ),
];

fn setup(run: &dyn Fn(&[&str]) -> std::process::Output) {
    for args in [
        &["create", "--name", "ok1", "busybox", "sleep", "100"][..],
        &["create", "--name", "bad1", "busybox", "/nonexistent"],
    ] {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn failed_commands_exit_1_run_keeps_the_kinds_code() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    setup(&|a| w.run(a));
    for (args, code, err, out) in CASES {
        let o = w.run(args);
        assert_eq!(
            o.status.code(),
            Some(*code),
            "wharf {args:?}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains(err), "wharf {args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), *out, "wharf {args:?}");
    }

    let Some(dd) = Dockerd::start() else {
        eprintln!("docker part skipped: dockerd unavailable");
        return;
    };
    let tar = w.dir.path().join("busybox.tar");
    dd.ok(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
    setup(&|a| dd.docker(a));
    for (args, code, _, _) in CASES {
        let o = dd.docker(args);
        assert_eq!(
            o.status.code(),
            Some(*code),
            "docker {args:?}: {}",
            stderr(&o)
        );
    }
}
