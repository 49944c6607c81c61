//! `wharf policy show` and `wharf policy check`: render what the engine's policy module
//! decides; no rule lives here.

use crate::cli::{Cli, PolicyCheckArgs, PolicyCheckRun};
use anyhow::Context;
use std::path::Path;
use wharf_engine::policy::{BindRule, Loaded, Policy};

fn yes_no(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "refused"
    }
}

fn render(p: &Policy) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("  {k:<20} {v}\n"));
    line(
        "registries.allow",
        p.registries
            .allow
            .as_ref()
            .map_or("any".to_string(), |a| a.join(", ")),
    );
    line("require_digest", p.registries.require_digest.to_string());
    line("require_signed", p.registries.require_signed.to_string());
    line(
        "trusted_keys",
        p.registries.trusted_keys_dir().display().to_string(),
    );
    let r = &p.run;
    line("privileged", yes_no(r.privileged).into());
    line("host_network", yes_no(r.host_network).into());
    line("host_namespaces", yes_no(r.host_namespaces).into());
    line("seccomp_unconfined", yes_no(r.seccomp_unconfined).into());
    line(
        "cap_add",
        r.cap_add
            .as_ref()
            .map_or("any".to_string(), |c| format!("only [{}]", c.join(", "))),
    );
    line(
        "bind_mounts",
        match &r.bind_mounts {
            BindRule::Allow => "allowed".into(),
            BindRule::Deny => "refused".into(),
            BindRule::Paths(l) => format!(
                "only under [{}]",
                l.iter()
                    .map(|(p, ro)| if *ro { format!("{p}:ro") } else { p.clone() })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    );
    line("non_root", r.non_root.to_string());
    line(
        "no_new_privileges",
        format!("{} (forced when true)", r.no_new_privileges),
    );
    line("nosuid", format!("{} (rootfs)", r.nosuid));
    line(
        "published_ports",
        r.published_ports
            .map_or("any".to_string(), |p| format!("{}-{}", p.low, p.high)),
    );
    line(
        "required_labels",
        format!("[{}]", r.required_labels.join(", ")),
    );
    let l = &p.limits;
    line(
        "limits.memory",
        l.memory
            .map_or("no maximum".into(), |m| format!("at most {m} bytes")),
    );
    line(
        "limits.cpus",
        l.nano_cpus.map_or("no maximum".into(), |c| {
            format!("at most {}", c as f64 / 1e9)
        }),
    );
    line(
        "limits.pids",
        l.pids
            .map_or("no maximum".into(), |n| format!("at most {n}")),
    );
    let mut req = Vec::new();
    for (on, name) in [
        (l.require_memory, "memory"),
        (l.require_cpus, "cpus"),
        (l.require_pids, "pids"),
    ] {
        if on {
            req.push(name);
        }
    }
    line("limits.required", format!("[{}]", req.join(", ")));
    let b = &p.build;
    line("build.allow", yes_no(b.allow).into());
    line(
        "approved_dockerfiles",
        b.approved.as_ref().map_or("any".to_string(), |l| {
            format!(
                "[{}]",
                l.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    );
    if let Some(d) = &b.approved_dir {
        line("approved_dir", d.display().to_string());
    }
    s
}

/// `policy check --dockerfile FILE`: whether the policy in force lets `build` use it.
fn check_dockerfile(cli: &Cli, file: &Path) -> anyhow::Result<i32> {
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let engine = super::open_engine(cli)?;
    let path = match engine.policy() {
        Loaded::Active(p) => p.path.display().to_string(),
        _ => Loaded::default_path().display().to_string(),
    };
    let ex = engine.policy_explain_build(&bytes)?;
    let digest = wharf_types::Digest::of(&bytes);
    if ex.refusals.is_empty() {
        println!(
            "allowed: Dockerfile {} ({digest}) passes [build] of {path}",
            file.display()
        );
        return Ok(0);
    }
    println!("refused by {path}:");
    for (rule, why) in &ex.refusals {
        println!("  {rule}: {why}");
    }
    Ok(1)
}

pub fn show(cli: &Cli) -> anyhow::Result<i32> {
    let engine = super::open_engine(cli)?;
    match engine.policy() {
        Loaded::None => {
            println!(
                "no policy: {} does not exist (docker's rules apply)",
                Loaded::default_path().display()
            );
            Ok(0)
        }
        Loaded::Active(p) => {
            println!("policy {}:", p.path.display());
            print!("{}", render(p));
            Ok(0)
        }
        Loaded::Broken(e) => {
            println!("policy refused (no container starts until it is fixed): {e}");
            Ok(1)
        }
    }
}

/// A single argument that names an existing file (or ends in `.toml`) is a file to validate.
fn is_file_check(args: &[String]) -> Option<&Path> {
    match args {
        [one] if one.ends_with(".toml") || (one.contains('/') && Path::new(one).is_file()) => {
            Some(Path::new(one))
        }
        _ => None,
    }
}

pub fn check(cli: &Cli, a: &PolicyCheckArgs) -> anyhow::Result<i32> {
    if let [flag, file] = a.args.as_slice() {
        if flag == "--dockerfile" {
            return check_dockerfile(cli, Path::new(file));
        }
    }
    if let Some(file) = is_file_check(&a.args) {
        let p = Loaded::validate(file)?;
        println!("policy {} is valid:", file.display());
        print!("{}", render(&p));
        return Ok(0);
    }
    let parsed = <PolicyCheckRun as clap::Parser>::try_parse_from(
        std::iter::once("policy check".to_string()).chain(a.args.iter().cloned()),
    )
    .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
    let req = super::run::build_request(&parsed.run)?;
    let engine = super::open_engine(cli)?;
    let path = match engine.policy() {
        Loaded::Active(p) => p.path.display().to_string(),
        _ => Loaded::default_path().display().to_string(),
    };
    let ex = engine
        .policy_explain(&req)
        .with_context(|| format!("check {}", req.image))?;
    let forced = match engine.policy() {
        Loaded::Active(p) => [
            (p.run.no_new_privileges, "no_new_privileges"),
            (p.run.nosuid, "nosuid rootfs"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    if ex.refusals.is_empty() {
        match engine.policy() {
            Loaded::None => println!("allowed: no policy ({path} does not exist)"),
            _ => println!("allowed: {} passes every rule of {path}", req.image),
        }
        if !forced.is_empty() {
            println!("forced on the container: {}", forced.join(", "));
        }
        return Ok(0);
    }
    println!("refused by {path}:");
    for (rule, why) in &ex.refusals {
        println!("  {rule}: {why}");
    }
    Ok(1)
}
