//! Capability policy: Docker's default set (data in `resources/capabilities.json`, one reason
//! per entry, compiled in), Docker's `--cap-add`/`--cap-drop`/`--privileged` semantics, and
//! applying the final set in the container init.
//!
//! Owns: which capabilities a container gets. Must not: touch the kernel directly (that is
//! `wharf_sys::caps`), or silently grant less than an explicit `--cap-add` asked for (fail
//! closed). `--privileged` and `--cap-add ALL` grant what the host's bounding set has, which is
//! what a privileged container can possibly get (runc fails instead when the engine asks for a
//! capability the host lacks).
//!
//! Pure cgroup v2 hosts: the device allow-list there needs a BPF_PROG_TYPE_CGROUP_DEVICE
//! program, which wharf does not implement yet (TODO). To stay fail-closed, MKNOD is removed
//! from non-privileged containers on such hosts (an explicit `--cap-add MKNOD` is an error), so
//! a container cannot create a node for a host device the cgroup would otherwise have denied.

use serde::Deserialize;
use wharf_types::error::{ErrorKind, HasKind};

/// Every capability name wharf knows (without `CAP_`, upper case), by number.
pub const ALL_CAPS: &[&str] = &wharf_sys::caps::CAP_NAMES;

const CAPS_JSON: &str = include_str!("../../../resources/capabilities.json");

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("unknown capability {name:?}")]
    Unknown { name: String },
    #[error("capability {name} is not in the host's bounding set, so it cannot be granted")]
    NotOnHost { name: String },
    #[error("capability {name} cannot be granted on a cgroup v2 host: the device cgroup filter is not implemented")]
    NoDeviceFilter { name: String },
    #[error("{op} for capability {name}")]
    Syscall {
        op: &'static str,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}")]
    Apply {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for CapsError {
    fn kind(&self) -> ErrorKind {
        match self {
            CapsError::Unknown { .. } => ErrorKind::InvalidArgument,
            CapsError::NotOnHost { .. } | CapsError::NoDeviceFilter { .. } => {
                ErrorKind::FailedPrecondition
            }
            CapsError::Syscall { .. } | CapsError::Apply { .. } => ErrorKind::Internal,
        }
    }
}

#[derive(Deserialize)]
struct CapsFile {
    capabilities: Vec<CapEntry>,
}

#[derive(Deserialize)]
struct CapEntry {
    name: String,
    #[allow(dead_code)]
    reason: String,
}

/// The 14 capabilities Docker grants by default, in the order of the resource file.
pub fn docker_default() -> Vec<String> {
    // The resource is compiled in and checked by a unit test, so failure here is a build bug.
    match serde_json::from_str::<CapsFile>(CAPS_JSON) {
        Ok(f) => f.capabilities.into_iter().map(|c| c.name).collect(),
        Err(_) => Vec::new(),
    }
}

/// Normalise a user-supplied name: any case, optional `CAP_` prefix. `ALL` stays `ALL`.
fn normalize(name: &str) -> Result<String, CapsError> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let bare = up.strip_prefix("CAP_").unwrap_or(&up).to_string();
    if wharf_sys::caps::cap_number(&bare).is_none() {
        return Err(CapsError::Unknown {
            name: name.to_string(),
        });
    }
    Ok(bare)
}

/// Capabilities in the calling process's bounding set (which a container can at most get).
fn host_caps() -> Vec<String> {
    let mask = wharf_sys::caps::bounding_mask();
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn pure_v2_without_device_filter() -> bool {
    matches!(crate::cgroup::layout(), crate::cgroup::Layout::V2 { .. })
}

/// Final set: default (or all caps in the HOST'S BOUNDING SET when privileged), minus drops,
/// plus adds (Docker's TweakCapabilities). Accepts "ALL", names with or without "CAP_"
/// prefix, any case. Unknown name -> error. A cap not in the host bounding set requested
/// explicitly via --cap-add -> error naming it; privileged / ALL -> only what the host has.
pub fn resolve(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, CapsError> {
    resolve_with(
        cap_add,
        cap_drop,
        privileged,
        &host_caps(),
        pure_v2_without_device_filter(),
    )
}

fn resolve_with(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    host: &[String],
    no_device_filter: bool,
) -> Result<Vec<String>, CapsError> {
    let adds = cap_add
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = cap_drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let on_host = |c: &str| host.iter().any(|h| h == c);
    // Explicit adds must be grantable (fail closed).
    for a in adds.iter().filter(|a| *a != "ALL") {
        if !on_host(a) {
            return Err(CapsError::NotOnHost { name: a.clone() });
        }
        if no_device_filter && !privileged && a == "MKNOD" {
            return Err(CapsError::NoDeviceFilter { name: a.clone() });
        }
    }
    if privileged {
        return Ok(host.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    let push = |c: &str, out: &mut Vec<String>| {
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    };
    if adds.iter().any(|a| a == "ALL") {
        for c in host.iter().filter(|c| !drops.contains(c)) {
            push(c, &mut out);
        }
    } else if drops.iter().any(|d| d == "ALL") {
        for c in &adds {
            push(c, &mut out);
        }
    } else {
        for c in docker_default().iter().filter(|c| !drops.contains(c)) {
            if on_host(c) {
                push(c, &mut out);
            }
        }
        for c in &adds {
            push(c, &mut out);
        }
    }
    if no_device_filter && !adds.iter().any(|a| a == "MKNOD") {
        out.retain(|c| c != "MKNOD");
    }
    Ok(out)
}

fn mask_of(caps: &[String]) -> Result<u64, CapsError> {
    let mut mask = 0u64;
    for c in caps {
        let n = normalize(c)?;
        let nr = wharf_sys::caps::cap_number(&n).ok_or(CapsError::Unknown { name: n.clone() })?;
        mask |= 1u64 << nr;
    }
    Ok(mask)
}

/// In the container init, before switching user: drop everything not in `caps` from the
/// bounding set, clear ambient, set PR_SET_KEEPCAPS so caps survive setuid.
pub fn apply_bounding(caps: &[String]) -> Result<(), CapsError> {
    let keep = mask_of(caps)?;
    for nr in 0..=wharf_sys::caps::last_cap() {
        if keep & (1u64 << nr) != 0 {
            continue;
        }
        wharf_sys::caps::bounding_drop(nr).map_err(|source| CapsError::Syscall {
            op: "drop from bounding set",
            name: ALL_CAPS.get(nr as usize).unwrap_or(&"?").to_string(),
            source,
        })?;
    }
    wharf_sys::caps::ambient_clear_all().map_err(|source| CapsError::Apply {
        op: "clear ambient capabilities",
        source,
    })?;
    wharf_sys::caps::set_keepcaps(true).map_err(|source| CapsError::Apply {
        op: "set keepcaps",
        source,
    })
}

/// After setresuid/setresgid: set effective = permitted = caps, inheritable = empty; clear
/// keepcaps.
pub fn apply_final(caps: &[String]) -> Result<(), CapsError> {
    let mask = mask_of(caps)?;
    wharf_sys::caps::set(wharf_sys::caps::CapSets {
        effective: mask,
        permitted: mask,
        inheritable: 0,
    })
    .map_err(|source| CapsError::Apply {
        op: "capset",
        source,
    })?;
    wharf_sys::caps::set_keepcaps(false).map_err(|source| CapsError::Apply {
        op: "clear keepcaps",
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn host_without_resource() -> Vec<String> {
        ALL_CAPS
            .iter()
            .filter(|c| **c != "SYS_RESOURCE")
            .map(|c| c.to_string())
            .collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn default_file_has_docker_14() {
        let d = docker_default();
        assert_eq!(d.len(), 14);
        let f: CapsFile = serde_json::from_str(CAPS_JSON).expect("resource parses");
        for e in &f.capabilities {
            assert!(!e.reason.trim().is_empty(), "{} has no reason", e.name);
            assert!(wharf_sys::caps::cap_number(&e.name).is_some(), "{}", e.name);
        }
        assert_eq!(mask_of(&d).expect("mask"), 0xa804_25fb);
    }

    #[test]
    fn resolve_cases() {
        let h = host_without_resource();
        let r = resolve_with(&[], &[], false, &h, false).expect("default");
        assert_eq!(sorted(r), sorted(docker_default()));

        let r = resolve_with(&s(&["cap_net_admin"]), &s(&["Chown"]), false, &h, false)
            .expect("add/drop");
        assert!(r.contains(&"NET_ADMIN".to_string()));
        assert!(!r.contains(&"CHOWN".to_string()));
        assert_eq!(r.len(), 14);

        let r = resolve_with(&s(&["KILL"]), &s(&["all"]), false, &h, false).expect("drop all");
        assert_eq!(r, s(&["KILL"]));

        let r = resolve_with(&s(&["ALL"]), &s(&["MKNOD"]), false, &h, false).expect("add all");
        assert_eq!(r.len(), h.len() - 1);
        assert!(!r.contains(&"SYS_RESOURCE".to_string()));

        let r = resolve_with(&[], &[], true, &h, false).expect("privileged");
        assert_eq!(r, h);

        assert!(matches!(
            resolve_with(&s(&["SYS_RESOURCE"]), &[], false, &h, false),
            Err(CapsError::NotOnHost { .. })
        ));
        assert!(matches!(
            resolve_with(&s(&["NOT_A_CAP"]), &[], false, &h, false),
            Err(CapsError::Unknown { .. })
        ));
        assert!(matches!(
            resolve_with(&[], &s(&["bogus"]), false, &h, false),
            Err(CapsError::Unknown { .. })
        ));

        // pure cgroup v2 without a device filter: MKNOD removed, explicit add refused.
        let r = resolve_with(&[], &[], false, &h, true).expect("v2");
        assert_eq!(r.len(), 13);
        assert!(!r.contains(&"MKNOD".to_string()));
        assert!(matches!(
            resolve_with(&s(&["MKNOD"]), &[], false, &h, true),
            Err(CapsError::NoDeviceFilter { .. })
        ));
        assert!(resolve_with(&[], &[], true, &h, true)
            .expect("priv v2")
            .contains(&"MKNOD".to_string()));
    }

    #[test]
    fn resolve_on_this_host() {
        let r = resolve(&[], &[], true).expect("privileged");
        assert!(r.contains(&"SYS_ADMIN".to_string()));
        assert!(resolve(&[], &[], false).expect("default").len() >= 13);
    }

    /// Run `test` (a test in this binary) alone in a fresh child process with
    /// `WHARF_TEST_CHILD=<test>` set; the test body checks the variable and does the
    /// privileged/irreversible work only in the child, reporting through its exit status.
    /// (This crate forbids `unsafe`, so no fork(); re-exec is also what init does.)
    pub(crate) fn run_child(test: &str, stdin: std::process::Stdio) -> std::process::Child {
        std::process::Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", test, "--test-threads=1", "--nocapture", "-q"])
            .env("WHARF_TEST_CHILD", test)
            .stdin(stdin)
            .spawn()
            .expect("spawn test child")
    }

    /// True in the child started by [`run_child`] for `test`.
    pub(crate) fn in_child(test: &str) -> bool {
        std::env::var("WHARF_TEST_CHILD").as_deref() == Ok(test)
    }

    /// A field of /proc/thread-self/status as hex (capabilities are per thread).
    fn status_field(name: &str) -> Option<u64> {
        let st = std::fs::read_to_string("/proc/thread-self/status").ok()?;
        let line = st.lines().find(|l| l.starts_with(name))?;
        u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
    }

    /// Apply the default set in a child exactly as init does, check the kernel's view.
    #[test]
    fn apply_default_in_child() {
        const NAME: &str = "caps::tests::apply_default_in_child";
        if in_child(NAME) {
            let caps = docker_default();
            let code = match apply_bounding(&caps).and_then(|_| apply_final(&caps)) {
                Err(e) => {
                    eprintln!("apply: {e}");
                    2
                }
                Ok(()) => {
                    let eff = status_field("CapEff:");
                    let bnd = status_field("CapBnd:");
                    let prm = status_field("CapPrm:");
                    let inh = status_field("CapInh:");
                    eprintln!("eff={eff:x?} bnd={bnd:x?} prm={prm:x?} inh={inh:x?}");
                    if eff == Some(0xa804_25fb)
                        && bnd == Some(0xa804_25fb)
                        && prm == Some(0xa804_25fb)
                        && inh == Some(0)
                    {
                        0
                    } else {
                        3
                    }
                }
            };
            std::process::exit(code);
        }
        let st = run_child(NAME, std::process::Stdio::null())
            .wait()
            .expect("wait child");
        assert_eq!(st.code(), Some(0), "child reported failure: {st:?}");
    }
}
