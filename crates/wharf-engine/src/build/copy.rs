//! COPY/ADD beyond plain paths: wildcard sources (Go's `filepath.Match`, one component at
//! a time, inside the root, `.dockerignore` applied; no match is an error), heredoc sources
//! (`COPY <<EOF /path`, expanded unless the delimiter was quoted), `--chown` by name
//! (resolved from the image's own `/etc/passwd` and `/etc/group`, read from its topmost
//! layer that has them, bounded, no NSS), and ADD's compressed tars (gzip, zstd; bzip2 and
//! xz refused by name).
//!
//! Must not: list or read outside the root, or read an image file unbounded.

use super::context::{self, Root};
use super::BuildError;
use crate::Engine;
use nix::libc;
use std::io::{BufReader, Read, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use wharf_build::dockerfile::{Command, Instruction};
use wharf_build::dockerignore::Dockerignore;
use wharf_build::glob;
use wharf_types::Digest;

/// `/etc/passwd` and `/etc/group` are read up to this size.
const MAX_ID_FILE: u64 = 4 << 20;
/// Matches a wildcard source may have.
const MAX_MATCHES: usize = 100_000;

/// `COPY --parents`: whether it is set (BuildKit's `./` pivot in a source is refused).
pub(super) fn parents_of(ins: &Instruction, line: usize) -> Result<bool, BuildError> {
    let Command::Copy(c) = &ins.command else {
        return Ok(false);
    };
    if !c.parents {
        return Ok(false);
    }
    if let Some(s) = c.spec.sources.iter().find(|s| s.contains("/./")) {
        return Err(BuildError::Unsupported {
            line,
            what: format!("the ./ pivot of COPY --parents ({s})"),
        });
    }
    Ok(true)
}

/// `--exclude` patterns for the source `rel` (a directory: relative to it; a file:
/// relative to its directory), after the context's `.dockerignore`; None without any.
pub(super) fn exclude_matcher(
    root: &Root,
    rel: &Path,
    patterns: &[String],
) -> Result<Option<Dockerignore>, BuildError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let is_dir = wharf_sys::fs::open_beneath_nofollow(
        root.fd,
        if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        },
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .is_ok();
    let base = if is_dir {
        rel
    } else {
        rel.parent().unwrap_or(Path::new(""))
    };
    let mut all: Vec<String> = root
        .ignore
        .map(|ig| {
            ig.patterns()
                .iter()
                .map(|p| format!("{}{}", if p.is_exclusion() { "!" } else { "" }, p.as_str()))
                .collect()
        })
        .unwrap_or_default();
    for p in patterns {
        let (neg, p) = match p.strip_prefix('!') {
            Some(rest) => ("!", rest),
            None => ("", p.as_str()),
        };
        all.push(format!("{neg}{}", base.join(p).display()));
    }
    Dockerignore::from_patterns(&all)
        .map(Some)
        .map_err(|error| BuildError::Ignore {
            file: "--exclude".to_string(),
            error,
        })
}

/// Whether a file source itself is excluded by its `--exclude` matcher.
pub(super) fn source_excluded(root: &Root, rel: &Path, m: Option<&Dockerignore>) -> bool {
    let Some(m) = m else {
        return false;
    };
    let is_dir = wharf_sys::fs::open_beneath_nofollow(
        root.fd,
        if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        },
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .is_ok();
    !is_dir && m.excluded(&rel.to_string_lossy())
}

/// The sources of a COPY/ADD, each resolved inside `root`: a wildcard source stands for
/// its matches, in name order.
pub(super) fn resolve_sources(
    root: &Root,
    sources: &[String],
    line: usize,
) -> Result<Vec<PathBuf>, BuildError> {
    let mut out = Vec::new();
    for s in sources {
        if !glob::has_meta(s) {
            out.push(context::resolve(root, s)?);
            continue;
        }
        let pattern = context::clean_inside(s).ok_or_else(|| BuildError::ContextEscape {
            path: s.clone(),
            root: root.name.clone(),
        })?;
        let mut cands = vec![PathBuf::new()];
        for comp in pattern.components() {
            let comp = comp.as_os_str().to_string_lossy().to_string();
            let mut next = Vec::new();
            for c in &cands {
                if !glob::has_meta(&comp) {
                    next.push(c.join(&comp));
                    continue;
                }
                for name in list_dir(root, c) {
                    let ok = glob::matches(&comp, &name).map_err(|_| BuildError::Invalid {
                        line,
                        what: "source pattern",
                        value: s.clone(),
                    })?;
                    if ok {
                        next.push(c.join(&name));
                    }
                }
                if next.len() > MAX_MATCHES {
                    return Err(BuildError::TooManyEntries { path: s.clone() });
                }
            }
            cands = next;
        }
        let mut found = Vec::new();
        for c in cands {
            let text = c.to_string_lossy().to_string();
            if root.ignore.is_some_and(|ig| ig.excluded(&text)) {
                continue;
            }
            // a literal component that is not there, a symlink out: resolve decides
            match context::resolve(root, &text) {
                Ok(rel) => found.push(rel),
                Err(BuildError::Io { .. }) => {}
                Err(e @ BuildError::ContextEscape { .. }) => return Err(e),
                Err(_) => {}
            }
        }
        found.retain(|rel| {
            wharf_sys::fs::open_beneath_nofollow(
                root.fd,
                if rel.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    rel
                },
                libc::O_PATH,
            )
            .is_ok()
        });
        if found.is_empty() {
            return Err(BuildError::NoMatch {
                line,
                pattern: s.clone(),
                root: root.name.clone(),
            });
        }
        out.extend(found);
    }
    Ok(out)
}

