//! `wharf build` through the real binary on the real kernel, from the busybox image:
//! multi-stage builds with RUN/COPY/ENV/WORKDIR/CMD whose image runs, the step cache,
//! `--no-cache`, `--target`, `.dockerignore`, context escapes refused, a failing RUN.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::path::Path;

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// Whether the RUN step's own output (not its title) is in the progress.
fn ran(progress: &str) -> bool {
    progress
        .lines()
        .any(|l| l.split_once(' ').map(|(_, r)| r) == Some("ran-the-run-step"))
}

fn build(w: &Wharf, args: &[&str]) -> std::process::Output {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    w.run(&a)
}

const MULTI: &str = r#"FROM busybox AS builder
WORKDIR /src
COPY app.txt .
RUN echo built > out.txt && cat app.txt >> out.txt && echo ran-the-run-step
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY --from=builder /src/out.txt ./
COPY dir/ ./dir/
COPY --chmod=600 --chown=7:8 app.txt /owned.txt
COPY app.txt /bin
CMD ["cat", "/app/out.txt"]
"#;

fn multi_context(w: &Wharf) -> std::path::PathBuf {
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", MULTI);
    write(&ctx, "app.txt", "from-the-context\n");
    write(&ctx, "dir/f", "in-a-dir\n");
    ctx
}

#[test]
fn multi_stage_build_runs_and_rebuild_is_cached() {
    let w = Wharf::new().with_busybox();
    let ctx = multi_context(&w);
    let c = ctx.to_str().unwrap();
    let o = build(&w, &["-t", "app:1", c]);
    let err = stderr(&o);
    assert!(o.status.success(), "build failed: {err}");
    assert!(err.contains("[builder 4/4] RUN echo built"), "{err}");
    assert!(ran(&err), "RUN output shown: {err}");
    assert!(
        stdout(&o).contains("Successfully tagged app:1"),
        "{}",
        stdout(&o)
    );

    // the image runs its CMD and has what the steps made
    let out = w.ok(&["run", "--rm", "--network", "none", "app:1"]);
    assert_eq!(out, "built\nfrom-the-context\n");
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "echo $GREETING; pwd; cat dir/f; stat -c '%a %u %g' /owned.txt; cat /bin/app.txt",
    ]);
    // (`COPY app.txt /bin`: /bin is a directory of the image, the file goes into it)
    assert_eq!(out, "hello\n/app\nin-a-dir\n600 7 8\nfrom-the-context\n");
    // metadata steps are history entries without a layer
    let hist = w.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        "app:1",
    ]);
    assert!(hist.contains("ENV GREETING=hello|0B"), "{hist}");
    assert!(
        hist.contains("COPY --from=builder /src/out.txt ./|"),
        "{hist}"
    );

    // the step containers, their mounts and the staging trees are gone
    assert_eq!(w.ok(&["ps", "-aq"]), "");
    assert_eq!(mounts_under(w.dir.path()), Vec::<String>::new());
    let tmp = std::fs::read_dir(w.root().join("build-tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "staging trees left behind");

    // an unchanged rebuild: every step cached, no RUN executed, the same image
    let id1 = w.ok(&["build", "-q", c]);
    let t = std::time::Instant::now();
    let o = build(&w, &["-t", "app:2", c]);
    let elapsed = t.elapsed();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("CACHED"), "{err}");
    assert!(!ran(&err), "the RUN ran again: {err}");
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    let id2 = w.ok(&["build", "-q", c]);
    assert_eq!(id1, id2);
    let inspect = |r: &str| w.ok(&["image", "inspect", "--format", "{{.Id}}", r]);
    assert_eq!(inspect("app:1"), inspect("app:2"));

    // a changed source invalidates its COPY and what follows, not what comes before
    write(&ctx, "dir/f", "changed\n");
    let o = build(&w, &["-t", "app:3", c]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!ran(&err), "{err}");
    let out = w.ok(&["run", "--rm", "--network", "none", "app:3", "cat", "dir/f"]);
    assert_eq!(out, "changed\n");

    // --no-cache runs everything again
    let o = build(&w, &["--no-cache", "-t", "app:4", c]);
    assert!(ran(&stderr(&o)), "{}", stderr(&o));
    assert_ne!(inspect("app:3"), inspect("app:4"));
}

