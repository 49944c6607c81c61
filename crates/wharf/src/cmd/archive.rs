//! `save`, `load`: thin CLI over `Store::save` / `Store::load` (formats and verification live
//! in `wharf_store::archive`).

use crate::cli::{Cli, LoadArgs, SaveArgs};
use anyhow::{bail, Context};
use std::io::{IsTerminal, Read, Write};
use wharf_store::archive::{parse_platform, ArchiveFormat, LoadOptions, LoadedImage, SaveOptions};

pub fn save(cli: &Cli, a: &SaveArgs) -> anyhow::Result<i32> {
    let opts = SaveOptions {
        format: a.format.parse::<ArchiveFormat>()?,
        platform: a.platform.as_deref().map(parse_platform).transpose()?,
    };
    let engine = super::open_engine(cli)?;
    let store = engine.store();
    match &a.output {
        Some(path) => {
            let tmp = path.with_file_name(format!(
                ".{}.wharf-tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("failed to save image: create {}", tmp.display()))?;
            let res = store
                .save(
                    &a.images,
                    &opts,
                    std::io::BufWriter::with_capacity(1 << 20, f),
                )
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("failed to save image: rename {}", path.display()))
                });
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            store.save(&a.images, &opts, &mut w)?;
            w.flush().context("writing to stdout")?;
        }
    }
    Ok(0)
}

/// Counts what `load` reads from its input and draws a bar (terminal only, like docker).
struct Counted<R> {
    inner: R,
    done: u64,
    total: u64,
    bar: super::bundle::Bar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.bar.update("Loading", self.done, self.total);
        Ok(n)
    }
}

impl<R> Drop for Counted<R> {
    fn drop(&mut self) {
        self.bar.finish();
    }
}

pub fn load(cli: &Cli, a: &LoadArgs) -> anyhow::Result<i32> {
    let opts = LoadOptions {
        platform: a.platform.as_deref().map(parse_platform).transpose()?,
        max_bytes: None,
    };
    let input: Box<dyn Read> = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?;
            let bar = super::bundle::Bar::new();
            let total = f.metadata().map(|m| m.len()).unwrap_or(0);
            if bar.is_tty() && !a.quiet && total > 0 {
                Box::new(Counted {
                    inner: f,
                    done: 0,
                    total,
                    bar,
                })
            } else {
                Box::new(f)
            }
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(stdin.lock())
        }
    };
    let engine = super::open_engine(cli)?;
    let loaded = engine.store().load(input, &opts)?;
    engine.policy_loaded("load", &loaded)?;
    if !a.quiet {
        print_loaded(loaded);
    }
    Ok(0)
}

/// docker's load output: a retagged name first says which image lost it.
pub(super) fn print_loaded(loaded: Vec<LoadedImage>) {
    for img in loaded {
        for (t, old) in &img.retagged {
            println!(
                "The image {t} already exists, renaming the old one with ID {old} to empty string"
            );
        }
        if img.tags.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        for t in img.tags {
            println!("Loaded image: {t}");
        }
    }
}
