//! `pull`, `push`, `login`, `logout`. OWNED BY: client helper.

use crate::cli::{Cli, LoginArgs, LogoutArgs, PullArgs, PushArgs};
use anyhow::bail;

pub fn pull(_cli: &Cli, _a: &PullArgs) -> anyhow::Result<i32> {
    bail!("pull: not in this build yet")
}
pub fn push(_cli: &Cli, _a: &PushArgs) -> anyhow::Result<i32> {
    bail!("push: not in this build yet")
}
pub fn login(_cli: &Cli, _a: &LoginArgs) -> anyhow::Result<i32> {
    bail!("login: not in this build yet")
}
pub fn logout(_cli: &Cli, _a: &LogoutArgs) -> anyhow::Result<i32> {
    bail!("logout: not in this build yet")
}
