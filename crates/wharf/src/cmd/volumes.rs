//! `volume create|ls|rm|inspect`.

use crate::cli::{Cli, VolumeCommand};
use crate::format::{print_table, print_with_template, Template};
use anyhow::{anyhow, bail};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use wharf_store::Volume;

pub fn volume_json(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

pub fn volume(cli: &Cli, cmd: &VolumeCommand) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let store = engine.store();
    match cmd {
        VolumeCommand::Create(a) => {
            if a.driver != "local" {
                bail!(
                    "volume driver {:?} is not supported (only \"local\")",
                    a.driver
                );
            }
            let mut labels = BTreeMap::new();
            for l in &a.label {
                let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                labels.insert(k.to_string(), v.to_string());
            }
            let v = store.create_volume(a.name.as_deref(), labels)?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls(a) => {
            let vols = store.volumes()?;
            if a.quiet {
                for v in &vols {
                    println!("{}", v.name);
                }
            } else if let Some(f) = &a.format {
                let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
                let objs: Vec<Value> = vols.iter().map(volume_json).collect();
                print_with_template(&tpl, &objs, &|f| f.to_ascii_uppercase())
                    .map_err(|e| anyhow!(e))?;
            } else {
                let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
                for v in &vols {
                    rows.push(vec!["local".into(), v.name.clone()]);
                }
                print_table(&rows);
            }
        }
        VolumeCommand::Rm(a) => {
            // the first failure's code (its kind's)
            let mut code = 0;
            for n in &a.names {
                match store.remove_volume(n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", super::chain_message(&e));
                        if code == 0 {
                            code = wharf_types::error::HasKind::kind(&e).exit_code();
                        }
                    }
                }
            }
            return Ok(code);
        }
        VolumeCommand::Inspect(a) => {
            let mut out = Vec::new();
            for n in &a.names {
                out.push(volume_json(&store.volume(n)?));
            }
            match &a.format {
                Some(f) => {
                    let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
                    for v in &out {
                        println!("{}", tpl.render(v).map_err(|e| anyhow!(e))?);
                    }
                }
                None => println!("{}", super::containers::pretty_json(&Value::Array(out))),
            }
        }
    }
    Ok(0)
}
