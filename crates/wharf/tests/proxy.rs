//! Pulling through a real forward proxy (Debian's tinyproxy): `HTTP_PROXY` is used for a
//! registry that is not on loopback, `NO_PROXY` bypasses it, a dead proxy is a clear error.
//! The registry is `wharf registry serve --engine-store` on this machine's first non-loopback
//! address (loopback is never proxied, like Go's and docker's clients).

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::registry::{free_port, public_ip, Serve};
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// tinyproxy in the foreground on 127.0.0.1:`port`, logging every request to `log`.
fn tinyproxy(dir: &Path, port: u16, log: &Path) -> KillOnDrop {
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nLogFile \"{}\"\nLogLevel Info\nMaxClients 20\n",
            log.display()
        ),
    )
    .unwrap();
    let child = Command::new("tinyproxy")
        .args(["-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let k = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tinyproxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    k
}

/// `wharf registry serve --engine-store` for `w`'s images on `addr`.
fn serve(w: &Wharf, addr: &str) -> Serve {
    Serve::start(w.command(&["registry", "serve", "--engine-store", "--addr", addr]))
}

#[test]
fn pull_through_http_proxy_no_proxy_and_dead_proxy() {
    if !Path::new("/usr/bin/tinyproxy").exists() {
        eprintln!("SKIP: tinyproxy not installed");
        return;
    }
    let Some(ip) = public_ip() else {
        eprintln!("SKIP: no non-loopback IPv4 address");
        return;
    };
    let src = Wharf::new().with_busybox();
    let addr = format!("{ip}:{}", free_port(&ip));
    let _reg = serve(&src, &addr);
    let pport = free_port("127.0.0.1");
    let log = src.dir.path().join("proxy.log");
    let _proxy = tinyproxy(src.dir.path(), pport, &log);
    let daemon = src.dir.path().join("daemon.json");
    std::fs::write(
        &daemon,
        serde_json::json!({ "insecure-registries": [addr] }).to_string(),
    )
    .unwrap();
    let image = format!("{addr}/busybox:latest");
    let pull = |w: &Wharf, proxy: &str, no_proxy: &str| {
        w.command(&["pull", "-q", &image])
            .env("WHARF_CONFIG", &daemon)
            .env("HTTP_PROXY", proxy)
            .env("HTTPS_PROXY", proxy)
            .env("NO_PROXY", no_proxy)
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    };
    let proxied = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&addr) || l.contains(&ip))
            .count()
    };

    // through the proxy
    let w = Wharf::new();
    let o = pull(&w, &format!("http://127.0.0.1:{pport}"), "");
    assert!(o.status.success(), "pull via proxy: {}", stderr(&o));
    let id = w.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    let src_id = src.ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    assert_eq!(id, src_id);
    let seen = proxied(&log);
    assert!(seen > 0, "the proxy saw no request for {addr}");

    // NO_PROXY: straight to the registry, the proxy sees nothing new
    let w2 = Wharf::new();
    let o = pull(&w2, &format!("http://127.0.0.1:{pport}"), &ip);
    assert!(o.status.success(), "pull with NO_PROXY: {}", stderr(&o));
    assert_eq!(proxied(&log), seen, "NO_PROXY was not honoured");

    // a dead proxy: one clear line, non-zero exit, nothing pulled
    let dead = free_port("127.0.0.1");
    let w3 = Wharf::new();
    let o = pull(&w3, &format!("http://127.0.0.1:{dead}"), "");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(w3.ok(&["images", "-q"]).trim().is_empty());
}
