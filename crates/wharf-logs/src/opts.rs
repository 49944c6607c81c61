//! Log option validation and parsing shared by the drivers: docker's per-driver option sets,
//! `max-size` units, `tag` templates, syslog address/facility/format. Pure: no I/O.

use crate::{LogContext, LogError};
use wharf_types::container::LogConfig;

const COMMON: &[&str] = &["labels", "labels-regex", "env", "env-regex", "tag"];
const JSON_FILE: &[&str] = &["max-size", "max-file", "compress"];
const SYSLOG: &[&str] = &[
    "syslog-address",
    "syslog-facility",
    "syslog-format",
    "syslog-tls-ca-cert",
    "syslog-tls-cert",
    "syslog-tls-key",
    "syslog-tls-skip-verify",
];
/// `journald-socket` is wharf's own (hidden) option: the journal socket path, for tests.
const JOURNALD: &[&str] = &["journald-socket"];
const SPLUNK: &[&str] = &[
    "splunk-url",
    "splunk-token",
    "splunk-source",
    "splunk-sourcetype",
    "splunk-index",
    "splunk-capath",
    "splunk-caname",
    "splunk-insecureskipverify",
    "splunk-format",
    "splunk-verify-connection",
    "splunk-gzip",
    "splunk-gzip-level",
];

fn invalid(opt: &str, value: &str, reason: &str) -> LogError {
    LogError::InvalidOption {
        opt: opt.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn unsupported(opt: &str, driver: &str, what: &str) -> LogError {
    LogError::OptionUnsupported {
        opt: opt.to_string(),
        driver: driver.to_string(),
        what: what.to_string(),
    }
}

fn parse_bool(opt: &str, v: &str) -> Result<bool, LogError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(opt, v, "expected true or false")),
    }
}

