//! `wharf logs [-f] [--tail N] [-t] [--since T] [--until T] [--details] CONTAINER`: the
//! engine's logs service writes stdout records to stdout and stderr records to stderr (as
//! docker does for non-tty containers). A closed pipe on our output (`wharf logs x | head`)
//! ends quietly.

use crate::cli::{Cli, LogsArgs};
use std::io::Write;
use wharf_engine::containers::{LogsError, LogsRequest, Stream};

pub fn logs(cli: &Cli, a: &LogsArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let req = LogsRequest {
        container: a.container.clone(),
        follow: a.follow,
        tail: Some(a.tail.clone()),
        since: a.since.clone(),
        until: a.until.clone(),
        timestamps: a.timestamps,
        details: a.details,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = |s: Stream, b: &[u8]| -> std::io::Result<()> {
        match s {
            Stream::Stdout => {
                let mut o = stdout.lock();
                o.write_all(b)?;
                if req.follow {
                    o.flush()?;
                }
                Ok(())
            }
            Stream::Stderr => stderr.lock().write_all(b),
        }
    };
    let r = engine.logs(&req, &mut out);
    let _ = std::io::stdout().flush();
    match r {
        Ok(()) => Ok(0),
        Err(e) if e.is_broken_pipe() => Ok(0),
        // the request or the container: said as every command says it
        Err(LogsError::Engine(e)) => Err(e.into()),
        Err(e @ LogsError::InvalidTime { .. }) => Err(e.into()),
        // reading the log
        Err(e) => {
            eprintln!("Error response from daemon: {}", super::chain_message(&e));
            Ok(wharf_types::error::COMMAND_FAILED)
        }
    }
}
