//! The policy file (`/etc/wharf/policy.toml`): its TOML shape (`deny_unknown_fields`, so a
//! misspelt key is an error, never a silently ignored rule) and its validation into a
//! [`Policy`]. Every error names the file, the line and the key. Pure: the caller reads the
//! bytes (bounded) and hands them here.

use super::{BindRule, BuildRules, Limits, Policy, PolicyError, PortRange, RunRules};
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    registries: RegistriesShape,
    #[serde(default)]
    run: RunShape,
    #[serde(default)]
    limits: LimitsShape,
    #[serde(default)]
    audit: AuditShape,
    #[serde(default)]
    build: BuildShape,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildShape {
    allow: Option<bool>,
    approved_dockerfiles: Option<Vec<Spanned<String>>>,
    approved_dir: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistriesShape {
    allow: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    require_digest: bool,
    #[serde(default)]
    require_signed: bool,
    trusted_keys: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BindShape {
    Word(String),
    List(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunShape {
    privileged: Option<bool>,
    host_network: Option<bool>,
    host_namespaces: Option<bool>,
    seccomp_unconfined: Option<bool>,
    cap_add: Option<Vec<Spanned<String>>>,
    bind_mounts: Option<Spanned<BindShape>>,
    #[serde(default)]
    non_root: bool,
    #[serde(default)]
    no_new_privileges: bool,
    #[serde(default)]
    nosuid: bool,
    devices: Option<bool>,
    published_ports: Option<Spanned<String>>,
    #[serde(default)]
    required_labels: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsShape {
    memory: Option<Spanned<String>>,
    cpus: Option<Spanned<f64>>,
    pids: Option<Spanned<i64>>,
    #[serde(default)]
    required: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditShape {
    path: Option<String>,
    max_size: Option<Spanned<String>>,
}

/// Line (1-based) of byte offset `at` and the key it belongs to: the text before `=` on that
/// line, or on the nearest line above for an element of a multi-line array, or the table
/// name of a `[table]` header.
fn line_and_key(text: &str, at: usize) -> (usize, String) {
    let at = at.min(text.len());
    let head = text.get(..at).unwrap_or("");
    let line_no = head.bytes().filter(|b| *b == b'\n').count() + 1;
    let lines: Vec<&str> = text.lines().take(line_no).collect();
    for l in lines.iter().rev() {
        let l = l.trim();
        if l.starts_with('[') {
            let name = l.split(']').next().unwrap_or(l);
            return (line_no, name.trim_matches(['[', ']', ' ']).to_string());
        }
        if l.starts_with(['"', '\'', '#']) || l.is_empty() {
            continue;
        }
        if let Some((k, _)) = l.split_once('=') {
            return (line_no, k.trim().trim_matches('"').to_string());
        }
    }
    (line_no, String::new())
}

fn invalid(path: &Path, text: &str, at: usize, message: String) -> PolicyError {
    let (line, key) = line_and_key(text, at);
    PolicyError::Invalid {
        path: path.display().to_string(),
        line,
        key,
        message,
    }
}

/// `512m`, `1g`, `1048576`: bytes (binary multiples, as docker's `--memory`).
pub(crate) fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        c if c.is_ascii_digit() => (s, 1),
        _ => return None,
    };
    let n: i64 = digits.parse().ok()?;
    if n <= 0 {
        return None;
    }
    n.checked_mul(mult)
}

/// `49153-65535` or a single port.
fn parse_ports(s: &str) -> Option<PortRange> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1 && a <= b).then_some(PortRange { low: a, high: b })
}

/// Parses and validates the policy file's text.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Policy, PolicyError> {
    let shape: FileShape = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        invalid(path, text, at, e.message().trim().to_string())
    })?;
    let mut p = Policy {
        path: path.to_path_buf(),
        ..Policy::default()
    };
    if let Some(allow) = shape.registries.allow {
        let mut out = Vec::new();
        for a in allow {
            let v = a.get_ref().trim_end_matches('/');
            let ok = !v.is_empty()
                && !v.contains(['@', ' ', '\t'])
                && v.split('/').all(|c| !c.is_empty())
                && v.is_ascii();
            if !ok {
                return Err(invalid(
                    path,
                    text,
                    a.span().start,
                    format!("invalid registry or repository prefix {:?}", a.get_ref()),
                ));
            }
            out.push(v.to_ascii_lowercase());
        }
        p.registries.allow = Some(out);
    }
    p.registries.require_digest = shape.registries.require_digest;
    p.registries.require_signed = shape.registries.require_signed;
    if let Some(dir) = shape.registries.trusted_keys {
        let d = dir.get_ref();
        if !d.starts_with('/') || d.split('/').any(|c| c == ".." || c == ".") {
            return Err(invalid(
                path,
                text,
                dir.span().start,
                format!("trusted_keys must be an absolute, normalized directory, not {d:?}"),
            ));
        }
        p.registries.trusted_keys = Some(d.into());
    }
    let r = shape.run;
    let mut run = RunRules {
        privileged: r.privileged.unwrap_or(true),
        host_network: r.host_network.unwrap_or(true),
        host_namespaces: r.host_namespaces.unwrap_or(true),
        seccomp_unconfined: r.seccomp_unconfined.unwrap_or(true),
        devices: r.devices.unwrap_or(true),
        non_root: r.non_root,
        no_new_privileges: r.no_new_privileges,
        nosuid: r.nosuid,
        ..RunRules::default()
    };
    if let Some(caps) = r.cap_add {
        let mut out = Vec::new();
        for c in caps {
            let name = c.get_ref().to_ascii_uppercase();
            let name = name.strip_prefix("CAP_").unwrap_or(&name).to_string();
            if wharf_runtime::caps::resolve(std::slice::from_ref(&name), &[], false).is_err()
                || name == "ALL"
            {
                return Err(invalid(
                    path,
                    text,
                    c.span().start,
                    format!("unknown capability {:?}", c.get_ref()),
                ));
            }
            out.push(name);
        }
        run.cap_add = Some(out);
    }
    if let Some(b) = r.bind_mounts {
        let at = b.span().start;
        run.bind_mounts = match b.into_inner() {
            BindShape::Word(w) if w == "deny" => BindRule::Deny,
            BindShape::Word(w) if w == "allow" => BindRule::Allow,
            BindShape::Word(w) => {
                return Err(invalid(
                    path,
                    text,
                    at,
                    format!(
                    "bind_mounts must be \"deny\", \"allow\" or a list of host paths, not {w:?}"
                ),
                ))
            }
            BindShape::List(list) => {
                let mut out = Vec::new();
                for e in list {
                    let (p_, ro) = match e.strip_suffix(":ro") {
                        Some(p_) => (p_, true),
                        None => (e.strip_suffix(":rw").unwrap_or(&e), false),
                    };
                    let clean = p_.trim_end_matches('/');
                    let clean = if clean.is_empty() { "/" } else { clean };
                    if !p_.starts_with('/')
                        || clean.split('/').any(|c| c == ".." || c == ".")
                        || clean.contains("//")
                    {
                        return Err(invalid(
                            path,
                            text,
                            at,
                            format!("bind_mounts entry {e:?} must be an absolute, normalized host path (optionally with :ro)"),
                        ));
                    }
                    out.push((clean.to_string(), ro));
                }
                BindRule::Paths(out)
            }
        };
    }
    if let Some(pp) = r.published_ports {
        run.published_ports = Some(parse_ports(pp.get_ref()).ok_or_else(|| {
            invalid(
                path,
                text,
                pp.span().start,
                format!(
                    "published_ports must be LOW-HIGH within 1-65535, not {:?}",
                    pp.get_ref()
                ),
            )
        })?);
    }
    for l in r.required_labels {
        if l.get_ref().is_empty() || l.get_ref().contains('=') {
            return Err(invalid(
                path,
                text,
                l.span().start,
                format!("invalid label key {:?}", l.get_ref()),
            ));
        }
        run.required_labels.push(l.into_inner());
    }
    p.run = run;
    let l = shape.limits;
    let mut limits = Limits::default();
    if let Some(m) = l.memory {
        limits.memory = Some(parse_size(m.get_ref()).ok_or_else(|| {
            invalid(
                path,
                text,
                m.span().start,
                format!("invalid size {:?} (e.g. \"512m\", \"2g\")", m.get_ref()),
            )
        })?);
    }
    if let Some(c) = l.cpus {
        let v = *c.get_ref();
        if !(v.is_finite() && v > 0.0 && v <= 1e6) {
            return Err(invalid(
                path,
                text,
                c.span().start,
                format!("cpus must be a positive number, not {v}"),
            ));
        }
        limits.nano_cpus = Some((v * 1e9) as i64);
    }
    if let Some(n) = l.pids {
        if *n.get_ref() <= 0 {
            return Err(invalid(
                path,
                text,
                n.span().start,
                format!("pids must be positive, not {}", n.get_ref()),
            ));
        }
        limits.pids = Some(*n.get_ref());
    }
    for r in l.required {
        match r.get_ref().as_str() {
            "memory" => limits.require_memory = true,
            "cpus" => limits.require_cpus = true,
            "pids" => limits.require_pids = true,
            other => {
                return Err(invalid(
                    path,
                    text,
                    r.span().start,
                    format!("required limits are \"memory\", \"cpus\", \"pids\", not {other:?}"),
                ))
            }
        }
    }
    p.limits = limits;
    p.build = parse_build(path, text, shape.build)?;
    p.audit_path = shape.audit.path.map(Into::into);
    if let Some(s) = shape.audit.max_size {
        p.audit_max_size = parse_size(s.get_ref()).ok_or_else(|| {
            invalid(
                path,
                text,
                s.span().start,
                format!("invalid size {:?}", s.get_ref()),
            )
        })? as u64;
    }
    Ok(p)
}

