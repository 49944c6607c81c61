//! `registry serve`: runs wharf's OCI distribution server in the foreground until SIGINT or
//! SIGTERM. OWNED BY: registry helper. Holds no registry logic (see wharf-registry).

use crate::cli::{Cli, RegistryServeArgs};
use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};

pub fn serve(_cli: &Cli, a: &RegistryServeArgs) -> anyhow::Result<i32> {
    // Block the stop signals before any thread exists, so every thread inherits the mask and
    // only the waiter below receives them.
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("block SIGINT/SIGTERM")?;
    let cfg = wharf_registry::Config {
        addr: a.addr.clone(),
        root: a.storage.clone(),
        htpasswd: a.htpasswd.clone(),
        read_only: a.read_only,
        max_manifest_size: a.max_manifest_size,
        threads: 32,
    };
    let server = wharf_registry::Server::bind(&cfg)?;
    let handle = server.shutdown_handle();
    eprintln!(
        "wharf registry listening on {} (root {}{}{})",
        server.local_addr(),
        a.storage.display(),
        if a.read_only { ", read-only" } else { "" },
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
