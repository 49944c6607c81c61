//! `update`: a container's resource limits and restart policy changed after create, with
//! docker's rules. The new values are checked as a create checks them (and by the admin
//! policy), written to the live cgroup when the container runs (fail closed: a limit the
//! host cannot apply changes nothing), then into the record's `HostConfig`, so `inspect`
//! and every later start see them. Front ends pass [`UpdateFlags`] (as typed) or an
//! [`UpdateRequest`] (the API's typed body); this module must not print.

use crate::refusal::{StateConflict, ValidationError as V};
use crate::state::Status;
use crate::EngineError;
use wharf_types::container::{HostConfig, RestartPolicy};
use wharf_types::parse;

/// docker's `UpdateConfig` subset wharf applies: `None` = unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    /// Memory plus swap; -1 = unlimited.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// -1 or 0 = unlimited.
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart_policy: Option<RestartPolicy>,
}

/// `wharf update`'s flags as the user typed them.
#[derive(Debug, Clone, Default)]
pub struct UpdateFlags {
    /// `-m/--memory`, `--memory-swap` (`-1` = unlimited), `--memory-reservation`: sizes.
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    /// `--cpus` (decimal).
    pub cpus: Option<String>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// `--restart`.
    pub restart: Option<String>,
    /// Flags wharf refuses (`--kernel-memory`, `--cpu-rt-period`, `--cpu-rt-runtime`).
    pub refused: Vec<String>,
}

impl UpdateFlags {
    /// Parses the flags; docker's "You must provide one or more flags" when there is none.
    pub fn parse(&self) -> Result<UpdateRequest, EngineError> {
        if let Some(flag) = self.refused.first() {
            return Err(EngineError::Invalid(V::FlagRefused {
                flag: flag.clone(),
                reason: crate::resources::refusal_reason(flag),
            }));
        }
        let size = |v: &Option<String>| -> Result<Option<i64>, EngineError> {
            v.as_deref()
                .map(|s| {
                    if s == "-1" {
                        Ok(-1)
                    } else {
                        parse::size(s).map_err(EngineError::Parse)
                    }
                })
                .transpose()
        };
        let restart_policy = self
            .restart
            .as_deref()
            .map(|r| {
                RestartPolicy::parse(r)
                    .ok_or_else(|| EngineError::Invalid(V::RestartPolicy { value: r.into() }))
            })
            .transpose()?;
        let req = UpdateRequest {
            memory: size(&self.memory)?,
            memory_swap: size(&self.memory_swap)?,
            memory_reservation: size(&self.memory_reservation)?,
            nano_cpus: self
                .cpus
                .as_deref()
                .map(|c| parse::cpus(c).map_err(EngineError::Parse))
                .transpose()?,
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
            restart_policy,
        };
        if req == UpdateRequest::default() {
            return Err(EngineError::Invalid(V::UpdateNothing));
        }
        Ok(req)
    }
}

/// What an update returns (docker's `Warnings`).
#[derive(Debug, Clone, Default)]
pub struct Updated {
    pub warnings: Vec<String>,
}

/// `old` with the request's values over it, docker's rules checked first (no I/O).
pub fn merge(old: &HostConfig, req: &UpdateRequest) -> Result<HostConfig, EngineError> {
    let mut h = old.clone();
    if let Some(rp) = &req.restart_policy {
        if old.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
            return Err(EngineError::Invalid(V::UpdateRestartAutoRemove));
        }
        h.restart_policy = rp.clone();
        if h.restart_policy.name.is_empty() {
            h.restart_policy.name = "no".into();
        }
    }
    if let Some(m) = req.memory {
        if req.memory_swap.is_none()
            && old.resources.memory_swap > 0
            && m > old.resources.memory_swap
        {
            return Err(EngineError::Invalid(V::UpdateMemoryAboveSwap));
        }
        h.memory = m.max(0);
    }
    let r = &mut h.resources;
    if let Some(v) = req.memory_swap {
        r.memory_swap = v;
    }
    if let Some(v) = req.memory_reservation {
        r.memory_reservation = v;
    }
    if let Some(v) = req.nano_cpus {
        h.nano_cpus = v;
    }
    let r = &mut h.resources;
    if let Some(v) = req.cpu_shares {
        r.cpu_shares = v;
    }
    if let Some(v) = req.cpu_period {
        r.cpu_period = v;
    }
    if let Some(v) = req.cpu_quota {
        r.cpu_quota = v;
    }
    if let Some(v) = &req.cpuset_cpus {
        r.cpuset_cpus = v.clone();
    }
    if let Some(v) = &req.cpuset_mems {
        r.cpuset_mems = v.clone();
    }
    if let Some(v) = req.blkio_weight {
        r.blkio_weight = v;
    }
    if let Some(p) = req.pids_limit {
        h.pids_limit = Some(if p <= 0 { -1 } else { p });
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    crate::validate::check_host(&h, ncpu)?;
    crate::resources::check(&h, false)?;
    Ok(h)
}

