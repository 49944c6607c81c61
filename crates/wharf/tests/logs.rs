//! `wharf logs` end to end: detached containers whose monitor writes json-file logs, and
//! log files written by the json-file driver directly (rotation, since/until).

#![allow(clippy::unwrap_used)]

mod common;

use common::{stderr, stdout, Wharf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wharf_logs::{LogContext, Stream};
use wharf_types::container::LogConfig;

fn is_ts(s: &str) -> bool {
    // 2026-11-22T04:05:06.123456789Z
    let b = s.as_bytes();
    s.len() == 30
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[29] == b'Z'
        && b[20..29].iter().all(u8::is_ascii_digit)
}

/// Follows the logs until the container exits (this is also how the tests wait for it).
fn follow(w: &Wharf, name: &str) -> (String, String, Duration) {
    let start = Instant::now();
    let o = w.run(&["logs", "-f", name]);
    assert!(o.status.success(), "{}", stderr(&o));
    (stdout(&o), stderr(&o), start.elapsed())
}

#[test]
fn logs_tail_timestamps_and_stream_separation() {
    let w = Wharf::new().with_busybox();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo oops >&2; sleep 0.3; i=0; while [ $i -lt 5 ]; do echo line$i; i=$((i+1)); done",
    ]);
    let (out, err, _) = follow(&w, "web");
    assert_eq!(out, "line0\nline1\nline2\nline3\nline4\n");
    assert_eq!(err, "oops\n");

    let o = w.run(&["logs", "web"]);
    assert_eq!(stdout(&o), "line0\nline1\nline2\nline3\nline4\n");
    assert_eq!(stderr(&o), "oops\n");

    assert_eq!(w.ok(&["logs", "--tail", "2", "web"]), "line3\nline4\n");
    assert_eq!(w.ok(&["logs", "-n", "0", "web"]), "");
    assert_eq!(w.ok(&["logs", "--tail", "all", "web"]).lines().count(), 5);

    let ts = w.ok(&["logs", "-t", "--tail", "3", "web"]);
    let lines: Vec<&str> = ts.lines().collect();
    assert_eq!(lines.len(), 3, "{ts}");
    for (l, want) in lines.iter().zip(["line2", "line3", "line4"]) {
        let (t, msg) = l.split_once(' ').unwrap();
        assert!(is_ts(t), "{l}");
        assert_eq!(msg, want);
    }
    // Every record is older than "now" and newer than an hour ago.
    assert_eq!(w.ok(&["logs", "--since", "1h", "web"]).lines().count(), 5);
    assert_eq!(w.ok(&["logs", "--until", "1h", "web"]), "");
    let future = (SystemTime::now() + Duration::from_secs(3600))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    assert_eq!(w.ok(&["logs", "--since", &future, "web"]), "");
    assert_eq!(
        w.ok(&["logs", "--details", "--tail", "1", "web"]),
        " line4\n"
    );
    // By id prefix-free full id too.
    let id = w.ok(&["inspect", "--format", "{{.Id}}", "web"]);
    if !id.trim().is_empty() && !id.contains("{{") {
        assert_eq!(w.ok(&["logs", "--tail", "1", id.trim()]), "line4\n");
    }
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let w = Wharf::new().with_busybox();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 2; echo b",
    ]);
    let (out, _, took) = follow(&w, "slow");
    assert_eq!(out, "a\nb\n");
    assert!(took >= Duration::from_millis(1200), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    // Following an exited container prints everything and returns (does not follow).
    assert_eq!(returns(&w, &["logs", "-f", "--tail", "1", "slow"]), "b\n");
}

