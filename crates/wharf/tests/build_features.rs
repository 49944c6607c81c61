//! `wharf build`'s Dockerfile features beyond the basics, through the real binary on the
//! real kernel with the busybox image: heredocs (RUN and COPY), `RUN --network`, RUN
//! `--mount` (cache, bind, tmpfs, secret), COPY wildcards and `--chown` by name, ADD of
//! compressed tars, streamed RUN output and docker's failure text, Ctrl-C during a RUN,
//! ONBUILD triggers and the SHELL/STOPSIGNAL/HEALTHCHECK config.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn ctx_with(w: &Wharf, dockerfile: &str) -> PathBuf {
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "Dockerfile", dockerfile);
    ctx
}

fn build_ok(w: &Wharf, args: &[&str]) -> String {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    let o = w.run(&a);
    assert!(o.status.success(), "build failed: {}", stderr(&o));
    stderr(&o)
}

fn run_sh(w: &Wharf, image: &str, script: &str) -> String {
    w.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        script,
    ])
}

fn no_leftovers(w: &Wharf) {
    assert_eq!(w.ok(&["ps", "-aq"]), "", "step containers left");
    assert_eq!(mounts_under(w.dir.path()), Vec::<String>::new());
    let tmp = std::fs::read_dir(w.root().join("build-tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "staging trees left behind");
}

#[test]
fn heredocs_in_run_and_copy() {
    let w = Wharf::new().with_busybox();
    let df = "FROM busybox\n\
ENV WHO=world\n\
RUN <<EOF\n\
echo \"hello $WHO\" > /one\n\
echo second line >> /one\n\
EOF\n\
RUN <<-'EOT' cat > /two\n\
\tquoted $WHO\n\
\tEOT\n\
RUN cat <<A > /three && cat 3<<B >> /three /dev/fd/3\n\
from-a $WHO\n\
A\n\
from-b\n\
B\n\
RUN <<EOF\n\
#!/bin/sh\n\
echo \"script $0\" > /four\n\
EOF\n\
COPY <<conf.txt <<\"raw.txt\" /files/\n\
who=${WHO}\n\
conf.txt\n\
who=${WHO}\n\
raw.txt\n\
COPY --chmod=750 <<run.sh /usr/local/bin/run.sh\n\
#!/bin/sh\n\
echo run\n\
run.sh\n";
    let ctx = ctx_with(&w, df);
    build_ok(&w, &["-t", "here:1", ctx.to_str().unwrap()]);
    let out = run_sh(
        &w,
        "here:1",
        "cat /one /two /three /four /files/conf.txt /files/raw.txt; stat -c %a /usr/local/bin/run.sh; run.sh",
    );
    assert_eq!(
        out,
        "hello world\nsecond line\nquoted $WHO\nfrom-a world\nfrom-b\nscript /dev/pipes/EOF\n\
who=world\nwho=${WHO}\n750\nrun\n"
    );
    // the script of a `#!` heredoc is not in the image
    let out = run_sh(&w, "here:1", "ls /dev/pipes 2>&1; true");
    assert!(!out.contains("EOF") || out.contains("No such"), "{out}");
    no_leftovers(&w);
}

#[test]
fn run_network_modes() {
    let w = Wharf::new().with_busybox();
    let ctx = ctx_with(
        &w,
        "FROM busybox\n\
RUN ls /sys/class/net | tr '\\n' ' ' > /none\n\
RUN --network=default ls /sys/class/net | tr '\\n' ' ' > /default\n\
RUN --network=host ls /sys/class/net | tr '\\n' ' ' > /host\n",
    );
    build_ok(&w, &["-t", "net:1", ctx.to_str().unwrap()]);
    let out = run_sh(
        &w,
        "net:1",
        "cat /none; echo; cat /default; echo; cat /host",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "lo", "{out}");
    assert_eq!(lines[1].trim(), "lo", "default is the build's: none; {out}");
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        host.iter()
            .filter(|n| *n != "lo")
            .any(|n| lines[2].contains(n.as_str())),
        "host interfaces {host:?} not seen: {out}"
    );
    // the admin policy judges --network=host as it judges `run --network host`
    let pol = common::policy::Pol::new(&w, "[run]\nhost_network = false\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN --network=host echo refused-step\n",
    );
    let o = pol.refused(&["build", ctx.to_str().unwrap()], "run.host_network");
    assert!(!stderr(&o).contains("refused-step\n#"), "{}", stderr(&o));
    no_leftovers(&w);
}

#[test]
fn run_mounts_cache_bind_tmpfs_secret() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "data/in.txt", "from-context\n");
    let secret = w.dir.path().join("token");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let df = "FROM busybox AS other\n\
RUN echo in-stage > /made\n\
FROM busybox\n\
RUN --mount=type=bind,from=other,source=/made,target=/m cat /m > /from-stage\n\
RUN --mount=type=cache,target=/cache,id=c1,uid=1000,mode=0700 \\\n\
    echo run >> /cache/log && wc -l < /cache/log > /cache-count && stat -c '%u %a' /cache > /cache-owner\n\
RUN --mount=type=bind,source=data,target=/ctx cat /ctx/in.txt > /bound && (touch /ctx/x 2>/dev/null && echo rw || echo ro) >> /bound\n\
RUN --mount=type=bind,source=data,target=/ctx,rw echo changed > /ctx/in.txt && cat /ctx/in.txt >> /bound\n\
RUN --mount=type=tmpfs,target=/scratch,size=1048576 echo t > /scratch/f && grep -c /scratch /proc/mounts > /tmpfs\n\
RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /secret-len\n\
RUN --mount=type=secret,id=tok,env=TOKEN echo \"${#TOKEN}\" > /secret-env\n\
RUN --mount=type=secret,id=absent echo optional-ok > /optional\n";
    write(&ctx, "Dockerfile", df);
    let c = ctx.to_str().unwrap();
    let secret_arg = format!("id=tok,src={}", secret.display());
    build_ok(&w, &["--secret", &secret_arg, "-t", "mnt:1", c]);
    let out = run_sh(
        &w,
        "mnt:1",
        "cat /from-stage /cache-count /cache-owner /bound /tmpfs /secret-len /secret-env /optional; \
         ls -a /m /cache /ctx /scratch /run/secrets 2>&1 | grep -c 'No such'",
    );
    assert_eq!(
        out,
        "in-stage\n1\n1000 700\nfrom-context\nro\nchanged\n1\n12\n12\noptional-ok\n5\n"
    );
    // the context file was not changed by the rw bind
    assert_eq!(
        std::fs::read_to_string(ctx.join("data/in.txt")).unwrap(),
        "from-context\n"
    );
    // the cache persists to the next build (--no-cache runs the step again)
    build_ok(
        &w,
        &["--no-cache", "--secret", &secret_arg, "-t", "mnt:2", c],
    );
    assert_eq!(run_sh(&w, "mnt:2", "cat /cache-count"), "2\n");
    // the secret is in no layer and no history
    let hist = w.ok(&["history", "--no-trunc", "mnt:1"]);
    assert!(!hist.contains("s3cr3t"), "{hist}");
    let save = w.dir.path().join("mnt.tar");
    w.ok(&["save", "-o", save.to_str().unwrap(), "mnt:1"]);
    let mut bytes = Vec::new();
    std::fs::File::open(&save)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret is in the saved image"
    );
    // a required secret not given is an error naming it
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=need,required cat /run/secrets/need\n",
    );
    let o = w.run(&["build", c]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("secret need"), "{}", stderr(&o));
    no_leftovers(&w);
}

