//! `wharf registry serve` against real clients: skopeo (push, inspect, pull back), plus raw
//! HTTP requests for the parts of the distribution spec a client does not exercise on demand
//! (chunked uploads with PATCH, digest mismatches, missing blobs, oversized manifests,
//! Range, pagination, auth, read-only).

#![allow(clippy::unwrap_used)]

mod common;
use common::dockerd::Dockerd;
use common::registry::{http, skopeo, skopeo_available, skopeo_ok, Serve};
use common::tmp_dir;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wharf_types::Digest;

/// `wharf registry serve` with its own temporary storage root.
struct Registry {
    srv: Serve,
    _root: tempfile::TempDir,
}

impl std::ops::Deref for Registry {
    type Target = Serve;
    fn deref(&self) -> &Serve {
        &self.srv
    }
}

impl std::ops::DerefMut for Registry {
    fn deref_mut(&mut self) -> &mut Serve {
        &mut self.srv
    }
}

impl Registry {
    fn start(extra: &[&str]) -> Registry {
        let root = tempfile::Builder::new()
            .prefix("wharf-reg-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root.path().join("store"))
            .args(extra);
        Registry {
            srv: Serve::start(cmd),
            _root: root,
        }
    }
}

/// Writes an OCI image layout holding a busybox image tagged `latest`; returns the
/// manifest digest and the layer digest.
fn write_oci_layout(dir: &Path) -> (Digest, Digest) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let tar = dir.join("layer.tar");
    common::write_busybox_tar(&tar);
    let tar_bytes = std::fs::read(&tar).unwrap();
    // gzip it so skopeo pushes it unchanged (docker:// destinations want compressed layers)
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(&tar)
        .output()
        .expect("gzip");
    assert!(gz.status.success());
    let layer = gz.stdout;
    std::fs::remove_file(&tar).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let ld = put(&layer);
    let diff_id = Digest::of(&tar_bytes);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created_by": "wharf test"}],
    })
    .to_string();
    let cd = put(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.to_string(), "size": layer.len()}],
    })
    .to_string();
    let md = put(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(),
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (md, ld)
}

