//! The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf, written into the
//! container's directory and bind-mounted by the runtime (like docker): at create, and again
//! at each start on a bridge network (the address is known only then). With host networking
//! the host's files are the base; otherwise docker's default hosts file, `--add-host`
//! entries (`host-gateway` as the network's gateway) and the container's own address line;
//! resolv.conf has the host's resolvers minus loopback ones (they would not answer inside a
//! separate network namespace; none left: docker's fallback 8.8.8.8 and 8.8.4.4), `--dns*`
//! overriding, and on a user network the embedded resolver (the network's gateway) with
//! `options ndots:0`. `container:` mode mounts the joined container's files instead.

use std::net::IpAddr;
use std::path::Path;
use wharf_types::container::NetworkMode;

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Docker's fallback resolvers when the host has only loopback ones.
pub const FALLBACK_NAMESERVERS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// Largest host file read (`/etc/hosts`, `/etc/resolv.conf`).
const HOST_FILE_MAX: u64 = 1 << 20;

/// What a container's /etc files say.
#[derive(Debug, Clone, Copy)]
pub struct EtcFiles<'a> {
    pub network: &'a NetworkMode,
    pub hostname: &'a str,
    /// The container's addresses on its bridge networks (its own hosts lines, one each):
    /// every family of every network, in interface order, IPv4 before IPv6 (docker's lines).
    pub addresses: &'a [IpAddr],
    /// `--link` entries on the default bridge, docker's hosts lines without the newline
    /// (`ip\talias hostname name`).
    pub links: &'a [String],
    /// What `--add-host name:host-gateway` resolves to.
    pub host_gateway: Option<IpAddr>,
    /// The embedded DNS resolver of a user network (its gateway).
    pub resolver: Option<IpAddr>,
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_options: &'a [String],
    pub extra_hosts: &'a [String],
}

/// `--add-host` entries as hosts lines (`ip\tname`, docker's format).
fn extra_lines(f: &EtcFiles<'_>) -> String {
    let mut out = String::new();
    for h in f.extra_hosts {
        let Ok(e) = wharf_types::netopts::parse_extra_host(h) else {
            continue;
        };
        if let Some(ip) = e.ip.or(f.host_gateway) {
            out.push_str(&format!("{ip}\t{}\n", e.name));
        }
    }
    out
}

pub fn hosts_file(f: &EtcFiles<'_>, host_hosts: Option<&str>) -> String {
    let mut out = match f.network {
        NetworkMode::Host => {
            let mut h = host_hosts.unwrap_or(DEFAULT_HOSTS).to_string();
            if !h.is_empty() && !h.ends_with('\n') {
                h.push('\n');
            }
            h
        }
        _ => DEFAULT_HOSTS.to_string(),
    };
    out.push_str(&extra_lines(f));
    for l in f.links {
        out.push_str(l);
        out.push('\n');
    }
    for ip in f.addresses {
        out.push_str(&format!("{ip}\t{}\n", f.hostname));
    }
    out
}

fn is_loopback(addr: &str) -> bool {
    addr.parse::<IpAddr>().is_ok_and(|i| i.is_loopback())
}

