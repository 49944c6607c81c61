//! `inventory`, `bundle create|verify|apply`, `key generate`: argv → the engine's bundle
//! service (`wharf_engine::bundles`: the format, every check and the host's signature
//! settings live behind it) → output, with progress rendered on stderr when it is a terminal
//! (a bar drawn in place; nothing otherwise, as docker's save/load).

use crate::cli::{BundleCreateArgs, BundleVerifyArgs, Cli, InventoryArgs, KeyGenerateArgs};
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::Path;
use wharf_engine::bundles::{generate_key, BundleCreateRequest, BundleVerifyRequest, VerifyReport};

/// Renders (phase, done, total) progress on stderr when it is a terminal.
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
        if self.tty && pct != self.last {
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
        // not a terminal: nothing, as docker's save/load write nothing there
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
    let inv = engine.inventory()?;
    let mut data = serde_json::to_vec_pretty(&inv)?;
    data.push(b'\n');
    write_out(a.output.as_deref(), &data)?;
    Ok(0)
}

pub fn create(cli: &Cli, a: &BundleCreateArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let mut bar = Bar::new();
    let rep = engine.create_bundle(
        &BundleCreateRequest {
            images: a.images.clone(),
            output: a.output.clone(),
            have: a.have.clone(),
            split: a.split.clone(),
            sign: a.sign.clone(),
        },
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

fn request(a: &BundleVerifyArgs) -> BundleVerifyRequest {
    BundleVerifyRequest {
        parts: a.parts.clone(),
        key: a.key.clone(),
    }
}

/// The line `verify` and `apply` say on stderr about a verified bundle.
fn say_verified(rep: &VerifyReport) {
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
}

pub fn verify(cli: &Cli, a: &BundleVerifyArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let mut bar = Bar::new();
    let rep = engine.verify_bundle(&request(a), &mut |p: &str, d: u64, t: u64| {
        bar.update(p, d, t)
    })?;
    bar.finish();
    say_verified(&rep);
    for img in &rep.index.images {
        println!("{} {}", img.id, img.tags.join(","));
    }
    Ok(0)
}

pub fn apply(cli: &Cli, a: &BundleVerifyArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let mut bar = Bar::new();
    let applied = engine.apply_bundle(&request(a), &mut |p: &str, d: u64, t: u64| {
        bar.update(p, d, t)
    })?;
    bar.finish();
    say_verified(&applied.verified);
    super::archive::print_loaded(applied.loaded);
    Ok(0)
}

pub fn key_generate(_cli: &Cli, a: &KeyGenerateArgs) -> anyhow::Result<i32> {
    let (p, q) = generate_key(&a.output)?;
    println!("{}", p.display());
    println!("{}", q.display());
    Ok(0)
}
