//! The rules: pure functions from a policy and what is asked (a container's create-time
//! config, an image reference) to the refusals, each naming its rule. The only I/O is the
//! caller's user resolver (an image's or a running container's passwd).

use super::{BindRule, Policy};
use wharf_types::container::{ContainerConfig, HostConfig, MountKind, NetworkMode};
use wharf_types::user::{parse_user_spec, IdOrName};
use wharf_types::ImageRef;

/// One decision: allowed, or refused by a rule (`run.privileged`) with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Refused { rule: String, message: String },
}

/// A refusal: the rule's key in the file and why.
pub type Refusal = (&'static str, String);

impl Decision {
    pub(crate) fn from_refusals(r: Vec<Refusal>) -> Decision {
        match r.into_iter().next() {
            None => Decision::Allowed,
            Some((rule, message)) => Decision::Refused {
                rule: rule.to_string(),
                message,
            },
        }
    }
}

fn cap_name(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    c.strip_prefix("CAP_").unwrap_or(&c).to_string()
}

fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn fmt_bytes(n: i64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}g", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}m", n >> 20),
        n => format!("{n} bytes"),
    }
}

/// Resolves a user name to a uid (from the image's or container's passwd); `Err` says why
/// it could not be resolved.
pub type UserResolver<'a> = &'a dyn Fn(&str) -> Result<u32, String>;

/// `non_root`: the user spec must resolve to a uid other than 0. A name that cannot be
/// resolved is refused (fail closed).
pub(crate) fn check_user(p: &Policy, user: &str, resolve: UserResolver<'_>) -> Option<Refusal> {
    if !p.run.non_root {
        return None;
    }
    let refuse = |why: String| Some(("run.non_root", why));
    let spec = match parse_user_spec(user) {
        Ok(s) => s,
        Err(e) => return refuse(format!("user {user:?}: {e}")),
    };
    let shown = if user.is_empty() {
        "the image's default user (root)".to_string()
    } else {
        format!("user {user:?}")
    };
    match spec.user {
        IdOrName::Id(0) => refuse(format!(
            "containers must run as a non-root user; {shown} is uid 0 (set USER in the image or -u UID)"
        )),
        IdOrName::Id(_) => None,
        IdOrName::Name(n) => match resolve(n) {
            Ok(0) => refuse(format!(
                "containers must run as a non-root user; user {n:?} resolves to uid 0"
            )),
            Ok(_) => None,
            Err(why) => refuse(format!(
                "containers must run as a non-root user; user {n:?} cannot be checked: {why}"
            )),
        },
    }
}

/// `published_ports`: a host port given with `-p` (a single port or both ends of a range)
/// must be in the allowed range. Ports chosen at start are checked by
/// [`check_host_ports`].
pub(crate) fn check_port_bindings(p: &Policy, host: &HostConfig) -> Vec<Refusal> {
    let Some(r) = p.run.published_ports else {
        return Vec::new();
    };
    if host.network_mode == NetworkMode::Host {
        // docker discards published ports in the host's network namespace
        return Vec::new();
    }
    let mut out = Vec::new();
    for (key, bindings) in &host.port_bindings {
        for b in bindings {
            let Some((lo, hi)) = b
                .host_port
                .split_once('-')
                .map(|(a, b)| (a.parse::<u16>().ok(), b.parse::<u16>().ok()))
                .or_else(|| Some((b.host_port.parse().ok(), b.host_port.parse().ok())))
                .and_then(|(a, b)| Some((a?, b?)))
                .filter(|(a, _)| *a != 0)
            else {
                continue; // any port: chosen from the allowed range at start
            };
            if lo < r.low || hi > r.high {
                out.push((
                    "run.published_ports",
                    format!(
                        "host port {} for {key} is outside the allowed published ports {}-{}",
                        b.host_port, r.low, r.high
                    ),
                ));
            }
        }
    }
    out
}

