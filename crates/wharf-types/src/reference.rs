//! `ImageRef`: a parsed, normalised image reference (`[domain/]path[:tag][@digest]`), following
//! docker's reference grammar and its "familiar" short form (`busybox` ⇔
//! `docker.io/library/busybox:latest`).

use crate::digest::Digest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefError {
    #[error("invalid reference format: {0:?}")]
    Invalid(String),
    #[error("invalid reference format: repository name must be lowercase: {0:?}")]
    Uppercase(String),
    #[error("invalid reference format: tag {tag:?} in {input:?}")]
    BadTag { input: String, tag: String },
    #[error("invalid reference format: digest in {0:?}")]
    BadDigest(String),
}

/// A normalised image reference. `domain` and `path` are always set (defaults filled in);
/// a reference always has a tag or a digest (tag defaults to `latest`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok || sep.is_empty() {
            return false;
        }
    }
    true
}

/// A repository path (`library/busybox`, without the domain): `/`-separated components of
/// docker's grammar, `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`. The registry checks names
/// with it too.
pub fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(valid_path_component)
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl ImageRef {
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Repository path without the domain (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Fully qualified repository name, `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Repository as docker shows it (`busybox`, `registry.local:5000/app`).
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// Same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, RefError> {
        if !valid_tag(tag) {
            return Err(RefError::BadTag {
                input: self.to_string(),
                tag: tag.to_string(),
            });
        }
        Ok(ImageRef {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// `repo:tag` in familiar form, the key the store indexes tags by (`busybox:latest`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// Parses without filling in a default tag (for `rmi name` which must match a tag anyway,
    /// the default is still filled; this exists for digest-only references).
    pub fn parse(input: &str) -> Result<ImageRef, RefError> {
        if input.is_empty() || input.len() > 4096 {
            return Err(RefError::Invalid(input.to_string()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|_| RefError::BadDigest(input.to_string()))?,
                ),
            ),
            None => (input, None),
        };
        // tag: after the last ':' that comes after the last '/'
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(RefError::BadTag {
                        input: input.to_string(),
                        tag: t.to_string(),
                    });
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(RefError::Invalid(input.to_string()));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if !valid_domain(&domain) {
            return Err(RefError::Invalid(input.to_string()));
        }
        if path.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(RefError::Uppercase(input.to_string()));
        }
        if !valid_path(&path) {
            return Err(RefError::Invalid(input.to_string()));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some(DEFAULT_TAG.to_string())
        } else {
            tag
        };
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }
}

impl FromStr for ImageRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, RefError> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    /// Fully qualified form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let r: ImageRef = "busybox".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.familiar_repository(), "busybox");
        let r: ImageRef = "registry.local:5000/team/app:1.4".parse().unwrap();
        assert_eq!(r.domain(), "registry.local:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.tag(), Some("1.4"));
        assert_eq!(r.familiar(), "registry.local:5000/team/app:1.4");
        let r: ImageRef = "localhost/app".parse().unwrap();
        assert_eq!(r.domain(), "localhost");
        let r: ImageRef = "user/app:v1".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/user/app:v1");
        assert_eq!(r.familiar(), "user/app:v1");
    }

    #[test]
    fn digests() {
        let d = Digest::of(b"a");
        let r: ImageRef = format!("app@{d}").parse().unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(&d));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "-a",
            "a-",
            "app@sha256:12",
            ":tag",
            "a b",
            "../x",
            "x/../y",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} accepted");
        }
    }
}
