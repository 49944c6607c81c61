//! The one parser for each of docker's small value grammars: sizes (`512m`, `1g`: docker's
//! `RAMInBytes`), Go durations (`1h30m`, `1.5s`), `--cpus`, `--ulimit`, and environment
//! entries (`-e` values and `--env-file` lines).
//!
//! Pure: no I/O, no process environment. A bare `VAR` takes the caller's value through a
//! lookup closure the caller passes; reading an env file is the caller's business. Decisions
//! that depend on the machine (the CPU count, the memory minimum) belong to the engine.

use crate::container::{RlimitResource, Ulimit};
use crate::error::{ErrorKind, HasKind};

/// A value that does not follow its grammar. Messages are docker's where docker has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid size: '{0}'")]
    Size(String),
    #[error("time: invalid duration {0:?}")]
    Duration(String),
    #[error("time: missing unit in duration {0:?}")]
    DurationMissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    DurationUnit { unit: String, input: String },
    #[error(
        "invalid argument {0:?} for \"--cpus\" flag: failed to parse {0} as a rational number"
    )]
    Cpus(String),
    #[error("invalid ulimit argument: {0}")]
    Ulimit(String),
    #[error("invalid ulimit type: {0}")]
    UlimitType(String),
    #[error("invalid ulimit value {value:?} in {input:?}")]
    UlimitValue { value: String, input: String },
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitOrder { soft: u64, hard: u64 },
    /// `=value`, an empty `-e`, or (in an env file) a line with no name.
    #[error("invalid environment variable: {0:?}")]
    EnvNoName(String),
    #[error("variable {0:?} contains whitespaces")]
    EnvWhitespace(String),
    #[error("environment variable {0:?} contains a NUL byte")]
    EnvNul(String),
    /// An env-file error, with its 1-based line number.
    #[error("line {line}: {source}")]
    EnvFileLine {
        line: usize,
        #[source]
        source: Box<ParseError>,
    },
    #[error("env file contains invalid utf8 bytes at line {0}")]
    EnvFileUtf8(usize),
}

