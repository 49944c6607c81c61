//! Store behaviour against the real file system (run as root).
#![allow(clippy::unwrap_used)]

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use wharf_store::{ImportOptions, RemoveEvent, Store, StoreError};
use wharf_types::container::{
    ContainerConfig, ContainerRecord, HostConfig, MountConfig, MountKind,
};
use wharf_types::error::{ErrorKind, HasKind};
use wharf_types::oci::{ImageConfig, Manifest};
use wharf_types::{ContainerId, Digest, ImageRef};

fn rootfs_tar(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("bin/", b"", 0o755);
    add("etc/", b"", 0o755);
    add("etc/marker", marker.as_bytes(), 0o644);
    add("bin/tool", b"#!/bin/sh\necho hi\n", 0o755);
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn opts(r: &str) -> ImportOptions {
    ImportOptions {
        reference: Some(r.parse().unwrap()),
        ..Default::default()
    }
}

fn record(id_byte: u8, name: &str, image: &Digest) -> ContainerRecord {
    ContainerRecord {
        id: ContainerId::from_bytes([id_byte; 32]),
        name: name.to_string(),
        created: "2026-01-01T00:00:00Z".to_string(),
        image: image.clone(),
        config: ContainerConfig {
            hostname: "h".into(),
            image: "x".into(),
            ..Default::default()
        },
        host_config: HostConfig::default(),
        networking_config: Default::default(),
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Every indexed image's blobs exist, hash to their names, and sizes match the manifest.
fn check_consistent(store: &Store) {
    for img in store.images().unwrap() {
        let full = store.resolve_image(img.id.hex()).unwrap();
        let blob =
            |d: &Digest| std::fs::read(store.root().join("blobs/sha256").join(d.hex())).unwrap();
        let man_bytes = blob(&full.manifest_digest);
        assert_eq!(Digest::of(&man_bytes), full.manifest_digest);
        let man: Manifest = serde_json::from_slice(&man_bytes).unwrap();
        assert_eq!(man.config.digest, img.id);
        let cfg = blob(&man.config.digest);
        assert_eq!(Digest::of(&cfg), img.id);
        assert_eq!(cfg.len() as u64, man.config.size);
        for l in &man.layers {
            let (mut r, len) = store.open_layer(&l.digest).unwrap();
            assert_eq!(len, l.size);
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut data).unwrap();
            assert_eq!(Digest::of(&data), l.digest);
            assert_eq!(data.len() as u64, l.size);
        }
        for s in store.image_layers(&img.id).unwrap() {
            assert!(s.is_dir());
        }
    }
}

#[test]
fn import_roundtrip_plain_and_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = rootfs_tar("one");
    let mut o = opts("busybox:latest");
    o.config.cmd = Some(vec!["sh".into()]);
    o.message = Some("hello".into());
    let id = store.import(&tar[..], &o).unwrap();
    let img = store.resolve_image("busybox").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.repo_tags, vec!["busybox:latest"]);
    assert_eq!(
        img.config.rootfs.diff_ids,
        vec![Digest::from_hasher(Sha256::new_with_prefix(&tar))]
    );
    assert_eq!(img.config.os, "linux");
    assert_eq!(
        img.config.architecture,
        wharf_types::oci::host_architecture()
    );
    assert_eq!(img.config.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(img.config.history[0].comment.as_deref(), Some("hello"));
    assert_eq!(img.size, tar.len() as u64);
    // the config blob is exactly what the id names
    let cfg_bytes = std::fs::read(tmp.path().join("blobs/sha256").join(id.hex())).unwrap();
    let cfg: ImageConfig = serde_json::from_slice(&cfg_bytes).unwrap();
    assert_eq!(cfg, img.config);
    check_consistent(&store);
    let layers = store.image_layers(&id).unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(std::fs::read(layers[0].join("etc/marker")).unwrap(), b"one");
    // gzip input: same diff_id, same snapshot
    let id2 = store.import(&gzip(&tar)[..], &opts("busybox:gz")).unwrap();
    let img2 = store.resolve_image("busybox:gz").unwrap();
    assert_eq!(img2.config.rootfs.diff_ids, img.config.rootfs.diff_ids);
    assert_eq!(store.image_layers(&id2).unwrap(), layers);
    assert_eq!(count(&tmp.path().join("snapshots")), 1);
    assert_eq!(count(&tmp.path().join("ingest")), 0);
    // the layer is kept once, as snapshot + tar-split (no second copy as a blob): a
    // deleted snapshot is a clear error, never a silently empty layer
    std::fs::remove_dir_all(&layers[0]).unwrap();
    let err = store.image_layers(&id).unwrap_err().to_string();
    assert!(err.contains("missing from the store"), "{err}");
    let list = store.images().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, id2, "newest first");
}