fn parse_build(path: &Path, text: &str, b: BuildShape) -> Result<BuildRules, PolicyError> {
    let mut out = BuildRules {
        allow: b.allow.unwrap_or(true),
        ..BuildRules::default()
    };
    if let Some(list) = b.approved_dockerfiles {
        let mut digests = Vec::new();
        for d in list {
            let parsed = d
                .get_ref()
                .parse::<wharf_types::Digest>()
                .ok()
                .filter(|x| x.algorithm() == "sha256");
            match parsed {
                Some(x) => digests.push(x),
                None => {
                    return Err(invalid(
                        path,
                        text,
                        d.span().start,
                        format!(
                            "approved_dockerfiles entries are \"sha256:<64 hex>\", not {:?}",
                            d.get_ref()
                        ),
                    ))
                }
            }
        }
        out.approved = Some(digests);
    }
    if let Some(dir) = b.approved_dir {
        let d = dir.get_ref();
        if !d.starts_with('/') || d.split('/').any(|c| c == ".." || c == ".") {
            return Err(invalid(
                path,
                text,
                dir.span().start,
                format!("approved_dir must be an absolute, normalized directory, not {d:?}"),
            ));
        }
        out.approved_dir = Some(d.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (usize, String, String) {
        match parse(Path::new("/p.toml"), text) {
            Err(PolicyError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn full_file() {
        let p = parse(
            Path::new("/p.toml"),
            r#"
[registries]
allow = ["registry.local:5000", "docker.io/library/"]
require_digest = true
require_signed = true
trusted_keys = "/srv/keys"
[run]
bind_mounts = ["/srv/data:ro", "/tmp/"]
privileged = false
host_network = false
seccomp_unconfined = false
cap_add = ["net_bind_service", "CAP_CHOWN"]
non_root = true
no_new_privileges = true
nosuid = true
published_ports = "49153-65535"
required_labels = ["owner"]
[limits]
memory = "512m"
cpus = 1.5
pids = 100
required = ["memory"]
[audit]
path = "/tmp/a.log"
max_size = "1m"
"#,
        )
        .unwrap();
        assert_eq!(
            p.registries.allow.as_deref().unwrap(),
            ["registry.local:5000", "docker.io/library"]
        );
        assert!(p.registries.require_digest && p.registries.require_signed);
        assert_eq!(p.registries.trusted_keys_dir(), Path::new("/srv/keys"));
        assert_eq!(
            p.run.bind_mounts,
            BindRule::Paths(vec![("/srv/data".into(), true), ("/tmp".into(), false)])
        );
        assert_eq!(
            p.run.cap_add.as_deref().unwrap(),
            ["NET_BIND_SERVICE", "CHOWN"]
        );
        assert!(!p.run.privileged && !p.run.host_network && p.run.non_root);
        assert_eq!(p.limits.memory, Some(512 << 20));
        assert_eq!(p.limits.nano_cpus, Some(1_500_000_000));
        assert!(p.limits.require_memory && !p.limits.require_pids);
        assert_eq!(p.audit_max_size, 1 << 20);
        assert_eq!(
            p.run.published_ports,
            Some(PortRange {
                low: 49153,
                high: 65535
            })
        );
    }

    #[test]
    fn empty_file_allows_everything() {
        let p = parse(Path::new("/p.toml"), "").unwrap();
        assert!(p.run.privileged && p.registries.allow.is_none());
        assert!(!p.registries.require_signed);
        assert_eq!(
            p.registries.trusted_keys_dir(),
            Path::new("/etc/wharf/trusted-keys")
        );
        assert_eq!(p.run.bind_mounts, BindRule::Allow);
    }

    #[test]
    fn errors_name_line_and_key() {
        let (line, key, msg) = err("[run]\nprivileged = false\nprivilegd = false\n");
        assert_eq!((line, key.as_str()), (3, "privilegd"));
        assert!(msg.contains("unknown field"), "{msg}");
        let (line, key, _) = err("[run]\n\nprivileged = \"no\"\n");
        assert_eq!((line, key.as_str()), (3, "privileged"));
        let (line, key, _) = err("[nope]\nx = 1\n");
        assert_eq!((line, key.as_str()), (1, "nope"));
        let (line, key, _) = err("[run]\npublished_ports = \"9-2\"\n");
        assert_eq!((line, key.as_str()), (2, "published_ports"));
        let (line, key, _) = err("[run]\nbind_mounts = \"maybe\"\n");
        assert_eq!((line, key.as_str()), (2, "bind_mounts"));
        let (_, key, _) = err("[run]\nbind_mounts = [\"srv\"]\n");
        assert_eq!(key, "bind_mounts");
        let (_, key, _) = err("[run]\ncap_add = [\"FLY\"]\n");
        assert_eq!(key, "cap_add");
        let (line, key, _) = err("[limits]\nmemory = \"lots\"\n");
        assert_eq!((line, key.as_str()), (2, "memory"));
        let (_, key, _) = err("[limits]\nrequired = [\"disk\"]\n");
        assert_eq!(key, "required");
        let (_, key, _) = err("[registries]\nallow = [\"a b\"]\n");
        assert_eq!(key, "allow");
        let (line, key, _) = err("[registries]\nrequire_signed = true\ntrusted_keys = \"keys\"\n");
        assert_eq!((line, key.as_str()), (3, "trusted_keys"));
        let (_, key, _) = err("[registries]\nrequire_signed = \"yes\"\n");
        assert_eq!(key, "require_signed");
        // not TOML at all
        let (line, _, _) = err("[run\n");
        assert_eq!(line, 1);
    }

    /// Golden files (`testdata/policy`): every `ok/*.toml` parses; every `bad/*.toml` fails
    /// with the message in its `.err` file (file, line, key and the start of the message).
    #[test]
    fn golden_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/policy");
        let mut n = 0;
        for e in std::fs::read_dir(dir.join("ok")).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            parse(&p, &text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
        for e in std::fs::read_dir(dir.join("bad")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().and_then(|x| x.to_str()) != Some("toml") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let want = std::fs::read_to_string(p.with_extension("err")).unwrap();
            let got = parse(&p, &text)
                .map(|_| panic!("{} parsed", p.display()))
                .unwrap_err()
                .to_string();
            let want = format!("policy file {} {}", p.display(), want.trim());
            assert!(
                got.starts_with(&want),
                "{}:\n got: {got}\nwant: {want}",
                p.display()
            );
            n += 1;
        }
        assert!(n >= 20, "{n} golden files");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("64MB"), Some(64 << 20));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("99999999999t"), None);
    }
}
