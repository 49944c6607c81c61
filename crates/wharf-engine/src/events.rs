//! Engine events in docker's `/events` shape (`Type`, `Action`, `Actor{ID, Attributes}`,
//! `scope`, `time`, `timeNano`): container create/start/die/destroy/rename, image untag/delete
//! (and import/tag/load/pull from `images`/`distribution`), volume create/destroy (`volumes`),
//! network create/destroy (`networks`). There
//! is no daemon to keep them in memory, so every wharf process appends them to one JSON-lines
//! log in the volatile run root (`<run-root>/events.log`, rotated at 1 MiB to `.1`), which
//! the `events` command and the API's `/events` read ([`Engine::events`]).
//!
//! Must not: fail or block the operation it records (an unwritable log is said on stderr),
//! fsync (container start is on this path).

use crate::refusal::ValidationError;
use crate::{Engine, EngineError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the events log lives in the run root.
pub const EVENTS_LOG: &str = "events.log";
const MAX_SIZE: u64 = 1 << 20;
/// A line longer than this is not an event wharf wrote: skipped when reading.
const MAX_LINE: usize = 64 << 10;
/// A container's labels copied into its events' attributes, at most (bytes of keys and
/// values; even escaped 6× they fit in MAX_LINE).
const LABEL_BYTES: usize = 8 << 10;

/// The actor of an event: the object's id and docker's attributes (`image`, `name`,
/// `exitCode`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, as docker's API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Engine {
    fn events_path(&self) -> PathBuf {
        self.opts.run_root.join(EVENTS_LOG)
    }

    /// Records an event (best effort).
    pub(crate) fn emit(&self, kind: &str, action: &str, id: &str, attributes: &[(&str, String)]) {
        let nanos = now_nanos();
        let ev = Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        };
        let Ok(mut line) = serde_json::to_string(&ev) else {
            return;
        };
        line.push('\n');
        let path = self.events_path();
        if let Err(e) = crate::jsonl::append(&path, MAX_SIZE, &line) {
            eprintln!("wharf: events log {}: {e}", path.display());
        }
    }

    /// A container event with docker's attributes (image, name; plus `extra`).
    pub(crate) fn emit_container(
        &self,
        rec: &wharf_types::container::ContainerRecord,
        action: &str,
        extra: &[(&str, String)],
    ) {
        // docker's attributes: the container's labels, then image and name (which win);
        // labels only up to LABEL_BYTES, so the event stays a readable line
        let mut budget = LABEL_BYTES;
        let mut attrs: Vec<(&str, String)> = Vec::new();
        for (k, v) in &rec.config.labels {
            let Some(left) = budget.checked_sub(k.len() + v.len()) else {
                break;
            };
            budget = left;
            attrs.push((k.as_str(), v.clone()));
        }
        attrs.push(("image", rec.config.image.clone()));
        attrs.push(("name", rec.name.clone()));
        attrs.extend(extra.iter().cloned());
        self.emit("container", action, rec.id.as_str(), &attrs);
    }

    /// The recorded events with `since <= timeNano <= until` (nanoseconds since the epoch;
    /// `None`: unbounded), oldest first, from the rotated log and the current one. Lines
    /// that are not events (torn by a crash, too long) are skipped.
    pub fn events(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<Event>, EngineError> {
        let mut out = Vec::new();
        let path = self.events_path();
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(".1");
        for p in [PathBuf::from(rotated), path] {
            let data = match wharf_sys::fs::read_small_file(None, &p, 2 * MAX_SIZE) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) => return Err(EngineError::io("read", &p, e)),
            };
            for line in data.split(|b| *b == b'\n') {
                if line.is_empty() || line.len() > MAX_LINE {
                    continue;
                }
                let Ok(ev) = serde_json::from_slice::<Event>(line) else {
                    continue;
                };
                if since.is_some_and(|s| ev.time_nano < s)
                    || until.is_some_and(|u| ev.time_nano >= u)
                {
                    continue;
                }
                out.push(ev);
            }
        }
        Ok(out)
    }
}

/// What `events` asks for: docker's `--since`/`--until` (RFC 3339, Unix seconds or a duration
/// ago such as `10m`) and `--filter key=value` (`type`, `event`, `container` (id prefix or
/// name), `image`, `volume`, `network`, `label` (`KEY` or `KEY=VALUE` among the attributes, which
/// carry a container's labels)); values of one key are alternatives (`label`'s must all hold),
/// different keys must all match.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since: Option<String>,
    pub until: Option<String>,
    pub filters: Vec<String>,
}

/// A parsed [`EventQuery`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub since: Option<i64>,
    pub until: Option<i64>,
    by_key: BTreeMap<String, Vec<String>>,
}

fn nanos_of(what: &str, v: &str) -> Result<i64, EngineError> {
    let t = wharf_logs::parse_timestamp(v, std::time::SystemTime::now()).map_err(|error| {
        ValidationError::EventsTime {
            flag: what.to_string(),
            error,
        }
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0))
}

