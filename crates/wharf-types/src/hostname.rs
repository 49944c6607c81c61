//! Container host names (`--hostname`), validated as docker does (RFC 1123): dot-separated
//! labels of ASCII letters, digits and '-', each 1-63 bytes, not starting or ending with '-',
//! at most 64 bytes in all (the kernel's `HOST_NAME_MAX`). The name is written into the
//! container's /etc/hostname and /etc/hosts, so anything else (a newline above all) would
//! inject lines there.

/// The kernel's `HOST_NAME_MAX`.
pub const MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hostname format: {0:?} (RFC 1123: dot-separated labels of letters, digits and '-', at most 64 bytes)")]
pub struct HostnameError(pub String);

impl crate::error::HasKind for HostnameError {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// Checks a host name; the empty string is not one.
pub fn validate(name: &str) -> Result<(), HostnameError> {
    if name.len() <= MAX_LEN && name.split('.').all(valid_label) {
        Ok(())
    } else {
        Err(HostnameError(name.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc1123() {
        for ok in [
            "a",
            "web-1",
            "db.example.com",
            "0abc",
            "A1",
            &"x".repeat(63),
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a\n127.0.0.1 evil",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a_b",
            "a/b",
            &"x".repeat(64),
            &format!("{}.{}", "a".repeat(40), "b".repeat(30)),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert!(validate("h\n")
            .unwrap_err()
            .to_string()
            .starts_with("invalid hostname format: \"h\\n\""));
    }
}
