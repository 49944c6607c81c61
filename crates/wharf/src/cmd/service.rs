//! `wharf system service [-H unix:///PATH] [--group G]`: the Engine API server. The socket
//! is the one systemd passed (socket activation) or one made here (`wharf_api::listen`);
//! the server is `wharf_api::serve`. The socket file made here is removed on a clean stop.

use crate::cli::{Cli, ServiceArgs};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;
use wharf_api::listen;
use wharf_engine::daemon::DaemonConfig;
use wharf_engine::{Engine, EngineOptions};

pub fn service(cli: &Cli, a: &ServiceArgs) -> anyhow::Result<i32> {
    let daemon = DaemonConfig::load(&DaemonConfig::default_path())?;
    let engine = EngineOptions {
        root: cli.root.clone().unwrap_or_default(),
        run_root: cli.run_root.clone(),
        debug: cli.debug,
    };
    // the store must open before anyone is told the service is ready
    Engine::open_with(engine.clone(), daemon.clone())?;
    let (listener, made) = match listen::systemd_fds() {
        Some(_) => {
            let fd = wharf_sys::process::adopt_inherited_fd(listen::SD_LISTEN_FDS_START)
                .context("systemd passed LISTEN_FDS but fd 3 is not open")?;
            (std::os::unix::net::UnixListener::from(fd), None)
        }
        None => {
            let path = listen::parse_host(&a.host)?;
            let b = listen::bind(&path, &a.group, Path::new("/etc/group"))?;
            if let Some(w) = &b.warning {
                eprintln!("wharf: {w}");
            }
            (b.listener, Some(b.path))
        }
    };
    let mut opts = wharf_api::ServeOptions::new(engine, daemon);
    opts.header_timeout = Duration::from_secs(a.header_timeout.max(1));
    let served = wharf_api::serve(listener, opts);
    if let Some(p) = made {
        let _ = std::fs::remove_file(p);
    }
    served?;
    Ok(0)
}