#[test]
fn bad_input_leaves_store_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = rootfs_tar("x");
    let mut corrupt_gz = gzip(&tar);
    let n = corrupt_gz.len();
    corrupt_gz[n / 2] ^= 0xff;
    corrupt_gz.truncate(n - 4);
    let mut hostile = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..7].copy_from_slice(b"../evil");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    hostile.append(&h, &b"x"[..]).unwrap();
    let hostile = hostile.into_inner().unwrap();
    for (what, input) in [
        ("not a tar", vec![0x42u8; 4096]),
        ("corrupt gzip", corrupt_gz),
        ("hostile", hostile),
        ("empty", vec![]),
        ("truncated tar", tar[..700].to_vec()),
    ] {
        let e = store.import(&input[..], &opts("bad:1")).expect_err(what);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e:?}");
        assert!(store.images().unwrap().is_empty(), "{what}");
        assert_eq!(count(&tmp.path().join("snapshots")), 0, "{what}");
        assert_eq!(count(&tmp.path().join("ingest")), 0, "{what}");
        assert_eq!(count(&tmp.path().join("blobs/sha256")), 0, "{what}");
    }
    assert!(!tmp.path().join("evil").exists());
    assert!(matches!(
        store.resolve_image("bad:1"),
        Err(StoreError::ImageNotFound(_))
    ));
}

#[test]
fn tag_rmi_and_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    store.tag("app:1", &"app:2".parse().unwrap()).unwrap();
    store
        .tag(
            &a.hex()[..8],
            &"registry.local:5000/team/app:v1".parse().unwrap(),
        )
        .unwrap();
    let img = store.resolve_image(a.hex()).unwrap();
    assert_eq!(
        img.repo_tags,
        vec!["app:1", "app:2", "registry.local:5000/team/app:v1"]
    );
    assert!(matches!(
        store.tag("app:1", &ImageRef::parse(&format!("app@{a}")).unwrap()),
        Err(StoreError::TagRequired(_))
    ));
    // by id with several tags: must force
    let e = store.remove_image(&a.to_string(), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(
        e.to_string()
            .contains("referenced in multiple repositories"),
        "{e}"
    );
    // untag while other tags remain
    assert_eq!(
        store.remove_image("app:2", false).unwrap(),
        vec![RemoveEvent::Untagged("app:2".into())]
    );
    assert_eq!(
        store
            .remove_image("registry.local:5000/team/app:v1", false)
            .unwrap(),
        vec![RemoveEvent::Untagged(
            "registry.local:5000/team/app:v1".into()
        )]
    );
    // a container uses it: refused, then force untags but keeps the data
    let rec = record(7, "web", &a);
    store.create_container(&rec).unwrap();
    let e = store.remove_image("app:1", false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to remove repository reference \"app:1\" (must force) - container {} is using its referenced image {}",
            rec.id.short(),
            a.short()
        )
    );
    let e = store.remove_image(a.hex(), false).unwrap_err();
    assert!(
        e.to_string()
            .contains("image is being used by stopped container"),
        "{e}"
    );
    assert_eq!(
        store.remove_image("app:1", true).unwrap(),
        vec![RemoveEvent::Untagged("app:1".into())]
    );
    let kept = store.resolve_image(a.hex()).unwrap();
    assert!(kept.repo_tags.is_empty());
    assert!(store.image_layers(&a).unwrap()[0]
        .join("etc/marker")
        .exists());
    // moving a tag leaves the old image dangling
    let b = store.import(&rootfs_tar("b")[..], &opts("app:1")).unwrap();
    let c = store.import(&rootfs_tar("c")[..], &opts("app:1")).unwrap();
    assert_eq!(store.resolve_image("app:1").unwrap().id, c);
    assert!(store.resolve_image(b.hex()).unwrap().repo_tags.is_empty());
    // delete the dangling one by id: blobs and snapshot go
    let b_layer = store.image_layers(&b).unwrap()[0].clone();
    assert_eq!(
        store.remove_image(&b.hex()[..10], false).unwrap(),
        vec![RemoveEvent::Deleted(b.clone())]
    );
    assert!(!b_layer.exists());
    assert!(!tmp.path().join("blobs/sha256").join(b.hex()).exists());
    check_consistent(&store);
    // container gone: the image can go, and GC leaves only c's 3 blobs and 1 snapshot
    store.remove_container(&rec.id).unwrap();
    assert_eq!(
        store.remove_image(a.hex(), false).unwrap(),
        vec![RemoveEvent::Deleted(a.clone())]
    );
    assert_eq!(
        store.remove_image("app:1", false).unwrap(),
        vec![
            RemoveEvent::Untagged("app:1".into()),
            RemoveEvent::Deleted(c)
        ]
    );
    assert_eq!(count(&tmp.path().join("blobs/sha256")), 0);
    assert_eq!(count(&tmp.path().join("snapshots")), 0);
    assert_eq!(
        store.remove_image("app:1", false).unwrap_err().to_string(),
        "No such image: app:1"
    );
    // an orphan blob (crashed import) is collected
    std::fs::write(
        tmp.path()
            .join("blobs/sha256")
            .join(Digest::of(b"orphan").hex()),
        b"orphan",
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("snapshots/tmp-crashed")).unwrap();
    let r = store.gc().unwrap();
    assert_eq!(r.blobs_removed, vec![Digest::of(b"orphan")]);
    assert_eq!(count(&tmp.path().join("snapshots")), 0);
}

