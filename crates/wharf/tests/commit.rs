//! `diff`, `commit`, `export`, `history` through the real binary on the real kernel: a
//! container that adds, changes and deletes files and replaces a directory (opaque) →
//! docker's change lines; the committed image runs with those changes; the same upper dir
//! gives the same layer; save → OCI layout checked by umoci; hostile upper dirs.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::io::Read;
use std::path::Path;

/// busybox plus /data/{old1,old2} and /etc/motd, to delete and replace.
fn image(w: &Wharf) {
    let tar = w.dir.path().join("base.tar");
    write_busybox_tar_with(&tar, &[], &|b| {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, "data", std::io::empty()).unwrap();
        for (name, body) in [
            ("data/old1", "1\n"),
            ("data/old2", "2\n"),
            ("etc/motd", "hi\n"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(body.len() as u64);
            h.set_mtime(1_700_000_000);
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
    });
    w.ok(&["import", tar.to_str().unwrap(), "base:1"]);
}

const SCRIPT: &str = "echo new > /etc/motd2; echo more >> /etc/group; rm /etc/motd; \
                      rm -rf /data; mkdir /data; echo fresh > /data/new; \
                      mkdir -p /opt/app; echo bin > /opt/app/run; ln /opt/app/run /opt/app/hard; \
                      ln -s /etc/shadow /opt/app/out";

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(data);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn diff_commit_run_history() {
    let w = Wharf::new();
    image(&w);
    w.ok(&[
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        "base:1",
        "sh",
        "-c",
        SCRIPT,
    ]);
    let diff = w.ok(&["diff", "c1"]);
    assert_eq!(
        lines(&diff),
        [
            "C /data",
            "A /data/new",
            "D /data/old1",
            "D /data/old2",
            "C /etc",
            "C /etc/group",
            "A /etc/motd2",
            "D /etc/motd",
            "A /opt",
            "A /opt/app",
            "A /opt/app/hard",
            "A /opt/app/out",
            "A /opt/app/run",
        ],
        "{diff}"
    );
    assert_eq!(w.ok(&["container", "diff", "c1"]), diff);

    let id = w.ok(&[
        "commit",
        "-a",
        "Ann <ann@example.com>",
        "-m",
        "snap one",
        "-c",
        "ENV MODE=snap",
        "-c",
        "CMD [\"cat\", \"/data/new\"]",
        "-c",
        "LABEL tier=test",
        "c1",
        "snap:1",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // the changes: deleted file gone, opaque dir replaced, hard link kept
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "snap:1",
        "sh",
        "-c",
        "cat /etc/motd2; test -e /etc/motd || echo motd-gone; ls /data; tail -1 /etc/group; \
         stat -c %h /opt/app/run; readlink /opt/app/out; echo $MODE",
    ]);
    assert_eq!(
        lines(&out),
        [
            "new",
            "motd-gone",
            "new",
            "more",
            "2",
            "/etc/shadow",
            "snap"
        ],
        "{out}"
    );
    // CMD from --change
    assert_eq!(
        w.ok(&["run", "--rm", "--network", "none", "snap:1"]),
        "fresh\n"
    );
    let insp: serde_json::Value =
        serde_json::from_str(&w.ok(&["image", "inspect", "snap:1"])).unwrap();
    assert_eq!(insp[0]["Id"], id);
    assert_eq!(insp[0]["Author"], "Ann <ann@example.com>", "{insp}");
    assert_eq!(insp[0]["Config"]["Labels"]["tier"], "test", "{insp}");
    assert_eq!(
        insp[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        2,
        "{insp}"
    );

    // history: the commit entry on top with its comment, the import below it
    let h = w.ok(&["history", "snap:1"]);
    let rows = lines(&h);
    assert!(rows[0].starts_with("IMAGE "), "{h}");
    for col in ["CREATED", "CREATED BY", "SIZE", "COMMENT"] {
        assert!(rows[0].contains(col), "{h}");
    }
    assert_eq!(rows.len(), 3, "{h}");
    assert!(rows[1].starts_with(&id[7..19]), "{h}");
    assert!(rows[1].contains("snap one"), "{h}");
    assert!(rows[1].contains("sh -c echo new"), "{h}");
    assert!(rows[1].contains('…'), "created-by truncated to 45: {h}");
    let base = w.ok(&["images", "-q", "--no-trunc", "base:1"]);
    assert!(
        rows[2].starts_with(&base.trim()[7..19]),
        "base image named: {h}"
    );
    assert!(rows[2].contains("wharf import"), "{h}");
    let q = w.ok(&["image", "history", "-q", "snap:1"]);
    assert_eq!(lines(&q), [&id[7..19], &base.trim()[7..19]]);
    let f = w.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Comment}}",
        "snap:1",
    ]);
    assert_eq!(lines(&f)[0], format!("{id}|snap one"));
    let raw = w.ok(&[
        "history",
        "--human=false",
        "--format",
        "{{.Size}}",
        "snap:1",
    ]);
    assert!(raw.lines().all(|l| l.parse::<u64>().is_ok()), "{raw}");

    // determinism: the same upper dir, committed again, gives the same layer
    let id2 = w.ok(&["commit", "-m", "snap one", "c1"]);
    let layers = |img: &str| {
        let v: serde_json::Value = serde_json::from_str(&w.ok(&["image", "inspect", img])).unwrap();
        v[0]["RootFS"]["Layers"].clone()
    };
    assert_eq!(layers(id2.trim()), layers("snap:1"));

    // events
    let ev = w.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert!(ev.contains("container commit"), "{ev}");

    // export: the merged tree, stopped container
    let out = w.dir.path().join("fs.tar");
    w.ok(&["export", "-o", out.to_str().unwrap(), "c1"]);
    let names = tar_names(&std::fs::read(&out).unwrap());
    for n in [
        "bin/busybox",
        "etc/motd2",
        "data/new",
        "opt/app/hard",
        "etc/passwd",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} in export: {names:?}");
    }
    for n in ["etc/motd", "data/old1", "data/.wh..wh..opq", "etc/.wh.motd"] {
        assert!(!names.iter().any(|x| x == n), "{n} not in export");
    }
    assert!(w
        .ok(&["events", "--since", "10m", "--until", "0s"])
        .contains("export"));
    assert!(
        mounts_under(w.dir.path()).is_empty(),
        "export left no mount"
    );
}

