//! Bundle signing keys: ed25519 key pairs stored as standard PEM files — the private key as
//! PKCS#8 (`-----BEGIN PRIVATE KEY-----`, RFC 8410) and the public key as SubjectPublicKeyInfo
//! (`-----BEGIN PUBLIC KEY-----`), so `openssl pkey` reads both. Signatures are over the exact
//! bytes of a bundle's index file, stored base64-encoded in `NAME.index.sig`.
//!
//! Owns: key files and signatures. Must not: decide whether a signature is required (that is
//! the caller's policy).

use super::BundleError;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// DER prefix of an RFC 8410 PKCS#8 ed25519 private key (followed by the 32-byte seed).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an ed25519 SubjectPublicKeyInfo (followed by the 32-byte key).
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const KEY_FILE_CAP: u64 = 16 << 10;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = b64().encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn read_pem(path: &Path, label: &str, prefix: &[u8]) -> Result<[u8; 32], BundleError> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(KEY_FILE_CAP).read_to_string(&mut text))
        .map_err(BundleError::io("reading key", path))?;
    parse_pem(path, &text, label, prefix)
}

/// The 32 key bytes of a PEM block `label` whose DER is `prefix` + key; `path` only names
/// the file in errors.
fn parse_pem(path: &Path, text: &str, label: &str, prefix: &[u8]) -> Result<[u8; 32], BundleError> {
    let bad = |reason: &str| BundleError::BadKey {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| bad(&format!("no {begin} block")))?;
    let rest = &text[start + begin.len()..];
    let stop = rest
        .find(&end)
        .ok_or_else(|| bad(&format!("no {end} line")))?;
    let body: String = rest[..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = b64()
        .decode(body.as_bytes())
        .map_err(|_| bad("invalid base64"))?;
    if der.len() != prefix.len() + 32 || !der.starts_with(prefix) {
        return Err(bad("not an ed25519 key"));
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&der[prefix.len()..]);
    Ok(k)
}

/// Reads a PKCS#8 PEM ed25519 private key.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, BundleError> {
    Ok(SigningKey::from_bytes(&read_pem(
        path,
        "PRIVATE KEY",
        &PKCS8_PREFIX,
    )?))
}

fn verifying_key(path: &Path, k: &[u8; 32]) -> Result<VerifyingKey, BundleError> {
    VerifyingKey::from_bytes(k).map_err(|_| BundleError::BadKey {
        path: path.to_path_buf(),
        reason: "not a valid ed25519 point".to_string(),
    })
}

/// Reads an SPKI PEM ed25519 public key.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, BundleError> {
    verifying_key(path, &read_pem(path, "PUBLIC KEY", &SPKI_PREFIX)?)
}

/// Parses the text of an SPKI PEM ed25519 public key (a caller that read the file itself,
/// bounded); `path` only names the file in errors.
pub fn parse_verifying_key(path: &Path, text: &str) -> Result<VerifyingKey, BundleError> {
    verifying_key(path, &parse_pem(path, text, "PUBLIC KEY", &SPKI_PREFIX)?)
}

/// A key's id: the sha256 (64 hex digits) of its 32 public key bytes. [`fingerprint`] is
/// its first 16 digits.
pub fn key_id(k: &VerifyingKey) -> String {
    wharf_types::Digest::of(k.as_bytes()).hex().to_string()
}

/// A short fingerprint of a public key (first 16 hex digits of sha256 of its bytes).
pub fn fingerprint(k: &VerifyingKey) -> String {
    key_id(k)[..16].to_string()
}

/// Writes `<base>.pem` (private, mode 0600) and `<base>.pub`; refuses to overwrite.
pub fn generate_key(base: &Path) -> Result<(PathBuf, PathBuf), BundleError> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(BundleError::io("reading", "/dev/urandom"))?;
    let sk = SigningKey::from_bytes(&seed);
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".to_string());
    let priv_path = base.with_file_name(format!("{name}.pem"));
    let pub_path = base.with_file_name(format!("{name}.pub"));
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(sk.verifying_key().as_bytes());
    for (path, mode, text) in [
        (&priv_path, 0o600, pem("PRIVATE KEY", &der)),
        (&pub_path, 0o644, pem("PUBLIC KEY", &spki)),
    ] {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(BundleError::io("creating key file", path))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(BundleError::io("writing key file", path))?;
    }
    Ok((priv_path, pub_path))
}

/// The signature file content for `data`.
pub(crate) fn sign(k: &SigningKey, data: &[u8]) -> String {
    format!("{}\n", b64().encode(k.sign(data).to_bytes()))
}

/// True if `sig_text` (a signature file's content) is a valid signature of `data` by `k`.
pub(crate) fn verify(k: &VerifyingKey, data: &[u8], sig_text: &str) -> bool {
    let Ok(raw) = b64().decode(sig_text.trim().as_bytes()) else {
        return false;
    };
    let Ok(arr) = <[u8; 64]>::try_from(raw.as_slice()) else {
        return false;
    };
    k.verify(data, &Signature::from_bytes(&arr)).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generate_read_sign_verify() {
        let d = tempfile::tempdir().unwrap();
        let (p, q) = generate_key(&d.path().join("k")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sk = read_signing_key(&p).unwrap();
        let vk = read_verifying_key(&q).unwrap();
        let s = sign(&sk, b"hello");
        assert!(verify(&vk, b"hello", &s));
        assert!(!verify(&vk, b"hellO", &s));
        assert!(!verify(&vk, b"hello", "garbage"));
        assert!(generate_key(&d.path().join("k")).is_err(), "no overwrite");
        assert!(read_verifying_key(&p).is_err(), "private is not public");
    }
}
