//! `exec`, `top`, `stats`, `cp`: flag handling and docker's output formats; the work is done
//! by wharf-engine (`exec`, `stats`, `cp`).

mod cp;
mod stats;

use crate::cli::{Cli, CpArgs, ExecArgs, StatsArgs, TopArgs};
use anyhow::bail;
use wharf_engine::exec::ExecRequest;

pub fn exec(cli: &Cli, a: &ExecArgs) -> anyhow::Result<i32> {
    let (container, cmd) = match a.container_and_command.split_first() {
        Some((c, rest)) if !rest.is_empty() => (c, rest.to_vec()),
        _ => bail!("\"exec\" requires at least 2 arguments"),
    };
    if let Some(code) = super::check_tty(a.interactive && !a.detach, a.tty) {
        return Ok(code);
    }
    let env = wharf_engine::validate::env_from_flags(&a.env_file, &a.env)?;
    let req = ExecRequest {
        cmd,
        env,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty && !a.detach,
        interactive: a.interactive && !a.detach,
        detach: a.detach,
        privileged: a.privileged,
    };
    let engine = super::open_engine(cli)?;
    Ok(engine.exec(container, req)?)
}

pub fn top(cli: &Cli, a: &TopArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let t = engine.top(&a.container, &a.ps_args)?;
    let rows: Vec<Vec<String>> = std::iter::once(t.titles).chain(t.processes).collect();
    crate::format::print_table(&rows);
    Ok(0)
}

pub fn stats(cli: &Cli, a: &StatsArgs) -> anyhow::Result<i32> {
    stats::stats(cli, a)
}

pub fn cp(cli: &Cli, a: &CpArgs) -> anyhow::Result<i32> {
    cp::cp(cli, a)
}
