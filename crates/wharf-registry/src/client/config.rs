//! Configuration the client reads: wharf's `/etc/wharf/daemon.json` (path overridable with
//! `WHARF_CONFIG`; docker's key names `insecure-registries`, `registry-mirrors`) and docker's
//! credentials file (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `auths` with
//! base64 `user:pass`). Unknown keys of config.json are preserved when it is rewritten.

use super::ClientError;
use base64::Engine as _;
use serde::Deserialize;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The Docker Hub credentials key docker uses.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The subset of wharf's daemon.json the client uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DaemonConfig {
    #[serde(rename = "insecure-registries", default)]
    pub insecure_registries: Vec<String>,
    #[serde(rename = "registry-mirrors", default)]
    pub registry_mirrors: Vec<String>,
}

impl DaemonConfig {
    /// Loads `$WHARF_CONFIG` or `/etc/wharf/daemon.json`; a missing file is the defaults.
    pub fn load() -> Result<DaemonConfig, ClientError> {
        let path = std::env::var_os("WHARF_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/wharf/daemon.json"));
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ClientError::Io {
                    op: "reading",
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        serde_json::from_slice(&data).map_err(|e| ClientError::Config {
            path: path.display().to_string(),
            msg: e.to_string(),
        })
    }

    /// Whether `host` (`host[:port]`) may be spoken to over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = host_name(host);
        if name == "localhost" || name == "::1" || name == "[::1]" || name.starts_with("127.") {
            return true;
        }
        self.insecure_registries.iter().any(|r| {
            let r = r
                .trim_start_matches("http://")
                .trim_start_matches("https://");
            r == host || r == name
        })
    }
}

/// `host` without its port.
pub fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map(|h| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

fn docker_config_path() -> Result<PathBuf, ClientError> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| ClientError::Config {
        path: "~/.docker/config.json".to_string(),
        msg: "HOME is not set".to_string(),
    })?;
    Ok(PathBuf::from(home).join(".docker/config.json"))
}

fn load_docker_config() -> Result<(PathBuf, serde_json::Value), ClientError> {
    let path = docker_config_path()?;
    let v = match std::fs::read(&path) {
        Ok(d) if d.iter().all(|b| b.is_ascii_whitespace()) => serde_json::json!({}),
        Ok(d) => serde_json::from_slice(&d).map_err(|e| ClientError::Config {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(source) => {
            return Err(ClientError::Io {
                op: "reading",
                path: path.display().to_string(),
                source,
            })
        }
    };
    Ok((path, v))
}

/// The credentials key for a registry host (docker.io → docker's Hub key).
pub fn auth_key(host: &str) -> String {
    if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        host.to_string()
    }
}

fn key_host(k: &str) -> &str {
    let k = k
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    k.split('/').next().unwrap_or(k)
}

/// Credentials for `host` from config.json `auths`, if any.
pub fn credentials(host: &str) -> Result<Option<(String, String)>, ClientError> {
    let (path, v) = load_docker_config()?;
    let key = auth_key(host);
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let entry = auths.get(&key).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| key_host(k) == key_host(&key))
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else { return Ok(None) };
    if let (Some(u), Some(p)) = (
        entry.get("username").and_then(|x| x.as_str()),
        entry.get("password").and_then(|x| x.as_str()),
    ) {
        return Ok(Some((u.to_string(), p.to_string())));
    }
    let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let bad = |msg: &str| ClientError::Config {
        path: path.display().to_string(),
        msg: format!("auths[{key}].auth: {msg}"),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad("not base64"))?;
    let s = String::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| bad("expected user:password"))?;
    Ok(Some((u.to_string(), p.to_string())))
}

fn save_docker_config(path: &PathBuf, v: &serde_json::Value) -> Result<(), ClientError> {
    let io = |op: &'static str| {
        let path = path.display().to_string();
        move |source| ClientError::Io { op, path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating"))?;
    }
    let tmp = path.with_extension("json.tmp");
    let data = serde_json::to_vec_pretty(v).map_err(|e| ClientError::Config {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("writing"))?;
    f.write_all(&data).map_err(io("writing"))?;
    f.sync_all().map_err(io("syncing"))?;
    std::fs::rename(&tmp, path).map_err(io("renaming"))?;
    Ok(())
}

/// Stores credentials for `host` (mode 0600).
pub fn store_credentials(host: &str, user: &str, pass: &str) -> Result<PathBuf, ClientError> {
    let (path, mut v) = load_docker_config()?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    if !v.is_object() {
        v = serde_json::json!({});
    }
    if let Some(obj) = v.as_object_mut() {
        let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        if let Some(a) = auths.as_object_mut() {
            a.insert(auth_key(host), serde_json::json!({ "auth": auth }));
        }
    }
    save_docker_config(&path, &v)?;
    Ok(path)
}

/// Removes credentials for `host`; returns whether there were any.
pub fn remove_credentials(host: &str) -> Result<bool, ClientError> {
    let (path, mut v) = load_docker_config()?;
    let key = auth_key(host);
    let removed = v
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .map(|a| {
            let ks: Vec<String> = a
                .keys()
                .filter(|k| **k == key || key_host(k) == key_host(&key))
                .cloned()
                .collect();
            for k in &ks {
                a.remove(k);
            }
            !ks.is_empty()
        })
        .unwrap_or(false);
    if removed {
        save_docker_config(&path, &v)?;
    }
    Ok(removed)
}
