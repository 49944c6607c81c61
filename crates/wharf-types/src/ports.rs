//! Published and exposed ports: docker's `-p [ip:][hostPort:]containerPort[/proto]` grammar
//! (ranges, IPv6 in brackets, `tcp|udp|sctp`) with docker's error wording, and `EXPOSE`-style
//! `port[/proto]` keys. Pure: which host port a random one becomes is the engine's decision.

use crate::error::{ErrorKind, HasKind};
use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("no port specified: {0}<empty>")]
    Empty(String),
    #[error("invalid IP address: {0}")]
    Ip(String),
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    Ranges { container: String, host: String },
    #[error("invalid proto: {0}")]
    Proto(String),
    #[error("invalid port range {0}: more than 65535 ports")]
    TooMany(String),
}

impl HasKind for PortError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container port and its protocol: docker's `80/tcp` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

impl PortKey {
    /// `80`, `80/tcp`, `53/udp` (an image's `ExposedPorts` key, `--expose`). A range
    /// (`--expose 8000-8010`) is [`expose_range`].
    pub fn parse(s: &str) -> Result<PortKey, PortError> {
        let (proto, port) = split_proto(s);
        let proto = Proto::parse(&proto).ok_or_else(|| PortError::Proto(proto.clone()))?;
        let port = parse_port(&port)
            .filter(|p| *p != 0)
            .ok_or_else(|| PortError::ContainerPort(port.clone()))?;
        Ok(PortKey { port, proto })
    }
}

/// `--expose 8000-8010/udp`: every port of the range.
pub fn expose_range(s: &str) -> Result<Vec<PortKey>, PortError> {
    let (proto, ports) = split_proto(s);
    let proto = Proto::parse(&proto).ok_or_else(|| PortError::Proto(proto.clone()))?;
    let (a, b) = parse_range(&ports)
        .filter(|(a, _)| *a != 0)
        .ok_or_else(|| PortError::ContainerPort(ports.clone()))?;
    Ok((a..=b).map(|port| PortKey { port, proto }).collect())
}

/// One published port: container port ← host address and port (a range to pick from when
/// the user gave one host range for one container port; `None` = any free port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub container: PortKey,
    /// `None`: every address of the host (docker's `0.0.0.0` and `::`).
    pub host_ip: Option<IpAddr>,
    /// Inclusive range; `None` = allocate from the configured range.
    pub host_ports: Option<(u16, u16)>,
}

/// docker's `-p`/`--publish` value, expanded to one mapping per container port.
pub fn parse_publish(raw: &str) -> Result<Vec<PortMapping>, PortError> {
    let (ip, host, container) = split_parts(raw);
    let (proto, container) = split_proto(&container);
    let ip = if ip.is_empty() {
        None
    } else {
        let bare = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(&ip);
        Some(
            bare.parse::<IpAddr>()
                .map_err(|_| PortError::Ip(ip.clone()))?,
        )
    };
    if container.is_empty() {
        return Err(PortError::Empty(raw.to_string()));
    }
    let (cs, ce) = parse_range(&container)
        .filter(|(a, _)| *a != 0)
        .ok_or_else(|| PortError::ContainerPort(container.clone()))?;
    let hr = if host.is_empty() {
        None
    } else {
        Some(parse_range(&host).ok_or_else(|| PortError::HostPort(host.clone()))?)
    };
    if let Some((hs, he)) = hr {
        if (ce - cs) != (he - hs) && ce != cs {
            return Err(PortError::Ranges { container, host });
        }
    }
    let proto = Proto::parse(&proto).ok_or_else(|| PortError::Proto(proto.clone()))?;
    // docker's `-p 0:80` is "any port", as is an omitted host port
    let hr = hr.filter(|r| *r != (0, 0));
    let mut out = Vec::with_capacity(usize::from(ce - cs) + 1);
    for (i, port) in (cs..=ce).enumerate() {
        let host_ports = match hr {
            None => None,
            Some((hs, he)) if ce == cs => Some((hs, he)),
            Some((hs, _)) => {
                let p = hs
                    .checked_add(i as u16)
                    .ok_or_else(|| PortError::TooMany(raw.to_string()))?;
                Some((p, p))
            }
        };
        out.push(PortMapping {
            container: PortKey { port, proto },
            host_ip: ip,
            host_ports,
        });
    }
    Ok(out)
}

impl PortMapping {
    /// docker's recorded `PortBinding` (`HostIp` "" for every address, `HostPort` "" for
    /// any, `8000-8010` for a range).
    pub fn binding(&self) -> crate::container::PortBinding {
        crate::container::PortBinding {
            host_ip: self.host_ip.map(|i| i.to_string()).unwrap_or_default(),
            host_port: match self.host_ports {
                None => String::new(),
                Some((a, b)) if a == b => a.to_string(),
                Some((a, b)) => format!("{a}-{b}"),
            },
        }
    }