#[test]
fn commit_pauses_a_running_container_and_export_streams() {
    let w = Wharf::new();
    image(&w);
    w.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "base:1",
        "sh",
        "-c",
        "echo up > /up; sleep 300",
    ]);
    // the file is written before we commit
    for _ in 0..100 {
        if w.ok(&["diff", "live"]).contains("A /up") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let id = w.ok(&["commit", "live", "live:snap"]);
    assert!(id.starts_with("sha256:"), "{id}");
    let st = w.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Paused}}",
        "live",
    ]);
    assert_eq!(st.trim(), "running false", "thawed again");
    // a paused container stays paused (nothing to freeze or thaw)
    w.ok(&["pause", "live"]);
    w.ok(&["commit", "live"]);
    let st = w.ok(&["inspect", "--format", "{{.State.Status}}", "live"]);
    assert_eq!(st.trim(), "paused");
    w.ok(&["unpause", "live"]);
    assert_eq!(
        w.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "live:snap",
            "cat",
            "/up"
        ]),
        "up\n"
    );
    // export of a running container to stdout
    let o = w.run(&["export", "live"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = tar_names(&o.stdout);
    assert!(names.iter().any(|n| n == "up"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("proc/") && n.len() > 5),
        "no /proc content: {names:?}"
    );
    w.ok(&["rm", "-f", "live"]);
    assert!(mounts_under(w.dir.path()).is_empty());
}

#[test]
fn hostile_upper_dir_fifo_socket_device_symlink() {
    let w = Wharf::new();
    image(&w);
    w.ok(&[
        "create",
        "--name",
        "hostile",
        "--network",
        "none",
        "base:1",
        "true",
    ]);
    let insp: serde_json::Value = serde_json::from_str(&w.ok(&["inspect", "hostile"])).unwrap();
    let id = insp[0]["Id"].as_str().unwrap().to_string();
    let upper = w.root().join("containers").join(&id).join("upper");
    std::fs::create_dir_all(upper.join("x")).unwrap();
    nix::unistd::mkfifo(
        &upper.join("x/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    // a socket (bound at a short path, SUN_LEN, then moved in)
    let short = w.dir.path().join("s.sock");
    let _sock = std::os::unix::net::UnixListener::bind(&short).unwrap();
    std::fs::rename(&short, upper.join("x/sock")).unwrap();
    nix::sys::stat::mknod(
        &upper.join("x/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    // a symlink to the host's /etc: stored as a link, never followed
    std::os::unix::fs::symlink("/etc", upper.join("x/hostetc")).unwrap();
    let diff = w.ok(&["diff", "hostile"]);
    assert_eq!(
        lines(&diff),
        [
            "A /x",
            "A /x/fifo",
            "A /x/hostetc",
            "A /x/null",
            "A /x/sock"
        ],
        "{diff}"
    );
    let id = w.ok(&["commit", "hostile", "hostile:1"]);
    // the committed layer, read back through save (OCI layout) and checked by umoci
    let dir = w.dir.path().join("oci");
    let tarf = w.dir.path().join("img.tar");
    w.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        tarf.to_str().unwrap(),
        "hostile:1",
    ]);
    std::fs::create_dir_all(&dir).unwrap();
    let st = std::process::Command::new("tar")
        .args(["-xf", tarf.to_str().unwrap(), "-C", dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let layer = last_layer(&dir);
    let mut ar = tar::Archive::new(&layer[..]);
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        seen.push(format!(
            "{} {:?}",
            e.path().unwrap().display(),
            e.header().entry_type()
        ));
    }
    assert_eq!(
        seen,
        [
            "x/ Directory",
            "x/fifo Fifo",
            "x/hostetc Symlink",
            "x/null Char"
        ],
        "socket skipped, device kept"
    );
    // the image id is the config digest the layout carries (what `docker load` keeps)
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let man: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.join("blobs/sha256").join(
                idx["manifests"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:"),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(man["config"]["digest"].as_str().unwrap(), id.trim());
    // umoci (an independent OCI implementation) unpacks it: whiteouts, device, link
    let bundle = w.dir.path().join("bundle");
    let o = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:1", dir.display()))
        .arg(&bundle)
        .output()
        .expect("umoci is installed (Debian's umoci)");
    assert!(
        o.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("data/old1").exists());
    assert_eq!(
        std::fs::read_link(rootfs.join("x/hostetc")).unwrap(),
        Path::new("/etc")
    );
    assert!(!rootfs.join("x/sock").exists());
    // docker-archive save → load into another store keeps the id
    let w2 = Wharf::new();
    let data = w.run(&["save", "hostile:1"]).stdout;
    let o = w2.run_stdin(&["load"], &data);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        w2.ok(&["images", "-q", "--no-trunc", "hostile:1"]).trim(),
        id.trim()
    );
    // host untouched through the link
    assert!(Path::new("/etc/passwd").exists());
}

/// The last layer blob of the only manifest of an OCI layout directory (uncompressed or gzip).
fn last_layer(dir: &Path) -> Vec<u8> {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let man: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layers = man["layers"].as_array().unwrap();
    let data = std::fs::read(blob(layers.last().unwrap()["digest"].as_str().unwrap())).unwrap();
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut child = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        feeder.join().unwrap().unwrap();
        assert!(child.wait().unwrap().success());
        out
    } else {
        data
    }
}

#[test]
fn commit_name_is_checked_by_the_admin_policy() {
    let w = Wharf::new();
    image(&w);
    w.ok(&[
        "create",
        "--name",
        "pc",
        "--network",
        "none",
        "base:1",
        "true",
    ]);
    let before = w.ok(&["images", "-q"]);
    let p = common::policy::Pol::new(&w, "[registries]\nallow = [\"registry.local:5000\"]\n");
    p.refused(&["commit", "pc", "quay.io/x/y:1"], "registries.allow");
    assert_eq!(
        w.ok(&["images", "-q"]),
        before,
        "a refused commit makes no image"
    );
    p.ok(&["commit", "pc", "registry.local:5000/team/app:1"]);
    assert!(w
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("registry.local:5000/team/app:1"));
    // errors exit 1, as docker's CLI for these commands
    for args in [
        &["diff", "nosuch"][..],
        &["commit", "nosuch"],
        &["export", "-o", "/dev/null", "nosuch"],
        &["history", "nosuch:1"],
    ] {
        let o = w.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    }
}

/// The same container script under a private dockerd: `docker diff` prints what `wharf diff`
/// prints, and the image wharf committed loads into docker with its id and runs there.
#[test]
fn same_as_dockerd() {
    let w = Wharf::new();
    image(&w);
    w.ok(&[
        "run",
        "--name",
        "dd1",
        "--network",
        "none",
        "base:1",
        "sh",
        "-c",
        SCRIPT,
    ]);
    let ours = w.ok(&["diff", "dd1"]);
    let id = w.ok(&["commit", "-m", "via wharf", "dd1", "fromwharf:1"]);
    let Some(dd) = common::dockerd::Dockerd::start() else {
        eprintln!("docker part skipped: dockerd unavailable");
        return;
    };
    let base = w.dir.path().join("base.tar");
    dd.ok(&["import", base.to_str().unwrap(), "base:1"]);
    dd.ok(&[
        "run",
        "--name",
        "dd1",
        "--network",
        "none",
        "base:1",
        "sh",
        "-c",
        SCRIPT,
    ]);
    let theirs = dd.ok(&["diff", "dd1"]);
    // docker's daemon lists a directory's entries in Go map order: compare as sets, and
    // check docker's grouping (a directory before what changed in it) on ours
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&ours), sorted(&theirs), "wharf diff vs docker diff");
    // wharf's commit, saved and loaded by docker: same id, same files
    let archive = w.dir.path().join("fromwharf.tar");
    w.ok(&["save", "-o", archive.to_str().unwrap(), "fromwharf:1"]);
    dd.ok(&["load", "-i", archive.to_str().unwrap()]);
    let docker_id = dd.ok(&["image", "inspect", "--format", "{{.Id}}", "fromwharf:1"]);
    assert_eq!(docker_id.trim(), id.trim());
    let out = dd.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "fromwharf:1",
        "sh",
        "-c",
        "ls /data; test -e /etc/motd || echo motd-gone",
    ]);
    assert_eq!(lines(&out), ["new", "motd-gone"]);
    let hist = dd.ok(&["history", "--format", "{{.Comment}}", "fromwharf:1"]);
    assert_eq!(lines(&hist)[0], "via wharf");
    // docker's own commit of the same container: the same history line and config
    dd.ok(&["commit", "-m", "via wharf", "dd1", "fromdocker:1"]);
    // (SIZE differs on purpose: docker's is the files' bytes, wharf's the layer tar's, as
    // its `images` SIZE; docs/store.md)
    let fmt = "{{.CreatedBy}}|{{.Comment}}";
    let theirs = dd.ok(&["history", "--no-trunc", "--format", fmt, "fromdocker:1"]);
    let ours = w.ok(&["history", "--no-trunc", "--format", fmt, "fromwharf:1"]);
    assert_eq!(lines(&ours)[0], lines(&theirs)[0], "history top entry");
    let cfg = "{{json .Config.Env}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}";
    assert_eq!(
        w.ok(&["image", "inspect", "--format", cfg, "fromwharf:1"]),
        dd.ok(&["image", "inspect", "--format", cfg, "fromdocker:1"]),
        "committed config"
    );
}
