//! The bundle service through typed requests: inventory, create (signed, split, incremental
//! against a target's inventory), verify and apply into another store, and the host's
//! signature settings (`bundle-require-signature`, `bundle-trusted-keys` in `$WHARF_CONFIG`)
//! decided by the engine: refusals leave the target's store unchanged.
//!
//! One test function: `$WHARF_CONFIG` is process-wide.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use wharf_engine::bundles::{
    generate_key, BundleCreateRequest, BundleServiceError, BundleVerifyRequest,
};
use wharf_engine::{Engine, EngineOptions};
use wharf_types::error::{ErrorKind, HasKind};

fn engine_at(root: &Path) -> Engine {
    Engine::open(EngineOptions {
        root: root.join("root"),
        run_root: root.join("run"),
        debug: false,
    })
    .unwrap()
}

/// An engine whose store holds `app:1`: one layer with a 20 KiB file.
fn source(dir: &Path) -> Engine {
    std::fs::create_dir_all(dir).unwrap();
    let tar = dir.join("app.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let data: Vec<u8> = (0..20_480u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "data.bin", &data[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    let store = wharf_store::Store::open(&dir.join("root")).unwrap();
    store
        .import(
            std::fs::File::open(&tar).unwrap(),
            &wharf_store::ImportOptions {
                reference: Some(wharf_types::ImageRef::parse("app:1").unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
    drop(store);
    engine_at(dir)
}

fn no_progress() -> impl FnMut(&str, u64, u64) {
    |_: &str, _: u64, _: u64| {}
}

fn tags(e: &Engine) -> Vec<String> {
    e.inventory()
        .unwrap()
        .images
        .into_iter()
        .flat_map(|i| i.tags)
        .collect()
}

fn verify_req(parts: &[PathBuf], key: Option<&Path>) -> BundleVerifyRequest {
    BundleVerifyRequest {
        parts: parts.to_vec(),
        key: key.map(Path::to_path_buf),
    }
}

fn config(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::env::set_var("WHARF_CONFIG", path);
}

#[test]
fn create_verify_apply_and_the_hosts_signature_settings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("daemon.json");
    config(&cfg, "{}");
    let src = source(&d.join("src"));
    let inv = src.inventory().unwrap();
    assert_eq!(inv.images.len(), 1);
    assert_eq!(inv.images[0].tags, ["app:1"]);
    let (private, public) = generate_key(&d.join("release")).unwrap();
    let (_, other_public) = generate_key(&d.join("other")).unwrap();

    // signed, split into 4 KiB parts
    std::fs::create_dir(d.join("out")).unwrap();
    let rep = src
        .create_bundle(
            &BundleCreateRequest {
                images: vec!["app:1".into()],
                output: d.join("out/b"),
                split: Some("4k".into()),
                sign: Some(private.clone()),
                ..Default::default()
            },
            &mut no_progress(),
        )
        .unwrap();
    assert!(rep.part_paths.len() > 1, "{:?}", rep.part_paths);
    let sig = rep.signature_path.clone().unwrap();
    let mut parts = rep.part_paths.clone();
    parts.push(rep.index_path.clone());
    parts.reverse(); // any order

    // a bad split size is the caller's mistake
    let e = src
        .create_bundle(
            &BundleCreateRequest {
                images: vec!["app:1".into()],
                output: d.join("out/c"),
                split: Some("12q".into()),
                ..Default::default()
            },
            &mut no_progress(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");

    let tgt = engine_at(&d.join("tgt"));
    // verify with the right key; with another key refused
    let v = tgt
        .verify_bundle(&verify_req(&parts, Some(&public)), &mut no_progress())
        .unwrap();
    assert_eq!(v.signed_by.as_deref(), Some(public.as_path()));
    let e = tgt
        .verify_bundle(&verify_req(&parts, Some(&other_public)), &mut no_progress())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // the host requires signatures by a key it trusts: other.pub only → refused, unchanged
    // (daemon.json is read once, when the engine opens)
    config(
        &cfg,
        &format!(
            r#"{{"bundle-require-signature": true, "bundle-trusted-keys": [{:?}]}}"#,
            other_public
        ),
    );
    let tgt = engine_at(&d.join("tgt"));
    let e = tgt
        .apply_bundle(&verify_req(&parts, None), &mut no_progress())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(tags(&tgt).is_empty());
    // an unsigned bundle is refused too
    let unsigned_sig = d.join("sig.away");
    std::fs::rename(&sig, &unsigned_sig).unwrap();
    let e = tgt
        .apply_bundle(&verify_req(&parts, Some(&public)), &mut no_progress())
        .unwrap_err();
    assert!(
        matches!(
            e,
            BundleServiceError::Bundle(wharf_engine::bundles::BundleError::Unsigned { .. })
        ),
        "{e:?}"
    );
    assert!(tags(&tgt).is_empty());
    std::fs::rename(&unsigned_sig, &sig).unwrap();
    // a config the engine cannot read is refused before anything: the engine does not open
    config(&cfg, r#"{"bundle-require-signature": "yes"}"#);
    let e = Engine::open(EngineOptions {
        root: d.join("tgt").join("root"),
        run_root: d.join("tgt").join("run"),
        debug: false,
    })
    .err()
    .expect("a malformed daemon.json refuses the engine");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains(&cfg.display().to_string()), "{e}");

    // trusted: applied, idempotent
    config(
        &cfg,
        &format!(
            r#"{{"bundle-require-signature": true, "bundle-trusted-keys": [{other_public:?}, {public:?}]}}"#
        ),
    );
    let tgt = engine_at(&d.join("tgt"));
    let mut phases = Vec::new();
    let applied = tgt
        .apply_bundle(&verify_req(&parts, None), &mut |p: &str, _, _| {
            if phases.last().map(String::as_str) != Some(p) {
                phases.push(p.to_string());
            }
        })
        .unwrap();
    assert!(!phases.is_empty());
    assert_eq!(
        applied.verified.signed_by.as_deref(),
        Some(public.as_path())
    );
    assert_eq!(applied.loaded.len(), 1);
    assert_eq!(applied.loaded[0].tags, ["app:1"]);
    assert_eq!(applied.loaded[0].id, inv.images[0].id);
    assert_eq!(tags(&tgt), ["app:1"]);
    tgt.apply_bundle(&verify_req(&parts, None), &mut no_progress())
        .unwrap();
    assert_eq!(tgt.inventory().unwrap().images, inv.images);

    // incremental against the target's inventory: nothing to carry
    config(&cfg, "{}");
    let have = d.join("tgt.inventory.json");
    std::fs::write(
        &have,
        serde_json::to_vec(&tgt.inventory().unwrap()).unwrap(),
    )
    .unwrap();
    let inc = src
        .create_bundle(
            &BundleCreateRequest {
                images: vec!["app:1".into()],
                output: d.join("out/inc"),
                have: Some(have),
                ..Default::default()
            },
            &mut no_progress(),
        )
        .unwrap();
    assert_eq!(inc.carried_layer_bytes, 0);
    assert!(inc.skipped_layer_bytes > 0);
    assert!(inc.signature_path.is_none());
    std::env::remove_var("WHARF_CONFIG");
}
