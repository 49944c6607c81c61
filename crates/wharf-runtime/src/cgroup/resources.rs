//! Writing a container's resource limits into its cgroup directories, on v1 and pure v2 (the
//! hybrid layout's unified hierarchy only tracks processes). Used when a cgroup is created
//! and by `update` on a live one ([`super::Cgroup::update`]): only the fields that are set
//! are written. Must not decide limits (the engine does) nor skip one: a limit whose
//! controller or file the host lacks is an error naming it (fail closed).

use super::{controller_in, read_file, write_file, CgroupError, Dir, Layout, CPU_PERIOD_US};
use crate::spec::CgroupSpec;

fn missing(controller: &'static str, limit: &'static str) -> CgroupError {
    CgroupError::MissingController { controller, limit }
}

/// Checks, before anything is written, that every requested limit has its controller and
/// a valid value.
pub(super) fn check(layout: &Layout, spec: &CgroupSpec) -> Result<(), CgroupError> {
    let r = &spec.resources;
    let v2 = matches!(layout, Layout::V2 { .. });
    let need = |c: &'static str, limit: &'static str| {
        if controller_in(layout, c) {
            Ok(())
        } else {
            Err(missing(c, limit))
        }
    };
    if r.cpu_shares.is_some() {
        need("cpu", "cpu-shares")?;
    }
    if r.cpu_period.is_some() || r.cpu_quota.is_some() {
        need("cpu", "cpu-quota/cpu-period")?;
    }
    if r.cpuset_cpus.is_some() || r.cpuset_mems.is_some() {
        need("cpuset", "cpuset")?;
    }
    for (set, limit) in [
        (r.memory_swap.is_some(), "memory-swap"),
        (r.memory_reservation.is_some(), "memory-reservation"),
        (r.memory_swappiness.is_some(), "memory-swappiness"),
        (r.oom_kill_disable, "oom-kill-disable"),
    ] {
        if set {
            need("memory", limit)?;
        }
    }
    if v2 && r.memory_swappiness.is_some() {
        return Err(missing("memory (v1)", "memory-swappiness"));
    }
    if v2 && r.oom_kill_disable {
        return Err(missing("memory (v1)", "oom-kill-disable"));
    }
    let io = if v2 { "io" } else { "blkio" };
    let blkio = r.blkio_weight.is_some()
        || !r.blkio_weight_device.is_empty()
        || !r.read_bps.is_empty()
        || !r.write_bps.is_empty()
        || !r.read_iops.is_empty()
        || !r.write_iops.is_empty();
    if blkio {
        need(io, "block I/O")?;
    }
    for rule in &r.devices {
        super::check_device_rule(rule)?;
    }
    Ok(())
}

