//! Container lifecycle commands: create, start, stop, restart, kill, wait, pause, unpause,
//! attach, rename, port, container prune, system boot. OWNED BY: monitor helper.

use crate::cli::{
    AttachArgs, Cli, ContainersArgs, KillArgs, PortArgs, PruneArgs, RenameArgs, RunArgs, StartArgs,
    StopArgs,
};
use anyhow::bail;

pub fn create(_cli: &Cli, _a: &RunArgs) -> anyhow::Result<i32> {
    bail!("create: not in this build yet")
}
pub fn start(_cli: &Cli, _a: &StartArgs) -> anyhow::Result<i32> {
    bail!("start: not in this build yet")
}
pub fn stop(_cli: &Cli, _a: &StopArgs) -> anyhow::Result<i32> {
    bail!("stop: not in this build yet")
}
pub fn restart(_cli: &Cli, _a: &StopArgs) -> anyhow::Result<i32> {
    bail!("restart: not in this build yet")
}
pub fn kill(_cli: &Cli, _a: &KillArgs) -> anyhow::Result<i32> {
    bail!("kill: not in this build yet")
}
pub fn wait(_cli: &Cli, _a: &ContainersArgs) -> anyhow::Result<i32> {
    bail!("wait: not in this build yet")
}
pub fn pause(_cli: &Cli, _a: &ContainersArgs, _pause: bool) -> anyhow::Result<i32> {
    bail!("pause: not in this build yet")
}
pub fn attach(_cli: &Cli, _a: &AttachArgs) -> anyhow::Result<i32> {
    bail!("attach: not in this build yet")
}
pub fn rename(_cli: &Cli, _a: &RenameArgs) -> anyhow::Result<i32> {
    bail!("rename: not in this build yet")
}
pub fn port(_cli: &Cli, _a: &PortArgs) -> anyhow::Result<i32> {
    bail!("port: not in this build yet")
}
pub fn prune(_cli: &Cli, _a: &PruneArgs) -> anyhow::Result<i32> {
    bail!("container prune: not in this build yet")
}
pub fn system_boot(_cli: &Cli) -> anyhow::Result<i32> {
    bail!("system boot: not in this build yet")
}
