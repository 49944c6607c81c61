//! The query string: `application/x-www-form-urlencoded` pairs, docker's booleans
//! (`1`/`true`/`True`), numbers and the JSON `filters` parameter.

use crate::error::ApiError;
use std::collections::BTreeMap;

/// The longest query string read (a `filters` JSON included).
const MAX_QUERY: usize = 64 * 1024;

#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding (`+` is a space); an invalid escape is kept as it is.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Query, ApiError> {
        let q = q.unwrap_or("");
        if q.len() > MAX_QUERY {
            return Err(ApiError::Query {
                name: "(query string)",
                value: format!("{} bytes", q.len()),
            });
        }
        Ok(Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        ))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key (`names=a&names=b`), in order.
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// docker's boolean: present and not `0`/`false`/empty.
    pub fn bool(&self, k: &str) -> bool {
        matches!(self.get(k), Some(v) if !matches!(v, "" | "0" | "false" | "False" | "FALSE"))
    }

    /// An integer; absent or empty is `None`.
    pub fn int(&self, k: &'static str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ApiError::Query {
                name: k,
                value: v.to_string(),
            }),
        }
    }

    /// docker's `filters`: `{"key":["v1","v2"]}` or the old `{"key":{"v1":true}}`, as
    /// `key=value` strings (the CLI's `--filter` form).
    pub fn filters(&self) -> Result<Vec<String>, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(Vec::new());
        };
        let bad = || ApiError::Query {
            name: "filters",
            value: raw.to_string(),
        };
        let v: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(raw).map_err(|_| bad())?;
        let mut out = Vec::new();
        for (k, vals) in v {
            match vals {
                serde_json::Value::Array(a) => {
                    for x in a {
                        out.push(format!("{k}={}", x.as_str().ok_or_else(bad)?));
                    }
                }
                serde_json::Value::Object(m) => {
                    for (x, on) in m {
                        if on.as_bool() == Some(true) {
                            out.push(format!("{k}={x}"));
                        }
                    }
                }
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_queries() {
        let q = Query::parse(Some(
            "all=1&name=a%2Fb+c&x=%zz&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D",
        ))
        .unwrap();
        assert!(q.bool("all") && !q.bool("none"));
        assert_eq!(q.get("name"), Some("a/b c"));
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(q.filters().unwrap(), vec!["status=exited".to_string()]);
        let old =
            Query::parse(Some("filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D")).unwrap();
        assert_eq!(old.filters().unwrap(), vec!["label=a=b".to_string()]);
        assert!(Query::parse(Some("filters=nope"))
            .unwrap()
            .filters()
            .is_err());
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("a%4"), "a%4");
    }
}
