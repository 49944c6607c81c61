//! `wharf build` and where its inputs come from, through the real binary: the host owner's
//! `[build]` policy (builds allowed at all, approved Dockerfile digests from a list or a
//! directory, FROM under `require_digest`), the provenance labels, FROM images pulled from
//! Debian's docker-registry (and `--pull`), and `--cache-from` images from another store.

#![allow(clippy::unwrap_used)]

mod common;
use common::policy::Pol;
use common::registry::DockerRegistry;
use common::*;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Whether the RUN step's own output (not its title) is in the progress.
fn ran(progress: &str) -> bool {
    progress
        .lines()
        .any(|l| l.split_once(' ').map(|(_, r)| r) == Some("ran-the-run-step"))
}

const DOCKERFILE: &str =
    "FROM busybox\nCOPY app.txt /app.txt\nRUN echo ran-the-run-step && cat /app.txt > /out\n";

fn context(w: &Wharf) -> PathBuf {
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", DOCKERFILE);
    write(&ctx, "app.txt", "one\n");
    ctx
}

fn labels(w: &Wharf, image: &str) -> serde_json::Value {
    let out = w.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        image,
    ]);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn build_policy_refuses_unapproved_dockerfiles_before_any_step() {
    let w = Wharf::new().with_busybox();
    let ctx = context(&w);
    let c = ctx.to_str().unwrap();
    let digest = sha256(DOCKERFILE.as_bytes());
    let other = sha256(b"FROM scratch\n");

    // builds not allowed at all
    let pol = Pol::new(&w, "[build]\nallow = false\n");
    let o = pol.refused(&["build", "-t", "app:1", c], "build.allow");
    assert!(!stderr(&o).contains("#1 "), "{}", stderr(&o));

    // a list that does not hold this Dockerfile: refused by name, with the digest, before
    // any step; the decision is in the audit log with the digest as its target
    pol.set(&format!("[build]\napproved_dockerfiles = [\"{other}\"]\n"));
    let o = pol.refused(&["build", "-t", "app:1", c], "build.approved_dockerfiles");
    let err = stderr(&o);
    assert!(err.contains(&digest), "{err}");
    assert!(!err.contains("#1 ") && !ran(&err), "{err}");
    assert!(!w.ok(&["images"]).contains("app"));
    let refused: Vec<_> = pol
        .audit_lines()
        .into_iter()
        .filter(|l| l["action"] == "build" && l["result"] == "refused")
        .collect();
    assert!(
        refused
            .iter()
            .any(|l| l["rule"] == "build.approved_dockerfiles" && l["target"] == digest.as_str()),
        "{refused:?}"
    );
    // `policy check --dockerfile` says the same without building
    let o = pol.run(&[
        "policy",
        "check",
        "--dockerfile",
        &format!("{c}/Dockerfile"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("build.approved_dockerfiles"),
        "{}",
        stdout(&o)
    );
    // the same file from stdin (`-f -`) is judged by its bytes too
    let o = pol
        .cmd(&["build", "-f", "-", c])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let o = {
        use std::io::Write;
        let mut child = o.unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(DOCKERFILE.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("build.approved_dockerfiles"),
        "{}",
        stderr(&o)
    );

    // listed: allowed, and the steps run
    pol.set(&format!(
        "[build]\napproved_dockerfiles = [\"{other}\", \"{digest}\"]\n"
    ));
    let o = pol.run(&["build", "-t", "app:1", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(ran(&stderr(&o)), "{}", stderr(&o));
    assert!(pol
        .ok(&[
            "policy",
            "check",
            "--dockerfile",
            &format!("{c}/Dockerfile")
        ])
        .contains("allowed"));

    // a directory of approved files: its files' digests approve; one changed byte does not
    let dir = w.dir.path().join("approved");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "other", "FROM scratch\n");
    pol.set(&format!("[build]\napproved_dir = \"{}\"\n", dir.display()));
    pol.refused(&["build", "--no-cache", c], "build.approved_dir");
    write(&dir, "app.Dockerfile", DOCKERFILE);
    let o = pol.run(&["build", "--no-cache", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    write(&ctx, "Dockerfile", &format!("{DOCKERFILE}\n"));
    pol.refused(&["build", c], "build.approved_dir");
    // a missing directory approves nothing (fail closed) and says why
    pol.set("[build]\napproved_dir = \"/nonexistent/wharf-approved\"\n");
    let o = pol.refused(&["build", c], "build.approved_dir");
    assert!(
        stderr(&o).contains("/nonexistent/wharf-approved"),
        "{}",
        stderr(&o)
    );
    // a malformed entry is the file's error, naming line and key
    pol.set("[build]\napproved_dockerfiles = [\"md5:abc\"]\n");
    let o = pol.run(&["build", c]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("line 2, key `approved_dockerfiles`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn build_policy_from_images_obey_require_digest_but_scratch_and_stages_do_not() {
    let w = Wharf::new().with_busybox();
    let pol = Pol::new(&w, "[registries]\nrequire_digest = true\n");
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo ran-the-run-step\n",
    );
    write(&ctx, "f", "x\n");
    let o = pol.refused(
        &["build", ctx.to_str().unwrap()],
        "registries.require_digest",
    );
    assert!(!stderr(&o).contains("#1 "), "{}", stderr(&o));
    // scratch and an earlier stage are no images to pin
    let s = w.dir.path().join("scratch");
    write(
        &s,
        "Dockerfile",
        "FROM scratch AS files\nCOPY f /f\nFROM files\nCOPY f /g\n",
    );
    write(&s, "f", "x\n");
    let o = pol.run(&["build", "-t", "files:1", s.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn built_images_carry_provenance_labels() {
    let w = Wharf::new().with_busybox();
    let ctx = context(&w);
    write(&ctx, ".dockerignore", "ignored.txt\n");
    write(&ctx, "ignored.txt", "a\n");
    let c = ctx.to_str().unwrap();
    // the last step is a RUN: the labels still land on the final image
    w.ok(&[
        "build",
        "--label",
        "org.wharf.build.dockerfile-digest=forged",
        "-t",
        "p:1",
        c,
    ]);
    let l = labels(&w, "p:1");
    assert_eq!(
        l["org.wharf.build.dockerfile-digest"],
        sha256(DOCKERFILE.as_bytes()).as_str(),
        "{l}"
    );
    let ctx_digest = l["org.wharf.build.context-digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ctx_digest.starts_with("sha256:") && ctx_digest.len() == 71,
        "{l}"
    );

    // deterministic; a file .dockerignore leaves out does not count
    write(&ctx, "ignored.txt", "b\n");
    w.ok(&["build", "-t", "p:2", c]);
    assert_eq!(
        labels(&w, "p:2")["org.wharf.build.context-digest"],
        ctx_digest.as_str()
    );
    assert_eq!(
        w.ok(&["image", "inspect", "--format", "{{.Id}}", "p:1"]),
        w.ok(&["image", "inspect", "--format", "{{.Id}}", "p:2"]),
        "an unchanged context rebuilds to the same image"
    );
    // a file sent (even one no COPY uses) does
    write(&ctx, "notes.txt", "new\n");
    let o = w.run(&["build", "-t", "p:3", c]);
    assert!(!ran(&stderr(&o)), "steps stay cached: {}", stderr(&o));
    let l3 = labels(&w, "p:3");
    assert_ne!(
        l3["org.wharf.build.context-digest"],
        ctx_digest.as_str(),
        "{l3}"
    );
    // the same context from stdin as a tar: the same digest as the directory
    let tar = std::process::Command::new("tar")
        .args(["-C", c, "-c", "."])
        .output()
        .unwrap()
        .stdout;
    let o = w.run_stdin(&["build", "-t", "p:4", "-"], &tar);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        labels(&w, "p:4")["org.wharf.build.context-digest"],
        l3["org.wharf.build.context-digest"]
    );
}

#[test]
fn from_images_are_pulled_and_pull_always_pulls_again() {
    let w = Wharf::new().with_busybox();
    let Some(dr) = DockerRegistry::start(w.dir.path(), "127.0.0.1", "", "") else {
        return;
    };
    let name = format!("{}/build/bb:v1", dr.addr);
    w.ok(&["tag", "busybox", &name]);
    w.ok(&["push", &name]);

    let w2 = Wharf::new();
    let ctx = w2.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {name}\nRUN echo ran-the-run-step > /out\n"),
    );
    let c = ctx.to_str().unwrap();
    let o = w2.run(&["build", "-t", "pulled:1", c]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("Digest: sha256:"),
        "docker's pull lines: {err}"
    );
    assert!(w2.ok(&["images"]).contains("build/bb"));
    assert_eq!(
        w2.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "pulled:1",
            "cat",
            "/out"
        ]),
        "ran-the-run-step\n"
    );
    // present: no pull; --pull: pulled again (and the steps stay cached)
    let o = w2.run(&["build", c]);
    assert!(!stderr(&o).contains("Digest: sha256:"), "{}", stderr(&o));
    let o = w2.run(&["build", "--pull", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("Digest: sha256:"), "{}", stderr(&o));
    // a FROM that no registry has: not found, nothing tagged
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {}/build/none:v1\n", dr.addr),
    );
    let o = w2.run(&["build", "-t", "none:1", c]);
    assert!(!o.status.success());
    assert!(!w2.ok(&["images"]).contains("build/none"));
}

#[test]
fn cache_from_reuses_the_steps_of_an_image_built_elsewhere() {
    let w1 = Wharf::new().with_busybox();
    let ctx = context(&w1);
    let c = ctx.to_str().unwrap();
    let o = w1.run(&["build", "-t", "app:1", c]);
    assert!(ran(&stderr(&o)), "{}", stderr(&o));
    let archive = w1.dir.path().join("app.tar");
    w1.ok(&["save", "-o", archive.to_str().unwrap(), "busybox", "app:1"]);

    // another store with the same base and the saved image
    let w2 = Wharf::new();
    w2.ok(&["load", "-i", archive.to_str().unwrap()]);
    let rootfs =
        |w: &Wharf, i: &str| w.ok(&["image", "inspect", "--format", "{{json .RootFS.Layers}}", i]);
    // without --cache-from the RUN runs
    let o = w2.run(&["build", "-t", "plain:1", c]);
    assert!(ran(&stderr(&o)), "{}", stderr(&o));
    let w3 = Wharf::new();
    w3.ok(&["load", "-i", archive.to_str().unwrap()]);
    let o = w3.run(&["build", "--cache-from", "app:1", "-t", "app:2", c]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!ran(&err), "the RUN came from the cache image: {err}");
    assert!(err.contains("CACHED"), "{err}");
    assert_eq!(rootfs(&w3, "app:2"), rootfs(&w1, "app:1"));
    // a changed instruction after the cached ones runs
    write(
        &ctx,
        "Dockerfile",
        &format!("{DOCKERFILE}RUN echo ran-the-run-step\n"),
    );
    let o = w3.run(&["build", "--cache-from", "app:1", "-t", "app:3", c]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("CACHED").count(),
        2,
        "COPY and the first RUN: {err}"
    );
    assert!(ran(&err), "{err}");
    // --no-cache: nothing reused
    let o = w3.run(&["build", "--no-cache", "--cache-from", "app:1", c]);
    assert!(!stderr(&o).contains("CACHED"), "{}", stderr(&o));
    // a missing cache image is a warning
    let o = w3.run(&["build", "--cache-from", "nothere:1", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothere:1"), "{}", stderr(&o));
}

/// Two steps with the same diff put one layer twice in the image: it still mounts (overlay
/// refuses a lowerdir given twice) and runs, under build and under `run`.
#[test]
fn repeated_identical_layers_mount() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN true\nRUN true\nRUN true\nRUN echo ran-the-run-step > /r\n",
    );
    let o = w.run(&["build", "-t", "rep:1", ctx.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        w.ok(&["run", "--rm", "--network", "none", "rep:1", "cat", "/r"]),
        "ran-the-run-step\n"
    );
}

/// The context digest remembers per-file digests by stat (so a rebuild of a large context
/// reads nothing it read before), and a same-size rewrite within the same second is still
/// seen (the ctime changes).
#[test]
fn context_digest_cache_sees_every_change() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM busybox\nENV A=1\n");
    write(&ctx, "data", "one\n");
    let c = ctx.to_str().unwrap();
    let digest = |tag: &str| {
        w.ok(&["build", "-t", tag, c]);
        labels(&w, tag)["org.wharf.build.context-digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = digest("c:1");
    let caches: Vec<_> = std::fs::read_dir(w.root().join("build-cache"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("context-"))
        .collect();
    assert_eq!(
        caches.len(),
        1,
        "one per-file digest cache for the directory"
    );
    assert_eq!(digest("c:2"), first, "unchanged");
    write(&ctx, "data", "two\n");
    let second = digest("c:3");
    assert_ne!(second, first, "a same-size rewrite is a change");
    write(&ctx, "data", "one\n");
    assert_eq!(
        digest("c:4"),
        first,
        "the same bytes again: the same digest"
    );
}
