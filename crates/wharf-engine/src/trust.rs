//! Image trust (`wharf trust`, docker's `docker trust` names): ed25519 keys (the same PEM
//! files as bundles), signatures of an image's manifest digest stored in the store
//! (`wharf_store::trust`), and the policy rule `registries.require_signed`: a container's
//! image must carry a signature that verifies with a key in the trusted-keys directory, read
//! at every decision (removing a key revokes every signature it made).
//!
//! Owns: sign/inspect/revoke/key generation as typed requests, reading the trusted-keys
//! directory (bounded: regular files only, at most [`MAX_TRUSTED_KEYS`] of [`KEY_FILE_MAX`]
//! bytes each; anything else fails closed), and the signature decision. Must not: parse
//! argv, print, or trust a signature's embedded key.

use crate::policy::Policy;
use crate::Engine;
use std::path::{Path, PathBuf};
use wharf_store::bundle::keys;
use wharf_store::trust::{ImageSignature, StoredSignature};
use wharf_store::StoreError;
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::Digest;

/// At most this many entries in the trusted-keys directory.
pub const MAX_TRUSTED_KEYS: usize = 256;
/// A public key file is a few hundred bytes; larger is not a key.
pub const KEY_FILE_MAX: u64 = 16 << 10;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] wharf_store::bundle::BundleError),
    #[error("invalid key name {0:?}: use letters, digits, '-', '_' and '.', starting with a letter or digit")]
    KeyName(String),
    #[error("cannot sign {image}: {reason}")]
    Sign { image: String, reason: String },
    #[error("image {image} has no signature by key {key}")]
    NoSignature { image: String, key: String },
    #[error("key {key:?} matches more than one signature of {image}; give more of the key id")]
    AmbiguousKey { image: String, key: String },
}

impl HasKind for TrustError {
    fn kind(&self) -> ErrorKind {
        match self {
            TrustError::Store(e) => e.kind(),
            TrustError::Key(e) => e.kind(),
            TrustError::KeyName(_) | TrustError::Sign { .. } | TrustError::AmbiguousKey { .. } => {
                ErrorKind::InvalidArgument
            }
            TrustError::NoSignature { .. } => ErrorKind::NotFound,
        }
    }
}

/// `trust key generate NAME [--dir DIR]`.
#[derive(Debug, Clone)]
pub struct KeyGenerateRequest {
    pub name: String,
    pub dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// `DIR/NAME.pem` (PKCS#8, mode 0600): give it to `trust sign --key` or `bundle create
    /// --sign`.
    pub private: PathBuf,
    /// `DIR/NAME.pub`: install it in the trusted-keys directory of the hosts that trust it.
    pub public: PathBuf,
    pub key_id: String,
}

/// `trust sign IMAGE --key FILE`.
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub image: String,
    /// A private key (`trust key generate`, `key generate`).
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Signed {
    /// The name signed (normalized), or the image id for an image without one.
    pub reference: String,
    pub manifest: Digest,
    pub key_id: String,
    pub path: PathBuf,
}

/// `trust revoke IMAGE [--key KEY]`.
#[derive(Debug, Clone)]
pub struct RevokeRequest {
    pub image: String,
    /// A key file (public or private) or a key id (a unique prefix of at least 8 hex
    /// digits); `None` = every signature of the image.
    pub key: Option<String>,
}

/// `trust inspect IMAGE`: the image's signatures and what the policy makes of them.
#[derive(Debug, Clone)]
pub struct TrustInfo {
    pub name: String,
    pub id: Digest,
    pub manifest: Digest,
    /// The trusted-keys directory of the policy in force (`None`: no policy, so no key is
    /// trusted or distrusted).
    pub trusted_keys: Option<PathBuf>,
    /// Why that directory could not be read (every signature then counts as untrusted).
    pub trusted_keys_error: Option<String>,
    pub signatures: Vec<SignerInfo>,
}

#[derive(Debug, Clone)]
pub struct SignerInfo {
    pub file: PathBuf,
    pub key_id: Option<String>,
    pub reference: Option<String>,
    pub created: Option<String>,
    /// Well formed, over this image's manifest and verified with its own key.
    pub valid: bool,
    /// Counts under the policy: by a key in the trusted-keys directory (`None` without a
    /// policy).
    pub trusted: Option<bool>,
    /// The trusted key file that verifies it.
    pub key_file: Option<PathBuf>,
    /// Why it does not count (invalid, or not by a trusted key).
    pub problem: Option<String>,
}

