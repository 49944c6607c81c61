//! `wharf events [--since T] [--until T] [-f key=value]... [--format TEMPLATE]`: renders the
//! engine's events as docker does. Without `--until` it follows: new events are printed as
//! other wharf processes record them (polled), until interrupted; without `--since` too, only
//! events from now on (docker's behaviour).

use crate::cli::{Cli, EventsArgs};
use wharf_engine::events::{Event, EventQuery};

/// docker's line: `<time> <type> <action> <id> (k=v, ...)`.
pub(crate) fn line(e: &Event) -> String {
    let t = std::time::UNIX_EPOCH
        + std::time::Duration::from_nanos(u64::try_from(e.time_nano).unwrap_or(0));
    let attrs: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut s = format!(
        "{} {} {} {}",
        wharf_engine::timefmt::format_rfc3339_nano_fixed(t),
        e.kind,
        e.action,
        e.actor.id
    );
    if !attrs.is_empty() {
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

pub fn events(cli: &Cli, a: &EventsArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let template = a
        .format
        .as_deref()
        .map(crate::format::Template::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    let mut f = EventQuery {
        since: a.since.clone(),
        until: a.until.clone(),
        filters: a.filter.clone(),
    }
    .parse()?;
    let follow = f.until.is_none();
    if f.since.is_none() && follow {
        // docker: without --since, only what happens from now on
        f.since = Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        );
    }
    let mut out = std::io::stdout().lock();
    loop {
        let batch = engine.query_events(&f)?;
        for e in &batch {
            let text = match &template {
                Some(t) => t
                    .render(&serde_json::to_value(e)?)
                    .map_err(|err| anyhow::anyhow!("template: {err}"))?,
                None => line(e),
            };
            std::io::Write::write_all(&mut out, format!("{text}\n").as_bytes())?;
        }
        std::io::Write::flush(&mut out)?;
        if !follow {
            return Ok(0);
        }
        if let Some(last) = batch.last() {
            f.since = Some(last.time_nano + 1);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
