//! Command implementations, one module per command group. Each returns the process exit code.

mod archive;
mod build;
mod bundle;
mod commit;
pub(crate) mod containers;
pub(crate) mod distribution;
mod docs;
pub(crate) mod events;
mod exec;
pub(crate) mod images;
pub(crate) mod info;
mod lifecycle;
mod logs;
pub(crate) mod network;
mod policy;
mod registry;
pub(crate) mod run;
pub use run::leading_flag;
mod service;
mod system;
mod trust;
pub(crate) mod volumes;

use crate::cli::{
    BundleCommand, Cli, Command, ContainerCommand, ImageCommand, KeyCommand, PolicyCommand,
    RegistryCommand, SystemCommand, TrustCommand, TrustKeyCommand,
};
use wharf_engine::{Engine, EngineOptions};
use wharf_types::error::CommandClass;

pub fn open_engine(cli: &Cli) -> anyhow::Result<Engine> {
    Ok(Engine::open(EngineOptions {
        // empty: the engine takes daemon.json's data-root or its default
        root: cli.root.clone().unwrap_or_default(),
        run_root: cli.run_root.clone(),
        debug: cli.debug,
    })?)
}

/// docker's CheckTty: `-t` with stdin attached (`-i`) needs a terminal on stdin. Prints
/// docker's message and returns its exit code (1) when it is not one.
pub(crate) fn check_tty(attach_stdin: bool, tty: bool) -> Option<i32> {
    use std::io::IsTerminal;
    if attach_stdin && tty && !std::io::stdin().is_terminal() {
        eprintln!("the input device is not a TTY");
        return Some(1);
    }
    None
}

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Version(a) => info::version(a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => info::info(&cli, a),
        Command::Completion(a) => {
            docs::completion(a.shell);
            Ok(0)
        }
        Command::Man(a) => docs::man_pages(&a.dir),
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
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(&cli, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&cli, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(&cli, a),
        Command::Volume(v) => volumes::volume(&cli, v),
        Command::Network(n) => network::network(&cli, n),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            lifecycle::create(&cli, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            lifecycle::start(&cli, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            lifecycle::stop(&cli, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            lifecycle::restart(&cli, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            lifecycle::kill(&cli, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            lifecycle::wait(&cli, a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            lifecycle::pause(&cli, a, true)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            lifecycle::pause(&cli, a, false)
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            lifecycle::attach(&cli, a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            lifecycle::rename(&cli, a)
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            lifecycle::update(&cli, a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            lifecycle::port(&cli, a)
        }
        Command::Container(ContainerCommand::Prune(a)) => lifecycle::prune(&cli, a),
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => commit::diff(&cli, a),
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            commit::commit(&cli, a)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            commit::export(&cli, a)
        }
        Command::History(a) | Command::Image(ImageCommand::History(a)) => commit::history(&cli, a),
        Command::System(SystemCommand::Boot) => lifecycle::system_boot(&cli),
        Command::Check(a) | Command::System(SystemCommand::Check(a)) => {
            lifecycle::system_check(&cli, a)
        }
        Command::System(SystemCommand::Df(a)) => system::df(&cli, a),
        Command::System(SystemCommand::Prune(a)) => system::prune(&cli, a),
        Command::Image(ImageCommand::Prune(a)) => system::image_prune(&cli, a),
        Command::System(SystemCommand::Service(a)) => service::service(&cli, a),
        Command::Policy(PolicyCommand::Show) => policy::show(&cli),
        Command::Policy(PolicyCommand::Check(a)) => policy::check(&cli, a),
        Command::Registry(RegistryCommand::Serve(a)) => registry::serve(&cli, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => archive::save(&cli, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => distribution::pull(&cli, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => distribution::push(&cli, a),
        Command::Login(a) => distribution::login(&cli, a),
        Command::Logout(a) => distribution::logout(&cli, a),
        Command::Inventory(a) => bundle::inventory(&cli, a),
        Command::Bundle(BundleCommand::Create(a)) => bundle::create(&cli, a),
        Command::Bundle(BundleCommand::Verify(a)) => bundle::verify(&cli, a),
        Command::Bundle(BundleCommand::Apply(a)) => bundle::apply(&cli, a),
        Command::Key(KeyCommand::Generate(a)) => bundle::key_generate(&cli, a),
        Command::Trust(TrustCommand::Key(TrustKeyCommand::Generate(a))) => {
            trust::key_generate(&cli, a)
        }
        Command::Trust(TrustCommand::Sign(a)) => trust::sign(&cli, a),
        Command::Trust(TrustCommand::Inspect(a)) => trust::inspect(&cli, a),
        Command::Trust(TrustCommand::Revoke(a)) => trust::revoke(&cli, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => archive::load(&cli, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => logs::logs(&cli, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => events::events(&cli, a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => exec::exec(&cli, a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => exec::top(&cli, a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => exec::stats(&cli, a),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => exec::cp(&cli, a),
    }
}

/// One line: the error and its causes, without repeating.
pub fn error_message(e: &anyhow::Error) -> String {
    join_causes(e.chain())
}

/// A library error and its `source()` chain on one line (library messages don't repeat their
/// source, so the printer joins them).
pub fn chain_message(e: &(dyn std::error::Error + 'static)) -> String {
    join_causes(std::iter::successors(Some(e), |e| e.source()))
}

fn join_causes<'a>(causes: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    join_texts(causes.map(|c| c.to_string()))
}

/// Joins an error's texts, outermost first, with ": ", saying each fact once: a cause already
/// in the line is skipped, and a cause that repeats the text before it (a wrapper that
/// prints its source's prefix: "invalid reference format" over "invalid reference format:
/// repository name must be lowercase") replaces it.
fn join_texts(texts: impl Iterator<Item = String>) -> String {
    let mut msg = String::new();
    let mut last_len = 0;
    for c in texts {
        if c.is_empty() || msg.contains(&c) {
            continue;
        }
        let last = &msg[msg.len() - last_len..];
        if !last.is_empty() && c.starts_with(last) {
            msg.truncate(msg.len() - last_len);
        } else if !msg.is_empty() {
            msg.push_str(": ");
        }
        last_len = c.len();
        msg.push_str(&c);
    }
    msg.replace('\n', " ")
}

/// Reports a command's failure as docker's CLI does and returns its exit code; the one place
/// that decides both. Text: `Error response from daemon: …` for what docker's daemon refuses
/// (an engine error of kind NotFound, AlreadyExists, Conflict, FailedPrecondition,
/// PermissionDenied; and InvalidArgument outside `run`/`create`, whose argument checks are
/// docker's CLI's), `Error: …` for the rest (the CLI's own checks, local failures). Code: the
/// kind's through `ErrorKind::cli_exit_code` for the command's class ([`command_class`]).
pub fn report_error(e: &anyhow::Error, class: CommandClass) -> i32 {
    use wharf_types::ErrorKind as K;
    let kind = wharf_engine::error::kind_in(e.chain());
    match (class, kind) {
        // docker's exec of a command that cannot start: runc's chain, no prefix
        (CommandClass::Exec, K::CommandNotFound | K::CommandNotExecutable) => eprintln!(
            "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
            error_message(e)
        ),
        _ => eprintln!("{}{}", error_prefix(e, class), error_message(e)),
    }
    kind.cli_exit_code(class)
}

/// docker's prefix of an error line: see [`report_error`].
pub fn error_prefix(e: &anyhow::Error, class: CommandClass) -> &'static str {
    use wharf_types::ErrorKind as K;
    let from_engine = e
        .chain()
        .any(|c| wharf_engine::error::known_kind(c).is_some());
    let daemon = match wharf_engine::error::kind_in(e.chain()) {
        K::NotFound
        | K::AlreadyExists
        | K::Conflict
        | K::FailedPrecondition
        | K::PermissionDenied => true,
        K::InvalidArgument => !matches!(class, CommandClass::RunsContainer | CommandClass::Create),
        _ => false,
    };
    if daemon && from_engine {
        "Error response from daemon: "
    } else {
        "Error: "
    }
}

/// Which exit-code rule `command` follows (docker's CLI): `run` exits with the error's kind
/// (125/126/127), `create` with 125 for a request that does not parse, `exec` exits 126 for a command that cannot start,
/// every other failure exits 1.
pub fn command_class(command: &Command) -> CommandClass {
    use ContainerCommand as C;
    match command {
        Command::Run(_) | Command::Container(C::Run(_)) => CommandClass::RunsContainer,
        Command::Create(_) | Command::Container(C::Create(_)) => CommandClass::Create,
        Command::Exec(_) | Command::Container(C::Exec(_)) => CommandClass::Exec,
        _ => CommandClass::Other,
    }
}

/// docker's prune confirmation: prints `WARNING! {what}` and the question on stderr, true
/// only for an answer of y/Y/yes on stdin.
pub fn confirm(what: &str) -> bool {
    eprint!("WARNING! {what}\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::join_texts;

    fn join(texts: &[&str]) -> String {
        join_texts(texts.iter().map(|t| t.to_string()))
    }

    #[test]
    fn error_chains_say_each_fact_once() {
        assert_eq!(
            join(&[
                "invalid reference format",
                "invalid reference format: repository name must be lowercase: \"UPPER\""
            ]),
            "invalid reference format: repository name must be lowercase: \"UPPER\""
        );
        assert_eq!(
            join(&[
                "pulling busybox",
                "reading blob sha256:ab",
                "unexpected eof"
            ]),
            "pulling busybox: reading blob sha256:ab: unexpected eof"
        );
        // a cause already said (a wrapper that printed its source) is not repeated
        assert_eq!(
            join(&["opening x: permission denied", "permission denied"]),
            "opening x: permission denied"
        );
        assert_eq!(join(&["a\nb", ""]), "a b");
    }
}
