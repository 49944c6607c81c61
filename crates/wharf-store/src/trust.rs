//! Image signatures: an ed25519 signature (the keys of `bundle::keys`) over an image's
//! manifest digest and the reference it was signed as, stored one file per key in
//! `meta/signatures/<manifest hex>/<key id>.json` (atomic writes). The signed message is
//! built from the record's fields, one per line, each free of newlines:
//!
//! ```text
//! wharf-image-signature v1
//! manifest sha256:<hex>
//! reference docker.io/library/busybox:latest
//! created 2026-12-06T04:00:00Z
//! ```
//!
//! A record carries its public key so `trust inspect` can say who signed even when the key
//! is not trusted here; whether it *counts* is decided by the caller against its own trusted
//! keys ([`ImageSignature::check`] with a key it trusts, never the embedded one).
//!
//! Owns: the record format, its storage and garbage collection. Must not: decide whether a
//! signature is required or which keys are trusted (the engine's policy).

use crate::bundle::keys;
use crate::error::StoreError;
use crate::lock::Lock;
use crate::Store;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wharf_types::Digest;

/// `format` of a signature record.
pub const SIGNATURE_FORMAT: &str = "wharf-image-signature";
/// Version written (and the only one read).
pub const SIGNATURE_VERSION: u32 = 1;
/// Cap on a signature file read into memory.
const SIGNATURE_CAP: u64 = 16 << 10;
/// At most this many signatures of one manifest are read (the rest are not looked at).
pub const MAX_SIGNATURES: usize = 256;

/// One signature of an image (`meta/signatures/<manifest>/<key_id>.json`, and in a bundle
/// index for each image).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImageSignature {
    pub format: String,
    pub version: u32,
    /// The manifest digest signed.
    pub manifest: Digest,
    /// The name it was signed as (normalized), or the image id for an image without one.
    pub reference: String,
    pub created: String,
    /// [`keys::key_id`] of the signing key: 64 hex digits.
    pub key_id: String,
    /// The signer's public key (base64 of its 32 bytes).
    pub public_key: String,
    /// base64 ed25519 signature of the message (module docs).
    pub signature: String,
}

/// Why a signature does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("not a {SIGNATURE_FORMAT} version {SIGNATURE_VERSION} record")]
    Format,
    #[error("a field holds a line break")]
    Field,
    #[error("its key id {0:?} is not 64 hex digits")]
    KeyId(String),
    #[error("it is over manifest {0}, not this image's")]
    OtherManifest(Digest),
    #[error("it is by key {0}, not by the key it is checked with")]
    OtherKey(String),
    #[error("its public key does not match its key id")]
    PublicKey,
    #[error("the signature does not verify")]
    Signature,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn is_key_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ImageSignature {
    /// Signs `manifest` as `reference` with `key`.
    pub fn sign(
        key: &SigningKey,
        manifest: &Digest,
        reference: &str,
    ) -> Result<ImageSignature, SignatureProblem> {
        let vk = key.verifying_key();
        let mut s = ImageSignature {
            format: SIGNATURE_FORMAT.to_string(),
            version: SIGNATURE_VERSION,
            manifest: manifest.clone(),
            reference: reference.to_string(),
            created: crate::util::now_rfc3339(),
            key_id: keys::key_id(&vk),
            public_key: b64().encode(vk.as_bytes()),
            signature: String::new(),
        };
        let msg = s.message()?;
        s.signature = keys::sign(key, &msg).trim().to_string();
        Ok(s)
    }

    /// The signed message; a field with a line break (only a forged record has one) could
    /// make two records sign the same message, so it is refused.
    fn message(&self) -> Result<Vec<u8>, SignatureProblem> {
        if self.format != SIGNATURE_FORMAT || self.version != SIGNATURE_VERSION {
            return Err(SignatureProblem::Format);
        }
        if self.reference.contains(['\n', '\r']) || self.created.contains(['\n', '\r']) {
            return Err(SignatureProblem::Field);
        }
        Ok(format!(
            "{SIGNATURE_FORMAT} v{SIGNATURE_VERSION}\nmanifest {}\nreference {}\ncreated {}\n",
            self.manifest, self.reference, self.created
        )
        .into_bytes())
    }

    /// Counts as a signature of `manifest` by `key` (a key the caller trusts).
    pub fn check(&self, manifest: &Digest, key: &VerifyingKey) -> Result<(), SignatureProblem> {
        let msg = self.message()?;
        if &self.manifest != manifest {
            return Err(SignatureProblem::OtherManifest(self.manifest.clone()));
        }
        if self.key_id != keys::key_id(key) {
            return Err(SignatureProblem::OtherKey(self.key_id.clone()));
        }
        if keys::verify(key, &msg, &self.signature) {
            Ok(())
        } else {
            Err(SignatureProblem::Signature)
        }
    }

    /// The embedded public key, checked against the key id.
    pub fn public_key(&self) -> Result<VerifyingKey, SignatureProblem> {
        if !is_key_id(&self.key_id) {
            return Err(SignatureProblem::KeyId(self.key_id.clone()));
        }
        let raw = b64()
            .decode(self.public_key.trim().as_bytes())
            .map_err(|_| SignatureProblem::PublicKey)?;
        let arr = <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| SignatureProblem::PublicKey)?;
        let vk = VerifyingKey::from_bytes(&arr).map_err(|_| SignatureProblem::PublicKey)?;
        if keys::key_id(&vk) != self.key_id {
            return Err(SignatureProblem::PublicKey);
        }
        Ok(vk)
    }

    /// Well formed and signed by its own embedded key over `manifest` (says nothing about
    /// trust: anyone can make such a record).
    pub fn check_self(&self, manifest: &Digest) -> Result<(), SignatureProblem> {
        self.check(manifest, &self.public_key()?)
    }
}

