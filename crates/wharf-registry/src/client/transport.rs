//! One registry endpoint over HTTP(S) (ureq, rustls with the system CA bundle).
//!
//! Auth: a request is sent with the cached `Authorization`; on 401 the `WWW-Authenticate`
//! challenge decides Basic (config.json credentials) or Bearer (token from the realm, with
//! Basic credentials only when the realm is https or on the registry's own host), then the
//! request is retried once. Redirects are followed by hand: the Authorization header is
//! dropped when the target is another host or the scheme goes https→http.

use super::config::{credentials, host_name, DaemonConfig};
use super::{ClientError, ERROR_BODY_CAP, TOKEN_CAP};
use base64::Engine as _;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A request body that can be sent again after an auth retry.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File(&'a Path, u64, u64),
}

/// A registry endpoint: `https://host` or `http://host` plus auth state.
pub struct Endpoint {
    /// `host[:port]` as in the image reference.
    pub host: String,
    base: String,
    agent: ureq::Agent,
    creds: Option<(String, String)>,
    auth: Mutex<Option<String>>,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let bad = |msg: String| ClientError::CaBundle {
        path: CA_BUNDLE.to_string(),
        msg,
    };
    let f = std::fs::File::open(CA_BUNDLE).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(f)) {
        let c = c.map_err(|e| bad(e.to_string()))?;
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(bad("no certificates in the bundle".to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn no_proxy(host: &str) -> bool {
    let name = host_name(host);
    if name == "localhost" || name.starts_with("127.") || name == "[::1]" {
        return true;
    }
    let list = std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|p| {
            p == "*" || p == host || p == name || {
                let suf = p.trim_start_matches('*').trim_start_matches('.');
                name.ends_with(&format!(".{suf}")) || name == suf
            }
        })
}

fn proxy_for(https: bool, host: &str) -> Option<String> {
    if no_proxy(host) {
        return None;
    }
    let vars: &[&str] = if https {
        &["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy"]
    };
    vars.iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

fn url_host(url: &str) -> (&str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    (scheme, rest.split('/').next().unwrap_or(rest))
}

/// Reads at most `cap` bytes of `r`; more is an error.
pub(crate) fn read_capped(r: impl Read, cap: u64, what: &str) -> Result<Vec<u8>, ClientError> {
    let mut v = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut v)
        .map_err(|e| ClientError::Transport {
            url: what.to_string(),
            msg: e.to_string(),
        })?;
    if v.len() as u64 > cap {
        return Err(ClientError::TooLarge {
            what: what.to_string(),
            limit: cap,
        });
    }
    Ok(v)
}

fn challenge_params(h: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = h;
    while let Some((k, r)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let r = r.trim_start();
        let (v, r) = if let Some(r) = r.strip_prefix('"') {
            match r.split_once('"') {
                Some((v, r)) => (v.to_string(), r),
                None => (r.to_string(), ""),
            }
        } else {
            match r.split_once(',') {
                Some((v, r)) => (v.trim().to_string(), r),
                None => (r.trim().to_string(), ""),
            }
        };
        out.push((k, v));
        rest = r.trim_start().trim_start_matches(',');
    }
    out
}

fn map_transport(url: &str, host: &str, e: ureq::Transport) -> ClientError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    match e.kind() {
        ureq::ErrorKind::Dns => ClientError::UnknownHost {
            host: host_name(host).to_string(),
        },
        ureq::ErrorKind::ConnectionFailed if lower.contains("refused") => {
            ClientError::ConnectionRefused {
                host: host.to_string(),
            }
        }
        _ if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake") =>
        {
            ClientError::Tls {
                host: host.to_string(),
                msg,
            }
        }
        _ => ClientError::Transport {
            url: url.to_string(),
            msg,
        },
    }
}

impl Endpoint {
    /// An endpoint for `host` (`docker.io` means Docker Hub); `base` overrides the URL (mirrors).
    pub fn new(
        cfg: &DaemonConfig,
        host: &str,
        base: Option<&str>,
    ) -> Result<Endpoint, ClientError> {
        let real = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let base = match base {
            Some(b) => b.trim_end_matches('/').to_string(),
            None if cfg.is_insecure(real) => format!("http://{real}"),
            None => format!("https://{real}"),
        };
        let (scheme, h) = url_host(&base);
        let mut b = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120));
        if scheme == "https" {
            b = b.tls_config(tls_config()?);
        }
        if let Some(p) = proxy_for(scheme == "https", h) {
            let proxy = ureq::Proxy::new(&p).map_err(|e| ClientError::Config {
                path: "proxy environment".to_string(),
                msg: format!("{p}: {e}"),
            })?;
            b = b.proxy(proxy);
        }
        Ok(Endpoint {
            host: host.to_string(),
            base,
            agent: b.build(),
            creds: credentials(host)?,
            auth: Mutex::new(None),
        })
    }

    /// Replaces the credentials (login).
    pub fn with_credentials(mut self, user: &str, pass: &str) -> Endpoint {
        self.creds = Some((user.to_string(), pass.to_string()));
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn cached_auth(&self) -> Option<String> {
        self.auth.lock().ok().and_then(|a| a.clone())
    }

    fn authenticate(&self, challenge: &str, what: &str) -> Result<(), ClientError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let header = if scheme.eq_ignore_ascii_case("basic") {
            let Some((u, p)) = &self.creds else {
                return Err(ClientError::Unauthorized {
                    what: what.to_string(),
                });
            };
            format!("Basic {}", b64(&format!("{u}:{p}")))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let ps = challenge_params(params);
            let get = |k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let realm = get("realm").ok_or_else(|| ClientError::BadResponse {
                what: "WWW-Authenticate header".to_string(),
                msg: "bearer challenge without realm".to_string(),
            })?;
            let mut q = Vec::new();
            if let Some(s) = get("service") {
                q.push(("service", s));
            }
            if let Some(s) = get("scope") {
                q.push(("scope", s));
            }
            let (rscheme, rhost) = url_host(&realm);
            if rscheme != "https" && rscheme != "http" {
                return Err(ClientError::BadResponse {
                    what: "token realm".to_string(),
                    msg: realm.clone(),
                });
            }
            let mut req = self.agent.get(&realm);
            for (k, v) in &q {
                req = req.query(k, v);
            }
            // Credentials go to the realm only over TLS or to the registry's own host.
            let (_, my_host) = url_host(&self.base);
            if let Some((u, p)) = &self.creds {
                if rscheme == "https" || rhost == my_host {
                    req = req.set(
                        "Authorization",
                        &format!("Basic {}", b64(&format!("{u}:{p}"))),
                    );
                }
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(401 | 403, _)) => {
                    return Err(ClientError::Unauthorized {
                        what: what.to_string(),
                    })
                }
                Err(ureq::Error::Status(s, r)) => {
                    return Err(ClientError::Registry {
                        what: "token request".to_string(),
                        status: s,
                        msg: r.status_text().to_string(),
                    })
                }
                Err(ureq::Error::Transport(t)) => return Err(map_transport(&realm, rhost, t)),
            };
            let body = read_capped(resp.into_reader(), TOKEN_CAP, "token response")?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| ClientError::BadResponse {
                    what: "token response".to_string(),
                    msg: e.to_string(),
                })?;
            let tok = v
                .get("token")
                .or_else(|| v.get("access_token"))
                .and_then(|t| t.as_str())
                .ok_or_else(|| ClientError::BadResponse {
                    what: "token response".to_string(),
                    msg: "no token".to_string(),
                })?;
            format!("Bearer {tok}")
        } else {
            return Err(ClientError::BadResponse {
                what: "WWW-Authenticate header".to_string(),
                msg: format!("unsupported scheme {scheme}"),
            });
        };
        if let Ok(mut a) = self.auth.lock() {
            *a = Some(header);
        }
        Ok(())
    }

    /// Sends a request (path relative to the endpoint or an absolute URL from a Location),
    /// handling auth and redirects. Non-2xx/3xx statuses become errors.
    pub(crate) fn send(
        &self,
        method: &str,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        what: &str,
    ) -> Result<ureq::Response, ClientError> {
        let mut url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            self.url(path_or_url)
        };
        let (_, my_host) = url_host(&self.base);
        let my_host = my_host.to_string();
        let mut retried = false;
        let mut hops = 0;
        let mut send_auth = true;
        let mut was_https = url.starts_with("https://");
        loop {
            let (scheme, host) = url_host(&url);
            if was_https && scheme == "http" {
                send_auth = false;
            }
            was_https = was_https && scheme == "https";
            if host != my_host {
                send_auth = false;
            }
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if send_auth {
                if let Some(a) = self.cached_auth() {
                    req = req.set("Authorization", &a);
                }
            }
            let res = match &body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File(p, offset, len) => {
                    use std::io::{Seek, SeekFrom};
                    let mut f = std::fs::File::open(p).map_err(|source| ClientError::Io {
                        op: "opening",
                        path: p.display().to_string(),
                        source,
                    })?;
                    f.seek(SeekFrom::Start(*offset))
                        .map_err(|source| ClientError::Io {
                            op: "seeking",
                            path: p.display().to_string(),
                            source,
                        })?;
                    let f = f.take(*len);
                    req.set("Content-Length", &len.to_string()).send(f)
                }
            };
            match res {
                Ok(r) if (300..400).contains(&r.status()) && r.status() != 304 => {
                    let loc = r.header("location").map(str::to_string).ok_or_else(|| {
                        ClientError::BadResponse {
                            what: what.to_string(),
                            msg: "redirect without Location".to_string(),
                        }
                    })?;
                    hops += 1;
                    if hops > 5 {
                        return Err(ClientError::BadResponse {
                            what: what.to_string(),
                            msg: "too many redirects".to_string(),
                        });
                    }
                    url = if loc.starts_with("http://") || loc.starts_with("https://") {
                        loc
                    } else if loc.starts_with('/') {
                        let (s, h) = url_host(&url);
                        format!("{s}://{h}{loc}")
                    } else {
                        return Err(ClientError::BadResponse {
                            what: what.to_string(),
                            msg: format!("unsupported redirect {loc}"),
                        });
                    };
                }
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if !retried && send_auth => {
                    retried = true;
                    let ch = r.header("www-authenticate").unwrap_or("").to_string();
                    if ch.is_empty() {
                        return Err(ClientError::Unauthorized {
                            what: what.to_string(),
                        });
                    }
                    self.authenticate(&ch, what)?;
                }
                Err(ureq::Error::Status(s, r)) => return Err(status_error(s, r, what)),
                Err(ureq::Error::Transport(t)) => {
                    let h = host.to_string();
                    return Err(map_transport(&url, &h, t));
                }
            }
        }
    }
}

