//! `ps`, `inspect`, `rm`. `inspect` and `rm` try every object, then exit 1 if any failed
//! (docker's CLI, `wharf_types::error::COMMAND_FAILED`).

use crate::cli::{Cli, InspectArgs, PsArgs, RmArgs};
use crate::format::{print_table, print_with_template, Template};
use anyhow::anyhow;
use serde_json::{json, Value};
use wharf_engine::network::report::PortEntry;
use wharf_engine::run::ContainerInfo;
use wharf_engine::timefmt::{human_duration, human_size, seconds_since};
use wharf_engine::Engine;
use wharf_types::error::{HasKind, COMMAND_FAILED};
use wharf_types::ErrorKind;

fn status_text(info: &ContainerInfo) -> String {
    wharf_engine::state::status_text(&info.state, &|ts| human_duration(seconds_since(ts)))
}

fn command_text(info: &ContainerInfo, trunc: bool) -> String {
    // docker's CLI: dockerd's text, cut to 20 characters, then Go-quoted
    quote_command(
        &wharf_engine::containers::list_command(&info.record.config),
        trunc,
    )
}

/// docker's COMMAND cell: cut to 20 characters with an ellipsis unless `--no-trunc`, then
/// Go-quoted. Shared with remote mode (the API's `Command` is dockerd's text).
pub(crate) fn quote_command(cmd: &str, trunc: bool) -> String {
    let cmd = if trunc && cmd.chars().count() > 20 {
        let mut s: String = cmd.chars().take(19).collect();
        s.push('…');
        s
    } else {
        cmd.to_string()
    };
    serde_json::to_string(&cmd).unwrap_or_default()
}

/// `ip:port` as Go's `net.JoinHostPort` writes it (IPv6 in brackets).
fn join_host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// docker's `DisplayablePorts` (the PORTS column): sorted by private port, address, public
/// port, type; ports published on the same number and consecutive exposed ones grouped into
/// ranges (`0.0.0.0:8000-8001->8000-8001/tcp`), other mappings after them.
pub fn displayable_ports(ports: &[PortEntry]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        let ip = |p: &PortEntry| p.public.as_ref().map(|x| x.0.clone()).unwrap_or_default();
        let public = |p: &PortEntry| p.public.as_ref().map_or(0, |x| x.1);
        (a.private_port, ip(a), public(a), &a.proto).cmp(&(
            b.private_port,
            ip(b),
            public(b),
            &b.proto,
        ))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new(); // (key, first, last), creation order
    let mut result: Vec<String> = Vec::new();
    let mut mappings: Vec<String> = Vec::new();
    let form = |key: &str, first: u16, last: u16| {
        let (ip, kind) = match key.rsplit_once('/') {
            Some((ip, kind)) => (ip, kind),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            let host = if ip.contains(':') {
                format!("[{ip}]:{g}")
            } else {
                format!("{ip}:{g}")
            };
            g = format!("{host}->{g}");
        }
        format!("{g}/{kind}")
    };
    for p in &ports {
        let current = p.private_port;
        let mut key = p.proto.clone();
        if let Some((ip, public)) = &p.public {
            if *public != current {
                mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(ip, *public),
                    p.private_port,
                    p.proto
                ));
                continue;
            }
            key = format!("{ip}/{}", p.proto);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, current, current)),
            Some(g) if current == g.2.wrapping_add(1) => g.2 = current,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = current;
                g.2 = current;
            }
        }
    }
    for (k, first, last) in &groups {
        result.push(form(k, *first, *last));
    }
    result.extend(mappings);
    result.join(", ")
}

/// The object `ps --format` templates see (docker's field names).
/// docker's SIZE cell: `12B (virtual 4.26MB)` (go-units, 3 digits), `0B` when not asked.
pub(crate) fn size_text(size: Option<(u64, u64)>) -> String {
    match size {
        Some((rw, root)) if root > 0 => {
            format!("{} (virtual {})", human_size(rw), human_size(root))
        }
        Some((rw, _)) => human_size(rw),
        None => human_size(0),
    }
}

fn ps_object(engine: &Engine, info: &ContainerInfo, trunc: bool, size: bool) -> Value {
    let id = info.record.id.as_str();
    json!({
        "ID": if trunc { &id[..12] } else { id },
        "Image": info.record.config.image,
        "Command": command_text(info, trunc),
        "CreatedAt": info.record.created,
        "RunningFor": format!("{} ago", human_duration(seconds_since(&info.record.created))),
        "Ports": displayable_ports(&engine.container_ports(info)),
        "State": info.state.status().as_str(),
        "Status": status_text(info),
        "Names": info.record.name,
        "Labels": info.record.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Mounts": info.record.host_config.mounts.iter().map(|m| m.source.clone()).collect::<Vec<_>>().join(","),
        "Networks": match &info.record.host_config.network_mode {
            wharf_types::container::NetworkMode::Container(_) => String::new(),
            m if m.is_bridge() => info.record.bridge_networks().join(","),
            m => m.as_docker(),
        },
        "Size": size_text(size.then(|| engine.container_size(info))),
    })
}

fn ps_header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_ascii_uppercase(),
    }
}

