//! wharf-engine: the daemonless engine. Per-resource services (containers, images, volumes)
//! that the CLI calls in-process (and, later, the Engine API server and its client). It owns
//! Docker's container state machine (`state`), merges image defaults with user options into a
//! create-time record (`create`), and drives the runtime. It does not parse command lines or
//! print anything: the CLI formats what it returns.

mod client;
pub mod cp;
pub mod create;
pub mod error;
pub mod etcfiles;
pub mod events;
pub mod exec;
pub mod health;
mod jsonl;
pub mod lifecycle;
pub mod monitor;
pub mod mounts;
pub mod names;
pub mod policy;
pub mod run;
pub mod state;
pub mod stats;
pub mod system;
pub mod timefmt;
pub mod trust;
pub mod validate;

pub use error::EngineError;

use std::path::{Path, PathBuf};
use wharf_store::Store;

/// Where the engine keeps things.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Persistent root (`/var/lib/wharf`, `--root`, `WHARF_ROOT`).
    pub root: PathBuf,
    /// Volatile runtime root (`/run/wharf`, `WHARF_RUNROOT`): caches that a reboot may drop.
    pub run_root: PathBuf,
    /// Say what was clamped or skipped (`--debug`).
    pub debug: bool,
}

impl EngineOptions {
    pub const DEFAULT_ROOT: &'static str = "/var/lib/wharf";
    pub const DEFAULT_RUN_ROOT: &'static str = "/run/wharf";
}

/// The engine: a store plus the runtime, with no resident process.
pub struct Engine {
    store: Store,
    opts: EngineOptions,
    /// The admin policy, read once per process (`policy`).
    policy: policy::Loaded,
}

impl Engine {
    pub fn open(opts: EngineOptions) -> Result<Engine, EngineError> {
        let store = Store::open(&opts.root)?;
        let policy = policy::Loaded::load(&policy::Loaded::default_path());
        Ok(Engine {
            store,
            opts,
            policy,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    fn seccomp_cache_dir(&self) -> PathBuf {
        self.opts.run_root.join("seccomp")
    }

    pub fn root(&self) -> &Path {
        &self.opts.root
    }
}
