//! `images --filter` / `GET /images/json?filters=`: docker's `dangling` (`true`|`false`),
//! `reference` (a glob over `repo` or `repo:tag`, as `path.Match`: `*` and `?` stop at `/`),
//! `label` (`KEY` or `KEY=VALUE`), `before`/`since` (an image by name or id: images created
//! before/after it). Values of one key are alternatives, every key must hold. Pure but for
//! resolving `before`/`since`, which the caller does ([`ImageFilter::bounds`]).

use crate::refusal::ValidationError as V;
use crate::timefmt::unix_nanos;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pairs: Vec<(String, String)>,
    /// `before`/`since` values → the created time of the image they name.
    resolved: BTreeMap<String, String>,
}

/// What a filter looks at in one `images` row.
pub struct ImageRow<'a> {
    pub repository: &'a str,
    pub tag: &'a str,
    pub dangling: bool,
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub created: &'a str,
}

impl ImageFilter {
    /// Parses `key=value` strings; an unknown key or a bad value is refused with docker's
    /// words.
    pub fn parse(filters: &[String]) -> Result<ImageFilter, V> {
        let mut pairs = Vec::new();
        for f in filters {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| V::FilterFormat { filter: f.clone() })?;
            match k {
                "reference" | "label" | "before" | "since" => {}
                "dangling" => {
                    if !matches!(v, "true" | "false" | "1" | "0") {
                        return Err(V::FilterValue {
                            name: k.into(),
                            value: v.into(),
                        });
                    }
                }
                _ => return Err(V::FilterName { name: k.into() }),
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(ImageFilter {
            pairs,
            resolved: BTreeMap::new(),
        })
    }

    /// The image references `before`/`since` name (the caller resolves each and gives its
    /// created time to [`ImageFilter::resolve`]).
    pub fn bounds(&self) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == "before" || k == "since")
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether a `label` filter needs each image's config.
    pub fn needs_labels(&self) -> bool {
        self.pairs.iter().any(|(k, _)| k == "label")
    }

    pub fn resolve(&mut self, reference: &str, created: String) {
        self.resolved.insert(reference.to_string(), created);
    }

    pub fn matches(&self, row: &ImageRow<'_>) -> bool {
        let one = |k: &str, v: &str| match k {
            "dangling" => row.dangling == matches!(v, "true" | "1"),
            "reference" => {
                if row.repository == "<none>" {
                    return false;
                }
                let subject = if v.contains(':') {
                    format!("{}:{}", row.repository, row.tag)
                } else {
                    row.repository.to_string()
                };
                glob_match(v.as_bytes(), subject.as_bytes())
            }
            "label" => {
                let labels = row.labels;
                match v.split_once('=') {
                    Some((lk, lv)) => labels.and_then(|l| l.get(lk)).is_some_and(|x| x == lv),
                    None => labels.is_some_and(|l| l.contains_key(v)),
                }
            }
            "before" => self
                .resolved
                .get(v)
                .is_some_and(|t| unix_nanos(row.created) < unix_nanos(t)),
            "since" => self
                .resolved
                .get(v)
                .is_some_and(|t| unix_nanos(row.created) > unix_nanos(t)),
            _ => false,
        };
        let mut keys: Vec<&str> = self.pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.iter().all(|k| {
            self.pairs
                .iter()
                .filter(|(pk, _)| pk == k)
                .any(|(_, v)| one(k, v))
        })
    }
}

/// Go's `path.Match` without character classes: `*` is any run of non-`/` bytes, `?` one
/// non-`/` byte, `\x` a literal `x`. Iterative (no recursion depth from a hostile pattern).
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') if name[n] != b'/' => {
                p += 1;
                n += 1;
                continue;
            }
            Some(b'\\') if pattern.get(p + 1) == Some(&name[n]) => {
                p += 2;
                n += 1;
                continue;
            }
            Some(&c) if c != b'?' && c != b'\\' && c == name[n] => {
                p += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        // backtrack: let the last `*` take one more byte (never a `/`)
        match star {
            Some((sp, sn)) if name[sn] != b'/' => {
                star = Some((sp, sn + 1));
                p = sp + 1;
                n = sn + 1;
            }
            _ => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_go_path_match() {
        for (pat, name, want) in [
            ("busy*", "busybox", true),
            ("*box", "busybox", true),
            ("b?sybox", "busybox", true),
            ("busybox", "busybox", true),
            ("busy", "busybox", false),
            ("*", "library/busybox", false),
            ("*/*", "library/busybox", true),
            ("reg:5000/*", "reg:5000/app", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("", "", true),
            ("\\*", "*", true),
        ] {
            assert_eq!(
                glob_match(pat.as_bytes(), name.as_bytes()),
                want,
                "{pat} {name}"
            );
        }
    }

    #[test]
    fn filters_parse_and_match() {
        assert!(matches!(
            ImageFilter::parse(&["bogus=1".into()]),
            Err(V::FilterName { .. })
        ));
        assert!(matches!(
            ImageFilter::parse(&["dangling=maybe".into()]),
            Err(V::FilterValue { .. })
        ));
        assert!(ImageFilter::parse(&["dangling".into()]).is_err());
        let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let row = ImageRow {
            repository: "busybox",
            tag: "latest",
            dangling: false,
            labels: Some(&labels),
            created: "2024-01-02T00:00:00Z",
        };
        let f = |v: &[&str]| {
            ImageFilter::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&["reference=busy*"]).matches(&row));
        assert!(f(&["reference=busybox:lat*"]).matches(&row));
        assert!(!f(&["reference=busybox:1"]).matches(&row));
        assert!(f(&["reference=x", "reference=busybox"]).matches(&row));
        assert!(f(&["dangling=false", "label=a=1"]).matches(&row));
        assert!(!f(&["dangling=true"]).matches(&row));
        assert!(!f(&["label=a=2"]).matches(&row));
        assert!(f(&["label=a"]).matches(&row));
        let mut b = f(&["before=old"]);
        b.resolve("old", "2024-01-03T00:00:00Z".into());
        assert!(b.matches(&row));
        let mut s = f(&["since=old"]);
        s.resolve("old", "2024-01-03T00:00:00Z".into());
        assert!(!s.matches(&row));
    }
}
