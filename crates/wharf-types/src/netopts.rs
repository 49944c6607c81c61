//! docker's network-related create options as the user types them: `--dns` (an IP address),
//! `--dns-search` (a domain or `.`), `--add-host name:ip` (`ip` may be `host-gateway`),
//! `--mac-address`, `--ip`, with docker's error wording. Pure: whether an address fits a
//! network is the engine's question.

use crate::error::{ErrorKind, HasKind};
use std::net::IpAddr;

/// docker's name for "the host's address as the container's network sees it".
pub const HOST_GATEWAY: &str = "host-gateway";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetOptError {
    #[error("invalid argument {value:?} for \"--dns\" flag: IP address is not correctly formatted: {value}")]
    Dns { value: String },
    #[error("{value} is not a valid domain")]
    DnsSearch { value: String },
    #[error("bad format for add-host: {value:?}")]
    AddHostFormat { value: String },
    #[error("invalid IP address in add-host: {ip:?}")]
    AddHostIp { ip: String },
    #[error("{value} is not a valid mac address")]
    Mac { value: String },
    #[error("invalid argument {value:?} for \"--ip\" flag: invalid string being converted to IP address: {value}")]
    Ip { value: String },
    #[error("invalid argument {value:?} for \"--ip\" flag: not an IPv4 address")]
    IpNotV4 { value: String },
    #[error("invalid argument {value:?} for \"--ip6\" flag: invalid string being converted to IP address: {value}")]
    Ip6 { value: String },
    #[error("invalid argument {value:?} for \"--ip6\" flag: not an IPv6 address")]
    Ip6NotV6 { value: String },
}

impl HasKind for NetOptError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// `--dns ADDRESS`.
pub fn parse_dns(s: &str) -> Result<IpAddr, NetOptError> {
    s.trim()
        .parse()
        .map_err(|_| NetOptError::Dns { value: s.into() })
}

/// `--dns-search DOMAIN` (docker's ValidateDNSSearch: `.` or a domain name of at most 255
/// characters, labels of letters, digits and inner hyphens).
pub fn validate_dns_search(s: &str) -> Result<(), NetOptError> {
    let bad = || NetOptError::DnsSearch { value: s.into() };
    let t = s.trim_end();
    if t == "." {
        return Ok(());
    }
    let t = t.strip_suffix('.').unwrap_or(t);
    if t.is_empty() || t.len() > 255 {
        return Err(bad());
    }
    for label in t.split('.') {
        let b = label.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// One `--add-host` entry: `name:ip` or `name=ip` (`ip` an address or `host-gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub name: String,
    /// `None`: `host-gateway`.
    pub ip: Option<IpAddr>,
}

impl ExtraHost {
    /// docker's recorded form, `name:ip`.
    pub fn to_docker(&self) -> String {
        match self.ip {
            Some(ip) => format!("{}:{ip}", self.name),
            None => format!("{}:{HOST_GATEWAY}", self.name),
        }
    }
}

/// `--add-host name:ip` (docker's ValidateExtraHost; the first `:` or `=` separates, so
/// `h:::1` is an IPv6 address; `[::1]` brackets are accepted).
pub fn parse_extra_host(s: &str) -> Result<ExtraHost, NetOptError> {
    let cut = match (s.find(':'), s.find('=')) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some(at) = cut else {
        return Err(NetOptError::AddHostFormat { value: s.into() });
    };
    let (name, ip) = (&s[..at], &s[at + 1..]);
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NetOptError::AddHostFormat { value: s.into() });
    }
    if ip == HOST_GATEWAY {
        return Ok(ExtraHost {
            name: name.into(),
            ip: None,
        });
    }
    let bare = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    let ip = bare
        .parse()
        .map_err(|_| NetOptError::AddHostIp { ip: ip.into() })?;
    Ok(ExtraHost {
        name: name.into(),
        ip: Some(ip),
    })
}

