//! `inventory`, `bundle create|verify|apply`, `key generate`. OWNED BY: bundle helper.

use crate::cli::{BundleCreateArgs, BundleVerifyArgs, Cli, InventoryArgs, KeyGenerateArgs};
use anyhow::bail;

pub fn inventory(_cli: &Cli, _a: &InventoryArgs) -> anyhow::Result<i32> {
    bail!("inventory: not in this build yet")
}
pub fn create(_cli: &Cli, _a: &BundleCreateArgs) -> anyhow::Result<i32> {
    bail!("bundle create: not in this build yet")
}
pub fn verify(_cli: &Cli, _a: &BundleVerifyArgs) -> anyhow::Result<i32> {
    bail!("bundle verify: not in this build yet")
}
pub fn apply(_cli: &Cli, _a: &BundleVerifyArgs) -> anyhow::Result<i32> {
    bail!("bundle apply: not in this build yet")
}
pub fn key_generate(_cli: &Cli, _a: &KeyGenerateArgs) -> anyhow::Result<i32> {
    bail!("key generate: not in this build yet")
}