/// A public key from the trusted-keys directory.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub path: PathBuf,
    pub id: String,
    key: keys::VerifyingKey,
}

fn valid_key_name(n: &str) -> bool {
    n.len() <= 128
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Writes `DIR/NAME.pem` and `DIR/NAME.pub`; refuses to overwrite either.
pub fn generate_key(req: &KeyGenerateRequest) -> Result<GeneratedKey, TrustError> {
    if !valid_key_name(&req.name) {
        return Err(TrustError::KeyName(req.name.clone()));
    }
    let (private, public) = keys::generate_key(&req.dir.join(&req.name))?;
    let key_id = keys::key_id(&keys::read_verifying_key(&public)?);
    Ok(GeneratedKey {
        private,
        public,
        key_id,
    })
}

/// Reads the trusted-keys directory: every entry not starting with `.` must be a regular
/// file holding one PEM public key. Anything else (a private key, a symlink, a FIFO, a
/// directory, an oversized or unparsable file, more than [`MAX_TRUSTED_KEYS`] entries, the
/// directory missing) is an error naming the file: the caller refuses (fail closed).
pub fn load_trusted_keys(dir: &Path) -> Result<Vec<TrustedKey>, String> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("trusted keys directory {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| format!("trusted keys directory {}: {e}", dir.display()))?;
        if ent.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        if paths.len() == MAX_TRUSTED_KEYS {
            return Err(format!(
                "trusted keys directory {} has more than {MAX_TRUSTED_KEYS} entries",
                dir.display()
            ));
        }
        paths.push(ent.path());
    }
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let bad = |why: String| format!("trusted key file {}: {why}", path.display());
        let meta = std::fs::symlink_metadata(&path).map_err(|e| bad(e.to_string()))?;
        if !meta.file_type().is_file() {
            return Err(bad(
                "not a regular file (only public key files belong in this directory)".into(),
            ));
        }
        let data = wharf_sys::fs::read_small_file(None, &path, KEY_FILE_MAX)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("removed while read".into()))?;
        let text = String::from_utf8(data).map_err(|_| bad("not UTF-8".into()))?;
        let key = keys::parse_verifying_key(&path, &text).map_err(|e| e.to_string())?;
        out.push(TrustedKey {
            id: keys::key_id(&key),
            path,
            key,
        });
    }
    Ok(out)
}

/// The trusted key that makes `sig` count for `manifest`, or why none does.
fn counts<'k>(
    sig: &ImageSignature,
    manifest: &Digest,
    trusted: &'k [TrustedKey],
) -> Result<&'k TrustedKey, String> {
    let Some(k) = trusted.iter().find(|k| k.id == sig.key_id) else {
        return Err(format!("key {} is not trusted", short(&sig.key_id)));
    };
    sig.check(manifest, &k.key)
        .map(|()| k)
        .map_err(|e| format!("key {}: {e}", short(&sig.key_id)))
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// `registries.require_signed` for an image's manifest: `None` when a stored signature
/// verifies with a trusted key, else the refusal's message (every reason a signature did not
/// count, so the owner sees a tampered file or a removed key).
pub(crate) fn signature_refusal(
    store: &wharf_store::Store,
    p: &Policy,
    image_arg: &str,
    manifest: &Digest,
) -> Option<String> {
    let dir = p.registries.trusted_keys_dir();
    let trusted = match load_trusted_keys(dir) {
        Ok(t) => t,
        Err(why) => {
            return Some(format!(
                "signatures of {image_arg:?} cannot be checked: {why}"
            ))
        }
    };
    let sigs = match store.image_signatures(manifest) {
        Ok(s) => s,
        Err(e) => return Some(format!("signatures of {image_arg:?} cannot be read: {e}")),
    };
    let mut why = Vec::new();
    for s in &sigs {
        match &s.signature {
            Ok(sig) => match counts(sig, manifest, &trusted) {
                Ok(_) => return None,
                Err(w) => why.push(w),
            },
            Err(e) => why.push(format!("{}: {e}", s.path.display())),
        }
    }
    let keys = if trusted.is_empty() {
        format!("there is no key in {}", dir.display())
    } else {
        format!("no signature verifies with a key in {}", dir.display())
    };
    let found = if why.is_empty() {
        "it has no signature (wharf trust sign)".to_string()
    } else {
        format!("its signatures: {}", why.join("; "))
    };
    Some(format!(
        "image {image_arg:?} (manifest {manifest}) must be signed by a trusted key: {keys}; {found}"
    ))
}