    /// A recorded binding back as a mapping (what a start allocates from); `None` when the
    /// record holds something `-p` could not have produced.
    pub fn from_binding(
        container: PortKey,
        b: &crate::container::PortBinding,
    ) -> Option<PortMapping> {
        let host_ip = if b.host_ip.is_empty() {
            None
        } else {
            let bare = b
                .host_ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(&b.host_ip);
            Some(bare.parse::<IpAddr>().ok()?)
        };
        let host_ports = if b.host_port.is_empty() {
            None
        } else {
            Some(parse_range(&b.host_port)?).filter(|r| *r != (0, 0))
        };
        Some(PortMapping {
            container,
            host_ip,
            host_ports,
        })
    }
}

/// docker's splitParts: `c`, `h:c`, `ip:h:c`, and for more colons (IPv6) everything before
/// the last two is the address.
fn split_parts(raw: &str) -> (String, String, String) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.len() {
        1 => (String::new(), String::new(), parts[0].to_string()),
        2 => (String::new(), parts[0].to_string(), parts[1].to_string()),
        n => (
            parts[..n - 2].join(":"),
            parts[n - 2].to_string(),
            parts[n - 1].to_string(),
        ),
    }
}

/// docker's SplitProtoPort: `80` → tcp; `80/` → tcp; `80/udp` → udp.
fn split_proto(raw: &str) -> (String, String) {
    let mut it = raw.splitn(2, '/');
    let port = it.next().unwrap_or("").to_string();
    match it.next() {
        None | Some("") => ("tcp".to_string(), port),
        Some(p) => (p.to_string(), port),
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        None => parse_port(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &str) -> PortMapping {
        let v = parse_publish(raw).expect(raw);
        assert_eq!(v.len(), 1, "{raw}");
        v.into_iter().next().expect("one")
    }

    #[test]
    fn bindings_round_trip() {
        for raw in [
            "80",
            "8080:80",
            "127.0.0.1::80/udp",
            "8000-8010:80",
            "[::1]:53:53/udp",
        ] {
            for m in parse_publish(raw).expect(raw) {
                let b = m.binding();
                assert_eq!(PortMapping::from_binding(m.container, &b), Some(m), "{raw}");
            }
        }
        let b = one("8000-8010:80").binding();
        assert_eq!(
            (b.host_ip.as_str(), b.host_port.as_str()),
            ("", "8000-8010")
        );
        let bad = crate::container::PortBinding {
            host_ip: "nope".into(),
            host_port: "1".into(),
        };
        assert_eq!(PortMapping::from_binding(one("80").container, &bad), None);
    }

    #[test]
    fn docker_forms() {
        let m = one("80");
        assert_eq!((m.container.port, m.container.proto), (80, Proto::Tcp));
        assert_eq!((m.host_ip, m.host_ports), (None, None));
        let m = one("8080:80");
        assert_eq!(m.host_ports, Some((8080, 8080)));
        let m = one("127.0.0.1:8080:80/udp");
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(m.container.proto, Proto::Udp);
        let m = one("127.0.0.1::80");
        assert_eq!(m.host_ports, None);
        let m = one("[::1]:8080:80");
        assert_eq!(m.host_ip, Some("::1".parse().expect("ip")));
        let m = one("::1:8080:80/sctp");
        assert_eq!(m.host_ip, Some("::1".parse().expect("ip")));
        assert_eq!(m.container.proto, Proto::Sctp);
        let m = one("8000-8010:80");
        assert_eq!(m.host_ports, Some((8000, 8010)));
        let m = one("0:80");
        assert_eq!(m.host_ports, None);
        let v = parse_publish("8000-8002:80-82/udp").expect("range");
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].container.port, 82);
        assert_eq!(v[2].host_ports, Some((8002, 8002)));
        assert_eq!(parse_publish("80-82").expect("range").len(), 3);
        assert_eq!(one("80/TCP").container.proto, Proto::Tcp);
    }

    #[test]
    fn docker_errors() {
        let e = |raw: &str| parse_publish(raw).expect_err(raw).to_string();
        assert_eq!(e("abc"), "invalid containerPort: abc");
        assert_eq!(e("0"), "invalid containerPort: 0");
        assert_eq!(e("70000"), "invalid containerPort: 70000");
        assert_eq!(e("x:80"), "invalid hostPort: x");
        assert_eq!(e("1.2.3:80:80"), "invalid IP address: 1.2.3");
        assert_eq!(e("80/icmp"), "invalid proto: icmp");
        assert_eq!(e("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(
            e("8000-8001:80-82"),
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"
        );
        assert_eq!(e("90-80"), "invalid containerPort: 90-80");
        assert_eq!(e("-80"), "invalid containerPort: -80");
        assert_eq!(e("+80"), "invalid containerPort: +80");
    }

    #[test]
    fn exposed_keys() {
        assert_eq!(
            PortKey::parse("53/udp").expect("key"),
            PortKey {
                port: 53,
                proto: Proto::Udp
            }
        );
        assert_eq!(PortKey::parse("80").expect("key").to_string(), "80/tcp");
        assert!(PortKey::parse("80/x").is_err());
        assert_eq!(expose_range("8000-8002").expect("range").len(), 3);
        assert!(expose_range("0-3").is_err());
    }
}
