//! `registry serve`: runs wharf's OCI distribution server in the foreground until SIGINT or
//! SIGTERM, over its own root (`registry serve --root DIR`) or, with `--engine-store`, over
//! the engine's store (the global `wharf --root`), read-only. OWNED BY: registry helper.
//! Holds no registry logic (see wharf-registry).

use crate::cli::{Cli, RegistryServeArgs};
use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};

pub fn serve(cli: &Cli, a: &RegistryServeArgs) -> anyhow::Result<i32> {
    // Block the stop signals before any thread exists, so every thread inherits the mask and
    // only the waiter below receives them.
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("block SIGINT/SIGTERM")?;
    let cfg = wharf_registry::Config {
        addr: a.addr.clone(),
        root: a.storage.clone(),
        engine_root: a.engine_store.then(|| cli.root.clone()),
        htpasswd: a.htpasswd.clone(),
        read_only: a.read_only,
        max_manifest_size: a.max_manifest_size,
        threads: 32,
    };
    let server = wharf_registry::Server::bind(&cfg)?;
    let handle = server.shutdown_handle();
    let source = if a.engine_store {
        format!("engine store {}", cli.root.display())
    } else {
        format!("root {}", a.storage.display())
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