/// The names in the directory `rel` of `root`, sorted (empty when it is not a directory).
fn list_dir(root: &Root, rel: &Path) -> Vec<String> {
    let p = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let Ok(fd) =
        wharf_sys::fs::open_beneath_nofollow(root.fd, p, libc::O_RDONLY | libc::O_DIRECTORY)
    else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(wharf_sys::fs::fd_path(fd.as_fd())) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .take(MAX_MATCHES + 1)
        .collect();
    names.sort();
    names
}

/// A COPY/ADD's heredoc bodies expanded (unless the delimiter was quoted) with the step's
/// variables, as BuildKit does for file heredocs.
pub(super) fn expand_inline(
    ins: &mut Instruction,
    escape: char,
    vars: &dyn wharf_build::shell::Env,
) -> Result<(), BuildError> {
    let spec = match &mut ins.command {
        Command::Copy(c) => &mut c.spec,
        Command::Add(a) => &mut a.spec,
        _ => return Ok(()),
    };
    let lexer = wharf_build::shell::Lexer::new(escape);
    for h in spec.inline.iter_mut().filter(|h| h.expand) {
        h.content = lexer.process_word(&h.content, vars).map_err(|error| {
            wharf_build::expand::ExpandError {
                line: ins.start_line,
                error,
            }
        })?;
    }
    Ok(())
}

/// A heredoc source as the file `target` (0644 unless `--chmod`, root-owned unless
/// `--chown`).
pub(super) fn write_inline(
    target: &Path,
    content: &str,
    owner: super::context::Owner,
) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(target, content).map_err(|e| BuildError::io("write", target, e))?;
    std::fs::set_permissions(
        target,
        std::fs::Permissions::from_mode(owner.chmod.unwrap_or(0o644)),
    )
    .map_err(|e| BuildError::io("chmod", target, e))?;
    let (uid, gid) = owner.uid_gid.unwrap_or((0, 0));
    std::os::unix::fs::lchown(target, Some(uid), Some(gid))
        .map_err(|e| BuildError::io("chown", target, e))
}

/// Reads `etc/<name>` of the image: its topmost layer that has it, bounded.
fn image_file(engine: &Engine, image: Option<&Digest>, name: &str) -> Option<String> {
    let layers = engine.store.image_layers(image?).ok()?;
    let rel = Path::new("etc").join(name);
    for layer in layers {
        let dir = std::fs::File::open(&layer).ok()?;
        match wharf_sys::fs::open_beneath_nofollow(dir.as_fd(), &rel, libc::O_RDONLY) {
            Ok(fd) => {
                let mut data = Vec::new();
                std::fs::File::from(fd)
                    .take(MAX_ID_FILE)
                    .read_to_end(&mut data)
                    .ok()?;
                return Some(String::from_utf8_lossy(&data).to_string());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// `name:...:id:gid:...` lines: (id, primary gid) of `name`.
fn lookup(file: &str, name: &str) -> Option<(u32, u32)> {
    file.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            let id = f[2].parse().ok()?;
            let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            Some((id, gid))
        } else {
            None
        }
    })
}

impl Engine {
    /// `--chown=user[:group]`: numbers as they are (a lone uid is also the gid), names from
    /// the image's `/etc/passwd` and `/etc/group` (a lone user name takes its primary
    /// group), docker's error when a name is not there.
    pub(super) fn resolve_chown(
        &self,
        image: Option<&Digest>,
        spec: &str,
        line: usize,
    ) -> Result<(u32, u32), BuildError> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let unknown = |file: &'static str, name: &str| BuildError::UnknownId {
            line,
            file,
            name: name.to_string(),
        };
        let (uid, primary) = match user.parse::<u32>() {
            Ok(n) => (n, n),
            Err(_) => {
                let passwd = image_file(self, image, "passwd").unwrap_or_default();
                match lookup(&passwd, user) {
                    Some(ids) => ids,
                    // `root` is 0 even in an image without one (scratch)
                    None if user == "root" => (0, 0),
                    None => return Err(unknown("passwd", user)),
                }
            }
        };
        let gid = match group {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    let groups = image_file(self, image, "group").unwrap_or_default();
                    match lookup(&groups, g) {
                        Some((gid, _)) => gid,
                        None if g == "root" => 0,
                        None => return Err(unknown("group", g)),
                    }
                }
            },
        };
        Ok((uid, gid))
    }
}

