//! wharf's Engine API against dockerd 20.10 (Debian's docker.io) as the oracle: the same
//! raw requests sent to both, their status codes and the key sets of their JSON compared
//! recursively (values may differ). A key dockerd sends that wharf lacks must be in
//! [`ALLOWED_MISSING`] with its reason (docs/api.md lists them too).

mod common;

use common::api::Service;
use common::dockerd::Dockerd;
use common::Wharf;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Keys dockerd 20.10 sends that wharf does not, each with why (path syntax: `route:a.b`,
/// `[]` for an array's elements).
const ALLOWED_MISSING: &[(&str, &str)] = &[(
    "image:GraphDriver.Data",
    "overlay2 gives each image a diff/work/merged dir of its own; wharf stacks the \
         unpacked layers (all LowerDir), a container has the upper/work/merged dirs",
)];

/// Objects whose keys are data (names, labels, ports), not schema: compared as values.
const MAPS: &[&str] = &[
    "Labels",
    "Options",
    "Networks",
    "Ports",
    "ExposedPorts",
    "Volumes",
    "Containers",
    "IndexConfigs",
    "Runtimes",
    "DriverOpts",
    "Config.Labels",
    "Plugins",
    "Status",
    "Sysctls",
    "Tmpfs",
    "StorageOpt",
    "LogConfig.Config",
    "Annotations",
    "BuildCache",
    "Platform",
];

/// One request on a unix socket (HTTP/1.0: the body ends with the connection); the status
/// and the body as JSON (Null when it is not JSON).
fn call(sock: &Path, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body.trim()).unwrap_or(Value::Null),
    )
}

/// Every key path of `v` (`a.b`, `a[].c`); the keys of [`MAPS`] objects are not descended.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                let is_map = MAPS
                    .iter()
                    .any(|m| *m == k || p.ends_with(&format!(".{m}")) || p == *m);
                if !is_map {
                    key_paths(child, &p, out);
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                key_paths(child, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn same_requests_as_dockerd_same_statuses_and_keys() {
    let Some(dd) = Dockerd::start() else {
        eprintln!("skipped: dockerd unavailable");
        return;
    };
    if !common::api::have_docker() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let saved = w.dir.path().join("bb.tar");
    w.ok(&["save", "-o", saved.to_str().expect("utf8"), "busybox"]);
    let o = dd.docker(&["load", "-i", saved.to_str().expect("utf8")]);
    assert!(o.status.success(), "docker load: {}", common::stderr(&o));
    let s = Service::start(&w, &[]);
    let dsock = dd.sock();
    let socks = [("dockerd", dsock.as_path()), ("wharf", s.sock.as_path())];

    // the same objects on both sides
    let create = r#"{"Image":"busybox","Cmd":["sleep","300"],"Labels":{"a":"b"},"HostConfig":{"NetworkMode":"none"}}"#;
    let mut ids = Vec::new();
    for (who, sock) in socks {
        let (code, v) = call(sock, "POST", "/v1.41/containers/create?name=cmp", create);
        assert_eq!(code, 201, "{who}: {v}");
        let id = v["Id"].as_str().expect("Id").to_string();
        let (code, v) = call(sock, "POST", &format!("/v1.41/containers/{id}/start"), "");
        assert_eq!(code, 204, "{who}: {v}");
        let (code, v) = call(
            sock,
            "POST",
            &format!("/v1.41/containers/{id}/exec"),
            r#"{"Cmd":["true"]}"#,
        );
        assert_eq!(code, 201, "{who}: {v}");
        let exec = v["Id"].as_str().expect("exec Id").to_string();
        call(
            sock,
            "POST",
            "/v1.41/volumes/create",
            r#"{"Name":"cmpvol"}"#,
        );
        ids.push((id, exec));
    }
    let image_id = {
        let (_, v) = call(&dsock, "GET", "/v1.41/images/busybox/json", "");
        v["Id"].as_str().expect("image Id").to_string()
    };
    let routes = |id: &str, exec: &str| -> Vec<(&'static str, String, &'static str, String)> {
        vec![
            (
                "containers",
                "GET".into(),
                "",
                "/v1.41/containers/json?all=1".into(),
            ),
            (
                "container",
                "GET".into(),
                "",
                format!("/v1.41/containers/{id}/json"),
            ),
            ("images", "GET".into(), "", "/v1.41/images/json".into()),
            (
                "image",
                "GET".into(),
                "",
                format!("/v1.41/images/{image_id}/json"),
            ),
            ("version", "GET".into(), "", "/v1.41/version".into()),
            ("info", "GET".into(), "", "/v1.41/info".into()),
            ("volumes", "GET".into(), "", "/v1.41/volumes".into()),
            ("volume", "GET".into(), "", "/v1.41/volumes/cmpvol".into()),
            ("networks", "GET".into(), "", "/v1.41/networks".into()),
            (
                "404",
                "GET".into(),
                "",
                "/v1.41/containers/nosuch/json".into(),
            ),
            (
                "409",
                "POST".into(),
                "create",
                "/v1.41/containers/create?name=cmp".into(),
            ),
            (
                "409-rm",
                "DELETE".into(),
                "",
                format!("/v1.41/containers/{id}"),
            ),
            ("exec", "GET".into(), "", format!("/v1.41/exec/{exec}/json")),
        ]
    };
    let mut missing_all = Vec::new();
    let mut status_diff = Vec::new();
    let d = routes(&ids[0].0, &ids[0].1);
    let x = routes(&ids[1].0, &ids[1].1);
    for (dr, xr) in d.iter().zip(x.iter()) {
        let body = if dr.2 == "create" { create } else { "" };
        let (dc, dv) = call(&dsock, &dr.1, &dr.3, body);
        let (xc, xv) = call(&s.sock, &xr.1, &xr.3, body);
        if dc != xc {
            status_diff.push(format!("{}: dockerd {dc} wharf {xc} ({xv})", dr.0));
        }
        let (mut dk, mut xk) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&dv, "", &mut dk);
        key_paths(&xv, "", &mut xk);
        for k in dk.difference(&xk) {
            missing_all.push(format!("{}:{k}", dr.0));
        }
    }
    for (id, _) in &ids {
        let _ = call(
            &dsock,
            "DELETE",
            &format!("/v1.41/containers/{id}?force=1"),
            "",
        );
    }
    let _ = call(
        &s.sock,
        "DELETE",
        &format!("/v1.41/containers/{}?force=1", ids[1].0),
        "",
    );
    let _ = call(
        &dsock,
        "DELETE",
        &format!("/v1.41/containers/{}?force=1", ids[1].0),
        "",
    );
    let unexplained: Vec<&String> = missing_all
        .iter()
        .filter(|k| {
            !ALLOWED_MISSING
                .iter()
                .any(|(a, _)| *a == k.as_str() || k.starts_with(&format!("{a}.")))
        })
        .collect();
    assert!(
        status_diff.is_empty(),
        "status codes differ: {status_diff:#?}"
    );
    assert!(
        unexplained.is_empty(),
        "keys dockerd sends that wharf lacks ({}): {unexplained:#?}",
        unexplained.len()
    );
}
