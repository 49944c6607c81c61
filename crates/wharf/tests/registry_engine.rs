//! `wharf registry serve --engine-store`: the engine's own images served read-only over the
//! distribution API, checked with real clients (skopeo inspect/copy, `wharf pull` into a
//! second root and `run`) and raw HTTP for the refusals (unknown names/tags, blobs of other
//! repositories, writes). Also covers a layer reassembled from its snapshot (a `load`ed
//! uncompressed layer) streamed and verified by skopeo.

#![allow(clippy::unwrap_used)]

mod common;
use common::dockerd::Dockerd;
use common::registry::{skopeo, skopeo_available, skopeo_ok, Resp, Serve};
use common::{tmp_dir, Wharf};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `wharf registry serve --engine-store` over a Wharf root.
fn serve_engine(w: &Wharf) -> Serve {
    let s = Serve::start(w.command(&[
        "registry",
        "serve",
        "--engine-store",
        "--addr",
        "127.0.0.1:0",
    ]));
    assert!(
        s.banner.contains("engine store") && s.banner.contains("read-only"),
        "{}",
        s.banner
    );
    s
}

/// A request with an empty body.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    common::registry::http(addr, method, path, headers, b"")
}

fn sha256(b: &[u8]) -> String {
    wharf_types::Digest::of(b).to_string()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut c = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut si = c.stdin.take().unwrap();
    let input = b.to_vec();
    let feeder = std::thread::spawn(move || si.write_all(&input));
    let out = c.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn image_id(w: &Wharf, image: &str) -> String {
    w.ok(&["image", "inspect", "--format", "{{.Id}}", image])
        .trim()
        .to_string()
}

/// `skopeo copy` of `reference` into an OCI layout; checks every layer's diff_id against the
/// config (skopeo itself verified the blob digests) and returns (config digest, layer media
/// types).
fn copy_and_check(reference: &str, dir: &Path) -> (String, Vec<String>) {
    let dest = format!("oci:{}:latest", dir.display());
    skopeo_ok(&["copy", "--src-tls-verify=false", reference, &dest]);
    let blob = |d: &str| {
        std::fs::read(
            dir.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&blob(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let cd = m["config"]["digest"].as_str().unwrap().to_string();
    let config: serde_json::Value = serde_json::from_slice(&blob(&cd)).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(diff_ids.len(), layers.len());
    let mut types = Vec::new();
    for (l, want) in layers.iter().zip(diff_ids) {
        let bytes = blob(l["digest"].as_str().unwrap());
        assert_eq!(sha256(&bytes), l["digest"].as_str().unwrap());
        let mt = l["mediaType"].as_str().unwrap().to_string();
        let tar = if mt.ends_with("gzip") {
            gunzip(&bytes)
        } else {
            bytes
        };
        assert_eq!(sha256(&tar), want.as_str().unwrap(), "diff_id of {mt}");
        types.push(mt);
    }
    (cd, types)
}

#[test]
fn serves_engine_images_to_skopeo_and_wharf_pull() {
    let w = Wharf::new().with_busybox();
    // a second image in another repository (a different config, the same layer)
    let tar = w.dir.path().join("busybox.tar");
    w.ok(&[
        "import",
        "-m",
        "another",
        tar.to_str().unwrap(),
        "registry.local:5000/app:1.4",
    ]);
    let id = image_id(&w, "busybox:latest");
    let app_id = image_id(&w, "registry.local:5000/app:1.4");
    assert_ne!(id, app_id);
    let srv = serve_engine(&w);
    let a = srv.addr.clone();

    // catalog and tags: paths, with the docker.io short alias accepted
    let c = http(&a, "GET", "/v2/_catalog", &[]);
    assert_eq!(c.status, 200);
    assert_eq!(
        c.json()["repositories"],
        serde_json::json!(["app", "library/busybox"])
    );
    for name in ["busybox", "library/busybox"] {
        let t = http(&a, "GET", &format!("/v2/{name}/tags/list"), &[]);
        assert_eq!(t.status, 200, "{name}");
        assert_eq!(t.json()["tags"], serde_json::json!(["latest"]));
    }
    let t = http(&a, "GET", "/v2/app/tags/list", &[]);
    assert_eq!(t.json()["tags"], serde_json::json!(["1.4"]));

    // manifest by tag (GET and HEAD) and by digest
    let m = http(&a, "GET", "/v2/busybox/manifests/latest", &[]);
    assert_eq!(m.status, 200);
    let md = m.header("Docker-Content-Digest").unwrap().to_string();
    assert_eq!(sha256(&m.body), md);
    assert_eq!(m.json()["config"]["digest"].as_str(), Some(id.as_str()));
    assert_eq!(
        m.header("Content-Type"),
        m.json()["mediaType"]
            .as_str()
            .or(Some("application/vnd.oci.image.manifest.v1+json"))
    );
    let h = http(&a, "HEAD", "/v2/busybox/manifests/latest", &[]);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(
        h.header("Content-Length"),
        Some(m.body.len().to_string().as_str())
    );
    let by_digest = http(&a, "GET", &format!("/v2/busybox/manifests/{md}"), &[]);
    assert_eq!(by_digest.status, 200);
    assert_eq!(by_digest.body, m.body);

    // blobs: config and layer, HEAD, Range
    let layer = m.json()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let cfg = http(&a, "GET", &format!("/v2/busybox/blobs/{id}"), &[]);
    assert_eq!(cfg.status, 200);
    assert_eq!(sha256(&cfg.body), id);
    let l = http(
        &a,
        "GET",
        &format!("/v2/library/busybox/blobs/{layer}"),
        &[],
    );
    assert_eq!(l.status, 200);
    assert_eq!(sha256(&l.body), layer);
    let lh = http(&a, "HEAD", &format!("/v2/busybox/blobs/{layer}"), &[]);
    assert_eq!(lh.status, 200);
    assert_eq!(
        lh.header("Content-Length"),
        Some(l.body.len().to_string().as_str())
    );
    let r = http(
        &a,
        "GET",
        &format!("/v2/busybox/blobs/{layer}"),
        &[("Range", "bytes=10-19")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, l.body[10..20]);

    // (c) unknown names, tags and blobs of other repositories
    let x = http(&a, "GET", "/v2/nothere/manifests/latest", &[]);
    assert_eq!(
        (x.status, x.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let x = http(&a, "GET", "/v2/busybox/manifests/nope", &[]);
    assert_eq!(
        (x.status, x.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let x = http(&a, "GET", "/v2/nothere/tags/list", &[]);
    assert_eq!((x.status, x.error_code().as_str()), (404, "NAME_UNKNOWN"));
    let x = http(&a, "GET", &format!("/v2/nothere/blobs/{layer}"), &[]);
    assert_eq!((x.status, x.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    let other = sha256(b"not referenced by any image");
    let x = http(&a, "GET", &format!("/v2/busybox/blobs/{other}"), &[]);
    assert_eq!((x.status, x.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    // app's config is in the store but not referenced by busybox: not served from there
    let x = http(&a, "GET", &format!("/v2/busybox/blobs/{app_id}"), &[]);
    assert_eq!((x.status, x.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    let x = http(&a, "HEAD", &format!("/v2/app/blobs/{app_id}"), &[]);
    assert_eq!(x.status, 200);
    let x = http(&a, "GET", "/v2/app/manifests/latest", &[]);
    assert_eq!(
        (x.status, x.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );

    // (d) writes are refused with the spec's error
    for (method, path) in [
        ("POST", "/v2/busybox/blobs/uploads/".to_string()),
        ("PUT", "/v2/busybox/manifests/latest".to_string()),
        ("DELETE", format!("/v2/busybox/manifests/{md}")),
        ("DELETE", format!("/v2/busybox/blobs/{layer}")),
    ] {
        let x = http(&a, method, &path, &[]);
        assert_eq!(
            (x.status, x.error_code().as_str()),
            (405, "UNSUPPORTED"),
            "{method} {path}"
        );
        let msg = x.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(msg.contains("engine"), "{msg}");
    }
    // the engine still has its image after all that
    assert_eq!(image_id(&w, "busybox:latest"), id);

    if skopeo_available() {
        // (a) skopeo inspect and copy: digests verified, diff_ids match the config
        let v: serde_json::Value = serde_json::from_str(&skopeo_ok(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{a}/busybox:latest"),
        ]))
        .unwrap();
        assert_eq!(v["Digest"].as_str(), Some(md.as_str()));
        assert_eq!(v["Layers"], serde_json::json!([layer]));
        let t = tmpdir();
        let (cd, _) = copy_and_check(&format!("docker://{a}/busybox:latest"), &t.path().join("o"));
        assert_eq!(cd, id);
        // a push is refused
        let o = skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:latest", t.path().join("o").display()),
            &format!("docker://{a}/pushed:1"),
        ]);
        assert!(!o.status.success());
    }

    // (b) a second root pulls it: same image id, and it runs
    let w2 = Wharf::new();
    let name = format!("{a}/busybox:latest");
    let out = w2.ok(&["pull", &name]);
    assert!(out.contains(&md), "{out}");
    assert_eq!(image_id(&w2, &name), id);
    let run = w2.ok(&["run", "--rm", &name, "echo", "ok"]);
    assert_eq!(run.trim(), "ok");

    // the second root, served too: its tag is a non-docker.io path, its repo digest pullable
    let srv2 = serve_engine(&w2);
    let x = http(&srv2.addr, "GET", "/v2/_catalog", &[]);
    assert_eq!(x.json()["repositories"], serde_json::json!(["busybox"]));
    let x = http(
        &srv2.addr,
        "GET",
        &format!("/v2/busybox/manifests/{md}"),
        &[],
    );
    assert_eq!(x.status, 200);
    assert_eq!(x.body, m.body);
    drop(srv2);
    drop(srv);
}

#[test]
fn streams_reassembled_uncompressed_layers() {
    let t = tmpdir();
    // uncompressed layers are kept as snapshot + tar-split record
    let w3 = loaded_busybox();
    let id = image_id(&w3, "busybox:latest");
    let srv = serve_engine(&w3);
    let a = srv.addr.clone();
    let m = http(&a, "GET", "/v2/busybox/manifests/latest", &[]);
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    let desc = &m.json()["layers"][0];
    let layer = desc["digest"].as_str().unwrap().to_string();
    let size = desc["size"].as_u64().unwrap();
    // really the reassembly path: an uncompressed layer with no blob file of its own
    assert_eq!(
        desc["mediaType"].as_str(),
        Some("application/vnd.oci.image.layer.v1.tar")
    );
    let hex = layer.trim_start_matches("sha256:");
    assert!(!w3.root().join("blobs/sha256").join(hex).exists());
    assert!(w3.root().join("snapshots").join(hex).is_dir());
    let l = http(&a, "GET", &format!("/v2/busybox/blobs/{layer}"), &[]);
    assert_eq!(l.status, 200);
    assert_eq!(l.body.len() as u64, size);
    assert_eq!(sha256(&l.body), layer);
    let r = http(
        &a,
        "GET",
        &format!("/v2/busybox/blobs/{layer}"),
        &[("Range", "bytes=-100")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, l.body[l.body.len() - 100..]);
    if skopeo_available() {
        let (cd, types) =
            copy_and_check(&format!("docker://{a}/busybox:latest"), &t.path().join("o"));
        assert_eq!(cd, id);
        // (skopeo recompresses for its oci: destination; it verified the source digest)
        assert_eq!(types.len(), 1);
    }
    drop(srv);
}

#[test]
fn tampered_snapshot_cuts_the_stream_short() {
    let t = tmpdir();
    let w3 = loaded_busybox();
    let srv = serve_engine(&w3);
    let a = srv.addr.clone();
    let m = http(&a, "GET", "/v2/busybox/manifests/latest", &[]);
    let desc = &m.json()["layers"][0];
    let layer = desc["digest"].as_str().unwrap().to_string();
    let size = desc["size"].as_u64().unwrap();
    // same size, different bytes: only the digest check can notice
    let f = w3
        .root()
        .join("snapshots")
        .join(layer.trim_start_matches("sha256:"))
        .join("bin/busybox");
    let mut bytes = std::fs::read(&f).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&f, &bytes).unwrap();
    let l = http(&a, "GET", &format!("/v2/busybox/blobs/{layer}"), &[]);
    assert_eq!(l.status, 200);
    assert!(
        (l.body.len() as u64) < size,
        "a layer failing verification was sent whole ({} bytes)",
        l.body.len()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !srv
        .log
        .lock()
        .unwrap()
        .contains("wharf registry: /v2/busybox/blobs/")
    {
        assert!(Instant::now() < deadline, "{}", srv.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    if skopeo_available() {
        let o = skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{a}/busybox:latest"),
            &format!("oci:{}:latest", t.path().join("o").display()),
        ]);
        assert!(!o.status.success());
    }
}

#[test]
fn docker_pulls_engine_images() {
    let Some(dd) = Dockerd::start() else {
        eprintln!("skipped: dockerd unavailable");
        return;
    };
    let w = Wharf::new().with_busybox();
    let id = image_id(&w, "busybox:latest");
    let srv = serve_engine(&w);
    // 127.0.0.0/8 is an insecure registry for docker by default
    let image = format!("{}/busybox", srv.addr);
    dd.ok(&["pull", &image]);
    let got = dd.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(got.trim(), id);
    // docker push is refused
    let pushed = format!("{}/pushed:1", srv.addr);
    dd.ok(&["tag", &image, &pushed]);
    let o = dd.docker(&["push", &pushed]);
    assert!(!o.status.success());
    dd.ok(&["rmi", &image, &pushed]);
}

#[test]
fn engine_store_flag_conflicts_with_registry_root() {
    let w = Wharf::new();
    let o = w.run(&[
        "registry",
        "serve",
        "--engine-store",
        "--root",
        "/tmp/x",
        "--addr",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tmpdir() -> tempfile::TempDir {
    tmp_dir("wharf-regeng-")
}

/// A fresh root that got busybox by `load` of another root's `save` (uncompressed layers:
/// stored as snapshot + tar-split, no blob file).
fn loaded_busybox() -> Wharf {
    let w = Wharf::new().with_busybox();
    let archive = w.dir.path().join("bb.tar");
    w.ok(&["save", "-o", archive.to_str().unwrap(), "busybox:latest"]);
    let loaded = Wharf::new();
    loaded.ok(&["load", "-i", archive.to_str().unwrap()]);
    loaded
}