#[test]
fn copy_globs_chown_names_and_compressed_add() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "a1.txt", "a1\n");
    write(&ctx, "a2.txt", "a2\n");
    write(&ctx, "b.md", "b\n");
    write(&ctx, "sub/x.txt", "x\n");
    write(&ctx, "sub/y.md", "y\n");
    // a gzip tar and a zstd-looking non-tar
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(3);
    h.set_mtime(1_700_000_000);
    tar.append_data(&mut h, "inner/z.txt", &b"zz\n"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    std::fs::write(ctx.join("files.tar.gz"), gz.finish().unwrap()).unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    std::fs::write(ctx.join("files.tar.zst"), zst).unwrap();
    std::fs::write(ctx.join("blob.xz"), b"\xfd7zXZ\x00 not really").unwrap();
    std::fs::write(ctx.join("blob.bz2"), b"BZh91AY&SY not really").unwrap();
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\n\
COPY a?.txt /g/\n\
COPY */*.md [a-b].md /m/\n\
COPY --chown=app:wheel a1.txt /owned-by-name\n\
COPY --chown=app a1.txt /owned-by-user\n\
ADD files.tar.gz /x/\n\
ADD files.tar.zst /zs/\n",
    );
    let c = ctx.to_str().unwrap();
    build_ok(&w, &["-t", "glob:1", c]);
    let out = run_sh(
        &w,
        "glob:1",
        "ls /g | tr '\\n' ' '; ls /m | tr '\\n' ' '; stat -c '%u:%g' /owned-by-name /owned-by-user; cat /x/inner/z.txt /zs/inner/z.txt",
    );
    assert_eq!(out, "a1.txt a2.txt b.md y.md 1000:10\n1000:1000\nzz\nzz\n");
    // no match, an unknown name, a bzip2 archive: errors naming what
    for (line, want) in [
        ("COPY nothing*.txt /n/", "no source files were specified"),
        (
            "COPY --chown=ghost a1.txt /",
            "unable to find passwd entry \"ghost\"",
        ),
        (
            "COPY --chown=app:ghosts a1.txt /",
            "unable to find group entry \"ghosts\"",
        ),
        ("ADD blob.bz2 /", "bzip2"),
        ("ADD blob.xz /", "xz-compressed"),
    ] {
        write(&ctx, "Dockerfile", &format!("FROM busybox\n{line}\n"));
        let o = w.run(&["build", "-t", "glob:bad", c]);
        assert!(!o.status.success(), "{line} was accepted");
        assert!(stderr(&o).contains(want), "{line}: {}", stderr(&o));
        assert!(stderr(&o).contains("line 2"), "{line}: {}", stderr(&o));
    }
    assert!(!w.ok(&["images"]).contains("glob:bad"));
    no_leftovers(&w);
}

#[test]
fn run_output_streams_and_failure_is_dockers_text() {
    let w = Wharf::new().with_busybox();
    let ctx = ctx_with(
        &w,
        "FROM busybox\nRUN echo early-line; sleep 3; echo late-line\nRUN echo out; echo err >&2; exit 3\n",
    );
    let mut child = w
        .command(&["build", "-t", "stream:1", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    // the first line arrives while the step still sleeps, before the second exists
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("#2 early-line\n") {
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "stderr ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        !String::from_utf8_lossy(&seen).contains("#2 late-line"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    err.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    let all = String::from_utf8_lossy(&seen).to_string();
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "The command '/bin/sh -c echo out; echo err >&2; exit 3' returned a non-zero code: 3"
        ),
        "{all}"
    );
    assert!(all.contains(" out\n") && all.contains(" err\n"), "{all}");
    // -q: nothing on success, the progress on failure
    let o = w.run(&["build", "-q", "-t", "stream:2", ctx.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("#3 err"), "{}", stderr(&o));
    write(&ctx, "Dockerfile", "FROM busybox\nRUN echo quiet-step\n");
    let o = w.run(&["build", "-q", ctx.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
    assert!(stdout(&o).starts_with("sha256:"), "{}", stdout(&o));
    assert!(!w.ok(&["images"]).contains("stream"));
    no_leftovers(&w);
}

#[test]
fn a_signal_during_run_cleans_up_and_tags_nothing() {
    let w = Wharf::new().with_busybox();
    let ctx = ctx_with(&w, "FROM busybox\nRUN echo before > /b\nRUN sleep 30\n");
    for (sig, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let mut child = w
            .command(&["build", "-t", "sig:1", ctx.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = eventually(20, || w.ok(&["ps", "-q"]).trim() != "");
        assert!(started, "the RUN step's container never ran");
        let t = std::time::Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "{:?}",
            t.elapsed()
        );
        // the step's container is gone at once, nothing tagged
        assert_eq!(w.ok(&["ps", "-aq"]), "", "{sig}");
        assert!(!w.ok(&["images"]).contains("sig"));
    }
    no_leftovers(&w);
}

#[test]
fn onbuild_triggers_and_config_instructions() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "trig.txt", "copied-by-trigger\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\n\
ONBUILD RUN echo ran-onbuild > /onbuild\n\
ONBUILD COPY trig.txt /trig.txt\n\
SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
STOPSIGNAL SIGUSR1\n\
HEALTHCHECK --interval=5s --retries=2 CMD true\n",
    );
    let c = ctx.to_str().unwrap();
    build_ok(&w, &["-t", "parent:1", c]);
    let fmt = |f: &str, img: &str| w.ok(&["image", "inspect", "--format", f, img]);
    assert_eq!(
        fmt("{{json .Config.OnBuild}}", "parent:1").trim(),
        r#"["RUN echo ran-onbuild > /onbuild","COPY trig.txt /trig.txt"]"#
    );
    assert_eq!(
        fmt("{{json .Config.Shell}}", "parent:1").trim(),
        r#"["/bin/sh","-e","-c"]"#
    );
    assert_eq!(fmt("{{.Config.StopSignal}}", "parent:1").trim(), "SIGUSR1");
    let json = |f: &str, img: &str| -> serde_json::Value {
        serde_json::from_str(fmt(f, img).trim()).unwrap()
    };
    assert_eq!(
        json("{{json .Config.Healthcheck}}", "parent:1"),
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 2})
    );
    // the parent's triggers run in the child (not in the parent), and are not inherited
    assert!(run_sh(&w, "parent:1", "ls /onbuild 2>&1; true").contains("No such"));
    let child_ctx = w.dir.path().join("child");
    write(&child_ctx, "trig.txt", "copied-by-trigger\n");
    write(
        &child_ctx,
        "Dockerfile",
        "FROM parent:1\nHEALTHCHECK NONE\nRUN echo child > /child\n",
    );
    let err = build_ok(&w, &["-t", "child:1", child_ctx.to_str().unwrap()]);
    assert!(err.contains("ONBUILD] RUN echo ran-onbuild"), "{err}");
    let out = run_sh(&w, "child:1", "cat /onbuild /trig.txt /child");
    assert_eq!(out, "ran-onbuild\ncopied-by-trigger\nchild\n");
    assert_eq!(fmt("{{json .Config.OnBuild}}", "child:1").trim(), "null");
    assert_eq!(
        json("{{json .Config.Healthcheck}}", "child:1"),
        serde_json::json!({"Test": ["NONE"]})
    );
    assert_eq!(fmt("{{.Config.StopSignal}}", "child:1").trim(), "SIGUSR1");
    no_leftovers(&w);
}

#[test]
fn copy_exclude_parents_link_and_refusals() {
    let w = Wharf::new().with_busybox();
    let ctx = w.dir.path().join("ctx");
    write(&ctx, "dir/keep.txt", "k\n");
    write(&ctx, "dir/drop.md", "d\n");
    write(&ctx, "dir/sub/deep.md", "dd\n");
    write(&ctx, "home.txt", "h\n");
    write(&ctx, "homer.md", "hm\n");
    write(&ctx, "x/y/z.txt", "z\n");
    write(&ctx, "plain.txt", "p\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\n\
COPY --exclude=*.md --exclude=sub dir /e/\n\
COPY --exclude=*.txt hom* /h/\n\
COPY --parents x/y/z.txt dir/keep.txt /p/\n\
RUN mkdir /d\n\
COPY --link plain.txt /d\n\
ADD plain.txt /added.txt\n",
    );
    let c = ctx.to_str().unwrap();
    build_ok(&w, &["-t", "cp:1", c]);
    let out = run_sh(
        &w,
        "cp:1",
        "ls /e | tr '\\n' ' '; ls /h | tr '\\n' ' '; cat /p/x/y/z.txt /p/dir/keep.txt; \
         test -f /d && cat /d; cat /added.txt",
    );
    // (--link: the destination is judged without the image below, so /d is the file)
    assert_eq!(out, "keep.txt homer.md z\nk\np\np\n");
    for (line, want) in [
        (
            "ADD --checksum=sha256:0000 plain.txt /",
            "only for a URL source",
        ),
        ("RUN --security=insecure true", "RUN --security=insecure"),
        ("COPY --parents ./x/./y/z.txt /p/", "./ pivot"),
    ] {
        write(&ctx, "Dockerfile", &format!("FROM busybox\n{line}\n"));
        let o = w.run(&["build", c]);
        assert!(!o.status.success(), "{line} was accepted");
        assert!(
            stderr(&o).contains(want) && stderr(&o).contains("line 2"),
            "{line}: {}",
            stderr(&o)
        );
    }
    no_leftovers(&w);
}

/// A one-thread HTTP server for the test: `/file.txt` (with Last-Modified), `/moved`
/// (302 to it), anything else 404; also answers proxy-style requests
/// (`GET http://host/path`), which it records.
fn http_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            if r.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let target = first.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(target.clone());
            let path = match target.split_once("://") {
                Some((_, rest)) => rest
                    .find('/')
                    .map(|i| rest[i..].to_string())
                    .unwrap_or_default(),
                None => target,
            };
            let resp = match path.as_str() {
                "/file.txt" => "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\nfrom-url\n".to_string(),
                "/moved" => "HTTP/1.1 302 Found\r\nLocation: /file.txt\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope".to_string(),
            };
            let _ = c.write_all(resp.as_bytes());
        }
    });
    (port, seen)
}

#[test]
fn add_of_a_url_checksum_mtime_and_proxy() {
    let w = Wharf::new().with_busybox();
    let (port, seen) = http_server();
    let base = format!("http://127.0.0.1:{port}");
    // sha256 of "from-url\n"
    let sum = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(b"from-url\n"))
    };
    let ctx = w.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM busybox\n\
ADD {base}/file.txt /dl/\n\
ADD --checksum=sha256:{sum} --chmod=644 {base}/moved /named.txt\n"
        ),
    );
    let c = ctx.to_str().unwrap();
    build_ok(&w, &["-t", "url:1", c]);
    let out = run_sh(
        &w,
        "url:1",
        "cat /dl/file.txt /named.txt; stat -c '%a %Y' /dl/file.txt /named.txt",
    );
    assert_eq!(out, "from-url\nfrom-url\n600 784111777\n644 784111777\n");
    // a wrong checksum, a 404: errors naming the line and the URL
    for (line, want) in [
        (
            format!(
                "ADD --checksum=sha256:{} {base}/file.txt /x",
                "0".repeat(64)
            ),
            "digest mismatch",
        ),
        (format!("ADD {base}/missing /x"), "404"),
        (
            "ADD https://github.com/a/b.git /src".to_string(),
            "git repository",
        ),
    ] {
        write(&ctx, "Dockerfile", &format!("FROM busybox\n{line}\n"));
        let o = w.run(&["build", c]);
        assert!(!o.status.success(), "{line} was accepted");
        assert!(
            stderr(&o).contains(want) && stderr(&o).contains("line 2"),
            "{line}: {}",
            stderr(&o)
        );
    }
    // through the proxy settings: the request for another host goes to the proxy
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nADD http://files.example.invalid/file.txt /p.txt\n",
    );
    let o = w
        .command(&["build", "-t", "url:2", c])
        .env("HTTP_PROXY", &base)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(run_sh(&w, "url:2", "cat /p.txt"), "from-url\n");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|t| t == "http://files.example.invalid/file.txt"),
        "{:?}",
        seen.lock().unwrap()
    );
    no_leftovers(&w);
}

#[test]
fn cache_mount_sharing_locked_serializes_and_private_separates() {
    let w = Wharf::new().with_busybox();
    let ctx = ctx_with(
        &w,
        "FROM busybox\nARG N\n\
RUN --mount=type=cache,target=/c,sharing=locked \\\n\
    mkdir /c/held && echo \"build $N\" && sleep 2 && rmdir /c/held\n",
    );
    let c = ctx.to_str().unwrap();
    let spawn = |n: &str| {
        w.command(&["build", "--build-arg", &format!("N={n}"), c])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("1"), spawn("2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    // had both steps held the cache at once, one `mkdir` would have failed
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));

    // sharing=private: a build that finds the cache held gets a directory of its own
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nARG N\n\
RUN --mount=type=cache,target=/p,sharing=private \\\n\
    touch /p/$N && sleep 2 && ls /p | wc -l > /count\n",
    );
    let spawn = |n: &str| {
        w.command(&[
            "build",
            "--build-arg",
            &format!("N={n}"),
            "-t",
            &format!("priv:{n}"),
            c,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn("1"), spawn("2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    for n in ["1", "2"] {
        let image = format!("priv:{n}");
        assert_eq!(run_sh(&w, &image, "cat /count").trim(), "1", "{image}");
    }
    no_leftovers(&w);
}
