//! `inventory`, `bundle create|verify|apply`, `key generate`: thin CLI over
//! `wharf_store::bundle` (format and verification live there). This module owns the host
//! policy read from wharf's config file (`/etc/wharf/daemon.json`, or `$WHARF_CONFIG`):
//! `"bundle-require-signature": true` and `"bundle-trusted-keys": ["/etc/wharf/keys/x.pub"]`,
//! and progress rendering on stderr (a bar on a terminal, plain lines otherwise).

use crate::cli::{BundleCreateArgs, BundleVerifyArgs, Cli, InventoryArgs, KeyGenerateArgs};
use anyhow::{bail, Context};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use wharf_store::bundle::{
    generate_key, parse_size, read_inventory, read_signing_key, read_verifying_key, CreateOptions,
    VerifyPolicy, VerifyReport,
};

const DEFAULT_CONFIG: &str = "/etc/wharf/daemon.json";

/// Renders (phase, done, total) progress on stderr.
pub(crate) struct Bar {
    tty: bool,
    phase: String,
    last: i64,
}

impl Bar {
    pub(crate) fn new() -> Bar {
        Bar {
            tty: std::io::stderr().is_terminal(),
            phase: String::new(),
            last: -1,
        }
    }

    /// Whether stderr is a terminal (a bar is drawn in place).
    pub(crate) fn is_tty(&self) -> bool {
        self.tty
    }

    pub(crate) fn update(&mut self, phase: &str, done: u64, total: u64) {
        if phase != self.phase {
            self.finish();
            self.phase = phase.to_string();
            self.last = -1;
        }
        let pct = (done.saturating_mul(100))
            .checked_div(total)
            .unwrap_or(100)
            .min(100) as i64;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut e = std::io::stderr().lock();
        if self.tty {
            if pct != self.last {
                let filled = (pct / 4) as usize;
                let _ = write!(
                    e,
                    "\r{phase:<10} [{}{}] {pct:>3}% {:.1}/{:.1} MiB",
                    "#".repeat(filled),
                    " ".repeat(25 - filled.min(25)),
                    mib(done),
                    mib(total)
                );
                self.last = pct;
            }
        } else if pct / 10 != self.last / 10 || self.last < 0 {
            let _ = writeln!(
                e,
                "{phase}: {pct}% ({:.1}/{:.1} MiB)",
                mib(done),
                mib(total)
            );
            self.last = pct;
        }
    }

    pub(crate) fn finish(&mut self) {
        if self.tty && self.last >= 0 {
            eprintln!();
        }
        self.last = -1;
    }
}

fn write_out(path: Option<&Path>, data: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(p) => wharf_sys::atomic::write_file(p, data, 0o644)
            .with_context(|| format!("writing {}", p.display())),
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(data)
                .and_then(|_| o.flush())
                .context("writing to stdout")
        }
    }
}

pub fn inventory(cli: &Cli, a: &InventoryArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let inv = engine.store().inventory()?;
    let mut data = serde_json::to_vec_pretty(&inv)?;
    data.push(b'\n');
    write_out(a.output.as_deref(), &data)?;
    Ok(0)
}

pub fn create(cli: &Cli, a: &BundleCreateArgs) -> anyhow::Result<i32> {
    let opts = CreateOptions {
        have: a.have.as_deref().map(read_inventory).transpose()?,
        split: a.split.as_deref().map(parse_size).transpose()?,
        sign: a.sign.as_deref().map(read_signing_key).transpose()?,
    };
    let engine = super::open_engine(cli)?;
    let mut bar = Bar::new();
    let rep = engine.store().bundle_create(
        &a.images,
        &a.output,
        &opts,
        &mut |p: &str, d: u64, t: u64| bar.update(p, d, t),
    )?;
    bar.finish();
    for p in &rep.part_paths {
        println!("{}", p.display());
    }
    println!("{}", rep.index_path.display());
    if let Some(s) = &rep.signature_path {
        println!("{}", s.display());
    }
    let layers: usize = rep.index.images.iter().map(|i| i.layers.len()).sum();
    let carried: usize = rep
        .index
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .filter(|l| l.carried)
        .count();
    eprintln!(
        "bundle: {} image(s), {carried}/{layers} layer(s) carried ({} bytes), {} bytes left to the target; payload {} bytes in {} part(s){}",
        rep.index.images.len(),
        rep.carried_layer_bytes,
        rep.skipped_layer_bytes,
        rep.payload_size,
        rep.part_paths.len(),
        if rep.signature_path.is_some() { ", signed" } else { ", unsigned" },
    );
    Ok(0)
}

