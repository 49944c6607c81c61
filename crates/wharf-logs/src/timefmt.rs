//! Time formatting and parsing as docker does it for logs: RFC 3339 with nanoseconds
//! (trimmed in json-file records, fixed 9 digits for `logs -t`), syslog stamps, and
//! `--since`/`--until` values (RFC 3339 and its shortened forms, Unix timestamps, Go durations).
//! Times without a zone are taken as UTC (wharf does not read the host's zone database).

use crate::LogError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn utc(t: SystemTime) -> OffsetDateTime {
    let d = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    OffsetDateTime::from_unix_timestamp_nanos(d).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn ymdhms(t: &OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Go's `RFC3339Nano` (trailing zeros of the fraction trimmed): the `time` field of json-file.
pub(crate) fn format_rfc3339_nano(t: SystemTime) -> String {
    let d = utc(t);
    let mut s = ymdhms(&d);
    let ns = d.nanosecond();
    if ns != 0 {
        let frac = format!("{ns:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// docker's `RFC3339NanoFixed` (`2006-01-02T15:04:05.000000000Z07:00`): `logs -t` prefixes.
pub fn format_rfc3339_nano_fixed(t: SystemTime) -> String {
    let d = utc(t);
    format!("{}.{:09}Z", ymdhms(&d), d.nanosecond())
}

/// RFC 3339 with `digits` fraction digits (0 = seconds), for syslog rfc5424(micro).
pub(crate) fn format_rfc3339_digits(t: SystemTime, digits: usize) -> String {
    let d = utc(t);
    let mut s = ymdhms(&d);
    if digits > 0 {
        let frac = format!("{:09}", d.nanosecond());
        s.push('.');
        s.push_str(frac.get(..digits).unwrap_or(&frac));
    }
    s.push('Z');
    s
}

/// Go's `time.Stamp` (`Jan _2 15:04:05`), for rfc3164 syslog.
pub(crate) fn format_stamp(t: SystemTime) -> String {
    let d = utc(t);
    let m = MONTHS
        .get(usize::from(u8::from(d.month())).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{m} {:>2} {:02}:{:02}:{:02}",
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// A non-negative Go duration (`42m`, `1h30m`, `1.5s`, `300ms`): `wharf_types::parse`.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let ns = wharf_types::parse::go_duration(s).ok()?;
    u64::try_from(ns).ok().map(Duration::from_nanos)
}

/// Parses `--since`/`--until` like docker's `timetypes.GetTimestamp`: a duration is relative
/// to `now` (whole seconds), anything with '-' is an RFC 3339 date or date-time (shortened
/// forms allowed; no zone = UTC), else a Unix timestamp `seconds[.nanoseconds]`.
pub fn parse_timestamp(value: &str, now: SystemTime) -> Result<SystemTime, LogError> {
    let bad = || LogError::InvalidTime(value.to_string());
    let v = value.trim();
    if v != "0" {
        if let Some(d) = parse_go_duration(v) {
            let t = now.checked_sub(d).unwrap_or(UNIX_EPOCH);
            let secs = t
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Ok(UNIX_EPOCH + Duration::from_secs(secs));
        }
    }
    if v.contains('-') {
        return parse_rfc3339ish(v).ok_or_else(bad);
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn parse_rfc3339ish(v: &str) -> Option<SystemTime> {
    let date = v.get(..10)?;
    let rest = &v[10..];
    let (time_part, zone) = match rest.strip_prefix(['T', 't']) {
        Some(t) => {
            if let Some(t) = t.strip_suffix(['Z', 'z']) {
                (t, "Z".to_string())
            } else if let Some(i) = t.rfind(['+', '-']) {
                (&t[..i], t[i..].to_string())
            } else {
                (t, "Z".to_string())
            }
        }
        None if rest.is_empty() || rest.eq_ignore_ascii_case("z") => ("", "Z".to_string()),
        None => ("", rest.to_string()),
    };
    let time_full = match time_part.matches(':').count() {
        _ if time_part.is_empty() => "00:00:00".to_string(),
        0 => format!("{time_part}:00:00"),
        1 => format!("{time_part}:00"),
        _ => time_part.to_string(),
    };
    let s = format!("{date}T{time_full}{zone}");
    let t = OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()?;
    let ns = t.unix_timestamp_nanos();
    if ns >= 0 {
        Some(UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).ok()?))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_nanos(u64::try_from(-ns).ok()?))
    }
}

/// Parses the `time` field of a json-file record (RFC 3339 with any fraction).
pub(crate) fn parse_record_time(s: &str) -> Option<SystemTime> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let ns = u64::try_from(t.unix_timestamp_nanos()).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(ns))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats() {
        // 2026-11-22T04:05:06Z = 1795320306
        let t = at(1_795_320_306, 123_456_789);
        assert_eq!(format_rfc3339_nano(t), "2026-11-22T04:05:06.123456789Z");
        assert_eq!(
            format_rfc3339_nano(at(1_795_320_306, 120_000_000)),
            "2026-11-22T04:05:06.12Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(1_795_320_306, 0)),
            "2026-11-22T04:05:06Z"
        );
        assert_eq!(
            format_rfc3339_nano_fixed(at(1_795_320_306, 120_000_000)),
            "2026-11-22T04:05:06.120000000Z"
        );
        assert_eq!(format_stamp(at(1_795_320_306, 0)), "Nov 22 04:05:06");
        assert_eq!(
            format_stamp(at(1_795_320_306 - 20 * 86400, 0)),
            "Nov  2 04:05:06"
        );
        assert_eq!(format_rfc3339_digits(t, 6), "2026-11-22T04:05:06.123456Z");
        assert_eq!(format_rfc3339_digits(t, 0), "2026-11-22T04:05:06Z");
        assert_eq!(parse_record_time("2026-11-22T04:05:06.123456789Z"), Some(t));
    }

    #[test]
    fn since_values() {
        let now = at(1_795_320_306, 500);
        assert_eq!(
            parse_timestamp("42m", now).unwrap(),
            at(1_795_320_306 - 42 * 60, 0)
        );
        assert_eq!(
            parse_timestamp("1h30m", now).unwrap(),
            at(1_795_320_306 - 5400, 0)
        );
        assert_eq!(
            parse_timestamp("1795320306", now).unwrap(),
            at(1_795_320_306, 0)
        );
        assert_eq!(
            parse_timestamp("1795320306.5", now).unwrap(),
            at(1_795_320_306, 500_000_000)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T04:05:06Z", now).unwrap(),
            at(1_795_320_306, 0)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T04:05:06.25Z", now).unwrap(),
            at(1_795_320_306, 250_000_000)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T05:05:06+01:00", now).unwrap(),
            at(1_795_320_306, 0)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T04:05:06", now).unwrap(),
            at(1_795_320_306, 0)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T04:05", now).unwrap(),
            at(1_795_320_300, 0)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T04", now).unwrap(),
            at(1_795_320_000, 0)
        );
        assert_eq!(
            parse_timestamp("2026-11-22", now).unwrap(),
            at(1_795_305_600, 0)
        );
        assert!(parse_timestamp("yesterday", now).is_err());
        assert!(parse_timestamp("2026-13-45", now).is_err());
        assert!(parse_timestamp("", now).is_err());
    }
}
