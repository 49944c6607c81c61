//! `exec`, `top`, `stats`, `cp`. OWNED BY: exec helper.

use crate::cli::{Cli, CpArgs, ExecArgs, StatsArgs, TopArgs};
use anyhow::bail;

pub fn exec(_cli: &Cli, _a: &ExecArgs) -> anyhow::Result<i32> {
    bail!("exec: not in this build yet")
}
pub fn top(_cli: &Cli, _a: &TopArgs) -> anyhow::Result<i32> {
    bail!("top: not in this build yet")
}
pub fn stats(_cli: &Cli, _a: &StatsArgs) -> anyhow::Result<i32> {
    bail!("stats: not in this build yet")
}
pub fn cp(_cli: &Cli, _a: &CpArgs) -> anyhow::Result<i32> {
    bail!("cp: not in this build yet")
}