#[test]
fn name_of_a_killed_create_is_reclaimed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    // a create killed after claiming the name and creating the directories, before the record
    let dead = record(7, "web", &img);
    let dead_paths = store.create_container(&dead).unwrap();
    std::fs::remove_file(
        tmp.path()
            .join("meta/containers")
            .join(format!("{}.json", dead.id)),
    )
    .unwrap();
    let live = record(8, "web", &img);
    store.create_container(&live).unwrap();
    assert_eq!(store.container("web").unwrap(), live);
    assert!(
        !dead_paths.dir.exists(),
        "the dead create's directory is dropped"
    );
    // a claim whose container has a record is not stale
    let e = store.create_container(&record(9, "web", &img)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
}

/// `network connect`/`disconnect` replace a record's networks by compare-and-swap: a
/// caller that read an older record writes nothing.
#[test]
fn container_networks_compare_and_swap() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    let rec = record(4, "web", &img);
    store.create_container(&rec).unwrap();
    let mut one = rec.networking_config.clone();
    one.networks = Some(vec!["bridge".into(), "app".into()]);
    let mut other = rec.networking_config.clone();
    other.networks = Some(vec!["bridge".into(), "db".into()]);
    assert!(store
        .set_container_networks(&rec.id, &rec.networking_config, &one)
        .unwrap());
    // the second writer read the record before the first wrote it
    assert!(!store
        .set_container_networks(&rec.id, &rec.networking_config, &other)
        .unwrap());
    let back = store.container("web").unwrap();
    assert_eq!(back.networking_config, one);
    assert_eq!(back.bridge_networks(), ["bridge", "app"]);
    // the rest of the record is as created
    assert_eq!(back.config, rec.config);
    assert_eq!(back.host_config, rec.host_config);
    let gone = ContainerId::from_bytes([5; 32]);
    assert_eq!(
        store
            .set_container_networks(&gone, &one, &other)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

/// A name claim is not fsynced (only the names directory is, before the record): a power
/// cut can leave it empty. Such a claim still stands for the record that has its name, and
/// one that no record names does not block the name.
#[test]
fn a_claim_a_crash_emptied_still_names_its_container() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    let names = tmp.path().join("meta/names");
    let web = record(1, "web", &img);
    store.create_container(&web).unwrap();
    assert_eq!(
        std::fs::read_to_string(names.join("web")).unwrap(),
        web.id.as_str()
    );
    std::fs::write(names.join("web"), b"").unwrap();
    assert_eq!(store.container("web").unwrap(), web, "found by name");
    let e = store.create_container(&record(2, "web", &img)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains(web.id.as_str()), "{e}");
    store.remove_container(&web.id).unwrap();
    assert!(!names.join("web").exists(), "its claim goes with it");
    // an emptied claim without a record (the record never reached the disk) is stale
    std::fs::write(names.join("db"), b"").unwrap();
    assert_eq!(
        store.container("db").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let db = record(3, "db", &img);
    store.create_container(&db).unwrap();
    assert_eq!(store.container("db").unwrap(), db);
    // and the reaper drops one too
    std::fs::write(names.join("gone"), b"\0\0").unwrap();
    store.reap_stale_temps().unwrap();
    assert!(!names.join("gone").exists());
    assert!(names.join("db").exists());
}

#[test]
fn containers_names_state() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    let r1 = record(1, "web", &img);
    let paths = store.create_container(&r1).unwrap();
    for p in [&paths.upper, &paths.work, &paths.merged] {
        assert!(p.is_dir());
    }
    assert_eq!(paths, store.container_paths(&r1.id));
    let r2 = record(2, "web", &img);
    let e = store.create_container(&r2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        e.to_string(),
        format!("Conflict. The container name \"/web\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.", r1.id)
    );
    assert!(!store.container_paths(&r2.id).dir.exists());
    let mut r3 = record(3, "db", &img);
    r3.image = Digest::of(b"nope");
    assert_eq!(
        store.create_container(&r3).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let r3 = record(0x03, "db", &img);
    store.create_container(&r3).unwrap();
    assert_eq!(store.container("web").unwrap(), r1);
    assert_eq!(store.container("/web").unwrap(), r1);
    assert_eq!(store.container(r1.id.as_str()).unwrap(), r1);
    assert_eq!(store.container("0101").unwrap(), r1);
    assert_eq!(store.container("03").unwrap(), r3);
    assert!(matches!(
        store.container("0"),
        Err(StoreError::Ambiguous(_))
    ));
    assert_eq!(
        store.container("nope").unwrap_err().to_string(),
        "No such container: nope"
    );
    assert_eq!(store.containers().unwrap().len(), 2);
    // state
    assert_eq!(
        store
            .read_container_state::<BTreeMap<String, u32>>(&r1.id)
            .unwrap(),
        None
    );
    let st: BTreeMap<String, u32> = [("pid".to_string(), 42)].into();
    store.write_container_state(&r1.id, &st).unwrap();
    assert_eq!(store.read_container_state(&r1.id).unwrap(), Some(st));
    // a mounted rootfs blocks removal
    nix::mount::mount(
        Some("tmpfs"),
        &paths.merged,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    std::fs::write(paths.merged.join("precious"), b"x").unwrap();
    let e = store.remove_container(&r1.id).unwrap_err();
    nix::mount::umount(&paths.merged).unwrap();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(store.container("web").is_ok());
    store.remove_container(&r1.id).unwrap();
    assert!(!paths.dir.exists());
    assert!(matches!(
        store.container("web"),
        Err(StoreError::ContainerNotFound(_))
    ));
    assert!(matches!(
        store.remove_container(&r1.id),
        Err(StoreError::ContainerNotFound(_))
    ));
    // name reusable; partially-created container (dir only) removable
    store.create_container(&r2).unwrap();
    std::fs::remove_file(
        tmp.path()
            .join("meta/containers")
            .join(format!("{}.json", r3.id)),
    )
    .unwrap();
    store.remove_container(&r3.id).unwrap();
    assert!(!store.container_paths(&r3.id).dir.exists());
    assert!(matches!(
        store.create_container(&record(4, "x", &img)),
        Err(StoreError::InvalidContainerName(_))
    ));
}

#[test]
fn volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let labels: BTreeMap<String, String> = [("a".to_string(), "b".to_string())].into();
    let v = store.create_volume(Some("data"), labels.clone()).unwrap();
    assert_eq!(v.mountpoint, tmp.path().join("volumes/data/_data"));
    assert!(v.mountpoint.is_dir());
    assert_eq!(v.labels, labels);
    std::fs::write(v.mountpoint.join("f"), b"x").unwrap();
    let again = store.create_volume(Some("data"), BTreeMap::new()).unwrap();
    assert_eq!(again, v);
    let anon = store.create_volume(None, BTreeMap::new()).unwrap();
    assert_eq!(anon.name.len(), 64);
    for bad in ["-x", "a", "a/b", "../x", "x y"] {
        assert_eq!(
            store
                .create_volume(Some(bad), BTreeMap::new())
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument,
            "{bad}"
        );
    }
    assert_eq!(store.volumes().unwrap().len(), 2);
    assert_eq!(store.volume("data").unwrap(), v);
    assert_eq!(
        store.volume("zzz").unwrap_err().to_string(),
        "get zzz: no such volume"
    );
    // in use by a container record
    let img = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    let mut rec = record(9, "user", &img);
    rec.host_config.mounts.push(MountConfig {
        kind: MountKind::Volume,
        source: "data".into(),
        target: "/data".into(),
        read_only: false,
        options: String::new(),
        create_mountpoint: true,
    });
    store.create_container(&rec).unwrap();
    let e = store.remove_volume("data", true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!("remove data: volume is in use - [{}]", rec.id)
    );
    store.remove_container(&rec.id).unwrap();
    store.remove_volume("data", false).unwrap();
    assert!(!tmp.path().join("volumes/data").exists());
    assert_eq!(
        store.remove_volume("data", false).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    store.remove_volume("data", true).unwrap();
    assert_eq!(store.volumes().unwrap().len(), 1);
}

#[test]
fn schema_version_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    Store::open(tmp.path()).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("wharf.json")).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1);
    Store::open(tmp.path()).unwrap();
    std::fs::write(tmp.path().join("wharf.json"), br#"{"schema_version": 2}"#).unwrap();
    let e = Store::open(tmp.path()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(e.to_string().contains("schema version 2"), "{e}");
    std::fs::write(tmp.path().join("wharf.json"), b"{garbage").unwrap();
    assert_eq!(
        Store::open(tmp.path()).unwrap_err().kind(),
        ErrorKind::Internal
    );
}

#[test]
fn concurrent_imports_tags_and_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    Store::open(&root).unwrap();
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let store = Store::open(&root).unwrap();
                // half the threads share a layer (same tar) to race snapshot commits
                let tar = rootfs_tar(&format!("m{}", i % 10));
                let id = store
                    .import(&tar[..], &opts(&format!("img:{}", i % 5)))
                    .unwrap();
                store
                    .tag(id.hex(), &format!("t{i}:x").parse().unwrap())
                    .unwrap();
                if i % 4 == 0 {
                    // may race with other threads moving tags; any outcome but corruption is fine
                    let _ = store.remove_image(&format!("t{i}:x"), false);
                    store.gc().unwrap();
                }
                id
            })
        })
        .collect();
    let ids: Vec<Digest> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let store = Store::open(&root).unwrap();
    check_consistent(&store);
    for i in 0..5 {
        assert!(store.resolve_image(&format!("img:{i}")).is_ok());
    }
    for (i, id) in ids.iter().enumerate() {
        if i % 4 != 0 {
            assert_eq!(store.resolve_image(&format!("t{i}:x")).unwrap().id, *id);
        }
    }
    // nothing left over outside indexed images after a final GC
    store.gc().unwrap();
    assert_eq!(count(&root.join("ingest")), 0);
    let n_images = store.images().unwrap().len();
    assert_eq!(count(&root.join("blobs/sha256")), n_images * 2);
    assert_eq!(
        count(&root.join("tarsplit")),
        count(&root.join("snapshots"))
    );
}

