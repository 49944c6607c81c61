//! Validation and defaulting of a create request before anything is written: the values a
//! front end passes as the user typed them ([`CreateFlags`]: sizes, durations, network,
//! restart policy, log options, seccomp profile paths) are parsed here with
//! `wharf_types::parse`, and the decisions docker's daemon makes are made here: the memory
//! minimum, the CPU range, `--rm` with `--restart`, which networks exist, log options, and
//! reading a seccomp profile file (bounded, regular files only) into the record, the mount
//! strings (`-v`, `--mount`, `--tmpfs`, parsed by `crate::mounts`, `-v ./rel` against the
//! caller's working directory), `--label` and `--env`/`--env-file` entries, and that a
//! `--mount type=bind` source exists.
//!
//! Front ends (the CLI, later the API) only map their input into a `CreateRequest`; they do
//! not decide. This module must not print or parse argv. A seccomp *path* is read with the
//! caller's privileges, which is the CLI user's in-process; an API route must pass the
//! profile's content (as docker's API does), never a path for the server to read.

use crate::create::CreateRequest;
use crate::refusal::ValidationError as V;
use crate::EngineError;
use std::path::{Path, PathBuf};
use wharf_types::container::{
    HostConfig, LogConfig, MountConfig, MountKind, NetworkMode, RestartPolicy,
};
use wharf_types::oci::HealthConfig;
use wharf_types::parse;

/// docker's minimum memory limit (`-m`): 6 MB.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The largest seccomp profile read from a file.
pub const SECCOMP_PROFILE_MAX: u64 = 1 << 20;
/// The largest `--env-file` read.
pub const ENV_FILE_MAX: u64 = 1 << 20;

/// Create options exactly as the user gave them; empty/`None` leaves the request's typed
/// value (`CreateRequest::host`, `healthcheck`) as it is.
#[derive(Debug, Clone, Default)]
pub struct CreateFlags {
    /// `-m/--memory`: a size (`512m`).
    pub memory: Option<String>,
    /// `--cpus`: a decimal number of CPUs.
    pub cpus: Option<String>,
    /// `--ulimit name=soft[:hard]`.
    pub ulimits: Vec<String>,
    /// `--network` (`bridge` when not given, as docker).
    pub network: Option<String>,
    /// `-p`, `-P`, `--expose`.
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub expose: Vec<String>,
    /// `--ip`, `--ip6`, `--network-alias`, `--mac-address` (the container's endpoint).
    pub ip: Option<String>,
    pub ip6: Option<String>,
    pub network_aliases: Vec<String>,
    pub mac_address: Option<String>,
    /// `--dns`, `--dns-search`, `--dns-option`, `--add-host name:ip`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub add_hosts: Vec<String>,
    /// `--sysctl key=value` (docker's namespaced set, `wharf_types::sysctl`).
    pub sysctls: Vec<String>,
    /// `--link name[:alias]`.
    pub links: Vec<String>,
    /// `--restart`.
    pub restart: Option<String>,
    /// `--log-driver`, `--log-opt key=value`.
    pub log_driver: Option<String>,
    pub log_opts: Vec<String>,
    /// `--health-cmd` (`none` disables), `--health-interval|timeout|start-period` (Go
    /// durations), `--health-retries`, `--no-healthcheck`.
    pub health_cmd: Option<String>,
    pub health_interval: Option<String>,
    pub health_timeout: Option<String>,
    pub health_start_period: Option<String>,
    pub health_retries: Option<i64>,
    pub no_healthcheck: bool,
    /// `-v SRC:DST[:OPTS]` / `-v DST`; a source starting with `.` is taken relative to
    /// [`CreateFlags::cwd`] (docker 23+), and refused without one.
    pub volumes: Vec<String>,
    /// `--mount type=bind|volume|tmpfs,...`.
    pub mounts: Vec<String>,
    /// `--tmpfs /path[:opts]`.
    pub tmpfs: Vec<String>,
    /// The caller's working directory, for `-v ./rel` (an absolute path).
    pub cwd: Option<PathBuf>,
    /// `--label key[=value]`, added over `CreateRequest::labels`.
    pub labels: Vec<String>,
    /// `--env-file` paths (read with the caller's privileges, bounded, docker's rules), then
    /// `-e KEY[=value]` entries (a bare `KEY` takes this process's value), appended to
    /// `CreateRequest::env` in that order. An API route passes resolved `env` only.
    pub env_files: Vec<PathBuf>,
    pub env: Vec<String>,
    /// Resource limits, devices, namespace modes, `--shm-size`, `--label-file`, and the
    /// docker flags wharf refuses (`crate::resources`).
    pub resources: crate::resources::ResourceFlags,
    /// Mounts given as typed objects (the Engine API's `HostConfig.Mounts`), checked as
    /// `--mount` is and added after the `--tmpfs` ones.
    pub typed_mounts: Vec<crate::mounts::MountSpec>,
    /// Fields of a front end's request it could not map to anything here (an API body's
    /// `HostConfig.PidMode`, `Devices`, ...): the create is refused naming the first, so a
    /// request is never quietly run looser or different than asked.
    pub unsupported: Vec<String>,
    /// The request came from another process over the Engine API: no host file is read on
    /// its behalf (a `seccomp=<path>` is refused: the API passes the profile's content; its
    /// `env_files` and `cwd` are ignored).
    pub remote: bool,
}