impl HasKind for ParseError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Docker's `units.RAMInBytes`: `^(\d+(\.\d+)?) ?([kmgtp])?i?b?$`, case-insensitive, powers of
/// 1024: `512`, `32m`, `32mb`, `1GiB`, `1.5k`, `10 m`. No sign, no exponent; a value beyond
/// `i64::MAX` bytes is refused.
pub fn size(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Size(s.to_string());
    let lower = s.to_ascii_lowercase();
    let int_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    if int_end == 0 {
        return Err(bad());
    }
    let mut num_end = int_end;
    if let Some(frac) = lower[int_end..].strip_prefix('.') {
        let frac_len = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if frac_len == 0 {
            return Err(bad());
        }
        num_end = int_end + 1 + frac_len;
    }
    let (num, rest) = lower.split_at(num_end);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let rest = rest.strip_suffix('b').unwrap_or(rest);
    let rest = rest.strip_suffix('i').unwrap_or(rest);
    let mult: f64 = match rest {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    let bytes = value * mult;
    // i64::MAX as f64 rounds up to 2^63, which itself does not fit: refuse it too
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

const NS_PER_UNIT: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]` then one or more `<decimal><unit>` with
/// units ns, us (µs), ms, s, m, h; `0` alone needs no unit. Integer arithmetic like Go's, so
/// `0.1s` is exactly 100 ms; anything beyond `i64` nanoseconds (~292 years) is refused. The
/// sign is kept: callers decide whether a negative duration means anything.
pub fn go_duration(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Duration(s.to_string());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, tail) = rest.split_at(int_len);
        let (frac, tail) = match tail.strip_prefix('.') {
            Some(t) => t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())),
            None => ("", tail),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let unit_len = tail
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        if unit.is_empty() {
            return Err(ParseError::DurationMissingUnit(s.to_string()));
        }
        let per = NS_PER_UNIT
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| ParseError::DurationUnit {
                unit: unit.to_string(),
                input: s.to_string(),
            })?;
        // the integer part: more than 20 digits overflows any i64 duration
        let whole: u128 = if int.is_empty() {
            0
        } else if int.trim_start_matches('0').len() > 20 {
            return Err(bad());
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut ns = whole.checked_mul(per).ok_or_else(bad)?;
        // the fraction: digits beyond nanosecond precision of an hour cannot matter
        let mut scale: u128 = 1;
        let mut f: u128 = 0;
        for d in frac.bytes().take(24) {
            f = f * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        ns = ns.checked_add(f * per / scale).ok_or_else(bad)?;
        total = total.checked_add(ns).ok_or_else(bad)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(bad());
        }
        rest = tail;
    }
    let total = i128::try_from(total).map_err(|_| bad())?;
    let signed = if neg { -total } else { total };
    i64::try_from(signed).map_err(|_| bad())
}

/// `--cpus 1.5` → nano CPUs (a non-negative decimal; `0` means no limit). The engine checks
/// the range against the machine.
pub fn cpus(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Cpus(s.to_string());
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let v: f64 = s.parse().map_err(|_| bad())?;
    let nanos = (v * 1e9).round();
    if !nanos.is_finite() || nanos >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(nanos as i64)
}

/// `--ulimit nofile=1024[:2048]`; `-1` or `unlimited` is no limit.
pub fn ulimit(s: &str) -> Result<Ulimit, ParseError> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| ParseError::Ulimit(s.to_string()))?;
    let resource =
        RlimitResource::parse(name).ok_or_else(|| ParseError::UlimitType(name.to_string()))?;
    let value = |v: &str| -> Result<u64, ParseError> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse().map_err(|_| ParseError::UlimitValue {
            value: v.to_string(),
            input: s.to_string(),
        })
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (value(a)?, value(b)?),
        None => {
            let v = value(vals)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(ParseError::UlimitOrder { soft, hard });
    }
    Ok(Ulimit {
        resource,
        soft,
        hard,
    })
}

/// One environment entry (`-e` value or env-file line, already trimmed): `KEY=value` taken
/// literally, a bare `KEY` from `lookup` (`None` if unset). Refused everywhere: no name, a
/// name with whitespace, a NUL byte anywhere.
pub fn env_entry(
    entry: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, ParseError> {
    if entry.contains('\0') {
        return Err(ParseError::EnvNul(entry.replace('\0', "\\0")));
    }
    let (key, value) = match entry.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (entry, None),
    };
    if key.is_empty() {
        return Err(ParseError::EnvNoName(entry.to_string()));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(ParseError::EnvWhitespace(key.to_string()));
    }
    Ok(match value {
        Some(_) => Some(entry.to_string()),
        None => lookup(key).map(|v| format!("{key}={v}")),
    })
}

/// An `--env-file`'s content with docker's rules: a UTF-8 BOM skipped, leading whitespace
/// trimmed, blank lines and `#` comments skipped, a bare `KEY` taken from `lookup` (dropped
/// if unset; trailing whitespace trimmed), `KEY=value` kept verbatim; each line checked like
/// [`env_entry`]. Invalid UTF-8 is refused with its line number.
pub fn env_file(
    content: &[u8],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ParseError> {
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let mut out = Vec::new();
    for (n, raw) in content.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(raw).map_err(|_| ParseError::EnvFileUtf8(n + 1))?;
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = if line.contains('=') {
            line
        } else {
            line.trim_end()
        };
        let at = |e| ParseError::EnvFileLine {
            line: n + 1,
            source: Box::new(e),
        };
        if let Some(e) = env_entry(line, lookup).map_err(at)? {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (s, v) in [
            ("0", 0),
            ("100", 100),
            ("32m", 32 << 20),
            ("32mb", 32 << 20),
            ("32MiB", 32 << 20),
            ("1G", 1 << 30),
            ("512kb", 512 << 10),
            ("1.5k", 1536),
            ("10 m", 10 << 20),
            ("8191p", 8191 << 50),
        ] {
            assert_eq!(size(s), Ok(v), "{s}");
        }
        for bad in [
            "",
            "lots",
            "12x",
            "-1",
            "+1",
            "1e400",
            "1e3",
            "NaN",
            "inf",
            "1.",
            ".5",
            "1..5",
            "1.2.3",
            "m",
            " 1",
            "1m ",
            "8192p",
            "99999999999999999999",
            "1\0m",
            "1mbb",
        ] {
            assert_eq!(size(bad), Err(ParseError::Size(bad.into())), "{bad:?}");
        }
        assert_eq!(size("10x").unwrap_err().to_string(), "invalid size: '10x'");
    }

    #[test]
    fn durations() {
        for (s, v) in [
            ("0", 0),
            ("-0", 0),
            ("2s", 2_000_000_000),
            ("1m30s", 90_000_000_000),
            ("500ms", 500_000_000),
            ("1.5s", 1_500_000_000),
            ("0.1s", 100_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("+1h", 3_600_000_000_000),
            ("-1s", -1_000_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("1ns", 1),
            ("2562047h47m16.854775807s", i64::MAX),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("1.0000000000000000000000000001s", 1_000_000_000),
        ] {
            assert_eq!(go_duration(s), Ok(v), "{s}");
        }
        for bad in [
            "",
            "-",
            "s",
            ".s",
            "1..5s",
            "2562047h47m16.854775808s",
            "9999999999999999999999h",
            "1e400s",
            "NaN",
            "inf",
            "1s\0",
        ] {
            assert!(go_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            go_duration("5"),
            Err(ParseError::DurationMissingUnit("5".into()))
        );
        assert_eq!(
            go_duration("10x").unwrap_err().to_string(),
            "time: unknown unit \"x\" in duration \"10x\""
        );
    }

    #[test]
    fn cpu_counts() {
        assert_eq!(cpus("1"), Ok(1_000_000_000));
        assert_eq!(cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(cpus("0.01"), Ok(10_000_000));
        assert_eq!(cpus("0"), Ok(0));
        for bad in [
            "",
            "-1",
            "NaN",
            "inf",
            "1e400",
            "1e3",
            "abc",
            "1.2.3",
            "99999999999",
        ] {
            assert!(cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ulimits() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (1024, 2048));
        assert_eq!(ulimit("core=-1").unwrap().soft, u64::MAX);
        assert_eq!(ulimit("nproc=unlimited:unlimited").unwrap().hard, u64::MAX);
        assert_eq!(
            ulimit("nofile=2048:1024"),
            Err(ParseError::UlimitOrder {
                soft: 2048,
                hard: 1024
            })
        );
        for bad in [
            "bogus=1",
            "nofile",
            "nofile=",
            "nofile=-2",
            "nofile=1:2:3",
            "nofile=99999999999999999999",
            "nofile=1\0",
        ] {
            assert!(ulimit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env() {
        let lookup = |k: &str| (k == "FROM_HOST").then(|| "h".to_string());
        let v = env_file(
            b"\xEF\xBB\xBF# c\n\n  A=1\nB= spaced \nFROM_HOST  \nUNSET\nC=x=y\r\nD=\n",
            &lookup,
        )
        .unwrap();
        assert_eq!(v, vec!["A=1", "B= spaced ", "FROM_HOST=h", "C=x=y", "D="]);
        for bad in [
            &b"BAD KEY=1\n"[..],
            b"=novalue\n",
            b"A=1\nB=\0\n",
            b"A\0B\n",
            b"A=\xff\n",
            b"BAD\tKEY\n",
        ] {
            assert!(env_file(bad, &lookup).is_err(), "{bad:?}");
        }
        assert_eq!(
            env_file(b"A=1\nBAD KEY=1\n", &lookup)
                .unwrap_err()
                .to_string(),
            "line 2: variable \"BAD KEY\" contains whitespaces"
        );
        assert_eq!(env_entry("X", &lookup), Ok(None));
        assert_eq!(
            env_entry("FROM_HOST", &lookup),
            Ok(Some("FROM_HOST=h".into()))
        );
        assert_eq!(env_entry("A=b", &lookup), Ok(Some("A=b".into())));
        assert_eq!(env_entry("A= b c ", &lookup), Ok(Some("A= b c ".into())));
        for bad in ["", "=b", "BAD KEY=1", "A=\0", "A\0"] {
            assert!(env_entry(bad, &lookup).is_err(), "{bad:?}");
        }
    }
}