/// A signature file as read back: the record, or why it could not be read.
#[derive(Debug, Clone)]
pub struct StoredSignature {
    pub path: PathBuf,
    pub signature: Result<ImageSignature, String>,
}

impl Store {
    fn signatures_root(&self) -> PathBuf {
        self.root.join("meta/signatures")
    }

    fn signatures_dir(&self, manifest: &Digest) -> PathBuf {
        self.signatures_root().join(manifest.hex())
    }

    /// Stores a signature of an image this store holds (its manifest is an image's), replacing
    /// an earlier one by the same key. The record must check against its own key.
    pub fn add_signature(&self, sig: &ImageSignature) -> Result<PathBuf, StoreError> {
        sig.check_self(&sig.manifest)
            .map_err(|e| StoreError::InvalidSignature {
                what: format!("signature by key {} of {}", sig.key_id, sig.manifest),
                reason: e.to_string(),
            })?;
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let idx = self.load_index()?;
        if !idx.images.values().any(|e| e.manifest == sig.manifest) {
            return Err(StoreError::ImageNotFound(format!(
                "manifest {}",
                sig.manifest
            )));
        }
        let dir = self.signatures_dir(&sig.manifest);
        crate::util::mkdir_p(&dir)?;
        let path = dir.join(format!("{}.json", sig.key_id));
        let data = serde_json::to_vec_pretty(sig).map_err(|source| StoreError::Encode {
            what: "image signature",
            source,
        })?;
        crate::util::write_atomic(&path, &data)?;
        Ok(path)
    }

