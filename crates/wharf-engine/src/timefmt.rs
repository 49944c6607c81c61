//! Time as docker prints it: RFC 3339 timestamps and "3 minutes ago" durations
//! (go-units HumanDuration), plus docker's decimal size units (go-units HumanSize).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Docker's fixed-width nanosecond RFC 3339 (`events`' timestamps).
pub use wharf_logs::format_rfc3339_nano_fixed;

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| crate::state::ZERO_TIME.to_string())
}

/// Seconds since the given RFC 3339 time (0 if unparsable or in the future).
pub fn seconds_since(ts: &str) -> u64 {
    match OffsetDateTime::parse(ts, &Rfc3339) {
        Ok(t) => {
            // docker's CLI gets whole seconds from the API (`Created`) and subtracts them from
            // the precise now: the same here, so local and remote mode print the same age
            let t = t.replace_nanosecond(0).unwrap_or(t);
            let d = OffsetDateTime::now_utc() - t;
            d.whole_seconds().max(0) as u64
        }
        Err(_) => 0,
    }
}

/// Unix seconds of an RFC 3339 time (0 if unparsable): the API's `Created` numbers.
pub fn unix_seconds(ts: &str) -> i64 {
    OffsetDateTime::parse(ts, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

/// Unix nanoseconds of an RFC 3339 time (0 if unparsable): ordering by creation time
/// (the strings' fractions vary in length, so they do not sort as text).
pub fn unix_nanos(ts: &str) -> i128 {
    OffsetDateTime::parse(ts, &Rfc3339)
        .map(|t| t.unix_timestamp_nanos())
        .unwrap_or(0)
}

/// go-units HumanDuration.
pub fn human_duration(secs: u64) -> String {
    let hours = secs / 3600;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if secs / 60 == 1 {
        "About a minute".into()
    } else if secs / 60 < 60 {
        format!("{} minutes", secs / 60)
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits.
pub fn human_size(size: u64) -> String {
    human_size_precision(size, 3)
}

/// go-units HumanSize (4 significant digits): what docker prints for `system df` and
/// "Total reclaimed space".
pub fn human_size4(size: u64) -> String {
    human_size_precision(size, 4)
}

/// go-units BytesSize: binary units (KiB, MiB…), 4 significant digits — docker's `info`
/// "Total Memory".
pub fn bytes_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1024.0 && i < UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", format_g(s, 4), UNITS[i])
}

fn human_size_precision(size: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(s, precision), UNITS[i])
}

/// `%.<precision>g` for values in [0, 10000).
fn format_g(v: f64, precision: usize) -> String {
    let digits_before = if v >= 1000.0 {
        4
    } else if v >= 100.0 {
        3
    } else if v >= 10.0 {
        2
    } else {
        1
    };
    let decimals = precision.saturating_sub(digits_before);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        // go-units BytesSize, as docker's info "Total Memory"
        assert_eq!(bytes_size(25_275_826_176), "23.54GiB");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(1023 * 1024), "1023KiB");
        assert_eq!(bytes_size(4_108_062_720), "3.826GiB");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size4(4_261_000), "4.261MB");
        assert_eq!(human_size4(0), "0B");
        assert_eq!(human_size4(1234), "1.234kB");
        assert_eq!(human_size4(12), "12B");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(180), "3 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_982_256), "1.98MB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(123_000), "123kB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }

    #[test]
    fn since() {
        assert!(seconds_since(&now_rfc3339()) < 5);
        assert_eq!(seconds_since("garbage"), 0);
    }
}
