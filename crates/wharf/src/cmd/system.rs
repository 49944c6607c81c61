//! `system df`, `system prune`, `image prune`: render the engine's prune and disk-usage
//! reports as docker's CLI does (its warnings, `Deleted …:` sections, "Total reclaimed space",
//! the df table and `-v` sections).

use serde_json::json;

use crate::cli::{Cli, ImagePruneArgs, SystemDfArgs, SystemPruneArgs};
use crate::format::{print_table, print_with_template, Template};
use wharf_engine::prune::{
    DiskUsage, ImagePruneReport, ImagePruneRequest, RemoveEvent, SystemPruneRequest,
};
use wharf_engine::state::Status;
use wharf_engine::timefmt::{human_duration, human_size, human_size4, seconds_since};

/// A `Deleted <what>:` section (nothing when empty), then a blank line.
pub fn print_deleted(what: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return;
    }
    println!("Deleted {what}:");
    for i in items {
        println!("{i}");
    }
    println!();
}

fn print_images(rep: &ImagePruneReport) {
    print_deleted(
        "Images",
        rep.events.iter().map(|e| match e {
            RemoveEvent::Untagged(n) => format!("untagged: {n}"),
            RemoveEvent::Deleted(d) => format!("deleted: {d}"),
        }),
    );
}

pub fn image_prune(cli: &Cli, a: &ImagePruneArgs) -> anyhow::Result<i32> {
    let what = if a.all {
        "This will remove all images without at least one container associated to them."
    } else {
        "This will remove all dangling images."
    };
    if !a.force && !super::confirm(what) {
        return Ok(0);
    }
    let engine = super::open_engine(cli)?;
    let rep = engine.prune_images(&ImagePruneRequest {
        all: a.all,
        filters: a.filter.clone(),
    })?;
    print_images(&rep);
    println!("Total reclaimed space: {}", human_size4(rep.reclaimed));
    Ok(0)
}

pub fn prune(cli: &Cli, a: &SystemPruneArgs) -> anyhow::Result<i32> {
    let mut what = String::from("This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        what.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        what.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
    } else {
        what.push_str("  - all dangling images\n  - unused build cache\n");
    }
    if !a.filter.is_empty() {
        what.push_str(&format!(
            "\n  Items to be pruned will be filtered with:\n  - {}\n",
            a.filter.join("\n  - ")
        ));
    }
    if !a.force && !super::confirm(&what) {
        return Ok(0);
    }
    let engine = super::open_engine(cli)?;
    let rep = engine.prune_system(&SystemPruneRequest {
        all: a.all,
        volumes: a.volumes,
        filters: a.filter.clone(),
    })?;
    print_deleted(
        "Containers",
        rep.containers.deleted.iter().map(|i| i.to_string()),
    );
    print_deleted("Networks", rep.networks.iter().cloned());
    if let Some(v) = &rep.volumes {
        print_deleted("Volumes", v.deleted.iter().cloned());
    }
    print_images(&rep.images);
    println!("Total reclaimed space: {}", human_size4(rep.reclaimed()));
    Ok(0)
}

/// docker's `SIZE (PERCENT%)`, or the size alone when the total is zero.
fn reclaimable(part: u64, total: u64) -> String {
    match part.saturating_mul(100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", human_size4(part)),
        None => human_size4(part),
    }
}

