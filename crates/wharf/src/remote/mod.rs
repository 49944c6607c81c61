//! The CLI as a Docker Engine API client (`-H`, `DOCKER_HOST`, `--context`, and every
//! non-root user through wharf's socket): the everyday commands sent over a unix socket and
//! rendered with the same renderers as local mode (`crate::format`, `cmd::*` row builders).
//! Every command without a remote version here fails naming itself and the endpoint; none
//! falls back to the local store.
//! Must not: open the store, decide anything the engine or the server decides (values go
//! out as the user typed them, in docker's JSON shapes; the server validates).

mod client;
mod containers;
mod create;
pub mod endpoint;
mod exec;
mod http;
mod images;
mod objects;
mod run;
mod system;

pub use client::{Client, RemoteError};

use crate::cli::{Cli, Command, ContainerCommand, ImageCommand, SystemCommand};
use wharf_types::error::CommandClass;

/// Runs `cli`'s command against the API at `sock`; the process exit code.
pub fn dispatch(cli: &Cli, sock: &std::path::Path, url: &str) -> i32 {
    let class = crate::cmd::command_class(&cli.command);
    let r = Client::connect(sock, url).and_then(|c| run_command(&c, cli));
    match r {
        Ok(code) => code,
        Err(e) => report(&e, class),
    }
}

/// docker's rendering of a failed remote command: the daemon's message after `Error
/// response from daemon: `, the exit code from the status's kind (the one table).
pub fn report(e: &anyhow::Error, class: CommandClass) -> i32 {
    let remote = e.chain().find_map(|c| c.downcast_ref::<RemoteError>());
    let kind = remote
        .map(|r| r.kind(class))
        .unwrap_or(wharf_types::ErrorKind::Internal);
    let prefix = match remote {
        Some(RemoteError::Daemon { .. }) => "Error response from daemon: ",
        Some(RemoteError::NotAvailable { .. }) => "wharf: ",
        _ => "Error: ",
    };
    eprintln!("{prefix}{}", crate::cmd::error_message(e));
    kind.cli_exit_code(class)
}

fn not_available(c: &Client, what: &str) -> anyhow::Error {
    RemoteError::NotAvailable {
        command: what.to_string(),
        url: c.url.clone(),
    }
    .into()
}

fn run_command(c: &Client, cli: &Cli) -> anyhow::Result<i32> {
    use ContainerCommand as C;
    match &cli.command {
        Command::Ps(a) | Command::Container(C::Ls(a)) => containers::ps(c, a),
        Command::Inspect(a) => containers::inspect(c, a, None),
        Command::Container(C::Inspect(a)) => containers::inspect(c, a, Some("container")),
        Command::Image(ImageCommand::Inspect(a)) => containers::inspect(c, a, Some("image")),
        Command::Rm(a) | Command::Container(C::Rm(a)) => containers::rm(c, a),
        Command::Start(a) | Command::Container(C::Start(a)) => run::start(c, a),
        Command::Stop(a) | Command::Container(C::Stop(a)) => containers::stop(c, a, "stop"),
        Command::Restart(a) | Command::Container(C::Restart(a)) => {
            containers::stop(c, a, "restart")
        }
        Command::Kill(a) | Command::Container(C::Kill(a)) => containers::kill(c, a),
        Command::Wait(a) | Command::Container(C::Wait(a)) => containers::wait(c, a),
        Command::Pause(a) | Command::Container(C::Pause(a)) => containers::simple(c, a, "pause"),
        Command::Unpause(a) | Command::Container(C::Unpause(a)) => {
            containers::simple(c, a, "unpause")
        }
        Command::Rename(a) | Command::Container(C::Rename(a)) => containers::rename(c, a),
        Command::Top(a) | Command::Container(C::Top(a)) => containers::top(c, a),
        Command::Logs(a) | Command::Container(C::Logs(a)) => containers::logs(c, a),
        Command::Run(a) | Command::Container(C::Run(a)) => run::run(c, a),
        Command::Create(a) | Command::Container(C::Create(a)) => run::create(c, a),
        Command::Exec(a) | Command::Container(C::Exec(a)) => exec::exec(c, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(c, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(c, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(c, a),
        Command::Pull(a) => images::pull(c, a),
        Command::Version(a) => system::version(c, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(c, cli, a),
        Command::Events(a) => system::events(c, a),
        Command::Volume(v) => objects::volume(c, v),
        Command::Network(n) => objects::network(c, n),
        other => Err(not_available(c, &command_name(other))),
    }
}

/// The command's words as the user typed them (`image prune`, `cp`), for the refusal.
fn command_name(cmd: &Command) -> String {
    let dbg = format!("{cmd:?}");
    // `Container(Cp(CpArgs { .. }))` → "container cp"
    let mut words = Vec::new();
    for part in dbg.split('(') {
        let w: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
        if w.is_empty() || w.ends_with("Args") {
            break;
        }
        words.push(w.to_ascii_lowercase());
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn refusal_names_the_command() {
        let c = Cli::try_parse_from(["wharf", "cp", "a:/x", "/y"]).unwrap();
        assert_eq!(command_name(&c.command), "cp");
        let c = Cli::try_parse_from(["wharf", "image", "prune", "-f"]).unwrap();
        assert_eq!(command_name(&c.command), "image prune");
        let c = Cli::try_parse_from(["wharf", "system", "df"]).unwrap();
        assert_eq!(command_name(&c.command), "system df");
    }
}