fn status_error(status: u16, r: ureq::Response, what: &str) -> ClientError {
    let body = read_capped(r.into_reader(), ERROR_BODY_CAP, "error body").unwrap_or_default();
    let (code, msg) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?.clone();
            Some((
                e.get("code")?.as_str()?.to_string(),
                e.get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("")
                    .to_string(),
            ))
        })
        .unwrap_or_default();
    match (status, code.as_str()) {
        (401, _) | (_, "UNAUTHORIZED") => ClientError::Unauthorized {
            what: what.to_string(),
        },
        (403, _) | (_, "DENIED") => ClientError::Denied {
            what: what.to_string(),
        },
        (404, "MANIFEST_UNKNOWN") => ClientError::ManifestUnknown(what.to_string()),
        _ => ClientError::Registry {
            what: what.to_string(),
            status,
            msg: if msg.is_empty() {
                String::from_utf8_lossy(&body).chars().take(200).collect()
            } else {
                format!("{}: {msg}", code.to_ascii_lowercase())
            },
        },
    }
}

/// `wharf login`: verifies the credentials against `/v2/` and stores them.
pub fn login(server: &str, user: &str, pass: &str) -> Result<std::path::PathBuf, ClientError> {
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(server);
    let host = if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    let cfg = DaemonConfig::load()?;
    let ep = Endpoint::new(&cfg, host, None)?.with_credentials(user, pass);
    // Force an authenticated probe: Basic up front for registries that accept it.
    if let Ok(mut a) = ep.auth.lock() {
        *a = Some(format!("Basic {}", b64(&format!("{user}:{pass}"))));
    }
    ep.send("GET", "/v2/", &[], Body::Empty, host)?;
    super::config::store_credentials(host, user, pass)
}
