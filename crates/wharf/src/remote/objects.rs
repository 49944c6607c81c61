//! Remote `volume ls|create|rm|inspect` and `network ls|create|rm|inspect`.

use super::client::{enc, Client};
use super::containers::{filters_json, print_inspected};
use super::http::Request;
use super::RemoteError;
use crate::cli::{NetworkCommand, VolumeCommand};
use crate::format::{print_table, print_with_template, Template};
use anyhow::anyhow;
use serde_json::{json, Map, Value};
use wharf_types::error::{CommandClass, COMMAND_FAILED};

fn labels(list: &[String]) -> Map<String, Value> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (l.clone(), json!("")),
        })
        .collect()
}

/// Each name through `f`; errors printed as docker's; 1 if any failed.
fn each(names: &[String], f: impl Fn(&str) -> anyhow::Result<Option<Value>>) -> (Vec<Value>, i32) {
    let mut out = Vec::new();
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => println!("{n}"),
            Err(e) => {
                super::report(&e, CommandClass::Other);
                code = COMMAND_FAILED;
            }
        }
    }
    (out, code)
}

pub fn volume(c: &Client, cmd: &VolumeCommand) -> anyhow::Result<i32> {
    match cmd {
        VolumeCommand::Create(a) => {
            let body = json!({"Name": a.name.clone().unwrap_or_default(), "Driver": a.driver, "Labels": labels(&a.label)});
            let v = c.json(Request::new("POST", "/volumes/create".into()).json(&body))?;
            println!("{}", v["Name"].as_str().unwrap_or_default());
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let mut q = "/volumes".to_string();
            if let Some(f) = filters_json(&a.filter)? {
                q.push_str(&format!("?filters={}", enc(&f)));
            }
            let v = c.get(q)?;
            let vols: Vec<Value> = v["Volumes"].as_array().cloned().unwrap_or_default();
            if a.quiet {
                for v in &vols {
                    println!("{}", v["Name"].as_str().unwrap_or_default());
                }
            } else if let Some(f) = &a.format {
                let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
                print_with_template(&tpl, &vols, &|f| f.to_ascii_uppercase())
                    .map_err(|e| anyhow!(e))?;
            } else {
                let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
                for v in &vols {
                    rows.push(vec![
                        v["Driver"].as_str().unwrap_or("local").to_string(),
                        v["Name"].as_str().unwrap_or_default().to_string(),
                    ]);
                }
                print_table(&rows);
            }
            Ok(0)
        }
        VolumeCommand::Rm(a) => {
            let (_, code) = each(&a.names, |n| {
                c.json(Request::new(
                    "DELETE",
                    format!("/volumes/{}?force={}", enc(n), u8::from(a.force)),
                ))?;
                Ok(None)
            });
            Ok(code)
        }
        VolumeCommand::Inspect(a) => {
            let (out, code) = each(&a.names, |n| {
                Ok(Some(c.get(format!("/volumes/{}", enc(n)))?))
            });
            print_inspected(a.format.as_deref(), out)?;
            Ok(code)
        }
        VolumeCommand::Prune(_) => Err(super::not_available(c, "volume prune")),
    }
}

pub fn network(c: &Client, cmd: &NetworkCommand) -> anyhow::Result<i32> {
    match cmd {
        NetworkCommand::Create(a) => {
            let config: Vec<Value> = a
                .subnet
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut o = json!({"Subnet": s});
                    if let Some(g) = a.gateway.get(i) {
                        o["Gateway"] = json!(g);
                    }
                    if let Some(r) = a.ip_range.get(i) {
                        o["IPRange"] = json!(r);
                    }
                    o
                })
                .collect();
            if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
                return Err(RemoteError::Unexpressible {
                    flag: "--gateway/--ip-range without a --subnet each",
                }
                .into());
            }
            let body = json!({
                "Name": a.name,
                "Driver": a.driver,
                "Internal": a.internal,
                "Attachable": a.attachable,
                "EnableIPv6": a.ipv6,
                "Labels": labels(&a.label),
                "Options": labels(&a.opt),
                "IPAM": {"Driver": "default", "Config": config},
            });
            let v = c.json(Request::new("POST", "/networks/create".into()).json(&body))?;
            println!("{}", v["Id"].as_str().unwrap_or_default());
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let mut q = "/networks".to_string();
            if let Some(f) = filters_json(&a.filter)? {
                q.push_str(&format!("?filters={}", enc(&f)));
            }
            let v = c.get(q)?;
            let short = |id: &str| -> String {
                if a.no_trunc {
                    id.to_string()
                } else {
                    id.chars().take(12).collect()
                }
            };
            let objs: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
                    json!({
                        "ID": short(&s("Id")),
                        "Name": s("Name"),
                        "Driver": s("Driver"),
                        "Scope": s("Scope"),
                        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                        "Labels": n["Labels"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","),
                        "CreatedAt": s("Created"),
                    })
                })
                .collect();
            let st = |o: &Value, k: &str| o[k].as_str().unwrap_or_default().to_string();
            if a.quiet {
                for o in &objs {
                    println!("{}", st(o, "ID"));
                }
            } else if let Some(f) = &a.format {
                let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
                print_with_template(&tpl, &objs, &|f| match f {
                    "ID" => "NETWORK ID".into(),
                    "CreatedAt" => "CREATED AT".into(),
                    f => f.to_ascii_uppercase(),
                })
                .map_err(|e| anyhow!(e))?;
            } else {
                let mut rows = vec![vec![
                    "NETWORK ID".to_string(),
                    "NAME".into(),
                    "DRIVER".into(),
                    "SCOPE".into(),
                ]];
                for o in &objs {
                    rows.push(vec![
                        st(o, "ID"),
                        st(o, "Name"),
                        st(o, "Driver"),
                        st(o, "Scope"),
                    ]);
                }
                print_table(&rows);
            }
            Ok(0)
        }
        NetworkCommand::Rm(a) => {
            let (_, code) = each(&a.names, |n| {
                c.json(Request::new("DELETE", format!("/networks/{}", enc(n))))?;
                Ok(None)
            });
            Ok(code)
        }
        NetworkCommand::Inspect(a) => {
            let (out, code) = each(&a.names, |n| {
                Ok(Some(c.get(format!("/networks/{}", enc(n)))?))
            });
            print_inspected(a.format.as_deref(), out)?;
            Ok(code)
        }
        NetworkCommand::Prune(_) => Err(super::not_available(c, "network prune")),
        NetworkCommand::Connect(_) => Err(super::not_available(c, "network connect")),
        NetworkCommand::Disconnect(_) => Err(super::not_available(c, "network disconnect")),
    }
}