fn invalid(e: V) -> EngineError {
    EngineError::Invalid(e)
}

fn parsed(e: parse::ParseError) -> EngineError {
    EngineError::Parse(e)
}

/// Applies `req.flags` to the typed request and validates the result with the machine's CPU
/// count; reads seccomp profile files. Called by `Engine::create` before anything is written.
pub fn prepare(mut req: CreateRequest) -> Result<CreateRequest, EngineError> {
    let mut flags = std::mem::take(&mut req.flags);
    if flags.remote {
        flags.env_files.clear();
        flags.cwd = None;
    }
    if let Some(field) = flags.unsupported.first() {
        return Err(invalid(V::UnsupportedField {
            field: field.clone(),
        }));
    }
    apply_flags(&mut req, &flags)?;
    crate::resources::apply(&mut req, &flags.resources, flags.remote)?;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    check_host(&req.host, ncpu)?;
    crate::resources::check(&req.host, req.hostname.is_some())?;
    if let Some(d) = &req.domainname {
        wharf_types::hostname::validate(d)?;
    }
    check_ports(&req)?;
    check_network_options(&req)?;
    if flags.remote {
        refuse_profile_paths(&req.host.security_opt)?;
    }
    read_seccomp_profiles(&mut req.host.security_opt)?;
    check_bind_sources(&req.host.mounts)?;
    Ok(req)
}

/// `--mount type=bind` needs an existing source (docker's daemon refuses a missing one; only
/// `-v` creates it).
pub fn check_bind_sources(mounts: &[MountConfig]) -> Result<(), EngineError> {
    for m in mounts {
        if m.kind == MountKind::Bind && !m.create_mountpoint {
            bind_source_exists(&m.source)?;
        }
    }
    Ok(())
}

/// docker's "bind source path does not exist" error for a missing source.
pub fn bind_source_exists(source: &str) -> Result<(), EngineError> {
    match std::fs::metadata(source) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(invalid(V::BindSourceMissing {
            source_path: source.to_string(),
        })),
        _ => Ok(()),
    }
}

