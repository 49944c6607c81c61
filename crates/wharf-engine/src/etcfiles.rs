//! The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf, written into the
//! container's directory and bind-mounted by the runtime (like docker). With host networking
//! the host's files are copied; otherwise a private hosts file and the host's resolvers minus
//! loopback ones (which would not answer inside a separate network namespace).

use std::path::Path;
use wharf_types::container::NetworkMode;

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Docker's fallback resolvers when the host has only loopback ones.
const FALLBACK_NAMESERVERS: &[&str] = &["8.8.8.8", "8.8.4.4"];

pub fn hosts_file(network: &NetworkMode, hostname: &str, host_hosts: Option<&str>) -> String {
    match network {
        NetworkMode::Host => host_hosts.unwrap_or(DEFAULT_HOSTS).to_string(),
        NetworkMode::None => {
            let _ = hostname;
            DEFAULT_HOSTS.to_string()
        }
    }
}

pub fn resolv_conf(network: &NetworkMode, host_resolv: &str) -> String {
    if *network == NetworkMode::Host {
        return host_resolv.to_string();
    }
    let mut out = String::new();
    let mut have_ns = false;
    for line in host_resolv.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("nameserver") {
            let addr = rest.trim();
            if addr.starts_with("127.") || addr == "::1" || addr.is_empty() {
                continue;
            }
            have_ns = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !have_ns {
        for ns in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    }
    out
}

/// Writes the three files into `dir` (the container's directory).
pub fn write_all(dir: &Path, network: &NetworkMode, hostname: &str) -> std::io::Result<()> {
    let host_hosts = std::fs::read_to_string("/etc/hosts").ok();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(
        dir.join("hosts"),
        hosts_file(network, hostname, host_hosts.as_deref()),
    )?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(network, &host_resolv))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_drops_loopback() {
        let r = resolv_conf(
            &NetworkMode::None,
            "search corp\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n",
        );
        assert!(r.contains("nameserver 10.0.0.2"));
        assert!(!r.contains("127.0.0.53"));
        assert!(r.contains("search corp"));
        let r = resolv_conf(&NetworkMode::None, "nameserver 127.0.0.1\n");
        assert!(r.contains("nameserver 8.8.8.8"));
        let r = resolv_conf(&NetworkMode::Host, "nameserver 127.0.0.1\n");
        assert_eq!(r, "nameserver 127.0.0.1\n");
    }

    #[test]
    fn hosts_has_localhost() {
        assert!(hosts_file(&NetworkMode::None, "abc", None).starts_with("127.0.0.1\tlocalhost"));
        assert_eq!(
            hosts_file(&NetworkMode::Host, "abc", Some("1.2.3.4 x\n")),
            "1.2.3.4 x\n"
        );
    }
}
