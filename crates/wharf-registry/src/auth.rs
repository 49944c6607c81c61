//! Basic authentication against an htpasswd file with bcrypt entries (`$2y$`, `$2b$`, `$2a$`).
//! Successful checks are cached by a sha256 of the credentials so bcrypt's cost is paid once
//! per client, not per request. It must not log or store passwords in clear.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    #[error("read htpasswd {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("htpasswd {path} line {line}: expected user:$2y$… (bcrypt)")]
    BadLine { path: PathBuf, line: usize },
    #[error("invalid htpasswd user name {0:?}")]
    BadUser(String),
    #[error("bcrypt: {0}")]
    Hash(String),
}

impl wharf_types::error::HasKind for HtpasswdError {
    fn kind(&self) -> wharf_types::ErrorKind {
        match self {
            HtpasswdError::Read { .. } => wharf_types::ErrorKind::NotFound,
            HtpasswdError::BadLine { .. } | HtpasswdError::BadUser(_) => {
                wharf_types::ErrorKind::InvalidArgument
            }
            HtpasswdError::Hash(_) => wharf_types::ErrorKind::Internal,
        }
    }
}

/// One htpasswd line (`user:$2y$…`) for `password`, hashed with bcrypt at `cost` (4..=31).
pub fn htpasswd_line(user: &str, password: &str, cost: u32) -> Result<String, HtpasswdError> {
    if user.is_empty() || user.contains(':') || user.contains('\n') {
        return Err(HtpasswdError::BadUser(user.to_string()));
    }
    let h = bcrypt::hash(password, cost).map_err(|e| HtpasswdError::Hash(e.to_string()))?;
    Ok(format!("{user}:{}", h.replacen("$2b$", "$2y$", 1)))
}

pub struct Htpasswd {
    users: HashMap<String, String>,
    ok_cache: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut users = HashMap::new();
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            match l.split_once(':') {
                Some((u, h))
                    if !u.is_empty()
                        && (h.starts_with("$2y$")
                            || h.starts_with("$2b$")
                            || h.starts_with("$2a$")) =>
                {
                    users.insert(u.to_string(), h.to_string());
                }
                _ => {
                    return Err(HtpasswdError::BadLine {
                        path: path.to_path_buf(),
                        line: i + 1,
                    })
                }
            }
        }
        Ok(Htpasswd {
            users,
            ok_cache: Mutex::new(HashSet::new()),
        })
    }

    /// Checks an `Authorization` header value. Returns the user name when it is valid.
    pub fn check(&self, authorization: Option<&str>) -> Option<String> {
        let v = authorization?.trim();
        let (scheme, b64) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (user, pass) = s.split_once(':')?;
        let hash = self.users.get(user)?;
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0u8])
            .chain_update(pass.as_bytes())
            .chain_update([0u8])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        let mut cache = self.ok_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.contains(&key) {
            return Some(user.to_string());
        }
        drop(cache);
        if bcrypt::verify(pass, hash).unwrap_or(false) {
            cache = self.ok_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(key);
            Some(user.to_string())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_bcrypt() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("htpasswd");
        let line = htpasswd_line("alice", "s3cret", 4).unwrap();
        assert!(line.starts_with("alice:$2y$04$"), "{line}");
        std::fs::write(&p, format!("# c\n{line}\n")).unwrap();
        let a = Htpasswd::load(&p).unwrap();
        let enc = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(
            a.check(Some(&enc("alice:s3cret"))).as_deref(),
            Some("alice")
        );
        assert_eq!(
            a.check(Some(&enc("alice:s3cret"))).as_deref(),
            Some("alice")
        );
        assert_eq!(a.check(Some(&enc("alice:wrong"))), None);
        assert_eq!(a.check(Some(&enc("bob:s3cret"))), None);
        assert_eq!(a.check(Some("Bearer x")), None);
        assert_eq!(a.check(None), None);
        std::fs::write(&p, "alice:plaintext\n").unwrap();
        assert!(matches!(
            Htpasswd::load(&p),
            Err(HtpasswdError::BadLine { line: 1, .. })
        ));
    }
}