/// Parses the flags into the typed request (no I/O but `--env-file`).
pub fn apply_flags(req: &mut CreateRequest, f: &CreateFlags) -> Result<(), EngineError> {
    apply_network_flags(req, f)?;
    req.env.extend(env_from_flags(&f.env_files, &f.env)?);
    for l in &f.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        req.labels.insert(k.to_string(), v.to_string());
    }
    req.host.mounts.extend(mounts_from_flags(f)?);
    if let Some(m) = &f.memory {
        req.host.memory = parse::size(m).map_err(parsed)?;
    }
    if let Some(c) = &f.cpus {
        req.host.nano_cpus = parse::cpus(c).map_err(parsed)?;
    }
    for u in &f.ulimits {
        req.host.ulimits.push(parse::ulimit(u).map_err(parsed)?);
    }
    if let Some(r) = &f.restart {
        req.host.restart_policy = RestartPolicy::parse(r)
            .ok_or_else(|| invalid(V::RestartPolicy { value: r.clone() }))?;
    }
    // docker's default, recorded as such whoever asked (inspect shows "no")
    if req.host.restart_policy.name.is_empty() {
        req.host.restart_policy.name = "no".into();
    }
    if let Some(d) = &f.log_driver {
        req.host.log_config.driver = d.clone();
    }
    for o in &f.log_opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| invalid(V::LogOpt { opt: o.clone() }))?;
        req.host
            .log_config
            .config
            .insert(k.to_string(), v.to_string());
    }
    if let Some(h) = healthcheck(f)? {
        req.healthcheck = Some(h);
    }
    Ok(())
}

/// `--network` as docker reads it: `bridge` (also `default` and an empty value), `none`,
/// `host`, `container:<name|id>`, else a user network's name or id — whether that network
/// or container exists is decided at create ([`crate::network::config`]).
pub fn network_mode(name: &str) -> NetworkMode {
    if name.is_empty() {
        NetworkMode::Bridge
    } else {
        NetworkMode::from_docker(name)
    }
}

/// The network flags into the typed request: `--network`, `-p` (docker's grammar, one
/// binding per container port; the ports become exposed ones too), `-P`, `--expose`,
/// `--ip`, `--network-alias`, `--mac-address`, `--dns*`, `--add-host`, `--sysctl`.
pub fn apply_network_flags(req: &mut CreateRequest, f: &CreateFlags) -> Result<(), EngineError> {
    use wharf_types::netopts;
    use wharf_types::ports;
    if let Some(n) = &f.network {
        req.host.network_mode = network_mode(n);
    }
    for p in &f.publish {
        for m in ports::parse_publish(p)? {
            let key = m.container.to_string();
            req.exposed_ports.insert(key.clone());
            req.host
                .port_bindings
                .entry(key)
                .or_default()
                .push(m.binding());
        }
    }
    req.host.publish_all_ports |= f.publish_all;
    for e in &f.expose {
        for k in ports::expose_range(e)? {
            req.exposed_ports.insert(k.to_string());
        }
    }
    if f.ip.is_some() || f.ip6.is_some() {
        let mut ipam = wharf_types::container::EndpointIpamConfig::default();
        if let Some(ip) = &f.ip {
            ipam.ipv4_address = netopts::parse_ip(ip)?.to_string();
        }
        if let Some(ip) = &f.ip6 {
            ipam.ipv6_address = netopts::parse_ip6(ip)?.to_string();
        }
        req.endpoint.ipam_config = Some(ipam);
    }
    for a in &f.network_aliases {
        if !req.endpoint.aliases.contains(a) {
            req.endpoint.aliases.push(a.clone());
        }
    }
    if let Some(m) = &f.mac_address {
        req.mac_address = netopts::format_mac(&netopts::parse_mac(m)?);
    }
    for d in &f.dns {
        req.host.dns.push(netopts::parse_dns(d)?.to_string());
    }
    for s in &f.dns_search {
        netopts::validate_dns_search(s)?;
        req.host.dns_search.push(s.trim().to_string());
    }
    req.host.dns_options.extend(f.dns_options.iter().cloned());
    for h in &f.add_hosts {
        req.host
            .extra_hosts
            .push(netopts::parse_extra_host(h)?.to_docker());
    }
    for s in &f.sysctls {
        let (k, v) = wharf_types::sysctl::parse(s)?;
        req.host.sysctls.insert(k, v);
    }
    for l in &f.links {
        let (target, alias) = parse_link(l)?;
        // docker's recorded form; this container's name is filled in at create
        req.host.links.push(format!("/{target}:/{alias}"));
    }
    Ok(())
}