#[test]
fn target_stops_at_the_stage() {
    let w = Wharf::new().with_busybox();
    let ctx = multi_context(&w);
    let o = build(
        &w,
        &["--target", "builder", "-t", "b:1", ctx.to_str().unwrap()],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        !err.contains("stage-1"),
        "the second stage was not needed: {err}"
    );
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "b:1",
        "cat",
        "/src/out.txt",
    ]);
    assert_eq!(out, "built\nfrom-the-context\n");
}

#[test]
fn build_args_and_labels() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nARG V=default\nRUN echo \"v=$V\" > /v\nLABEL from=file\n",
    );
    let c = ctx.to_str().unwrap();
    w.ok(&[
        "build",
        "--build-arg",
        "V=given",
        "--label",
        "a=b",
        "-t",
        "args:1",
        c,
    ]);
    let out = w.ok(&["run", "--rm", "--network", "none", "args:1", "cat", "/v"]);
    assert_eq!(out, "v=given\n");
    let labels = w.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "args:1",
    ]);
    // the Dockerfile's and --label's labels, and the provenance labels
    let mut labels: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(labels.trim()).unwrap();
    let provenance: Vec<String> = labels
        .keys()
        .filter(|k| k.starts_with("org.wharf.build."))
        .cloned()
        .collect();
    assert_eq!(
        provenance,
        [
            "org.wharf.build.context-digest",
            "org.wharf.build.dockerfile-digest"
        ]
    );
    labels.retain(|k, _| !k.starts_with("org.wharf.build."));
    assert_eq!(
        serde_json::Value::Object(labels).to_string(),
        r#"{"a":"b","from":"file"}"#
    );
    // an ARG is not in the image's environment
    let env = w.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        "args:1",
    ]);
    assert!(!env.contains("V="), "{env}");
}

#[test]
fn dockerignore_is_honoured() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY . /ctx/\n");
    write(&ctx, ".dockerignore", "secret.txt\nlogs/\n!logs/keep.log\n");
    write(&ctx, "secret.txt", "s3cret\n");
    write(&ctx, "keep.txt", "k\n");
    write(&ctx, "logs/a.log", "a\n");
    write(&ctx, "logs/keep.log", "kept\n");
    let c = ctx.to_str().unwrap();
    w.ok(&["build", "-t", "ign:1", c]);
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "ign:1",
        "sh",
        "-c",
        "ls -a /ctx /ctx/logs | tr '\\n' ' '",
    ]);
    assert!(!out.contains("secret.txt"), "{out}");
    assert!(!out.contains("a.log"), "{out}");
    assert!(
        out.contains("keep.txt") && out.contains("keep.log"),
        "{out}"
    );

    // an ignored file named as a source is not there
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY secret.txt /\n");
    let o = build(&w, &["-t", "ign:2", c]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not found in the build context"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn context_escapes_are_refused() {
    let w = Wharf::new().with_busybox();
    let outside = w.dir.path().join("outside.txt");
    std::fs::write(&outside, "must-not-be-read\n").unwrap();
    let ctx = w.dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", ctx.join("rel")).unwrap();
    std::os::unix::fs::symlink("../..", ctx.join("sub/up")).unwrap();
    let c = ctx.to_str().unwrap();
    for src in [
        "../outside.txt",
        "abs",
        "rel",
        "sub/up/outside.txt",
        "sub/../../outside.txt",
    ] {
        write(
            &ctx,
            "Dockerfile",
            &format!("FROM busybox\nCOPY {src} /x\n"),
        );
        let o = build(&w, &["-t", "esc:1", c]);
        assert!(!o.status.success(), "COPY {src} was accepted");
        assert!(
            stderr(&o).contains("is outside the build context"),
            "{src}: {}",
            stderr(&o)
        );
    }
    assert!(!w.ok(&["images"]).contains("esc"));
    // a symlink inside the context to a file inside it is fine
    std::os::unix::fs::symlink("sub/../keep", ctx.join("inside")).unwrap();
    write(&ctx, "keep", "ok\n");
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY inside /x\n");
    w.ok(&["build", "-t", "esc:2", c]);
    assert_eq!(
        w.ok(&["run", "--rm", "--network", "none", "esc:2", "cat", "/x"]),
        "ok\n"
    );
}

