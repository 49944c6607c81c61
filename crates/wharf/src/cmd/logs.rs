//! `wharf logs [-f] [--tail N] [-t] [--since T] [--until T] [--details] CONTAINER`: reads the
//! container's json-file log through `wharf_logs::read`, stdout records to stdout and stderr
//! records to stderr (as docker does for non-tty containers). `-f` ends once the container is
//! no longer running (or paused/restarting) and its log is drained. A closed pipe on our
//! output (`wharf logs x | head`) ends quietly.

use crate::cli::{Cli, LogsArgs};
use anyhow::Context;
use std::io::Write;
use std::time::SystemTime;
use wharf_engine::state::Status;
use wharf_logs::{LogContext, LogError, ReadOptions, Stream};

/// docker: "all", a number, or anything unparsable/negative meaning all.
fn parse_tail(s: &str) -> Option<usize> {
    s.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

pub fn logs(cli: &Cli, a: &LogsArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let info = engine.container(&a.container)?;
    let rec = &info.record;
    let id = rec.id.to_string();
    let now = SystemTime::now();
    let since = a
        .since
        .as_deref()
        .map(|s| wharf_logs::parse_timestamp(s, now))
        .transpose()
        .context("invalid value for \"since\"")?;
    let until = a
        .until
        .as_deref()
        .map(|s| wharf_logs::parse_timestamp(s, now))
        .transpose()
        .context("invalid value for \"until\"")?;
    let opts = ReadOptions {
        follow: a.follow,
        tail: parse_tail(&a.tail),
        since,
        until,
        timestamps: a.timestamps,
        details: a.details,
    };
    let ctx = LogContext {
        container_id: id.clone(),
        container_name: rec.name.clone(),
        image_name: rec.config.image.clone(),
        image_id: rec.image.to_string(),
        dir: engine.store().container_paths(&rec.id).dir,
    };
    let mut still_running = || match engine.container(&id) {
        Ok(i) => {
            matches!(
                i.state.status(),
                Status::Running | Status::Paused | Status::Restarting
            ) && i.state.process_alive()
        }
        Err(_) => false,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = |s: Stream, b: &[u8]| -> std::io::Result<()> {
        match s {
            Stream::Stdout => {
                let mut o = stdout.lock();
                o.write_all(b)?;
                if opts.follow {
                    o.flush()?;
                }
                Ok(())
            }
            Stream::Stderr => stderr.lock().write_all(b),
        }
    };
    let r = wharf_logs::read(
        &rec.host_config.log_config,
        &ctx,
        &opts,
        &mut still_running,
        &mut out,
    );
    let _ = std::io::stdout().flush();
    match r {
        Ok(()) => Ok(0),
        Err(LogError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => {
            eprintln!("Error response from daemon: {}", super::chain_message(&e));
            Ok(wharf_types::error::HasKind::kind(&e).exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_values() {
        assert_eq!(parse_tail("all"), None);
        assert_eq!(parse_tail("10"), Some(10));
        assert_eq!(parse_tail("0"), Some(0));
        assert_eq!(parse_tail("-1"), None);
    }
}
