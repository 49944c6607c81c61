//! `images`, `import`, `tag`, `rmi`.

use crate::cli::{Cli, ImagesArgs, ImportArgs, RmiArgs, TagArgs};
use crate::format::{print_table, print_with_template, Template};
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use std::io::Read;
use wharf_engine::timefmt::{human_duration, human_size, seconds_since};
use wharf_store::{ImportOptions, RemoveEvent};
use wharf_types::oci::RunConfig;
use wharf_types::ImageRef;

/// Splits a Dockerfile instruction argument: JSON array form or shell form.
fn exec_or_shell(arg: &str) -> anyhow::Result<Vec<String>> {
    let t = arg.trim();
    if t.starts_with('[') {
        serde_json::from_str::<Vec<String>>(t).with_context(|| format!("invalid JSON array {t:?}"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), t.to_string()])
    }
}

fn key_values(arg: &str) -> Vec<(String, String)> {
    let t = arg.trim();
    if !t.contains('=') {
        // legacy `ENV key value`
        return match t.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
            None => vec![(t.to_string(), String::new())],
        };
    }
    t.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// Applies `--change` instructions (the subset of Dockerfile docker import accepts).
pub fn apply_changes(changes: &[String]) -> anyhow::Result<RunConfig> {
    let mut c = RunConfig::default();
    for ch in changes {
        let (instr, arg) = ch
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((ch.trim(), ""));
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => c.cmd = Some(exec_or_shell(arg)?),
            "ENTRYPOINT" => c.entrypoint = Some(exec_or_shell(arg)?),
            "ENV" => {
                let env = c.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(arg) {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "WORKDIR" => c.working_dir = Some(arg.trim().to_string()),
            "USER" => c.user = Some(arg.trim().to_string()),
            "LABEL" => {
                let labels = c.labels.get_or_insert_with(Default::default);
                for (k, v) in key_values(arg) {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = c.exposed_ports.get_or_insert_with(Default::default);
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, json!({}));
                }
            }
            "VOLUME" => {
                let vols = c.volumes.get_or_insert_with(Default::default);
                let list = if arg.trim().starts_with('[') {
                    exec_or_shell(arg)?
                } else {
                    arg.split_whitespace().map(str::to_string).collect()
                };
                for v in list {
                    vols.insert(v, json!({}));
                }
            }
            "STOPSIGNAL" => c.stop_signal = Some(arg.trim().to_string()),
            other => bail!("{other} is not a valid change command"),
        }
    }
    Ok(c)
}

pub fn import(cli: &Cli, a: &ImportArgs) -> anyhow::Result<i32> {
    let reference = match &a.reference {
        Some(r) => Some(ImageRef::parse(r)?),
        None => None,
    };
    let opts = ImportOptions {
        reference,
        config: apply_changes(&a.change)?,
        message: a.message.clone(),
    };
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        if a.file.contains("://") {
            bail!("importing from a URL is not supported (no registry or internet is assumed): download the file first");
        }
        Box::new(std::fs::File::open(&a.file).with_context(|| format!("open {}", a.file))?)
    };
    let engine = super::open_engine(cli)?;
    if let Some(r) = &a.reference {
        engine.policy_image("import", r, true)?;
    }
    let id = engine
        .store()
        .import(std::io::BufReader::with_capacity(1 << 20, input), &opts)?;
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
    let filter = match &a.repository {
        Some(r) => Some(ImageRef::parse(r)?),
        None => None,
    };
    let mut list = engine.store().images()?;
    list.sort_by(|a, b| b.created.cmp(&a.created));
    let mut rows: Vec<Value> = Vec::new();
    for img in &list {
        let id = if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        };
        let digest = img
            .repo_digests
            .first()
            .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
            .unwrap_or_else(|| "<none>".into());
        let mut tags: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .filter_map(|t| ImageRef::parse(t).ok())
            .map(|r| {
                (
                    r.familiar_repository(),
                    r.tag().unwrap_or("<none>").to_string(),
                )
            })
            .collect();
        if tags.is_empty() {
            tags.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in tags {
            if let Some(f) = &filter {
                if repo != f.familiar_repository()
                    || (a.repository.as_deref().is_some_and(|r| r.contains(':'))
                        && Some(tag.as_str()) != f.tag())
                {
                    continue;
                }
            }
            rows.push(json!({
                "ID": id,
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedAt": img.created,
                "CreatedSince": format!("{} ago", human_duration(seconds_since(&img.created))),
                "Size": human_size(img.size),
                "Containers": "N/A",
            }));
        }
    }
    if a.quiet {
        let mut seen = Vec::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default().to_string();
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        let tpl = Template::parse(f).map_err(|e| anyhow!(e))?;
        print_with_template(&tpl, &rows, &images_header).map_err(|e| anyhow!(e))?;
        return Ok(0);
    }
    let mut table = vec![];
    let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
    if a.digests {
        header.push("DIGEST".into());
    }
    header.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
    table.push(header);
    for r in &rows {
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
    let target = ImageRef::parse(&a.target)?;
    if target.digest().is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    let engine = super::open_engine(cli)?;
    engine.store().tag(&a.source, &target)?;
    Ok(0)
}

pub fn rmi(cli: &Cli, a: &RmiArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    // the first failure's code (its kind's)
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
                if code == 0 {
                    code = e.exit_code();
                }
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes() {
        let c = apply_changes(&[
            r#"CMD ["sh"]"#.into(),
            "ENV A=1 B=2".into(),
            "ENV C 3".into(),
            "WORKDIR /srv".into(),
            "USER nobody".into(),
            "ENTRYPOINT echo hi".into(),
            "EXPOSE 80".into(),
        ])
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.env, Some(vec!["A=1".into(), "B=2".into(), "C=3".into()]));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
        assert!(apply_changes(&["RUN rm -rf /".into()]).is_err());
        assert!(apply_changes(&["CMD [broken".into()]).is_err());
    }
}
