//! `network create|ls|inspect|rm|prune|connect|disconnect`: argv → the engine's network
//! service → docker's output.

use crate::cli::{Cli, NetworkCommand};
use crate::format::{print_table, print_with_template, Template};
use anyhow::anyhow;
use serde_json::{json, Value};
use wharf_engine::networks::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkListRequest, NetworkPruneRequest,
    NetworkSummary,
};
use wharf_types::error::{ErrorKind, HasKind};

/// The object `network ls --format` templates see (docker's field names).
fn ls_object(n: &NetworkSummary, no_trunc: bool) -> Value {
    json!({
        "ID": short_id(&n.id, no_trunc),
        "Name": n.name,
        "Driver": n.driver,
        "Scope": n.scope,
        "IPv6": n.ipv6.to_string(),
        "Internal": n.internal.to_string(),
        "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "CreatedAt": n.created,
    })
}

fn short_id(id: &str, no_trunc: bool) -> &str {
    if no_trunc {
        id
    } else {
        id.get(..12).unwrap_or(id)
    }
}

/// Header of a `table` template column (docker's).
fn header(field: &str) -> String {
    match field {
        "ID" => "NETWORK ID".into(),
        "CreatedAt" => "CREATED AT".into(),
        f => f.to_ascii_uppercase(),
    }
}

pub fn network(cli: &Cli, cmd: &NetworkCommand) -> anyhow::Result<i32> {
    if let NetworkCommand::Prune(a) = cmd {
        if !a.force
            && !super::confirm(
                "This will remove all custom networks not used by at least one container.",
            )
        {
            return Ok(0);
        }
    }
    let engine = super::open_engine(cli)?;
    match cmd {
        NetworkCommand::Create(a) => {
            let n = engine.create_network(&NetworkCreateRequest {
                name: a.name.clone(),
                driver: Some(a.driver.clone()),
                subnets: a.subnet.clone(),
                gateways: a.gateway.clone(),
                ip_ranges: a.ip_range.clone(),
                internal: a.internal,
                attachable: a.attachable,
                ipv6: a.ipv6,
                labels: a.label.clone(),
                options: a.opt.clone(),
            })?;
            println!("{}", n.id);
        }
        NetworkCommand::Ls(a) => {
            let nets = engine.list_networks(&NetworkListRequest {
                filters: a.filter.clone(),
            })?;
            if a.quiet {
                for n in &nets {
                    println!("{}", short_id(&n.id, a.no_trunc));
                }
            } else if let Some(f) = &a.format {
                let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
                let objs: Vec<Value> = nets.iter().map(|n| ls_object(n, a.no_trunc)).collect();
                print_with_template(&tpl, &objs, &header).map_err(|e| anyhow!(e))?;
            } else {
                let mut rows = vec![vec![
                    "NETWORK ID".to_string(),
                    "NAME".into(),
                    "DRIVER".into(),
                    "SCOPE".into(),
                ]];
                for n in &nets {
                    rows.push(vec![
                        short_id(&n.id, a.no_trunc).to_string(),
                        n.name.clone(),
                        n.driver.clone(),
                        n.scope.to_string(),
                    ]);
                }
                print_table(&rows);
            }
        }
        NetworkCommand::Inspect(a) => {
            // docker prints what it found and names what it did not (first failure's code)
            let tpl = a
                .format
                .as_deref()
                .map(|f| Template::parse(f).map_err(|e| anyhow!(e)))
                .transpose()?;
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match engine.inspect_network(n) {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", super::chain_message(&e));
                        if code == 0 {
                            code = wharf_types::error::COMMAND_FAILED;
                        }
                    }
                }
            }
            match &tpl {
                Some(tpl) => {
                    for v in &out {
                        println!("{}", tpl.render(v).map_err(|e| anyhow!(e))?);
                    }
                }
                None => println!("{}", super::containers::pretty_json(&Value::Array(out))),
            }
            return Ok(code);
        }
        NetworkCommand::Rm(a) => {
            // every name is tried; the first failure's code (its kind's)
            let mut code = 0;
            for n in &a.names {
                match engine.remove_network(n) {
                    Ok(_) => println!("{n}"),
                    Err(e) if a.force && e.kind() == ErrorKind::NotFound => {}
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", super::chain_message(&e));
                        if code == 0 {
                            code = wharf_types::error::COMMAND_FAILED;
                        }
                    }
                }
            }
            return Ok(code);
        }
        NetworkCommand::Prune(a) => {
            let deleted = engine.prune_networks(&NetworkPruneRequest {
                filters: a.filter.clone(),
            })?;
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for n in &deleted {
                    println!("{n}");
                }
                println!();
            }
        }
        NetworkCommand::Connect(a) => {
            engine.connect_network(&NetworkConnectRequest {
                network: a.network.clone(),
                container: a.container.clone(),
                aliases: a.alias.clone(),
                ipv4: a.ip.clone(),
                ipv6: a.ip6.clone(),
            })?;
        }
        NetworkCommand::Disconnect(a) => {
            engine.disconnect_network(&a.network, &a.container, a.force)?;
        }
    }
    Ok(0)
}
