//! `wharf run`: turns docker's run flags into a create request and runs it in the foreground.

use crate::cli::{Cli, RunArgs};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use wharf_engine::create::{parse_env_file, parse_env_flag, CreateRequest};
use wharf_engine::mounts;
use wharf_types::container::{HostConfig, NetworkMode, RlimitResource, Ulimit};

/// docker's RAMInBytes: a number with an optional binary unit b, k, m, g, t, p (and an
/// optional trailing "b": "32mb").
pub fn parse_memory(s: &str) -> anyhow::Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let value: f64 = num
        .parse()
        .with_context(|| format!("invalid size: {s:?}"))?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => bail!("invalid size: {s:?}"),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        bail!("invalid size: {s:?}");
    }
    Ok(bytes as i64)
}

/// `--cpus 1.5` → nano CPUs, bounded by the machine's CPU count like docker.
pub fn parse_cpus(s: &str) -> anyhow::Result<i64> {
    let v: f64 = s
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .with_context(|| format!("invalid argument {s:?} for \"--cpus\" flag"))?;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    if v < 0.01 || v > ncpu {
        bail!("range of CPUs is from 0.01 to {ncpu:.2}, as there are only {ncpu} CPUs available");
    }
    Ok((v * 1e9).round() as i64)
}

/// `--ulimit nofile=1024[:2048]`.
pub fn parse_ulimit(s: &str) -> anyhow::Result<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .with_context(|| format!("invalid ulimit argument: {s:?}"))?;
    let resource =
        RlimitResource::parse(name).with_context(|| format!("invalid ulimit type: {name:?}"))?;
    let parse = |v: &str| -> anyhow::Result<u64> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse()
            .with_context(|| format!("invalid ulimit value {v:?} in {s:?}"))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let v = parse(vals)?;
            (v, v)
        }
    };
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        resource,
        soft,
        hard,
    })
}

/// Go's time.ParseDuration subset docker accepts for health flags: `1h2m3s`, `500ms`, `1.5s`.
/// Returns nanoseconds.
pub fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let bad = || anyhow::anyhow!("invalid duration {s:?}: use a number and a unit (ms, s, m, h)");
    if s == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_end);
        let v: f64 = num.parse().map_err(|_| bad())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += v * mult;
        rest = tail;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(total as i64)
}

fn health_from_flags(a: &RunArgs) -> anyhow::Result<Option<wharf_types::oci::HealthConfig>> {
    if a.no_healthcheck || a.health_cmd.as_deref() == Some("none") {
        return Ok(Some(wharf_types::oci::HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    // the 1 ms minimum is the engine's (create refuses shorter durations)
    let dur = |v: &Option<String>| -> anyhow::Result<Option<i64>> {
        v.as_deref().map(parse_duration).transpose()
    };
    let h = wharf_types::oci::HealthConfig {
        test: a
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
            .unwrap_or_default(),
        interval: dur(&a.health_interval)?,
        timeout: dur(&a.health_timeout)?,
        start_period: dur(&a.health_start_period)?,
        retries: a.health_retries,
    };
    if h == wharf_types::oci::HealthConfig::default() {
        Ok(None)
    } else {
        Ok(Some(h))
    }
}

fn log_config_from_flags(a: &RunArgs) -> anyhow::Result<wharf_types::container::LogConfig> {
    let mut cfg = wharf_types::container::LogConfig::default();
    if let Some(d) = &a.log_driver {
        cfg.driver = d.clone();
    }
    for o in &a.log_opt {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("invalid --log-opt {o:?}: expected key=value"))?;
        cfg.config.insert(k.to_string(), v.to_string());
    }
    wharf_logs::validate(&cfg)?;
    Ok(cfg)
}

fn host_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

pub fn build_request(a: &RunArgs) -> anyhow::Result<CreateRequest> {
    let (image, args) = a
        .image_and_command
        .split_first()
        .context("\"run\" requires at least 1 argument: IMAGE [COMMAND] [ARG...]")?;
    if !a.publish.is_empty() || a.publish_all {
        bail!("publishing ports (-p/-P) needs bridge networking, which is not in this build yet");
    }
    let network_mode = match a.network.as_str() {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        "bridge" | "default" => {
            bail!("network \"bridge\" is not available in this build yet: use --network none or --network host")
        }
        other => bail!("network {other:?} not found"),
    };
    let mut env = Vec::new();
    for f in &a.env_file {
        let content =
            std::fs::read_to_string(f).with_context(|| format!("open env file {}", f.display()))?;
        env.extend(parse_env_file(
            &f.display().to_string(),
            &content,
            &host_env,
        )?);
    }
    for e in &a.env {
        if let Some(v) = parse_env_flag(e, &host_env)? {
            env.push(v);
        }
    }
    let mut mounts_cfg = Vec::new();
    for v in &a.volume {
        mounts_cfg.push(mounts::parse_volume_flag(v)?);
    }
    for m in &a.mount {
        mounts_cfg.push(mounts::parse_mount_flag(m)?);
    }
    for t in &a.tmpfs {
        mounts_cfg.push(mounts::parse_tmpfs_flag(t)?);
    }
    let memory = match &a.memory {
        Some(m) => {
            let b = parse_memory(m)?;
            if b != 0 && b < 6 * 1024 * 1024 {
                bail!("minimum memory limit allowed is 6MB");
            }
            b
        }
        None => 0,
    };
    let nano_cpus = match &a.cpus {
        Some(c) => parse_cpus(c)?,
        None => 0,
    };
    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        ulimits.push(parse_ulimit(u)?);
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut security_opt = Vec::new();
    for o in &a.security_opt {
        // docker reads a seccomp profile file at create time and records its contents
        match o.split_once('=').or_else(|| o.split_once(':')) {
            Some(("seccomp", path)) if path != "unconfined" && !path.is_empty() => {
                let meta = std::fs::metadata(path)
                    .with_context(|| format!("opening seccomp profile ({path}) failed"))?;
                if meta.len() > 1 << 20 {
                    bail!("seccomp profile {path} is larger than 1 MiB");
                }
                let content = std::fs::read_to_string(path)
                    .with_context(|| format!("opening seccomp profile ({path}) failed"))?;
                serde_json::from_str::<serde_json::Value>(&content)
                    .with_context(|| format!("decoding seccomp profile {path} failed"))?;
                security_opt.push(format!("seccomp={content}"));
            }
            _ => security_opt.push(o.clone()),
        }
    }
    let restart_policy = wharf_types::container::RestartPolicy::parse(&a.restart)
        .with_context(|| format!("invalid restart policy {:?}", a.restart))?;
    if a.rm && !matches!(restart_policy.name.as_str(), "" | "no") {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    Ok(CreateRequest {
        image: image.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck: health_from_flags(a)?,
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
            network_mode,
            privileged: a.privileged,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt,
            memory,
            nano_cpus,
            pids_limit: a.pids_limit,
            readonly_rootfs: a.read_only,
            auto_remove: a.rm,
            init: a.init,
            ulimits,
            group_add: a.group_add.clone(),
            restart_policy,
            log_config: log_config_from_flags(a)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory() {
        assert_eq!(parse_memory("32m").unwrap(), 32 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_memory("100").unwrap(), 100);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("12x").is_err());
        assert!(parse_memory("").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1").unwrap(), 1_000_000_000);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("1000").is_err());
        assert!(parse_cpus("NaN").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), 2_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        for bad in ["", "5", "s", "2x", "1..5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (1024, 2048));
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
    }
}