#[test]
fn failing_run_reports_and_tags_nothing() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo first > /f\nRUN echo some-output; echo on-stderr >&2; exit 3\n",
    );
    let o = build(&w, &["-t", "bad:1", ctx.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    assert!(
        err.contains("some-output") && err.contains("on-stderr"),
        "{err}"
    );
    assert!(!w.ok(&["images"]).contains("bad"));
    assert_eq!(w.ok(&["ps", "-aq"]), "", "the step's container was removed");
}

#[test]
fn add_extracts_a_local_tar_and_workdir_exists_for_run() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(ctx.join("files.tar")).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(3);
    b.append_data(&mut h, "inner/a.txt", &b"aa\n"[..]).unwrap();
    b.into_inner().unwrap();
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nADD files.tar /opt/\nCOPY files.tar /raw/\nWORKDIR /made/by/workdir\nRUN pwd > here\n",
    );
    w.ok(&["build", "-t", "add:1", ctx.to_str().unwrap()]);
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "add:1",
        "sh",
        "-c",
        "cat /opt/inner/a.txt; ls /raw; cat here",
    ]);
    assert_eq!(out, "aa\nfiles.tar\n/made/by/workdir\n");
}

#[test]
fn context_and_dockerfile_from_stdin() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "docker/Dockerfile",
        "FROM busybox\nCOPY hello.txt /\n",
    );
    write(&ctx, "hello.txt", "hi\n");
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", &ctx).unwrap();
    let tar = b.into_inner().unwrap();
    // the context as a tar on stdin, -f inside it
    let o = w.run_stdin(
        &["build", "-f", "docker/Dockerfile", "-t", "stdin:1", "-"],
        &tar,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "stdin:1",
        "cat",
        "/hello.txt",
    ]);
    assert_eq!(out, "hi\n");
    // a -f naming a path outside the tar's context is refused
    let o = w.run_stdin(&["build", "-f", "../x", "-"], &tar);
    assert!(
        stderr(&o).contains("is outside the build context"),
        "{}",
        stderr(&o)
    );
    // the Dockerfile on stdin, the context a directory
    let df = b"FROM busybox\nCOPY hello.txt /again.txt\n";
    let o = w.run_stdin(
        &["build", "-f", "-", "-t", "stdin:2", ctx.to_str().unwrap()],
        df,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "stdin:2",
        "cat",
        "/again.txt",
    ]);
    assert_eq!(out, "hi\n");
    // the staging tree of the stdin context is gone
    let tmp = std::fs::read_dir(w.root().join("build-tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0);
}

#[test]
fn a_killed_build_leaves_its_step_container_to_the_next_build() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM busybox\nRUN sleep 30\n");
    let mut child = w
        .command(&["build", "-t", "slow:1", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = eventually(20, || w.ok(&["ps", "-q"]).trim() != "");
    assert!(started, "the RUN step's container never ran");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(
        w.ok(&["ps", "-aq"]).trim(),
        "",
        "left behind by the killed build"
    );
    // nothing was tagged
    assert!(!w.ok(&["images"]).contains("slow"));
    // the next build removes it
    write(&ctx, "Dockerfile", "FROM busybox\nENV A=1\n");
    w.ok(&["build", ctx.to_str().unwrap()]);
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

#[test]
fn the_policy_judges_names_before_any_step_and_lets_steps_of_an_allowed_base_run() {
    let w = Wharf::new().with_busybox();
    let pol = common::policy::Pol::new(&w, "[registries]\nallow = [\"docker.io/library\"]\n");
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo a > /f\nCOPY Dockerfile /\nRUN echo ran-the-run-step\n",
    );
    let c = ctx.to_str().unwrap();
    // a tag outside the allowed registries: refused before any step ran
    let o = pol.refused(
        &["build", "-t", "other.example/app:1", c],
        "registries.allow",
    );
    assert!(!stderr(&o).contains("#1 "), "{}", stderr(&o));
    // a base from elsewhere: refused before any step, by the rule
    let other = w.dir.path().join("other");
    write(
        &other,
        "Dockerfile",
        "FROM busybox AS a\nRUN true\nFROM quay.io/x/y\n",
    );
    let o = pol.refused(&["build", other.to_str().unwrap()], "registries.allow");
    assert!(!stderr(&o).contains("#1 "), "{}", stderr(&o));
    // an allowed base and tag: the RUN step containers (on unnamed intermediate images)
    // are judged by the stage's base name and run
    let o = pol.run(&["build", "-t", "app:1", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(ran(&stderr(&o)), "{}", stderr(&o));
}
