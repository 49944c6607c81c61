//! Configuration the client uses: the registry keys of wharf's daemon.json (docker's key names
//! `insecure-registries`, `registry-mirrors`, plus wharf's `certs-dir` and
//! `registry-idle-timeout`), read once by the engine and handed in as a [`RegistryConfig`]
//! value (the client never reads daemon.json itself), and docker's credentials file (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`): `auths` with base64 `user:pass`, and credential helpers
//! (`credsStore` for every registry, `credHelpers` per host) spoken to with docker's protocol
//! (`docker-credential-<name> get|store|erase`, found on PATH). Unknown keys of config.json are
//! preserved when it is rewritten.
//!
//! Must not: log or put into an error a secret, read unbounded helper output.

use super::ClientError;
use base64::Engine as _;
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Docker Hub credentials key docker uses.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The registry keys of wharf's daemon.json (parsed by the engine's `daemon` module, which
/// flattens this struct into its own).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryConfig {
    #[serde(rename = "insecure-registries", default)]
    pub insecure_registries: Vec<String>,
    #[serde(rename = "registry-mirrors", default)]
    pub registry_mirrors: Vec<String>,
    /// Replaces `/etc/wharf/certs.d` (per-registry CAs and client certificates).
    #[serde(rename = "certs-dir", default)]
    pub certs_dir: Option<String>,
    /// Seconds a registry connection may send nothing before the read is abandoned (and a
    /// blob download resumed with Range); `$WHARF_REGISTRY_IDLE_TIMEOUT` overrides it.
    #[serde(rename = "registry-idle-timeout", default)]
    pub registry_idle_timeout: Option<f64>,
}

/// Default idle (per-read) timeout of registry connections.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment override of `registry-idle-timeout` (seconds).
pub const IDLE_TIMEOUT_ENV: &str = "WHARF_REGISTRY_IDLE_TIMEOUT";

/// wharf's default per-registry certificate directory.
pub const WHARF_CERTS_D: &str = "/etc/wharf/certs.d";
/// docker's, read after wharf's.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";

impl RegistryConfig {
    /// The certs.d directories, in lookup order: `certs-dir` (or `/etc/wharf/certs.d`), then
    /// `/etc/docker/certs.d`.
    pub fn certs_dirs(&self) -> Vec<PathBuf> {
        let first = self
            .certs_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(WHARF_CERTS_D);
        vec![PathBuf::from(first), PathBuf::from(DOCKER_CERTS_D)]
    }