/// `published_ports` for the host ports a start took (`(container port key, host port)`).
pub(crate) fn check_host_ports(p: &Policy, ports: &[(String, u16)]) -> Vec<Refusal> {
    let Some(r) = p.run.published_ports else {
        return Vec::new();
    };
    ports
        .iter()
        .filter(|(_, hp)| *hp < r.low || *hp > r.high)
        .map(|(key, hp)| {
            (
                "run.published_ports",
                format!(
                    "host port {hp} for {key} is outside the allowed published ports {}-{}",
                    r.low, r.high
                ),
            )
        })
        .collect()
}

/// Every refusal of a container's configuration (create, start, exec re-check).
pub(crate) fn check_container(
    p: &Policy,
    config: &ContainerConfig,
    host: &HostConfig,
    resolve: UserResolver<'_>,
) -> Vec<Refusal> {
    let mut out: Vec<Refusal> = Vec::new();
    let r = &p.run;
    if host.privileged && !r.privileged {
        out.push(("run.privileged", "--privileged is not allowed".into()));
    }
    if host.network_mode == NetworkMode::Host && !r.host_network {
        out.push((
            "run.host_network",
            "the host's network namespace (--network host) is not allowed".into(),
        ));
    }
    let o = &host.options;
    for (mode, flag) in [
        (&o.uts_mode, "--uts host"),
        (&o.ipc_mode, "--ipc host"),
        (&o.pid_mode, "--pid host"),
    ] {
        if mode == "host" && !r.host_namespaces {
            out.push((
                "run.host_namespaces",
                format!("the host's namespaces ({flag}) are not allowed"),
            ));
        }
    }
    if !r.devices
        && (!host.resources.devices.is_empty() || !host.resources.device_cgroup_rules.is_empty())
    {
        out.push((
            "run.devices",
            "host devices (--device, --device-cgroup-rule) are not allowed".into(),
        ));
    }
    out.extend(check_port_bindings(p, host));
    let unconfined = host.security_opt.iter().any(|o| {
        matches!(
            o.split_once('=').or_else(|| o.split_once(':')),
            Some(("seccomp", "unconfined"))
        )
    });
    if unconfined && !r.seccomp_unconfined {
        out.push((
            "run.seccomp_unconfined",
            "--security-opt seccomp=unconfined is not allowed".into(),
        ));
    }
    if let Some(allowed) = &r.cap_add {
        for c in &host.cap_add {
            let name = cap_name(c);
            if !allowed.contains(&name) {
                out.push((
                    "run.cap_add",
                    format!(
                        "--cap-add {c} is not allowed (allowed: {})",
                        if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    for m in host.mounts.iter().filter(|m| m.kind == MountKind::Bind) {
        match &r.bind_mounts {
            BindRule::Allow => {}
            BindRule::Deny => out.push((
                "run.bind_mounts",
                format!("bind mounts are not allowed (host path {})", m.source),
            )),
            BindRule::Paths(list) => {
                if let Some(why) = bind_refusal(&m.source, m.read_only, list) {
                    out.push(("run.bind_mounts", why));
                }
            }
        }
    }
    if let Some(why) = check_user(p, &config.user, resolve) {
        out.push(why);
    }
    let l = &p.limits;
    if let Some(max) = l.memory {
        if host.memory <= 0 || host.memory > max {
            out.push((
                "limits.memory",
                format!(
                    "memory limit {} exceeds the maximum {} (set --memory)",
                    if host.memory <= 0 {
                        "unlimited".into()
                    } else {
                        fmt_bytes(host.memory)
                    },
                    fmt_bytes(max)
                ),
            ));
        }
    }
    if l.require_memory && host.memory <= 0 {
        out.push((
            "limits.required",
            "a memory limit is required (--memory)".into(),
        ));
    }
    if let Some(max) = l.nano_cpus {
        if host.nano_cpus <= 0 || host.nano_cpus > max {
            out.push((
                "limits.cpus",
                format!(
                    "cpu limit {} exceeds the maximum {} (set --cpus)",
                    if host.nano_cpus <= 0 {
                        "unlimited".into()
                    } else {
                        format!("{}", host.nano_cpus as f64 / 1e9)
                    },
                    max as f64 / 1e9
                ),
            ));
        }
    }
    if l.require_cpus && host.nano_cpus <= 0 {
        out.push(("limits.required", "a cpu limit is required (--cpus)".into()));
    }
    let pids = match host.pids_limit {
        None => Some(crate::run::DEFAULT_PIDS_LIMIT),
        Some(n) if n <= 0 => None,
        Some(n) => Some(n),
    };
    if let Some(max) = l.pids {
        if match pids {
            None => true,
            Some(n) => n > max,
        } {
            out.push((
                "limits.pids",
                format!(
                    "pids limit {} exceeds the maximum {max} (set --pids-limit)",
                    pids.map_or("unlimited".to_string(), |n| n.to_string())
                ),
            ));
        }
    }
    if l.require_pids && !matches!(host.pids_limit, Some(n) if n > 0) {
        out.push((
            "limits.required",
            "a pids limit is required (--pids-limit)".into(),
        ));
    }
    for key in &r.required_labels {
        if !config.labels.contains_key(key) {
            out.push((
                "run.required_labels",
                format!("label {key:?} is required (--label {key}=...)"),
            ));
        }
    }
    out
}

/// `path` with symlinks resolved, for a path whose tail may not exist yet.
fn real_path(path: &std::path::Path) -> Option<String> {
    let mut tail = Vec::new();
    let mut cur = path;
    loop {
        if let Ok(r) = std::fs::canonicalize(cur) {
            let mut r = r;
            for c in tail.iter().rev() {
                r.push(c);
            }
            return Some(r.to_string_lossy().into_owned());
        }
        tail.push(cur.file_name()?.to_owned());
        cur = cur.parent()?;
    }
}

fn bind_refusal(source: &str, read_only: bool, list: &[(String, bool)]) -> Option<String> {
    let lexical_ok = source.starts_with('/') && !source.split('/').any(|c| c == "..");
    // a symlink under an allowed directory must not lead out of it: the real path is
    // checked too (a source that does not exist yet is created by `run`, as a directory:
    // its nearest existing ancestor's real path with the rest appended)
    let real = real_path(std::path::Path::new(source));
    let real = real.as_deref().unwrap_or(source);
    // (an allowed directory that is itself a symlink is compared by its real path too)
    let entry = list.iter().find(|(p, _)| {
        let real_p = std::fs::canonicalize(p)
            .ok()
            .map(|r| r.to_string_lossy().into_owned());
        lexical_ok && under(source, p) && under(real, real_p.as_deref().unwrap_or(p))
    });
    match entry {
        None => Some(format!(
            "bind mount of host path {source} is not allowed (allowed: {})",
            list.iter()
                .map(|(p, ro)| if *ro { format!("{p}:ro") } else { p.clone() })
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some((p, true)) if !read_only => Some(format!(
            "bind mount of host path {source} must be read-only (policy entry {p}:ro)"
        )),
        Some(_) => None,
    }
}

/// `[registries]` for an image reference (`pull`, `push`, `run`, `load`, `import`, bundle
/// apply). `pinned` says the reference is content-addressed by other means (an image ID).
pub(crate) fn check_reference(p: &Policy, reference: &str, pinned: bool) -> Vec<Refusal> {
    let mut out: Vec<Refusal> = Vec::new();
    let parsed = ImageRef::parse(reference);
    if let Some(allow) = &p.registries.allow {
        let ok = match &parsed {
            Ok(r) => {
                let repo = r.repository().to_ascii_lowercase();
                allow.iter().any(|a| under_repo(&repo, a))
            }
            Err(_) => false,
        };
        if !ok {
            out.push((
                "registries.allow",
                format!(
                    "image {reference:?} is not from an allowed registry (allowed: {})",
                    allow.join(", ")
                ),
            ));
        }
    }
    if p.registries.require_digest && !pinned {
        let has = parsed.as_ref().is_ok_and(|r| r.digest().is_some());
        if !has {
            out.push((
                "registries.require_digest",
                format!("image {reference:?} must be pinned by digest (NAME@sha256:...)"),
            ));
        }
    }
    out
}

/// The digests of the Dockerfiles in `[build] approved_dir`, or why they could not be read.
pub(crate) type ApprovedDir = Result<Vec<wharf_types::Digest>, String>;

/// `[build]` for a build whose Dockerfile has `digest`: `allow`, then the approval (the
/// list or the directory; a directory that could not be read approves nothing).
pub(crate) fn check_build(
    p: &Policy,
    digest: &wharf_types::Digest,
    dir: Option<&ApprovedDir>,
) -> Vec<Refusal> {
    if !p.build.allow {
        return vec![(
            "build.allow",
            "image builds are not allowed on this host".to_string(),
        )];
    }
    if !p.build.requires_approval() {
        return Vec::new();
    }
    let listed = p
        .build
        .approved
        .as_ref()
        .is_some_and(|l| l.contains(digest));
    let in_dir = matches!(dir, Some(Ok(d)) if d.contains(digest));
    if listed || in_dir {
        return Vec::new();
    }
    let rule = if p.build.approved.is_some() {
        "build.approved_dockerfiles"
    } else {
        "build.approved_dir"
    };
    let mut message = format!("Dockerfile {digest} is not approved");
    if let (Some(d), Some(Err(why))) = (&p.build.approved_dir, dir) {
        message.push_str(&format!(" (approved_dir {}: {why})", d.display()));
    }
    vec![(rule, message)]
}

fn under_repo(repo: &str, prefix: &str) -> bool {
    repo == prefix
        || repo
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Looks `name` up in a passwd file's text.
pub(crate) fn passwd_uid(text: &str, name: &str) -> Option<Result<u32, String>> {
    for line in text.lines() {
        let mut f = line.split(':');
        if f.next() != Some(name) {
            continue;
        }
        let uid = f.nth(1)?;
        return Some(
            uid.trim()
                .parse::<u64>()
                .map_err(|_| format!("bad uid {uid:?} in passwd"))
                .and_then(|n| wharf_types::user::check_id("user", n).map_err(|e| e.to_string())),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Limits;
    use super::*;
    use wharf_types::container::MountConfig;

    fn policy(text: &str) -> Policy {
        super::super::file::parse(std::path::Path::new("/p"), text).unwrap()
    }

    fn rules(p: &Policy, c: &ContainerConfig, h: &HostConfig) -> Vec<&'static str> {
        let resolve = |n: &str| match n {
            "app" => Ok(1000),
            "toor" => Ok(0),
            _ => Err("no such user".to_string()),
        };
        check_container(p, c, h, &resolve)
            .into_iter()
            .map(|r| r.0)
            .collect()
    }

    fn host() -> HostConfig {
        serde_json::from_str(r#"{"NetworkMode":"none"}"#).unwrap()
    }

    #[test]
    fn host_namespaces_and_devices() {
        let c = ContainerConfig::default();
        let mut h = host();
        h.options.uts_mode = "host".into();
        h.resources.devices = vec![wharf_types::resources::DeviceMapping {
            path_on_host: "/dev/fuse".into(),
            path_in_container: "/dev/fuse".into(),
            cgroup_permissions: "rwm".into(),
        }];
        assert!(rules(&Policy::default(), &c, &h).is_empty());
        let p = policy("[run]\nhost_namespaces = false\ndevices = false\n");
        assert_eq!(rules(&p, &c, &h), ["run.host_namespaces", "run.devices"]);
        h.resources.devices.clear();
        h.resources.device_cgroup_rules = vec!["c 10:229 rwm".into()];
        h.options.uts_mode.clear();
        assert_eq!(rules(&p, &c, &h), ["run.devices"]);
    }

    #[test]
    fn published_ports() {
        let p = policy("[run]\npublished_ports = \"8000-8100\"\n");
        let mut h = host();
        h.network_mode = NetworkMode::Bridge;
        let bind = |port: &str| wharf_types::container::PortBinding {
            host_ip: String::new(),
            host_port: port.into(),
        };
        h.port_bindings.insert(
            "80/tcp".into(),
            vec![bind("8080"), bind(""), bind("8000-8100")],
        );
        assert!(check_port_bindings(&p, &h).is_empty());
        h.port_bindings
            .insert("81/tcp".into(), vec![bind("7999"), bind("8050-8101")]);
        let r = check_port_bindings(&p, &h);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            (
                "run.published_ports",
                "host port 7999 for 81/tcp is outside the allowed published ports 8000-8100"
                    .to_string()
            )
        );
        assert_eq!(
            check_host_ports(&p, &[("80/tcp".into(), 8000), ("81/tcp".into(), 9000)]).len(),
            1
        );
        assert!(check_host_ports(&policy(""), &[("80/tcp".into(), 1)]).is_empty());
    }

    #[test]
    fn run_rules() {
        let p = policy(
            "[run]\nprivileged=false\nhost_network=false\nseccomp_unconfined=false\ncap_add=[\"NET_ADMIN\"]\nbind_mounts=[\"/srv:ro\",\"/data\"]\nnon_root=true\nrequired_labels=[\"owner\"]\n",
        );
        let mut c = ContainerConfig {
            user: "1000".into(),
            ..Default::default()
        };
        c.labels.insert("owner".into(), "x".into());
        let h = host();
        assert!(rules(&p, &c, &h).is_empty());
        let mut bad = h.clone();
        bad.privileged = true;
        bad.network_mode = NetworkMode::Host;
        bad.security_opt = vec!["seccomp:unconfined".into()];
        bad.cap_add = vec!["cap_net_admin".into(), "SYS_ADMIN".into()];
        let bind = |s: &str, ro| MountConfig {
            kind: MountKind::Bind,
            source: s.into(),
            target: "/x".into(),
            read_only: ro,
            options: String::new(),
            create_mountpoint: true,
        };
        bad.mounts = vec![
            bind("/srv/a", true),
            bind("/srv/a", false),
            bind("/data/x", false),
            bind("/database", false),
            bind("/data/../etc", false),
        ];
        assert_eq!(
            rules(&p, &c, &bad),
            [
                "run.privileged",
                "run.host_network",
                "run.seccomp_unconfined",
                "run.cap_add",
                "run.bind_mounts",
                "run.bind_mounts",
                "run.bind_mounts"
            ]
        );
        for (user, ok) in [
            ("", false),
            ("0", false),
            ("0:1000", false),
            ("1000:0", true),
            ("app", true),
            ("toor", false),
            ("nobody-here", false),
            ("root", false),
        ] {
            let c2 = ContainerConfig {
                user: user.into(),
                labels: c.labels.clone(),
                ..Default::default()
            };
            assert_eq!(rules(&p, &c2, &h).is_empty(), ok, "user {user:?}");
        }
        let unlabelled = ContainerConfig {
            user: "1000".into(),
            ..Default::default()
        };
        assert_eq!(rules(&p, &unlabelled, &h), ["run.required_labels"]);
    }

    #[test]
    fn bind_paths_through_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        let secret = t.path().join("secret");
        std::fs::create_dir_all(real.join("x")).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        let alias = t.path().join("alias");
        std::os::unix::fs::symlink(&real, &alias).unwrap();
        std::os::unix::fs::symlink(&secret, real.join("out")).unwrap();
        let list = [(alias.display().to_string(), false)];
        let s = |p: &std::path::Path| p.display().to_string();
        // an allowed directory that is a symlink still allows what is below it
        assert_eq!(bind_refusal(&s(&alias.join("x")), false, &list), None);
        // a symlink below it that leads out does not
        assert!(bind_refusal(&s(&alias.join("out")), false, &list).is_some());
        assert!(bind_refusal(&s(&secret), false, &list).is_some());
        // a source that does not exist yet is judged by its name
        assert_eq!(bind_refusal(&s(&alias.join("new")), false, &list), None);
        assert!(bind_refusal(&s(&alias.join("../secret")), false, &list).is_some());
    }

    #[test]
    fn limits() {
        let p = policy("[limits]\nmemory=\"64m\"\ncpus=1\npids=100\nrequired=[\"pids\"]\n");
        assert_eq!(
            p.limits,
            Limits {
                memory: Some(64 << 20),
                nano_cpus: Some(1_000_000_000),
                pids: Some(100),
                require_pids: true,
                ..Default::default()
            }
        );
        let c = ContainerConfig::default();
        let mut h = host();
        assert_eq!(
            rules(&p, &c, &h),
            [
                "limits.memory",
                "limits.cpus",
                "limits.pids",
                "limits.required"
            ]
        );
        h.memory = 64 << 20;
        h.nano_cpus = 500_000_000;
        h.pids_limit = Some(100);
        assert!(rules(&p, &c, &h).is_empty());
        h.memory += 1;
        h.pids_limit = Some(-1);
        assert_eq!(
            rules(&p, &c, &h),
            ["limits.memory", "limits.pids", "limits.required"]
        );
    }

    #[test]
    fn registries() {
        let p = policy(
            "[registries]\nallow=[\"registry.local:5000\",\"docker.io/library\"]\nrequire_digest=true\n",
        );
        let d = "@sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let rules = |r: &str, pinned| -> Vec<&str> {
            check_reference(&p, r, pinned)
                .into_iter()
                .map(|x| x.0)
                .collect()
        };
        assert!(rules(&format!("busybox{d}"), false).is_empty());
        assert!(rules(&format!("registry.local:5000/a/b{d}"), false).is_empty());
        assert_eq!(
            rules("busybox:latest", false),
            ["registries.require_digest"]
        );
        assert!(rules("busybox:latest", true).is_empty());
        assert_eq!(
            rules(&format!("registry.local:50000/a{d}"), false),
            ["registries.allow"]
        );
        assert_eq!(
            rules(&format!("docker.io/libraryx/a{d}"), false),
            ["registries.allow"]
        );
        assert_eq!(
            rules(&format!("quay.io/a/b{d}"), false),
            ["registries.allow"]
        );
    }

    #[test]
    fn build_rules() {
        let d = wharf_types::Digest::of(b"FROM scratch\n");
        let other = wharf_types::Digest::of(b"FROM busybox\n");
        let names = |p: &Policy, dir: Option<&ApprovedDir>| -> Vec<&'static str> {
            check_build(p, &d, dir).into_iter().map(|r| r.0).collect()
        };
        assert!(names(&policy(""), None).is_empty());
        assert_eq!(
            names(&policy("[build]\nallow = false\n"), None),
            ["build.allow"]
        );
        let listed = policy(&format!("[build]\napproved_dockerfiles = [\"{d}\"]\n"));
        assert!(names(&listed, None).is_empty());
        let unlisted = policy(&format!("[build]\napproved_dockerfiles = [\"{other}\"]\n"));
        let r = check_build(&unlisted, &d, None);
        assert_eq!(r[0].0, "build.approved_dockerfiles");
        assert!(r[0].1.contains(&d.to_string()), "{}", r[0].1);
        let dir = policy("[build]\napproved_dir = \"/etc/wharf/dockerfiles\"\n");
        assert_eq!(
            names(&dir, Some(&Ok(vec![other.clone()]))),
            ["build.approved_dir"]
        );
        assert!(names(&dir, Some(&Ok(vec![d.clone()]))).is_empty());
        let r = check_build(&dir, &d, Some(&Err("no such directory".into())));
        assert!(r[0].1.contains("no such directory"), "{}", r[0].1);
        // either source approves when both are set
        let both = policy(&format!(
            "[build]\napproved_dockerfiles = [\"{other}\"]\napproved_dir = \"/d\"\n"
        ));
        assert!(names(&both, Some(&Ok(vec![d.clone()]))).is_empty());
    }

    #[test]
    fn passwd() {
        let t = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\nbig:x:99999999999:0::/:\n";
        assert_eq!(passwd_uid(t, "app"), Some(Ok(1000)));
        assert_eq!(passwd_uid(t, "root"), Some(Ok(0)));
        assert!(matches!(passwd_uid(t, "big"), Some(Err(_))));
        assert_eq!(passwd_uid(t, "nobody"), None);
    }
}
