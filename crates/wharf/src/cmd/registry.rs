//! `registry serve`. OWNED BY: registry helper.

use crate::cli::{Cli, RegistryServeArgs};
use anyhow::bail;

pub fn serve(_cli: &Cli, _a: &RegistryServeArgs) -> anyhow::Result<i32> {
    bail!("registry serve: not in this build yet")
}