/// `--mac-address`: six octets separated by `:` or `-`; returned lower case with `:`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], NetOptError> {
    let bad = || NetOptError::Mac { value: s.into() };
    let t = s.trim();
    let parts: Vec<&str> = t.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// docker's form of a MAC address: `02:42:ac:11:00:02`.
pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `--ip ADDRESS` (IPv4; `--ip6` is [`parse_ip6`]).
pub fn parse_ip(s: &str) -> Result<IpAddr, NetOptError> {
    let ip: IpAddr = s
        .trim()
        .parse()
        .map_err(|_| NetOptError::Ip { value: s.into() })?;
    if !ip.is_ipv4() {
        return Err(NetOptError::IpNotV4 { value: s.into() });
    }
    Ok(ip)
}

/// `--ip6 ADDRESS` (an address of a dual-stack network's IPv6 subnet).
pub fn parse_ip6(s: &str) -> Result<IpAddr, NetOptError> {
    let ip: IpAddr = s
        .trim()
        .parse()
        .map_err(|_| NetOptError::Ip6 { value: s.into() })?;
    if !ip.is_ipv6() {
        return Err(NetOptError::Ip6NotV6 { value: s.into() });
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_and_search() {
        assert_eq!(
            parse_dns("10.0.0.2").map(|i| i.to_string()).as_deref(),
            Ok("10.0.0.2")
        );
        assert!(parse_dns("::1").is_ok());
        assert_eq!(
            parse_dns("nope").unwrap_err().to_string(),
            "invalid argument \"nope\" for \"--dns\" flag: IP address is not correctly formatted: nope"
        );
        for ok in [".", "corp", "example.com", "a-b.example.com.", "x1"] {
            assert!(validate_dns_search(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a..b", "a b", &"a".repeat(64), "a_b"] {
            assert!(validate_dns_search(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_dns_search("a_b").unwrap_err().to_string(),
            "a_b is not a valid domain"
        );
    }

    #[test]
    fn extra_hosts() {
        let h = parse_extra_host("db:10.0.0.1").unwrap();
        assert_eq!(
            (h.name.as_str(), h.to_docker().as_str()),
            ("db", "db:10.0.0.1")
        );
        assert_eq!(parse_extra_host("v6:::1").unwrap().to_docker(), "v6:::1");
        assert_eq!(parse_extra_host("v6=[::1]").unwrap().to_docker(), "v6:::1");
        let g = parse_extra_host("gw:host-gateway").unwrap();
        assert_eq!(g.ip, None);
        assert_eq!(g.to_docker(), "gw:host-gateway");
        assert_eq!(
            parse_extra_host("nocolon").unwrap_err().to_string(),
            "bad format for add-host: \"nocolon\""
        );
        assert!(parse_extra_host(":1.2.3.4").is_err());
        assert_eq!(
            parse_extra_host("h:1.2.3").unwrap_err().to_string(),
            "invalid IP address in add-host: \"1.2.3\""
        );
    }

    #[test]
    fn macs_and_ips() {
        assert_eq!(
            parse_mac("02:42:AC:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert_eq!(
            parse_mac("02-42-ac-11-00-02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert_eq!(
            format_mac(&[2, 0x42, 0xac, 0x11, 0, 2]),
            "02:42:ac:11:00:02"
        );
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "zz:42:ac:11:00:02",
            "2:42:ac:11:0:2",
        ] {
            assert_eq!(
                parse_mac(bad).unwrap_err().to_string(),
                format!("{bad} is not a valid mac address")
            );
        }
        assert!(parse_ip("172.18.0.9").is_ok());
        assert!(matches!(parse_ip("x"), Err(NetOptError::Ip { .. })));
        assert!(parse_ip6("fd00::9").is_ok());
        assert!(matches!(parse_ip6("x"), Err(NetOptError::Ip6 { .. })));
        assert!(matches!(
            parse_ip6("10.0.0.1"),
            Err(NetOptError::Ip6NotV6 { .. })
        ));
        assert!(matches!(parse_ip("::1"), Err(NetOptError::IpNotV4 { .. })));
    }
}
