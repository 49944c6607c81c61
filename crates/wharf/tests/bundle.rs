//! Air-gap bundles end to end with the real binary: incremental bundles carry only the changed
//! layer and reproduce the source image exactly; split parts in any order; missing, corrupt,
//! truncated and foreign parts, unsigned/badly signed bundles and the host's signature policy
//! are refused with the store unchanged; kill -9 during apply then a re-run is consistent.

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sh(cmd: &str) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(o.status.success(), "{cmd}: {}", stderr(&o));
}

fn sha256_file(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// A gzip layer: (gz path, diff_id hex).
struct Layer {
    gz: PathBuf,
    diff_id: String,
}

fn layer_from_tar(tar: &Path) -> Layer {
    let gz = tar.with_extension("tar.gz");
    sh(&format!("gzip -n -c {} > {}", tar.display(), gz.display()));
    Layer {
        diff_id: sha256_file(tar),
        gz,
    }
}

/// A layer with one file `name` holding `bytes` random bytes.
fn random_layer(dir: &Path, stem: &str, name: &str, bytes: usize) -> Layer {
    let data = dir.join(format!("{stem}.bin"));
    sh(&format!(
        "head -c {bytes} /dev/urandom > {}",
        data.display()
    ));
    let tar = dir.join(format!("{stem}.tar"));
    let f = std::fs::File::create(&tar).unwrap();
    let mut b = tar::Builder::new(f);
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "app", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_size(bytes as u64);
    b.append_data(&mut h, name, std::fs::File::open(&data).unwrap())
        .unwrap();
    b.finish().unwrap();
    drop(b);
    layer_from_tar(&tar)
}

/// Writes an OCI layout tar of one image (`tag`) with `layers` and returns its path.
fn oci_image(dir: &Path, file: &str, tag: &str, layers: &[&Layer]) -> PathBuf {
    let cfg = json!({
        "architecture": arch(), "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| format!("sha256:{}", l.diff_id)).collect::<Vec<_>>()},
    });
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let cfg_path = dir.join(format!("{file}.config"));
    std::fs::write(&cfg_path, &cfg).unwrap();
    let cfg_hex = sha256_file(&cfg_path);
    let man = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cfg_hex}"), "size": cfg.len()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", sha256_file(&l.gz)),
            "size": std::fs::metadata(&l.gz).unwrap().len(),
        })).collect::<Vec<_>>(),
    });
    let man = serde_json::to_vec(&man).unwrap();
    let man_path = dir.join(format!("{file}.manifest"));
    std::fs::write(&man_path, &man).unwrap();
    let man_hex = sha256_file(&man_path);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{man_hex}"), "size": man.len(),
        "annotations": {"io.containerd.image.name": tag},
    }]});
    let out = dir.join(file);
    let mut b = tar::Builder::new(std::fs::File::create(&out).unwrap());
    let mut put = |name: &str, p: &Path| {
        b.append_path_with_name(p, name).unwrap();
    };
    let idx_path = dir.join(format!("{file}.index"));
    std::fs::write(&idx_path, serde_json::to_vec(&index).unwrap()).unwrap();
    put("index.json", &idx_path);
    put(&format!("blobs/sha256/{cfg_hex}"), &cfg_path);
    put(&format!("blobs/sha256/{man_hex}"), &man_path);
    for l in layers {
        put(&format!("blobs/sha256/{}", sha256_file(&l.gz)), &l.gz);
    }
    b.finish().unwrap();
    out
}

fn busybox_layer(dir: &Path) -> Layer {
    let tar = dir.join("busybox.tar");
    write_busybox_tar(&tar);
    layer_from_tar(&tar)
}

