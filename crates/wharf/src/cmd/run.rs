//! `wharf run`: turns docker's run flags into a create request and runs it in the foreground.

use crate::cli::{Cli, RunArgs, RunMoreArgs};
use anyhow::Context;
use wharf_engine::create::CreateRequest;
use wharf_engine::resources::{AttachFlags, ResourceFlags};
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
        domainname: a.more.domainname.clone(),
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
            resources: resource_flags(&a.more),
            ..Default::default()
        },
    })
}

/// The resource, device and namespace flags, and the names of the given flags wharf
/// refuses (the engine says why).
fn resource_flags(m: &RunMoreArgs) -> ResourceFlags {
    let mut refused: Vec<String> = Vec::new();
    let mut refuse = |given: bool, flag: &str| {
        if given {
            refused.push(flag.to_string());
        }
    };
    refuse(m.kernel_memory.is_some(), "--kernel-memory");
    refuse(!m.storage_opt.is_empty(), "--storage-opt");
    refuse(m.gpus.is_some(), "--gpus");
    refuse(m.cpu_rt_period.is_some(), "--cpu-rt-period");
    refuse(m.cpu_rt_runtime.is_some(), "--cpu-rt-runtime");
    refuse(m.cpu_count.is_some(), "--cpu-count");
    refuse(m.cpu_percent.is_some(), "--cpu-percent");
    refuse(m.io_maxbandwidth.is_some(), "--io-maxbandwidth");
    refuse(m.io_maxiops.is_some(), "--io-maxiops");
    refuse(!m.link_local_ip.is_empty(), "--link-local-ip");
    refuse(!m.annotation.is_empty(), "--annotation");
    refuse(
        m.volume_driver.as_deref().is_some_and(|d| d != "local"),
        "--volume-driver",
    );
    refuse(m.health_start_interval.is_some(), "--health-start-interval");
    refuse(m.use_api_socket, "--use-api-socket");
    ResourceFlags {
        cpu_shares: m.cpu_shares,
        cpu_period: m.cpu_period,
        cpu_quota: m.cpu_quota,
        cpuset_cpus: m.cpuset_cpus.clone(),
        cpuset_mems: m.cpuset_mems.clone(),
        memory_swap: m.memory_swap.clone(),
        memory_reservation: m.memory_reservation.clone(),
        memory_swappiness: m.memory_swappiness,
        oom_kill_disable: m.oom_kill_disable,
        oom_score_adj: m.oom_score_adj,
        blkio_weight: m.blkio_weight,
        blkio_weight_device: m.blkio_weight_device.clone(),
        device_read_bps: m.device_read_bps.clone(),
        device_write_bps: m.device_write_bps.clone(),
        device_read_iops: m.device_read_iops.clone(),
        device_write_iops: m.device_write_iops.clone(),
        devices: m.device.clone(),
        device_cgroup_rules: m.device_cgroup_rule.clone(),
        shm_size: m.shm_size.clone(),
        ipc: m.ipc.clone(),
        pid: m.pid.clone(),
        uts: m.uts.clone(),
        userns: m.userns.clone(),
        cgroupns: m.cgroupns.clone(),
        cgroup_parent: m.cgroup_parent.clone(),
        volumes_from: m.volumes_from.clone(),
        isolation: m.isolation.clone(),
        runtime: m.runtime.clone(),
        label_files: m.label_file.clone(),
        refused,
    }
}

/// A `run`/`create` whose IMAGE starts with `-` (an unknown flag): the subcommand path
/// and the flag, for clap's error.
pub fn leading_flag(c: &crate::cli::Command) -> Option<(Vec<&'static str>, String)> {
    use crate::cli::{Command as C, ContainerCommand as CC};
    let (path, a): (Vec<&'static str>, &RunArgs) = match c {
        C::Run(a) => (vec!["run"], a),
        C::Create(a) => (vec!["create"], a),
        C::Container(CC::Run(a)) => (vec!["container", "run"], a),
        C::Container(CC::Create(a)) => (vec!["container", "create"], a),
        _ => return None,
    };
    let first = a.image_and_command.first()?;
    (first.starts_with('-') && first.len() > 1).then(|| (path, first.clone()))
}

/// The attach flags as the engine checks them.
pub fn attach_flags(a: &RunArgs) -> AttachFlags {
    AttachFlags {
        attach: a.more.attach.clone(),
        detach: a.detach,
        interactive: a.interactive,
        tty: a.tty,
        sig_proxy: a.sig_proxy != "false",
        detach_keys: a.more.detach_keys.clone(),
    }
}

/// docker's `--cidfile`: refused when the file exists; written once the container exists.
pub fn check_cidfile(a: &RunArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.more.cidfile {
        if std::fs::symlink_metadata(p).is_ok() {
            anyhow::bail!(
                "Container ID file found, make sure the other container isn't running or delete {}",
                p.display()
            );
        }
    }
    Ok(())
}

fn write_cidfile(a: &RunArgs, id: &str) -> Result<(), wharf_engine::EngineError> {
    use std::io::Write;
    let Some(p) = &a.more.cidfile else {
        return Ok(());
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p)
        .and_then(|mut f| f.write_all(id.as_bytes()))
        .map_err(|e| wharf_engine::EngineError::io("write container ID file", p, e))
}

pub fn run(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    if let Some(code) = super::check_tty(a.interactive && !a.detach, a.tty) {
        return Ok(code);
    }
    let req = build_request(a)?;
    wharf_engine::resources::check_attach(&attach_flags(a))?;
    check_cidfile(a)?;
    let engine = super::open_engine(cli)?;
    super::distribution::ensure_image(
        &engine,
        &req.image,
        &a.pull,
        a.platform.as_deref(),
        a.more.quiet,
    )?;
    if a.detach {
        let rec = engine.run_detached(req, &mut print_warning)?;
        if let Err(e) = write_cidfile(a, rec.id.as_str()) {
            let _ = engine.remove_container(rec.id.as_str(), true, false);
            return Err(e.into());
        }
        println!("{}", rec.id);
        return Ok(0);
    }
    Ok(
        engine.run_foreground_with(req, &mut print_warning, &mut |rec| {
            write_cidfile(a, rec.id.as_str())
        })?,
    )
}

/// A create's warning as docker's CLI shows it (stderr).
pub fn print_warning(w: &wharf_engine::run::Warning) {
    eprintln!("WARNING: {w}");
}
