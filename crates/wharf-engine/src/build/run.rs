//! RUN steps: the command (exec form, shell form through SHELL, heredocs as BuildKit runs
//! them), `--network`, `--mount` (`mounts`), the step's container with its output streamed
//! as it is produced, cancellation (the caller's signal flag), and the layer.
//!
//! Must not: print (output goes to the progress sink), or leave the step's container behind
//! on any path (the drop guard removes it).

use super::mounts::RunMounts;
use super::{
    chain, set_env, BuildError, BuildProgress, BuildRequest, StageState, StepContainer, STEP_LABEL,
};
use crate::create::CreateRequest;
use crate::Engine;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::Ordering;
use wharf_build::dockerfile::{CommandLine, Heredoc, NetworkMode, Run};

/// Where a heredoc that starts with `#!` is placed to be executed (BuildKit's path; `/dev`
/// is the container's tmpfs, so nothing of it reaches the layer).
const PIPES: &str = "/dev/pipes";

/// How long a RUN step's container is waited for closely before its log is followed.
const QUICK: std::time::Duration = std::time::Duration::from_millis(250);

/// What a RUN runs: its argv and, for a `#!` heredoc, the script to mount and execute.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RunCommand {
    pub argv: Vec<String>,
    /// `(name, body)`: a script made executable at `/dev/pipes/<name>`.
    pub script: Option<(String, String)>,
}

/// A heredoc word (`<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'E'OF`) naming `name`.
fn is_heredoc_word(word: &str, name: &str) -> bool {
    let Some(rest) = word.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let unquoted: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    unquoted == name
}

/// RUN's command as BuildKit's dispatcher builds it: a command that is only one heredoc
/// runs its body with the shell (or, when the body starts with `#!`, as a script of its
/// own); anything else is the line with the heredoc bodies appended, for the shell to
/// read (the shell expands, or not for a quoted delimiter, as it would).
pub(super) fn run_command(
    shell: &[String],
    cl: &CommandLine,
    line: usize,
) -> Result<RunCommand, BuildError> {
    if cl.heredocs.is_empty() {
        return Ok(RunCommand {
            argv: super::argv_of(shell, cl, line)?,
            script: None,
        });
    }
    let text = cl.args.join(" ");
    let only: Option<&Heredoc> = match cl.heredocs.as_slice() {
        [h] if h.fd == 0 && is_heredoc_word(text.trim(), &h.name) => Some(h),
        _ => None,
    };
    let mut argv = shell.to_vec();
    if let Some(h) = only {
        if h.content.starts_with("#!") {
            // the name becomes a path: one plain component only
            let n = h.name.as_str();
            if n.is_empty() || n == "." || n == ".." || n.contains('/') {
                return Err(BuildError::Invalid {
                    line,
                    what: "heredoc name",
                    value: n.to_string(),
                });
            }
            return Ok(RunCommand {
                argv: vec![format!("{PIPES}/{}", h.name)],
                script: Some((h.name.clone(), h.content.clone())),
            });
        }
        argv.push(h.content.clone());
    } else {
        let mut full = text;
        for h in &cl.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        argv.push(full);
    }
    Ok(RunCommand { argv, script: None })
}

/// The network of a RUN step: `none` and `default` are the build's default, which is no
/// network (docker's classic builder gives the default bridge; wharf builds offline unless
/// a step asks for the host's network, which the admin policy judges as `run --network
/// host`).
fn network_of(run: &Run) -> &'static str {
    match run.network {
        Some(NetworkMode::Host) => "host",
        Some(NetworkMode::None | NetworkMode::Default) | None => "none",
    }
}

