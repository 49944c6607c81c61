//! `--sysctl key=value` as docker allows it: only sysctls the container's own namespaces
//! scope — the IPC ones (`kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`,
//! `kernel.shmall`, `kernel.shmmax`, `kernel.shmmni`, `kernel.shm_rmid_forced`, `fs.mqueue.*`)
//! and the network ones (`net.*`). Anything else would change the host for everybody.
//!
//! Keys are also checked as paths: `/proc/sys/<key with dots as slashes>` must stay below
//! `/proc/sys`, so a key is letters, digits, `_`, `-` and `.`-separated non-empty
//! components. Pure: whether the network or IPC namespace is the host's is the engine's
//! question ([`namespace_of`] tells it which one a key needs).

use crate::error::{ErrorKind, HasKind};

/// docker's allowed IPC sysctls (runc's `validSysctlMap`).
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The longest key or value accepted (a `/proc/sys` path component is short; a value such
/// as `kernel.sem`'s four numbers or a port range fits easily).
const MAX_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysctlError {
    /// docker's CLI wording for a key outside the namespaced set or without `=`.
    #[error("invalid argument {value:?} for \"--sysctl\" flag: sysctl '{value}' is not allowed")]
    NotAllowed { value: String },
    /// A key or value docker's grammar would take but that is no `/proc/sys` entry (`..`,
    /// `/`, control characters, over-long).
    #[error("invalid argument {value:?} for \"--sysctl\" flag: {what}")]
    Malformed { value: String, what: &'static str },
}

impl HasKind for SysctlError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// The namespace that scopes a sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Ipc,
    Net,
}

/// Which namespace scopes `key`; `None` when none does (not allowed).
pub fn namespace_of(key: &str) -> Option<Namespace> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(Namespace::Ipc)
    } else if key.starts_with("net.") {
        Some(Namespace::Net)
    } else {
        None
    }
}

/// One `--sysctl key=value` (docker splits at the first `=`), checked by [`check`].
pub fn parse(flag: &str) -> Result<(String, String), SysctlError> {
    let (key, value) = flag
        .split_once('=')
        .ok_or_else(|| SysctlError::NotAllowed {
            value: flag.to_string(),
        })?;
    check(key, value)?;
    Ok((key.to_string(), value.to_string()))
}

/// A recorded sysctl (an API caller's `HostConfig.Sysctls` too): the key must be namespaced
/// ([`namespace_of`]) and name a path below `/proc/sys`; the value must be one line.
pub fn check(key: &str, value: &str) -> Result<(), SysctlError> {
    let flag = || format!("{key}={value}");
    if namespace_of(key).is_none() {
        return Err(SysctlError::NotAllowed { value: flag() });
    }
    let key_ok = key.len() <= MAX_LEN
        && key.split('.').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if !key_ok {
        return Err(SysctlError::Malformed {
            value: flag(),
            what: "a sysctl name is dot-separated components of letters, digits, '_' and '-'",
        });
    }
    if value.len() > MAX_LEN || value.chars().any(char::is_control) {
        return Err(SysctlError::Malformed {
            value: flag(),
            what: "a sysctl value is one line of at most 256 characters",
        });
    }
    Ok(())
}

/// The path of `key` below `/proc/sys` (`net.ipv4.ip_forward` → `net/ipv4/ip_forward`), for
/// a key [`parse`] accepted.
pub fn proc_path(key: &str) -> String {
    key.replace('.', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_allowed_set() {
        for ok in [
            "net.ipv4.ip_forward=1",
            "net.core.somaxconn=1024",
            "net.ipv4.ip_local_port_range=1024 65000",
            "kernel.shm_rmid_forced=1",
            "kernel.sem=250 32000 100 128",
            "fs.mqueue.msg_max=100",
            "net.ipv4.conf.eth0.rp_filter=0",
            "net.ipv4.ping_group_range=0 2147483647",
            "net.x=",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        let (k, v) = parse("net.ipv4.ip_forward=1=2").expect("first = splits");
        assert_eq!((k.as_str(), v.as_str()), ("net.ipv4.ip_forward", "1=2"));
        assert_eq!(namespace_of("net.core.somaxconn"), Some(Namespace::Net));
        assert_eq!(namespace_of("kernel.msgmax"), Some(Namespace::Ipc));
        assert_eq!(namespace_of("fs.mqueue.queues_max"), Some(Namespace::Ipc));
        assert_eq!(proc_path("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
    }

    #[test]
    fn refusals_in_dockers_words() {
        for bad in [
            "kernel.hostname=x",
            "kernel.core_pattern=|/x",
            "vm.overcommit_memory=1",
            "fs.file-max=1",
            "net.ipv4.ip_forward",
            "netx=1",
            "=1",
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid argument {bad:?} for \"--sysctl\" flag: sysctl '{bad}' is not allowed"
                )
            );
        }
        // namespaced prefixes, but no /proc/sys entry below the prefix
        for bad in [
            "net./../kernel/core_pattern=x",
            "net..ipv4=1",
            "net.ipv4/x=1",
            "net.ipv4.=1",
            "net.a b=1",
            "net.x=1\n2",
        ] {
            assert!(
                matches!(parse(bad), Err(SysctlError::Malformed { .. })),
                "{bad}"
            );
        }
        assert!(parse(&format!("net.{}=1", "a".repeat(300))).is_err());
        // a typed key with '=' in it (an API caller's) is no sysctl
        assert!(check("net.a=b", "1").is_err());
    }
}