    /// The idle (per-read) timeout: `$WHARF_REGISTRY_IDLE_TIMEOUT`, else
    /// `registry-idle-timeout`, else 30 s; seconds, more than 0 and at most a day.
    pub fn idle_timeout(&self) -> Result<Duration, ClientError> {
        let (secs, from) = match std::env::var(IDLE_TIMEOUT_ENV) {
            Ok(v) => (
                v.trim().parse::<f64>().map_err(|_| ClientError::Config {
                    path: IDLE_TIMEOUT_ENV.to_string(),
                    msg: format!("{v:?} is not a number of seconds"),
                })?,
                IDLE_TIMEOUT_ENV,
            ),
            Err(_) => match self.registry_idle_timeout {
                Some(s) => (s, "registry-idle-timeout"),
                None => return Ok(DEFAULT_IDLE_TIMEOUT),
            },
        };
        if !(secs > 0.0 && secs <= 86_400.0) {
            return Err(ClientError::Config {
                path: from.to_string(),
                msg: format!("idle timeout {secs} s is not in (0, 86400]"),
            });
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// Whether `host` (`host[:port]`) is insecure: its certificate is not verified and plain
    /// HTTP is the fallback when HTTPS fails (docker: loopback and `insecure-registries`).
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

/// docker's config.json: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config_path() -> Result<PathBuf, ClientError> {
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

/// Credentials for `host`: from its credential helper (`credHelpers`, else `credsStore`) when
/// one is configured and knows the host, else from config.json `auths`. A helper answering
/// "credentials not found" means anonymous unless `auths` has an entry.
pub fn credentials(host: &str) -> Result<Option<(String, String)>, ClientError> {
    let (path, v) = load_docker_config()?;
    let key = auth_key(host);
    if let Some(helper) = helper_for(&v, &key) {
        if let Some(c) = helper_get(&helper, &key)? {
            return Ok(Some(c));
        }
    }
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

fn save_docker_config(path: &Path, v: &serde_json::Value) -> Result<(), ClientError> {
    let io = |op: &'static str| {
        let path = path.display().to_string();
        move |source| ClientError::Io { op, path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating"))?;
    }
    let data = serde_json::to_vec_pretty(v).map_err(|e| ClientError::Config {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    // 0600: the file holds credentials
    wharf_sys::atomic::write_file(path, &data, 0o600).map_err(io("writing"))
}

/// Where `login` put the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// In config.json `auths` (base64, unencrypted).
    File(PathBuf),
    /// With `docker-credential-<name> store`; config.json keeps an empty `auths` entry.
    Helper(String),
}

/// Stores credentials for `host` (mode 0600 file, or the configured helper).
pub fn store_credentials(host: &str, user: &str, pass: &str) -> Result<PathBuf, ClientError> {
    store_credentials_in(host, user, pass).map(|_| docker_config_path())?
}

/// Stores credentials for `host`: with its credential helper when one is configured (the
/// secret is not written to config.json, only an empty `auths` entry as docker does), else
/// in config.json `auths`.
pub fn store_credentials_in(host: &str, user: &str, pass: &str) -> Result<Stored, ClientError> {
    let (path, mut v) = load_docker_config()?;
    if !v.is_object() {
        v = serde_json::json!({});
    }
    let key = auth_key(host);
    let helper = helper_for(&v, &key);
    let entry = match &helper {
        Some(h) => {
            let input = serde_json::json!({ "ServerURL": key, "Username": user, "Secret": pass });
            match helper_run(h, "store", input.to_string().as_bytes()) {
                Ok(_) => {}
                Err(HelperError::Client(e)) => return Err(e),
                Err(HelperError::NotFound) => {
                    return Err(ClientError::CredHelper {
                        helper: h.clone(),
                        msg: "store failed: credentials not found".to_string(),
                    })
                }
            }
            serde_json::json!({})
        }
        None => {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            serde_json::json!({ "auth": auth })
        }
    };
    if let Some(obj) = v.as_object_mut() {
        let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        if let Some(a) = auths.as_object_mut() {
            a.insert(key, entry);
        }
    }
    save_docker_config(&path, &v)?;
    Ok(match helper {
        Some(h) => Stored::Helper(h),
        None => Stored::File(path),
    })
}

/// Removes credentials for `host` (`erase` with its helper, and the `auths` entry); returns
/// whether there were any.
pub fn remove_credentials(host: &str) -> Result<bool, ClientError> {
    let (path, mut v) = load_docker_config()?;
    let key = auth_key(host);
    let mut erased = false;
    if let Some(h) = helper_for(&v, &key) {
        // Only erase what the helper has: some helpers (pass) fail on erasing nothing.
        if helper_get(&h, &key)?.is_some() {
            match helper_run(&h, "erase", key.as_bytes()) {
                Ok(_) | Err(HelperError::NotFound) => erased = true,
                Err(HelperError::Client(e)) => return Err(e),
            }
        }
    }
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
    Ok(removed || erased)
}

/// Helper output read into memory at most (docker's helpers answer with a few hundred bytes).
pub const HELPER_OUTPUT_CAP: u64 = 64 << 10;

/// The helper for `key`: `credHelpers[host]` (matching the key or its host), else `credsStore`.
fn helper_for(v: &serde_json::Value, key: &str) -> Option<String> {
    let name = v
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| {
            h.get(key).or_else(|| {
                h.iter()
                    .find(|(k, _)| key_host(k) == key_host(key))
                    .map(|(_, n)| n)
            })
        })
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .or_else(|| {
            v.get("credsStore")
                .and_then(|s| s.as_str())
                .filter(|n| !n.is_empty())
        })?;
    Some(name.to_string())
}

enum HelperError {
    /// The helper answered "credentials not found".
    NotFound,
    Client(ClientError),
}

impl From<ClientError> for HelperError {
    fn from(e: ClientError) -> Self {
        HelperError::Client(e)
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns its stdout (at
/// most [`HELPER_OUTPUT_CAP`] bytes). Non-zero exit with "credentials not found" in its output
/// is [`HelperError::NotFound`]; other failures quote the helper's first output line, never
/// the input.
fn helper_run(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>, HelperError> {
    let fail = |msg: String| ClientError::CredHelper {
        helper: helper.to_string(),
        msg,
    };
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(fail("invalid helper name in config.json".to_string()).into());
    }
    let exe = format!("docker-credential-{helper}");
    let mut child = Command::new(&exe)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail("executable file not found in $PATH".to_string())
            } else {
                fail(format!("cannot run {exe}: {e}"))
            }
        })?;
    let stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut si) = stdin {
            let _ = si.write_all(&input);
        }
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(se) = stderr {
            let _ = se.take(HELPER_OUTPUT_CAP).read_to_end(&mut buf);
        }
        buf
    });
    let mut out = Vec::new();
    if let Some(so) = child.stdout.take() {
        let _ = so.take(HELPER_OUTPUT_CAP + 1).read_to_end(&mut out);
    }
    if out.len() as u64 > HELPER_OUTPUT_CAP {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail(format!(
            "{action}: output larger than {HELPER_OUTPUT_CAP} bytes"
        ))
        .into());
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("waiting for {exe}: {e}")))?;
    let _ = writer.join();
    let err = err_reader.join().unwrap_or_default();
    if status.success() {
        return Ok(out);
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    if text.contains("credentials not found") {
        return Err(HelperError::NotFound);
    }
    let line: String = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .chars()
        .take(200)
        .collect();
    Err(fail(format!("{action} failed ({status}): {line}")).into())
}

/// `get` for `server`: `None` when the helper has nothing for it.
fn helper_get(helper: &str, server: &str) -> Result<Option<(String, String)>, ClientError> {
    let out = match helper_run(helper, "get", server.as_bytes()) {
        Ok(o) => o,
        Err(HelperError::NotFound) => return Ok(None),
        Err(HelperError::Client(e)) => return Err(e),
    };
    #[derive(Deserialize)]
    struct Creds {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    // The serde message could quote a value: report the position only.
    let c: Creds = serde_json::from_slice(&out).map_err(|e| ClientError::CredHelper {
        helper: helper.to_string(),
        msg: format!(
            "get: invalid JSON answer at line {} column {}",
            e.line(),
            e.column()
        ),
    })?;
    if c.username.is_empty() && c.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some((c.username, c.secret)))
}
