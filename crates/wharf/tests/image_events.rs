//! Image events through the binary: `import`, `tag`, `load` (and `rmi`'s untag) as
//! `wharf events --since ... --until ...` shows them (pull: crates/wharf-engine/tests/images.rs).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn import_tag_load_events() {
    let w = Wharf::new().with_busybox();
    let id = w
        .ok(&["inspect", "--format", "{{.Id}}", "busybox"])
        .trim()
        .to_string();
    w.ok(&["tag", "busybox", "ev/bb:2"]);
    let archive = w.dir.path().join("bb.tar");
    w.ok(&["save", "-o", archive.to_str().unwrap(), "ev/bb:2"]);
    w.ok(&["rmi", "ev/bb:2"]);
    w.ok(&["load", "-i", archive.to_str().unwrap()]);
    let out = w.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "-f",
        "type=image",
        "--format",
        "{{json .}}",
    ]);
    let lines: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["Type"], "image");
            format!(
                "{} {} {}",
                v["Action"].as_str().unwrap(),
                v["Actor"]["ID"].as_str().unwrap(),
                v["Actor"]["Attributes"]["name"]
                    .as_str()
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            format!("import {id} {id}"),
            format!("tag {id} busybox:latest"),
            format!("tag {id} ev/bb:2"),
            "untag ev/bb:2 ".to_string(),
            format!("load {id} {id}"),
            format!("tag {id} ev/bb:2"),
        ],
        "{out}"
    );
}
