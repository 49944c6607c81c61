//! Which engine a CLI invocation talks to, decided once at start as docker's CLI decides it:
//! `-H/--host` > `--context` > `DOCKER_HOST` > `DOCKER_CONTEXT` > `currentContext` of
//! `$DOCKER_CONFIG/config.json` (`~/.docker`), a context's host read from docker's context
//! store (`contexts/meta/<sha256 of name>/meta.json`, `Endpoints.docker.Host`). The context
//! `default` with no host is the local store (root: in-process, daemonless) or, for a
//! non-root user, wharf's socket. Only `unix://` hosts: there is no TLS or SSH client here.
//! Must not: open the store, read a file unbounded.

use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// wharf's own API socket in the run root (`/run/wharf/wharf.sock`, `wharf system
/// service`'s default).
pub const SOCKET_NAME: &str = "wharf.sock";
/// The group `wharf system service` gives the socket to by default.
pub const DEFAULT_GROUP: &str = "wharf";
/// Largest docker config or context file read.
const MAX_CONFIG: u64 = 1 << 20;

/// Where commands go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The store, in this process (root's daemonless fast path).
    Local,
    /// An Engine API server on a unix socket (`url` as the user gave it, for messages).
    Unix { path: PathBuf, url: String },
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("conflicting options: cannot specify both --host and --context")]
    HostAndContext,
    #[error(
        "host {host:?} is not supported: only unix:// sockets (no TLS or SSH client in wharf)"
    )]
    UnsupportedScheme { host: String },
    #[error("invalid host {host:?}: expected unix:///path/to.sock")]
    InvalidHost { host: String },
    #[error("context {name:?} does not exist (looked in {})", dir.display())]
    NoContext { name: String, dir: PathBuf },
    #[error("context {name:?} has no docker endpoint ({})", path.display())]
    NoDockerEndpoint { name: String, path: PathBuf },
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {MAX_CONFIG} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("parse {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "cannot connect to wharf's API socket unix://{} ({reason}): a non-root user reaches \
         wharf only through it: root must run `wharf system service`, and you must be a member \
         of its group ({DEFAULT_GROUP}); or point -H / DOCKER_HOST at another socket",
        path.display()
    )]
    NoSocket { path: PathBuf, reason: String },
}

/// What the choice depends on (the process environment, passed in so it can be tested).
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    pub host: Option<String>,
    pub context: Option<String>,
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub config_dir: Option<PathBuf>,
}

impl Inputs {
    pub fn from_env(host: Option<String>, context: Option<String>) -> Inputs {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Inputs {
            host,
            context,
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            config_dir: var("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker"))),
        }
    }
}

/// The endpoint the user asked for: `Some(host url)`, or `None` for the `default` context
/// without a host (local store for root, wharf's socket for others: [`default_endpoint`]).
pub fn requested(inp: &Inputs) -> Result<Option<String>, EndpointError> {
    if inp.host.is_some() && inp.context.is_some() {
        return Err(EndpointError::HostAndContext);
    }
    if let Some(h) = &inp.host {
        return Ok(Some(h.clone()));
    }
    let name = if let Some(c) = &inp.context {
        Some(c.clone())
    } else if let Some(h) = &inp.docker_host {
        return Ok(Some(h.clone()));
    } else if let Some(c) = &inp.docker_context {
        Some(c.clone())
    } else {
        current_context(inp.config_dir.as_deref())?
    };
    match name {
        None => Ok(None),
        Some(n) if n == "default" => Ok(inp.docker_host.clone()),
        Some(n) => context_host(inp.config_dir.as_deref(), &n).map(Some),
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, EndpointError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EndpointError::Read {
                path: path.into(),
                source,
            })
        }
    };
    let mut buf = Vec::new();
    f.take(MAX_CONFIG + 1)
        .read_to_end(&mut buf)
        .map_err(|source| EndpointError::Read {
            path: path.into(),
            source,
        })?;
    if buf.len() as u64 > MAX_CONFIG {
        return Err(EndpointError::TooLarge { path: path.into() });
    }
    serde_json::from_slice(&buf)
        .map(Some)
        .map_err(|source| EndpointError::Parse {
            path: path.into(),
            source,
        })
}

/// `currentContext` of docker's config.json (absent file or key: none).
fn current_context(dir: Option<&Path>) -> Result<Option<String>, EndpointError> {
    let Some(dir) = dir else { return Ok(None) };
    let cfg = read_json(&dir.join("config.json"))?;
    Ok(cfg
        .as_ref()
        .and_then(|c| c.get("currentContext"))
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(str::to_string))
}

/// A context's docker host from docker's context store.
fn context_host(dir: Option<&Path>, name: &str) -> Result<String, EndpointError> {
    let meta_dir = dir
        .map(|d| d.join("contexts").join("meta"))
        .unwrap_or_else(|| PathBuf::from("~/.docker/contexts/meta"));
    let path = meta_dir
        .join(hex::encode(Sha256::digest(name.as_bytes())))
        .join("meta.json");
    let Some(meta) = read_json(&path)? else {
        return Err(EndpointError::NoContext {
            name: name.into(),
            dir: meta_dir,
        });
    };
    meta.pointer("/Endpoints/docker/Host")
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .ok_or(EndpointError::NoDockerEndpoint {
            name: name.into(),
            path,
        })
}