/// `--link name[:alias]` (docker's `ParseLink`): the alias defaults to the name.
pub fn parse_link(v: &str) -> Result<(String, String), EngineError> {
    let bad = || {
        invalid(V::LinkFormat {
            value: v.to_string(),
        })
    };
    let mut parts = v.split(':');
    let target = parts.next().unwrap_or_default().trim_start_matches('/');
    let alias = parts.next().unwrap_or(target).trim_start_matches('/');
    if parts.next().is_some() || target.is_empty() || alias.is_empty() {
        return Err(bad());
    }
    let name_chars = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    if !name_chars(target) || !name_chars(alias) {
        return Err(bad());
    }
    Ok((target.to_string(), alias.to_string()))
}

/// docker's conflicts between the network mode and the other network options (its
/// `validateNetContainerMode`, in its order), the user's values only (an image's EXPOSE
/// never conflicts): `container:` shares another container's hostname, files and ports;
/// `host` has the host's MAC; `none` has nothing to publish on; `--ip` and
/// `--network-alias` need a user-defined network; a `net.*` `--sysctl` needs the
/// container's own network namespace (the IPC ones are checked against `--ipc` by
/// `crate::resources::check`).
pub fn check_network_options(req: &CreateRequest) -> Result<(), EngineError> {
    let h = &req.host;
    let mode = &h.network_mode;
    for (key, value) in &h.sysctls {
        wharf_types::sysctl::check(key, value)?;
        let net =
            wharf_types::sysctl::namespace_of(key) == Some(wharf_types::sysctl::Namespace::Net);
        match mode {
            NetworkMode::Host if net => {
                return Err(invalid(V::SysctlHostNetwork { key: key.clone() }))
            }
            NetworkMode::Container(_) if net => {
                return Err(invalid(V::SysctlJoinedNetwork { key: key.clone() }))
            }
            _ => {}
        }
    }
    let publishes = !h.port_bindings.is_empty() || h.publish_all_ports;
    if let NetworkMode::Container(_) = mode {
        if req.hostname.is_some() {
            return Err(invalid(V::NetworkHostname));
        }
        if !h.dns.is_empty() || !h.dns_search.is_empty() || !h.dns_options.is_empty() {
            return Err(invalid(V::NetworkDns));
        }
        if !h.extra_hosts.is_empty() {
            return Err(invalid(V::NetworkHosts));
        }
    }
    if matches!(mode, NetworkMode::Container(_) | NetworkMode::Host) && !req.mac_address.is_empty()
    {
        return Err(invalid(V::NetworkMac));
    }
    if let NetworkMode::Container(_) = mode {
        if publishes {
            return Err(invalid(V::NetworkPublish));
        }
        if !req.exposed_ports.is_empty() {
            return Err(invalid(V::NetworkExpose));
        }
    }
    if *mode == NetworkMode::None && publishes {
        return Err(invalid(V::PublishNoNetwork));
    }
    if !h.links.is_empty() {
        match mode {
            NetworkMode::Host => {
                return Err(invalid(V::LinkNetworkMode {
                    what: "host type networking",
                }))
            }
            NetworkMode::Container(_) => {
                return Err(invalid(V::LinkNetworkMode {
                    what: "container type network",
                }))
            }
            _ => {}
        }
    }
    // ::1 cannot be published in the kernel (no userland proxy here)
    for b in h.port_bindings.values().flatten() {
        let ip = b.host_ip.trim_start_matches('[').trim_end_matches(']');
        if ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|i| i.is_ipv6() && i.is_loopback())
        {
            return Err(invalid(V::PublishIpv6Loopback));
        }
    }
    if !matches!(mode, NetworkMode::User(_)) {
        if req.endpoint.ipam_config.is_some() {
            return Err(crate::network::alloc::AllocError::AddressOnDefault.into());
        }
        if !req.endpoint.aliases.is_empty() {
            return Err(invalid(V::NetworkAlias));
        }
    }
    Ok(())
}

