//! `wharf run`: turns docker's run flags into a create request and runs it in the foreground.

use crate::cli::{Cli, RunArgs};
use anyhow::Context;
use wharf_engine::create::CreateRequest;
use wharf_engine::validate::CreateFlags;
use wharf_types::container::HostConfig;

/// Maps `run`/`create` flags into a create request. Parsing values and deciding what is
/// allowed is the engine's (`wharf_engine::validate`); this only copies.
pub fn build_request(a: &RunArgs) -> anyhow::Result<CreateRequest> {
    let (image, args) = a
        .image_and_command
        .split_first()
        .context("\"run\" requires at least 1 argument: IMAGE [COMMAND] [ARG...]")?;
    Ok(CreateRequest {
        image: image.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck: None,
        name: a.name.clone(),
        args: args.to_vec(),
        entrypoint: a.entrypoint.clone(),
        env: Vec::new(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        tty: a.tty,
        stdin: a.interactive,
        stdin_once: false,
        labels: Default::default(),
        exposed_ports: Default::default(),
        mac_address: String::new(),
        endpoint: Default::default(),
        host: HostConfig {
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
            network: a.network.clone(),
            publish: a.publish.clone(),
            publish_all: a.publish_all,
            expose: a.expose.clone(),
            ip: a.ip.clone(),
            ip6: a.ip6.clone(),
            network_aliases: a.network_alias.clone(),
            mac_address: a.mac_address.clone(),
            dns: a.dns.clone(),
            dns_search: a.dns_search.clone(),
            dns_options: a.dns_option.clone(),
            add_hosts: a.add_host.clone(),
            sysctls: a.sysctl.clone(),
            links: a.link.clone(),
            restart: a.restart.clone(),
            log_driver: a.log_driver.clone(),
            log_opts: a.log_opt.clone(),
            health_cmd: a.health_cmd.clone(),
            health_interval: a.health_interval.clone(),
            health_timeout: a.health_timeout.clone(),
            health_start_period: a.health_start_period.clone(),
            health_retries: a.health_retries,
            no_healthcheck: a.no_healthcheck,
            volumes: a.volume.clone(),
            mounts: a.mount.clone(),
            tmpfs: a.tmpfs.clone(),
            // docker 23+: `-v ./rel:/x` is relative to the current directory
            cwd: std::env::current_dir().ok(),
            labels: a.label.clone(),
            env_files: a.env_file.clone(),
            env: a.env.clone(),
            ..Default::default()
        },
    })
}

pub fn run(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    if let Some(code) = super::check_tty(a.interactive && !a.detach, a.tty) {
        return Ok(code);
    }
    let req = build_request(a)?;
    let engine = super::open_engine(cli)?;
    super::distribution::ensure_image(&engine, &req.image, &a.pull, a.platform.as_deref())?;
    if a.detach {
        let rec = engine.run_detached(req, &mut print_warning)?;
        println!("{}", rec.id);
        return Ok(0);
    }
    Ok(engine.run_foreground(req, &mut print_warning)?)
}

/// A create's warning as docker's CLI shows it (stderr).
pub fn print_warning(w: &wharf_engine::run::Warning) {
    eprintln!("WARNING: {w}");
}