/// Layer digests of the image tagged `tag` in an OCI layout.
fn layout_layers(dir: &Path) -> Vec<String> {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let md = idx["manifests"][0]["digest"].as_str().unwrap().to_string();
    let hex = md.trim_start_matches("sha256:");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Pushes a blob monolithically (POST ?digest=) and returns its digest.
fn push_blob(addr: &str, repo: &str, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    let r = http(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[],
        bytes,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    d
}

#[test]
fn skopeo_push_inspect_pull_and_delete() {
    if !skopeo_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let a = reg.addr.clone();
    let src = tmpdir();
    let layout = src.path().join("img");
    let (md, ld) = write_oci_layout(&layout);

    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{a}/test/busybox:1"),
    ]);
    let inspect = skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{a}/test/busybox:1"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(
        v["Digest"].as_str(),
        Some(md.to_string().as_str()),
        "{inspect}"
    );
    assert_eq!(v["Layers"][0].as_str(), Some(ld.to_string().as_str()));

    // pull it back out and compare
    let out = tmpdir();
    let dest = out.path().join("back");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{a}/test/busybox:1"),
        &format!("oci:{}:latest", dest.display()),
    ]);
    assert_eq!(layout_layers(&dest), vec![ld.to_string()]);

    // manifest GET by tag and digest: exact bytes, content type, digest header
    let stored = std::fs::read(layout.join("blobs/sha256").join(md.hex())).unwrap();
    for r in ["1".to_string(), md.to_string()] {
        let g = http(
            &a,
            "GET",
            &format!("/v2/test/busybox/manifests/{r}"),
            &[],
            b"",
        );
        assert_eq!(g.status, 200);
        assert_eq!(g.body, stored);
        assert_eq!(
            g.header("Content-Type"),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert_eq!(
            g.header("Docker-Content-Digest"),
            Some(md.to_string().as_str())
        );
        let h = http(
            &a,
            "HEAD",
            &format!("/v2/test/busybox/manifests/{r}"),
            &[],
            b"",
        );
        assert_eq!(h.status, 200);
        assert_eq!(
            h.header("Content-Length"),
            Some(stored.len().to_string().as_str())
        );
        assert!(h.body.is_empty());
    }

    // blob HEAD/GET with Range (resumable pulls)
    let layer = std::fs::read(layout.join("blobs/sha256").join(ld.hex())).unwrap();
    let h = http(
        &a,
        "HEAD",
        &format!("/v2/test/busybox/blobs/{ld}"),
        &[],
        b"",
    );
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("Content-Length"),
        Some(layer.len().to_string().as_str())
    );
    assert_eq!(
        h.header("Docker-Content-Digest"),
        Some(ld.to_string().as_str())
    );
    let g = http(
        &a,
        "GET",
        &format!("/v2/test/busybox/blobs/{ld}"),
        &[("Range", "bytes=100-")],
        b"",
    );
    assert_eq!(g.status, 206);
    assert_eq!(g.body, layer[100..]);
    assert_eq!(
        g.header("Content-Range"),
        Some(format!("bytes 100-{}/{}", layer.len() - 1, layer.len()).as_str())
    );
    let g = http(
        &a,
        "GET",
        &format!("/v2/test/busybox/blobs/{ld}"),
        &[("Range", "bytes=99999999-")],
        b"",
    );
    assert_eq!(g.status, 416);
    // a blob of another repo is not visible through this one
    assert_eq!(
        http(&a, "HEAD", &format!("/v2/other/blobs/{ld}"), &[], b"").status,
        404
    );

    // tags with pagination, catalog
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{a}/test/busybox:2"),
    ]);
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{a}/zz/other:latest"),
    ]);
    let t = http(&a, "GET", "/v2/test/busybox/tags/list", &[], b"");
    assert_eq!(t.json()["tags"], serde_json::json!(["1", "2"]));
    let t = http(&a, "GET", "/v2/test/busybox/tags/list?n=1", &[], b"");
    assert_eq!(t.json()["tags"], serde_json::json!(["1"]));
    assert_eq!(
        t.header("Link"),
        Some("</v2/test/busybox/tags/list?last=1&n=1>; rel=\"next\"")
    );
    let t = http(&a, "GET", "/v2/test/busybox/tags/list?n=1&last=1", &[], b"");
    assert_eq!(t.json()["tags"], serde_json::json!(["2"]));
    let t = http(&a, "GET", "/v2/nope/tags/list", &[], b"");
    assert_eq!((t.status, t.error_code().as_str()), (404, "NAME_UNKNOWN"));
    let c = http(&a, "GET", "/v2/_catalog", &[], b"");
    assert_eq!(
        c.json()["repositories"],
        serde_json::json!(["test/busybox", "zz/other"])
    );
    let c = http(&a, "GET", "/v2/_catalog?n=1", &[], b"");
    assert_eq!(
        c.json()["repositories"],
        serde_json::json!(["test/busybox"])
    );
    assert!(c
        .header("Link")
        .is_some_and(|l| l.contains("last=test/busybox")));

    // invalid names never reach the file system
    let r = http(&a, "GET", "/v2/../../etc/tags/list", &[], b"");
    assert_eq!((r.status, r.error_code().as_str()), (400, "NAME_INVALID"));
    let r = http(&a, "GET", "/v2/Test/manifests/1", &[], b"");
    assert_eq!(r.error_code(), "NAME_INVALID");

    // delete by digest: both tags go, the manifest is unknown, skopeo sees it gone
    let d = http(
        &a,
        "DELETE",
        &format!("/v2/test/busybox/manifests/{md}"),
        &[],
        b"",
    );
    assert_eq!(d.status, 202);
    let g = http(&a, "GET", "/v2/test/busybox/manifests/1", &[], b"");
    assert_eq!(
        (g.status, g.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    assert_eq!(
        http(
            &a,
            "GET",
            &format!("/v2/test/busybox/manifests/{md}"),
            &[],
            b""
        )
        .status,
        404
    );
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{a}/test/busybox:1"),
    ]);
    assert!(!out.status.success());
    // the other repository is untouched
    assert_eq!(
        http(&a, "GET", "/v2/zz/other/manifests/latest", &[], b"").status,
        200
    );

    // Docker schema2 (skopeo converts), and two pushes in parallel
    let pushes: Vec<_> = ["docker/v2s2:1", "par/one:1", "par/two:1"]
        .iter()
        .enumerate()
        .map(|(i, dest)| {
            let mut c = Command::new("skopeo");
            c.args(["--insecure-policy", "copy", "--dest-tls-verify=false"]);
            if i == 0 {
                c.args(["--format", "v2s2"]);
            }
            c.arg(format!("oci:{}:latest", layout.display()))
                .arg(format!("docker://{a}/{dest}"))
                .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("skopeo")
        })
        .collect();
    for p in pushes {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let g = http(&a, "GET", "/v2/docker/v2s2/manifests/1", &[], b"");
    assert_eq!(
        g.header("Content-Type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(
        g.header("Docker-Content-Digest"),
        Some(Digest::of(&g.body).to_string().as_str())
    );
    for r in ["par/one", "par/two"] {
        let g = http(&a, "GET", &format!("/v2/{r}/manifests/1"), &[], b"");
        assert_eq!(
            g.header("Docker-Content-Digest"),
            Some(md.to_string().as_str())
        );
    }

    // access log: one line per request
    let log = reg.log.lock().unwrap().clone();
    assert!(
        log.contains("\"DELETE /v2/test/busybox/manifests/sha256:"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("\"PUT /v2/test/busybox/manifests/1\" 201")),
        "{log}"
    );
}

#[test]
fn chunked_uploads_mounts_and_refusals() {
    let reg = Registry::start(&["--max-manifest-size", "4096"]);
    let a = reg.addr.clone();

    let base = http(&a, "GET", "/v2/", &[], b"");
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );

    // chunked upload: POST, PATCH (Content-Length), PATCH (chunked transfer), PUT with a tail
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = Digest::of(&data);
    let p = http(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    assert_eq!(p.status, 202);
    let loc = p.header("Location").unwrap().to_string();
    assert!(p.header("Docker-Upload-UUID").is_some());
    assert_eq!(p.header("Range"), Some("0-0"));
    let r = http(
        &a,
        "PATCH",
        &loc,
        &[("Content-Range", "0-99999")],
        &data[..100_000],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Range"), Some("0-99999"));
    // out-of-order chunk refused
    let bad = http(
        &a,
        "PATCH",
        &loc,
        &[("Content-Range", "5-10")],
        &data[5..11],
    );
    assert_eq!(bad.status, 416);
    let r = http(
        &a,
        "PATCH",
        &loc,
        &[("Transfer-Encoding", "chunked")],
        &data[100_000..250_000],
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("Range"), Some("0-249999"));
    let st = http(&a, "GET", &loc, &[], b"");
    assert_eq!((st.status, st.header("Range")), (204, Some("0-249999")));
    // the blob is not visible before the PUT
    assert_eq!(
        http(&a, "HEAD", &format!("/v2/up/blobs/{d}"), &[], b"").status,
        404
    );
    let r = http(
        &a,
        "PUT",
        &format!("{loc}?digest={d}"),
        &[],
        &data[250_000..],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(d.to_string().as_str())
    );
    let g = http(&a, "GET", &format!("/v2/up/blobs/{d}"), &[], b"");
    assert_eq!(g.body, data);
    assert_eq!(g.header("Content-Type"), Some("application/octet-stream"));
    // the finished upload is gone
    assert_eq!(
        http(&a, "GET", &loc, &[], b"").error_code(),
        "BLOB_UPLOAD_UNKNOWN"
    );

    // digest mismatch: refused, nothing visible
    let claimed = Digest::of(b"what the client claims");
    let r = http(
        &a,
        "POST",
        &format!("/v2/up/blobs/uploads/?digest={claimed}"),
        &[],
        b"other bytes",
    );
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    assert_eq!(
        http(&a, "HEAD", &format!("/v2/up/blobs/{claimed}"), &[], b"").status,
        404
    );
    let actual = Digest::of(b"other bytes");
    assert_eq!(
        http(&a, "HEAD", &format!("/v2/up/blobs/{actual}"), &[], b"").status,
        404
    );
    // same through PATCH + PUT
    let p = http(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    let loc2 = p.header("Location").unwrap().to_string();
    http(&a, "PATCH", &loc2, &[], b"evil");
    let r = http(&a, "PUT", &format!("{loc2}?digest={claimed}"), &[], b"");
    assert_eq!(r.error_code(), "DIGEST_INVALID");
    assert_eq!(
        http(&a, "HEAD", &format!("/v2/up/blobs/{claimed}"), &[], b"").status,
        404
    );
    // cancel
    let p = http(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    let loc3 = p.header("Location").unwrap().to_string();
    assert_eq!(http(&a, "DELETE", &loc3, &[], b"").status, 204);
    assert_eq!(http(&a, "PATCH", &loc3, &[], b"x").status, 404);
    // an upload of one repository cannot be continued through another
    let p = http(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    let uuid = p.header("Docker-Upload-UUID").unwrap().to_string();
    assert_eq!(
        http(
            &a,
            "PATCH",
            &format!("/v2/other/blobs/uploads/{uuid}"),
            &[],
            b"x"
        )
        .status,
        404
    );

    // cross-repository mount
    let m = http(
        &a,
        "POST",
        &format!("/v2/mounted/blobs/uploads/?mount={d}&from=up"),
        &[],
        b"",
    );
    assert_eq!(m.status, 201);
    assert_eq!(
        http(&a, "HEAD", &format!("/v2/mounted/blobs/{d}"), &[], b"").status,
        200
    );
    // mount of an unknown blob falls back to an upload session
    let m = http(
        &a,
        "POST",
        &format!("/v2/mounted/blobs/uploads/?mount={claimed}&from=up"),
        &[],
        b"",
    );
    assert_eq!(m.status, 202);

    // manifests: missing blob refused; valid one accepted; by-digest verified; oversized refused
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = push_blob(&a, "up", config);
    let missing = Digest::of(b"never uploaded");
    let manifest = |layer: &Digest| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer.to_string(), "size": 1}],
        })
        .to_string()
    };
    let ct = [(
        "Content-Type",
        "application/vnd.docker.distribution.manifest.v2+json",
    )];
    let bad = manifest(&missing);
    let r = http(&a, "PUT", "/v2/up/manifests/v1", &ct, bad.as_bytes());
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    assert_eq!(http(&a, "GET", "/v2/up/manifests/v1", &[], b"").status, 404);
    let good = manifest(&d);
    let gd = Digest::of(good.as_bytes());
    let wrong = Digest::of(b"x");
    let r = http(
        &a,
        "PUT",
        &format!("/v2/up/manifests/{wrong}"),
        &ct,
        good.as_bytes(),
    );
    assert_eq!(r.error_code(), "DIGEST_INVALID");
    let r = http(
        &a,
        "PUT",
        &format!("/v2/up/manifests/{gd}"),
        &ct,
        good.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = http(&a, "PUT", "/v2/up/manifests/v1", &ct, good.as_bytes());
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(gd.to_string().as_str())
    );
    let g = http(&a, "GET", "/v2/up/manifests/v1", &[], b"");
    assert_eq!(g.header("Content-Type"), Some(ct[0].1));
    assert_eq!(g.body, good.as_bytes());
    // an index must reference manifests the repository has
    let index = |child: &Digest| {
        serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": ct[0].1, "digest": child.to_string(), "size": 1,
            "platform": {"architecture": "amd64", "os": "linux"}}]})
        .to_string()
    };
    let r = http(
        &a,
        "PUT",
        "/v2/up/manifests/multi",
        &[],
        index(&missing).as_bytes(),
    );
    assert_eq!(r.error_code(), "MANIFEST_BLOB_UNKNOWN");
    let r = http(
        &a,
        "PUT",
        "/v2/up/manifests/multi",
        &[],
        index(&gd).as_bytes(),
    );
    assert_eq!(r.status, 201);
    let g = http(&a, "GET", "/v2/up/manifests/multi", &[], b"");
    assert_eq!(
        g.header("Content-Type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    // referrers (OCI 1.1): an artifact whose subject is the image
    let empty = push_blob(&a, "up", b"{}");
    let sig = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2}],
        "subject": {"mediaType": ct[0].1, "digest": gd.to_string(), "size": good.len()},
        "annotations": {"org.example": "yes"},
    })
    .to_string();
    let sd = Digest::of(sig.as_bytes());
    let r = http(
        &a,
        "PUT",
        &format!("/v2/up/manifests/{sd}"),
        &[],
        sig.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("OCI-Subject"), Some(gd.to_string().as_str()));
    let r = http(&a, "GET", &format!("/v2/up/referrers/{gd}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let refs = r.json();
    assert_eq!(
        refs["manifests"].as_array().map(|m| m.len()),
        Some(1),
        "{refs}"
    );
    assert_eq!(
        refs["manifests"][0]["digest"].as_str(),
        Some(sd.to_string().as_str())
    );
    assert_eq!(
        refs["manifests"][0]["artifactType"].as_str(),
        Some("application/vnd.example.sig")
    );
    assert_eq!(
        refs["manifests"][0]["annotations"]["org.example"].as_str(),
        Some("yes")
    );
    let r = http(
        &a,
        "GET",
        &format!("/v2/up/referrers/{gd}?artifactType=application%2Fother"),
        &[],
        b"",
    );
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
    assert_eq!(r.header("OCI-Filters-Applied"), Some("artifactType"));

    // oversized (limit 4096 for this server)
    let mut big: serde_json::Value = serde_json::from_str(&good).unwrap();
    big["annotations"] = serde_json::json!({"pad": "x".repeat(5000)});
    let big = big.to_string();
    let r = http(&a, "PUT", "/v2/up/manifests/big", &ct, big.as_bytes());
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "MANIFEST_INVALID")
    );
    let r = http(
        &a,
        "PUT",
        "/v2/up/manifests/big",
        &[("Transfer-Encoding", "chunked")],
        big.as_bytes(),
    );
    assert_eq!(r.status, 413);
    assert_eq!(
        http(&a, "GET", "/v2/up/manifests/big", &[], b"").status,
        404
    );
    let r = http(&a, "PUT", "/v2/up/manifests/junk", &ct, b"not json");
    assert_eq!(r.error_code(), "MANIFEST_INVALID");

    // tag delete keeps the manifest; blob delete unlinks
    assert_eq!(
        http(&a, "DELETE", "/v2/up/manifests/v1", &[], b"").status,
        202
    );
    assert_eq!(
        http(&a, "GET", &format!("/v2/up/manifests/{gd}"), &[], b"").status,
        200
    );
    assert_eq!(
        http(&a, "DELETE", &format!("/v2/mounted/blobs/{d}"), &[], b"").status,
        202
    );
    let r = http(&a, "HEAD", &format!("/v2/mounted/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 404);
    let r = http(&a, "GET", &format!("/v2/mounted/blobs/{d}"), &[], b"");
    assert_eq!(r.error_code(), "BLOB_UNKNOWN");
    assert_eq!(
        http(&a, "GET", "/v2/up/blobs/sha256:zz", &[], b"").error_code(),
        "DIGEST_INVALID"
    );

    // keep-alive: several requests on one connection (the second with a body)
    let mut s = TcpStream::connect(&a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nPOST /v2/ka/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /v2/_catalog HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("HTTP/1.1 ").count(), 3, "{all}");
    assert!(all.contains("HTTP/1.1 202"), "{all}");
}

fn write_htpasswd(dir: &Path) -> PathBuf {
    let p = dir.join("htpasswd");
    let line = wharf_registry::htpasswd_line("alice", "s3cret", 6).unwrap();
    std::fs::write(&p, format!("{line}\n")).unwrap();
    p
}

#[test]
fn htpasswd_auth() {
    let tmp = tmpdir();
    let hp = write_htpasswd(tmp.path());
    let reg = Registry::start(&["--htpasswd", hp.to_str().unwrap()]);
    let a = reg.addr.clone();
    let r = http(&a, "GET", "/v2/", &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"wharf\""));
    assert_eq!(r.error_code(), "UNAUTHORIZED");
    // alice:wrong
    let r = http(
        &a,
        "GET",
        "/v2/",
        &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")],
        b"",
    );
    assert_eq!(r.status, 401);
    // alice:s3cret
    let r = http(
        &a,
        "GET",
        "/v2/_catalog",
        &[("Authorization", "Basic YWxpY2U6czNjcmV0")],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = http(&a, "POST", "/v2/x/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 401);

    if !skopeo_available() {
        return;
    }
    let src = tmpdir();
    let layout = src.path().join("img");
    let (md, _) = write_oci_layout(&layout);
    let from = format!("oci:{}:latest", layout.display());
    let to = format!("docker://{a}/auth/busybox:1");
    let out = skopeo(&["copy", "--dest-tls-verify=false", &from, &to]);
    assert!(!out.status.success(), "unauthenticated push must fail");
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:nope",
        &from,
        &to,
    ]);
    assert!(!out.status.success(), "wrong password must fail");
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &from,
        &to,
    ]);
    let inspect = skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &to,
    ]);
    assert!(inspect.contains(&md.to_string()), "{inspect}");
}

