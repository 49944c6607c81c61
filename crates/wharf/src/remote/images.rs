//! Remote `images`, `tag`, `rmi`, `pull` (docker's JSON progress stream rendered by the
//! local renderer, `cmd::distribution::Render`).

use super::client::{enc, Client};
use super::containers::{ago, filters_json, rfc3339};
use super::http::Request;
use super::RemoteError;
use crate::cli::{ImagesArgs, PullArgs, RmiArgs, TagArgs};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, IsTerminal};
use wharf_engine::distribution::Progress;
use wharf_engine::timefmt::human_size;
use wharf_types::error::COMMAND_FAILED;

pub fn images(c: &Client, a: &ImagesArgs) -> anyhow::Result<i32> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.repository {
        filters.push(format!("reference={r}"));
    }
    let mut q = "/images/json".to_string();
    if let Some(f) = filters_json(&filters)? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let list = c.get(q)?;
    let mut rows = Vec::new();
    for img in list.as_array().ok_or(RemoteError::Shape {
        what: "an image list that is not an array",
    })? {
        let full = img["Id"].as_str().unwrap_or_default();
        let id = if a.no_trunc {
            full.to_string()
        } else {
            full.strip_prefix("sha256:")
                .unwrap_or(full)
                .chars()
                .take(12)
                .collect()
        };
        let created = img["Created"].as_i64().unwrap_or(0);
        let size = img["Size"].as_u64().unwrap_or(0);
        let digest = img["RepoDigests"]
            .as_array()
            .and_then(|d| d.first())
            .and_then(|d| d.as_str())
            .and_then(|d| d.split_once('@'))
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| "<none>".into());
        let tags: Vec<(String, String)> = img["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .filter(|t| *t != "<none>:<none>")
            .filter_map(|t| {
                t.rsplit_once(':')
                    .map(|(r, t)| (r.to_string(), t.to_string()))
            })
            .collect();
        let tags = if tags.is_empty() {
            vec![("<none>".to_string(), "<none>".to_string())]
        } else {
            tags
        };
        for (repo, tag) in tags {
            rows.push(json!({
                "ID": id,
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedAt": rfc3339(created),
                "CreatedSince": ago(created),
                "Size": human_size(size),
                "Containers": "N/A",
            }));
        }
    }
    crate::cmd::images::render_images(a, &rows)
}

pub fn tag(c: &Client, a: &TagArgs) -> anyhow::Result<i32> {
    let (repo, tag) = match a.target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (a.target.clone(), String::new()),
    };
    let mut q = format!("/images/{}/tag?repo={}", enc(&a.source), enc(&repo));
    if !tag.is_empty() {
        q.push_str(&format!("&tag={}", enc(&tag)));
    }
    c.post(q)?;
    Ok(0)
}

pub fn rmi(c: &Client, a: &RmiArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for name in &a.images {
        match c.json(Request::new(
            "DELETE",
            format!("/images/{}?force={}", enc(name), u8::from(a.force)),
        )) {
            Ok(v) => {
                for ev in v.as_array().into_iter().flatten() {
                    if let Some(t) = ev["Untagged"].as_str() {
                        println!("Untagged: {t}");
                    }
                    if let Some(d) = ev["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                super::report(&e, wharf_types::error::CommandClass::Other);
                let missing = e.chain().any(|x| {
                    matches!(
                        x.downcast_ref::<RemoteError>(),
                        Some(RemoteError::Daemon { status: 404, .. })
                    )
                });
                if !(a.force && missing) {
                    code = COMMAND_FAILED;
                }
            }
        }
    }
    Ok(code)
}

/// `POST /images/create`: the progress stream rendered as local mode renders it; an error
/// line in the stream is the command's error.
pub fn pull_image(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    to_stderr: bool,
    show: bool,
) -> anyhow::Result<()> {
    let (name, tag) = match image.split_once('@') {
        Some((n, d)) => (n.to_string(), d.to_string()),
        None => match image.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (image.to_string(), "latest".to_string()),
        },
    };
    let mut q = format!("/images/create?fromImage={}&tag={}", enc(&name), enc(&tag));
    if let Some(p) = platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let r = c.send(Request::new("POST", q).stream())?;
    let tty = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let render = crate::cmd::distribution::Render {
        tty,
        quiet: !show,
        ids: std::sync::Mutex::new(Vec::new()),
        stderr: to_stderr,
    };
    let mut reader = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        // one progress message per line; a line is bounded
        let n = (&mut reader).take(1 << 20).read_line(&mut line)?;
        if n == 0 {
            break;
        }
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        if let Some(e) = v["error"].as_str() {
            return Err(RemoteError::Daemon {
                status: 500,
                message: e.to_string(),
            }
            .into());
        }
        let status = v["status"].as_str().unwrap_or_default();
        match v["id"].as_str() {
            Some(id) if status.starts_with("Pulling from") => {
                render.event(Progress::Line(&format!("{id}: {status}")))
            }
            Some(id) => render.event(Progress::Layer {
                id,
                status,
                current: v["progressDetail"]["current"].as_u64().unwrap_or(0),
                total: v["progressDetail"]["total"].as_u64().unwrap_or(0),
            }),
            None if !status.is_empty() => render.event(Progress::Line(status)),
            None => {}
        }
    }
    Ok(())
}

use std::io::Read as _;

pub fn pull(c: &Client, a: &PullArgs) -> anyhow::Result<i32> {
    pull_image(c, &a.image, a.platform.as_deref(), false, !a.quiet)?;
    println!("{}", a.image);
    Ok(0)
}