pub fn resolv_conf(f: &EtcFiles<'_>, host_resolv: &str) -> String {
    let (mut servers, mut search, mut options) = (Vec::new(), Vec::new(), Vec::new());
    for line in host_resolv.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => servers.extend(w.next().map(str::to_string)),
            Some("search") | Some("domain") => search = w.map(str::to_string).collect(),
            Some("options") => options.extend(w.map(str::to_string)),
            _ => {}
        }
    }
    let host = *f.network == NetworkMode::Host;
    if let Some(r) = f.resolver {
        servers = vec![r.to_string()];
    } else if !f.dns.is_empty() {
        servers = f.dns.to_vec();
    } else if !host {
        servers.retain(|s| !is_loopback(s));
        if servers.is_empty() {
            servers = FALLBACK_NAMESERVERS.iter().map(|s| s.to_string()).collect();
        }
    }
    if !f.dns_search.is_empty() {
        search = f.dns_search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !f.dns_options.is_empty() {
        options = f.dns_options.to_vec();
    }
    if f.resolver.is_some() && !options.iter().any(|o| o.starts_with("ndots:")) {
        options.insert(0, "ndots:0".into());
    }
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn read_host_file(path: &str) -> Option<String> {
    let b = wharf_sys::fs::read_small_file(None, Path::new(path), HOST_FILE_MAX).ok()??;
    String::from_utf8(b).ok()
}

/// Writes the three files into `dir` (the container's directory).
pub fn write_all(dir: &Path, f: &EtcFiles<'_>) -> std::io::Result<()> {
    let host_hosts = if *f.network == NetworkMode::Host {
        read_host_file("/etc/hosts")
    } else {
        None
    };
    let host_resolv = read_host_file("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(dir.join("hosts"), hosts_file(f, host_hosts.as_deref()))?;
    std::fs::write(dir.join("hostname"), format!("{}\n", f.hostname))?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(f, &host_resolv))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(network: &'a NetworkMode) -> EtcFiles<'a> {
        EtcFiles {
            network,
            hostname: "abc",
            addresses: &[],
            links: &[],
            host_gateway: None,
            resolver: None,
            dns: &[],
            dns_search: &[],
            dns_options: &[],
            extra_hosts: &[],
        }
    }

    #[test]
    fn resolv_drops_loopback() {
        let none = NetworkMode::None;
        let r = resolv_conf(
            &files(&none),
            "search corp\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n",
        );
        assert_eq!(r, "nameserver 10.0.0.2\nsearch corp\n");
        let r = resolv_conf(&files(&none), "nameserver 127.0.0.1\nnameserver ::1\n");
        assert_eq!(r, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let host = NetworkMode::Host;
        let r = resolv_conf(&files(&host), "nameserver 127.0.0.1\n");
        assert_eq!(r, "nameserver 127.0.0.1\n");
    }

    #[test]
    fn resolv_overrides_and_embedded_dns() {
        let bridge = NetworkMode::Bridge;
        let dns = ["10.0.0.2".to_string()];
        let search = ["corp".to_string()];
        let opts = ["timeout:1".to_string()];
        let f = EtcFiles {
            dns: &dns,
            dns_search: &search,
            dns_options: &opts,
            ..files(&bridge)
        };
        assert_eq!(
            resolv_conf(&f, "nameserver 1.1.1.1\nsearch home\noptions rotate\n"),
            "nameserver 10.0.0.2\nsearch corp\noptions timeout:1\n"
        );
        let user = NetworkMode::User("app".into());
        let f = EtcFiles {
            resolver: "172.18.0.1".parse().ok(),
            ..files(&user)
        };
        assert_eq!(
            resolv_conf(&f, "nameserver 1.1.1.1\nsearch home\n"),
            "nameserver 172.18.0.1\nsearch home\noptions ndots:0\n"
        );
    }

    #[test]
    fn hosts_lines() {
        let none = NetworkMode::None;
        assert!(hosts_file(&files(&none), None).starts_with("127.0.0.1\tlocalhost"));
        let host = NetworkMode::Host;
        assert_eq!(
            hosts_file(&files(&host), Some("1.2.3.4 x\n")),
            "1.2.3.4 x\n"
        );
        let bridge = NetworkMode::Bridge;
        let extra = ["db:10.0.0.9".to_string(), "gw:host-gateway".to_string()];
        let own: Vec<IpAddr> = vec!["172.18.0.2".parse().expect("ip")];
        let links = ["172.18.0.5\tdbx 0123456789ab db".to_string()];
        let f = EtcFiles {
            addresses: &own,
            links: &links,
            host_gateway: "172.18.0.1".parse().ok(),
            extra_hosts: &extra,
            ..files(&bridge)
        };
        let h = hosts_file(&f, None);
        assert!(
            h.ends_with("ff02::2\tip6-allrouters\n10.0.0.9\tdb\n172.18.0.1\tgw\n172.18.0.5\tdbx 0123456789ab db\n172.18.0.2\tabc\n"),
            "{h}"
        );
        // two networks, the second dual-stack: a line per address of each
        let own: Vec<IpAddr> = ["172.18.0.2", "172.19.0.3", "fd00:19::3"]
            .iter()
            .map(|a| a.parse().expect("ip"))
            .collect();
        let f = EtcFiles {
            addresses: &own,
            ..f
        };
        assert!(
            hosts_file(&f, None).ends_with("172.18.0.2\tabc\n172.19.0.3\tabc\nfd00:19::3\tabc\n"),
            "{}",
            hosts_file(&f, None)
        );
    }
}
