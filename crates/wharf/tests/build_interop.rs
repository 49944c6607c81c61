//! A Dockerfile built by wharf and by a private dockerd's classic builder: the same
//! filesystem (names, types, modes, owners, contents, link targets) and the same config
//! fields (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels less
//! wharf's provenance, StopSignal, Healthcheck); the wharf-built image `save` → `docker
//! load` keeps its id and runs under docker; a docker-built image `docker save` → `wharf
//! load` is a FROM base for `wharf build`.

#![allow(clippy::unwrap_used)]

mod common;
use common::dockerd::Dockerd;
use common::*;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

const DOCKERFILE: &str = r#"FROM busybox
ENV PATH=/usr/local/bin:/usr/bin:/bin APP_HOME=/srv/app
WORKDIR /srv/app
COPY app.txt ./
COPY --chown=7:8 dir/ ./dir/
COPY secret.txt /etc/secret.txt
RUN mkdir -p data/sub && echo made > data/sub/f && ln -s data/sub/f link && chmod 0751 data && rm /bin/yes
RUN echo more >> app.txt
LABEL org.example.name="interop" org.example.v=1
EXPOSE 8080 53/udp
VOLUME /srv/app/data
USER 1000:1000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD cat /srv/app/app.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat app.txt"]
"#;

/// Every entry of an exported root filesystem: path → (type, mode, uid, gid, content hash or
/// link target). Files every engine writes at create (`/etc/hosts`, …) are left out.
fn tree(tar_bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let path = path.trim_start_matches("./").to_string();
        if path.is_empty()
            || [
                ".dockerenv",
                "etc/hosts",
                "etc/hostname",
                "etc/resolv.conf",
                "etc/mtab",
            ]
            .contains(&path.as_str())
            || ["dev", "proc", "sys"]
                .iter()
                .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        {
            continue;
        }
        let h = e.header().clone();
        let what = match h.entry_type() {
            tar::EntryType::Symlink => format!("l {}", e.link_name().unwrap().unwrap().display()),
            tar::EntryType::Directory => "d".to_string(),
            tar::EntryType::Link => format!("h {}", e.link_name().unwrap().unwrap().display()),
            _ => {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                format!("f {:x}", Sha256::digest(&b))
            }
        };
        out.insert(
            path,
            format!(
                "{what} {:o} {}:{}",
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap()
            ),
        );
    }
    out
}

fn config_fields(inspect_json: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(inspect_json).unwrap();
    let img = if v.is_array() { &v[0] } else { &v };
    let c = &img["Config"];
    let mut labels = c["Labels"].clone();
    if let Some(m) = labels.as_object_mut() {
        m.retain(|k, _| !k.starts_with("org.wharf.build."));
    }
    serde_json::json!({
        "Env": c["Env"], "Cmd": c["Cmd"], "Entrypoint": c["Entrypoint"],
        "WorkingDir": c["WorkingDir"], "User": c["User"], "ExposedPorts": c["ExposedPorts"],
        "Volumes": c["Volumes"], "Labels": labels, "StopSignal": c["StopSignal"],
        "Healthcheck": c["Healthcheck"],
    })
}

