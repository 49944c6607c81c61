//! API version negotiation: the newest version served is what the docker CLI 28 sends
//! (1.50), the oldest 1.24 (docker's own minimum). A path may carry a version
//! (`/v1.43/containers/json`) or none (the newest); one above the newest or below the
//! oldest is refused with docker's message.

use crate::error::ApiError;

/// The newest API version served (docker 28.x).
pub const API_VERSION: &str = "1.50";
/// The oldest (docker's `MinAPIVersion`).
pub const MIN_API_VERSION: &str = "1.24";

/// A `major.minor` version, compared numerically (`1.9 < 1.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let (a, b) = s.split_once('.')?;
        let num = |x: &str| {
            (!x.is_empty() && x.len() <= 6 && x.bytes().all(|c| c.is_ascii_digit()))
                .then(|| x.parse::<u32>().ok())
                .flatten()
        };
        Some(Version(num(a)?, num(b)?))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Splits a request path into its version (the newest when absent) and the rest:
/// `/v1.43/containers/json` → (1.43, `/containers/json`). A version outside the served
/// range is docker's 400.
pub fn split(path: &str) -> Result<(Version, &str), ApiError> {
    let newest = Version::parse(API_VERSION).unwrap_or(Version(1, 50));
    let oldest = Version::parse(MIN_API_VERSION).unwrap_or(Version(1, 24));
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((newest, path));
    };
    let (v, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(version) = Version::parse(v) else {
        // not a version (`/volumes`): an unversioned path
        return Ok((newest, path));
    };
    if version > newest {
        return Err(ApiError::VersionTooNew {
            version: v.to_string(),
            max: API_VERSION,
        });
    }
    if version < oldest {
        return Err(ApiError::VersionTooOld {
            version: v.to_string(),
            min: MIN_API_VERSION,
        });
    }
    Ok((version, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_paths() {
        assert_eq!(split("/_ping").ok(), Some((Version(1, 50), "/_ping")));
        assert_eq!(
            split("/v1.43/containers/json").ok(),
            Some((Version(1, 43), "/containers/json"))
        );
        assert_eq!(split("/volumes").ok(), Some((Version(1, 50), "/volumes")));
        assert!(Version(1, 9) < Version(1, 10));
        let e = split("/v1.99/info").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("client version 1.99 is too new. Maximum supported API version is 1.50")
        );
        let e = split("/v1.12/info").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("client version 1.12 is too old")));
        assert_eq!(Version::parse("1.x"), None);
        assert_eq!(Version::parse("99999999999.1"), None);
    }
}
