//! `save` / `load` against real tools: wharf round trip, docker 20.10 (a private dockerd),
//! skopeo, umoci, gzip/zstd compressed archives, and hostile archives refused with the store
//! unchanged.

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::dockerd::Dockerd;
use common::registry::Serve;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn id_of(w: &Wharf, name: &str) -> String {
    w.ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

fn which(tool: &str) -> Option<PathBuf> {
    for d in ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin"] {
        let p = Path::new(d).join(tool);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// Runs podman against a private store under `dir` (vfs: no mounts to leave behind).
fn podman_in<'a>(podman: &'a Path, dir: &Path) -> impl Fn(&[&str]) -> std::process::Output + 'a {
    let dir = dir.to_path_buf();
    move |args: &[&str]| {
        Command::new(podman)
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .expect("podman")
    }
}

/// Snapshot of what a store shows: image list and blob names.
fn store_state(w: &Wharf) -> (String, Vec<String>) {
    let images = w.ok(&["images", "--no-trunc", "-q"]);
    let mut blobs: Vec<String> = std::fs::read_dir(w.root().join("blobs/sha256"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    blobs.sort();
    (images, blobs)
}

#[test]
fn round_trip_and_compression() {
    let w = Wharf::new().with_busybox();
    let id = id_of(&w, "busybox");
    let d = w.dir.path();
    let s = d.join("s.tar");
    w.ok(&["save", "-o", s.to_str().unwrap(), "busybox:latest"]);

    let w2 = Wharf::new();
    let out = w2.ok(&["load", "-i", s.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    assert_eq!(id_of(&w2, "busybox"), id);
    assert_eq!(
        w2.ok(&["run", "--rm", "busybox", "echo", "hi"]).trim(),
        "hi"
    );
    // loading again is idempotent
    w2.ok(&["load", "-i", s.to_str().unwrap()]);

    // OCI layout keeps the manifest digest
    let o = d.join("o.tar");
    w.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        o.to_str().unwrap(),
        "busybox",
    ]);
    let w3 = Wharf::new();
    w3.ok(&["load", "-i", o.to_str().unwrap()]);
    assert_eq!(id_of(&w3, "busybox"), id);
    let a = std::fs::read(s.parent().unwrap().join("root/meta/images.json")).unwrap();
    let b = std::fs::read(w3.root().join("meta/images.json")).unwrap();
    let man = |j: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(j).unwrap()["images"]
            [id.trim_start_matches("sha256:")]["manifest"]
            .clone()
    };
    assert_eq!(
        man(&a),
        man(&b),
        "manifest digest survives an OCI round trip"
    );

    // gzip and zstd by magic bytes, from stdin too
    let gz = d.join("s.tar.gz");
    assert!(sh(&format!("gzip -c {} > {}", s.display(), gz.display()))
        .status
        .success());
    let w4 = Wharf::new();
    w4.ok(&["load", "-i", gz.to_str().unwrap()]);
    assert_eq!(id_of(&w4, "busybox"), id);
    if which("zstd").is_some() {
        let zst = d.join("s.tar.zst");
        assert!(
            sh(&format!("zstd -q -c {} > {}", s.display(), zst.display()))
                .status
                .success()
        );
        let w5 = Wharf::new();
        let o = w5.run_stdin(&["load"], &std::fs::read(&zst).unwrap());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(id_of(&w5, "busybox"), id);
    } else {
        eprintln!("skipped zstd: zstd not installed");
    }
}

#[test]
fn docker_round_trip() {
    let Some(dd) = Dockerd::start() else {
        eprintln!("skipped: dockerd unavailable");
        return;
    };
    let w = Wharf::new().with_busybox();
    let id = id_of(&w, "busybox");
    let s = w.dir.path().join("s.tar");
    w.ok(&["save", "-o", s.to_str().unwrap(), "busybox"]);
    let o = dd.docker(&["load", "-i", s.to_str().unwrap()]);
    assert!(o.status.success(), "docker load: {}", stderr(&o));
    assert!(
        stdout(&o).contains("Loaded image: busybox:latest"),
        "{}",
        stdout(&o)
    );
    let o = dd.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox:latest"]);
    assert_eq!(stdout(&o).trim(), id, "docker sees the same image id");
    let back = w.dir.path().join("d.tar");
    let o = dd.docker(&["save", "-o", back.to_str().unwrap(), "busybox:latest"]);
    assert!(o.status.success(), "docker save: {}", stderr(&o));
    let w2 = Wharf::new();
    assert_eq!(
        w2.ok(&["load", "-i", back.to_str().unwrap()]).trim(),
        "Loaded image: busybox:latest"
    );
    assert_eq!(id_of(&w2, "busybox"), id);
    assert_eq!(
        w2.ok(&["run", "--rm", "busybox", "echo", "ok"]).trim(),
        "ok"
    );
}

#[test]
fn skopeo_and_umoci() {
    let w = Wharf::new().with_busybox();
    let id = id_of(&w, "busybox");
    let d = w.dir.path();
    let s = d.join("s.tar");
    let o = d.join("o.tar");
    w.ok(&["save", "-o", s.to_str().unwrap(), "busybox"]);
    w.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        o.to_str().unwrap(),
        "busybox",
    ]);
    if which("skopeo").is_some() {
        for src in [
            format!("docker-archive:{}", s.display()),
            format!("oci-archive:{}", o.display()),
        ] {
            let out = sh(&format!("skopeo inspect --raw {src}"));
            assert!(out.status.success(), "{src}: {}", stderr(&out));
            let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(m["config"]["digest"].as_str(), Some(id.as_str()), "{src}");
        }
        // skopeo: OCI dir → docker-archive and → oci-archive, both load in wharf
        let dir = d.join("ocidir");
        let da = d.join("sk-docker.tar");
        let oa = d.join("sk-oci.tar");
        for cmd in [
            format!(
                "skopeo copy -q oci-archive:{} oci:{}:latest",
                o.display(),
                dir.display()
            ),
            format!(
                "skopeo copy -q oci:{}:latest docker-archive:{}:busybox:sk",
                dir.display(),
                da.display()
            ),
            format!(
                "skopeo copy -q oci:{}:latest oci-archive:{}:busybox:sk2",
                dir.display(),
                oa.display()
            ),
        ] {
            let out = sh(&cmd);
            assert!(out.status.success(), "{cmd}: {}", stderr(&out));
        }
        let w2 = Wharf::new();
        assert_eq!(
            w2.ok(&["load", "-i", da.to_str().unwrap()]).trim(),
            "Loaded image: busybox:sk"
        );
        assert_eq!(id_of(&w2, "busybox:sk"), id);
        assert_eq!(
            w2.ok(&["load", "-i", oa.to_str().unwrap()]).trim(),
            "Loaded image: busybox:sk2"
        );
        assert_eq!(
            w2.ok(&["run", "--rm", "busybox:sk2", "echo", "ok"]).trim(),
            "ok"
        );
    } else {
        eprintln!("skipped skopeo: not installed");
    }
    if which("umoci").is_some() {
        let dir = d.join("umoci");
        std::fs::create_dir(&dir).unwrap();
        assert!(sh(&format!("tar -C {} -xf {}", dir.display(), o.display()))
            .status
            .success());
        let out = sh(&format!("umoci stat --image {}:latest", dir.display()));
        assert!(out.status.success(), "umoci stat: {}", stderr(&out));
        let bundle = d.join("bundle");
        let out = sh(&format!(
            "umoci unpack --image {}:latest {}",
            dir.display(),
            bundle.display()
        ));
        assert!(out.status.success(), "umoci unpack: {}", stderr(&out));
        assert!(bundle.join("rootfs/bin/busybox").exists());
    } else {
        eprintln!("skipped umoci: not installed");
    }
}