fn healthcheck(f: &CreateFlags) -> Result<Option<HealthConfig>, EngineError> {
    if f.no_healthcheck || f.health_cmd.as_deref() == Some("none") {
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    // negative and sub-millisecond values are refused by `create::validate_healthcheck`
    let dur = |v: &Option<String>| v.as_deref().map(parse::go_duration).transpose();
    let h = HealthConfig {
        test: f
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
            .unwrap_or_default(),
        interval: dur(&f.health_interval).map_err(parsed)?,
        timeout: dur(&f.health_timeout).map_err(parsed)?,
        start_period: dur(&f.health_start_period).map_err(parsed)?,
        retries: f.health_retries,
    };
    Ok((h != HealthConfig::default()).then_some(h))
}

/// `-v`, then `--mount`, then `--tmpfs`, parsed (`crate::mounts`) in that order.
pub fn mounts_from_flags(f: &CreateFlags) -> Result<Vec<MountConfig>, EngineError> {
    let mut out = Vec::with_capacity(f.volumes.len() + f.mounts.len() + f.tmpfs.len());
    for v in &f.volumes {
        out.push(match &f.cwd {
            Some(cwd) => crate::mounts::parse_volume_flag_from(v, cwd)?,
            None => crate::mounts::parse_volume_flag(v)?,
        });
    }
    for m in &f.mounts {
        out.push(crate::mounts::parse_mount_flag(m)?);
    }
    for t in &f.tmpfs {
        out.push(crate::mounts::parse_tmpfs_flag(t)?);
    }
    for m in &f.typed_mounts {
        out.push(crate::mounts::from_spec(m)?);
    }
    Ok(out)
}

fn host_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// `--env-file` files then `-e` values, with docker's rules (`wharf_types::parse`): a bare
/// `VAR` takes this process's value; each file is read bounded ([`ENV_FILE_MAX`]). Shared by
/// create and exec.
pub fn env_from_flags(files: &[PathBuf], flags: &[String]) -> Result<Vec<String>, EngineError> {
    use std::io::Read;
    let mut env = Vec::new();
    for f in files {
        let mut content = Vec::new();
        std::fs::File::open(f)
            .and_then(|file| file.take(ENV_FILE_MAX + 1).read_to_end(&mut content))
            .map_err(|e| EngineError::io("open", f, e))?;
        if content.len() as u64 > ENV_FILE_MAX {
            return Err(invalid(V::EnvFileTooLarge {
                path: f.display().to_string(),
                max: ENV_FILE_MAX,
            }));
        }
        env.extend(parse::env_file(&content, &host_env).map_err(|error| {
            invalid(V::EnvFile {
                path: f.display().to_string(),
                error,
            })
        })?);
    }
    for e in flags {
        env.extend(parse::env_entry(e, &host_env).map_err(parsed)?);
    }
    Ok(env)
}

/// docker's daemon-side checks of a host config, for every caller (no I/O).
pub fn check_host(h: &HostConfig, ncpu: usize) -> Result<(), EngineError> {
    if h.memory < 0 {
        return Err(invalid(V::MemoryNegative { bytes: h.memory }));
    }
    if h.memory != 0 && h.memory < MIN_MEMORY {
        return Err(invalid(V::MemoryBelowMinimum { bytes: h.memory }));
    }
    let max = i64::try_from(ncpu)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000);
    if h.nano_cpus < 0 || (h.nano_cpus > 0 && (h.nano_cpus < 10_000_000 || h.nano_cpus > max)) {
        return Err(invalid(V::CpuRange {
            nano_cpus: h.nano_cpus,
            ncpu,
        }));
    }
    let rp = &h.restart_policy;
    if !matches!(
        rp.name.as_str(),
        "" | "no" | "always" | "unless-stopped" | "on-failure"
    ) || rp.maximum_retry_count < 0
        || (rp.maximum_retry_count > 0 && rp.name != "on-failure")
    {
        return Err(invalid(V::RestartPolicy {
            value: format!("{}:{}", rp.name, rp.maximum_retry_count),
        }));
    }
    if h.auto_remove && !matches!(h.restart_policy.name.as_str(), "" | "no") {
        return Err(invalid(V::RestartWithAutoRemove {
            restart: h.restart_policy.name.clone(),
        }));
    }
    check_log_config(&h.log_config)?;
    Ok(())
}