pub fn ps(cli: &Cli, a: &PsArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let filter = wharf_engine::containers::ContainerFilter::parse(&a.filter)?;
    // docker: -l is -n 1; a limit lists every state
    let last = if a.latest && a.last == -1 { 1 } else { a.last };
    let mut list = engine.list_containers(a.all || last > 0, &filter)?;
    if let Ok(n) = usize::try_from(last) {
        if n > 0 {
            list.truncate(n);
        }
    }
    let trunc = !a.no_trunc;
    let objs: Vec<Value> = list
        .iter()
        .map(|c| ps_object(&engine, c, trunc, a.size))
        .collect();
    render_ps(a, &objs)
}

/// `ps` output from its objects (docker's formatter fields): `-q`, `--format`, or the table.
/// Shared by local and remote mode.
pub(crate) fn render_ps(a: &PsArgs, objs: &[Value]) -> anyhow::Result<i32> {
    let s = |o: &Value, k: &str| o[k].as_str().unwrap_or_default().to_string();
    if a.quiet {
        for o in objs {
            println!("{}", s(o, "ID"));
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
        print_with_template(&tpl, objs, &ps_header).map_err(|e| anyhow!(e))?;
        return Ok(0);
    }
    let mut rows = vec![vec![
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
        "NAMES".into(),
    ]];
    if a.size {
        rows[0].push("SIZE".into());
    }
    for o in objs {
        let mut row = vec![
            s(o, "ID"),
            s(o, "Image"),
            s(o, "Command"),
            s(o, "RunningFor"),
            s(o, "Status"),
            s(o, "Ports"),
            s(o, "Names"),
        ];
        if a.size {
            row.push(s(o, "Size"));
        }
        rows.push(row);
    }
    print_table(&rows);
    Ok(0)
}

/// docker prints JSON with four-space indentation.
pub fn pretty_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return v.to_string();
    }
    String::from_utf8(buf).unwrap_or_default()
}

pub fn inspect(cli: &Cli, a: &InspectArgs, forced_kind: Option<&str>) -> anyhow::Result<i32> {
    use wharf_engine::inspect::{ObjectKind, DOCKER_TYPES};
    let kind = match forced_kind.or(a.kind.as_deref()) {
        None => None,
        Some(k) => match ObjectKind::parse(k) {
            Some(k) => Some(k),
            None => {
                // docker's CLI text (no prefix), exit 1
                let list: Vec<String> = DOCKER_TYPES.iter().map(|t| format!("{t:?}")).collect();
                eprintln!("unknown type: {k:?}: must be one of {}", list.join(", "));
                return Ok(COMMAND_FAILED);
            }
        },
    };
    // docker 28: `-f json` is the whole array as JSON on one line
    let json_array = a.format.as_deref() == Some("json");
    let tpl = match &a.format {
        Some(f) if !json_array => Some(Template::parse(f).map_err(|e| anyhow!(e))?),
        _ => None,
    };
    let engine = super::open_engine(cli)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match engine.inspect_object(name, kind, a.size)? {
            Some(v) => out.push(v),
            None => missing.push(name.clone()),
        }
    }
    match &tpl {
        Some(t) => {
            for v in &out {
                println!("{}", t.render(v).map_err(|e| anyhow!(e))?);
            }
        }
        None if json_array => println!("{}", Value::Array(out)),
        None => println!("{}", pretty_json(&Value::Array(out))),
    }
    // docker: one line per missing object, exit 1
    for m in &missing {
        eprintln!("Error: No such object: {m}");
    }
    Ok(if missing.is_empty() {
        0
    } else {
        COMMAND_FAILED
    })
}

pub fn rm(cli: &Cli, a: &RmArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    if a.force && a.containers.len() > 1 {
        // kill them all first, so their monitors wind down in parallel
        for name in &a.containers {
            let _ = engine.kill_container(name, "KILL");
        }
    }
    // docker's CLI: every container is tried, then 1 if any failed; with `-f` a container
    // that does not exist is reported but is no failure
    let mut code = 0;
    for name in &a.containers {
        match engine.remove_container(name, a.force, a.volumes) {
            Ok(_) => {
                println!("{name}");
            }
            Err(e) => {
                eprintln!("Error response from daemon: {}", super::chain_message(&e));
                if !(a.force && e.kind() == ErrorKind::NotFound) {
                    code = COMMAND_FAILED;
                }
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(private: u16, proto: &str, public: Option<(&str, u16)>) -> PortEntry {
        PortEntry {
            private_port: private,
            proto: proto.into(),
            public: public.map(|(i, p)| (i.to_string(), p)),
        }
    }

    #[test]
    fn ports_column_as_docker() {
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(
            displayable_ports(&[p(80, "tcp", Some(("0.0.0.0", 8080)))]),
            "0.0.0.0:8080->80/tcp"
        );
        assert_eq!(displayable_ports(&[p(80, "tcp", None)]), "80/tcp");
        assert_eq!(
            displayable_ports(&[
                p(8001, "tcp", Some(("0.0.0.0", 8001))),
                p(8000, "tcp", Some(("0.0.0.0", 8000))),
                p(53, "udp", None),
                p(443, "tcp", None),
                p(444, "tcp", None),
                p(80, "tcp", Some(("127.0.0.1", 49153))),
            ]),
            "53/udp, 443-444/tcp, 0.0.0.0:8000-8001->8000-8001/tcp, 127.0.0.1:49153->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[p(80, "tcp", Some(("::", 8080)))]),
            "[::]:8080->80/tcp"
        );
    }
}