fn signer_info(
    s: &StoredSignature,
    manifest: &Digest,
    trusted: Option<&[TrustedKey]>,
) -> SignerInfo {
    let mut info = SignerInfo {
        file: s.path.clone(),
        key_id: None,
        reference: None,
        created: None,
        valid: false,
        trusted: None,
        key_file: None,
        problem: None,
    };
    let sig = match &s.signature {
        Ok(sig) => sig,
        Err(e) => {
            info.problem = Some(e.clone());
            info.trusted = trusted.map(|_| false);
            return info;
        }
    };
    info.key_id = Some(sig.key_id.clone());
    info.reference = Some(sig.reference.clone());
    info.created = Some(sig.created.clone());
    let own = sig.check_self(manifest);
    info.valid = own.is_ok();
    if let Err(e) = own {
        info.problem = Some(e.to_string());
    }
    if let Some(t) = trusted {
        match counts(sig, manifest, t) {
            Ok(k) => {
                info.trusted = Some(true);
                info.key_file = Some(k.path.clone());
            }
            Err(w) => {
                info.trusted = Some(false);
                info.problem.get_or_insert(w);
            }
        }
    }
    info
}

impl Engine {
    /// Signs an image's manifest digest (and the name it is signed as) with a private key
    /// and stores the signature (replacing an earlier one by the same key).
    pub fn trust_sign(&self, req: &SignRequest) -> Result<Signed, TrustError> {
        let image = self.store.resolve_image(&req.image)?;
        let key = keys::read_signing_key(&req.key)?;
        let full = |r: wharf_types::ImageRef| match (r.tag(), r.digest()) {
            (None, None) => r.with_tag("latest").unwrap_or(r).to_string(),
            _ => r.to_string(),
        };
        let reference = match wharf_types::ImageRef::parse(&req.image) {
            Ok(r) if !image.id.hex().starts_with(&req.image) => full(r),
            _ => image
                .repo_tags
                .first()
                .and_then(|t| wharf_types::ImageRef::parse(t).ok())
                .map(full)
                .unwrap_or_else(|| image.id.to_string()),
        };
        let sig = ImageSignature::sign(&key, &image.manifest_digest, &reference).map_err(|e| {
            TrustError::Sign {
                image: req.image.clone(),
                reason: e.to_string(),
            }
        })?;
        let path = self.store.add_signature(&sig)?;
        Ok(Signed {
            reference,
            manifest: image.manifest_digest,
            key_id: sig.key_id,
            path,
        })
    }

    /// An image's signatures, each said valid or not, and trusted or not under the policy.
    pub fn trust_inspect(&self, image: &str) -> Result<TrustInfo, TrustError> {
        let img = self.store.resolve_image(image)?;
        let dir = match &self.policy {
            crate::policy::Loaded::Active(p) => Some(p.registries.trusted_keys_dir().to_path_buf()),
            _ => None,
        };
        let (trusted, trusted_keys_error) = match &dir {
            None => (None, None),
            Some(d) => match load_trusted_keys(d) {
                Ok(t) => (Some(t), None),
                Err(e) => (Some(Vec::new()), Some(e)),
            },
        };
        let signatures = self
            .store
            .image_signatures(&img.manifest_digest)?
            .iter()
            .map(|s| signer_info(s, &img.manifest_digest, trusted.as_deref()))
            .collect();
        Ok(TrustInfo {
            name: image.to_string(),
            id: img.id,
            manifest: img.manifest_digest,
            trusted_keys: dir,
            trusted_keys_error,
            signatures,
        })
    }