/// A removal killed between the rename and the end of the delete leaves
/// `containers/.removing-*`; the next removal (or the stale-temporary reaper) deletes it.
#[test]
fn a_killed_removal_is_finished_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    let rec = record(7, "seven", &img);
    store.create_container(&rec).unwrap();
    let trash = tmp.path().join("containers/.removing-deadbeef-0123");
    std::fs::create_dir_all(trash.join("upper/etc")).unwrap();
    std::fs::write(trash.join("upper/etc/file"), b"x").unwrap();
    store.remove_container(&rec.id).unwrap();
    assert!(!trash.exists(), "the dead remover's trash is gone");
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A create killed half-way (directory made, name claimed, record still a temp file) leaves
/// nothing `ps` shows; the stale-temporary reaper removes it all, and the name is free.
#[test]
fn a_killed_create_is_swept_by_the_reaper() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = store.import(&rootfs_tar("a")[..], &opts("app:1")).unwrap();
    let live = record(5, "live", &img);
    store.create_container(&live).unwrap();
    let dead = record(6, "dead", &img);
    let dir = tmp.path().join("containers").join(dead.id.as_str());
    std::fs::create_dir_all(dir.join("upper")).unwrap();
    std::fs::create_dir_all(dir.join("merged")).unwrap();
    let meta = tmp.path().join("meta");
    std::fs::write(
        meta.join(format!("containers/.{}.json.tmp-1", dead.id)),
        b"{",
    )
    .unwrap();
    std::fs::write(meta.join("names/.tmp-2"), dead.id.as_str()).unwrap();
    std::fs::write(meta.join("names/dead"), dead.id.as_str()).unwrap();
    assert!(store.reap_stale_temps().unwrap() > 0 || !dir.exists());
    assert!(!dir.exists(), "orphan directory swept");
    for f in ["containers", "names"] {
        let mut left: Vec<String> = std::fs::read_dir(meta.join(f))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let want: Vec<String> = match f {
            "containers" => vec![format!("{}.json", live.id)],
            _ => vec!["live".to_string()],
        };
        assert_eq!(left, want, "meta/{f}");
    }
    assert!(tmp
        .path()
        .join("containers")
        .join(live.id.as_str())
        .is_dir());
    store.create_container(&record(8, "dead", &img)).unwrap();
}

