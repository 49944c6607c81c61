//! Building a container's create-time record: the image's defaults (Env, Entrypoint, Cmd,
//! WorkingDir, User) merged with the user's options the way docker merges them. Pure functions; `run`
//! does the I/O, `validate` parses and checks the user's options first.

use crate::refusal::ValidationError;
use crate::EngineError;
use std::collections::BTreeMap;
use wharf_types::container::{ContainerConfig, EmptyObject, HostConfig};
use wharf_types::oci::RunConfig;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a user asks for with `run`/`create` (docker's create body, after CLI parsing).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub image: String,
    pub name: Option<String>,
    /// Arguments after the image name.
    pub args: Vec<String>,
    /// `--entrypoint` (`Some("")` clears the image's entrypoint).
    pub entrypoint: Option<String>,
    /// `KEY=value` entries already resolved (an API caller's); `flags.env_files` and
    /// `flags.env` are parsed and appended by `validate::prepare`.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// `--domainname` (the NIS domain name in the container's UTS namespace).
    pub domainname: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    /// docker's `StdinOnce` (an API caller's `run -i`): stdin closes with the attached
    /// client's input.
    pub stdin_once: bool,
    /// Typed labels; `flags.labels` (`key[=value]`) are added over them.
    pub labels: BTreeMap<String, String>,
    /// `--stop-signal`, `--stop-timeout`.
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// `--health-*` / `--no-healthcheck` (Test ["NONE"]), merged over the image's.
    pub healthcheck: Option<wharf_types::oci::HealthConfig>,
    pub host: HostConfig,
    /// Container ports exposed by the user (`--expose`, and every `-p`'s), as `80/tcp`;
    /// merged with the image's EXPOSE into the record's `ExposedPorts`.
    pub exposed_ports: std::collections::BTreeSet<String>,
    /// `--mac-address`, canonical (`02:42:ac:11:00:02`).
    pub mac_address: String,
    /// The container's endpoint on its network (`--ip`, `--network-alias`); the network's
    /// id is filled in at create.
    pub endpoint: wharf_types::container::EndpointConfig,
    /// Options as the user typed them, parsed and applied over `host`/`healthcheck` by
    /// `validate::prepare` when the container is created.
    pub flags: crate::validate::CreateFlags,
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Image env, then the user's, later keys replacing earlier ones in place; PATH defaulted.
pub fn merge_env(
    image_env: &[String],
    user_env: &[String],
    hostname: &str,
    tty: bool,
) -> Vec<String> {
    let mut out: Vec<String> = vec![format!("HOSTNAME={hostname}")];
    let mut push = |e: &str| {
        let k = env_key(e);
        if let Some(slot) = out.iter_mut().find(|x| env_key(x) == k) {
            *slot = e.to_string();
        } else {
            out.push(e.to_string());
        }
    };
    for e in image_env {
        push(e);
    }
    for e in user_env {
        push(e);
    }
    if !out.iter().any(|e| env_key(e) == "PATH") {
        out.insert(1.min(out.len()), DEFAULT_PATH.to_string());
    }
    if tty && !out.iter().any(|e| env_key(e) == "TERM") {
        out.push("TERM=xterm".to_string());
    }
    out
}

/// docker's rules: --entrypoint replaces the image entrypoint AND drops the image cmd; args
/// replace the cmd.
pub fn merge_command(
    image: &RunConfig,
    entrypoint: Option<&str>,
    args: &[String],
) -> (Vec<String>, Vec<String>) {
    let (ep, image_cmd) = match entrypoint {
        Some("") => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.to_string()], Vec::new()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if args.is_empty() {
        image_cmd
    } else {
        args.to_vec()
    };
    (ep, cmd)
}

/// The user a container or exec runs as (`user[:group]`, from the flags or the image) and its
/// `--group-add` groups: numeric ids must be in 0..=2147483647 (see `wharf_types::user`).
/// Names are resolved later, inside the container.
pub fn validate_user(user: &str, group_add: &[String]) -> Result<(), EngineError> {
    wharf_types::user::parse_user_spec(user)?;
    for g in group_add {
        wharf_types::user::parse_id_or_name("group", g)?;
    }
    Ok(())
}

/// The Config part of the record.
pub fn container_config(
    req: &CreateRequest,
    image: &RunConfig,
    hostname: &str,
) -> Result<ContainerConfig, EngineError> {
    if let Some(h) = &req.healthcheck {
        validate_healthcheck(h)?;
    }
    let (entrypoint, cmd) = merge_command(image, req.entrypoint.as_deref(), &req.args);
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(ValidationError::NoCommand {
            image: req.image.clone(),
        }
        .into());
    }
    let working_dir = match req.workdir.as_deref() {
        Some(w) if !w.starts_with('/') => {
            return Err(ValidationError::WorkdirNotAbsolute { workdir: w.into() }.into())
        }
        Some(w) => w.to_string(),
        None => image
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string()),
    };
    let user = req
        .user
        .clone()
        .or_else(|| image.user.clone())
        .unwrap_or_default();
    validate_user(&user, &req.host.group_add)?;
    if let Some(h) = &req.hostname {
        wharf_types::hostname::validate(h)?;
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(req.labels.clone());
    Ok(ContainerConfig {
        hostname: hostname.to_string(),
        domainname: req.domainname.clone().unwrap_or_default(),
        user,
        env: merge_env(
            image.env.as_deref().unwrap_or_default(),
            &req.env,
            hostname,
            req.tty,
        ),
        cmd,
        entrypoint,
        working_dir,
        tty: req.tty,
        open_stdin: req.stdin,
        stdin_once: req.stdin && req.stdin_once,
        image: req.image.clone(),
        labels,
        stop_signal: req
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal.clone()),
        stop_timeout: req.stop_timeout,
        healthcheck: merge_healthcheck(image.healthcheck.as_ref(), req.healthcheck.as_ref()),
        exposed_ports: merge_exposed(image, &req.exposed_ports),
        mac_address: req.mac_address.clone(),
    })
}