/// The host's bundle policy from wharf's config file.
fn host_policy() -> anyhow::Result<(bool, Vec<PathBuf>)> {
    let path = std::env::var_os("WHARF_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((false, Vec::new())),
        Err(e) => return Err(e).with_context(|| format!("reading config {}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_slice(&data)
        .with_context(|| format!("invalid config file {}", path.display()))?;
    let require = match v.get("bundle-require-signature") {
        None => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => bail!(
            "invalid config file {}: bundle-require-signature must be true or false",
            path.display()
        ),
    };
    let keys = match v.get("bundle-trusted-keys") {
        None => Vec::new(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|k| {
                k.as_str().map(PathBuf::from).with_context(|| {
                    format!(
                        "invalid config file {}: bundle-trusted-keys must be a list of paths",
                        path.display()
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?,
        Some(_) => bail!(
            "invalid config file {}: bundle-trusted-keys must be a list of paths",
            path.display()
        ),
    };
    Ok((require, keys))
}

fn policy(a: &BundleVerifyArgs) -> anyhow::Result<VerifyPolicy> {
    let (require, trusted) = host_policy()?;
    let files: Vec<PathBuf> = match &a.key {
        Some(k) => vec![k.clone()],
        None if require => trusted,
        None => Vec::new(),
    };
    let mut keys = Vec::new();
    for f in files {
        let k = read_verifying_key(&f)?;
        keys.push((f, k));
    }
    Ok(VerifyPolicy {
        keys,
        require_signature: require,
    })
}

fn do_verify(cli: &Cli, a: &BundleVerifyArgs) -> anyhow::Result<(VerifyReport, Bar)> {
    let pol = policy(a)?;
    let engine = super::open_engine(cli)?;
    let mut bar = Bar::new();
    let rep = engine
        .store()
        .bundle_verify(&a.parts, &pol, &mut |p: &str, d: u64, t: u64| {
            bar.update(p, d, t)
        })?;
    bar.finish();
    let sig = match (&rep.signed_by, rep.signature_present) {
        (Some(k), _) => format!("signature OK ({})", k.display()),
        (None, true) => "signed, signature not checked (no --key)".to_string(),
        (None, false) => "unsigned".to_string(),
    };
    eprintln!(
        "bundle {}: {} part(s), {} bytes, {sig}; every part and layer present",
        rep.index_path.display(),
        rep.parts.len(),
        rep.index.payload.size
    );
    Ok((rep, bar))
}

pub fn verify(cli: &Cli, a: &BundleVerifyArgs) -> anyhow::Result<i32> {
    let (rep, _) = do_verify(cli, a)?;
    for img in &rep.index.images {
        println!("{} {}", img.id, img.tags.join(","));
    }
    Ok(0)
}

pub fn apply(cli: &Cli, a: &BundleVerifyArgs) -> anyhow::Result<i32> {
    let (rep, mut bar) = do_verify(cli, a)?;
    let engine = super::open_engine(cli)?;
    let loaded = engine
        .store()
        .bundle_apply(&rep, &mut |p: &str, d: u64, t: u64| bar.update(p, d, t))?;
    bar.finish();
    engine.policy_loaded("bundle apply", &loaded)?;
    super::archive::print_loaded(loaded);
    Ok(0)
}

pub fn key_generate(_cli: &Cli, a: &KeyGenerateArgs) -> anyhow::Result<i32> {
    let (p, q) = generate_key(&a.output)?;
    println!("{}", p.display());
    println!("{}", q.display());
    Ok(0)
}
