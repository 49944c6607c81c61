//! Registry names that only DNS knows. The binary is static, so it must not use glibc's NSS
//! (`getaddrinfo` would load the host's `libnss_*.so`, built for another glibc): wharf pulls
//! from `reg.wharf.test`, a name served by a real DNS server (Debian's dnsmasq), in a private
//! mount namespace whose `/etc/resolv.conf` names that server and whose
//! `/etc/nsswitch.conf` says `hosts: files` — so glibc could not have resolved it.

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::registry::Serve;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn pull_by_a_name_only_dns_knows_without_nss() {
    let Some(dnsmasq) = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIP: dnsmasq is not installed (apt-get install dnsmasq-base)");
        return;
    };
    let src = Wharf::new().with_busybox();
    let d = src.dir.path();
    let reg = {
        let mut cmd = Command::new(Wharf::bin());
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(d.join("registry"));
        Serve::start(cmd)
    };
    let port = reg.addr.rsplit_once(':').unwrap().1.to_string();
    src.ok(&["tag", "busybox", &format!("{}/bb:1", reg.addr)]);
    src.ok(&["push", &format!("{}/bb:1", reg.addr)]);

    // a DNS server on its own loopback address, port 53 (resolv.conf has no port)
    let ns = format!("127.53.{}.{}", std::process::id() % 250 + 1, port.len());
    let _dns = KillOnDrop(
        Command::new(dnsmasq)
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--port=53",
                "--user=root",
                "--pid-file",
                "--local=/wharf.test/",
                "--address=/reg.wharf.test/127.0.0.1",
            ])
            .arg(format!("--listen-address={ns}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..200 {
        if std::net::TcpStream::connect((ns.as_str(), 53)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::write(d.join("resolv.conf"), format!("nameserver {ns}\n")).unwrap();
    std::fs::write(d.join("nsswitch.conf"), "hosts: files\n").unwrap();
    std::fs::write(
        d.join("daemon.json"),
        format!(r#"{{"insecure-registries":["reg.wharf.test:{port}"]}}"#),
    )
    .unwrap();
    let name = format!("reg.wharf.test:{port}/bb:1");
    let w = Wharf::new();
    let in_ns = |args: &str| {
        let script = format!(
            "mount --bind {d}/resolv.conf /etc/resolv.conf && \
             mount --bind {d}/nsswitch.conf /etc/nsswitch.conf && \
             {bin} {args}",
            d = d.display(),
            bin = Wharf::bin(),
        );
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("WHARF_ROOT", w.root())
            .env("WHARF_RUNROOT", w.run_root())
            .env("WHARF_CONFIG", d.join("daemon.json"))
            .output()
            .unwrap()
    };
    // the check can fail: glibc in the same namespace does not know the name
    let getent = in_ns("--version >/dev/null; getent hosts reg.wharf.test");
    assert!(
        !getent.status.success(),
        "glibc resolved it: {}",
        stdout(&getent)
    );
    let o = in_ns(&format!("pull {name}"));
    assert!(o.status.success(), "pull: {} {}", stdout(&o), stderr(&o));
    assert_eq!(
        w.ok(&["image", "inspect", "-f", "{{.Id}}", &name]).trim(),
        src.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"])
            .trim()
    );
    // a name DNS does not have: one clear line naming it
    let o = in_ns(&format!("pull nope.wharf.test:{port}/bb:1"));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("nope.wharf.test"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
