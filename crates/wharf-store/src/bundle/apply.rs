//! `bundle verify` and `bundle apply`. Verify, before anything is imported: finds the index
//! among (or next to) the given files, checks its signature against the caller's policy,
//! matches every given file to a part by name (a file that is no part → refused), checks every
//! part's presence, size and sha256 (naming the missing or corrupt part), that every image
//! signature it carries is by the key it names over its image's manifest, and that every
//! layer the bundle does not carry is in this store. Apply streams the parts in index order
//! (re-hashing each, so a part changed since verify fails the load before its commit) through
//! the archive loader with "missing layer blobs may come from the store", then stores the
//! images' signatures.
//!
//! Owns: part matching and the verification order. Must not: import before verification, or
//! build a path from a name inside the index (part names are only compared with given names).

use super::{keys, read_format_json, BundleError, BundleIndex, Progress, BUNDLE_FORMAT};
use crate::archive::{LoadOptions, LoadedImage};
use crate::Store;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use wharf_types::Digest;

/// Whose signatures are accepted.
#[derive(Debug, Clone, Default)]
pub struct VerifyPolicy {
    /// Accepted keys (from `--key` or the host's trusted keys), with where they came from.
    pub keys: Vec<(PathBuf, VerifyingKey)>,
    /// Refuse unsigned bundles even when `keys` is empty (then every bundle is refused).
    pub require_signature: bool,
}

/// A verified bundle, ready to apply.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub index: BundleIndex,
    pub index_path: PathBuf,
    /// Key file whose signature verified, if any was checked.
    pub signed_by: Option<PathBuf>,
    /// A signature file exists (checked only if `signed_by` is set).
    pub signature_present: bool,
    /// Part files in concatenation order.
    pub parts: Vec<PathBuf>,
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `release-7.003` → `release-7`; `release-7` → `release-7`.
fn stem_of(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => name,
    }
}

fn valid_part_name(n: &str) -> bool {
    !n.is_empty() && n != "." && n != ".." && !n.contains('/') && !n.contains('\0')
}

