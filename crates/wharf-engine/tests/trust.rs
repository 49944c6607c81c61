//! Image trust through the engine's typed requests: keys, sign, inspect, revoke, and the
//! policy's `registries.require_signed` decision as a front end asks for it
//! (`policy_explain`), with the error kinds a second front end maps to its statuses.

use std::path::Path;
use wharf_engine::create::CreateRequest;
use wharf_engine::policy::Loaded;
use wharf_engine::trust::{KeyGenerateRequest, RevokeRequest, SignRequest};
use wharf_engine::{Engine, EngineOptions};
use wharf_types::error::{ErrorKind, HasKind};

fn engine(dir: &Path) -> Engine {
    Engine::open(EngineOptions {
        root: dir.join("root"),
        run_root: dir.join("run"),
        debug: false,
    })
    .expect("open engine")
}

/// Imports a one-file image as `name` (through the store: image services are not this
/// test's subject).
fn import(dir: &Path, name: &str, content: &str) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "hello", content.as_bytes())
        .expect("tar");
    let data = b.into_inner().expect("tar");
    let store = wharf_store::Store::open(&dir.join("root")).expect("store");
    store
        .import(
            &data[..],
            &wharf_store::ImportOptions {
                reference: Some(wharf_types::ImageRef::parse(name).expect("name")),
                config: Default::default(),
                message: None,
            },
        )
        .expect("import");
}

fn refusals(e: &Engine, image: &str) -> Vec<(String, String)> {
    e.policy_explain(&CreateRequest {
        image: image.into(),
        args: vec!["true".into()],
        ..Default::default()
    })
    .expect("explain")
    .refusals
}

#[test]
fn sign_inspect_revoke_and_the_rule() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path();
    import(dir, "app:1", "one");
    import(dir, "app:2", "two");
    let keys = dir.join("trusted");
    std::fs::create_dir(&keys).expect("mkdir");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[registries]\nrequire_signed = true\ntrusted_keys = \"{}\"\n",
            keys.display()
        ),
    )
    .expect("policy");
    let mut e = engine(dir);
    e.set_policy(Loaded::load(&policy));

    let gen = |name: &str| {
        wharf_engine::trust::generate_key(&KeyGenerateRequest {
            name: name.into(),
            dir: dir.to_path_buf(),
        })
        .expect("generate")
    };
    let ops = gen("ops");
    let other = gen("other");
    std::fs::copy(&ops.public, keys.join("ops.pub")).expect("copy");
    // no overwrite, no path in a name
    assert!(wharf_engine::trust::generate_key(&KeyGenerateRequest {
        name: "ops".into(),
        dir: dir.to_path_buf(),
    })
    .is_err());
    let err = wharf_engine::trust::generate_key(&KeyGenerateRequest {
        name: "../x".into(),
        dir: dir.to_path_buf(),
    })
    .expect_err("a path as a key name");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    let r = refusals(&e, "app:1");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, "registries.require_signed");
    assert!(r[0].1.contains("it has no signature"), "{r:?}");

    let sign = |image: &str, key: &Path| {
        e.trust_sign(&SignRequest {
            image: image.into(),
            key: key.to_path_buf(),
        })
    };
    let s = sign("app:1", &ops.private).expect("sign");
    assert_eq!(s.reference, "docker.io/library/app:1");
    assert_eq!(s.key_id, ops.key_id);
    sign("app:1", &other.private).expect("sign");
    assert!(refusals(&e, "app:1").is_empty());
    // the signature is over app:1's manifest: app:2 is still unsigned
    assert_eq!(refusals(&e, "app:2").len(), 1);

    let info = e.trust_inspect("app:1").expect("inspect");
    assert_eq!(info.manifest, s.manifest);
    assert_eq!(info.trusted_keys.as_deref(), Some(keys.as_path()));
    assert_eq!(info.signatures.len(), 2);
    let by_ops = info
        .signatures
        .iter()
        .find(|s| s.key_id.as_deref() == Some(ops.key_id.as_str()))
        .expect("ops signed");
    assert_eq!((by_ops.valid, by_ops.trusted), (true, Some(true)));
    let by_other = info
        .signatures
        .iter()
        .find(|s| s.key_id.as_deref() == Some(other.key_id.as_str()))
        .expect("other signed");
    assert_eq!((by_other.valid, by_other.trusted), (true, Some(false)));

    // revoke by key id prefix: only the untrusted signature is left
    let removed = e
        .trust_revoke(&RevokeRequest {
            image: "app:1".into(),
            key: Some(ops.key_id[..10].to_string()),
        })
        .expect("revoke");
    assert_eq!(removed, std::slice::from_ref(&ops.key_id));
    let r = refusals(&e, "app:1");
    assert!(r[0].1.contains("is not trusted"), "{r:?}");

    // error kinds
    let err = sign("nosuch:1", &ops.private).expect_err("no image");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = sign("app:1", &ops.public).expect_err("a public key cannot sign");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("ops.pub"), "{err}");
    let err = e
        .trust_revoke(&RevokeRequest {
            image: "app:1".into(),
            key: Some(ops.key_id.clone()),
        })
        .expect_err("already revoked");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// What `require_signed` adds to a decision: the median of 100 explains with the rule minus
/// without it (key directory read, signature read, one ed25519 verification). Printed; held
/// to the policy's 0.5 ms budget in an optimized build (a debug build's ed25519 is ~100x
/// slower unoptimized, hence the dev-profile override in the workspace Cargo.toml).
#[test]
fn signature_check_cost() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path();
    import(dir, "app:1", "one");
    let keys = dir.join("trusted");
    std::fs::create_dir(&keys).expect("mkdir");
    let k = wharf_engine::trust::generate_key(&KeyGenerateRequest {
        name: "ops".into(),
        dir: dir.to_path_buf(),
    })
    .expect("generate");
    std::fs::copy(&k.public, keys.join("ops.pub")).expect("copy");
    let mut e = engine(dir);
    e.trust_sign(&SignRequest {
        image: "app:1".into(),
        key: k.private.clone(),
    })
    .expect("sign");
    let median = |e: &Engine| {
        let mut v: Vec<std::time::Duration> = (0..100)
            .map(|_| {
                let t = std::time::Instant::now();
                assert!(refusals(e, "app:1").is_empty());
                t.elapsed()
            })
            .collect();
        v.sort();
        v[v.len() / 2]
    };
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[run]\nprivileged = false\n").expect("policy");
    e.set_policy(Loaded::load(&policy));
    let without = median(&e);
    std::fs::write(
        &policy,
        format!(
            "[registries]\nrequire_signed = true\ntrusted_keys = \"{}\"\n",
            keys.display()
        ),
    )
    .expect("policy");
    e.set_policy(Loaded::load(&policy));
    let with = median(&e);
    let added = with.saturating_sub(without);
    eprintln!("require_signed adds {added:?} (median {with:?} vs {without:?})");
    // debug builds optimize the ed25519 crates too (workspace Cargo.toml), with room for a
    // loaded test machine
    let budget = if cfg!(debug_assertions) { 5000 } else { 500 };
    assert!(added.as_micros() < budget, "require_signed adds {added:?}");
}
