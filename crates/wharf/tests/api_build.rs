//! `POST /build` through `wharf system service` with the real docker CLI's classic builder
//! (`DOCKER_BUILDKIT=0 docker build`) and docker-compose's `build:`: the image is built by
//! the engine (tags, build args, labels, provenance, cache), `-q` prints its id, a failing
//! RUN fails the client, a refused Dockerfile is the policy's error, and a BuildKit request
//! is refused with what to do instead.

#![allow(clippy::unwrap_used)]

mod common;
use common::api::{have_docker, Service};
use common::*;
use std::path::Path;

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

const DOCKERFILE: &str = "FROM busybox\nARG V=1\nCOPY app.txt /app.txt\nRUN echo ran-the-run-step && echo v$V > /out && cat /app.txt >> /out\nCMD [\"cat\", \"/out\"]\n";

#[test]
fn docker_classic_build_goes_through_the_engine() {
    if !have_docker() {
        eprintln!("SKIP: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", DOCKERFILE);
    write(&ctx, "app.txt", "from-the-context\n");
    write(&ctx, ".dockerignore", "secret\n");
    write(&ctx, "secret", "not sent\n");
    let c = ctx.to_str().unwrap();
    let svc = Service::start(&w, &[]);
    let build = |args: &[&str]| {
        let mut a = vec!["build"];
        a.extend_from_slice(args);
        let o = svc.docker(&a).env("DOCKER_BUILDKIT", "0").output().unwrap();
        (o.status.success(), stdout(&o), stderr(&o))
    };
    let (ok, out, err) = build(&["-t", "api:1", "--build-arg", "V=2", "--label", "l=x", c]);
    assert!(ok, "{out} {err}");
    assert!(
        out.contains("Step [stage-0 4/5] RUN echo ran-the-run-step"),
        "{out}"
    );
    assert!(
        out.contains("\nran-the-run-step\n"),
        "RUN output streamed: {out}"
    );
    assert!(out.contains("Successfully tagged api:1"), "{out}");
    assert_eq!(
        w.ok(&["run", "--rm", "--network", "none", "api:1"]),
        "v2\nfrom-the-context\n"
    );
    let labels = w.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "api:1",
    ]);
    let labels: serde_json::Value = serde_json::from_str(labels.trim()).unwrap();
    assert_eq!(labels["l"], "x");
    assert!(labels["org.wharf.build.context-digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let id = w.ok(&["image", "inspect", "--format", "{{.Id}}", "api:1"]);

    // cached: nothing runs; -q prints the id alone
    let (ok, out, err) = build(&[
        "-q",
        "-t",
        "api:1",
        "--build-arg",
        "V=2",
        "--label",
        "l=x",
        c,
    ]);
    assert!(ok, "{out} {err}");
    assert_eq!(out.trim(), id.trim(), "{err}");
    let (ok, out, _) = build(&["-t", "api:1", "--build-arg", "V=2", "--label", "l=x", c]);
    assert!(
        ok && out.contains("Using cache") && !out.contains("\nran-the-run-step\n"),
        "{out}"
    );

    // a Dockerfile outside the context (the CLI sends it inside the tar under another name)
    let other = w.dir.path().join("other.Dockerfile");
    std::fs::write(&other, "FROM busybox\nRUN echo other > /o\n").unwrap();
    let (ok, out, err) = build(&["-f", other.to_str().unwrap(), "-t", "api:2", c]);
    assert!(ok, "{out} {err}");
    assert_eq!(
        w.ok(&["run", "--rm", "--network", "none", "api:2", "cat", "/o"]),
        "other\n"
    );

    // a failing RUN: the client fails with the step's error
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo failing-step; exit 3\n",
    );
    let (ok, out, err) = build(&["-t", "api:3", c]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(
            "The command '/bin/sh -c echo failing-step; exit 3' returned a non-zero code: 3"
        ),
        "{out} {err}"
    );
    assert!(!w.ok(&["images"]).contains("api:3") && !w.ok(&["images"]).contains(" 3 "));

    // BuildKit's request: refused, saying what to do
    let (status, text) = svc.raw(
        b"POST /v1.47/build?version=2 HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 501, "{text}");
    assert!(text.contains("DOCKER_BUILDKIT=0"), "{text}");
}

#[test]
fn api_build_is_judged_by_the_policy() {
    if !have_docker() {
        eprintln!("SKIP: no docker CLI");
        return;
    }
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo ran-the-run-step\n",
    );
    let pol = w.dir.path().join("policy.toml");
    std::fs::write(
        &pol,
        "[build]\napproved_dockerfiles = [\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"]\n",
    )
    .unwrap();
    let audit = w.dir.path().join("audit.log");
    let svc = Service::start(&w, &[("WHARF_POLICY", &pol), ("WHARF_AUDIT_LOG", &audit)]);
    let o = svc
        .docker(&["build", "-t", "refused:1", ctx.to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("build.approved_dockerfiles"), "{all}");
    assert!(!all.contains("ran-the-run-step"), "{all}");
}

#[test]
fn compose_build_uses_the_classic_api() {
    let compose = Path::new("/usr/bin/docker-compose");
    if !compose.exists() {
        eprintln!("SKIP: no docker-compose");
        return;
    }
    let w = Wharf::new().with_busybox();
    let proj = w.dir.path().join("proj");
    write(
        &proj,
        "app/Dockerfile",
        "FROM busybox\nRUN echo composed > /c\n",
    );
    write(
        &proj,
        "docker-compose.yml",
        "services:\n  app:\n    build: ./app\n    image: composed:1\n",
    );
    let svc = Service::start(&w, &[]);
    let o = std::process::Command::new(compose)
        .args(["build"])
        .current_dir(&proj)
        .env("DOCKER_HOST", format!("unix://{}", svc.sock.display()))
        .env("DOCKER_BUILDKIT", "0")
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
    assert_eq!(
        w.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "composed:1",
            "cat",
            "/c"
        ]),
        "composed\n"
    );
}