impl Engine {
    /// A RUN instruction; returns whether it came from the cache.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_instruction(
        &self,
        req: &BuildRequest,
        plan: &wharf_build::stages::Plan,
        built: &BTreeMap<usize, wharf_types::Digest>,
        ctx: &super::context::Root,
        st: &mut StageState,
        run: &Run,
        line: usize,
        number: usize,
        cache_from: &[super::sources::CacheImage],
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<bool, BuildError> {
        if run.security == Some(wharf_build::dockerfile::SecurityMode::Insecure) {
            return Err(BuildError::Unsupported {
                line,
                what: "RUN --security=insecure".to_string(),
            });
        }
        let cmd = run_command(&st.shell, &run.command, line)?;
        let created_by = if run.command.shell_form {
            format!("RUN {}", cmd.argv.join(" "))
        } else {
            format!("RUN {:?}", cmd.argv)
        };
        let network = network_of(run);
        // the mounts' identity (never a secret's bytes) is part of the step's key
        let mounts = self.run_mounts(req, plan, built, ctx, st, &run.mounts, line)?;
        st.key = chain(&st.key, &[b"network", network.as_bytes()]);
        st.key = chain(&st.key, &[b"mounts", mounts.key.as_bytes()]);
        if self.cached(req, st) || self.cache_from_step(cache_from, st, &created_by)? {
            return Ok(true);
        }
        self.run_step(req, st, cmd, network, mounts, created_by, number, progress)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &self,
        req: &BuildRequest,
        st: &mut StageState,
        cmd: RunCommand,
        network: &str,
        mut mounts: RunMounts,
        created_by: String,
        number: usize,
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<bool, BuildError> {
        let image = match &st.image {
            Some(id) => id.clone(),
            None => {
                // scratch: an empty image to run on (the RUN will fail without a shell)
                let key = st.key.clone();
                let id = self.materialize(req, st)?;
                st.key = key;
                id
            }
        };
        let mut env = st.args.clone();
        for e in st.config.env.clone().unwrap_or_default() {
            if let Some((k, v)) = e.split_once('=') {
                set_env(&mut env, k, v);
            }
        }
        env.append(&mut mounts.env);
        if let Some((name, body)) = &cmd.script {
            mounts.add_script(self, name, body)?;
        }
        let mut flags = crate::validate::CreateFlags {
            network: Some(network.to_string()),
            log_driver: Some("json-file".to_string()),
            typed_mounts: mounts.mounts.clone(),
            ..Default::default()
        };
        flags.log_opts.clear();
        let (entry, args) = cmd.argv.split_first().ok_or(BuildError::Invalid {
            line: 0,
            what: "RUN",
            value: String::new(),
        })?;
        let me = std::process::id() as i32;
        let owner = format!(
            "{me} {}",
            crate::state::process_start_time(me).unwrap_or_default()
        );
        let create = CreateRequest {
            labels: BTreeMap::from([(STEP_LABEL.to_string(), owner)]),
            image: image.to_string(),
            entrypoint: Some(entry.clone()),
            args: args.to_vec(),
            env,
            // docker's own images say `"WorkingDir": ""` and `"User": ""` for "not set"
            workdir: st.config.working_dir.clone().filter(|w| !w.is_empty()),
            user: st.config.user.clone().filter(|u| !u.is_empty()),
            flags,
            ..Default::default()
        };
        let record = match &st.base_name {
            Some(name) => self.create_build_container(
                CreateRequest {
                    image: name.clone(),
                    ..create
                },
                &image,
            )?,
            None => self.create_container(create)?.record,
        };
        let guard = StepContainer {
            engine: self,
            id: record.id.to_string(),
        };
        self.start_detached(&record)?;
        // the output as it comes (docker's plain progress), until the process ends or the
        // caller is cancelled
        let cancelled = || {
            req.cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed) != 0)
        };
        // a short step is waited for closely (the log follower polls every 150 ms, which
        // would be most of a quick RUN's cost), a longer one is followed
        let quick_until = std::time::Instant::now() + QUICK;
        let mut exited = false;
        while std::time::Instant::now() < quick_until && !cancelled() {
            if matches!(
                self.container(&guard.id)?.state.status(),
                crate::state::Status::Exited | crate::state::Status::Dead
            ) {
                exited = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut pending_line = Vec::new();
        let _ = self.logs_until(
            &crate::containers::LogsRequest {
                container: guard.id.clone(),
                follow: !exited,
                ..Default::default()
            },
            &mut |_s, bytes| {
                pending_line.extend_from_slice(bytes);
                while let Some(i) = pending_line.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending_line.drain(..=i).collect();
                    progress(BuildProgress::Output {
                        number,
                        line: String::from_utf8_lossy(&line[..line.len() - 1]).to_string(),
                    });
                }
                Ok(())
            },
            &cancelled,
        );
        if !pending_line.is_empty() {
            progress(BuildProgress::Output {
                number,
                line: String::from_utf8_lossy(&pending_line).to_string(),
            });
        }
        super::check_cancel(req)?;
        let code = self.wait_container(&guard.id)?;
        super::check_cancel(req)?;
        if code != 0 {
            return Err(BuildError::RunFailed {
                command: cmd.argv.join(" "),
                code,
            });
        }
        let info = self.container(&guard.id)?;
        let mut tar = self.upper_tar_skipping(&info, &mounts.targets)?;
        self.commit_step(st, Some(&mut tar.1 as &mut dyn Read), created_by)?;
        drop(guard);
        drop(mounts);
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heredoc(name: &str, content: &str, fd: u32) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp: false,
            fd,
        }
    }

    fn sh() -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into()]
    }

    #[test]
    fn heredoc_commands_as_buildkit_runs_them() {
        // only a heredoc: its body is the shell's command
        let cl = CommandLine {
            args: vec!["<<EOF".into()],
            shell_form: true,
            heredocs: vec![heredoc("EOF", "echo a\necho b\n", 0)],
        };
        let c = run_command(&sh(), &cl, 2).unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "echo a\necho b\n"]);
        assert_eq!(c.script, None);
        // quoted, chomped: still the body
        let cl = CommandLine {
            args: vec!["<<-'E'OF".into()],
            ..cl
        };
        assert_eq!(
            run_command(&sh(), &cl, 2).unwrap().argv[2],
            "echo a\necho b\n"
        );
        // a shebang: a script of its own
        let cl = CommandLine {
            args: vec!["<<EOF".into()],
            shell_form: true,
            heredocs: vec![heredoc("EOF", "#!/bin/sh\necho x\n", 0)],
        };
        let c = run_command(&sh(), &cl, 2).unwrap();
        assert_eq!(c.argv, ["/dev/pipes/EOF"]);
        assert_eq!(c.script, Some(("EOF".into(), "#!/bin/sh\necho x\n".into())));
        // a script's name that is not one plain component is refused
        for bad in ["../x", "a/b", ".."] {
            let cl = CommandLine {
                args: vec![format!("<<{bad}")],
                shell_form: true,
                heredocs: vec![heredoc(bad, "#!/bin/sh\n", 0)],
            };
            assert!(run_command(&sh(), &cl, 2).is_err(), "{bad}");
        }
        // a command with heredocs: the line and the bodies, for the shell
        let cl = CommandLine {
            args: vec!["cat <<A && cat 3<<B".into()],
            shell_form: true,
            heredocs: vec![heredoc("A", "one\n", 0), heredoc("B", "two\n", 3)],
        };
        let c = run_command(&sh(), &cl, 2).unwrap();
        assert_eq!(c.argv[2], "cat <<A && cat 3<<B\none\nA\ntwo\nB");
    }
}
