//! The registry's on-disk storage. Owns everything under its root:
//!
//! ```text
//! blobs/sha256/<hex>                      content (layers, configs, manifests), verified
//! uploads/<uuid>/{data,repo}              uploads in progress (never visible as blobs)
//! repos/<name>/_layers/<hex>              blob link: the blob is part of the repository
//! repos/<name>/_manifests/<hex>           manifest link; content = the manifest's media type
//! repos/<name>/_tags/<tag>                tag → "sha256:<hex>"
//! ```
//!
//! Names and tags are validated by the caller (`names`) and digests are `Digest`s, so every
//! path built here is a safe relative path. Blob bytes become visible only after they were
//! fsynced and their digest verified (ingest → fsync → verify → rename). Small files are
//! written atomically (temp → fsync → rename). Metadata mutations are serialised by one
//! process-wide lock. It must not parse HTTP.

use sha2::{Digest as _, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wharf_types::Digest;

/// Outcome of committing an upload.
#[derive(Debug)]
pub enum Commit {
    Ok,
    Mismatch { actual: Digest },
}

pub struct Storage {
    root: PathBuf,
    meta: Mutex<()>,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    wharf_sys::atomic::sync_dir(dir)
}

/// Writes `data` to `path` atomically and durably, creating its directory.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path without parent"))?;
    fs::create_dir_all(dir)?;
    wharf_sys::atomic::write_file(path, data, 0o644)
}

/// `n` random bytes as hex, from the kernel's CSPRNG.
pub fn random_hex(n: usize) -> io::Result<String> {
    let mut b = vec![0u8; n];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(hex::encode(b))
}

/// Uploads untouched for a week are abandoned (distribution purges them the same way).
const UPLOAD_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