/// `unix:///path` → the endpoint; any other scheme is refused.
pub fn parse_host(host: &str) -> Result<Endpoint, EndpointError> {
    match host.split_once("://") {
        Some(("unix", path)) if path.starts_with('/') && path.len() > 1 => Ok(Endpoint::Unix {
            path: PathBuf::from(path),
            url: host.to_string(),
        }),
        Some(("unix", _)) => Err(EndpointError::InvalidHost { host: host.into() }),
        Some(_) => Err(EndpointError::UnsupportedScheme { host: host.into() }),
        // docker reads a bare address as tcp
        None => Err(EndpointError::UnsupportedScheme { host: host.into() }),
    }
}

/// No endpoint asked for: root uses the store in-process; anyone else wharf's socket, when
/// it can be connected to (never a permission error on store files).
pub fn default_endpoint(euid_is_root: bool, run_root: &Path) -> Result<Endpoint, EndpointError> {
    if euid_is_root {
        return Ok(Endpoint::Local);
    }
    let path = run_root.join(SOCKET_NAME);
    match std::os::unix::net::UnixStream::connect(&path) {
        Ok(_) => Ok(Endpoint::Unix {
            url: format!("unix://{}", path.display()),
            path,
        }),
        Err(e) => {
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "no such socket".to_string(),
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied: not a member of its group".to_string()
                }
                std::io::ErrorKind::ConnectionRefused => "nothing is listening".to_string(),
                _ => e.to_string(),
            };
            Err(EndpointError::NoSocket { path, reason })
        }
    }
}

/// The whole decision.
pub fn resolve(
    inp: &Inputs,
    euid_is_root: bool,
    run_root: &Path,
) -> Result<Endpoint, EndpointError> {
    match requested(inp)? {
        Some(h) => parse_host(&h),
        None => default_endpoint(euid_is_root, run_root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &Path, name: &str, host: &str) {
        let d = dir
            .join("contexts/meta")
            .join(hex::encode(Sha256::digest(name.as_bytes())));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("meta.json"),
            serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}}).to_string(),
        )
        .unwrap();
    }

    #[test]
    fn precedence_as_docker() {
        let t = tempfile::tempdir().unwrap();
        ctx(t.path(), "a", "unix:///a.sock");
        ctx(t.path(), "b", "unix:///b.sock");
        ctx(t.path(), "cur", "unix:///cur.sock");
        let base = Inputs {
            config_dir: Some(t.path().into()),
            ..Default::default()
        };
        let r = |i: &Inputs| requested(i).unwrap();
        assert_eq!(r(&base), None);
        std::fs::write(t.path().join("config.json"), r#"{"currentContext":"cur"}"#).unwrap();
        assert_eq!(r(&base).as_deref(), Some("unix:///cur.sock"));
        let dctx = Inputs {
            docker_context: Some("b".into()),
            ..base.clone()
        };
        assert_eq!(r(&dctx).as_deref(), Some("unix:///b.sock"));
        let dhost = Inputs {
            docker_host: Some("unix:///env.sock".into()),
            ..dctx.clone()
        };
        assert_eq!(r(&dhost).as_deref(), Some("unix:///env.sock"));
        let c = Inputs {
            context: Some("a".into()),
            ..dhost.clone()
        };
        assert_eq!(r(&c).as_deref(), Some("unix:///a.sock"));
        let def = Inputs {
            context: Some("default".into()),
            docker_host: None,
            ..dhost.clone()
        };
        assert_eq!(r(&def), None);
        let h = Inputs {
            host: Some("unix:///h.sock".into()),
            context: None,
            ..dhost.clone()
        };
        assert_eq!(r(&h).as_deref(), Some("unix:///h.sock"));
        let both = Inputs {
            host: Some("unix:///h.sock".into()),
            ..c.clone()
        };
        assert!(matches!(
            requested(&both),
            Err(EndpointError::HostAndContext)
        ));
        let missing = Inputs {
            context: Some("nope".into()),
            ..base.clone()
        };
        assert!(matches!(
            requested(&missing),
            Err(EndpointError::NoContext { .. })
        ));
    }

    #[test]
    fn only_unix_hosts() {
        assert_eq!(
            parse_host("unix:///run/x.sock").unwrap(),
            Endpoint::Unix {
                path: "/run/x.sock".into(),
                url: "unix:///run/x.sock".into()
            }
        );
        for h in [
            "tcp://1.2.3.4:2375",
            "ssh://me@host",
            "fd://",
            "127.0.0.1:2375",
        ] {
            let e = parse_host(h).unwrap_err();
            assert!(matches!(e, EndpointError::UnsupportedScheme { .. }), "{h}");
            assert!(e.to_string().contains("only unix://"), "{e}");
        }
        assert!(matches!(
            parse_host("unix://"),
            Err(EndpointError::InvalidHost { .. })
        ));
        assert_eq!(
            default_endpoint(true, Path::new("/run/wharf")).unwrap(),
            Endpoint::Local
        );
        let e = default_endpoint(false, Path::new("/nonexistent-q1")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("unix:///nonexistent-q1/wharf.sock") && msg.contains("(wharf)"),
            "{msg}"
        );
    }
}
