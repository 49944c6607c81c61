//! `registry serve`: runs wharf's OCI distribution server in the foreground until SIGINT or
//! SIGTERM, over its own root (`registry serve --root DIR`) or, with `--engine-store`, over
//! the engine's store (the global `wharf --root`, else daemon.json's `data-root`), read-only.
//! Holds no registry logic (the server is wharf-registry's, reached through the engine's
//! re-export).

use crate::cli::{Cli, RegistryServeArgs};
use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};
use wharf_engine::distribution::{RegistryServer, RegistryServerConfig};

pub fn serve(cli: &Cli, a: &RegistryServeArgs) -> anyhow::Result<i32> {
    // Block the stop signals before any thread exists, so every thread inherits the mask and
    // only the waiter below receives them.
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("block SIGINT/SIGTERM")?;
    let engine_root = if a.engine_store {
        Some(wharf_engine::daemon::resolve_root(cli.root.as_deref())?)
    } else {
        None
    };
    let cfg = RegistryServerConfig {
        addr: a.addr.clone(),
        root: a.storage.clone(),
        engine_root: engine_root.clone(),
        htpasswd: a.htpasswd.clone(),
        read_only: a.read_only,
        max_manifest_size: a.max_manifest_size,
        threads: 32,
    };
    let server = RegistryServer::bind(&cfg)?;
    let handle = server.shutdown_handle();
    let source = match &engine_root {
        Some(r) => format!("engine store {}", r.display()),
        None => format!("root {}", a.storage.display()),
    };
    eprintln!(
        "wharf registry listening on {} ({source}{}{})",
        server.local_addr(),
        if a.read_only || a.engine_store {
            ", read-only"
        } else {
            ""
        },
        if a.htpasswd.is_some() {
            ", htpasswd auth"
        } else {
            ""
        },
    );
    std::thread::spawn(move || {
        if let Ok(sig) = set.wait() {
            eprintln!("wharf registry: {sig}, shutting down");
        }
        handle.shutdown();
    });
    server.run()?;
    Ok(0)
}