fn summary_rows(du: &DiskUsage) -> Vec<serde_json::Value> {
    let active_images = du.images.iter().filter(|i| i.containers > 0).count();
    let running = |s: Status| matches!(s, Status::Running | Status::Paused | Status::Restarting);
    let active_ctrs = du.containers.iter().filter(|c| running(c.status)).count();
    let ctr_total: u64 = du.containers.iter().map(|c| c.size_rw).sum();
    let ctr_reclaim: u64 = du
        .containers
        .iter()
        .filter(|c| !running(c.status))
        .map(|c| c.size_rw)
        .sum();
    let vol_total: u64 = du.volumes.iter().map(|v| v.size).sum();
    let vol_reclaim: u64 = du
        .volumes
        .iter()
        .filter(|v| v.links == 0)
        .map(|v| v.size)
        .sum();
    let active_vols = du.volumes.iter().filter(|v| v.links > 0).count();
    vec![
        json!({"Type": "Images", "TotalCount": du.images.len().to_string(), "Active": active_images.to_string(),
               "Size": human_size4(du.images_size), "Reclaimable": reclaimable(du.images_reclaimable(), du.images_size)}),
        json!({"Type": "Containers", "TotalCount": du.containers.len().to_string(), "Active": active_ctrs.to_string(),
               "Size": human_size4(ctr_total), "Reclaimable": reclaimable(ctr_reclaim, ctr_total)}),
        json!({"Type": "Local Volumes", "TotalCount": du.volumes.len().to_string(), "Active": active_vols.to_string(),
               "Size": human_size4(vol_total), "Reclaimable": reclaimable(vol_reclaim, vol_total)}),
        json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ]
}

fn df_header(f: &str) -> String {
    match f {
        "TotalCount" => "TOTAL".into(),
        other => other.to_ascii_uppercase(),
    }
}

pub fn df(cli: &Cli, a: &SystemDfArgs) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    let du = engine.disk_usage()?;
    if let Some(f) = &a.format {
        let tpl = Template::parse(f)?;
        print_with_template(&tpl, &summary_rows(&du), &df_header)?;
        return Ok(0);
    }
    if !a.verbose {
        let mut rows = vec![vec![
            "TYPE".to_string(),
            "TOTAL".into(),
            "ACTIVE".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ]];
        for r in summary_rows(&du) {
            rows.push(
                ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
                    .iter()
                    .map(|k| r[k].as_str().unwrap_or_default().to_string())
                    .collect(),
            );
        }
        print_table(&rows);
        return Ok(0);
    }
    println!("Images space usage:\n");
    let mut rows = vec![[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]
    .map(String::from)
    .to_vec()];
    for i in &du.images {
        let ago = format!("{} ago", human_duration(seconds_since(&i.created)));
        let short = i.id.hex()[..12].to_string();
        let tags: Vec<(String, String)> = if i.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.repo_tags
                .iter()
                .map(|t| match t.rsplit_once(':') {
                    Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
                    _ => (t.clone(), "<none>".into()),
                })
                .collect()
        };
        for (repo, tag) in tags {
            rows.push(vec![
                repo,
                tag,
                short.clone(),
                ago.clone(),
                human_size(i.size),
                human_size(i.shared_size),
                human_size(i.size.saturating_sub(i.shared_size)),
                i.containers.to_string(),
            ]);
        }
    }
    print_table(&rows);
    println!("\nContainers space usage:\n");
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in &du.containers {
        let info = engine.container(c.id.as_str()).ok();
        let status = info
            .map(|i| {
                wharf_engine::state::status_text(&i.state, &|ts| human_duration(seconds_since(ts)))
            })
            .unwrap_or_default();
        let mut cmd = c.command.clone();
        if cmd.chars().count() > 20 {
            cmd = cmd.chars().take(19).collect::<String>() + "…";
        }
        rows.push(vec![
            c.id.short().to_string(),
            c.image.clone(),
            format!("\"{cmd}\""),
            c.local_volumes.to_string(),
            human_size4(c.size_rw),
            format!("{} ago", human_duration(seconds_since(&c.created))),
            status,
            c.name.clone(),
        ]);
    }
    print_table(&rows);
    println!("\nLocal Volumes space usage:\n");
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for v in &du.volumes {
        rows.push(vec![
            v.name.clone(),
            v.links.to_string(),
            human_size4(v.size),
        ]);
    }
    print_table(&rows);
    println!("\nBuild cache usage: 0B\n");
    print_table(&[[
        "CACHE ID",
        "CACHE TYPE",
        "SIZE",
        "CREATED",
        "LAST USED",
        "USAGE",
        "SHARED",
    ]
    .map(String::from)
    .to_vec()]);
    Ok(0)
}
