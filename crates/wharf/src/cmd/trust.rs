//! `wharf trust key generate|sign|inspect|revoke`: typed requests to `wharf_engine::trust`
//! and rendering (docker's `docker trust` command names; JSON by default for `inspect`).

use crate::cli::{Cli, TrustInspectArgs, TrustKeyGenerateArgs, TrustRevokeArgs, TrustSignArgs};
use serde_json::{json, Value};
use wharf_engine::trust::{self, KeyGenerateRequest, RevokeRequest, SignRequest, TrustInfo};

pub fn key_generate(_cli: &Cli, a: &TrustKeyGenerateArgs) -> anyhow::Result<i32> {
    let k = trust::generate_key(&KeyGenerateRequest {
        name: a.name.clone(),
        dir: a.dir.clone(),
    })?;
    eprintln!("Generated ed25519 key with ID {}", k.key_id);
    println!("{}", k.private.display());
    println!("{}", k.public.display());
    Ok(0)
}

pub fn sign(cli: &Cli, a: &TrustSignArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let s = engine.trust_sign(&SignRequest {
        image: a.image.clone(),
        key: a.key.clone(),
    })?;
    println!(
        "Signed {} (manifest {}) with key {}",
        s.reference, s.manifest, s.key_id
    );
    Ok(0)
}

fn to_json(t: &TrustInfo) -> Value {
    let sigs: Vec<Value> = t
        .signatures
        .iter()
        .map(|s| {
            json!({
                "KeyID": s.key_id,
                "Reference": s.reference,
                "Created": s.created,
                "Valid": s.valid,
                "Trusted": s.trusted,
                "KeyFile": s.key_file,
                "Problem": s.problem,
                "File": s.file,
            })
        })
        .collect();
    let mut v = json!({
        "Name": t.name,
        "Id": t.id.to_string(),
        "ManifestDigest": t.manifest.to_string(),
        "TrustedKeys": t.trusted_keys,
        "Signatures": sigs,
    });
    if let Some(e) = &t.trusted_keys_error {
        v["TrustedKeysError"] = json!(e);
    }
    v
}

fn pretty(t: &TrustInfo) {
    println!("\nSignatures for {} (manifest {})\n", t.name, t.manifest);
    if t.signatures.is_empty() {
        println!("No signatures.");
    } else {
        println!("{:<18}{:<10}{:<10}REFERENCE", "KEY ID", "VALID", "TRUSTED");
        for s in &t.signatures {
            let id = s.key_id.as_deref().unwrap_or("-");
            println!(
                "{:<18}{:<10}{:<10}{}",
                id.get(..16).unwrap_or(id),
                if s.valid { "yes" } else { "no" },
                match s.trusted {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                },
                s.reference.as_deref().unwrap_or("-"),
            );
            if let Some(p) = &s.problem {
                println!("  {p}");
            }
        }
    }
    match (&t.trusted_keys, &t.trusted_keys_error) {
        (_, Some(e)) => println!("\nTrusted keys: {e}"),
        (Some(d), None) => println!("\nTrusted keys: {}", d.display()),
        (None, None) => println!("\nTrusted keys: none (no policy)"),
    }
}

pub fn inspect(cli: &Cli, a: &TrustInspectArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let infos = a
        .images
        .iter()
        .map(|i| engine.trust_inspect(i))
        .collect::<Result<Vec<_>, _>>()?;
    if a.pretty {
        infos.iter().for_each(pretty);
    } else {
        let v: Vec<Value> = infos.iter().map(to_json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(0)
}

pub fn revoke(cli: &Cli, a: &TrustRevokeArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let removed = engine.trust_revoke(&RevokeRequest {
        image: a.image.clone(),
        key: a.key.clone(),
    })?;
    if removed.is_empty() {
        println!("No signatures of {} to revoke", a.image);
    }
    for k in removed {
        println!("Revoked the signature of {} by key {k}", a.image);
    }
    Ok(0)
}