/// Port keys and bindings as typed values (an API caller's `ExposedPorts`/`PortBindings`):
/// each must be what `-p`/`--expose` could have produced, as the start path reads them.
pub fn check_ports(req: &CreateRequest) -> Result<(), EngineError> {
    use wharf_types::ports::{PortKey, PortMapping};
    let bad = |port: &str| invalid(V::PortSpec { port: port.into() });
    for k in &req.exposed_ports {
        PortKey::parse(k).map_err(|_| bad(k))?;
    }
    for (k, bindings) in &req.host.port_bindings {
        let key = PortKey::parse(k).map_err(|_| bad(k))?;
        for b in bindings {
            PortMapping::from_binding(key, b)
                .ok_or_else(|| bad(&format!("{}:{}:{k}", b.host_ip, b.host_port)))?;
        }
    }
    Ok(())
}

fn check_log_config(cfg: &LogConfig) -> Result<(), EngineError> {
    wharf_logs::validate(cfg).map_err(EngineError::Log)
}

/// `seccomp=<file>` security options become `seccomp=<profile JSON>`, as docker records them:
/// the file must be a regular file of at most [`SECCOMP_PROFILE_MAX`] bytes holding JSON.
/// `unconfined` and inline JSON (an API caller's) stay as they are.
/// An API request names no host file: `seccomp=` must be the profile itself (or
/// `unconfined`), never a path the server would read with its privileges.
fn refuse_profile_paths(opts: &[String]) -> Result<(), EngineError> {
    for o in opts {
        if let Some(("seccomp", value)) = o.split_once('=').or_else(|| o.split_once(':')) {
            if !(value.is_empty() || value == "unconfined" || value.trim_start().starts_with('{')) {
                return Err(invalid(V::UnsupportedField {
                    field: format!("SecurityOpt seccomp={value} (a profile path on the server)"),
                }));
            }
        }
    }
    Ok(())
}

