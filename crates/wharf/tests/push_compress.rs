//! `wharf push` of images whose layers are stored uncompressed (an OCI archive with a plain
//! tar layer loaded with `wharf load`, a rootfs `wharf import`ed) to Debian's real
//! `docker-registry`: the layer goes out as gzip under a rewritten manifest whose digest is the
//! one printed and recorded, diff_ids stay, already-compressed layers go byte for byte, and a
//! re-push reuses the gzip twin (no recompression). skopeo is the independent client.

#![allow(clippy::unwrap_used)]

mod common;
use common::registry::DockerRegistry;
use common::{expect_ok as ok, run_ok as sh, tmp_dir, wharf_at};

fn wharf(root: &Path, home: &Path, args: &[&str]) -> Output {
    wharf_at(root, home, args, &[])
}

fn tmp() -> tempfile::TempDir {
    tmp_dir("wharf-pushgz-")
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};
use wharf_types::Digest;

const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Debian's docker-registry on loopback, when it and the tools these tests use exist.
fn docker_registry(dir: &Path) -> Option<DockerRegistry> {
    for tool in ["/usr/bin/skopeo", "/usr/bin/gzip"] {
        if !Path::new(tool).exists() {
            eprintln!("SKIP: {tool} not installed");
            return None;
        }
    }
    DockerRegistry::start(dir, "127.0.0.1", "", "")
}

fn skopeo_raw(image: &str, config: bool) -> Vec<u8> {
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--tls-verify=false", "--raw"]);
    if config {
        c.arg("--config");
    }
    sh(c.arg(format!("docker://{image}")))
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap()
}

/// A rootfs with busybox and a few applets, as an uncompressed tar (its bytes).
fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "cat", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

fn blob(layout: &Path, bytes: &[u8]) -> (Digest, u64) {
    let d = Digest::of(bytes);
    std::fs::write(layout.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    (d, bytes.len() as u64)
}

/// An OCI image layout tar with two layers: the busybox rootfs as an UNCOMPRESSED tar, and
/// a small gzip layer made by the system gzip. Returns (archive, diff_ids, gzip layer digest).
fn oci_archive(dir: &Path, name: &str) -> (PathBuf, Vec<Digest>, Digest) {
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let l1 = std::fs::read(rootfs_tar(dir)).unwrap();
    let (l1d, l1s) = blob(&layout, &l1);
    let extra = dir.join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/motd"), "compressed already\n").unwrap();
    let l2 = sh(Command::new("tar").arg("-C").arg(&extra).args([
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "-cf",
        "-",
        ".",
    ]));
    let l2gz = {
        let p = dir.join("l2.tar");
        std::fs::write(&p, &l2).unwrap();
        sh(Command::new("gzip").arg("-nc").arg(&p))
    };
    let (l2d, l2s) = blob(&layout, &l2gz);
    let diff_ids = vec![l1d.clone(), Digest::of(&l2)];
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "history": [{"created_by": "test"}, {"created_by": "test 2"}],
    });
    let (cd, cs) = blob(&layout, &serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cs},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": l1d.to_string(), "size": l1s},
            {"mediaType": OCI_LAYER_GZIP, "digest": l2d.to_string(), "size": l2s},
        ],
        "annotations": {"org.example.kept": "yes"},
    });
    let (md, ms) = blob(&layout, &serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(), "size": ms,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "v1"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    (archive, diff_ids, l2d)
}

/// The digest from `wharf push`'s last line (`TAG: digest: sha256:… size: N`).
fn pushed_digest(out: &str) -> String {
    let last = out.lines().last().unwrap();
    assert!(last.contains(": digest: sha256:"), "{out}");
    last.split(' ').nth(2).unwrap().to_string()
}