impl Store {
    /// Checks a bundle completely without importing anything.
    pub fn bundle_verify(
        &self,
        given: &[PathBuf],
        policy: &VerifyPolicy,
        progress: Progress<'_>,
    ) -> Result<VerifyReport, BundleError> {
        let mut index_path: Option<PathBuf> = None;
        let mut sig_path: Option<PathBuf> = None;
        let mut parts_given = Vec::new();
        for p in given {
            let n = file_name(p);
            if n.ends_with(".index.json") {
                match &index_path {
                    Some(q) if q != p => return Err(BundleError::TwoIndexes(q.clone(), p.clone())),
                    _ => index_path = Some(p.clone()),
                }
            } else if n.ends_with(".index.sig") {
                sig_path = Some(p.clone());
            } else {
                parts_given.push(p.clone());
            }
        }
        let index_path = match index_path {
            Some(p) => p,
            None => parts_given
                .iter()
                .map(|p| p.with_file_name(format!("{}.index.json", stem_of(&file_name(p)))))
                .find(|p| p.is_file())
                .ok_or(BundleError::NoIndex)?,
        };
        let (index, raw): (BundleIndex, Vec<u8>) =
            read_format_json(&index_path, "bundle index", BUNDLE_FORMAT)?;
        let bundle = format!("{} ({})", file_name(&index_path), index.bundle_id);
        let sig_path = sig_path.unwrap_or_else(|| {
            let n = file_name(&index_path);
            let stem = n.strip_suffix(".index.json").unwrap_or(&n);
            index_path.with_file_name(format!("{stem}.index.sig"))
        });

        // 1. signature
        let signature_present = sig_path.is_file();
        let mut signed_by = None;
        if policy.require_signature && policy.keys.is_empty() {
            return Err(BundleError::NoKey);
        }
        if !policy.keys.is_empty() {
            let sig = match crate::util::read_capped(&sig_path, 4096)? {
                Some(s) => String::from_utf8_lossy(&s).into_owned(),
                None => {
                    return Err(BundleError::Unsigned {
                        bundle,
                        path: sig_path,
                    })
                }
            };
            signed_by = policy
                .keys
                .iter()
                .find(|(_, k)| keys::verify(k, &raw, &sig))
                .map(|(p, _)| p.clone());
            if signed_by.is_none() {
                let keys = policy
                    .keys
                    .iter()
                    .map(|(p, k)| format!("{} ({})", p.display(), keys::fingerprint(k)))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(BundleError::BadSignature {
                    bundle,
                    path: sig_path,
                    keys,
                });
            }
        }

        // 2. parts: every given file is a part, every part is given (or next to the index
        // when no part was given at all), sizes, then hashes.
        let wanted: BTreeMap<&str, usize> = index
            .payload
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        if index
            .payload
            .parts
            .iter()
            .any(|p| !valid_part_name(&p.name))
            || wanted.len() != index.payload.parts.len()
        {
            return Err(BundleError::Inconsistent {
                image: "-".to_string(),
                problem: "has an invalid or duplicate part name".to_string(),
            });
        }
        let mut found: Vec<Option<PathBuf>> = vec![None; index.payload.parts.len()];
        if parts_given.is_empty() {
            for (i, p) in index.payload.parts.iter().enumerate() {
                let cand = index_path.with_file_name(&p.name);
                if cand.is_file() {
                    found[i] = Some(cand);
                }
            }
        }
        for p in &parts_given {
            match wanted.get(file_name(p).as_str()) {
                Some(&i) => found[i] = Some(p.clone()),
                None => {
                    return Err(BundleError::ForeignPart {
                        bundle,
                        path: p.clone(),
                    })
                }
            }
        }
        let mut parts = Vec::new();
        for (p, f) in index.payload.parts.iter().zip(&found) {
            let Some(path) = f else {
                return Err(BundleError::PartMissing {
                    bundle,
                    name: p.name.clone(),
                });
            };
            let len = std::fs::metadata(path)
                .map_err(BundleError::io("reading", path))?
                .len();
            if len != p.size {
                let how = if len < p.size {
                    "truncated"
                } else {
                    "too long"
                };
                return Err(BundleError::PartCorrupt {
                    name: p.name.clone(),
                    path: path.clone(),
                    reason: format!("{how}: {len} bytes, expected {}", p.size),
                });
            }
            parts.push(path.clone());
        }
        let mut total = Sha256::new();
        let mut done = 0u64;
        let mut buf = vec![0u8; 256 << 10];
        for (p, path) in index.payload.parts.iter().zip(&parts) {
            let mut f = File::open(path).map_err(BundleError::io("opening", path))?;
            let mut h = Sha256::new();
            loop {
                let n = f.read(&mut buf).map_err(BundleError::io("reading", path))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                total.update(&buf[..n]);
                done += n as u64;
                progress("verifying", done, index.payload.size);
            }
            let got = Digest::from_hasher(h);
            if got != p.sha256 {
                return Err(BundleError::PartCorrupt {
                    name: p.name.clone(),
                    path: path.clone(),
                    reason: format!("sha256 is {got}, expected {}", p.sha256),
                });
            }
        }
        if Digest::from_hasher(total) != index.payload.sha256 || done != index.payload.size {
            return Err(BundleError::Inconsistent {
                image: "-".to_string(),
                problem: "does not match the index's payload size/sha256".to_string(),
            });
        }

        // 3. the image signatures it carries: each over its image's manifest and by the key
        // it names (whether that key is trusted is the target's policy, at run time).
        for img in &index.images {
            for sig in &img.signatures {
                if let Err(e) = sig.check_self(&img.manifest) {
                    return Err(BundleError::Inconsistent {
                        image: img
                            .tags
                            .first()
                            .cloned()
                            .unwrap_or_else(|| img.id.to_string()),
                        problem: format!(
                            "carries a signature by key {} that does not count: {e}",
                            sig.key_id
                        ),
                    });
                }
            }
        }

        // 4. layers the bundle relies on the target for.
        for img in &index.images {
            for l in img.layers.iter().filter(|l| !l.carried) {
                let ok = self
                    .open_layer(&l.digest)
                    .map(|(_, len)| len == l.size)
                    .unwrap_or(false);
                if !ok {
                    return Err(BundleError::LayerAbsent {
                        layer: l.digest.clone(),
                        image: img
                            .tags
                            .first()
                            .cloned()
                            .unwrap_or_else(|| img.id.to_string()),
                    });
                }
            }
        }
        Ok(VerifyReport {
            index,
            index_path,
            signed_by,
            signature_present,
            parts,
        })
    }

