//! Log drivers end to end: a detached container's monitor writes through the configured
//! driver (syslog and journald to sockets the test listens on), json-file rotation holds under
//! a flood with the monitor's memory flat, and `--health-cmd none` disables a healthcheck.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

fn recv_all(sock: &UnixDatagram, want: usize, secs: u64) -> Vec<String> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("socket timeout");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while out.len() < want && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    out
}

#[test]
fn syslog_driver_with_tag() {
    let w = Wharf::new().with_busybox();
    let path = w.dir.path().join("syslog.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let addr = format!("syslog-address=unixgram://{}", path.display());
    w.ok(&[
        "run",
        "-d",
        "--name",
        "sl",
        "--log-driver",
        "syslog",
        "--log-opt",
        &addr,
        "--log-opt",
        "tag=web",
        "busybox",
        "sh",
        "-c",
        "echo hi; echo oops >&2",
    ]);
    let msgs = recv_all(&sock, 2, 10);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let hi = msgs
        .iter()
        .find(|m| m.ends_with("hi") || m.ends_with("hi\n"))
        .expect("stdout line");
    assert!(hi.starts_with("<30>"), "daemon.info: {hi}");
    assert!(hi.contains("web["), "tag: {hi}");
    let oops = msgs
        .iter()
        .find(|m| m.contains("oops"))
        .expect("stderr line");
    assert!(oops.starts_with("<27>"), "daemon.err: {oops}");
    // reading back is docker's error for non-json drivers
    let o = w.run(&["logs", "sl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not support reading"),
        "{}",
        stderr(&o)
    );
    w.ok(&["rm", "-f", "sl"]);
}

#[test]
fn journald_driver_native_protocol() {
    let w = Wharf::new().with_busybox();
    let path = w.dir.path().join("journal.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let opt = format!("journald-socket={}", path.display());
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "jd",
            "--log-driver",
            "journald",
            "--log-opt",
            &opt,
            "busybox",
            "echo",
            "to-journal",
        ])
        .trim()
        .to_string();
    let msgs = recv_all(&sock, 1, 10);
    let m = msgs.first().expect("a journal entry");
    assert!(m.contains("MESSAGE=to-journal"), "{m}");
    assert!(m.contains("PRIORITY=6"), "{m}");
    assert!(m.contains(&format!("CONTAINER_ID={}", &id[..12])), "{m}");
    assert!(m.contains("CONTAINER_NAME=jd"), "{m}");
    w.ok(&["rm", "-f", "jd"]);
}

/// Private anonymous memory of a process: what would grow if the monitor buffered logs
/// (its RSS also counts program pages faulted in, which are shared between monitors).
fn rss_anon_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn json_file_rotation_holds_under_a_flood() {
    let w = Wharf::new().with_busybox();
    // ~400 MB of 1000-byte lines through the monitor, max 3 files of 1 MiB
    let id = w
        .ok(&[
            "run", "-d", "--name", "flood", "--log-opt", "max-size=1m", "--log-opt", "max-file=3",
            "busybox", "sh", "-c",
            "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -c 400000000; echo; echo done",
        ])
        .trim()
        .to_string();
    let st = w.root().join("containers").join(&id).join("state.json");
    let monitor_pid = || -> i32 {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&st).unwrap_or_default()).unwrap_or_default();
        v["MonitorPid"].as_i64().unwrap_or(0) as i32
    };
    let dir = w.root().join("containers").join(&id);
    let disk = || -> u64 {
        std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
                    .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    let mut max_disk = 0;
    let mut rss = Vec::new();
    // a liveness guard, not a speed assertion: generous for a loaded CI machine
    let deadline = Instant::now() + Duration::from_secs(360);
    loop {
        max_disk = max_disk.max(disk());
        let pid = monitor_pid();
        if pid > 0 {
            let r = rss_anon_kb(pid);
            if r > 0 {
                rss.push(r);
            }
        }
        if w.ok(&["inspect", "-f", "{{.State.Status}}", "flood"])
            .trim()
            == "exited"
        {
            break;
        }
        assert!(Instant::now() < deadline, "flood did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    max_disk = max_disk.max(disk());
    assert!(
        max_disk <= 3 * 1024 * 1024 + 64 * 1024,
        "log files grew to {max_disk} bytes"
    );
    let last = w.ok(&["logs", "--tail", "1", "flood"]);
    assert_eq!(last, "done\n", "the last line survived rotation");
    // monitor memory stays flat: the largest sample is within 1 MiB of the smallest
    if rss.len() >= 3 {
        let (lo, hi) = (
            rss.iter().min().copied().unwrap_or(0),
            rss.iter().max().copied().unwrap_or(0),
        );
        assert!(
            hi <= lo + 1024,
            "monitor anonymous memory grew from {lo} kB to {hi} kB"
        );
    }
    w.ok(&["rm", "flood"]);
}

#[test]
fn health_cmd_none_disables_the_check() {
    let w = Wharf::new().with_busybox();
    w.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "false",
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "30",
    ]);
    w.ok(&[
        "run",
        "-d",
        "--name",
        "nh",
        "--health-cmd",
        "none",
        "busybox",
        "sleep",
        "30",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = w.ok(&["inspect", "-f", "{{json .State}}", "hc"]);
        if st.contains("unhealthy") {
            break;
        }
        assert!(Instant::now() < deadline, "never unhealthy: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let n = w.ok(&["inspect", "-f", "{{json .State}}", "nh"]);
    assert!(
        !n.contains("\"Health\":{"),
        "no health state with --health-cmd none: {n}"
    );
    assert!(w
        .ok(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .contains("(unhealthy)"));
    w.ok(&["rm", "-f", "hc", "nh"]);
}
