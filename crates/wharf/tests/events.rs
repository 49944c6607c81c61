//! Engine events (docker's /events shape) written by every wharf process to the run root's
//! `events.log`: a foreground `run --rm`, a detached container removed with `rm -f`, a restart
//! policy's restarts, and `rmi`. Real binary, real containers; only this test's store.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn events(w: &Wharf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(w.run_root().join("events.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn actions_of(w: &Wharf, id: &str) -> Vec<String> {
    events(w)
        .iter()
        .filter(|e| e["Actor"]["ID"] == id)
        .map(|e| {
            let a = e["Action"].as_str().unwrap().to_string();
            match e["Actor"]["Attributes"]["exitCode"].as_str() {
                Some(c) => format!("{a}:{c}"),
                None => a,
            }
        })
        .collect()
}

#[test]
fn container_and_image_events() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    // foreground, removed with it
    let o = w.run(&[
        "run",
        "--rm",
        "--name",
        "ev1",
        "busybox",
        "sh",
        "-c",
        "hostname; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let short = stdout(&o).trim().to_string();
    let ev = events(&w);
    let first = ev
        .iter()
        .find(|e| e["Actor"]["ID"].as_str().unwrap().starts_with(&short))
        .unwrap();
    assert_eq!(first["Type"], "container");
    assert_eq!(first["Actor"]["Attributes"]["name"], "ev1");
    assert_eq!(first["Actor"]["Attributes"]["image"], "busybox");
    assert_eq!(first["scope"], "local");
    let id = first["Actor"]["ID"].as_str().unwrap().to_string();
    assert_eq!(actions_of(&w, &id), ["create", "start", "die:3", "destroy"]);

    // detached, killed and removed
    let id = w
        .ok(&["run", "-d", "busybox", "sleep", "100"])
        .trim()
        .to_string();
    w.ok(&["rm", "-f", &id]);
    assert!(
        eventually(10, || actions_of(&w, &id).len() >= 4),
        "{:?}",
        actions_of(&w, &id)
    );
    let a = actions_of(&w, &id);
    assert_eq!(a[..2], ["create", "start"]);
    assert!(
        a.contains(&"die:137".to_string()) && a.contains(&"destroy".to_string()),
        "{a:?}"
    );

    // a restart policy: one die and one start per restart
    let id = w
        .ok(&[
            "run",
            "-d",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ])
        .trim()
        .to_string();
    assert!(
        eventually(15, || actions_of(&w, &id)
            .iter()
            .filter(|a| *a == "die:1")
            .count()
            == 3),
        "{:?}",
        actions_of(&w, &id)
    );
    assert_eq!(
        actions_of(&w, &id),
        ["create", "start", "die:1", "start", "die:1", "start", "die:1"]
    );

    // images
    w.ok(&["tag", "busybox", "other:1"]);
    w.ok(&["rmi", "other:1"]);
    assert!(
        events(&w).iter().any(|e| e["Type"] == "image"
            && e["Action"] == "untag"
            && e["Actor"]["ID"] == "other:1"),
        "{:?}",
        events(&w)
    );
}

/// `wharf events`: docker's text lines and `--format '{{json .}}'`, filters (one key's values
/// are alternatives, keys must all match), bad filters refused, and following: events other
/// processes record while it runs are printed.
#[test]
fn events_command_renders_filters_and_follows() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    w.ok(&["run", "--rm", "--name", "one", "busybox", "true"]);
    let o = w.run(&[
        "run", "--rm", "--name", "two", "busybox", "sh", "-c", "exit 2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let out = w.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "-f",
        "container=one",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].contains(" container create ") && lines[0].ends_with("(image=busybox, name=one)")
    );
    assert!(
        lines[2].contains(" container die ") && lines[2].contains("exitCode=0"),
        "{out}"
    );
    let out = w.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "-f",
        "event=die",
        "-f",
        "container=one",
        "-f",
        "container=two",
        "--format",
        "{{json .}}",
    ]);
    let codes: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["Actor"]["Attributes"]["exitCode"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(codes, ["0", "2"], "{out}");
    let o = w.run(&["events", "--until", "0s", "-f", "colour=red"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("invalid filter 'colour'"),
        "{}",
        stderr(&o)
    );
    // follow: only what happens from now on
    let mut child = w
        .command(&["events", "-f", "container=three", "--format", "{{.Action}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    w.ok(&["run", "--rm", "--name", "three", "busybox", "true"]);
    let mut stdout = child.stdout.take().unwrap();
    let got = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let g2 = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 {
                break;
            }
            g2.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let done = eventually(10, || got.lock().unwrap().lines().count() >= 4);
    let _ = child.kill();
    let _ = child.wait();
    assert!(done, "{}", got.lock().unwrap());
    assert_eq!(
        got.lock().unwrap().lines().collect::<Vec<_>>(),
        ["create", "start", "die", "destroy"]
    );
}