impl EventQuery {
    /// Checks and parses the query (unknown filter keys are refused, as docker does).
    pub fn parse(&self) -> Result<EventFilter, EngineError> {
        let mut f = EventFilter {
            since: self
                .since
                .as_deref()
                .map(|v| nanos_of("since", v))
                .transpose()?,
            // a time given to the second (`10m`, `1700000000`, `...T04:05:06Z`) means the
            // whole of that second
            until: self
                .until
                .as_deref()
                .map(|v| {
                    nanos_of("until", v).map(|n| {
                        if n % 1_000_000_000 == 0 {
                            n.saturating_add(999_999_999)
                        } else {
                            n
                        }
                    })
                })
                .transpose()?,
            by_key: BTreeMap::new(),
        };
        for kv in &self.filters {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(ValidationError::FilterFormat { filter: kv.into() }.into());
            };
            if !matches!(
                k,
                "type" | "event" | "container" | "image" | "volume" | "network" | "label"
            ) {
                return Err(ValidationError::FilterName { name: k.into() }.into());
            }
            f.by_key
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
        }
        Ok(f)
    }
}

impl EventFilter {
    /// Whether `ev` passes the key filters (time is applied when reading).
    pub fn matches(&self, ev: &Event) -> bool {
        let label = |v: &str| match v.split_once('=') {
            Some((lk, lv)) => ev.actor.attributes.get(lk).is_some_and(|x| x == lv),
            None => ev.actor.attributes.contains_key(v),
        };
        self.by_key.iter().all(|(k, vals)| {
            // docker: every label must hold (compose follows its project's containers)
            if k == "label" {
                return vals.iter().all(|v| label(v));
            }
            vals.iter().any(|v| match k.as_str() {
                "type" => ev.kind == *v,
                "event" => ev.action == *v,
                "container" => {
                    ev.kind == "container"
                        && (ev.actor.id.starts_with(v.as_str())
                            || ev.actor.attributes.get("name") == Some(v))
                }
                "image" => {
                    ev.actor.attributes.get("image") == Some(v)
                        || (ev.kind == "image" && ev.actor.id == *v)
                }
                "volume" => ev.kind == "volume" && ev.actor.id == *v,
                "network" => {
                    ev.kind == "network"
                        && (ev.actor.id.starts_with(v.as_str())
                            || ev.actor.attributes.get("name") == Some(v))
                }
                _ => false,
            })
        })
    }
}

impl Engine {
    /// The recorded events a query selects, oldest first.
    pub fn query_events(&self, f: &EventFilter) -> Result<Vec<Event>, EngineError> {
        Ok(self
            .events(f.since, f.until)?
            .into_iter()
            .filter(|e| f.matches(e))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::EngineOptions;

    #[test]
    fn events_are_read_back_in_order_filtered_by_time_and_torn_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(EngineOptions {
            root: dir.path().join("root"),
            run_root: dir.path().join("run"),
            debug: false,
        })
        .unwrap();
        e.emit("container", "create", "a", &[("name", "x".into())]);
        let mid = now_nanos();
        e.emit("container", "start", "a", &[]);
        // a crash mid-append, garbage, an over-long line
        let log = dir.path().join("run").join(EVENTS_LOG);
        let mut junk = b"{\"Type\":\"contai".to_vec();
        junk.extend_from_slice(b"\nnot json\n");
        junk.extend_from_slice(&vec![b'x'; MAX_LINE + 1]);
        junk.push(b'\n');
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, &junk).unwrap();
        e.emit("image", "untag", "busybox:latest", &[]);
        let all = e.events(None, None).unwrap();
        let actions: Vec<&str> = all.iter().map(|v| v.action.as_str()).collect();
        assert_eq!(actions, ["create", "start", "untag"]);
        assert_eq!(
            all[0].actor.attributes.get("name").map(String::as_str),
            Some("x")
        );
        assert_eq!(all[0].time, all[0].time_nano / 1_000_000_000);
        let later = e.events(Some(mid), None).unwrap();
        assert_eq!(later.len(), 2);
        let earlier = e.events(None, Some(mid)).unwrap();
        assert_eq!(earlier.len(), 1);
    }

    /// docker's `label` filter (what compose follows its project by): every label given
    /// must hold among the attributes, `KEY` alone asks for presence; other keys' values
    /// stay alternatives.
    #[test]
    fn label_filters_all_hold() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(EngineOptions {
            root: dir.path().join("root"),
            run_root: dir.path().join("run"),
            debug: false,
        })
        .unwrap();
        let attrs = |p: &str, o: &str| {
            vec![
                ("com.docker.compose.project", p.to_string()),
                ("com.docker.compose.oneoff", o.to_string()),
                ("name", format!("{p}-{o}")),
            ]
        };
        e.emit("container", "start", "a", &attrs("p", "False"));
        e.emit("container", "start", "b", &attrs("p", "True"));
        e.emit("container", "start", "c", &attrs("q", "False"));
        e.emit("container", "die", "d", &[("name", "d".to_string())]);
        let ids = |filters: &[&str]| -> Vec<String> {
            let f = EventQuery {
                filters: filters.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }
            .parse()
            .unwrap();
            e.query_events(&f)
                .unwrap()
                .into_iter()
                .map(|ev| ev.actor.id)
                .collect()
        };
        assert_eq!(
            ids(&[
                "label=com.docker.compose.project=p",
                "label=com.docker.compose.oneoff=False"
            ]),
            ["a"]
        );
        assert_eq!(ids(&["label=com.docker.compose.project"]), ["a", "b", "c"]);
        assert_eq!(
            ids(&["label=com.docker.compose.project=p", "container=c"]),
            [] as [&str; 0]
        );
        assert_eq!(ids(&["container=a", "container=d"]), ["a", "d"]);
        assert!(EventQuery {
            filters: vec!["labels=x".into()],
            ..Default::default()
        }
        .parse()
        .is_err());
    }
}
