//! `info` (also `system info`) and `version`: the engine's data (`wharf_engine::info`, the
//! same the Engine API's `/info` and `/version` serve) rendered as docker's CLI does — its
//! `Client:`/`Server:` text, or `--format` over docker's JSON shapes (`info`: the server's
//! info with `ClientInfo`; `version`: `{Client, Server}`).

use crate::cli::{Cli, FormatArgs};
use crate::format::Template;
use anyhow::anyhow;
use serde_json::{json, Value};
use std::fmt::Write;

pub(crate) const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) fn client_arch() -> &'static str {
    wharf_types::oci::host_architecture()
}

pub(crate) fn render(format: &str, v: &Value) -> anyhow::Result<i32> {
    let tpl = Template::parse(format).map_err(|e| anyhow!(e))?;
    println!("{}", tpl.render(v).map_err(|e| anyhow!(e))?);
    Ok(0)
}

/// `version` needs no engine: the server's facts are this host's.
pub fn version(a: &FormatArgs) -> anyhow::Result<i32> {
    let api = wharf_api::version::API_VERSION;
    let client = json!({
        "Version": CLIENT_VERSION,
        "ApiVersion": api,
        "DefaultAPIVersion": api,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": client_arch(),
        "BuildTime": "",
        "Context": "default",
    });
    let server = wharf_engine::info::version(api, wharf_api::version::MIN_API_VERSION);
    if let Some(f) = &a.format {
        return render(f, &json!({"Client": client, "Server": server}));
    }
    print!("{}", version_text(&client, &server));
    Ok(0)
}

/// docker's tabwriter over its version template: every label cell is padded to 20.
fn kv(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:<20}{value}");
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

pub(crate) fn version_text(client: &Value, server: &Value) -> String {
    let mut o = String::new();
    o.push_str("Client:\n");
    kv(&mut o, " Version:", s(client, "Version"));
    kv(&mut o, " API version:", s(client, "ApiVersion"));
    kv(
        &mut o,
        " OS/Arch:",
        format!("{}/{}", s(client, "Os"), s(client, "Arch")),
    );
    kv(&mut o, " Context:", s(client, "Context"));
    let platform = s(&server["Platform"], "Name");
    o.push_str("\nServer:");
    if !platform.is_empty() {
        o.push(' ');
        o.push_str(platform);
    }
    o.push('\n');
    for c in server["Components"].as_array().into_iter().flatten() {
        let d = &c["Details"];
        let _ = writeln!(o, " {}:", s(c, "Name"));
        kv(&mut o, "  Version:", s(c, "Version"));
        if s(c, "Name") == "Engine" {
            kv(
                &mut o,
                "  API version:",
                format!(
                    "{} (minimum version {})",
                    s(d, "ApiVersion"),
                    s(d, "MinAPIVersion")
                ),
            );
            kv(
                &mut o,
                "  OS/Arch:",
                format!("{}/{}", s(d, "Os"), s(d, "Arch")),
            );
            kv(&mut o, "  Experimental:", s(d, "Experimental"));
        }
    }
    o
}

