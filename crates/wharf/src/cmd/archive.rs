//! `save`, `load`. OWNED BY: archive helper.

use crate::cli::{Cli, LoadArgs, SaveArgs};
use anyhow::bail;

pub fn save(_cli: &Cli, _a: &SaveArgs) -> anyhow::Result<i32> {
    bail!("save: not in this build yet")
}

pub fn load(_cli: &Cli, _a: &LoadArgs) -> anyhow::Result<i32> {
    bail!("load: not in this build yet")
}
