//! `logs`. OWNED BY: logs helper.

use crate::cli::{Cli, LogsArgs};
use anyhow::bail;

pub fn logs(_cli: &Cli, _a: &LogsArgs) -> anyhow::Result<i32> {
    bail!("logs: not in this build yet")
}
