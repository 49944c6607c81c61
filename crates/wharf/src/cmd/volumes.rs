//! `volume create|ls|rm|inspect|prune`: argv → the engine's volume service → docker's output.

use crate::cli::{Cli, VolumeCommand};
use crate::format::{print_table, print_with_template, Template};
use anyhow::anyhow;
use serde_json::Value;
use wharf_engine::volumes::{
    inspect_json, labels_from_list, VolumeCreateRequest, VolumeListRequest, VolumePruneRequest,
};

pub fn volume(cli: &Cli, cmd: &VolumeCommand) -> anyhow::Result<i32> {
    if let VolumeCommand::Prune(a) = cmd {
        if !a.force
            && !super::confirm(&format!(
                "This will remove {} local volumes not used by at least one container.",
                if a.all { "all" } else { "anonymous" }
            ))
        {
            return Ok(0);
        }
    }
    let engine = super::open_engine(cli)?;
    match cmd {
        VolumeCommand::Create(a) => {
            let v = engine.create_volume(&VolumeCreateRequest {
                name: a.name.clone(),
                driver: Some(a.driver.clone()),
                labels: labels_from_list(&a.label),
            })?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls(a) => {
            let vols = engine.list_volumes(&VolumeListRequest {
                filters: a.filter.clone(),
            })?;
            if a.quiet {
                for v in &vols {
                    println!("{}", v.name);
                }
            } else if let Some(f) = &a.format {
                let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
                let objs: Vec<Value> = vols.iter().map(inspect_json).collect();
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
            // docker's CLI: every volume is tried, then 1 if any failed
            let mut code = 0;
            for n in &a.names {
                match engine.remove_volume(n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", super::chain_message(&e));
                        code = wharf_types::error::COMMAND_FAILED;
                    }
                }
            }
            return Ok(code);
        }
        VolumeCommand::Inspect(a) => {
            let mut out = Vec::new();
            for n in &a.names {
                out.push(inspect_json(&engine.volume(n)?));
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
        VolumeCommand::Prune(a) => {
            let rep = engine.prune_volumes(&VolumePruneRequest {
                all: a.all,
                filters: a.filter.clone(),
            })?;
            if !rep.deleted.is_empty() {
                println!("Deleted Volumes:");
                for n in &rep.deleted {
                    println!("{n}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                wharf_engine::timefmt::human_size4(rep.reclaimed)
            );
        }
    }
    Ok(0)
}