#[test]
fn wharf_and_docker_classic_build_the_same_image() {
    let w = Wharf::new().with_busybox();
    let Some(dd) = Dockerd::start() else {
        eprintln!("SKIP: dockerd unavailable");
        return;
    };
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", DOCKERFILE);
    write(&ctx, "app.txt", "hello\n");
    write(&ctx, "dir/a", "a\n");
    write(&ctx, "dir/sub/b", "b\n");
    write(&ctx, "secret.txt", "s\n");
    std::fs::set_permissions(
        ctx.join("dir/a"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let bb = w.dir.path().join("busybox.tar");
    dd.ok(&["import", bb.to_str().unwrap(), "busybox:latest"]);

    w.ok(&["build", "-t", "interop:1", c]);
    let o = std::process::Command::new("docker")
        .args(["build", "-t", "interop:1", c])
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", w.dir.path().join("dcfg"))
        .env("DOCKER_HOST", dd.host())
        .output()
        .unwrap();
    assert!(o.status.success(), "docker build: {}", stderr(&o));

    // the config fields
    let wi = w.ok(&["image", "inspect", "interop:1"]);
    let di = dd.ok(&["image", "inspect", "interop:1"]);
    assert_eq!(
        config_fields(&wi),
        config_fields(&di),
        "wharf: {wi}\ndocker: {di}"
    );

    // the filesystem, through each engine's export
    let wc = w.ok(&["create", "interop:1"]).trim().to_string();
    let wt = w.dir.path().join("w.tar");
    w.ok(&["export", "-o", wt.to_str().unwrap(), &wc]);
    let dc = dd.ok(&["create", "interop:1"]).trim().to_string();
    let dt = w.dir.path().join("d.tar");
    dd.ok(&["export", "-o", dt.to_str().unwrap(), &dc]);
    let (wtree, dtree) = (
        tree(&std::fs::read(&wt).unwrap()),
        tree(&std::fs::read(&dt).unwrap()),
    );
    let diff: Vec<String> = wtree
        .iter()
        .filter(|(k, v)| dtree.get(*k) != Some(*v))
        .map(|(k, v)| format!("wharf  {k}: {v} / docker {:?}", dtree.get(k)))
        .chain(
            dtree
                .keys()
                .filter(|k| !wtree.contains_key(*k))
                .map(|k| format!("docker only {k}: {}", dtree[k])),
        )
        .collect();
    assert!(diff.is_empty(), "filesystems differ:\n{}", diff.join("\n"));
    assert!(
        !wtree.contains_key("bin/yes"),
        "the RUN's deletion is a whiteout"
    );
    w.ok(&["rm", &wc]);
    dd.ok(&["rm", &dc]);

    // wharf's image → docker: same id, and it runs
    let s = w.dir.path().join("built.tar");
    w.ok(&["save", "-o", s.to_str().unwrap(), "interop:1"]);
    let id = w.ok(&["image", "inspect", "--format", "{{.Id}}", "interop:1"]);
    dd.ok(&["rmi", "interop:1"]);
    dd.ok(&["load", "-i", s.to_str().unwrap()]);
    assert_eq!(
        dd.ok(&["image", "inspect", "--format", "{{.Id}}", "interop:1"])
            .trim(),
        id.trim()
    );
    assert_eq!(
        dd.ok(&["run", "--rm", "--network", "none", "interop:1"]),
        "hello\nmore\n"
    );

    // docker's image → wharf: a FROM base
    let dctx = w.dir.path().join("dctx");
    write(
        &dctx,
        "Dockerfile",
        "FROM busybox\nRUN echo from-docker > /d\n",
    );
    let o = std::process::Command::new("docker")
        .args(["build", "-t", "dbase:1", dctx.to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", w.dir.path().join("dcfg"))
        .env("DOCKER_HOST", dd.host())
        .output()
        .unwrap();
    assert!(o.status.success(), "docker build: {}", stderr(&o));
    let ds = w.dir.path().join("dbase.tar");
    dd.ok(&["save", "-o", ds.to_str().unwrap(), "dbase:1"]);
    w.ok(&["load", "-i", ds.to_str().unwrap()]);
    let wctx = w.dir.path().join("wctx");
    // docker's config says `"WorkingDir": ""`: not set (RUN in /, a relative WORKDIR from /)
    write(
        &wctx,
        "Dockerfile",
        "FROM dbase:1\nRUN cat /d > w0\nWORKDIR rel\nRUN cat /d > /w && pwd > /pwd\n",
    );
    w.ok(&["build", "-t", "onbase:1", wctx.to_str().unwrap()]);
    assert_eq!(
        w.ok(&["run", "--rm", "--network", "none", "onbase:1", "cat", "/w"]),
        "from-docker\n"
    );
    assert_eq!(
        w.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "onbase:1",
            "cat",
            "/w0",
            "/pwd"
        ]),
        "from-docker\n/rel\n"
    );
}