pub fn info(cli: &Cli, a: &FormatArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let mut v = wharf_engine::info::info(&engine)?;
    let client = json!({
        "Debug": cli.debug,
        "Version": CLIENT_VERSION,
        "DefaultAPIVersion": wharf_api::version::API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": client_arch(),
        "BuildTime": "",
        "Context": "default",
        "Plugins": [],
        "Warnings": null,
    });
    if let Some(f) = &a.format {
        if let Value::Object(m) = &mut v {
            m.insert("ClientInfo".into(), client);
        }
        return render(f, &v);
    }
    print!("{}", info_text(&client, &v));
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn n(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// docker 28's `prettyPrintInfo`, the sections that apply to wharf (no containerd, runc or
/// docker-init versions, no swarm details).
pub(crate) fn info_text(client: &Value, i: &Value) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line("Client:".into());
    line(format!(" Version:    {}", s(client, "Version")));
    line(format!(" Context:    {}", s(client, "Context")));
    line(format!(" Debug Mode: {}", n(client, "Debug")));
    line(String::new());
    line("Server:".into());
    line(format!(" Containers: {}", n(i, "Containers")));
    line(format!("  Running: {}", n(i, "ContainersRunning")));
    line(format!("  Paused: {}", n(i, "ContainersPaused")));
    line(format!("  Stopped: {}", n(i, "ContainersStopped")));
    line(format!(" Images: {}", n(i, "Images")));
    line(format!(" Server Version: {}", n(i, "ServerVersion")));
    line(format!(" Storage Driver: {}", n(i, "Driver")));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        let p = strings(pair);
        if let [k, v] = p.as_slice() {
            line(format!("  {k}: {v}"));
        }
    }
    line(format!(" Logging Driver: {}", n(i, "LoggingDriver")));
    line(format!(" Cgroup Driver: {}", n(i, "CgroupDriver")));
    line(format!(" Cgroup Version: {}", n(i, "CgroupVersion")));
    line(" Plugins:".into());
    for kind in ["Volume", "Network", "Authorization", "Log"] {
        let names = strings(&i["Plugins"][kind]);
        if !names.is_empty() {
            line(format!("  {kind}: {}", names.join(" ")));
        }
    }
    line(format!(" Swarm: {}", s(&i["Swarm"], "LocalNodeState")));
    let runtimes: Vec<&String> = i["Runtimes"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let runtimes: Vec<&str> = runtimes.iter().map(|s| s.as_str()).collect();
    line(format!(" Runtimes: {}", runtimes.join(" ")));
    line(format!(" Default Runtime: {}", n(i, "DefaultRuntime")));
    line(format!(" Init Binary: {}", n(i, "InitBinary")));
    let opts = strings(&i["SecurityOptions"]);
    if !opts.is_empty() {
        line(" Security Options:".into());
        for opt in opts {
            let mut name = "";
            let mut rest = Vec::new();
            for kv in opt.split(',') {
                match kv.split_once('=') {
                    Some(("name", v)) => name = v,
                    Some((k, v)) => rest.push((k, v)),
                    None => {}
                }
            }
            line(format!("  {name}"));
            for (k, v) in rest {
                let mut k = k.to_string();
                if let Some(f) = k.get_mut(..1) {
                    f.make_ascii_uppercase();
                }
                line(format!("   {k}: {v}"));
            }
        }
    }
    line(format!(" Kernel Version: {}", n(i, "KernelVersion")));
    line(format!(" Operating System: {}", n(i, "OperatingSystem")));
    line(format!(" OSType: {}", n(i, "OSType")));
    line(format!(" Architecture: {}", n(i, "Architecture")));
    line(format!(" CPUs: {}", n(i, "NCPU")));
    line(format!(
        " Total Memory: {}",
        wharf_engine::timefmt::bytes_size(i["MemTotal"].as_u64().unwrap_or(0))
    ));
    line(format!(" Name: {}", n(i, "Name")));
    line(format!(" ID: {}", n(i, "ID")));
    line(format!(" Docker Root Dir: {}", n(i, "DockerRootDir")));
    line(format!(" Debug Mode: {}", n(i, "Debug")));
    let labels = strings(&i["Labels"]);
    if !labels.is_empty() {
        line(" Labels:".into());
        for l in labels {
            line(format!("  {l}"));
        }
    }
    line(format!(" Experimental: {}", n(i, "ExperimentalBuild")));
    let reg = &i["RegistryConfig"];
    let mut insecure: Vec<&str> = reg["IndexConfigs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, c)| c["Secure"] == Value::Bool(false))
        .map(|(name, _)| name.as_str())
        .collect();
    insecure.extend(strings(&reg["InsecureRegistryCIDRs"]));
    if !insecure.is_empty() {
        line(" Insecure Registries:".into());
        for r in insecure {
            line(format!("  {r}"));
        }
    }
    let mirrors = strings(&reg["Mirrors"]);
    if !mirrors.is_empty() {
        line(" Registry Mirrors:".into());
        for m in mirrors {
            line(format!("  {m}"));
        }
    }
    line(format!(
        " Live Restore Enabled: {}",
        n(i, "LiveRestoreEnabled")
    ));
    line(String::new());
    o
}
