//! `diff`, `commit`, `export`, `history` (and their `container`/`image` forms): parse,
//! call the engine, render as docker's CLI does.

use crate::cli::{Cli, CommitArgs, DiffArgs, ExportArgs, HistoryArgs};
use crate::format::{print_table, print_with_template, Template};
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use wharf_engine::timefmt::{human_duration, human_size, seconds_since};
use wharf_engine::CommitRequest;

pub fn diff(cli: &Cli, a: &DiffArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let changes = engine.container_changes(&a.container)?;
    let mut out = std::io::stdout().lock();
    for c in changes {
        writeln!(out, "{} {}", c.kind.letter(), c.path)?;
    }
    Ok(0)
}

pub fn commit(cli: &Cli, a: &CommitArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let id = engine.commit_container(&CommitRequest {
        container: a.container.clone(),
        reference: a.reference.clone(),
        author: a.author.clone(),
        message: a.message.clone(),
        changes: a.change.clone(),
        pause: a.pause,
    })?;
    println!("{id}");
    Ok(0)
}

pub fn export(cli: &Cli, a: &ExportArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    match &a.output {
        Some(path) => {
            let mut f = std::fs::File::create(path)
                .with_context(|| format!("failed to export container: {}", path.display()))?;
            engine.export_container(&a.container, &mut f)?;
            f.sync_all()?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            engine.export_container(&a.container, &mut stdout.lock())?;
        }
    }
    Ok(0)
}

fn history_header(field: &str) -> String {
    match field {
        "ID" => "IMAGE".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "CreatedBy" => "CREATED BY".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// docker's `CREATED AT`: RFC 3339 to the second (`2024-01-02T03:04:05Z`).
fn to_seconds(ts: &str) -> String {
    match ts.split_once('.') {
        Some((head, rest)) => {
            let zone = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head}{zone}")
        }
        None => ts.to_string(),
    }
}

/// docker's `stringutils.Ellipsis`: at most `max` characters, the last one `…` if cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn history(cli: &Cli, a: &HistoryArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let items = engine.image_history(&a.image)?;
    let rows: Vec<Value> = items
        .iter()
        .map(|h| {
            let id = match &h.image {
                Some(d) if a.no_trunc => d.to_string(),
                Some(d) => d.short().to_string(),
                None => "<missing>".to_string(),
            };
            let created_at = to_seconds(h.created.as_deref().unwrap_or_default());
            let since = if a.human {
                format!("{} ago", human_duration(seconds_since(&created_at)))
            } else {
                created_at.clone()
            };
            let by = h.created_by.replace('\t', " ");
            let by = if a.no_trunc { by } else { ellipsis(&by, 45) };
            let size = if a.human {
                human_size(h.size)
            } else {
                h.size.to_string()
            };
            json!({
                "ID": id,
                "CreatedSince": since,
                "CreatedAt": created_at,
                "CreatedBy": by,
                "Size": size,
                "Comment": h.comment,
            })
        })
        .collect();
    let s = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_string();
    if a.quiet {
        for r in &rows {
            println!("{}", s(r, "ID"));
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
        print_with_template(&tpl, &rows, &history_header).map_err(|e| anyhow!(e))?;
        return Ok(0);
    }
    let created = if a.human { "CREATED" } else { "CREATED AT" };
    let mut table = vec![["IMAGE", created, "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let when = if a.human {
            s(r, "CreatedSince")
        } else {
            s(r, "CreatedAt")
        };
        table.push(vec![
            s(r, "ID"),
            when,
            s(r, "CreatedBy"),
            s(r, "Size"),
            s(r, "Comment"),
        ]);
    }
    print_table(&table);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_renderings() {
        assert_eq!(
            to_seconds("2026-12-06T08:39:04.381045303Z"),
            "2026-12-06T08:39:04Z"
        );
        assert_eq!(
            to_seconds("2026-12-06T08:39:04+01:00"),
            "2026-12-06T08:39:04+01:00"
        );
        assert_eq!(
            to_seconds("2026-12-06T08:39:04.5+01:00"),
            "2026-12-06T08:39:04+01:00"
        );
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abcd", 4), "abcd");
        assert_eq!(ellipsis("ééééé", 3), "éé…");
    }
}