pub(crate) fn validate(cfg: &LogConfig) -> Result<(), LogError> {
    let driver = if cfg.driver.is_empty() {
        "json-file"
    } else {
        cfg.driver.as_str()
    };
    let specific: &[&str] = match driver {
        "json-file" => JSON_FILE,
        "syslog" => SYSLOG,
        "journald" => JOURNALD,
        "splunk" => SPLUNK,
        "none" => &[],
        "local" => return Err(LogError::DriverUnsupported("local".into())),
        other => return Err(LogError::UnknownDriver(other.to_string())),
    };
    for k in cfg.config.keys() {
        let allowed =
            specific.contains(&k.as_str()) || (driver != "none" && COMMON.contains(&k.as_str()));
        if !allowed {
            return Err(LogError::UnknownOption {
                opt: k.clone(),
                driver: driver.to_string(),
            });
        }
    }
    let get = |k: &str| cfg.config.get(k).map(String::as_str);
    if let Some(t) = get("tag") {
        check_tag(t)?;
    }
    for k in ["labels-regex", "env-regex"] {
        if get(k).is_some() {
            return Err(unsupported(k, driver, "regex matching"));
        }
    }
    match driver {
        "json-file" => {
            let size = match get("max-size") {
                Some(v) => parse_size(v)
                    .ok_or_else(|| invalid("max-size", v, "expected a size like 10m"))?,
                None => -1,
            };
            if size == 0 {
                return Err(invalid("max-size", "0", "must be greater than 0"));
            }
            if let Some(v) = get("max-file") {
                let n: i64 = v
                    .parse()
                    .map_err(|_| invalid("max-file", v, "expected a number"))?;
                if n < 1 {
                    return Err(invalid("max-file", v, "max-file cannot be less than 1"));
                }
                if n > 1 && size < 0 {
                    return Err(invalid(
                        "max-file",
                        v,
                        "max-file cannot be set when max-size is not set",
                    ));
                }
            }
            if let Some(v) = get("compress") {
                if parse_bool("compress", v)? {
                    return Err(unsupported("compress", driver, "compressing rotated files"));
                }
            }
        }
        "syslog" => {
            if let Some(a) = get("syslog-address") {
                parse_syslog_address(a)?;
            }
            if let Some(f) = get("syslog-facility") {
                parse_facility(f)?;
            }
            if let Some(f) = get("syslog-format") {
                parse_syslog_format(f)?;
            }
            for k in ["syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key"] {
                if get(k).is_some() {
                    return Err(unsupported(k, driver, "tls"));
                }
            }
            if let Some(v) = get("syslog-tls-skip-verify") {
                parse_bool("syslog-tls-skip-verify", v)?;
            }
        }
        "splunk" => {
            let url = get("splunk-url")
                .ok_or_else(|| invalid("splunk-url", "", "splunk-url is required"))?;
            crate::splunk::parse_url(url)?;
            if get("splunk-token").is_none_or_empty() {
                return Err(invalid("splunk-token", "", "splunk-token is required"));
            }
            if let Some(f) = get("splunk-format") {
                if !matches!(f, "inline" | "json" | "raw") {
                    return Err(invalid("splunk-format", f, "expected inline, json or raw"));
                }
            }
            if let Some(v) = get("splunk-gzip") {
                if parse_bool("splunk-gzip", v)? {
                    return Err(unsupported("splunk-gzip", driver, "gzip compression"));
                }
            }
            for k in ["splunk-insecureskipverify", "splunk-verify-connection"] {
                if let Some(v) = get(k) {
                    parse_bool(k, v)?;
                }
            }
            if let Some(v) = get("splunk-gzip-level") {
                v.parse::<i8>()
                    .map_err(|_| invalid("splunk-gzip-level", v, "expected a number"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

trait NoneOrEmpty {
    fn is_none_or_empty(&self) -> bool;
}

impl NoneOrEmpty for Option<&str> {
    fn is_none_or_empty(&self) -> bool {
        self.is_none_or(str::is_empty)
    }
}

/// Docker's `units.RAMInBytes` (`wharf_types::parse::size`), plus `-1` for unlimited.
/// Returns `None` for garbage.
pub fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "-1" {
        return Some(-1);
    }
    wharf_types::parse::size(s).ok()
}

const TAG_VARS: &[&str] = &[
    "ID",
    "FullID",
    "Name",
    "ImageID",
    "ImageFullID",
    "ImageName",
    "DaemonName",
];

fn check_tag(t: &str) -> Result<(), LogError> {
    render_tag_with(t, &mut |_| Some(String::new())).map(|_| ())
}

fn render_tag_with(
    t: &str,
    var: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, LogError> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| invalid("tag", t, "unterminated {{"))?;
        let inner = after[..end].trim();
        let name = inner
            .strip_prefix('.')
            .filter(|n| TAG_VARS.contains(n))
            .ok_or_else(|| {
                invalid(
                    "tag",
                    t,
                    "supported template fields are {{.ID}} {{.FullID}} {{.Name}} {{.ImageID}} {{.ImageFullID}} {{.ImageName}} {{.DaemonName}}",
                )
            })?;
        out.push_str(&var(name).unwrap_or_default());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `tag` option rendered for this container; docker's default is `{{.ID}}`.
pub(crate) fn render_tag(cfg: &LogConfig, ctx: &LogContext) -> Result<String, LogError> {
    let t = cfg
        .config
        .get("tag")
        .map(String::as_str)
        .unwrap_or("{{.ID}}");
    render_tag_with(t, &mut |name| {
        Some(match name {
            "ID" => crate::short_id(&ctx.container_id).to_string(),
            "FullID" => ctx.container_id.clone(),
            "Name" => ctx.container_name.clone(),
            "ImageID" => crate::short_id(&ctx.image_id).to_string(),
            "ImageFullID" => ctx.image_id.clone(),
            "ImageName" => ctx.image_name.clone(),
            "DaemonName" => "wharf".to_string(),
            _ => return None,
        })
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyslogAddr {
    /// `unix://path`: datagram first, stream if the socket is a stream socket.
    Unix(String),
    Unixgram(String),
    Udp(String),
    Tcp(String),
}

pub(crate) fn parse_syslog_address(a: &str) -> Result<SyslogAddr, LogError> {
    if a.is_empty() {
        return Ok(SyslogAddr::Unix("/dev/log".into()));
    }
    let (scheme, rest) = a.split_once("://").ok_or_else(|| {
        invalid(
            "syslog-address",
            a,
            "expected unix://, unixgram://, udp:// or tcp://",
        )
    })?;
    let hostport = |rest: &str, default_port: u16| -> Result<String, LogError> {
        if rest.is_empty() {
            return Err(invalid("syslog-address", a, "missing host"));
        }
        let hp = if let Some(v6) = rest.strip_prefix('[') {
            if v6.contains("]:") {
                rest.to_string()
            } else {
                format!("{rest}:{default_port}")
            }
        } else {
            match rest.matches(':').count() {
                0 => format!("{rest}:{default_port}"),
                1 => rest.to_string(),
                _ => format!("[{rest}]:{default_port}"),
            }
        };
        let port = hp.rsplit(':').next().unwrap_or("");
        port.parse::<u16>()
            .map_err(|_| invalid("syslog-address", a, "invalid port"))?;
        Ok(hp)
    };
    match scheme {
        "unix" if !rest.is_empty() => Ok(SyslogAddr::Unix(rest.to_string())),
        "unixgram" if !rest.is_empty() => Ok(SyslogAddr::Unixgram(rest.to_string())),
        "udp" => Ok(SyslogAddr::Udp(hostport(rest, 514)?)),
        "tcp" => Ok(SyslogAddr::Tcp(hostport(rest, 514)?)),
        "tcp+tls" => Err(unsupported("syslog-address", "syslog", "tcp+tls")),
        "unix" | "unixgram" => Err(invalid("syslog-address", a, "missing socket path")),
        _ => Err(invalid(
            "syslog-address",
            a,
            "expected unix://, unixgram://, udp:// or tcp://",
        )),
    }
}

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Facility number (docker accepts names and numbers 0..=23); default `daemon`.
pub(crate) fn parse_facility(f: &str) -> Result<u8, LogError> {
    if f.is_empty() {
        return Ok(3);
    }
    if let Ok(n) = f.parse::<u8>() {
        if n <= 23 {
            return Ok(n);
        }
    }
    FACILITIES
        .iter()
        .find(|(n, _)| *n == f)
        .map(|(_, v)| *v)
        .ok_or_else(|| invalid("syslog-facility", f, "invalid syslog facility"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyslogFormat {
    /// docker's "" (its default): `<pri>Mmm dd hh:mm:ss tag[pid]: msg`.
    Unix,
    Rfc3164,
    Rfc5424,
    Rfc5424Micro,
}

pub(crate) fn parse_syslog_format(f: &str) -> Result<SyslogFormat, LogError> {
    Ok(match f {
        "" => SyslogFormat::Unix,
        "rfc3164" => SyslogFormat::Rfc3164,
        "rfc5424" => SyslogFormat::Rfc5424,
        "rfc5424micro" => SyslogFormat::Rfc5424Micro,
        _ => {
            return Err(invalid(
                "syslog-format",
                f,
                "expected rfc3164, rfc5424 or rfc5424micro",
            ))
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cfg(driver: &str, kv: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            driver: driver.into(),
            config: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("10MB"), Some(10 << 20));
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("-1"), Some(-1));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("10x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn validation_messages() {
        let e = validate(&cfg("json-file", &[("foo", "1")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert!(validate(&cfg(
            "json-file",
            &[
                ("max-size", "10m"),
                ("max-file", "3"),
                ("tag", "{{.Name}}"),
                ("labels", "a")
            ]
        ))
        .is_ok());
        assert!(validate(&cfg("json-file", &[("max-size", "abc")])).is_err());
        assert!(validate(&cfg("json-file", &[("max-size", "1m"), ("max-file", "0")])).is_err());
        assert!(validate(&cfg("json-file", &[("max-file", "3")])).is_err());
        assert!(validate(&cfg("json-file", &[("compress", "false")])).is_ok());
        assert!(validate(&cfg("json-file", &[("compress", "true")])).is_err());
        assert!(validate(&cfg("local", &[]))
            .unwrap_err()
            .to_string()
            .contains("local"));
        assert!(matches!(
            validate(&cfg("gelf", &[])),
            Err(LogError::UnknownDriver(_))
        ));
        assert!(validate(&cfg("none", &[("tag", "x")])).is_err());
        assert!(validate(&cfg("syslog", &[("syslog-address", "tcp+tls://h:1")])).is_err());
        assert!(validate(&cfg("syslog", &[("syslog-address", "ftp://h")])).is_err());
        assert!(validate(&cfg("syslog", &[("syslog-facility", "local9")])).is_err());
        assert!(validate(&cfg(
            "syslog",
            &[
                ("syslog-format", "rfc5424micro"),
                ("syslog-facility", "local3"),
                ("syslog-address", "udp://127.0.0.1:514")
            ]
        ))
        .is_ok());
        assert!(validate(&cfg("syslog", &[("tag", "{{.Bogus}}")])).is_err());
        assert!(validate(&cfg("splunk", &[("splunk-url", "http://127.0.0.1:8088")])).is_err());
        assert!(validate(&cfg(
            "splunk",
            &[("splunk-url", "https://h:8088"), ("splunk-token", "t")]
        ))
        .is_err());
        assert!(validate(&cfg(
            "splunk",
            &[("splunk-url", "http://h:8088"), ("splunk-token", "t")]
        ))
        .is_ok());
        assert!(validate(&cfg("journald", &[("journald-socket", "/tmp/x")])).is_ok());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_syslog_address("").unwrap(),
            SyslogAddr::Unix("/dev/log".into())
        );
        assert_eq!(
            parse_syslog_address("udp://1.2.3.4").unwrap(),
            SyslogAddr::Udp("1.2.3.4:514".into())
        );
        assert_eq!(
            parse_syslog_address("tcp://h:601").unwrap(),
            SyslogAddr::Tcp("h:601".into())
        );
        assert_eq!(
            parse_syslog_address("udp://[::1]:9").unwrap(),
            SyslogAddr::Udp("[::1]:9".into())
        );
        assert_eq!(
            parse_syslog_address("unixgram:///run/x").unwrap(),
            SyslogAddr::Unixgram("/run/x".into())
        );
        assert!(parse_syslog_address("udp://h:99999").is_err());
    }

    #[test]
    fn tags() {
        let ctx = LogContext {
            container_id: "0123456789abcdef".repeat(4),
            container_name: "web".into(),
            image_name: "busybox:latest".into(),
            image_id: format!("sha256:{}", "ab".repeat(32)),
            dir: Default::default(),
        };
        assert_eq!(
            render_tag(&cfg("syslog", &[]), &ctx).unwrap(),
            "0123456789ab"
        );
        assert_eq!(
            render_tag(
                &cfg(
                    "syslog",
                    &[("tag", "{{.Name}}/{{ .ImageName }}/{{.ImageID}}")]
                ),
                &ctx
            )
            .unwrap(),
            "web/busybox:latest/abababababab"
        );
        assert_eq!(
            render_tag(&cfg("syslog", &[("tag", "{{.FullID}}")]), &ctx).unwrap(),
            ctx.container_id
        );
    }
}