fn purge_stale_uploads(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let stale = fs::metadata(e.path().join("data"))
            .or_else(|_| e.metadata())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UPLOAD_MAX_AGE);
        if stale {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn valid_uuid(u: &str) -> bool {
    u.len() == 32
        && u.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn not_found(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, what.to_string())
}

impl Storage {
    /// Opens (creating) the storage root.
    pub fn open(root: &Path) -> io::Result<Storage> {
        for d in ["blobs/sha256", "uploads", "repos"] {
            fs::create_dir_all(root.join(d))?;
        }
        purge_stale_uploads(&root.join("uploads"));
        Ok(Storage {
            root: root.to_path_buf(),
            meta: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repos").join(name)
    }

    /// Opens a stored blob; `None` when it does not exist.
    pub fn open_blob(&self, d: &Digest) -> io::Result<Option<(File, u64)>> {
        match File::open(self.blob_path(d)) {
            Ok(f) => {
                let len = f.metadata()?.len();
                Ok(Some((f, len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores small verified content (a manifest) as a blob.
    pub fn put_blob_bytes(&self, data: &[u8]) -> io::Result<Digest> {
        let d = Digest::of(data);
        let p = self.blob_path(&d);
        if !p.exists() {
            write_atomic(&p, data)?;
        }
        Ok(d)
    }

    /// Is the blob linked into the repository (and present)?
    pub fn repo_has_blob(&self, name: &str, d: &Digest) -> bool {
        self.repo_dir(name).join("_layers").join(d.hex()).exists() && self.blob_path(d).exists()
    }

    pub fn link_blob(&self, name: &str, d: &Digest) -> io::Result<()> {
        let _g = self.lock();
        write_atomic(&self.repo_dir(name).join("_layers").join(d.hex()), b"")
    }

    /// Removes the repository's link to a blob. False if it was not linked.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> io::Result<bool> {
        let _g = self.lock();
        match fs::remove_file(self.repo_dir(name).join("_layers").join(d.hex())) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn repo_exists(&self, name: &str) -> bool {
        let d = self.repo_dir(name);
        d.join("_manifests").is_dir() || d.join("_layers").is_dir()
    }

    // ---- uploads ----

    fn upload_dir(&self, uuid: &str) -> io::Result<PathBuf> {
        if !valid_uuid(uuid) {
            return Err(not_found("upload"));
        }
        Ok(self.root.join("uploads").join(uuid))
    }

    /// Starts an upload for `name`; returns its id.
    pub fn start_upload(&self, name: &str) -> io::Result<String> {
        let uuid = random_hex(16)?;
        let dir = self.root.join("uploads").join(&uuid);
        fs::create_dir(&dir)?;
        File::create(dir.join("data"))?;
        write_atomic(&dir.join("repo"), name.as_bytes())?;
        Ok(uuid)
    }

    /// Current size of an upload that belongs to `name`; `None` if unknown.
    pub fn upload_size(&self, name: &str, uuid: &str) -> io::Result<Option<u64>> {
        let Ok(dir) = self.upload_dir(uuid) else {
            return Ok(None);
        };
        match fs::read(dir.join("repo")) {
            Ok(r) if r == name.as_bytes() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok(Some(fs::metadata(dir.join("data"))?.len()))
    }

    /// Appends a stream to an upload; returns the new size. The caller checked ownership.
    pub fn append_upload(&self, uuid: &str, body: &mut dyn Read) -> io::Result<u64> {
        let dir = self.upload_dir(uuid)?;
        let mut f = OpenOptions::new().append(true).open(dir.join("data"))?;
        io::copy(body, &mut f)?;
        Ok(f.metadata()?.len())
    }

    pub fn cancel_upload(&self, uuid: &str) -> io::Result<()> {
        let dir = self.upload_dir(uuid)?;
        fs::remove_dir_all(dir)
    }

    /// Verifies an upload against `expected` and moves it into `blobs/` and links it into
    /// `name`. On a mismatch the upload is discarded and nothing becomes visible.
    pub fn commit_upload(&self, name: &str, uuid: &str, expected: &Digest) -> io::Result<Commit> {
        let dir = self.upload_dir(uuid)?;
        let data = dir.join("data");
        let mut f = File::open(&data)?;
        f.sync_all()?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let actual = Digest::from_hasher(h);
        if &actual != expected {
            let _ = fs::remove_dir_all(&dir);
            return Ok(Commit::Mismatch { actual });
        }
        let dest = self.blob_path(expected);
        fs::rename(&data, &dest)?;
        sync_dir(&self.root.join("blobs/sha256"))?;
        let _ = fs::remove_dir_all(&dir);
        self.link_blob(name, expected)?;
        Ok(Commit::Ok)
    }

    // ---- manifests and tags ----

    /// Records a manifest (already stored as a blob) in `name`, and tags it.
    pub fn put_manifest(
        &self,
        name: &str,
        d: &Digest,
        media_type: &str,
        tag: Option<&str>,
    ) -> io::Result<()> {
        let _g = self.lock();
        let dir = self.repo_dir(name);
        write_atomic(&dir.join("_manifests").join(d.hex()), media_type.as_bytes())?;
        if let Some(t) = tag {
            write_atomic(&dir.join("_tags").join(t), d.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// The media type of a manifest in `name`, if the repository has it.
    pub fn manifest_media_type(&self, name: &str, d: &Digest) -> io::Result<Option<String>> {
        match fs::read(self.repo_dir(name).join("_manifests").join(d.hex())) {
            Ok(b) if self.blob_path(d).exists() => Ok(Some(String::from_utf8_lossy(&b).into())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every manifest of a repository with its media type, sorted by digest.
    pub fn manifests(&self, name: &str) -> io::Result<Vec<(Digest, String)>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(self.repo_dir(name).join("_manifests")) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) else {
                continue;
            };
            if let Some(mt) = self.manifest_media_type(name, &d)? {
                out.push((d, mt));
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn resolve_tag(&self, name: &str, tag: &str) -> io::Result<Option<Digest>> {
        match fs::read_to_string(self.repo_dir(name).join("_tags").join(tag)) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a manifest and every tag pointing at it. False if it was not there.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> io::Result<bool> {
        let _g = self.lock();
        let dir = self.repo_dir(name);
        let existed = match fs::remove_file(dir.join("_manifests").join(d.hex())) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let want = d.to_string();
        if let Ok(rd) = fs::read_dir(dir.join("_tags")) {
            for e in rd.flatten() {
                if fs::read_to_string(e.path()).is_ok_and(|s| s.trim() == want) {
                    fs::remove_file(e.path())?;
                }
            }
        }
        Ok(existed)
    }

    pub fn delete_tag(&self, name: &str, tag: &str) -> io::Result<bool> {
        let _g = self.lock();
        match fs::remove_file(self.repo_dir(name).join("_tags").join(tag)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sorted tags of a repository.
    pub fn tags(&self, name: &str) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        match fs::read_dir(self.repo_dir(name).join("_tags")) {
            Ok(rd) => {
                for e in rd {
                    let n = e?.file_name().to_string_lossy().into_owned();
                    if !n.starts_with(".tmp-") {
                        v.push(n);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        v.sort();
        Ok(v)
    }

    /// Sorted repository names.
    pub fn catalog(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.root.join("repos");
        let mut stack = vec![(base.clone(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for e in rd {
                let e = e?;
                if !e.file_type()?.is_dir() {
                    continue;
                }
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('_') || n.starts_with('.') {
                    continue;
                }
                let full = if prefix.is_empty() {
                    n
                } else {
                    format!("{prefix}/{n}")
                };
                if self.repo_exists(&full) {
                    out.push(full.clone());
                }
                stack.push((e.path(), full));
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_commit_and_mismatch() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let u = s.start_upload("a/b").unwrap();
        assert_eq!(s.upload_size("a/b", &u).unwrap(), Some(0));
        assert_eq!(s.upload_size("other", &u).unwrap(), None);
        assert_eq!(s.upload_size("a/b", "../../etc").unwrap(), None);
        s.append_upload(&u, &mut &b"hello "[..]).unwrap();
        assert_eq!(s.append_upload(&u, &mut &b"world"[..]).unwrap(), 11);
        let d = Digest::of(b"hello world");
        assert!(matches!(
            s.commit_upload("a/b", &u, &d).unwrap(),
            Commit::Ok
        ));
        assert!(s.repo_has_blob("a/b", &d));
        assert!(!s.repo_has_blob("c", &d));

        let u = s.start_upload("a/b").unwrap();
        s.append_upload(&u, &mut &b"evil"[..]).unwrap();
        let claimed = Digest::of(b"good");
        assert!(matches!(
            s.commit_upload("a/b", &u, &claimed).unwrap(),
            Commit::Mismatch { .. }
        ));
        assert!(s.open_blob(&claimed).unwrap().is_none());
        assert_eq!(s.upload_size("a/b", &u).unwrap(), None);
    }

    #[test]
    fn manifests_tags_catalog() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let d = s.put_blob_bytes(b"{}").unwrap();
        s.put_manifest("x/y", &d, "application/json", Some("v1"))
            .unwrap();
        s.put_manifest("x/y", &d, "application/json", Some("v2"))
            .unwrap();
        s.put_manifest("x", &d, "application/json", None).unwrap();
        assert_eq!(s.tags("x/y").unwrap(), ["v1", "v2"]);
        assert_eq!(s.catalog().unwrap(), ["x", "x/y"]);
        assert_eq!(s.resolve_tag("x/y", "v1").unwrap(), Some(d.clone()));
        assert!(s.delete_manifest("x/y", &d).unwrap());
        assert!(s.tags("x/y").unwrap().is_empty());
        assert_eq!(s.manifest_media_type("x/y", &d).unwrap(), None);
        assert!(s.manifest_media_type("x", &d).unwrap().is_some());
    }
}