/// Writes the limits of `spec` that are set into one directory (`quota`: the CFS quota
/// from `nano_cpus`).
pub(super) fn write(
    d: &Dir,
    pure_v2: bool,
    spec: &CgroupSpec,
    quota: Option<i64>,
) -> Result<(), CgroupError> {
    if d.v2 {
        if pure_v2 {
            write_v2(d, spec, quota)?;
        }
        return Ok(());
    }
    let has = |c: &str| d.controllers.iter().any(|x| x == c);
    let r = &spec.resources;
    if has("memory") {
        write_v1_memory(d, spec)?;
        if let Some(v) = r.memory_reservation {
            write_file(&d.path, "memory.soft_limit_in_bytes", &v.to_string())?;
        }
        if let Some(v) = r.memory_swappiness {
            write_file(&d.path, "memory.swappiness", &v.to_string())?;
        }
        if r.oom_kill_disable {
            write_file(&d.path, "memory.oom_control", "1")?;
        }
    }
    if has("cpu") {
        if let Some(v) = r.cpu_shares {
            write_file(&d.path, "cpu.shares", &v.to_string())?;
        }
        let period = r
            .cpu_period
            .or(quota.map(|_| CPU_PERIOD_US as u64))
            .filter(|p| *p > 0);
        if let Some(p) = period {
            write_file(&d.path, "cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(q) = quota.or(r.cpu_quota) {
            write_file(&d.path, "cpu.cfs_quota_us", &q.to_string())?;
        }
    }
    if has("cpuset") {
        if let Some(c) = &r.cpuset_cpus {
            write_file(&d.path, "cpuset.cpus", c)?;
        }
        if let Some(m) = &r.cpuset_mems {
            write_file(&d.path, "cpuset.mems", m)?;
        }
    }
    if has("pids") {
        if let Some(p) = spec.pids_limit {
            write_file(&d.path, "pids.max", &pids_value(p))?;
        }
    }
    if has("blkio") {
        if let Some(w) = r.blkio_weight {
            let f = first_existing(d, &["blkio.weight", "blkio.bfq.weight"])
                .ok_or_else(|| missing("blkio (weight: CFQ or BFQ scheduler)", "blkio-weight"))?;
            write_file(&d.path, f, &w.to_string())?;
        }
        if !r.blkio_weight_device.is_empty() {
            let f = first_existing(d, &["blkio.weight_device", "blkio.bfq.weight_device"])
                .ok_or_else(|| {
                    missing(
                        "blkio (weight: CFQ or BFQ scheduler)",
                        "blkio-weight-device",
                    )
                })?;
            for (ma, mi, w) in &r.blkio_weight_device {
                write_file(&d.path, f, &format!("{ma}:{mi} {w}"))?;
            }
        }
        for (file, list) in [
            ("blkio.throttle.read_bps_device", &r.read_bps),
            ("blkio.throttle.write_bps_device", &r.write_bps),
            ("blkio.throttle.read_iops_device", &r.read_iops),
            ("blkio.throttle.write_iops_device", &r.write_iops),
        ] {
            for (ma, mi, rate) in list {
                write_file(&d.path, file, &format!("{ma}:{mi} {rate}"))?;
            }
        }
    }
    Ok(())
}

/// A pids limit below 1 is unlimited (`update --pids-limit -1`).
fn pids_value(p: i64) -> String {
    if p > 0 {
        p.to_string()
    } else {
        "max".to_string()
    }
}

fn first_existing(d: &Dir, files: &[&'static str]) -> Option<&'static str> {
    files.iter().copied().find(|f| d.path.join(f).exists())
}

fn parse_limit(s: &str) -> i64 {
    match s.trim() {
        "max" => i64::MAX,
        v => v.parse().unwrap_or(i64::MAX),
    }
}

/// v1 memory and memory+swap, written in the order the kernel accepts (memsw ≥ memory at
/// every step): an unset `memory_swap` with a memory limit is docker's default, twice the
/// memory; swap accounting missing is only an error when swap was asked for.
fn write_v1_memory(d: &Dir, spec: &CgroupSpec) -> Result<(), CgroupError> {
    let memsw = "memory.memsw.limit_in_bytes";
    let has_memsw = d.path.join(memsw).exists();
    let explicit = spec.resources.memory_swap;
    if explicit.is_some() && !has_memsw {
        return Err(missing("memory (swap accounting)", "memory-swap"));
    }
    let swap = match (explicit, spec.memory) {
        (Some(s), _) => Some(s),
        (None, Some(m)) if has_memsw => Some(m.saturating_mul(2)),
        _ => None,
    };
    let Some(swap) = swap else {
        if let Some(m) = spec.memory {
            write_file(&d.path, "memory.limit_in_bytes", &m.to_string())?;
        }
        return Ok(());
    };
    let current = parse_limit(&read_file(&d.path, memsw)?);
    let grows = swap == -1 || swap > current;
    if grows {
        write_file(&d.path, memsw, &swap.to_string())?;
    }
    if let Some(m) = spec.memory {
        write_file(&d.path, "memory.limit_in_bytes", &m.to_string())?;
    }
    if !grows {
        write_file(&d.path, memsw, &swap.to_string())?;
    }
    Ok(())
}

/// docker's (runc's) conversion of cpu shares to the v2 weight.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

fn write_v2(d: &Dir, spec: &CgroupSpec, quota: Option<i64>) -> Result<(), CgroupError> {
    let r = &spec.resources;
    if let Some(m) = spec.memory {
        write_file(&d.path, "memory.max", &m.to_string())?;
    }
    let has_swap = d.path.join("memory.swap.max").exists();
    if r.memory_swap.is_some() && !has_swap {
        return Err(missing("memory (swap accounting)", "memory-swap"));
    }
    match (r.memory_swap, spec.memory) {
        (Some(-1), _) => write_file(&d.path, "memory.swap.max", "max")?,
        (Some(total), m) => {
            let mem = match m {
                Some(m) => m,
                None => parse_limit(&read_file(&d.path, "memory.max")?),
            };
            let swap = total.saturating_sub(mem).max(0);
            write_file(&d.path, "memory.swap.max", &swap.to_string())?;
        }
        (None, Some(m)) if has_swap => write_file(&d.path, "memory.swap.max", &m.to_string())?,
        _ => {}
    }
    if let Some(v) = r.memory_reservation {
        write_file(&d.path, "memory.low", &v.to_string())?;
    }
    if let Some(v) = r.cpu_shares {
        write_file(&d.path, "cpu.weight", &shares_to_weight(v).to_string())?;
    }
    if quota.is_some() || r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let cur = read_file(&d.path, "cpu.max").unwrap_or_default();
        let mut it = cur.split_whitespace();
        let (cur_q, cur_p) = (
            it.next().unwrap_or("max").to_string(),
            it.next().unwrap_or("100000").to_string(),
        );
        let period = match (r.cpu_period, quota) {
            (Some(p), _) => p.to_string(),
            (None, Some(_)) => CPU_PERIOD_US.to_string(),
            (None, None) => cur_p,
        };
        let q = match quota.or(r.cpu_quota) {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            None => cur_q,
        };
        write_file(&d.path, "cpu.max", &format!("{q} {period}"))?;
    }
    if let Some(c) = &r.cpuset_cpus {
        write_file(&d.path, "cpuset.cpus", c)?;
    }
    if let Some(m) = &r.cpuset_mems {
        write_file(&d.path, "cpuset.mems", m)?;
    }
    if let Some(p) = spec.pids_limit {
        write_file(&d.path, "pids.max", &pids_value(p))?;
    }
    if let Some(w) = r.blkio_weight {
        let f = first_existing(d, &["io.weight", "io.bfq.weight"])
            .ok_or_else(|| missing("io (weight: io.cost or BFQ)", "blkio-weight"))?;
        write_file(&d.path, f, &format!("default {w}"))?;
    }
    if !r.blkio_weight_device.is_empty() {
        let f = first_existing(d, &["io.weight", "io.bfq.weight"])
            .ok_or_else(|| missing("io (weight: io.cost or BFQ)", "blkio-weight-device"))?;
        for (ma, mi, w) in &r.blkio_weight_device {
            write_file(&d.path, f, &format!("{ma}:{mi} {w}"))?;
        }
    }
    for (key, list) in [
        ("rbps", &r.read_bps),
        ("wbps", &r.write_bps),
        ("riops", &r.read_iops),
        ("wiops", &r.write_iops),
    ] {
        for (ma, mi, rate) in list {
            write_file(&d.path, "io.max", &format!("{ma}:{mi} {key}={rate}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion_as_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
