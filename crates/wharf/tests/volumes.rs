//! Volumes through the binary: `volume ls --filter`, `volume prune` (docker's output, anonymous only unless `-a`,
//! in-use volumes kept, the prompt), and the volume `create`/`destroy` events of named and
//! anonymous volumes as `wharf events` shows them (`run -v NAME:/x` at start, `run --rm -v
//! /anon` in the foreground and detached, `rm -v`, `volume rm`, `volume prune`).

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

fn volume_names(w: &Wharf) -> Vec<String> {
    let mut v: Vec<String> = w
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// `(action, name)` of the volume events so far.
fn volume_events(w: &Wharf) -> Vec<(String, String)> {
    w.ok(&[
        "events",
        "--until",
        "0s",
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}",
    ])
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 3, "{l}");
        assert_eq!(f[2], "local", "{l}");
        (f[0].to_string(), f[1].to_string())
    })
    .collect()
}

fn ev(a: &str, n: &str) -> (String, String) {
    (a.to_string(), n.to_string())
}

#[test]
fn prune_like_docker() {
    let w = Wharf::new().with_busybox();
    w.ok(&["volume", "create", "named"]);
    // an anonymous volume in use by a stopped container, and one left behind by rm
    w.ok(&[
        "create", "--name", "keeper", "-v", "/kept", "busybox", "true",
    ]);
    w.ok(&[
        "run",
        "--name",
        "gone",
        "-v",
        "/left",
        "busybox",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /left/f",
    ]);
    let before = volume_names(&w);
    assert_eq!(before.len(), 3, "{before:?}");
    w.ok(&["rm", "gone"]);
    let left: Vec<String> = volume_names(&w)
        .into_iter()
        .filter(|v| v != "named" && !w.ok(&["inspect", "keeper"]).contains(v.as_str()))
        .collect();
    assert_eq!(left.len(), 1);
    // ls --filter: what no container mounts
    let mut dangling: Vec<String> = w
        .ok(&["volume", "ls", "-q", "--filter", "dangling=true"])
        .lines()
        .map(str::to_string)
        .collect();
    dangling.sort();
    let mut want = vec![left[0].clone(), "named".to_string()];
    want.sort();
    assert_eq!(dangling, want);
    assert_eq!(w.ok(&["volume", "ls", "-q", "-f", "name=nam"]), "named\n");
    let o = w.run(&["volume", "ls", "-f", "dangling=maybe"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("invalid filter 'dangling=maybe'"),
        "{}",
        stderr(&o)
    );

    // no answer to the prompt: nothing removed
    let o = w.run(&["volume", "prune"]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("WARNING! This will remove anonymous local volumes"),
        "{}",
        stderr(&o)
    );
    assert_eq!(volume_names(&w).len(), 3);

    let out = w.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!(
            "Deleted Volumes:\n{}\n\nTotal reclaimed space: 3kB\n",
            left[0]
        )
    );
    assert_eq!(
        w.ok(&["volume", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    let o = w.run(&["volume", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("invalid filter 'until'"),
        "{}",
        stderr(&o)
    );

    // -a: named ones too, never one a container uses
    let out = w.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(
        out,
        "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(volume_names(&w).len(), 1);
    w.ok(&["rm", "-v", "keeper"]);
    assert!(volume_names(&w).is_empty());
}

#[test]
fn volume_events_for_named_and_anonymous_volumes() {
    let w = Wharf::new().with_busybox();
    w.ok(&["volume", "create", "v1"]);
    // a named volume a run creates when it starts
    w.ok(&["run", "--rm", "-v", "auto:/x", "busybox", "true"]);
    w.ok(&["volume", "rm", "v1", "auto"]);
    assert_eq!(
        volume_events(&w),
        [
            ev("create", "v1"),
            ev("create", "auto"),
            ev("destroy", "v1"),
            ev("destroy", "auto"),
        ]
    );

    // --rm, foreground and detached: the anonymous volume comes and goes, with events
    w.ok(&["run", "--rm", "-v", "/anon", "busybox", "true"]);
    w.ok(&["run", "-d", "--rm", "-v", "/anon", "busybox", "true"]);
    assert!(eventually(20, || volume_names(&w).is_empty()));
    let evs = volume_events(&w);
    assert_eq!(evs.len(), 8, "{evs:?}");
    let anon = &evs[4..];
    for pair in anon.chunks(2) {
        assert_eq!(pair[0].0, "create", "{evs:?}");
        assert_eq!(pair[1], ev("destroy", &pair[0].1), "{evs:?}");
        assert_eq!(pair[0].1.len(), 64);
    }

    // rm -v
    w.ok(&["run", "--name", "cv", "-v", "/data", "busybox", "true"]);
    let name = volume_names(&w).pop().unwrap();
    w.ok(&["rm", "-v", "cv"]);
    let evs = volume_events(&w);
    assert_eq!(evs[8..], [ev("create", &name), ev("destroy", &name)]);
    // the filter by volume name
    let only = w.ok(&[
        "events",
        "--until",
        "0s",
        "--filter",
        &format!("volume={name}"),
    ]);
    assert_eq!(only.lines().count(), 2, "{only}");
    assert!(
        only.contains(&format!("volume create {name} (driver=local)")),
        "{only}"
    );
}
