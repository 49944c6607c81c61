//! `ContainerId`: 64 lowercase hex digits, shown shortened to 12 like docker.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid container id {0:?}: expected 64 lowercase hex digits")]
pub struct InvalidId(pub String);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// Builds an id from 32 random bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> ContainerId {
        ContainerId(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits: the default hostname and what `ps` shows.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ContainerId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ContainerId(s.to_string()))
        } else {
            Err(InvalidId(s.to_string()))
        }
    }
}

impl Serialize for ContainerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContainerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Docker's rule for object names (containers, volumes): `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, at
/// most `max` bytes. Such a name is always safe as a single path component.
pub fn validate_name(name: &str, max: usize) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A container name (docker's rule, at most 128 bytes).
pub fn validate_container_name(name: &str) -> bool {
    validate_name(name, 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let id = ContainerId::from_bytes([0xab; 32]);
        assert_eq!(id.short(), "abababababab");
        assert_eq!(id.as_str().parse::<ContainerId>().unwrap(), id);
        assert!("xyz".parse::<ContainerId>().is_err());
        assert!("../etc".parse::<ContainerId>().is_err());
    }

    #[test]
    fn names() {
        assert!(validate_container_name("web"));
        assert!(validate_container_name("my_app-1.2"));
        assert!(!validate_container_name("a"));
        assert!(!validate_container_name("-web"));
        assert!(!validate_container_name("we/b"));
        assert!(!validate_container_name("../x"));
        assert!(!validate_container_name(""));
    }
}
