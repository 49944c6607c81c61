//! Container services that are neither creation nor the state machine: `rename` (with its
//! event) and `logs` (the engine finds the container's log and its driver and reads it into
//! the caller's sink; `-f` ends once the container no longer runs and the log is drained).
//!
//! Must not: print (the caller's sink writes), read a log whose driver cannot be read.

use crate::state::Status;
use crate::timefmt::unix_nanos;
use crate::{Engine, EngineError};
use std::time::SystemTime;
use wharf_types::error::{ErrorKind, HasKind};

pub use wharf_logs::Stream;

/// The `Command` of a container in `ps` and the API's list: dockerd's text, its path then its
/// arguments, each argument with a space in single quotes (`sh -c 'sleep 1'`).
pub fn list_command(config: &wharf_types::container::ContainerConfig) -> String {
    let mut argv = config.entrypoint.iter().chain(config.cmd.iter());
    let Some(path) = argv.next() else {
        return String::new();
    };
    let mut out = path.clone();
    for a in argv {
        out.push(' ');
        if a.contains(' ') {
            out.push('\'');
            out.push_str(a);
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

/// `logs [-f] [--tail N] [-t] [--since T] [--until T] [--details] CONTAINER`.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    pub container: String,
    pub follow: bool,
    /// docker's `--tail`: a number; `all`, anything unparsable or negative means all.
    pub tail: Option<String>,
    /// RFC 3339, Unix seconds or a duration ago (`10m`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub timestamps: bool,
    pub details: bool,
}

/// Errors of the logs service.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("invalid value for \"{what}\"")]
    InvalidTime {
        what: &'static str,
        #[source]
        source: wharf_logs::LogError,
    },
    #[error(transparent)]
    Log(#[from] wharf_logs::LogError),
}

impl LogsError {
    /// The caller's sink failed with a closed pipe (`wharf logs x | head`): not an error of
    /// the logs.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, LogsError::Log(wharf_logs::LogError::Output(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl HasKind for LogsError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogsError::Engine(e) => e.kind(),
            LogsError::InvalidTime { .. } => ErrorKind::InvalidArgument,
            LogsError::Log(e) => e.kind(),
        }
    }
}

/// docker's `--tail`: a number, or anything unparsable/negative (`all`) meaning all.
pub fn parse_tail(s: &str) -> Option<usize> {
    s.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

/// `ps --filter` / `GET /containers/json?filters=`: docker's `id` (prefix), `name`
/// (substring), `label` (`KEY` or `KEY=VALUE`), `status`, `exited` (code), `ancestor`
/// (image as named, or its id), `before`/`since` (a container by name or id: those created
/// before/after it), `volume` (a volume name or a mount's destination), `network` (a network
/// the container is on, by name, or `host`/`none`), `health` (`starting`, `healthy`,
/// `unhealthy`, `none`). Values of one key are alternatives, except `label`'s, which must all
/// hold (as docker's); keys must all hold.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pairs: Vec<(String, String)>,
    /// `before`/`since` values → the created time of the container they name
    /// (`Engine::list_containers` resolves them).
    resolved: std::collections::BTreeMap<String, String>,
}