    /// Removes an image's signatures (all, or one key's); returns the key ids removed.
    pub fn trust_revoke(&self, req: &RevokeRequest) -> Result<Vec<String>, TrustError> {
        let img = self.store.resolve_image(&req.image)?;
        let key_id = match &req.key {
            None => None,
            Some(k) => Some(self.revoke_key_id(&req.image, &img.manifest_digest, k)?),
        };
        let removed = self
            .store
            .remove_signatures(&img.manifest_digest, key_id.as_deref())?;
        if let (Some(k), true) = (&req.key, removed.is_empty()) {
            return Err(TrustError::NoSignature {
                image: req.image.clone(),
                key: k.clone(),
            });
        }
        Ok(removed
            .into_iter()
            .map(|n| n.strip_suffix(".json").unwrap_or(&n).to_string())
            .collect())
    }

    /// `--key`: a key file (public, else private), or a key id prefix naming one signature.
    fn revoke_key_id(
        &self,
        image: &str,
        manifest: &Digest,
        key: &str,
    ) -> Result<String, TrustError> {
        let path = Path::new(key);
        if path.is_file() {
            return match keys::read_verifying_key(path) {
                Ok(k) => Ok(keys::key_id(&k)),
                Err(_) => Ok(keys::key_id(&keys::read_signing_key(path)?.verifying_key())),
            };
        }
        let prefix = key.to_ascii_lowercase();
        let ids: Vec<String> = self
            .store
            .image_signatures(manifest)?
            .into_iter()
            .filter_map(|s| {
                let name = s.path.file_name()?.to_string_lossy().into_owned();
                Some(name.strip_suffix(".json").unwrap_or(&name).to_string())
            })
            .filter(|id| prefix.len() >= 8 && id.starts_with(&prefix))
            .collect();
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(TrustError::NoSignature {
                image: image.to_string(),
                key: key.to_string(),
            }),
            _ => Err(TrustError::AmbiguousKey {
                image: image.to_string(),
                key: key.to_string(),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        for ok in ["alice", "ops-2026", "a.b_c", "0"] {
            assert!(valid_key_name(ok), "{ok}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b", &"x".repeat(129)] {
            assert!(!valid_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn trusted_keys_directory_fails_closed() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("keys");
        assert!(load_trusted_keys(&dir).unwrap_err().contains("keys"));
        std::fs::create_dir(&dir).unwrap();
        assert!(load_trusted_keys(&dir).unwrap().is_empty());
        let g = generate_key(&KeyGenerateRequest {
            name: "a".into(),
            dir: t.path().to_path_buf(),
        })
        .unwrap();
        std::fs::copy(&g.public, dir.join("a.pub")).unwrap();
        // hidden files (editor leftovers) are not looked at
        std::fs::write(dir.join(".a.pub.swp"), "junk").unwrap();
        let k = load_trusted_keys(&dir).unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].id, g.key_id);
        // a private key, garbage, a FIFO, a symlink, a directory, a huge file: each refused
        // with the file's name, never read unbounded or blocked on
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        type Make<'a> = Box<dyn Fn(&Path) + 'a>;
        let cases: Vec<(PathBuf, Make)> = vec![
            (
                dir.join("priv.pub"),
                Box::new(|p: &Path| {
                    std::fs::copy(t.path().join("a.pem"), p).unwrap();
                }),
            ),
            (
                dir.join("junk.pub"),
                Box::new(|p: &Path| std::fs::write(p, "not a key").unwrap()),
            ),
            (
                dir.join("link.pub"),
                Box::new(|p: &Path| std::os::unix::fs::symlink(t.path().join("a.pub"), p).unwrap()),
            ),
            (
                dir.join("sub"),
                Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
            ),
            (
                dir.join("big.pub"),
                Box::new(|p: &Path| {
                    std::fs::write(p, "#".repeat(KEY_FILE_MAX as usize + 1)).unwrap()
                }),
            ),
        ];
        let e = load_trusted_keys(&dir).unwrap_err();
        assert!(
            e.contains("fifo") && e.contains("not a regular file"),
            "{e}"
        );
        std::fs::remove_file(&fifo).unwrap();
        for (path, make) in cases {
            make(&path);
            let e = load_trusted_keys(&dir).unwrap_err();
            assert!(e.contains(path.to_str().unwrap()), "{e}");
            if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
        assert_eq!(load_trusted_keys(&dir).unwrap().len(), 1);
    }
}
