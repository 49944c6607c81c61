//! The `wharf` binary (also `docker` through a symlink: argv[0] only changes the program name
//! shown in help). Hidden entrypoints, dispatched before any argument parsing: `wharf __init`
//! (the container init the runtime re-executes from a sealed copy of this binary),
//! `wharf __exec` (joins a running container for `exec`; `__exec netconf` configures an
//! interface `network connect` put into a running container's namespace), `wharf __monitor` (the
//! per-container monitor of detached containers) and `wharf __dns` (the embedded DNS resolver
//! of user networks, one per host).

mod cli;
mod cmd;
mod format;
mod remote;
mod template;

use std::ffi::OsString;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__init") => wharf_engine::entry::init_main(),
        Some("__exec") => wharf_engine::entry::exec_main(),
        Some("__monitor") => wharf_engine::monitor::monitor_main(&args[2..]),
        Some("__dns") => wharf_engine::network::resolver::dns_main(&args[2..]),
        _ => {}
    }
    std::process::exit(real_main(args));
}

pub(crate) fn program_name(argv0: Option<&OsString>) -> String {
    argv0
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n == "docker")
        .unwrap_or_else(|| "wharf".to_string())
}

/// A closed stdout (`wharf inspect x | head -1`) ends the CLI quietly, as docker's: `print!`
/// panics with "failed printing to stdout: Broken pipe"; that panic becomes a SIGPIPE death
/// instead of an abort (134) with a message. Only the CLI: `__monitor` and `__init` never get
/// here (the monitor must not die of its log pipes), and SIGPIPE stays ignored, so a write to
/// any other pipe or socket is an ordinary EPIPE error.
fn exit_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        let epipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
        if msg.starts_with("failed printing to std")
            && (msg.contains("os error 32") || msg.ends_with(&epipe))
        {
            wharf_sys::process::die_of_sigpipe();
        }
        default(info);
    }));
}

fn real_main(args: Vec<OsString>) -> i32 {
    exit_quietly_on_closed_stdout();
    let prog = program_name(args.first());
    let mut command = <cli::Cli as clap::CommandFactory>::command()
        .name(prog.clone())
        .bin_name(prog);
    let matches = match command.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => wharf_types::ErrorKind::InvalidArgument.exit_code(),
            };
        }
    };
    let cli = match <cli::Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return wharf_types::ErrorKind::InvalidArgument.exit_code();
        }
    };
    // `run --no-such-flag IMAGE`: the IMAGE positional takes hyphen values (so that the
    // command after it can), which would make an unknown flag an image name; clap's own
    // unknown-argument error and the subcommand's usage instead
    if let Some((path, flag)) = cmd::leading_flag(&cli.command) {
        let mut sub = Some(&mut command);
        for name in path {
            sub = sub.and_then(|c| c.find_subcommand_mut(name));
        }
        if let Some(sub) = sub {
            let _ = sub
                .error(
                    clap::error::ErrorKind::UnknownArgument,
                    format!("unexpected argument '{flag}' found"),
                )
                .print();
            return wharf_types::ErrorKind::InvalidArgument.exit_code();
        }
    }
    let class = cmd::command_class(&cli.command);
    if !always_local(&cli.command) {
        let inputs = remote::endpoint::Inputs::from_env(cli.host.clone(), cli.context.clone());
        match remote::endpoint::resolve(&inputs, nix::unistd::geteuid().is_root(), &cli.run_root) {
            Ok(remote::endpoint::Endpoint::Local) => {}
            Ok(remote::endpoint::Endpoint::Unix { path, url }) => {
                return remote::dispatch(&cli, &path, &url)
            }
            Err(e) => {
                eprintln!("wharf: {}", cmd::chain_message(&e));
                return wharf_types::ErrorKind::Unavailable.cli_exit_code(class);
            }
        }
    }
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(e) => cmd::report_error(&e, class),
    }
}

/// Commands that never go through an API endpoint: the ones that touch no engine, and the
/// server itself (`system service` is what an endpoint points at).
fn always_local(c: &cli::Command) -> bool {
    matches!(
        c,
        cli::Command::Completion(_)
            | cli::Command::Man(_)
            | cli::Command::System(cli::SystemCommand::Service(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn argv0_dispatch() {
        assert_eq!(
            program_name(Some(&OsString::from("/usr/bin/docker"))),
            "docker"
        );
        assert_eq!(program_name(Some(&OsString::from("wharf"))), "wharf");
        assert_eq!(program_name(None), "wharf");
    }

    #[test]
    fn cli_is_well_formed() {
        <cli::Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn run_stops_parsing_at_image() {
        let c = cli::Cli::try_parse_from([
            "wharf", "run", "--rm", "-e", "A=1", "busybox", "ls", "-l", "--rm",
        ])
        .unwrap();
        match c.command {
            cli::Command::Run(r) => {
                assert!(r.rm);
                assert_eq!(r.image_and_command, vec!["busybox", "ls", "-l", "--rm"]);
            }
            _ => panic!("not run"),
        }
    }
}