fn compressed_map(root: &Path) -> serde_json::Map<String, serde_json::Value> {
    let idx = json(&std::fs::read(root.join("meta/images.json")).unwrap());
    idx.get("compressed")
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default()
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn loaded_uncompressed_layer_is_pushed_as_gzip_once() {
    let t = tmp();
    let Some(reg) = docker_registry(t.path()) else {
        return;
    };
    let root = t.path().join("r1");
    let name = format!("{}/pc/bb:v1", reg.addr);
    let (archive, diff_ids, l2) = oci_archive(t.path(), &name);
    ok(&wharf(
        &root,
        t.path(),
        &["load", "-i", archive.to_str().unwrap()],
    ));
    let out = ok(&wharf(&root, t.path(), &["push", &name]));
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);

    // The registry serves exactly the manifest whose digest was printed.
    let raw = skopeo_raw(&name, false);
    assert_eq!(Digest::of(&raw).to_string(), digest);
    let m = json(&raw);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["annotations"]["org.example.kept"], "yes");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["mediaType"], OCI_LAYER_GZIP);
    assert_ne!(layers[0]["digest"], diff_ids[0].to_string());
    // The already compressed layer went byte for byte.
    assert_eq!(layers[1]["mediaType"], OCI_LAYER_GZIP);
    assert_eq!(layers[1]["digest"], l2.to_string());
    // diff_ids unchanged (the config is the stored one).
    let cfg = json(&skopeo_raw(&name, true));
    let want: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    assert_eq!(cfg["rootfs"]["diff_ids"], serde_json::json!(want));

    // Pull it with skopeo: the gzip layer decompresses (system gzip) to the original tar.
    let oci_dir = t.path().join("copied");
    sh(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:x", oci_dir.display())));
    let gz_hex = layers[0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let tar = sh(Command::new("gzip")
        .arg("-dc")
        .arg(oci_dir.join("blobs/sha256").join(&gz_hex)));
    assert_eq!(Digest::of(&tar), diff_ids[0]);

    // The repo digest recorded is the pushed manifest's.
    let imgs = ok(&wharf(&root, t.path(), &["images", "--digests"]));
    assert!(imgs.contains(&digest), "{imgs}");

    // The twin is recorded and reused: a re-push compresses nothing and uploads nothing.
    let map = compressed_map(&root);
    assert!(map.contains_key(diff_ids[0].hex()), "{map:?}");
    let gz_blob = root.join("blobs/sha256").join(&gz_hex);
    let before = mtime(&gz_blob);
    std::thread::sleep(Duration::from_millis(50));
    let out2 = ok(&wharf(&root, t.path(), &["push", &name]));
    assert!(!out2.contains("Pushed"), "{out2}");
    assert_eq!(out2.matches("Layer already exists").count(), 2, "{out2}");
    assert_eq!(pushed_digest(&out2), digest);
    assert_eq!(mtime(&gz_blob), before);

    // Another repository on the same registry: mounted, same manifest digest.
    let name2 = format!("{}/pc/other:v2", reg.addr);
    ok(&wharf(&root, t.path(), &["tag", &name, &name2]));
    let out3 = ok(&wharf(&root, t.path(), &["push", &name2]));
    assert!(out3.contains("Mounted from pc/bb"), "{out3}");
    assert_eq!(pushed_digest(&out3), digest);

    // wharf pulls it back into a fresh root: same image id (config unchanged).
    let r2 = t.path().join("r2");
    let out = ok(&wharf(&r2, t.path(), &["pull", &name]));
    assert!(out.contains(&digest), "{out}");
    let id1 = ok(&wharf(&root, t.path(), &["images", "-q", &name]));
    let id2 = ok(&wharf(&r2, t.path(), &["images", "-q", &name]));
    assert_eq!(id1.trim(), id2.trim());
    assert!(!id1.trim().is_empty());
}

#[test]
fn imported_rootfs_is_pushed_as_gzip() {
    let t = tmp();
    let Some(reg) = docker_registry(t.path()) else {
        return;
    };
    let root = t.path().join("r1");
    let name = format!("{}/pc/imported:v1", reg.addr);
    let tar = rootfs_tar(t.path());
    ok(&wharf(
        &root,
        t.path(),
        &["import", tar.to_str().unwrap(), &name],
    ));
    let out = ok(&wharf(&root, t.path(), &["push", &name]));
    let digest = pushed_digest(&out);
    let raw = skopeo_raw(&name, false);
    assert_eq!(Digest::of(&raw).to_string(), digest);
    let m = json(&raw);
    assert_eq!(m["layers"][0]["mediaType"], OCI_LAYER_GZIP);
    let cfg = json(&skopeo_raw(&name, true));
    let diff_id = Digest::of(&std::fs::read(&tar).unwrap());
    assert_eq!(cfg["rootfs"]["diff_ids"][0], diff_id.to_string());
    let out2 = ok(&wharf(&root, t.path(), &["push", &name]));
    assert!(out2.contains("Layer already exists"), "{out2}");
    assert_eq!(pushed_digest(&out2), digest);
}
