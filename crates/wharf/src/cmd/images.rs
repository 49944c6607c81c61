//! `images`, `import`, `tag`, `rmi`.

use crate::cli::{Cli, ImagesArgs, ImportArgs, RmiArgs, TagArgs};
use crate::format::{print_table, print_with_template, Template};
use anyhow::anyhow;
use serde_json::{json, Value};
use wharf_engine::images::{
    ImportRequest, ImportSource, ListImagesRequest, RemoveEvent, TagRequest,
};
use wharf_engine::timefmt::{human_duration, human_size, seconds_since};

pub fn import(cli: &Cli, a: &ImportArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let stdin = std::io::stdin();
    let mut lock;
    let source = if a.file == "-" {
        lock = stdin.lock();
        ImportSource::Reader(&mut lock)
    } else {
        ImportSource::Path(a.file.clone())
    };
    let id = engine.import_image(ImportRequest {
        source,
        reference: a.reference.clone(),
        changes: a.change.clone(),
        message: a.message.clone(),
    })?;
    println!("{id}");
    Ok(0)
}

fn images_header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_ascii_uppercase(),
    }
}

pub fn images(cli: &Cli, a: &ImagesArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let list = engine.list_images(&ListImagesRequest {
        reference: a.repository.clone(),
        filters: a.filter.clone(),
    })?;
    let rows: Vec<Value> = list
        .iter()
        .map(|img| {
            let id = if a.no_trunc {
                img.id.to_string()
            } else {
                img.id.short().to_string()
            };
            json!({
                "ID": id,
                "Repository": img.repository,
                "Tag": img.tag,
                "Digest": img.digest,
                "CreatedAt": img.created,
                "CreatedSince": format!("{} ago", human_duration(seconds_since(&img.created))),
                "Size": human_size(img.size),
                "Containers": "N/A",
            })
        })
        .collect();
    render_images(a, &rows)
}

/// `images` output from its rows (docker's formatter fields): `-q` (each id once),
/// `--format`, or the table. Shared by local and remote mode.
pub(crate) fn render_images(a: &ImagesArgs, rows: &[Value]) -> anyhow::Result<i32> {
    if a.quiet {
        // docker's CLI: one line per row (per tag), an image with two tags twice
        for r in rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
        print_with_template(&tpl, rows, &images_header).map_err(|e| anyhow!(e))?;
        return Ok(0);
    }
    let mut table = vec![];
    let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
    if a.digests {
        header.push("DIGEST".into());
    }
    header.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
    table.push(header);
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let mut row = vec![s("Repository"), s("Tag")];
        if a.digests {
            row.push(s("Digest"));
        }
        row.extend([s("ID"), s("CreatedSince"), s("Size")]);
        table.push(row);
    }
    print_table(&table);
    Ok(0)
}

pub fn tag(cli: &Cli, a: &TagArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    engine.tag_image(&TagRequest {
        source: a.source.clone(),
        target: a.target.clone(),
    })?;
    Ok(0)
}

pub fn rmi(cli: &Cli, a: &RmiArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    // docker's CLI: every image is tried, then 1 if any failed; with `-f` an image that does
    // not exist is reported but is no failure
    let mut code = 0;
    for name in &a.images {
        match engine.remove_image(name, a.force) {
            Ok(events) => {
                for ev in events {
                    match ev {
                        RemoveEvent::Untagged(t) => println!("Untagged: {t}"),
                        RemoveEvent::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("Error response from daemon: {}", super::chain_message(&e));
                if !(a.force
                    && wharf_types::error::HasKind::kind(&e) == wharf_types::ErrorKind::NotFound)
                {
                    code = wharf_types::error::COMMAND_FAILED;
                }
            }
        }
    }
    Ok(code)
}