impl ContainerFilter {
    /// Parses `key=value` strings; an unknown key or a bad value is refused.
    pub fn parse(filters: &[String]) -> Result<ContainerFilter, EngineError> {
        use crate::refusal::ValidationError as V;
        let mut pairs = Vec::new();
        for f in filters {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| EngineError::from(V::FilterFormat { filter: f.clone() }))?;
            match k {
                "id" | "name" | "label" | "ancestor" | "before" | "since" | "volume"
                | "network" => {}
                "health" => {
                    if !matches!(v, "starting" | "healthy" | "unhealthy" | "none") {
                        return Err(V::FilterValue {
                            name: k.into(),
                            value: v.into(),
                        }
                        .into());
                    }
                }
                "status" => {
                    if !matches!(
                        v,
                        "created"
                            | "restarting"
                            | "running"
                            | "removing"
                            | "paused"
                            | "exited"
                            | "dead"
                    ) {
                        return Err(V::FilterValue {
                            name: k.into(),
                            value: v.into(),
                        }
                        .into());
                    }
                }
                "exited" => {
                    if v.parse::<i32>().is_err() {
                        return Err(V::FilterValue {
                            name: k.into(),
                            value: v.into(),
                        }
                        .into());
                    }
                }
                _ => return Err(V::FilterName { name: k.into() }.into()),
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(ContainerFilter {
            pairs,
            resolved: Default::default(),
        })
    }

    /// A status filter lists stopped containers without `all`, as docker does (`exited`
    /// does not: `ps --filter exited=3` lists nothing without `-a`, checked against dockerd).
    pub fn wants_all(&self) -> bool {
        self.pairs.iter().any(|(k, _)| k == "status")
    }

    pub fn matches(&self, info: &crate::run::ContainerInfo) -> bool {
        let rec = &info.record;
        let one = |k: &str, v: &str| match k {
            "id" => rec.id.as_str().starts_with(v),
            "name" => rec.name.contains(v.trim_start_matches('/')),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => rec.config.labels.get(lk).is_some_and(|x| x == lv),
                None => rec.config.labels.contains_key(v),
            },
            "status" => info.state.status().as_str() == v,
            "exited" => {
                info.state.status() == Status::Exited
                    && v.parse::<i32>().is_ok_and(|c| c == info.state.exit_code)
            }
            "ancestor" => {
                rec.config.image == v
                    || rec.config.image == format!("{v}:latest")
                    || rec
                        .image
                        .to_string()
                        .trim_start_matches("sha256:")
                        .starts_with(v.trim_start_matches("sha256:"))
            }
            "before" => self
                .resolved
                .get(v)
                .is_some_and(|t| unix_nanos(&rec.created) < unix_nanos(t)),
            "since" => self
                .resolved
                .get(v)
                .is_some_and(|t| unix_nanos(&rec.created) > unix_nanos(t)),
            "volume" => rec
                .host_config
                .mounts
                .iter()
                .any(|m| m.source == v || m.target == v),
            "network" => {
                let mode = &rec.host_config.network_mode;
                if mode.is_bridge() {
                    rec.bridge_networks().iter().any(|n| n == v)
                } else {
                    mode.as_docker() == v
                }
            }
            "health" => {
                let h = info
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str());
                h == v
            }
            _ => false,
        };
        let mut keys: Vec<&str> = self.pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.iter().all(|k| {
            let mut vals = self.pairs.iter().filter(|(pk, _)| pk == k);
            // docker: every label must hold (compose asks for project AND service AND
            // oneoff); the values of the other keys are alternatives
            if *k == "label" {
                vals.all(|(_, v)| one(k, v))
            } else {
                vals.any(|(_, v)| one(k, v))
            }
        })
    }
}

impl Engine {
    /// `ps [-a] [--filter ...]`: newest first.
    pub fn list_containers(
        &self,
        all: bool,
        filter: &ContainerFilter,
    ) -> Result<Vec<crate::run::ContainerInfo>, EngineError> {
        let mut filter = filter.clone();
        for (k, v) in &filter.pairs {
            if k == "before" || k == "since" {
                let created = self.container(v)?.record.created;
                filter.resolved.insert(v.clone(), created);
            }
        }
        let list = self.containers(all || filter.wants_all())?;
        Ok(list.into_iter().filter(|c| filter.matches(c)).collect())
    }

    /// `ps -s` / `inspect --size`: docker's `SizeRw` (the bytes of the container's writable
    /// layer) and `SizeRootFs` (its image's size plus those).
    pub fn container_size(&self, info: &crate::run::ContainerInfo) -> (u64, u64) {
        let rw = crate::volumes::tree_size(&self.store.container_paths(&info.record.id).upper);
        let image = self
            .store
            .resolve_image(&info.record.image.to_string())
            .map_or(0, |i| i.size);
        (rw, image + rw)
    }