/// The image's EXPOSE and the user's exposed ports, as docker's canonical keys (`80/tcp`);
/// an image key that is no port at all is left out (it could never be published).
pub fn merge_exposed(
    image: &RunConfig,
    user: &std::collections::BTreeSet<String>,
) -> BTreeMap<String, EmptyObject> {
    let image_keys = image.exposed_ports.iter().flat_map(|m| m.keys());
    image_keys
        .filter_map(|k| wharf_types::ports::PortKey::parse(k).ok())
        .map(|k| k.to_string())
        .chain(user.iter().cloned())
        .map(|k| (k, EmptyObject {}))
        .collect()
}

/// docker's shortest healthcheck duration (interval, timeout, start period); 0 = default.
pub const HEALTH_MIN_DURATION_NS: i64 = 1_000_000;

/// docker's create-time check of the caller's healthcheck (an image's is not refused: the
/// monitor clamps its durations to [`HEALTH_MIN_DURATION_NS`]).
pub fn validate_healthcheck(h: &wharf_types::oci::HealthConfig) -> Result<(), EngineError> {
    for (what, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
    ] {
        if let Some(ns) = v.filter(|&ns| ns != 0 && ns < HEALTH_MIN_DURATION_NS) {
            return Err(ValidationError::HealthcheckDuration { field: what, ns }.into());
        }
    }
    if let Some(retries) = h.retries.filter(|&r| r < 0) {
        return Err(ValidationError::HealthcheckRetries { retries }.into());
    }
    Ok(())
}

/// docker's rule: flags given on the command line replace the image's fields one by one;
/// a test of `["NONE"]` (from `--no-healthcheck` or `--health-cmd none`) disables the check.
pub fn merge_healthcheck(
    image: Option<&wharf_types::oci::HealthConfig>,
    user: Option<&wharf_types::oci::HealthConfig>,
) -> Option<wharf_types::oci::HealthConfig> {
    let mut out = image.cloned().unwrap_or_default();
    if let Some(u) = user {
        if !u.test.is_empty() {
            out.test = u.test.clone();
        }
        out.interval = u.interval.or(out.interval);
        out.timeout = u.timeout.or(out.timeout);
        out.start_period = u.start_period.or(out.start_period);
        out.retries = u.retries.or(out.retries);
    }
    if out.test.is_empty() {
        None
    } else {
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> RunConfig {
        RunConfig {
            env: Some(vec!["PATH=/bin".into(), "A=img".into()]),
            entrypoint: Some(vec!["/ep".into()]),
            cmd: Some(vec!["default".into()]),
            working_dir: Some("/srv".into()),
            user: Some("nobody".into()),
            ..Default::default()
        }
    }

    #[test]
    fn command_merging() {
        let i = img();
        assert_eq!(
            merge_command(&i, None, &[]),
            (vec!["/ep".to_string()], vec!["default".to_string()])
        );
        assert_eq!(
            merge_command(&i, None, &["x".into()]),
            (vec!["/ep".to_string()], vec!["x".to_string()])
        );
        assert_eq!(
            merge_command(&i, Some("sh"), &[]),
            (vec!["sh".to_string()], vec![])
        );
        assert_eq!(
            merge_command(&i, Some(""), &["echo".into()]),
            (vec![], vec!["echo".to_string()])
        );
    }

    #[test]
    fn env_merging() {
        let e = merge_env(
            &["PATH=/bin".into(), "A=img".into()],
            &["A=user".into(), "B=2".into()],
            "h",
            true,
        );
        assert_eq!(
            e,
            vec!["HOSTNAME=h", "PATH=/bin", "A=user", "B=2", "TERM=xterm"]
        );
        let e = merge_env(&[], &[], "h", false);
        assert_eq!(e, vec!["HOSTNAME=h".to_string(), DEFAULT_PATH.to_string()]);
    }

    #[test]
    fn config_defaults() {
        let req = CreateRequest {
            image: "busybox".into(),
            ..Default::default()
        };
        let c = container_config(&req, &img(), "abc").unwrap();
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.user, "nobody");
        let empty = RunConfig::default();
        assert!(container_config(&req, &empty, "abc").is_err());
        let bad = CreateRequest {
            image: "busybox".into(),
            workdir: Some("rel".into()),
            args: vec!["x".into()],
            ..Default::default()
        };
        assert!(container_config(&bad, &empty, "abc").is_err());
    }
}