fn id_of(w: &Wharf, name: &str) -> String {
    w.ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// Manifest digest recorded for image `id` in the store's index.
fn manifest_of(w: &Wharf, id: &str) -> String {
    let v: Value =
        serde_json::from_slice(&std::fs::read(w.root().join("meta/images.json")).unwrap()).unwrap();
    v["images"][id.trim_start_matches("sha256:")]["manifest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What a store shows: image ids and tags, sorted blob names.
fn store_state(w: &Wharf) -> (String, Vec<String>) {
    let images = w.ok(&["images", "--no-trunc"]);
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fails(w: &Wharf, args: &[&str], want: &[&str]) -> String {
    let o = w.run(args);
    let e = stderr(&o);
    assert!(!o.status.success(), "{args:?} should fail: {e}");
    let line = e
        .lines()
        .find(|l| l.starts_with("Error:"))
        .unwrap_or_default()
        .to_string();
    for x in want {
        assert!(line.contains(x), "{args:?}: {line:?} should contain {x:?}");
    }
    line
}

#[test]
fn incremental_bundle_carries_only_the_changed_layer() {
    let src = Wharf::new();
    let d = src.dir.path();
    let base = busybox_layer(d);
    let top = random_layer(d, "top", "app/data.bin", 300 << 10);
    let v1 = oci_image(d, "v1.tar", "app:1", &[&base]);
    let v2 = oci_image(d, "v2.tar", "app:2", &[&base, &top]);
    src.ok(&["load", "-i", s(&v1)]);
    src.ok(&["load", "-i", s(&v2)]);
    let id2 = id_of(&src, "app:2");

    // full bundle of v1 to a fresh target
    let tgt = Wharf::new();
    let b1 = d.join("full");
    src.ok(&["bundle", "create", "-o", s(&b1), "app:1"]);
    let out = tgt.ok(&["bundle", "apply", s(&b1), &format!("{}.index.json", s(&b1))]);
    assert!(out.contains("Loaded image: app:1"), "{out}");
    assert_eq!(id_of(&tgt, "app:1"), id_of(&src, "app:1"));

    // inventory of the target, incremental bundle of v2
    let have = d.join("have.json");
    tgt.ok(&["inventory", "-o", s(&have)]);
    let inv: Value = serde_json::from_slice(&std::fs::read(&have).unwrap()).unwrap();
    assert_eq!(inv["format"], "wharf-inventory");
    let base_digest = format!("sha256:{}", sha256_file(&base.gz));
    assert!(inv["blobs"]
        .as_array()
        .unwrap()
        .contains(&Value::from(base_digest.clone())));

    let inc = d.join("inc");
    src.ok(&[
        "bundle",
        "create",
        "-o",
        s(&inc),
        "--have",
        s(&have),
        "app:2",
    ]);
    let idx: Value =
        serde_json::from_slice(&std::fs::read(d.join("inc.index.json")).unwrap()).unwrap();
    let layers = idx["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["carried"], false);
    assert_eq!(layers[0]["digest"], base_digest.as_str());
    assert_eq!(layers[1]["carried"], true);
    let layer_size = std::fs::metadata(&top.gz).unwrap().len();
    let payload = std::fs::metadata(&inc).unwrap().len();
    let meta = std::fs::metadata(d.join("inc.index.json")).unwrap().len();
    let full = std::fs::metadata(&b1).unwrap().len();
    eprintln!(
        "incremental: changed layer {layer_size} B, payload {payload} B (ratio {:.4}), index {meta} B; full v1 bundle {full} B",
        payload as f64 / layer_size as f64
    );
    assert!(
        payload as f64 <= 1.05 * layer_size as f64 + 16384.0,
        "payload {payload} vs layer {layer_size}"
    );

    tgt.ok(&["bundle", "verify", s(&inc)]);
    let out = tgt.ok(&["bundle", "apply", s(&inc)]);
    assert!(out.contains("Loaded image: app:2"), "{out}");
    assert_eq!(id_of(&tgt, "app:2"), id2);
    assert_eq!(manifest_of(&tgt, &id2), manifest_of(&src, &id2));
    let o = tgt.ok(&["run", "--rm", "app:2", "sh", "-c", "wc -c < /app/data.bin"]);
    assert_eq!(o.trim(), (300 << 10).to_string());
    // idempotent
    let before = store_state(&tgt);
    tgt.ok(&["bundle", "apply", s(&inc)]);
    assert_eq!(store_state(&tgt), before);

    // a host without the base layer: the bundle claims it but does not carry it
    let empty = Wharf::new();
    let before = store_state(&empty);
    fails(
        &empty,
        &["bundle", "apply", s(&inc)],
        &["does not carry layer", &base_digest],
    );
    assert_eq!(store_state(&empty), before);
}

/// Builds a busybox source, a key pair and a signed bundle split in 64k parts.
fn split_fixture() -> (Wharf, PathBuf, Vec<PathBuf>) {
    let src = Wharf::new().with_busybox();
    let d = src.dir.path().to_path_buf();
    let key = d.join("k");
    src.ok(&["key", "generate", "-o", s(&key)]);
    let b = d.join("rel");
    src.ok(&[
        "bundle",
        "create",
        "-o",
        s(&b),
        "--split",
        "64k",
        "--sign",
        s(&d.join("k.pem")),
        "busybox",
    ]);
    let mut parts: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("rel."))
        .collect();
    parts.sort();
    (src, d, parts)
}

#[test]
fn split_parts_signatures_and_refusals() {
    let (src, d, mut parts) = split_fixture();
    let n_payload = parts
        .iter()
        .filter(|p| !p.to_string_lossy().contains(".index."))
        .count();
    assert!(n_payload > 3, "{parts:?}");
    for p in parts
        .iter()
        .filter(|p| !p.to_string_lossy().contains(".index."))
    {
        assert!(std::fs::metadata(p).unwrap().len() <= 64 << 10);
    }
    let pubkey = d.join("k.pub");
    let tgt = Wharf::new();
    let empty = store_state(&tgt);
    let args = |extra: &[&str], ps: &[PathBuf]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|x| x.to_string()).collect();
        v.extend(ps.iter().map(|p| s(p).to_string()));
        v
    };
    let run = |w: &Wharf, a: &[String]| {
        let r: Vec<&str> = a.iter().map(String::as_str).collect();
        w.run(&r)
    };
    let fail = |w: &Wharf, a: Vec<String>, want: &[&str]| {
        let r: Vec<&str> = a.iter().map(String::as_str).collect();
        fails(w, &r, want)
    };

    // missing part (named), with --key
    let missing: Vec<PathBuf> = parts
        .iter()
        .filter(|p| !p.ends_with("rel.002"))
        .cloned()
        .collect();
    fail(
        &tgt,
        args(&["bundle", "apply", "--key", s(&pubkey)], &missing),
        &["part rel.002", "missing"],
    );
    // corrupt and truncated parts (named)
    let bad = d.join("bad");
    std::fs::create_dir(&bad).unwrap();
    for p in &parts {
        std::fs::copy(p, bad.join(p.file_name().unwrap())).unwrap();
    }
    let bad_parts: Vec<PathBuf> = parts
        .iter()
        .map(|p| bad.join(p.file_name().unwrap()))
        .collect();
    sh(&format!(
        "printf X | dd of={} bs=1 seek=1000 conv=notrunc 2>/dev/null",
        bad.join("rel.001").display()
    ));
    fail(
        &tgt,
        args(&["bundle", "verify"], &bad_parts),
        &["part rel.001", "corrupt", "sha256"],
    );
    sh(&format!(
        "truncate -s 1000 {}",
        bad.join("rel.003").display()
    ));
    std::fs::copy(d.join("rel.001"), bad.join("rel.001")).unwrap();
    fail(
        &tgt,
        args(&["bundle", "apply"], &bad_parts),
        &["part rel.003", "truncated"],
    );
    // a part of another bundle
    let other = d.join("other");
    src.ok(&[
        "bundle",
        "create",
        "-o",
        s(&other),
        "--split",
        "64k",
        "busybox",
    ]);
    let mut mixed = parts.clone();
    mixed.push(d.join("other.001"));
    fail(
        &tgt,
        args(&["bundle", "apply"], &mixed),
        &["other.001", "not a part of bundle"],
    );
    std::fs::copy(d.join("other.index.json"), bad.join("rel.index.json")).unwrap();
    std::fs::copy(d.join("rel.003"), bad.join("rel.003")).unwrap();
    fail(
        &tgt,
        args(&["bundle", "apply", "--key", s(&pubkey)], &bad_parts),
        &["signature", "does not verify"],
    );
    // unsigned with --key; wrong key
    fail(
        &tgt,
        vec![
            "bundle".into(),
            "apply".into(),
            "--key".into(),
            s(&pubkey).into(),
            s(&other).into(),
            format!("{}.000", s(&other)),
        ],
        &["not signed"],
    );
    tgt.ok(&["key", "generate", "-o", s(&d.join("wrong"))]);
    fail(
        &tgt,
        args(
            &["bundle", "apply", "--key", s(&d.join("wrong.pub"))],
            &parts,
        ),
        &["does not verify", "wrong.pub"],
    );
    // host policy: signatures required, unsigned refused without --key
    let cfg = d.join("daemon.json");
    std::fs::write(
        &cfg,
        serde_json::to_vec(
            &json!({"bundle-require-signature": true, "bundle-trusted-keys": [s(&pubkey)]}),
        )
        .unwrap(),
    )
    .unwrap();
    let o = tgt
        .command(&["bundle", "apply", &format!("{}.000", s(&other))])
        .env("WHARF_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not signed"), "{}", stderr(&o));
    assert_eq!(
        store_state(&tgt),
        empty,
        "refusals leave the store unchanged"
    );

    // shuffled parts, signature required by the host and checked with the trusted key
    parts.reverse();
    parts.swap(0, 2);
    let a = args(&["bundle", "apply"], &parts);
    let r: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = tgt.command(&r).env("WHARF_CONFIG", &cfg).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("signature OK"), "{}", stderr(&o));
    assert!(stdout(&o).contains("Loaded image: busybox:latest"));
    assert_eq!(id_of(&tgt, "busybox"), id_of(&src, "busybox"));
    assert_eq!(
        tgt.ok(&["run", "--rm", "busybox", "echo", "hi"]).trim(),
        "hi"
    );
    let o = run(
        &tgt,
        &args(&["bundle", "verify", "--key", s(&pubkey)], &parts),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn kill_during_apply_then_rerun() {
    let src = Wharf::new();
    let d = src.dir.path();
    let base = busybox_layer(d);
    let big = random_layer(d, "big", "app/big.bin", 48 << 20);
    let img = oci_image(d, "big.tar", "big:1", &[&base, &big]);
    src.ok(&["load", "-i", s(&img)]);
    let b = d.join("big");
    // stderr is no terminal here: no progress lines (docker's save/load write nothing there)
    let o = src.run(&["bundle", "create", "-o", s(&b), "--split", "8M", "big:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.lines().all(|l| l.starts_with("bundle: ")) && !err.contains('%'),
        "only the summary, no progress off a terminal: {err}"
    );
    let mut parts: Vec<String> = (0..7)
        .map(|i| format!("{}.{i:03}", s(&b)))
        .filter(|p| Path::new(p).exists())
        .collect();
    parts.insert(0, "apply".into());
    parts.insert(0, "bundle".into());
    let args: Vec<&str> = parts.iter().map(String::as_str).collect();

    let tgt = Wharf::new();
    let mut killed = 0;
    for delay in [100u64, 300, 600, 1000, 1500] {
        let mut child = tgt.command(&args).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait();
        // never a half-imported image: either absent or complete and runnable
        let ids = tgt.ok(&["images", "-q", "--no-trunc"]);
        assert!(ids.lines().count() <= 1, "{ids}");
        if !ids.trim().is_empty() {
            break;
        }
    }
    assert!(killed > 0, "apply finished before it could be killed");
    tgt.ok(&args);
    tgt.ok(&args);
    let ids = tgt.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(ids.lines().count(), 1, "{ids}");
    assert_eq!(id_of(&tgt, "big:1"), id_of(&src, "big:1"));
    let o = tgt.ok(&["run", "--rm", "big:1", "sh", "-c", "wc -c < /app/big.bin"]);
    assert_eq!(o.trim(), (48u64 << 20).to_string());
}

#[test]
fn hostile_payload_refused_store_unchanged() {
    let src = Wharf::new().with_busybox();
    let d = src.dir.path();
    let b = d.join("h");
    src.ok(&["bundle", "create", "-o", s(&b), "busybox"]);
    // replace the payload by a tar with a traversing member and re-seal the (unsigned) index
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..7].copy_from_slice(b"../evil");
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut data = h.as_bytes().to_vec();
    data.extend_from_slice(b"evil");
    data.resize(data.len() + 508 + 1024, 0);
    std::fs::write(&b, &data).unwrap();
    let ip = d.join("h.index.json");
    let mut idx: Value = serde_json::from_slice(&std::fs::read(&ip).unwrap()).unwrap();
    let sum = format!("sha256:{}", sha256_file(&b));
    idx["payload"]["size"] = data.len().into();
    idx["payload"]["sha256"] = sum.clone().into();
    idx["payload"]["parts"][0]["size"] = data.len().into();
    idx["payload"]["parts"][0]["sha256"] = sum.into();
    std::fs::write(&ip, serde_json::to_vec(&idx).unwrap()).unwrap();
    let tgt = Wharf::new();
    let before = store_state(&tgt);
    fails(
        &tgt,
        &["bundle", "apply", s(&b)],
        &["../evil", "path traversal"],
    );
    assert_eq!(store_state(&tgt), before);
    assert!(!tgt.root().join("evil").exists() && !tgt.dir.path().join("evil").exists());
}
