//! `wharf run`: turns docker's run flags into a create request and runs it in the foreground.

use crate::cli::{Cli, RunArgs};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use wharf_engine::create::CreateRequest;
use wharf_engine::mounts;
use wharf_engine::validate::CreateFlags;
use wharf_types::container::HostConfig;

fn host_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The largest env file read.
const ENV_FILE_MAX: u64 = 1 << 20;

/// `--env-file` files then `-e` values, with docker's rules (`wharf_types::parse`); a bare
/// `VAR` takes this process's value. Shared by `run`, `create` and `exec`.
pub fn env_from_flags(
    files: &[std::path::PathBuf],
    flags: &[String],
) -> anyhow::Result<Vec<String>> {
    use std::io::Read;
    let mut env = Vec::new();
    for f in files {
        let mut content = Vec::new();
        std::fs::File::open(f)
            .and_then(|file| file.take(ENV_FILE_MAX + 1).read_to_end(&mut content))
            .with_context(|| format!("open {}", f.display()))?;
        if content.len() as u64 > ENV_FILE_MAX {
            bail!(
                "env file {} is larger than {ENV_FILE_MAX} bytes",
                f.display()
            );
        }
        env.extend(
            wharf_types::parse::env_file(&content, &host_env)
                .with_context(|| format!("env file {}", f.display()))?,
        );
    }
    for e in flags {
        env.extend(wharf_types::parse::env_entry(e, &host_env)?);
    }
    Ok(env)
}

/// Maps `run`/`create` flags into a create request. Parsing values and deciding what is
/// allowed is the engine's (`wharf_engine::validate`); this only copies.
pub fn build_request(a: &RunArgs) -> anyhow::Result<CreateRequest> {
    let (image, args) = a
        .image_and_command
        .split_first()
        .context("\"run\" requires at least 1 argument: IMAGE [COMMAND] [ARG...]")?;
    let env = env_from_flags(&a.env_file, &a.env)?;
    let mut mounts_cfg = Vec::new();
    if !a.volume.is_empty() {
        // docker 23+: `-v ./rel:/x` is relative to the current directory
        let cwd = std::env::current_dir().context("current directory")?;
        for v in &a.volume {
            mounts_cfg.push(mounts::parse_volume_flag_from(v, &cwd)?);
        }
    }
    for m in &a.mount {
        mounts_cfg.push(mounts::parse_mount_flag(m)?);
    }
    for t in &a.tmpfs {
        mounts_cfg.push(mounts::parse_tmpfs_flag(t)?);
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(CreateRequest {
        image: image.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck: None,
        name: a.name.clone(),
        args: args.to_vec(),
        entrypoint: a.entrypoint.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        tty: a.tty,
        stdin: a.interactive,
        labels,
        host: HostConfig {
            mounts: mounts_cfg,
            privileged: a.privileged,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
            pids_limit: a.pids_limit,
            readonly_rootfs: a.read_only,
            auto_remove: a.rm,
            init: a.init,
            group_add: a.group_add.clone(),
            ..Default::default()
        },
        flags: CreateFlags {
            memory: a.memory.clone(),
            cpus: a.cpus.clone(),
            ulimits: a.ulimit.clone(),
            network: Some(a.network.clone()),
            publish: a.publish.clone(),
            publish_all: a.publish_all,
            restart: Some(a.restart.clone()),
            log_driver: a.log_driver.clone(),
            log_opts: a.log_opt.clone(),
            health_cmd: a.health_cmd.clone(),
            health_interval: a.health_interval.clone(),
            health_timeout: a.health_timeout.clone(),
            health_start_period: a.health_start_period.clone(),
            health_retries: a.health_retries,
            no_healthcheck: a.no_healthcheck,
        },
    })
}

pub fn run(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    if let Some(code) = super::check_tty(a.interactive && !a.detach, a.tty) {
        return Ok(code);
    }
    let req = build_request(a)?;
    let engine = super::open_engine(cli)?;
    if a.detach {
        let rec = engine.run_detached(req)?;
        println!("{}", rec.id);
        return Ok(0);
    }
    Ok(engine.run_foreground(req)?)
}
