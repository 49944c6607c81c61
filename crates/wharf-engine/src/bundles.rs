//! The bundle service: `inventory`, `bundle create|verify|apply` and `key generate` as typed
//! requests over `wharf_store::bundle` (which owns the format and every check). The engine
//! decides what the host owner configured: whether a signature is required and which keys
//! are trusted (`bundle-require-signature`, `bundle-trusted-keys` in daemon.json, read once
//! in `Engine::open` like every other key), reads key, inventory and size arguments,
//! verifies before every apply, and holds applied images to the admin policy.
//!
//! Must not: print (progress goes to the caller's callback), apply a bundle it has not
//! verified itself in the same call, read a config or key file unbounded.

use crate::{Engine, EngineError};
use std::path::{Path, PathBuf};
use wharf_types::error::{ErrorKind, HasKind};

pub use wharf_store::archive::LoadedImage;
pub use wharf_store::bundle::{
    BundleError, BundleIndex, CreateReport, Inventory, Progress, VerifyReport,
};

/// Errors of the bundle service.
#[derive(Debug, thiserror::Error)]
pub enum BundleServiceError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl HasKind for BundleServiceError {
    fn kind(&self) -> ErrorKind {
        match self {
            BundleServiceError::Bundle(e) => e.kind(),
            BundleServiceError::Engine(e) => e.kind(),
        }
    }
}

/// `bundle create IMAGE... -o NAME [--have INVENTORY] [--split SIZE] [--sign KEY]`.
#[derive(Debug, Clone, Default)]
pub struct BundleCreateRequest {
    pub images: Vec<String>,
    /// NAME: the index is `NAME.index.json`, parts `NAME` or `NAME.000`...
    pub output: PathBuf,
    /// The target's inventory file: layers it holds are not carried.
    pub have: Option<PathBuf>,
    /// Part size (`700M`, `4G`, bytes; at least 4k).
    pub split: Option<String>,
    /// Private key file to sign the index with.
    pub sign: Option<PathBuf>,
}

/// `bundle verify|apply PART... [--key KEY]`.
#[derive(Debug, Clone, Default)]
pub struct BundleVerifyRequest {
    /// The index and the payload parts (any order).
    pub parts: Vec<PathBuf>,
    /// Check the signature with this public key (otherwise the host's trusted keys when
    /// signatures are required, else the signature is not checked).
    pub key: Option<PathBuf>,
}

/// What `bundle apply` did.
#[derive(Debug, Clone)]
pub struct BundleApplied {
    pub verified: VerifyReport,
    pub loaded: Vec<LoadedImage>,
}

/// The host's bundle settings (daemon.json's `bundle-*` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostBundleConfig {
    pub require_signature: bool,
    pub trusted_keys: Vec<PathBuf>,
}

impl HostBundleConfig {
    /// Whose signatures `verify` accepts for a request.
    fn policy(
        &self,
        key: Option<&Path>,
    ) -> Result<wharf_store::bundle::VerifyPolicy, BundleServiceError> {
        let files: Vec<PathBuf> = match key {
            Some(k) => vec![k.to_path_buf()],
            None if self.require_signature => self.trusted_keys.clone(),
            None => Vec::new(),
        };
        let mut keys = Vec::new();
        for f in files {
            let k = wharf_store::bundle::read_verifying_key(&f)?;
            keys.push((f, k));
        }
        Ok(wharf_store::bundle::VerifyPolicy {
            keys,
            require_signature: self.require_signature,
        })
    }
}

/// `key generate NAME`: writes `NAME.key` (private) and `NAME.pub`; returns both paths.
pub fn generate_key(base: &Path) -> Result<(PathBuf, PathBuf), BundleServiceError> {
    Ok(wharf_store::bundle::generate_key(base)?)
}

impl Engine {
    /// `inventory`: what this store holds, for a bundle creator's `--have`.
    pub fn inventory(&self) -> Result<Inventory, BundleServiceError> {
        Ok(self.store.inventory()?)
    }

    /// `bundle create`.
    pub fn create_bundle(
        &self,
        req: &BundleCreateRequest,
        progress: Progress<'_>,
    ) -> Result<CreateReport, BundleServiceError> {
        use wharf_store::bundle::{parse_size, read_inventory, read_signing_key, CreateOptions};
        let opts = CreateOptions {
            have: req.have.as_deref().map(read_inventory).transpose()?,
            split: req.split.as_deref().map(parse_size).transpose()?,
            sign: req.sign.as_deref().map(read_signing_key).transpose()?,
        };
        Ok(self
            .store
            .bundle_create(&req.images, &req.output, &opts, progress)?)
    }

    /// `bundle verify`: every part, the signature as the host requires, and that every layer
    /// the bundle does not carry is here. Imports nothing.
    pub fn verify_bundle(
        &self,
        req: &BundleVerifyRequest,
        progress: Progress<'_>,
    ) -> Result<VerifyReport, BundleServiceError> {
        let host = HostBundleConfig {
            require_signature: self.daemon.bundle_require_signature,
            trusted_keys: self.daemon.bundle_trusted_keys.clone(),
        };
        let policy = host.policy(req.key.as_deref())?;
        Ok(self.store.bundle_verify(&req.parts, &policy, progress)?)
    }

    /// `bundle apply`: verifies, imports atomically (as `load`), then holds every image it
    /// named to the admin policy (a refused name is taken back).
    pub fn apply_bundle(
        &self,
        req: &BundleVerifyRequest,
        progress: Progress<'_>,
    ) -> Result<BundleApplied, BundleServiceError> {
        let verified = self.verify_bundle(req, &mut *progress)?;
        let loaded = self.store.bundle_apply(&verified, progress)?;
        self.policy_loaded("bundle apply", &loaded)?;
        Ok(BundleApplied { verified, loaded })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bundle_keys_come_from_daemon_json() {
        use crate::daemon::DaemonConfig;
        let p = Path::new("/etc/wharf/daemon.json");
        let c = DaemonConfig::parse(
            p,
            br#"{"bundle-require-signature": true, "bundle-trusted-keys": ["/k.pub"], "x": 1}"#,
        )
        .unwrap();
        assert!(c.bundle_require_signature);
        assert_eq!(c.bundle_trusted_keys, [PathBuf::from("/k.pub")]);
        assert!(
            !DaemonConfig::parse(p, b"{}")
                .unwrap()
                .bundle_require_signature
        );
        for body in [
            r#"{"bundle-require-signature": "yes"}"#,
            r#"{"bundle-trusted-keys": "/k.pub"}"#,
            r#"{"bundle-trusted-keys": [1]}"#,
        ] {
            let e = DaemonConfig::parse(p, body.as_bytes()).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("invalid config file /etc/wharf/daemon.json"),
                "{body}: {e}"
            );
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        }
    }
}