/// A metadata write killed between its temp file and the rename leaves `meta/.*.tmp-*`; the
/// reaper removes it (writes of `meta/` happen under the lock the reaper holds).
#[test]
fn killed_metadata_writes_are_reaped() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let t = tmp.path().join("meta/.images.json.tmp-1-0-0");
    std::fs::write(&t, b"{\"half").unwrap();
    assert!(store.reap_stale_temps().unwrap() >= 1);
    assert!(!t.exists());
    assert!(tmp.path().join("meta/images.json").exists() || store.images().is_ok());
}

/// commit_layer: a layer appended through import's path (consistent blobs, base layers
/// shared, history grown); an empty diff is docker's empty layer (history only); a broken
/// layer leaves no image, tag or snapshot behind.
#[test]
fn commit_layer_appends_or_records_an_empty_layer() {
    use wharf_store::{CommitOptions, EMPTY_LAYER_DIFF_ID};
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let base = store.import(&rootfs_tar("a")[..], &opts("base:1")).unwrap();
    let snapshots = || count(&tmp.path().join("snapshots"));
    let before = snapshots();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(3);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/new", &b"new"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let o = CommitOptions {
        reference: Some("snap:1".parse().unwrap()),
        author: Some("Ann".into()),
        comment: Some("first".into()),
        created_by: "sh -c touch".into(),
        ..Default::default()
    };
    let id = store.commit_layer(&base, &layer[..], &o).unwrap();
    check_consistent(&store);
    let img = store.resolve_image("snap:1").unwrap();
    assert_eq!(img.id, id);
    let base_img = store.resolve_image("base:1").unwrap();
    assert_eq!(img.config.rootfs.diff_ids.len(), 2);
    assert_eq!(
        img.config.rootfs.diff_ids[0],
        base_img.config.rootfs.diff_ids[0]
    );
    assert_eq!(img.config.rootfs.diff_ids[1], Digest::of(&layer));
    assert_eq!(img.config.author.as_deref(), Some("Ann"));
    let h = img.config.history.last().unwrap();
    assert_eq!(
        (h.created_by.as_deref(), h.comment.as_deref(), h.empty_layer),
        (Some("sh -c touch"), Some("first"), false)
    );
    assert_eq!(store.image_layers(&id).unwrap().len(), 2);
    assert_eq!(snapshots(), before + 1);
    let hist = store.history(&id).unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0].image.as_ref(), Some(&id));
    assert_eq!(hist[0].size, layer.len() as u64);
    assert_eq!(hist[1].image.as_ref(), Some(&base), "the base is named");

    // an empty diff: no layer, a history entry marked empty_layer
    let empty = tar::Builder::new(Vec::new()).into_inner().unwrap();
    assert_eq!(Digest::of(&empty).to_string(), EMPTY_LAYER_DIFF_ID);
    let e = store
        .commit_layer(&id, &empty[..], &CommitOptions::default())
        .unwrap();
    let img = store.resolve_image(e.hex()).unwrap();
    assert_eq!(img.config.rootfs.diff_ids.len(), 2);
    assert!(img.config.history.last().unwrap().empty_layer);
    assert_eq!(store.history(&e).unwrap()[0].size, 0);

    // a broken layer: nothing new
    let images = store.images().unwrap().len();
    let snaps = snapshots();
    let o = CommitOptions {
        reference: Some("broken:1".parse().unwrap()),
        ..Default::default()
    };
    let mut bad = layer.clone();
    bad[0] = b'/';
    bad[1] = b'.';
    bad[2] = b'.';
    assert!(store.commit_layer(&id, &bad[..], &o).is_err());
    assert_eq!(store.images().unwrap().len(), images);
    assert_eq!(snapshots(), snaps);
    assert!(store.resolve_image("broken:1").is_err());
    check_consistent(&store);
}