pub fn read_seccomp_profiles(opts: &mut [String]) -> Result<(), EngineError> {
    for o in opts.iter_mut() {
        let Some(("seccomp", value)) = o.split_once('=').or_else(|| o.split_once(':')) else {
            continue;
        };
        if value.is_empty() || value == "unconfined" || value.trim_start().starts_with('{') {
            continue;
        }
        let content = wharf_sys::fs::read_small_file(None, Path::new(value), SECCOMP_PROFILE_MAX)
            .and_then(|c| c.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
            .map_err(|error| {
                invalid(V::SeccompProfileOpen {
                    path: value.into(),
                    error,
                })
            })?;
        let content = String::from_utf8(content)
            .map_err(|_| invalid(V::SeccompProfileUtf8 { path: value.into() }))?;
        serde_json::from_str::<serde_json::Value>(&content).map_err(|error| {
            invalid(V::SeccompProfileJson {
                path: value.into(),
                error,
            })
        })?;
        *o = format!("seccomp={content}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an API caller gives as typed values is checked as the flags are.
    #[test]
    fn typed_api_values() {
        use crate::mounts::MountSpec;
        let ok = |m: MountSpec| crate::mounts::from_spec(&m);
        let spec = |kind: &str, source: &str, target: &str| MountSpec {
            kind: kind.into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        };
        assert!(ok(spec("bind", "/srv", "/data")).is_ok());
        assert!(ok(spec("bind", "rel", "/data")).is_err());
        assert!(ok(spec("bind", "/srv", "/proc/sys")).is_err());
        assert!(ok(spec("volume", "../x", "/data")).is_err());
        assert!(ok(spec("npipe", "x", "/data")).is_err());
        let mut t = spec("tmpfs", "", "/tmp");
        t.tmpfs_size = 1 << 20;
        t.tmpfs_mode = 0o1777;
        assert_eq!(ok(t).unwrap().options, "size=1048576,mode=1777");
        let mut bad = spec("bind", "/srv", "/data");
        bad.tmpfs_size = 5;
        assert!(ok(bad).is_err());

        let mut req = CreateRequest::default();
        req.host.port_bindings.insert(
            "80/tcp".into(),
            vec![wharf_types::container::PortBinding {
                host_ip: String::new(),
                host_port: "8080".into(),
            }],
        );
        assert!(check_ports(&req).is_ok());
        req.host.port_bindings.insert(
            "80/tcp".into(),
            vec![wharf_types::container::PortBinding {
                host_ip: "not-an-ip".into(),
                host_port: "8080".into(),
            }],
        );
        assert!(check_ports(&req).is_err());
        let mut req = CreateRequest::default();
        req.exposed_ports.insert("http".into());
        assert!(check_ports(&req).is_err());

        let mut h = HostConfig::default();
        h.restart_policy.name = "sometimes".into();
        assert!(check_host(&h, 2).is_err());
        h.restart_policy = wharf_types::container::RestartPolicy {
            name: "always".into(),
            maximum_retry_count: 3,
        };
        assert!(check_host(&h, 2).is_err());

        assert!(refuse_profile_paths(&["seccomp=/etc/shadow".into()]).is_err());
        assert!(refuse_profile_paths(&["seccomp=unconfined".into()]).is_ok());
        assert!(
            refuse_profile_paths(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}".into()])
                .is_ok()
        );
        let mut req = CreateRequest::default();
        req.flags.unsupported = vec!["HostConfig.PidMode".into()];
        let e = prepare(req).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HostConfig.PidMode is not supported by wharf (refused rather than ignored)"
        );
    }

    #[test]
    fn links_as_docker_parses_them() {
        let ok = |v: &str| parse_link(v).map_err(|e| e.to_string());
        assert_eq!(ok("db"), Ok(("db".into(), "db".into())));
        assert_eq!(ok("/db:/alias"), Ok(("db".into(), "alias".into())));
        assert_eq!(ok("db:my-db.x"), Ok(("db".into(), "my-db.x".into())));
        for bad in ["", ":x", "db:", "a:b:c", "db:a b", "d/b:x"] {
            assert_eq!(
                ok(bad),
                Err(format!("bad format for links: {bad}")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn host_checks() {
        let ok = HostConfig::default();
        assert!(check_host(&ok, 2).is_ok());
        let h = |f: &dyn Fn(&mut HostConfig)| {
            let mut h = HostConfig::default();
            f(&mut h);
            check_host(&h, 2)
        };
        assert!(h(&|h| h.memory = MIN_MEMORY).is_ok());
        assert!(h(&|h| h.memory = MIN_MEMORY - 1).is_err());
        assert!(h(&|h| h.memory = -1).is_err());
        assert!(h(&|h| h.nano_cpus = 2_000_000_000).is_ok());
        assert!(h(&|h| h.nano_cpus = 2_000_000_001).is_err());
        assert!(h(&|h| h.nano_cpus = 9_999_999).is_err());
        assert!(h(&|h| h.nano_cpus = -1).is_err());
    }
}
