//! `ADD <url>`: each `http(s)://` source is fetched with the registry client's HTTP stack
//! (`wharf_registry::client::download`: its TLS roots and certs.d, the proxy environment,
//! the NSS-free resolver), at most [`MAX_URL`] bytes within [`URL_DEADLINE`], into a temp
//! directory that becomes the COPY's root. As docker: the file is named after the URL's
//! last path segment when the destination is a directory, has mode 0600 (unless
//! `--chmod`), its mtime from `Last-Modified`, and is never extracted; `--checksum=sha256:…`
//! is verified before anything else. Git sources (`git@…`, `git://`, `….git`) are refused.
//!
//! The URL is fetched on every build (as BuildKit checks it); the step's cache key is the
//! content, so an unchanged file still reuses the step.

use super::context::Root;
use super::{BuildError, BuildRequest, StageState};
use crate::Engine;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;
use wharf_build::dockerfile::{Add, Instruction};

/// Largest file an `ADD <url>` fetches.
pub(super) const MAX_URL: u64 = 2 << 30;
/// Time one URL may take.
pub(super) const URL_DEADLINE: Duration = Duration::from_secs(600);

/// Whether an ADD source is remote (a URL or a git reference).
pub(super) fn is_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@")
}

fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || s.split(['?', '#'])
            .next()
            .is_some_and(|p| p.ends_with(".git"))
}

/// The file name docker gives a URL's content: its path's last segment.
fn file_name(url: &str) -> String {
    let path = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let name = path
        .split_once('/')
        .map(|(_, p)| p.rsplit('/').next().unwrap_or_default())
        .unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        "__unnamed__".to_string()
    } else {
        name.to_string()
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds.
fn http_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

impl Engine {
    /// `ADD` whose sources are URLs.
    pub(super) fn add_urls(
        &self,
        req: &BuildRequest,
        st: &mut StageState,
        add: &Add,
        ins: &Instruction,
        cache_from: &[super::sources::CacheImage],
    ) -> Result<bool, BuildError> {
        let line = ins.start_line;
        let spec = &add.spec;
        if let Some(s) = spec.sources.iter().find(|s| is_git(s)) {
            return Err(BuildError::Unsupported {
                line,
                what: format!("ADD of a git repository ({s})"),
            });
        }
        if let Some(s) = spec.sources.iter().find(|s| !is_remote(s)) {
            return Err(BuildError::Unsupported {
                line,
                what: format!("ADD of URLs together with local sources ({s})"),
            });
        }
        if add.checksum.is_some() && spec.sources.len() != 1 {
            return Err(BuildError::Invalid {
                line,
                what: "ADD --checksum (one URL source only)",
                value: add.checksum.clone().unwrap_or_default(),
            });
        }
        let expected = match &add.checksum {
            None => None,
            Some(c) => Some(
                c.strip_prefix("sha256:")
                    .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or(BuildError::Invalid {
                        line,
                        what: "ADD --checksum (sha256:<64 hex digits>)",
                        value: c.clone(),
                    })?
                    .to_ascii_lowercase(),
            ),
        };
        let tmp = self.scratch_dir("url")?;
        let mut names = Vec::new();
        for url in &spec.sources {
            let name = file_name(url);
            if names.contains(&name) {
                return Err(BuildError::Invalid {
                    line,
                    what: "ADD sources (two URLs with the same file name)",
                    value: name,
                });
            }
            let path = tmp.0.join(&name);
            let mut file =
                std::fs::File::create(&path).map_err(|e| BuildError::io("create", &path, e))?;
            let mut hasher = HashWriter {
                inner: &mut file,
                h: Sha256::new(),
            };
            let got = wharf_registry::client::download(
                &self.daemon.registry,
                url,
                MAX_URL,
                URL_DEADLINE,
                &mut hasher,
            )
            .map_err(|source| BuildError::Fetch {
                line,
                url: url.clone(),
                source,
            })?;
            let actual = format!("{:x}", hasher.h.finalize());
            if let Some(want) = &expected {
                if *want != actual {
                    return Err(BuildError::ChecksumMismatch {
                        line,
                        url: url.clone(),
                        expected: format!("sha256:{want}"),
                        actual: format!("sha256:{actual}"),
                    });
                }
            }
            file.flush()
                .map_err(|e| BuildError::io("write", &path, e))?;
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| BuildError::io("chmod", &path, e))?;
            if let Some(t) = got.last_modified.as_deref().and_then(http_date) {
                let when =
                    std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
                let _ = file.set_modified(when);
            }
            names.push(name);
        }
        let dir = std::fs::File::open(&tmp.0).map_err(|e| BuildError::io("open", &tmp.0, e))?;
        let root = Root {
            fd: dir.as_fd(),
            name: "downloaded files".to_string(),
            ignore: None,
        };
        let mut spec = spec.clone();
        spec.sources = names;
        spec.exclude.clear();
        self.copy_step(
            req,
            st,
            &root,
            &spec,
            super::CopyKind::AddUrl,
            ins,
            cache_from,
        )
    }
}

/// Hashes what it writes.
struct HashWriter<'a> {
    inner: &'a mut std::fs::File,
    h: Sha256,
}

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("https://h:8080/"), "__unnamed__");
        assert_eq!(file_name("https://h"), "__unnamed__");
        assert_eq!(file_name("https://h/x/.."), "__unnamed__");
        assert!(is_git("https://github.com/a/b.git") && is_git("git@github.com:a/b"));
        assert!(!is_git("https://h/file.tar"));
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(http_date("yesterday"), None);
    }
}