fn tar_with(path: &Path, members: &[(&str, tar::EntryType, &[u8], &str)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, kind, data, link) in members {
        let mut h = tar::Header::new_gnu();
        // raw name bytes: set_path refuses `..`
        let raw = name.as_bytes();
        h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(*kind);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn hostile_archives_refused() {
    let w = Wharf::new().with_busybox();
    let d = w.dir.path();
    let good = d.join("good.tar");
    w.ok(&["save", "-o", good.to_str().unwrap(), "busybox"]);
    // members of the good archive, to tamper with
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&good).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        members.push((name, v));
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&members.iter().find(|m| m.0 == "manifest.json").unwrap().1)
            .unwrap();
    let layer = manifest[0]["Layers"][0].as_str().unwrap().to_string();
    let config = manifest[0]["Config"].as_str().unwrap().to_string();
    let build = |name: &str,
                 f: &dyn Fn(&str, &[u8]) -> Option<Vec<u8>>,
                 extra: &[(&str, tar::EntryType, &[u8], &str)]| {
        let p = d.join(name);
        let mut owned: Vec<(String, Vec<u8>)> = Vec::new();
        for (n, v) in &members {
            if let Some(nv) = f(n, v) {
                owned.push((n.clone(), nv));
            }
        }
        let mut all: Vec<(&str, tar::EntryType, &[u8], &str)> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), tar::EntryType::Regular, v.as_slice(), ""))
            .collect();
        all.extend_from_slice(extra);
        tar_with(&p, &all);
        p
    };
    let with_manifest = |m: serde_json::Value| {
        let s = serde_json::to_vec(&m).unwrap();
        move |n: &str, v: &[u8]| {
            Some(if n == "manifest.json" {
                s.clone()
            } else {
                v.to_vec()
            })
        }
    };
    let mut m_trav = manifest.clone();
    m_trav[0]["Layers"][0] = "../../../etc/passwd".into();
    let mut m_abs = manifest.clone();
    m_abs[0]["Config"] = "/etc/hostname".into();
    let mut m_missing = manifest.clone();
    m_missing[0]["Layers"][0] = "nope/layer.tar".into();
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "traversal member",
            build(
                "t1.tar",
                &|_, v| Some(v.to_vec()),
                &[("../evil", tar::EntryType::Regular, b"x", "")],
            ),
            "path traversal",
        ),
        (
            "absolute member",
            build(
                "t2.tar",
                &|_, v| Some(v.to_vec()),
                &[("/evil", tar::EntryType::Regular, b"x", "")],
            ),
            "absolute path",
        ),
        (
            "symlink out",
            build(
                "t3.tar",
                &|_, v| Some(v.to_vec()),
                &[("x/link", tar::EntryType::Symlink, b"", "../../etc/passwd")],
            ),
            "link target outside",
        ),
        (
            "manifest ../",
            build("t4.tar", &with_manifest(m_trav), &[]),
            "outside the archive",
        ),
        (
            "manifest abs",
            build("t5.tar", &with_manifest(m_abs), &[]),
            "outside the archive",
        ),
        (
            "missing layer",
            build("t6.tar", &with_manifest(m_missing), &[]),
            "not in the archive",
        ),
        (
            "layer diff_id mismatch",
            build(
                "t7.tar",
                &|n, v| {
                    if n != layer {
                        return Some(v.to_vec());
                    }
                    let mut t = v.to_vec();
                    let i = t.len() / 3;
                    t[i] ^= 0xff;
                    Some(t)
                },
                &[],
            ),
            "diff_id",
        ),
        (
            "config digest mismatch",
            build(
                "t8.tar",
                &|n, v| {
                    if n != config {
                        return Some(v.to_vec());
                    }
                    let s = String::from_utf8_lossy(v).replace("amd64", "arm64 ");
                    Some(s.into_bytes())
                },
                &[],
            ),
            "does not match",
        ),
        (
            "metadata bomb",
            build(
                "t9.tar",
                &|n, v| {
                    Some(if n == "manifest.json" {
                        vec![b' '; 9 << 20]
                    } else {
                        v.to_vec()
                    })
                },
                &[],
            ),
            "larger than",
        ),
        (
            "not an archive",
            build(
                "t10.tar",
                &|n, v| (n == "oci-layout").then(|| v.to_vec()),
                &[],
            ),
            "neither manifest.json",
        ),
    ];
    let w2 = Wharf::new().with_busybox();
    let before = store_state(&w2);
    for (what, path, want) in cases {
        let o = w2.run(&["load", "-i", path.to_str().unwrap()]);
        assert!(!o.status.success(), "{what}: accepted");
        let err = stderr(&o);
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{what}: one-line error: {err}"
        );
        assert_eq!(store_state(&w2), before, "{what}: store changed");
        let leftovers: Vec<_> = std::fs::read_dir(w2.root().join("ingest"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "{what}: ingest not cleaned");
    }
}