/// Runs a command that must end by itself (a liveness bound, not a speed assertion).
fn returns(w: &Wharf, args: &[&str]) -> String {
    let mut c = w
        .command(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("{args:?} did not return");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{args:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn logs_survive_stop() {
    let w = Wharf::new().with_busybox();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "stopme",
        "busybox",
        "sh",
        "-c",
        "echo before; exec sleep 100",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.ok(&["logs", "stopme"]) != "before\n" {
        assert!(Instant::now() < deadline, "no log line while running");
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = w.run(&["stop", "-t", "1", "stopme"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(w.ok(&["logs", "stopme"]), "before\n");
    assert_eq!(returns(&w, &["logs", "-f", "stopme"]), "before\n");
}

#[test]
fn logs_errors() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&["logs", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );

    w.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "syslog",
        "busybox",
        "true",
    ]);
    let o = w.run(&["logs", "quiet"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );

    w.ok(&["run", "--name", "bad-since", "busybox", "true"]);
    let o = w.run(&["logs", "--since", "yesterday", "bad-since"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("since"), "{}", stderr(&o));
}

/// A log written by the json-file driver itself (rotated files included) read by the CLI.
#[test]
fn logs_read_rotated_driver_files_with_since_until() {
    let w = Wharf::new().with_busybox();
    w.ok(&["run", "--name", "rot", "busybox", "true"]);
    let id = w
        .ok(&["inspect", "--format", "{{.Id}}", "rot"])
        .trim()
        .to_string();
    let dir = w.root().join("containers").join(&id);
    assert!(dir.is_dir(), "{}", dir.display());
    let _ = std::fs::remove_file(wharf_logs::json_log_path(&dir, &id));
    let cfg = LogConfig {
        driver: "json-file".into(),
        config: [
            ("max-size".to_string(), "4k".to_string()),
            ("max-file".to_string(), "20".to_string()),
        ]
        .into(),
    };
    let ctx = LogContext {
        container_id: id.clone(),
        container_name: "rot".into(),
        image_name: "busybox".into(),
        image_id: String::new(),
        dir: dir.clone(),
    };
    let mut d = wharf_logs::open(&cfg, &ctx).unwrap();
    let base = 1_795_320_306u64;
    for i in 0..300u64 {
        let s = if i % 3 == 0 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        d.log(
            s,
            format!("rec {i:03}\n").as_bytes(),
            UNIX_EPOCH + Duration::from_secs(base + i),
        );
    }
    d.close();
    assert!(dir.join(format!("{id}-json.log.3")).exists());
    let o = w.run(&["logs", "rot"]);
    let want: String = (0..300)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("rec {i:03}\n"))
        .collect();
    assert_eq!(stdout(&o), want);
    assert_eq!(stderr(&o).lines().count(), 100);
    let o = w.run(&[
        "logs",
        "--since",
        "2026-11-22T04:05:16Z",
        "--until",
        &(base + 14).to_string(),
        "rot",
    ]);
    assert_eq!(stdout(&o), "rec 010\nrec 011\nrec 013\nrec 014\n");
    assert_eq!(stderr(&o), "rec 012\n");
    let o = w.run(&["logs", "-t", "--tail", "1", "rot"]);
    assert_eq!(stdout(&o), "2026-11-22T04:10:05.000000000Z rec 299\n");
}

/// docker keeps the log of a container run in the foreground: `run --name x …; logs x` prints
/// its output (streams kept apart, a tty's output as stdout), while the caller still sees it
/// live; `--rm` leaves no record and no log behind; `--log-driver none` logs nothing.
#[test]
fn logs_of_foreground_runs() {
    let w = Wharf::new().with_busybox();
    let o = w.run(&[
        "run",
        "--name",
        "fg-plain",
        "busybox",
        "sh",
        "-c",
        "echo hi; echo oops >&2; seq 1 3000 | tail -1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hi\n3000\n", "the caller still sees the output");
    assert_eq!(stderr(&o), "oops\n");
    let l = w.run(&["logs", "fg-plain"]);
    assert!(l.status.success(), "{}", stderr(&l));
    assert_eq!(stdout(&l), "hi\n3000\n");
    assert_eq!(stderr(&l), "oops\n");

    // a long output is logged whole (the pipe is drained after the exit)
    w.ok(&["run", "--name", "fg-long", "busybox", "seq", "1", "20000"]);
    let l = w.ok(&["logs", "--tail", "1", "fg-long"]);
    assert_eq!(l, "20000\n");

    // a tty run: docker logs what the terminal showed (CRLF), as stdout
    let o = w.run(&["run", "-t", "--name", "fg-tty", "busybox", "echo", "on-tty"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "on-tty\r\n");
    assert_eq!(w.ok(&["logs", "fg-tty"]), "on-tty\r\n");

    // --rm: nothing left (record, directory, log)
    let before = std::fs::read_dir(w.root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(
        w.ok(&["run", "--rm", "--name", "fg-rm", "busybox", "echo", "gone"]),
        "gone\n"
    );
    let after = std::fs::read_dir(w.root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(before, after, "a --rm run leaves no container directory");
    assert_eq!(w.run(&["logs", "fg-rm"]).status.code(), Some(1));

    // no log driver: the output still reaches the caller, `logs` refuses as docker does
    let o = w.run(&[
        "run",
        "--name",
        "fg-none",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "x",
    ]);
    assert_eq!(stdout(&o), "x\n");
    let l = w.run(&["logs", "fg-none"]);
    assert_eq!(l.status.code(), Some(1));
    assert!(
        stderr(&l).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&l)
    );
}
