//! `save`, `load`: thin CLI over the engine's `save_images` / `load_images` (formats and
//! verification live in the store's archive module).

use crate::cli::{Cli, LoadArgs, SaveArgs};
use anyhow::{bail, Context};
use std::io::{IsTerminal, Read};
use wharf_engine::distribution::{LoadRequest, LoadedImage, SaveOutput, SaveRequest};

pub fn save(cli: &Cli, a: &SaveArgs) -> anyhow::Result<i32> {
    let req = SaveRequest {
        images: a.images.clone(),
        format: a.format.clone(),
        platform: a.platform.clone(),
    };
    let engine = super::open_engine(cli)?;
    match &a.output {
        Some(path) => engine.save_images(&req, SaveOutput::File(path.clone()))?,
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut w = stdout.lock();
            engine.save_images(&req, SaveOutput::Writer(&mut w))?;
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
    let req = LoadRequest {
        platform: a.platform.clone(),
    };
    let mut input: Box<dyn Read> = match &a.input {
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
    // the source is named in front of what failed in it (a layer names its digest)
    let source = match &a.input {
        Some(p) => p.display().to_string(),
        None => "stdin".to_string(),
    };
    let loaded = engine
        .load_images(&req, &mut input)
        .with_context(|| format!("loading {source}"))?;
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
