//! `stats` output: docker's columns and units (memory in binary units, I/O in decimal ones,
//! both with Go's `%.4g`), `--format` templates, and the streaming redraw.

use crate::cli::{Cli, StatsArgs};
use crate::format::{print_with_template, render_table, Template};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use wharf_engine::stats::StatsSample;

/// Go's `%.4g` for the magnitudes units produce (< 10000): 4 significant digits, no trailing zeros.
fn g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (3 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn units(size: u64, base: f64, names: &[&str]) -> String {
    let mut v = size as f64;
    let mut i = 0;
    while v >= base && i + 1 < names.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", g4(v), names[i])
}

/// docker's `units.BytesSize` (binary).
pub fn bytes_size(n: u64) -> String {
    units(n, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"])
}

/// docker's `units.HumanSize` (decimal).
pub fn human_size(n: u64) -> String {
    units(n, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"])
}

fn object(s: &StatsSample, prev: Option<&StatsSample>, no_trunc: bool) -> Value {
    let id = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    json!({
        "ID": id,
        "Container": id,
        "Name": s.name,
        "CPUPerc": format!("{:.2}%", s.cpu_percent(prev)),
        "MemUsage": format!("{} / {}", bytes_size(s.mem_usage), bytes_size(s.mem_limit)),
        "MemPerc": format!("{:.2}%", s.mem_percent()),
        "NetIO": format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)),
        "BlockIO": format!("{} / {}", human_size(s.blk_read), human_size(s.blk_write)),
        "PIDs": s.pids.to_string(),
    })
}

fn header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID",
        "Container" => "CONTAINER",
        "Name" => "NAME",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        "PIDs" => "PIDS",
        other => return other.to_uppercase(),
    }
    .to_string()
}

const DEFAULT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn render(tpl: &Template, items: &[Value]) -> anyhow::Result<String> {
    if tpl.table {
        let mut rows = vec![split(&tpl.header(items.first(), &header))];
        for it in items {
            rows.push(split(&tpl.render(it).map_err(anyhow::Error::msg)?));
        }
        let mut out = String::new();
        render_table(&rows, &mut out);
        Ok(out)
    } else {
        let mut out = String::new();
        for it in items {
            out.push_str(&tpl.render(it).map_err(anyhow::Error::msg)?);
            out.push('\n');
        }
        Ok(out)
    }
}

fn split(s: &str) -> Vec<String> {
    s.split('\t').map(str::to_string).collect()
}

pub fn stats(cli: &Cli, a: &StatsArgs) -> anyhow::Result<i32> {
    let engine = super::super::open_engine(cli)?;
    let tpl =
        Template::parse(a.format.as_deref().unwrap_or(DEFAULT)).map_err(anyhow::Error::msg)?;
    let mut prev: HashMap<String, StatsSample> = HashMap::new();
    let sample = |prev: &mut HashMap<String, StatsSample>| -> anyhow::Result<Vec<Value>> {
        let targets = engine.stats_targets(&a.containers, a.all)?;
        let mut out = Vec::new();
        let mut next = HashMap::new();
        for t in &targets {
            let s = engine.stats_sample(t);
            out.push(object(&s, prev.get(&s.id), a.no_trunc));
            next.insert(s.id.clone(), s);
        }
        *prev = next;
        Ok(out)
    };
    // First reading, then one second later the one CPU % is computed against.
    sample(&mut prev)?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let items = sample(&mut prev)?;
        if a.no_stream {
            if a.format.is_some() && !tpl.table {
                print_with_template(&tpl, &items, &header).map_err(anyhow::Error::msg)?;
            } else {
                print!("{}", render(&tpl, &items)?);
            }
            return Ok(0);
        }
        let text = render(&tpl, &items)?;
        let mut out = std::io::stdout().lock();
        // Clear the screen and home the cursor, like docker's streaming view.
        write!(out, "\x1b[2J\x1b[H{text}")?;
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_units() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1_572_864), "1.5MiB");
        assert_eq!(bytes_size(33_554_432_000), "31.25GiB");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(999_999), "1000kB");
        assert_eq!(human_size(4_096_000), "4.096MB");
    }
}
