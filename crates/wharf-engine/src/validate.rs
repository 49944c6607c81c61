//! Validation and defaulting of a create request before anything is written: the values a
//! front end passes as the user typed them ([`CreateFlags`]: sizes, durations, network,
//! restart policy, log options, seccomp profile paths) are parsed here with
//! `wharf_types::parse`, and the decisions docker's daemon makes are made here: the memory
//! minimum, the CPU range, `--rm` with `--restart`, which networks exist, log options, and
//! reading a seccomp profile file (bounded, regular files only) into the record, and that a
//! `--mount type=bind` source exists.
//!
//! Front ends (the CLI, later the API) only map their input into a `CreateRequest`; they do
//! not decide. This module must not print or parse argv. A seccomp *path* is read with the
//! caller's privileges, which is the CLI user's in-process; an API route must pass the
//! profile's content (as docker's API does), never a path for the server to read.

use crate::create::CreateRequest;
use crate::EngineError;
use std::path::Path;
use wharf_types::container::{
    HostConfig, LogConfig, MountConfig, MountKind, NetworkMode, RestartPolicy,
};
use wharf_types::oci::HealthConfig;
use wharf_types::parse;

/// docker's minimum memory limit (`-m`): 6 MB.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The largest seccomp profile read from a file.
pub const SECCOMP_PROFILE_MAX: u64 = 1 << 20;

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
    /// `--network`.
    pub network: Option<String>,
    /// `-p`, `-P`.
    pub publish: Vec<String>,
    pub publish_all: bool,
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
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

fn parsed(e: parse::ParseError) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

/// Applies `req.flags` to the typed request and validates the result with the machine's CPU
/// count; reads seccomp profile files. Called by `Engine::create` before anything is written.
pub fn prepare(mut req: CreateRequest) -> Result<CreateRequest, EngineError> {
    let flags = std::mem::take(&mut req.flags);
    apply_flags(&mut req, &flags)?;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    check_host(&req.host, ncpu)?;
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(invalid(format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {source}"
        ))),
        _ => Ok(()),
    }
}

/// Parses the flags into the typed request (no I/O).
pub fn apply_flags(req: &mut CreateRequest, f: &CreateFlags) -> Result<(), EngineError> {
    if !f.publish.is_empty() || f.publish_all {
        return Err(invalid(
            "publishing ports (-p/-P) needs bridge networking, which is not in this build yet",
        ));
    }
    if let Some(n) = &f.network {
        req.host.network_mode = network_mode(n)?;
    }
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
            .ok_or_else(|| invalid(format!("invalid restart policy {r:?}")))?;
    }
    if let Some(d) = &f.log_driver {
        req.host.log_config.driver = d.clone();
    }
    for o in &f.log_opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| invalid(format!("invalid --log-opt {o:?}: expected key=value")))?;
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

/// `--network`: only `none` and `host` exist in this build.
pub fn network_mode(name: &str) -> Result<NetworkMode, EngineError> {
    match name {
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        "bridge" | "default" => Err(invalid(
            "network \"bridge\" is not available in this build yet: use --network none or --network host",
        )),
        other => Err(invalid(format!("network {other} not found"))),
    }
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

/// docker's daemon-side checks of a host config, for every caller (no I/O).
pub fn check_host(h: &HostConfig, ncpu: usize) -> Result<(), EngineError> {
    if h.memory < 0 {
        return Err(invalid(format!("invalid memory limit: {}", h.memory)));
    }
    if h.memory != 0 && h.memory < MIN_MEMORY {
        return Err(invalid("minimum memory limit allowed is 6MB"));
    }
    let max = i64::try_from(ncpu)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000);
    if h.nano_cpus < 0 || (h.nano_cpus > 0 && (h.nano_cpus < 10_000_000 || h.nano_cpus > max)) {
        return Err(invalid(format!(
            "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if h.auto_remove && !matches!(h.restart_policy.name.as_str(), "" | "no") {
        return Err(EngineError::Conflict(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    check_log_config(&h.log_config)?;
    Ok(())
}

fn check_log_config(cfg: &LogConfig) -> Result<(), EngineError> {
    wharf_logs::validate(cfg).map_err(|e| invalid(e.to_string()))
}

/// `seccomp=<file>` security options become `seccomp=<profile JSON>`, as docker records them:
/// the file must be a regular file of at most [`SECCOMP_PROFILE_MAX`] bytes holding JSON.
/// `unconfined` and inline JSON (an API caller's) stay as they are.
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
            .map_err(|e| invalid(format!("opening seccomp profile ({value}) failed: {e}")))?;
        let content = String::from_utf8(content).map_err(|_| {
            invalid(format!(
                "decoding seccomp profile {value} failed: not utf-8"
            ))
        })?;
        serde_json::from_str::<serde_json::Value>(&content)
            .map_err(|e| invalid(format!("decoding seccomp profile {value} failed: {e}")))?;
        *o = format!("seccomp={content}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