#[test]
fn read_only_refuses_writes() {
    let reg = Registry::start(&["--read-only"]);
    let a = reg.addr.clone();
    assert_eq!(http(&a, "GET", "/v2/", &[], b"").status, 200);
    for (m, p) in [
        ("POST", "/v2/ro/blobs/uploads/"),
        ("PUT", "/v2/ro/manifests/1"),
        ("DELETE", "/v2/ro/manifests/1"),
        (
            "PATCH",
            "/v2/ro/blobs/uploads/00000000000000000000000000000000",
        ),
    ] {
        let r = http(&a, m, p, &[], b"{}");
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (405, "UNSUPPORTED"),
            "{m} {p}"
        );
    }
    assert_eq!(
        http(&a, "GET", "/v2/_catalog", &[], b"").json()["repositories"],
        serde_json::json!([])
    );
    if !skopeo_available() {
        return;
    }
    let src = tmpdir();
    let layout = src.path().join("img");
    write_oci_layout(&layout);
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{a}/ro/busybox:1"),
    ]);
    assert!(
        !out.status.success(),
        "push to a read-only registry must fail"
    );
    assert_eq!(http(&a, "GET", "/v2/ro/tags/list", &[], b"").status, 404);
}

#[test]
fn docker_pull_and_push() {
    if !skopeo_available() {
        return;
    }
    let Some(dd) = Dockerd::start() else {
        eprintln!("skipped: dockerd unavailable");
        return;
    };
    let reg = Registry::start(&[]);
    let a = reg.addr.clone();
    let src = tmpdir();
    let layout = src.path().join("img");
    write_oci_layout(&layout);
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{a}/test/busybox:1"),
    ]);
    let m = http(&a, "GET", "/v2/test/busybox/manifests/1", &[], b"");
    let config = m.json()["config"]["digest"].as_str().unwrap().to_string();

    // docker pull (127.0.0.0/8 is an insecure registry for docker by default)
    let image = format!("{a}/test/busybox:1");
    dd.ok(&["pull", &image]);
    let id = dd.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(id.trim(), config);

    // docker push to another repository: docker's own upload flow (and mount attempts)
    let pushed = format!("{a}/pushed/by-docker:v1");
    dd.ok(&["tag", &image, &pushed]);
    let out = dd.ok(&["push", &pushed]);
    assert!(out.contains("digest: sha256:"), "{out}");
    let inspect = skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{pushed}"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["RepoTags"], serde_json::json!(["v1"]));
    let g = http(&a, "GET", "/v2/pushed/by-docker/manifests/v1", &[], b"");
    assert_eq!(g.json()["config"]["digest"].as_str(), Some(config.as_str()));
    dd.ok(&["rmi", &image, &pushed]);
}

#[test]
fn sigterm_stops_the_server() {
    let mut reg = Registry::start(&[]);
    let pid = nix::unistd::Pid::from_raw(reg.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = reg.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "registry ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(&reg.addr).is_err());
}

fn tmpdir() -> tempfile::TempDir {
    tmp_dir("wharf-reg-it-")
}