    /// `rename`: docker's checks (same name refused, name grammar, name taken), then the
    /// record's one rewrite, and a container `rename` event (`oldName` attribute).
    pub fn rename_container(&self, name_or_id: &str, new_name: &str) -> Result<(), EngineError> {
        let info = self.container(name_or_id)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if info.record.name == new_name {
            return Err(crate::refusal::ValidationError::RenameSameName.into());
        }
        self.store.rename_container(&info.record.id, new_name)?;
        let mut rec = info.record;
        let old = std::mem::replace(&mut rec.name, new_name.to_string());
        self.emit_container(&rec, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `logs`: reads the container's log (json-file, rotated files included) into `out`,
    /// stdout and stderr records apart.
    pub fn logs(
        &self,
        req: &LogsRequest,
        out: &mut dyn FnMut(Stream, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), LogsError> {
        self.logs_until(req, out, &|| false)
    }

    /// [`Engine::logs`] that also ends a follow once `cancelled` says the reader went away
    /// (an API client that disconnected while the container is quiet).
    pub fn logs_until(
        &self,
        req: &LogsRequest,
        out: &mut dyn FnMut(Stream, &[u8]) -> std::io::Result<()>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), LogsError> {
        let now = SystemTime::now();
        let time = |what: &'static str, v: &Option<String>| {
            v.as_deref()
                .map(|s| wharf_logs::parse_timestamp(s, now))
                .transpose()
                .map_err(|source| LogsError::InvalidTime { what, source })
        };
        let opts = wharf_logs::ReadOptions {
            follow: req.follow,
            tail: req.tail.as_deref().and_then(parse_tail),
            since: time("since", &req.since)?,
            until: time("until", &req.until)?,
            timestamps: req.timestamps,
            details: req.details,
        };
        let info = self.container(&req.container)?;
        let rec = &info.record;
        let id = rec.id.to_string();
        let ctx = wharf_logs::LogContext {
            container_id: id.clone(),
            container_name: rec.name.clone(),
            image_name: rec.config.image.clone(),
            image_id: rec.image.to_string(),
            dir: self.store.container_paths(&rec.id).dir,
        };
        let mut still_running = || match self.container(&id) {
            _ if cancelled() => false,
            Ok(i) => {
                matches!(
                    i.state.status(),
                    Status::Running | Status::Paused | Status::Restarting
                ) && i.state.process_alive()
            }
            Err(_) => false,
        };
        Ok(wharf_logs::read(
            &rec.host_config.log_config,
            &ctx,
            &opts,
            &mut still_running,
            out,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_command_quotes_arguments_with_spaces() {
        let mut c = wharf_types::container::ContainerConfig::default();
        assert_eq!(list_command(&c), "");
        c.entrypoint = vec!["/bin/sh".into()];
        c.cmd = vec!["-c".into(), "sleep 1; echo a b".into(), "x".into()];
        assert_eq!(list_command(&c), "/bin/sh -c 'sleep 1; echo a b' x");
        c.entrypoint = vec!["my prog".into()];
        c.cmd = vec![];
        assert_eq!(list_command(&c), "my prog", "the path is never quoted");
    }

    #[test]
    fn container_filters() {
        assert!(ContainerFilter::parse(&["status=exited".into()]).is_ok_and(|f| f.wants_all()));
        assert!(ContainerFilter::parse(&["status=sleeping".into()]).is_err());
        assert!(ContainerFilter::parse(&["exited=x".into()]).is_err());
        assert!(ContainerFilter::parse(&["color=red".into()]).is_err());
        assert!(ContainerFilter::parse(&["label".into()]).is_err());
        let f = ContainerFilter::parse(&["label=a".into(), "name=web".into()]).unwrap();
        assert!(!f.wants_all());
        assert!(ContainerFilter::parse(&["exited=3".into()]).is_ok_and(|f| !f.wants_all()));
        assert!(ContainerFilter::parse(&["health=great".into()]).is_err());
        assert!(ContainerFilter::parse(&["health=none".into(), "volume=/x".into()]).is_ok());
    }

    #[test]
    fn wait_conditions() {
        use crate::lifecycle::WaitCondition as W;
        assert_eq!(W::parse("").unwrap(), W::NotRunning);
        assert_eq!(W::parse("next-exit").unwrap(), W::NextExit);
        assert_eq!(W::parse("removed").unwrap(), W::Removed);
        assert_eq!(
            W::parse("sometimes").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn tail_values() {
        assert_eq!(parse_tail("all"), None);
        assert_eq!(parse_tail("10"), Some(10));
        assert_eq!(parse_tail("0"), Some(0));
        assert_eq!(parse_tail("-1"), None);
    }
}
