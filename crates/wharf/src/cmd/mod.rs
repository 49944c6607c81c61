//! Command implementations, one module per command group. Each returns the process exit code.

mod containers;
mod images;
mod run;
mod volumes;

use crate::cli::{Cli, Command, ContainerCommand, ImageCommand};
use wharf_engine::{Engine, EngineError, EngineOptions};
use wharf_types::error::HasKind;

pub fn open_engine(cli: &Cli) -> anyhow::Result<Engine> {
    Ok(Engine::open(EngineOptions {
        root: cli.root.clone(),
        run_root: cli.run_root.clone(),
        debug: cli.debug,
    })?)
}

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Version => {
            println!("wharf version {}", env!("CARGO_PKG_VERSION"));
            println!("API version:  1.43 (Docker-compatible CLI)");
            println!(
                "OS/Arch:      linux/{}",
                wharf_types::oci::host_architecture()
            );
            Ok(0)
        }
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(&cli, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => containers::ps(&cli, a),
        Command::Inspect(a) => containers::inspect(&cli, a, None),
        Command::Container(ContainerCommand::Inspect(a)) => {
            containers::inspect(&cli, a, Some("container"))
        }
        Command::Image(ImageCommand::Inspect(a)) => containers::inspect(&cli, a, Some("image")),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => containers::rm(&cli, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(&cli, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => images::import(&cli, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&cli, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(&cli, a),
        Command::Volume(v) => volumes::volume(&cli, v),
    }
}

/// One line: the error and its causes, without repeating.
pub fn error_message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg.replace('\n', " ")
}

pub fn exit_code(e: &anyhow::Error) -> i32 {
    if let Some(ee) = e.downcast_ref::<EngineError>() {
        return ee.exit_code();
    }
    if let Some(se) = e.downcast_ref::<wharf_store::StoreError>() {
        return se.kind().exit_code();
    }
    125
}
