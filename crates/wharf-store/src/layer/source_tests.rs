//! Tar-split round trips: the reassembled layer must be byte-identical to what was unpacked.

use super::*;
use crate::index::{ImageEntry, LayerEntry};
use sha2::{Digest as _, Sha256};

fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A layer with directories, files (one large, one empty), a long PAX name, a symlink, a
/// hardlink, an xattr, a whiteout, and trailing garbage after the end-of-archive blocks.
fn rich_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append(&header("etc/", tar::EntryType::Directory, 0), io::empty())
        .unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    b.append(
        &header("etc/big", tar::EntryType::Regular, big.len() as u64),
        &big[..],
    )
    .unwrap();
    b.append(
        &header("etc/empty", tar::EntryType::Regular, 0),
        io::empty(),
    )
    .unwrap();
    let long = format!("etc/{}/file", "d".repeat(150));
    let mut h = header("x", tar::EntryType::Regular, 5);
    b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
    let mut h = header("etc/link", tar::EntryType::Symlink, 0);
    h.set_link_name("big").unwrap();
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
    let mut h = header("etc/hard", tar::EntryType::Link, 0);
    h.set_link_name("etc/big").unwrap();
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.k", &b"v"[..])])
        .unwrap();
    b.append(&header("etc/xa", tar::EntryType::Regular, 2), &b"xa"[..])
        .unwrap();
    b.append(
        &header("usr/.wh.gone", tar::EntryType::Regular, 0),
        io::empty(),
    )
    .unwrap();
    let mut v = b.into_inner().unwrap();
    v.extend_from_slice(&[0u8; 3000]);
    v.extend_from_slice(b"trailing");
    v
}

/// Records `tar`, commits it under a fake image so `open_layer` knows its size, and reads
/// the layer back.
fn round_trip(store: &Store, tar: &[u8]) -> (Digest, Vec<u8>) {
    let diff = Digest::of(tar);
    let rec = store.unpack_recorded(tar).unwrap();
    store.commit_recorded(rec, &diff).unwrap();
    let _meta = crate::lock::Lock::exclusive(&store.meta_lock).unwrap();
    let mut idx = Index::load(&store.images_json).unwrap();
    idx.images.insert(
        diff.hex().to_string(),
        ImageEntry {
            manifest: diff.clone(),
            config: diff.clone(),
            layers: vec![LayerEntry {
                blob: diff.clone(),
                blob_size: tar.len() as u64,
                media_type: wharf_types::oci::MEDIA_OCI_LAYER.to_string(),
                diff_id: diff.clone(),
                size: tar.len() as u64,
            }],
            created: String::new(),
            repo_digests: vec![],
        },
    );
    idx.save(&store.images_json).unwrap();
    assert!(store.has_layer(&diff));
    let (mut r, len) = store.open_layer(&diff).unwrap();
    assert_eq!(len, tar.len() as u64);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    (diff, out)
}

#[test]
fn reassembles_byte_identical_from_the_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let tar = rich_layer();
    let (diff, out) = round_trip(&store, &tar);
    assert!(out == tar, "reassembled layer differs");
    // kept as snapshot + record, not as a second full copy
    assert!(store.tarsplit_path(&diff).is_file());
    assert!(!blob_path(&store.blobs, &diff).exists());
    let rec_len = std::fs::metadata(store.tarsplit_path(&diff)).unwrap().len();
    assert!(rec_len < 4096, "record is {rec_len} bytes");
    let snap = store.snapshots.join(diff.hex());
    assert_eq!(std::fs::read(snap.join("etc/xa")).unwrap(), b"xa");
}

#[test]
fn a_changed_snapshot_file_is_a_read_error_not_a_different_layer() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let tar = rich_layer();
    let (diff, _) = round_trip(&store, &tar);
    let f = store.snapshots.join(diff.hex()).join("etc/xa");
    // same length, different content: only the digest check can notice
    std::fs::write(&f, b"XA").unwrap();
    let (mut r, _) = store.open_layer(&diff).unwrap();
    let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
    // different length: noticed when the file is opened
    std::fs::write(&f, b"longer").unwrap();
    let (mut r, _) = store.open_layer(&diff).unwrap();
    let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
}

#[test]
fn a_layer_that_rewrites_itself_is_kept_raw() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&header("a", tar::EntryType::Regular, 5), &b"first"[..])
        .unwrap();
    b.append(&header("d/f", tar::EntryType::Regular, 3), &b"in-d"[..3])
        .unwrap();
    b.append(&header("a", tar::EntryType::Regular, 6), &b"second"[..])
        .unwrap();
    b.append(&header("d", tar::EntryType::Regular, 4), &b"file"[..])
        .unwrap();
    b.append(&header("b", tar::EntryType::Regular, 2), &b"bb"[..])
        .unwrap();
    let tar = b.into_inner().unwrap();
    let (diff, out) = round_trip(&store, &tar);
    assert!(out == tar, "reassembled layer differs");
    assert!(blob_path(&store.blobs, &diff).is_file());
    assert!(!store.tarsplit_path(&diff).exists());
    let snap = store.snapshots.join(diff.hex());
    assert_eq!(std::fs::read(snap.join("a")).unwrap(), b"second");
    assert_eq!(std::fs::read(snap.join("d")).unwrap(), b"file");
    let mut h = Sha256::new();
    h.update(&out);
    assert_eq!(Digest::from_hasher(h), diff);
}

#[test]
fn gc_removes_records_of_unused_layers() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let (diff, _) = round_trip(&store, &rich_layer());
    {
        let _meta = crate::lock::Lock::exclusive(&store.meta_lock).unwrap();
        let mut idx = Index::load(&store.images_json).unwrap();
        idx.images.clear();
        idx.save(&store.images_json).unwrap();
    }
    store.gc().unwrap();
    assert!(!store.tarsplit_path(&diff).exists());
    assert!(!store.snapshots.join(diff.hex()).exists());
    assert!(!store.has_layer(&diff));
}