/// ADD of a local file: when it is a tar (plain, gzip or zstd), extracts it into
/// `tree/dest_rel` (made as needed) and returns true; false for any other file (copied as
/// it is). bzip2 and xz archives are refused by name.
pub(super) fn add_archive(
    file: &mut std::fs::File,
    tree: &Path,
    dest_rel: &Path,
    src: &Path,
    line: usize,
) -> Result<bool, BuildError> {
    let dir = tree.join(dest_rel);
    let dir = dir.as_path();
    let mut head = [0u8; 6];
    let n = file.read(&mut head).unwrap_or(0);
    let _ = file.rewind();
    let head = &head[..n];
    // a decompression bomb stops at the free space of the staging file system
    // (the casts: fsblkcnt_t and c_ulong are narrower on 32-bit targets)
    #[allow(clippy::unnecessary_cast)]
    let limit = nix::sys::statvfs::statvfs(tree)
        .map(|v| (v.blocks_available() as u64).saturating_mul(v.fragment_size() as u64))
        .unwrap_or(u64::MAX);
    let extract = |r: &mut dyn Read| -> Result<(), BuildError> {
        super::mkdirs(tree, dest_rel)?;
        let r = Capped {
            inner: r,
            left: limit,
        };
        wharf_store::layer::apply_layer(dir, r)
            .map(|_| ())
            .map_err(|e| {
                BuildError::io(
                    "extract",
                    src,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                )
            })
    };
    let decoded_is_tar = |r: &mut dyn Read| {
        let mut h = [0u8; 263];
        r.read_exact(&mut h).is_ok() && &h[257..262] == b"ustar"
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        let tar = decoded_is_tar(&mut flate2::bufread::MultiGzDecoder::new(BufReader::new(
            &*file,
        )));
        file.rewind().map_err(|e| BuildError::io("read", src, e))?;
        if !tar {
            return Ok(false);
        }
        extract(&mut flate2::bufread::MultiGzDecoder::new(BufReader::new(
            &*file,
        )))?;
        return Ok(true);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let zstd = |f: &std::fs::File| {
            ruzstd::decoding::StreamingDecoder::new(BufReader::new(f.try_clone()?))
                .map_err(std::io::Error::other)
        };
        let tar = zstd(file).is_ok_and(|mut d| decoded_is_tar(&mut d));
        file.rewind().map_err(|e| BuildError::io("read", src, e))?;
        if !tar {
            return Ok(false);
        }
        let mut d = zstd(file).map_err(|e| BuildError::io("extract", src, e))?;
        extract(&mut d)?;
        return Ok(true);
    }
    let kind = if head.starts_with(b"BZh") {
        Some("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(BuildError::Unsupported {
            line,
            what: format!(
                "ADD of a {kind}-compressed file ({}): decompress it, or use gzip or zstd",
                src.display()
            ),
        });
    }
    if context::is_tar(file) {
        extract(file)?;
        return Ok(true);
    }
    Ok(false)
}

/// A reader that fails once more than `left` bytes came out of it.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the archive unpacks to more than the free space",
            )
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let f = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\nbad:x:zz\n";
        assert_eq!(lookup(f, "app"), Some((1000, 1001)));
        assert_eq!(lookup(f, "root"), Some((0, 0)));
        assert_eq!(lookup(f, "bad"), None);
        assert_eq!(lookup(f, "nobody"), None);
        assert_eq!(lookup("grp:x:50:\n", "grp"), Some((50, 50)));
    }

    #[test]
    fn capped_reader_fails_past_its_limit() {
        let mut r = Capped {
            inner: &[0u8; 100][..],
            left: 64,
        };
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        let mut r = Capped {
            inner: &[0u8; 10][..],
            left: 64,
        };
        assert_eq!(r.read_to_end(&mut out).unwrap(), 10);
    }
}