    /// Imports a verified bundle: atomic per `load` (nothing visible before every image of
    /// the payload verified), idempotent, and safe to re-run after an interruption.
    pub fn bundle_apply(
        &self,
        v: &VerifyReport,
        progress: Progress<'_>,
    ) -> Result<Vec<LoadedImage>, BundleError> {
        let mut r = PartsReader {
            parts: v
                .index
                .payload
                .parts
                .iter()
                .zip(&v.parts)
                .map(|(p, path)| (p.name.clone(), path.clone(), p.sha256.clone()))
                .collect(),
            next: 0,
            cur: None,
            failed: None,
            done: 0,
            total: v.index.payload.size,
            progress,
        };
        let res = self.load_inner(&mut r, &LoadOptions::default(), true);
        if let Some(e) = r.failed.take() {
            return Err(e);
        }
        let loaded = res?;
        for img in &v.index.images {
            if !loaded.iter().any(|l| l.id == img.id) {
                return Err(BundleError::Inconsistent {
                    image: img.id.to_string(),
                    problem: "does not contain it".to_string(),
                });
            }
        }
        // the images arrive signed (checked in verify, again by `add_signature`)
        for img in &v.index.images {
            for sig in &img.signatures {
                self.add_signature(sig)?;
            }
        }
        Ok(loaded)
    }
}

/// The parts concatenated, each re-hashed and checked at its end.
struct PartsReader<'a> {
    parts: Vec<(String, PathBuf, Digest)>,
    next: usize,
    cur: Option<(File, Sha256)>,
    failed: Option<BundleError>,
    done: u64,
    total: u64,
    progress: Progress<'a>,
}

impl PartsReader<'_> {
    fn fail(&mut self, e: BundleError) -> io::Error {
        let msg = e.to_string();
        self.failed = Some(e);
        io::Error::other(msg)
    }
}

impl Read for PartsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.cur.is_none() {
                let Some((_, path, _)) = self.parts.get(self.next) else {
                    return Ok(0);
                };
                let path = path.clone();
                match File::open(&path) {
                    Ok(f) => self.cur = Some((f, Sha256::new())),
                    Err(e) => return Err(self.fail(BundleError::io("opening", path)(e))),
                }
            }
            let Some((f, h)) = self.cur.as_mut() else {
                return Ok(0);
            };
            let n = f.read(buf)?;
            if n > 0 {
                h.update(&buf[..n]);
                self.done += n as u64;
                (self.progress)("importing", self.done, self.total);
                return Ok(n);
            }
            let Some((_, h)) = self.cur.take() else {
                return Ok(0);
            };
            let got = Digest::from_hasher(h);
            let (name, path, want) = self.parts[self.next].clone();
            self.next += 1;
            if got != want {
                return Err(self.fail(BundleError::PartCorrupt {
                    name,
                    path,
                    reason: format!("changed since it was verified (sha256 {got})"),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(stem_of("release-7.003"), "release-7");
        assert_eq!(stem_of("release-7"), "release-7");
        assert_eq!(stem_of("v1.2.tar"), "v1.2.tar");
        assert!(!valid_part_name("../x"));
        assert!(valid_part_name("a.000"));
    }
}
