//! Image commands through the CLI: import (file and stdin), images, tag, rmi, hostile input,
//! and concurrent use of one store.

mod common;
use common::*;

#[test]
fn import_images_tag_rmi() {
    let w = Wharf::new();
    let tar = w.dir.path().join("bb.tar");
    write_busybox_tar(&tar);
    let id = w.ok(&["import", tar.to_str().unwrap(), "busybox:latest"]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    let list = w.ok(&["images"]);
    let mut lines = list.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("REPOSITORY"), "{header}");
    for col in ["TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with("busybox "), "{row}");
    assert!(row.contains(&id.trim()[7..19]), "short id shown: {row}");
    // stdin import
    let data = std::fs::read(&tar).unwrap();
    let o = w.run_stdin(&["import", "-", "other:1"], &data);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("sha256:"), "{}", stdout(&o));
    // tag + formats
    w.ok(&["tag", "busybox", "registry.local:5000/team/bb:v2"]);
    let f = w.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(f.contains("registry.local:5000/team/bb:v2"), "{f}");
    let j = w.ok(&["images", "--format", "json"]);
    for l in j.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["ID"].as_str().unwrap().len() == 12);
    }
    let insp: serde_json::Value =
        serde_json::from_str(&w.ok(&["image", "inspect", "busybox"])).unwrap();
    assert_eq!(insp[0]["Id"], id.trim());
    assert_eq!(insp[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // the stdin import is its own image (its config has its own creation time)
    let out = w.ok(&["rmi", "other:1"]);
    assert!(
        out.starts_with("Untagged: other:1\nDeleted: sha256:"),
        "{out}"
    );
    // rmi of one of two tags untags only
    w.ok(&["tag", "busybox", "alias:1"]);
    assert_eq!(w.ok(&["rmi", "alias:1"]), "Untagged: alias:1\n");
    // used by a container → refused without -f
    w.ok(&["run", "--name", "user", "busybox", "true"]);
    let o = w.run(&["rmi", "registry.local:5000/team/bb:v2"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "untag of one of two tags is fine: {}",
        stderr(&o)
    );
    let o = w.run(&["rmi", "busybox"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("conflict"), "{}", stderr(&o));
    w.ok(&["rm", "user"]);
    let out = w.ok(&["rmi", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {}", id.trim())), "{out}");
    assert_eq!(w.ok(&["images", "-q"]), "");
    // unreferenced blobs and snapshots are gone
    let blobs = std::fs::read_dir(w.root().join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0);
    let snaps = std::fs::read_dir(w.root().join("snapshots"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(snaps, 0);
}

#[test]
fn import_bad_input() {
    let w = Wharf::new();
    let o = w.run(&["import", "/nonexistent.tar", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent.tar"), "{}", stderr(&o));
    let junk = w.dir.path().join("junk.tar");
    std::fs::write(&junk, vec![0x41u8; 10_000]).unwrap();
    let o = w.run(&["import", junk.to_str().unwrap(), "junk"]);
    assert_eq!(o.status.code(), Some(1));
    // hostile: path traversal
    let evil = w.dir.path().join("evil.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&evil).unwrap());
        let mut h = tar::Header::new_old();
        let name = b"../../escaped-by-wharf-test";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(4);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, &b"evil"[..]).unwrap();
        b.finish().unwrap();
    }
    let o = w.run(&["import", evil.to_str().unwrap(), "evil"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(".."), "names the entry: {}", stderr(&o));
    assert_eq!(w.ok(&["images", "-q"]), "");
    assert!(!w.dir.path().join("escaped-by-wharf-test").exists());
    assert!(!std::path::Path::new("/escaped-by-wharf-test").exists());
    let o = w.run(&["import", "-c", "RUN x", junk.to_str().unwrap(), "x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = w.run(&["tag", "nosuch", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = w.run(&["import", junk.to_str().unwrap(), "Bad:Name"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn import_change_sets_cmd() {
    let w = Wharf::new();
    let tar = w.dir.path().join("bb.tar");
    write_busybox_tar(&tar);
    w.ok(&[
        "import",
        "-c",
        r#"CMD ["echo", "from-cmd"]"#,
        "-c",
        "ENV GREETING=hi",
        "-c",
        "WORKDIR /tmp",
        tar.to_str().unwrap(),
        "withcmd",
    ]);
    assert_eq!(w.ok(&["run", "--rm", "withcmd"]), "from-cmd\n");
    assert_eq!(
        w.ok(&["run", "--rm", "withcmd", "sh", "-c", "echo $GREETING; pwd"]),
        "hi\n/tmp\n"
    );
    let o = w.run(&["run", "--rm", "--entrypoint", "", "withcmd"]);
    assert_eq!(o.status.code(), Some(125), "no command: {}", stderr(&o));
}

#[test]
fn twenty_parallel_imports_and_runs() {
    let w = Wharf::new().with_busybox();
    let tar = w.dir.path().join("bb2.tar");
    write_busybox_tar(&tar);
    let tar_s = tar.to_str().unwrap().to_string();
    std::thread::scope(|s| {
        let mut hs = Vec::new();
        for i in 0..20 {
            let w = &w;
            let tar_s = tar_s.clone();
            hs.push(s.spawn(move || {
                if i % 2 == 0 {
                    let o = w.run(&["import", &tar_s, &format!("par:{i}")]);
                    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
                } else {
                    let o = w.run(&["run", "--rm", "busybox", "echo", "par"]);
                    assert_eq!(stdout(&o), "par\n", "{}", stderr(&o));
                }
            }));
        }
        for h in hs {
            h.join().expect("thread");
        }
    });
    let tags = w.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for i in (0..20).step_by(2) {
        assert!(tags.contains(&format!("par:{i}")), "{tags}");
    }
    assert_eq!(w.ok(&["ps", "-a", "-q"]), "");
    // every image still runs
    assert_eq!(w.ok(&["run", "--rm", "par:4", "echo", "ok"]), "ok\n");
    // and removing them all leaves an empty store
    for i in (0..20).step_by(2) {
        w.ok(&["rmi", &format!("par:{i}")]);
    }
    w.ok(&["rmi", "busybox"]);
    assert_eq!(
        std::fs::read_dir(w.root().join("blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}