/// The limits of `req` as the runtime writes them into a live cgroup (only what changed).
fn live_spec(
    path: String,
    new: &HostConfig,
    req: &UpdateRequest,
) -> wharf_runtime::spec::CgroupSpec {
    let r = &new.resources;
    let pos = |v: i64| (v > 0).then_some(v);
    let mut spec = wharf_runtime::spec::CgroupSpec {
        path,
        memory: req.memory.and_then(|_| pos(new.memory)),
        nano_cpus: req.nano_cpus.and_then(|_| pos(new.nano_cpus)),
        pids_limit: req.pids_limit.and(new.pids_limit),
        ..Default::default()
    };
    let o = &mut spec.resources;
    // a new memory limit keeps the recorded swap limit (or docker's default, twice it)
    o.memory_swap = (req.memory_swap.is_some() || req.memory.is_some())
        .then_some(r.memory_swap)
        .filter(|v| *v != 0);
    o.memory_reservation = req
        .memory_reservation
        .and_then(|_| pos(r.memory_reservation));
    o.cpu_shares = req
        .cpu_shares
        .and_then(|_| pos(r.cpu_shares))
        .map(|v| v as u64);
    o.cpu_period = req
        .cpu_period
        .and_then(|_| pos(r.cpu_period))
        .map(|v| v as u64);
    o.cpu_quota = req.cpu_quota.map(|_| r.cpu_quota).filter(|v| *v != 0);
    o.cpuset_cpus = req
        .cpuset_cpus
        .as_ref()
        .map(|_| r.cpuset_cpus.clone())
        .filter(|v| !v.is_empty());
    o.cpuset_mems = req
        .cpuset_mems
        .as_ref()
        .map(|_| r.cpuset_mems.clone())
        .filter(|v| !v.is_empty());
    o.blkio_weight = req.blkio_weight.filter(|w| *w > 0);
    spec
}

impl crate::Engine {
    /// `update NAME`: see the module doc. Returns docker's warnings (none so far).
    pub fn update_container(
        &self,
        name_or_id: &str,
        req: &UpdateRequest,
    ) -> Result<Updated, EngineError> {
        let info = self.container(name_or_id)?;
        let old = info.record.host_config.clone();
        let new = merge(&old, req)?;
        let mut rec = info.record.clone();
        rec.host_config = new.clone();
        self.policy_update(&rec)?;
        if matches!(info.state.status(), Status::Running | Status::Paused) {
            let spec = live_spec(crate::run::cgroup_path(&rec.id), &new, req);
            wharf_runtime::cgroup::Cgroup::update(&spec)?;
        }
        if !self.store.set_container_host_config(&rec.id, &old, &new)? {
            return Err(StateConflict::UpdateRaced {
                id: rec.id.short().to_string(),
            }
            .into());
        }
        self.emit_container(&rec, "update", &[]);
        Ok(Updated::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_update_rules() {
        let mut old = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        let restart = UpdateRequest {
            restart_policy: RestartPolicy::parse("always"),
            ..Default::default()
        };
        assert_eq!(
            merge(&old, &restart).unwrap_err().to_string(),
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        );
        old.auto_remove = false;
        assert_eq!(merge(&old, &restart).unwrap().restart_policy.name, "always");
        old.memory = 64 << 20;
        old.resources.memory_swap = 128 << 20;
        let mem = UpdateRequest {
            memory: Some(256 << 20),
            ..Default::default()
        };
        assert!(merge(&old, &mem).is_err());
        let both = UpdateRequest {
            memory: Some(256 << 20),
            memory_swap: Some(512 << 20),
            ..Default::default()
        };
        let h = merge(&old, &both).unwrap();
        assert_eq!((h.memory, h.resources.memory_swap), (256 << 20, 512 << 20));
        assert!(UpdateFlags::default().parse().is_err());
        let f = UpdateFlags {
            memory: Some("32m".into()),
            cpus: Some("0.5".into()),
            ..Default::default()
        };
        let r = f.parse().unwrap();
        assert_eq!((r.memory, r.nano_cpus), (Some(32 << 20), Some(500_000_000)));
    }
}