    /// The signature files of `manifest`, sorted by name (at most [`MAX_SIGNATURES`]); a
    /// file that is not a regular file, too large or not a record is returned with why.
    pub fn image_signatures(&self, manifest: &Digest) -> Result<Vec<StoredSignature>, StoreError> {
        let dir = self.signatures_dir(manifest);
        let mut names: Vec<(String, PathBuf)> = crate::reap::list_dir(&dir)?
            .into_iter()
            .filter(|(n, _)| !n.starts_with('.'))
            .collect();
        names.sort();
        names.truncate(MAX_SIGNATURES);
        Ok(names
            .into_iter()
            .map(|(_, path)| {
                let signature = match wharf_sys::fs::read_small_file(None, &path, SIGNATURE_CAP) {
                    Ok(Some(b)) => serde_json::from_slice::<ImageSignature>(&b)
                        .map_err(|e| format!("not a signature record: {e}")),
                    Ok(None) => Err("removed while read".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                StoredSignature { path, signature }
            })
            .collect())
    }

    /// Removes the signatures of `manifest` (those by `key_id` only, when given); returns the
    /// file names removed.
    pub fn remove_signatures(
        &self,
        manifest: &Digest,
        key_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let _meta = Lock::exclusive(&self.meta_lock)?;
        let dir = self.signatures_dir(manifest);
        let mut removed = Vec::new();
        for (name, path) in crate::reap::list_dir(&dir)? {
            let stem = name.strip_suffix(".json").unwrap_or(&name);
            if key_id.is_none_or(|k| k == stem) {
                crate::util::remove_file_if_exists(&path)?;
                removed.push(name);
            }
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        crate::util::fsync_dir(&dir)?;
        if key_id.is_none() {
            remove_empty_dir(&dir)?;
        }
        Ok(removed)
    }

    /// GC (under the metadata lock): signatures of manifests no image has any more.
    pub(crate) fn gc_signatures(
        &self,
        live_manifests: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        for (name, path) in crate::reap::list_dir(&self.signatures_root())? {
            if !live_manifests.contains(&name) {
                crate::util::remove_tree_if_exists(&path)?;
            }
        }
        Ok(())
    }
}

fn remove_empty_dir(dir: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(StoreError::io("removing", dir)(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_and_check() {
        let m = Digest::of(b"manifest");
        let other = Digest::of(b"other");
        let k = key(1);
        let s = ImageSignature::sign(&k, &m, "docker.io/library/busybox:latest").unwrap();
        assert_eq!(s.check(&m, &k.verifying_key()), Ok(()));
        assert_eq!(s.check_self(&m), Ok(()));
        // another manifest, another key, a changed field: none counts
        assert_eq!(
            s.check(&other, &k.verifying_key()),
            Err(SignatureProblem::OtherManifest(m.clone()))
        );
        assert!(matches!(
            s.check(&m, &key(2).verifying_key()),
            Err(SignatureProblem::OtherKey(_))
        ));
        let mut t = s.clone();
        t.reference = "docker.io/library/evil:latest".into();
        assert_eq!(
            t.check(&m, &k.verifying_key()),
            Err(SignatureProblem::Signature)
        );
        let mut t = s.clone();
        t.manifest = other.clone();
        assert_eq!(
            t.check(&other, &k.verifying_key()),
            Err(SignatureProblem::Signature)
        );
        let mut t = s.clone();
        t.created = "x\nreference y".into();
        assert_eq!(
            t.check(&m, &k.verifying_key()),
            Err(SignatureProblem::Field)
        );
        // a forged record: someone else's key under the trusted key's id
        let mut t = ImageSignature::sign(&key(3), &m, "x").unwrap();
        t.key_id = s.key_id.clone();
        assert_eq!(t.check_self(&m), Err(SignatureProblem::PublicKey));
        assert_eq!(
            t.check(&m, &k.verifying_key()),
            Err(SignatureProblem::Signature)
        );
        t.key_id = "../../x".into();
        assert!(matches!(t.check_self(&m), Err(SignatureProblem::KeyId(_))));
        // the record round-trips and refuses unknown fields
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<ImageSignature>(&j).unwrap(), s);
        let extra = j.replacen('{', "{\"x\":1,", 1);
        assert!(serde_json::from_str::<ImageSignature>(&extra).is_err());
    }

    #[test]
    fn store_refuses_unknown_manifests_and_reaps_temps() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let m = Digest::of(b"manifest");
        let s = ImageSignature::sign(&key(1), &m, "x").unwrap();
        // no image has this manifest
        assert!(matches!(
            store.add_signature(&s),
            Err(StoreError::ImageNotFound(_))
        ));
        let mut forged = s.clone();
        forged.key_id = "../../../etc/x".into();
        assert!(matches!(
            store.add_signature(&forged),
            Err(StoreError::InvalidSignature { .. })
        ));
        assert!(store.image_signatures(&m).unwrap().is_empty());
        // a killed writer's temp is not a signature, and the reaper removes it
        let dir = store.signatures_dir(&m);
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(".k.json.tmp-1-2-3");
        std::fs::write(&tmp, "{").unwrap();
        std::fs::write(store.signatures_root().join("stray"), "").unwrap();
        assert!(store.image_signatures(&m).unwrap().is_empty());
        assert!(store.reap_stale_temps().unwrap() >= 1);
        assert!(!tmp.exists());
        assert_eq!(
            store.remove_signatures(&m, None).unwrap(),
            Vec::<String>::new()
        );
    }
}
