//! Remote `version` (docker's `Client:` and `Server:` blocks), `info`, `events`.

use super::client::{enc, Client};
use super::containers::filters_json;
use super::http::Request;
use crate::cli::{Cli, EventsArgs, FormatArgs};
use crate::cmd::info::{client_arch, info_text, render, version_text, CLIENT_VERSION};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};

fn client_json(c: &Client, context: &str) -> Value {
    json!({
        "Version": CLIENT_VERSION,
        "ApiVersion": c.version,
        "DefaultAPIVersion": wharf_api::version::API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": client_arch(),
        "BuildTime": "",
        "Context": context,
    })
}

pub fn version(c: &Client, a: &crate::cli::FormatArgs) -> anyhow::Result<i32> {
    let client = client_json(c, "default");
    let server = c.get("/version".into())?;
    if let Some(f) = &a.format {
        return render(f, &json!({"Client": client, "Server": server}));
    }
    print!("{}", version_text(&client, &server));
    Ok(0)
}

pub fn info(c: &Client, cli: &Cli, a: &FormatArgs) -> anyhow::Result<i32> {
    let mut v = c.get("/info".into())?;
    let mut client = client_json(c, "default");
    client["Debug"] = json!(cli.debug);
    client["Plugins"] = json!([]);
    client["Warnings"] = Value::Null;
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

pub fn events(c: &Client, a: &EventsArgs) -> anyhow::Result<i32> {
    let template = a
        .format
        .as_deref()
        .map(crate::format::Template::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    let mut q = "/events?".to_string();
    if let Some(s) = &a.since {
        q.push_str(&format!("since={}&", enc(s)));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("until={}&", enc(u)));
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push_str(&format!("filters={}&", enc(&f)));
    }
    let r = c.send(Request::new("GET", q.trim_end_matches(['?', '&']).to_string()).stream())?;
    let mut reader = BufReader::new(r);
    let mut out = std::io::stdout();
    let mut line = String::new();
    loop {
        line.clear();
        if (&mut reader).take(1 << 20).read_line(&mut line)? == 0 {
            return Ok(0);
        }
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let text = match &template {
            Some(t) => t
                .render(&v)
                .map_err(|err| anyhow::anyhow!("template: {err}"))?,
            None => match serde_json::from_value::<wharf_engine::events::Event>(v) {
                Ok(e) => crate::cmd::events::line(&e),
                Err(_) => continue,
            },
        };
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
            return Ok(0);
        }
    }
}
