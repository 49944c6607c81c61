//! wharf-engine: the daemonless engine. Per-resource services (containers, images, volumes)
//! that the CLI calls in-process (and, later, the Engine API server and its client). It owns
//! Docker's container state machine (`state`), merges image defaults with user options into a
//! create-time record (`create`), and drives the runtime. It does not parse command lines or
//! print anything: the CLI formats what it returns.

pub mod archive;
pub mod build;
pub mod bundles;
mod client;
mod commit;
mod compat;
pub mod containers;
pub mod cp;
pub mod create;
pub mod daemon;
pub mod distribution;
pub mod error;
pub mod etcfiles;
pub mod events;
pub mod exec;
pub mod health;
pub mod hostcheck;
pub mod image_filter;
pub mod images;
pub mod info;
pub mod inspect;
mod inspect_shape;
mod jsonl;
pub mod lifecycle;
pub mod monitor;
pub mod mounts;
pub mod names;
pub mod network;
pub mod networks;
pub mod policy;
pub mod prune;
pub mod refusal;
mod release;
pub mod resources;
pub mod run;
pub mod state;
pub mod stats;
pub mod system;
pub mod timefmt;
pub mod trust;
pub mod update;
pub mod validate;
pub mod volumes;

pub use commit::{Change, ChangeKind, CommitRequest, HistoryItem};
pub use error::EngineError;

/// The hidden entry points of the one binary (`wharf __init`, `wharf __exec`): the runtime's,
/// re-exported so front ends depend on the engine alone.
pub mod entry {
    pub use wharf_runtime::exec::exec_main;
    pub use wharf_runtime::init::init_main;
}

use std::path::{Path, PathBuf};
use wharf_store::Store;

/// Where the engine keeps things.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Persistent root (`--root`, `WHARF_ROOT`). Empty: daemon.json's `data-root`, else
    /// `/var/lib/wharf` ([`Engine::root`] says which).
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

/// Who asks the engine: the CLI's own user, or the peer of an Engine API connection
/// (`SO_PEERCRED`). Recorded in every policy audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl Caller {
    /// This process (the CLI, a monitor).
    pub fn current() -> Caller {
        Caller {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            pid: std::process::id(),
        }
    }
}

/// The engine: a store plus the runtime, with no resident process.
pub struct Engine {
    /// Who asks (audit log).
    caller: Caller,
    store: Store,
    opts: EngineOptions,
    /// The admin policy, read once per process (`policy`).
    policy: policy::Loaded,
    /// daemon.json, read once per process (`daemon`).
    daemon: daemon::DaemonConfig,
}

/// The run root holds attach sockets, locks, the event log and the API socket: others may
/// traverse it (to reach `wharf.sock`) but not list it (0711). Made so when missing,
/// tightened when readable by others; best effort (a read-only run root is left as it is,
/// its own operations fail with their paths).
fn restrict_run_root(run_root: &std::path::Path) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::metadata(run_root) {
        Ok(m) if m.permissions().mode() & 0o066 != 0 => {
            let _ = std::fs::set_permissions(run_root, std::fs::Permissions::from_mode(0o711));
        }
        Ok(_) => {}
        Err(_) => {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(run_root);
        }
    }
}

impl Engine {
    /// Opens the engine with the host's daemon.json (`$WHARF_CONFIG` or
    /// `/etc/wharf/daemon.json`); a malformed file is an error naming it.
    pub fn open(opts: EngineOptions) -> Result<Engine, EngineError> {
        let daemon = daemon::DaemonConfig::load(&daemon::DaemonConfig::default_path())?;
        Self::open_with(opts, daemon)
    }

    /// Opens the engine with a daemon configuration already read (an engine test's, a
    /// server's).
    pub fn open_with(
        mut opts: EngineOptions,
        daemon: daemon::DaemonConfig,
    ) -> Result<Engine, EngineError> {
        opts.root = daemon.root(&opts.root);
        let store = Store::open(&opts.root)?;
        restrict_run_root(&opts.run_root);
        let policy = policy::Loaded::load(&policy::Loaded::default_path());
        Ok(Engine {
            caller: Caller::current(),
            store,
            opts,
            policy,
            daemon,
        })
    }

    /// The same engine acting for `caller` (an API server sets each connection's peer).
    pub fn with_caller(mut self, caller: Caller) -> Engine {
        self.caller = caller;
        self
    }

    pub fn caller(&self) -> Caller {
        self.caller
    }

    /// daemon.json as read by [`Engine::open`].
    pub fn daemon_config(&self) -> &daemon::DaemonConfig {
        &self.daemon
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