#[test]
fn podman_round_trip() {
    let Some(podman) = which("podman") else {
        eprintln!("skipped: podman not installed");
        return;
    };
    let w = Wharf::new().with_busybox();
    let id = id_of(&w, "busybox");
    let out = w.dir.path().join("wharf-save.tar");
    w.ok(&["save", "-o", out.to_str().unwrap(), "busybox"]);
    let podman_cmd = podman_in(&podman, &w.dir.path().join("podman"));
    let o = podman_cmd(&["load", "-i", out.to_str().unwrap()]);
    assert!(o.status.success(), "podman load: {}", stderr(&o));
    let o = podman_cmd(&["image", "inspect", "--format", "{{.Id}}", "busybox:latest"]);
    assert_eq!(
        format!("sha256:{}", String::from_utf8_lossy(&o.stdout).trim()),
        id,
        "podman sees the same image ID"
    );
    let back = w.dir.path().join("podman-save.tar");
    let o = podman_cmd(&["save", "-o", back.to_str().unwrap(), "busybox:latest"]);
    assert!(o.status.success(), "podman save: {}", stderr(&o));
    let w2 = Wharf::new();
    let o = w2.run(&["load", "-i", back.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "wharf load of podman's archive: {}",
        stderr(&o)
    );
    assert_eq!(id_of(&w2, "busybox"), id);
    assert_eq!(
        w2.ok(&["run", "--rm", "busybox", "echo", "via-podman"]),
        "via-podman\n"
    );
}

/// A `wharf registry serve` with its own temporary root.
fn serve(w: &Wharf) -> Serve {
    let root = w.dir.path().join("registry");
    let mut cmd = Command::new(Wharf::bin());
    cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(root);
    Serve::start(cmd)
}

/// An image whose layer is gzip (as pulled images are): skopeo's OCI output of wharf's save.
fn gzip_layered(w: &Wharf) -> PathBuf {
    let d = w.dir.path();
    let s = d.join("plain.tar");
    w.ok(&["save", "-o", s.to_str().unwrap(), "busybox"]);
    let g = d.join("gz.tar");
    let o = Command::new("skopeo")
        .arg("copy")
        .arg(format!("docker-archive:{}", s.display()))
        .arg(format!("oci-archive:{}:busybox:gz", g.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", stderr(&o));
    g
}

fn tar_member(archive: &Path, name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in {}", archive.display());
}

#[test]
fn compressed_layers_and_repo_digests_survive_save_and_load() {
    let w = Wharf::new().with_busybox();
    let id = id_of(&w, "busybox");
    let g = gzip_layered(&w);
    let w2 = Wharf::new();
    w2.ok(&["load", "-i", g.to_str().unwrap()]);
    assert_eq!(id_of(&w2, "busybox:gz"), id);
    // give it a repo digest the way a user does: push it
    let reg = serve(&w2);
    let name = format!("{}/bb:1", reg.addr);
    w2.ok(&["tag", "busybox:gz", &name]);
    let pushed = w2.ok(&["push", &name]);
    let digest = pushed
        .split_whitespace()
        .find(|t| t.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in {pushed}"))
        .to_string();
    let repo_digest = format!("{}/bb@{digest}", reg.addr);
    let digests = |w: &Wharf| w.ok(&["image", "inspect", "--format", "{{.RepoDigests}}", &id]);
    assert!(digests(&w2).contains(&repo_digest), "{}", digests(&w2));

    for fmt in ["docker", "oci"] {
        let s = w2.dir.path().join(format!("{fmt}.tar"));
        w2.ok(&["save", "--format", fmt, "-o", s.to_str().unwrap(), &name]);
        // the layer travels compressed, as stored: no gunzip on save
        let m: serde_json::Value = serde_json::from_slice(&tar_member(&s, "index.json")).unwrap();
        let man_digest = m["manifests"][0]["digest"].as_str().unwrap().to_string();
        assert_eq!(
            man_digest, digest,
            "{fmt}: the pushed manifest, byte for byte"
        );
        let man: serde_json::Value = serde_json::from_slice(&tar_member(
            &s,
            &format!("blobs/sha256/{}", &digest["sha256:".len()..]),
        ))
        .unwrap();
        assert!(
            man["layers"][0]["mediaType"]
                .as_str()
                .unwrap()
                .ends_with("gzip"),
            "{man}"
        );
        // a fresh store gets the image, its tag and its repo digest back (moby#22011)
        let w3 = Wharf::new();
        w3.ok(&["load", "-i", s.to_str().unwrap()]);
        assert_eq!(id_of(&w3, &name), id);
        assert!(
            digests(&w3).contains(&repo_digest),
            "{fmt}: {}",
            digests(&w3)
        );
        assert!(
            w3.ok(&["images", "--digests"]).contains(&digest),
            "{}",
            w3.ok(&["images", "--digests"])
        );
        // pinned by digest works after the round trip
        assert_eq!(
            w3.ok(&["run", "--rm", &repo_digest, "echo", "pinned"])
                .trim(),
            "pinned"
        );
    }

    // a name claiming some other digest is not believed
    let s = w2.dir.path().join("docker.tar");
    let forged = w2.dir.path().join("forged.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&forged).unwrap());
    let mut a = tar::Archive::new(std::fs::File::open(&s).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_path_buf();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if path.to_str() == Some("index.json") {
            let mut v: serde_json::Value = serde_json::from_slice(&data).unwrap();
            let mut extra = v["manifests"][0].clone();
            extra["annotations"] = serde_json::json!({
                "io.containerd.image.name": format!("evil/app@sha256:{}", "ab".repeat(32))
            });
            v["manifests"].as_array_mut().unwrap().push(extra);
            data = serde_json::to_vec(&v).unwrap();
        }
        let mut h = e.header().clone();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let w4 = Wharf::new();
    w4.ok(&["load", "-i", forged.to_str().unwrap()]);
    assert!(!digests(&w4).contains("evil"), "{}", digests(&w4));
}

#[test]
fn compressed_layers_load_in_docker_and_podman() {
    let w = Wharf::new().with_busybox();
    let id = id_of(&w, "busybox");
    let g = gzip_layered(&w);
    let w2 = Wharf::new();
    w2.ok(&["load", "-i", g.to_str().unwrap()]);
    let s = w2.dir.path().join("s.tar");
    w2.ok(&["save", "-o", s.to_str().unwrap(), "busybox:gz"]);
    if let Some(podman) = which("podman") {
        let podman_cmd = podman_in(&podman, &w2.dir.path().join("podman"));
        let o = podman_cmd(&["load", "-i", s.to_str().unwrap()]);
        assert!(o.status.success(), "podman load: {}", stderr(&o));
        let o = podman_cmd(&["image", "inspect", "--format", "{{.Id}}", "busybox:gz"]);
        assert_eq!(
            format!("sha256:{}", String::from_utf8_lossy(&o.stdout).trim()),
            id
        );
    } else {
        eprintln!("podman part skipped: podman not installed");
    }
    let Some(dd) = Dockerd::start() else {
        eprintln!("docker part skipped: dockerd unavailable");
        return;
    };
    let o = dd.docker(&["load", "-i", s.to_str().unwrap()]);
    assert!(o.status.success(), "docker load: {}", stderr(&o));
    let o = dd.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox:gz"]);
    assert_eq!(stdout(&o).trim(), id, "docker sees the same image id");
    let o = dd.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:gz",
        "echo",
        "ok",
    ]);
    assert!(o.status.success(), "docker run: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "ok");
}

#[test]
fn load_draws_a_progress_bar_only_on_a_terminal() {
    let w = Wharf::new().with_busybox();
    let s = w.dir.path().join("s.tar");
    w.ok(&["save", "-o", s.to_str().unwrap(), "busybox"]);
    let w2 = Wharf::new();
    // script(1) runs the command on a pseudo-terminal
    let cmd = format!("{} load -i {}", Wharf::bin(), s.display());
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("WHARF_ROOT", w2.root())
        .env("WHARF_RUNROOT", w2.run_root())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("Loading") && out.contains("100%"), "{out}");
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    // redirected: plain result lines only (scripts parse them)
    let o = w2.run(&["load", "-i", s.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("Loading"), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Loaded image: busybox:latest");
}

/// Runs wharf, killing it (and failing the test) if it has not finished within 120 s: a
/// background unpack waiting forever for an archive that stopped would otherwise hang here.
fn run_bounded(w: &Wharf, args: &[&str]) -> std::process::Output {
    let mut child = w
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("wharf {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The one-line refusal, the store as it was and nothing left in `ingest/`.
fn refused(w: &Wharf, archive: &Path, before: &(String, Vec<String>), want: &str) {
    let o = run_bounded(w, &["load", "-i", archive.to_str().unwrap()]);
    assert!(!o.status.success(), "{}: accepted", archive.display());
    let err = stderr(&o);
    assert!(err.contains(want), "{}: {err}", archive.display());
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert_eq!(&store_state(w), before, "store changed");
    let left: Vec<_> = std::fs::read_dir(w.root().join("ingest"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "ingest not cleaned: {left:?}");
}

#[test]
fn archive_cut_inside_a_compressed_layer_refused() {
    // The layer's unpack starts while the member is still streaming in: an archive that ends
    // inside it must stop that unpack with an error, not leave it waiting.
    let w = Wharf::new().with_busybox();
    let g = gzip_layered(&w);
    let mut a = tar::Archive::new(std::fs::File::open(&g).unwrap());
    let (pos, size) = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.raw_file_position(), e.size()))
        .max_by_key(|(_, size)| *size)
        .unwrap();
    assert!(size > 256 << 10, "the gzip layer is the largest member");
    let cut = w.dir.path().join("cut.tar");
    let bytes = std::fs::read(&g).unwrap();
    std::fs::write(&cut, &bytes[..(pos + size / 2) as usize]).unwrap();
    let w2 = Wharf::new().with_busybox();
    let before = store_state(&w2);
    refused(
        &w2,
        &cut,
        &before,
        "archive is truncated: it ends inside member",
    );
    // and the same archive whole still loads into that store
    w2.ok(&["load", "-i", g.to_str().unwrap()]);
    assert_eq!(id_of(&w2, "busybox:gz"), id_of(&w, "busybox"));
}

#[test]
fn decompression_bombs_refused_on_a_small_store() {
    let w = Wharf::new();
    let _m = Tmpfs::mount(&w.root(), "16m");
    let d = w.dir.path();
    // a layer of the same 8 MiB file of zeros 8 times: 64 MiB decompressed from ~70 KiB
    let z = d.join("zeros");
    std::fs::File::create(&z).unwrap().set_len(8 << 20).unwrap();
    let tar = sh(&format!(
        "tar --hard-dereference -C {} -cf - {}",
        d.display(),
        ["zeros"; 8].join(" ")
    ))
    .stdout;
    let gz = sh(&format!(
        "tar --hard-dereference -C {} -cf - {} | gzip -1 -c",
        d.display(),
        ["zeros"; 8].join(" ")
    ))
    .stdout;
    assert!(tar.len() > 64 << 20 && gz.len() < 1 << 20);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        wharf_types::Digest::of(&tar)
    )
    .into_bytes();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", wharf_types::Digest::of(b).hex());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        wharf_types::Digest::of(&config),
        config.len(),
        wharf_types::Digest::of(&gz),
        gz.len()
    )
    .into_bytes();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/library/bomb:1"}}}}]}}"#,
        wharf_types::Digest::of(&manifest),
        manifest.len()
    );
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let (cb, mb, gb) = (blob(&config), blob(&manifest), blob(&gz));
    let reg = tar::EntryType::Regular;
    let layer_bomb = d.join("layer-bomb.tar");
    tar_with(
        &layer_bomb,
        &[
            ("oci-layout", reg, layout, ""),
            ("index.json", reg, index.as_bytes(), ""),
            (&mb, reg, &manifest, ""),
            (&cb, reg, &config, ""),
            (&gb, reg, &gz, ""),
        ],
    );
    // the whole archive as a bomb: a plain-tar layer of 64 MiB, the archive gzipped
    let plain = d.join("plain-bomb.tar");
    tar_with(
        &plain,
        &[
            ("oci-layout", reg, layout, ""),
            (&blob(&tar), reg, &tar, ""),
        ],
    );
    assert!(sh(&format!("gzip -1 {}", plain.display())).status.success());
    let before = store_state(&w);
    refused(&w, &layer_bomb, &before, "decompression bomb");
    refused(
        &w,
        &d.join("plain-bomb.tar.gz"),
        &before,
        "decompression bomb",
    );
}

/// docker: loading a tag that names another image says which image lost it.
#[test]
fn load_retag_names_the_image_that_lost_the_tag() {
    let w = Wharf::new().with_busybox();
    let id = id_of(&w, "busybox");
    let s = w.dir.path().join("s.tar");
    w.ok(&["save", "-o", s.to_str().unwrap(), "busybox:latest"]);
    // busybox:latest now names another image
    let t = w.dir.path().join("other.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&t).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "f", &b"other"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    w.ok(&["import", t.to_str().unwrap(), "busybox:latest"]);
    let other = id_of(&w, "busybox");
    assert_ne!(other, id);
    let out = w.ok(&["load", "-i", s.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "The image busybox:latest already exists, renaming the old one with ID {other} to empty string\nLoaded image: busybox:latest\n"
        )
    );
    assert_eq!(id_of(&w, "busybox"), id);
    // the same load again moves no tag and says so by saying nothing more
    let out = w.ok(&["load", "-i", s.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox:latest\n");
}

/// Copies the tar `src` to `dst`, passing each member through `f` (None drops it).
fn rewrite_tar(src: &Path, dst: &Path, mut f: impl FnMut(&str, Vec<u8>) -> Vec<(String, Vec<u8>)>) {
    let mut out = tar::Builder::new(std::fs::File::create(dst).unwrap());
    let mut ar = tar::Archive::new(std::fs::File::open(src).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut h = e.header().clone();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        for (n, data) in f(&name, v) {
            h.set_size(data.len() as u64);
            out.append_data(&mut h, &n, &data[..]).unwrap();
        }
    }
    out.finish().unwrap();
}

/// containerd's rules on load: an index's platform claim must match the image config, and a
/// manifest that also has `manifests` is refused; nothing is committed.
#[test]
fn load_refuses_mismatched_or_ambiguous_platform_documents() {
    let w = Wharf::new().with_busybox();
    let d = w.dir.path();
    let o = d.join("o.tar");
    w.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        o.to_str().unwrap(),
        "busybox",
    ]);
    let mut index: serde_json::Value =
        serde_json::from_slice(&tar_member(&o, "index.json")).unwrap();
    let host = w.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}",
        "busybox",
    ]);
    let other = if host.trim() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };

    // index says windows/<other>, the config says linux/<host>
    let lying = d.join("lying.tar");
    let mut li = index.clone();
    li["manifests"][0]["platform"] = serde_json::json!({"os": "windows", "architecture": other});
    rewrite_tar(&o, &lying, |n, v| {
        let v = if n == "index.json" {
            serde_json::to_vec(&li).unwrap()
        } else {
            v
        };
        vec![(n.to_string(), v)]
    });
    // the manifest also carries `manifests`
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mpath = format!("blobs/sha256/{}", md.trim_start_matches("sha256:"));
    let mut m: serde_json::Value = serde_json::from_slice(&tar_member(&o, &mpath)).unwrap();
    m["manifests"] = serde_json::json!([]);
    let mb = serde_json::to_vec(&m).unwrap();
    let nd = wharf_types::Digest::of(&mb);
    index["manifests"][0]["digest"] = serde_json::json!(nd.to_string());
    index["manifests"][0]["size"] = serde_json::json!(mb.len());
    let both = d.join("both.tar");
    rewrite_tar(&o, &both, |n, v| {
        if n == "index.json" {
            vec![(n.to_string(), serde_json::to_vec(&index).unwrap())]
        } else if n == mpath {
            vec![(format!("blobs/sha256/{}", nd.hex()), mb.clone())]
        } else {
            vec![(n.to_string(), v)]
        }
    });

    let w2 = Wharf::new();
    let before = store_state(&w2);
    let out = w2.run(&["load", "-i", lying.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains(&md)
            && err.contains(&format!("windows/{other}"))
            && err.contains(&format!("linux/{}", host.trim())),
        "{err}"
    );
    let out = w2.run(&["load", "-i", both.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ambiguous"), "{}", stderr(&out));
    assert_eq!(store_state(&w2), before);
    // the untouched archive loads
    w2.ok(&["load", "-i", o.to_str().unwrap()]);
}

/// Starts `wharf load` with its stdin a pipe, feeds it `part` of `archive` and waits until it
/// has staged or unpacked something; the child and the still-open pipe.
fn load_stuck_midway(
    w: &Wharf,
    archive: &[u8],
    part: usize,
) -> (KillOnDrop, std::process::ChildStdin) {
    let mut child = w
        .command(&["load"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, &archive[..part]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store_usage(&w.root()).1.is_empty() {
        assert!(std::time::Instant::now() < deadline, "load staged nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    (KillOnDrop(child), stdin)
}

/// Killed loads leave staging dirs, temp snapshots and tar-split records; the next
/// store-writing command removes them (no operation is live), so three kills and a retry
/// leave the store as one clean load does. A live load's temporaries survive another
/// command's cleanup.
#[test]
fn killed_loads_leave_nothing_behind_and_live_ones_are_spared() {
    let src = Wharf::new().with_busybox();
    let s = src.dir.path().join("s.tar");
    src.ok(&["save", "-o", s.to_str().unwrap(), "busybox:latest"]);
    let archive = std::fs::read(&s).unwrap();

    let clean = Wharf::new();
    clean.ok(&["load", "-i", s.to_str().unwrap()]);
    let (clean_bytes, clean_temps) = store_usage(&clean.root());
    assert!(clean_temps.is_empty(), "{clean_temps:?}");

    let w = Wharf::new();
    for _ in 0..3 {
        let (child, stdin) = load_stuck_midway(&w, &archive, archive.len() / 2);
        drop(child); // SIGKILL
        drop(stdin);
        assert!(!store_usage(&w.root()).1.is_empty());
    }
    w.ok(&["load", "-i", s.to_str().unwrap()]);
    let (bytes, temps) = store_usage(&w.root());
    assert!(temps.is_empty(), "{temps:?}");
    assert_eq!(bytes, clean_bytes);
    assert_eq!(w.ok(&["run", "--rm", "busybox", "echo", "ok"]).trim(), "ok");

    // A live load: another store-writing command must not take its temporaries.
    let w2 = Wharf::new();
    let (mut child, mut stdin) = load_stuck_midway(&w2, &archive, archive.len() / 2);
    let live = store_usage(&w2.root()).1;
    let t = w2.dir.path().join("other.tar");
    write_busybox_tar(&t);
    w2.ok(&["import", t.to_str().unwrap(), "other:1"]);
    for p in &live {
        assert!(Path::new(p).exists(), "live temporary {p} removed");
    }
    std::io::Write::write_all(&mut stdin, &archive[archive.len() / 2..]).unwrap();
    drop(stdin);
    let st = child.0.wait().unwrap();
    assert!(st.success());
    assert!(w2.ok(&["images"]).contains("busybox"));
    assert!(store_usage(&w2.root()).1.is_empty());
}

/// An uncompressed archive larger than the free space is "no space left on the store", not a
/// decompression bomb; nothing is left behind, and once space is freed the same load works.
#[test]
fn load_on_a_full_store_says_so_and_leaves_nothing() {
    let w = Wharf::new();
    let _m = Tmpfs::mount(&w.root(), "32m");
    let d = w.dir.path();
    let rootfs = d.join("big");
    std::fs::create_dir_all(&rootfs).unwrap();
    let data: Vec<u8> = (0..10u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(rootfs.join("f"), &data).unwrap();
    let rt = d.join("big-rootfs.tar");
    assert!(sh(&format!(
        "tar -C {} -cf {} f",
        rootfs.display(),
        rt.display()
    ))
    .status
    .success());
    // an archive with a 10 MiB uncompressed layer, made in another store
    let src = Wharf::new();
    src.ok(&["import", rt.to_str().unwrap(), "big:1"]);
    let archive = d.join("big.tar");
    src.ok(&["save", "-o", archive.to_str().unwrap(), "big:1"]);
    // leave ~6 MiB free
    w.ok(&["images"]);
    let filler = w.root().join("filler");
    std::fs::write(&filler, vec![1u8; 26 << 20]).unwrap();
    let before = store_state(&w);
    let o = w.run(&["load", "-i", archive.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "no space left on the store {}",
            w.root().display()
        )),
        "{err}"
    );
    assert!(!err.contains("bomb"), "{err}");
    eprintln!("full store: {}", err.trim());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(common::store_usage(&w.root()).1.is_empty());
    assert_eq!(store_state(&w), before);
    // import of the same rootfs says the same, and leaves nothing either
    let o = w.run(&["import", rt.to_str().unwrap(), "big:2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // the engine's refusal (a failed precondition): docker's daemon prefix, one line
    assert_eq!(
        err.trim(),
        format!(
            "Error response from daemon: no space left on the store {}",
            w.root().display()
        )
    );
    assert!(common::store_usage(&w.root()).1.is_empty());
    assert_eq!(store_state(&w), before);
    std::fs::remove_file(&filler).unwrap();
    w.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(w.ok(&["images"]).contains("big"));
}

/// A saved archive with a layer member's bytes corrupted: once inside the layer's first tar
/// header (the layer is no tar), once in its file data (its diff_id differs). Either way
/// `load` fails naming the archive and the layer's digest, with the store unchanged, and
/// writes nothing but that error on stderr (docker writes no progress off a terminal).
#[test]
fn load_of_a_corrupt_layer_names_the_source_and_the_digest() {
    let src = Wharf::new().with_busybox();
    let d = src.dir.path();
    let saved = d.join("saved.tar");
    let o = src.run(&["save", "-o", saved.to_str().unwrap(), "busybox"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "save writes no progress off a terminal");
    // the layer: the largest blob
    let mut ar = tar::Archive::new(std::fs::File::open(&saved).unwrap());
    let mut members: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        members.push((e.header().clone(), data));
    }
    let (li, _) = members
        .iter()
        .enumerate()
        .max_by_key(|(_, (_, data))| data.len())
        .unwrap();
    let layer_name = members[li].0.path().unwrap().display().to_string();
    let digest = layer_name.rsplit('/').next().unwrap().to_string();
    for (what, offset) in [("header", 100usize), ("data", 600_000usize)] {
        let bad = d.join(format!("bad-{what}.tar"));
        let mut b = tar::Builder::new(std::fs::File::create(&bad).unwrap());
        for (i, (h, data)) in members.iter().enumerate() {
            let mut data = data.clone();
            if i == li {
                data[offset] ^= 0xff;
            }
            let mut h = h.clone();
            let path = h.path().unwrap().into_owned();
            b.append_data(&mut h, path, &data[..]).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        let tgt = Wharf::new();
        let o = tgt.run(&["load", "-i", bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(
            err.contains(&format!("loading {}", bad.display())),
            "{what}: names the archive: {err}"
        );
        assert!(err.contains(&digest), "{what}: names the layer: {err}");
        assert_eq!(tgt.ok(&["images", "-q"]), "", "{what}: store unchanged");
    }
}
