//! One registry endpoint over HTTP(S) (ureq + rustls/ring).
//!
//! Scheme and trust follow docker: a registry is spoken to over HTTPS, its certificate
//! verified against the system roots (`SSL_CERT_FILE`, else the distribution's bundle — the
//! list Go searches, Debian to Alpine — plus `SSL_CERT_DIR`)
//! plus `<certs.d>/<host[:port]>/*.crt`, presenting `<certs.d>/<host[:port]>/*.cert` + `*.key`
//! as a client certificate (certs.d = daemon.json `certs-dir` or `/etc/wharf/certs.d`, then
//! `/etc/docker/certs.d`). An insecure registry (loopback, `insecure-registries`) is tried
//! over HTTPS without verification first and over plain HTTP only when that fails.
//!
//! Names are resolved without glibc NSS (the binary is static): `wharf_sys::resolve` does
//! IP literals, `/etc/hosts`, `localhost` and DNS per `/etc/resolv.conf` itself.
//!
//! Auth: a request is sent with the cached `Authorization`; on 401 the `WWW-Authenticate`
//! challenge decides Basic (config.json / helper credentials) or Bearer (token from the
//! realm, with Basic credentials — or an identity token as an OAuth2 refresh token — only
//! when the realm is https or on the registry's own host), then the request is retried once.
//! Redirects are followed by hand: the Authorization header is dropped when the target is
//! another host or the scheme goes https→http.

use super::config::{credentials, host_name, RegistryConfig, Stored};
use super::{ClientError, ERROR_BODY_CAP, TOKEN_CAP};
use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// System CA bundles, first found wins (the list Go's crypto/x509 — so docker — searches):
/// one binary for every distribution.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL 6+
    "/etc/ssl/ca-bundle.pem",             // openSUSE, SLES
    "/etc/pki/tls/cacert.pem",            // OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7+
    "/etc/ssl/cert.pem",                  // Alpine
];
/// Directories of single certificates, used when no bundle file exists (or `SSL_CERT_DIR`).
const CA_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];
/// docker's username meaning "the secret is an identity (refresh) token".
const IDENTITY_TOKEN_USER: &str = "<token>";

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
    /// The first certs.d directory, for error hints.
    certs_dir: String,
    /// How long a read may wait for data (`RegistryConfig::idle_timeout`).
    pub idle: Duration,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Where the system's CA roots are: `SSL_CERT_FILE` (only that file) or the first of
/// [`CA_BUNDLES`] that exists; plus every file of the `SSL_CERT_DIR` directories
/// (colon-separated), or of [`CA_DIRS`] when there is no bundle file at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRoots {
    /// The bundle file (None: none of the candidates exists).
    pub file: Option<PathBuf>,
    pub dirs: Vec<PathBuf>,
    /// What was looked for, for the error when nothing is found.
    pub searched: String,
}

/// [`SystemRoots`] from the environment and the file system.
pub fn system_roots() -> SystemRoots {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    system_roots_from(
        env("SSL_CERT_FILE").map(PathBuf::from),
        env("SSL_CERT_DIR").map(|v| v.to_string_lossy().into_owned()),
        CA_BUNDLES,
        CA_DIRS,
    )
}

fn system_roots_from(
    cert_file: Option<PathBuf>,
    cert_dir: Option<String>,
    bundles: &[&str],
    default_dirs: &[&str],
) -> SystemRoots {
    let env_dirs: Vec<PathBuf> = cert_dir
        .iter()
        .flat_map(|v| {
            v.split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        })
        .collect();
    if let Some(f) = cert_file {
        let searched = f.display().to_string();
        return SystemRoots {
            file: Some(f),
            dirs: env_dirs,
            searched,
        };
    }
    let file = bundles.iter().map(PathBuf::from).find(|p| p.is_file());
    let dirs = if !env_dirs.is_empty() {
        env_dirs
    } else if file.is_none() {
        default_dirs
            .iter()
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .collect()
    } else {
        Vec::new()
    };
    SystemRoots {
        file,
        dirs,
        searched: format!(
            "{} (or SSL_CERT_FILE / SSL_CERT_DIR)",
            bundles.first().copied().unwrap_or("")
        ),
    }
}

/// Every certificate in the files of `dir` (like OpenSSL's and Go's certificate directories:
/// files that are not PEM certificates are skipped).
fn dir_certs(dir: &Path) -> Vec<CertificateDer<'static>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let skip = |msg| ClientError::CaBundle {
        path: String::new(),
        msg,
    };
    files
        .iter()
        .filter(|p| p.is_file())
        .flat_map(|p| pem_certs(p, &skip).unwrap_or_default())
        .collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every PEM certificate of `path`; none, or an unreadable file, is an error built by
/// `bad` (which names the file).
fn pem_certs(
    path: &Path,
    bad: &dyn Fn(String) -> ClientError,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(f)) {
        out.push(c.map_err(|e| bad(format!("invalid PEM: {e}")))?);
    }
    if out.is_empty() {
        return Err(bad("no PEM certificates in the file".to_string()));
    }
    Ok(out)
}

/// What the certs.d directories hold for one registry.
#[derive(Default)]
struct HostCerts {
    roots: Vec<(PathBuf, CertificateDer<'static>)>,
    client: Option<(
        PathBuf,
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
    )>,
}

/// Reads `<dir>/<host>/` of every certs.d dir (docker's layout: `*.crt` CA roots,
/// `X.cert` + `X.key` client certificate; the first pair found wins).
fn host_certs(dirs: &[PathBuf], host: &str) -> Result<HostCerts, ClientError> {
    let mut hc = HostCerts::default();
    for dir in dirs {
        let d = dir.join(host);
        let rd = match std::fs::read_dir(&d) {
            Ok(r) => r,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                continue
            }
            Err(source) => {
                return Err(ClientError::Io {
                    op: "reading",
                    path: d.display().to_string(),
                    source,
                })
            }
        };
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for p in files {
            let shown = p.display().to_string();
            match p.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    let bad = |msg| ClientError::CaBundle {
                        path: shown.clone(),
                        msg,
                    };
                    for c in pem_certs(&p, &bad)? {
                        hc.roots.push((p.clone(), c));
                    }
                }
                Some("cert") => {
                    let bad = |msg| ClientError::ClientCert {
                        path: shown.clone(),
                        msg,
                    };
                    let key = p.with_extension("key");
                    if !key.exists() {
                        return Err(bad(format!(
                            "missing key {} (CA certificates use the extension .crt)",
                            key.display()
                        )));
                    }
                    let chain = pem_certs(&p, &bad)?;
                    let kbad = |msg| ClientError::ClientCert {
                        path: key.display().to_string(),
                        msg,
                    };
                    let f = std::fs::File::open(&key).map_err(|e| kbad(e.to_string()))?;
                    let k = rustls_pemfile::private_key(&mut std::io::BufReader::new(f))
                        .map_err(|e| kbad(format!("invalid PEM: {e}")))?
                        .ok_or_else(|| kbad("no PEM private key in the file".to_string()))?;
                    if hc.client.is_none() {
                        hc.client = Some((p.clone(), chain, k));
                    }
                }
                Some("key") if !p.with_extension("cert").exists() => {
                    return Err(ClientError::ClientCert {
                        path: shown,
                        msg: format!(
                            "missing client certificate {}",
                            p.with_extension("cert").display()
                        ),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(hc)
}

/// The verifying TLS configuration for `host` (`host[:port]`).
fn tls_config(cfg: &RegistryConfig, host: &str) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let hc = host_certs(&cfg.certs_dirs(), host)?;
    let sys = system_roots();
    let mut roots = rustls::RootCertStore::empty();
    let bad = |msg: String| ClientError::CaBundle {
        path: sys
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| sys.searched.clone()),
        msg,
    };
    let mut system = match &sys.file {
        Some(f) => pem_certs(f, &bad),
        None => Ok(Vec::new()),
    };
    if let Ok(v) = &mut system {
        for d in &sys.dirs {
            v.extend(dir_certs(d));
        }
        if v.is_empty() {
            system = Err(bad("no system CA certificates found".to_string()));
        }
    }
    match system {
        Ok(certs) => {
            for c in certs {
                let _ = roots.add(c);
            }
        }
        // certs.d supplies this host's CA: proceed with those roots only.
        Err(_) if !hc.roots.is_empty() => {}
        Err(e) => return Err(e),
    }
    for (p, c) in hc.roots {
        roots.add(c).map_err(|e| ClientError::CaBundle {
            path: p.display().to_string(),
            msg: format!("invalid CA certificate: {e}"),
        })?;
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots);
    let c = match hc.client {
        Some((p, chain, key)) => {
            b.with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::ClientCert {
                    path: p.display().to_string(),
                    msg: e.to_string(),
                })?
        }
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(c))
}

/// Docker's `InsecureSkipVerify` for insecure registries: any certificate is accepted, but
/// handshake signatures are still checked (the connection is encrypted, not authenticated).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn insecure_tls_config() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let p = provider();
    let c = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls {
            host: String::new(),
            msg: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(p)))
        .with_no_client_auth();
    Ok(Arc::new(c))
}

/// `ureq`'s resolver: `wharf_sys::resolve` (no NSS modules in a static binary).
fn resolve(netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
    wharf_sys::resolve::socket_addrs(netloc)
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

/// The rustls error under a ureq transport error, if the failure was TLS.
fn rustls_error(e: &ureq::Transport) -> Option<&rustls::Error> {
    let mut cur = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// A TLS failure in the words docker (Go's crypto/x509) uses, with what to do about it.
fn tls_message(e: &rustls::Error, host: &str, certs_dir: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer) => format!(
            "x509: certificate signed by unknown authority (to trust it, put the registry's CA \
             in {certs_dir}/{host}/ca.crt)"
        ),
        E::InvalidCertificate(C::NotValidForNameContext { presented, .. }) => format!(
            "x509: certificate is valid for {}, not {}",
            presented.join(", "),
            host_name(host)
        ),
        E::InvalidCertificate(C::NotValidForName) => {
            format!("x509: certificate is not valid for {}", host_name(host))
        }
        E::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => "x509: certificate has expired or is not yet valid".to_string(),
        E::InvalidCertificate(_) => format!("x509: {e}"),
        E::InvalidMessage(_) => "http: server gave HTTP response to HTTPS client".to_string(),
        E::AlertReceived(
            a @ (A::CertificateRequired | A::BadCertificate | A::HandshakeFailure | A::UnknownCA),
        ) => format!(
            "tls: remote error: {a:?} (the registry may require a client certificate: \
             {certs_dir}/{host}/client.cert and client.key)"
        ),
        _ => format!("tls: {e}"),
    }
}

fn map_transport(url: &str, host: &str, certs_dir: &str, e: ureq::Transport) -> ClientError {
    if let Some(t) = rustls_error(&e) {
        return ClientError::Tls {
            host: host.to_string(),
            msg: tls_message(t, host, certs_dir),
        };
    }
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

fn agent(
    tls: Option<Arc<rustls::ClientConfig>>,
    host: &str,
    read_timeout: Duration,
) -> Result<ureq::Agent, ClientError> {
    let mut b = ureq::AgentBuilder::new()
        .redirects(0)
        .resolver(resolve)
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(read_timeout);
    let https = tls.is_some();
    if let Some(t) = tls {
        b = b.tls_config(t);
    }
    if let Some(p) = proxy_for(https, host) {
        let proxy = ureq::Proxy::new(&p).map_err(|e| ClientError::Config {
            path: "proxy environment".to_string(),
            msg: format!("{p}: {e}"),
        })?;
        b = b.proxy(proxy);
    }
    Ok(b.build())
}

impl Endpoint {
    /// An endpoint for `host` (`docker.io` means Docker Hub); `base` overrides the URL (mirrors).
    ///
    /// Insecure registries (docker's rule) are probed over HTTPS without certificate
    /// verification first; plain HTTP is used only when that probe fails at the transport
    /// level (any HTTP status means the registry speaks HTTPS).
    pub fn new(
        cfg: &RegistryConfig,
        host: &str,
        base: Option<&str>,
    ) -> Result<Endpoint, ClientError> {
        let real = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let read = cfg.idle_timeout()?;
        let (base, agent) = match base {
            Some(b) => {
                let b = b.trim_end_matches('/').to_string();
                let (scheme, h) = url_host(&b);
                let tls = match scheme {
                    "https" if cfg.is_insecure(h) => Some(insecure_tls_config()?),
                    "https" => Some(tls_config(cfg, h)?),
                    _ => None,
                };
                let agent = agent(tls, h, read)?;
                (b, agent)
            }
            None if cfg.is_insecure(real) => {
                let tls = insecure_tls_config()?;
                let https = format!("https://{real}");
                let probe = agent(Some(tls.clone()), real, Duration::from_secs(10))?;
                match probe.get(&format!("{https}/v2/")).call() {
                    Ok(_) | Err(ureq::Error::Status(..)) => (https, agent(Some(tls), real, read)?),
                    Err(ureq::Error::Transport(_)) => {
                        (format!("http://{real}"), agent(None, real, read)?)
                    }
                }
            }
            None => (
                format!("https://{real}"),
                agent(Some(tls_config(cfg, real)?), real, read)?,
            ),
        };
        let certs_dir = cfg
            .certs_dirs()
            .first()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        Ok(Endpoint {
            host: host.to_string(),
            base,
            agent,
            creds: credentials(host)?,
            auth: Mutex::new(None),
            certs_dir,
            idle: read,
        })
    }

    /// Replaces the credentials (login).
    pub fn with_credentials(mut self, user: &str, pass: &str) -> Endpoint {
        self.creds = Some((user.to_string(), pass.to_string()));
        self
    }

    /// The credentials a request came with, else the stored ones unless `stored` is false
    /// (anonymous: an Engine API caller that may not use the server's login).
    pub(crate) fn with_auth(mut self, given: Option<&(String, String)>, stored: bool) -> Endpoint {
        match given {
            Some((user, pass)) => self.with_credentials(user, pass),
            None if stored => self,
            None => {
                self.creds = None;
                self
            }
        }
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
            // An identity token is only good for a token service.
            let Some((u, p)) = self
                .creds
                .as_ref()
                .filter(|(u, _)| u != IDENTITY_TOKEN_USER)
            else {
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
            // Credentials go to the realm only over TLS or to the registry's own host.
            let (_, my_host) = url_host(&self.base);
            let creds = self
                .creds
                .as_ref()
                .filter(|_| rscheme == "https" || rhost == my_host);
            let res = match creds {
                // docker's identity token: an OAuth2 refresh token (POST form).
                Some((u, tok)) if u == IDENTITY_TOKEN_USER => {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", tok.as_str()),
                        ("client_id", "wharf"),
                    ];
                    for (k, v) in &q {
                        form.push((k, v.as_str()));
                    }
                    self.agent.post(&realm).send_form(&form)
                }
                _ => {
                    let mut req = self.agent.get(&realm);
                    for (k, v) in &q {
                        req = req.query(k, v);
                    }
                    if let Some((u, p)) = creds {
                        req = req.set(
                            "Authorization",
                            &format!("Basic {}", b64(&format!("{u}:{p}"))),
                        );
                    }
                    req.call()
                }
            };
            let resp = match res {
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
                Err(ureq::Error::Transport(t)) => {
                    return Err(map_transport(&realm, rhost, &self.certs_dir, t))
                }
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
                    return Err(map_transport(&url, &h, &self.certs_dir, t));
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

/// `wharf login`: verifies the credentials against `/v2/` and stores them; returns the
/// config.json path (see [`login_to`] for where the secret went).
pub fn login(
    cfg: &RegistryConfig,
    server: &str,
    user: &str,
    pass: &str,
) -> Result<std::path::PathBuf, ClientError> {
    login_to(cfg, server, user, pass)?;
    super::config::docker_config_path()
}

/// `wharf login`: verifies the credentials against `/v2/` and stores them with the registry's
/// credential helper when config.json names one, else in config.json `auths`.
pub fn login_to(
    cfg: &RegistryConfig,
    server: &str,
    user: &str,
    pass: &str,
) -> Result<Stored, ClientError> {
    let host = login_host(server);
    check_login(cfg, host, user, pass)?;
    super::config::store_credentials_in(host, user, pass)
}

/// The registry host a `login` argument names (`https://h/...` → `h`, Hub aliases →
/// `docker.io`).
fn login_host(server: &str) -> &str {
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(server);
    if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    }
}

/// Verifies credentials against the registry's `/v2/` without storing them (the Engine
/// API's `POST /auth`: the client keeps them).
pub fn check_login(
    cfg: &RegistryConfig,
    server: &str,
    user: &str,
    pass: &str,
) -> Result<(), ClientError> {
    let host = login_host(server);
    let ep = Endpoint::new(cfg, host, None)?.with_credentials(user, pass);
    // Force an authenticated probe: Basic up front for registries that accept it.
    if let Ok(mut a) = ep.auth.lock() {
        *a = Some(format!("Basic {}", b64(&format!("{user}:{pass}"))));
    }
    ep.send("GET", "/v2/", &[], Body::Empty, host)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_are_found_on_every_distribution_layout() {
        let t = tempfile::tempdir().unwrap();
        let p = |n: &str| t.path().join(n).to_string_lossy().into_owned();
        let (deb, rhel, dir) = (p("deb.crt"), p("rhel.pem"), p("certs"));
        let bundles = [deb.as_str(), rhel.as_str()];
        let dirs = [dir.as_str()];
        // nothing there: nothing found, the first candidate named
        let r = system_roots_from(None, None, &bundles, &dirs);
        assert_eq!((r.file.clone(), r.dirs.len()), (None, 0));
        assert!(r.searched.contains("deb.crt"), "{}", r.searched);
        // only the RHEL-style bundle: that one
        std::fs::write(&rhel, "x").unwrap();
        let r = system_roots_from(None, None, &bundles, &dirs);
        assert_eq!(r.file, Some(PathBuf::from(&rhel)));
        // both: the first wins; the default dirs only matter without a bundle
        std::fs::write(&deb, "x").unwrap();
        std::fs::create_dir(&dir).unwrap();
        let r = system_roots_from(None, None, &bundles, &dirs);
        assert_eq!((r.file, r.dirs), (Some(PathBuf::from(&deb)), vec![]));
        std::fs::remove_file(&deb).unwrap();
        std::fs::remove_file(&rhel).unwrap();
        let r = system_roots_from(None, None, &bundles, &dirs);
        assert_eq!((r.file, r.dirs), (None, vec![PathBuf::from(&dir)]));
        // SSL_CERT_FILE is the only file; SSL_CERT_DIR is a colon list
        let r = system_roots_from(
            Some(PathBuf::from("/x/ca.pem")),
            Some("/a::/b".to_string()),
            &bundles,
            &dirs,
        );
        assert_eq!(r.file, Some(PathBuf::from("/x/ca.pem")));
        assert_eq!(r.dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn resolve_literals_without_lookups() {
        assert_eq!(
            resolve("10.1.2.3:5000").unwrap(),
            vec!["10.1.2.3:5000".parse().unwrap()]
        );
        assert_eq!(
            resolve("[::1]:443").unwrap(),
            vec!["[::1]:443".parse().unwrap()]
        );
        assert!(resolve("no-port").is_err());
        assert!(resolve("localhost:5000")
            .unwrap()
            .contains(&"127.0.0.1:5000".parse().unwrap()));
    }
}

/// What [`download`] fetched.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The URL the body came from (after redirects).
    pub url: String,
    /// Its `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
    pub size: u64,
}

/// Redirects [`download`] follows.
const MAX_REDIRECTS: usize = 10;

/// A plain GET of an `http(s)://` URL with the registry client's stack (system roots plus
/// certs.d for TLS, the proxy environment, the NSS-free resolver): `ADD <url>`. Redirects
/// are followed (at most 10, never to another scheme than http/https); the body goes to
/// `out`, at most `cap` bytes; `deadline` bounds the whole transfer, the registry idle
/// timeout each read.
pub fn download(
    cfg: &RegistryConfig,
    url: &str,
    cap: u64,
    deadline: Duration,
    out: &mut dyn std::io::Write,
) -> Result<Downloaded, ClientError> {
    let start = std::time::Instant::now();
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let (scheme, host) = url_host(&url);
        let tls = match scheme {
            "https" => Some(tls_config(cfg, host)?),
            "http" => None,
            _ => {
                return Err(ClientError::BadResponse {
                    what: url.clone(),
                    msg: "only http and https URLs are fetched".to_string(),
                })
            }
        };
        let agent = agent(tls, host, cfg.idle_timeout()?)?;
        let left = deadline.saturating_sub(start.elapsed());
        let resp = match agent.get(&url).timeout(left).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let msg = read_capped(r.into_reader(), ERROR_BODY_CAP, &url)
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                    .unwrap_or_default();
                return Err(ClientError::Registry {
                    what: url.clone(),
                    status,
                    msg,
                });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(ClientError::Transport {
                    url: url.clone(),
                    msg: t.to_string(),
                })
            }
        };
        if (300..400).contains(&resp.status()) {
            let loc = resp.header("Location").unwrap_or_default().to_string();
            url = if loc.contains("://") {
                loc
            } else if let Some(path) = loc.strip_prefix('/') {
                let (scheme, host) = url_host(&url);
                format!("{scheme}://{host}/{path}")
            } else {
                return Err(ClientError::BadResponse {
                    what: url.clone(),
                    msg: format!("redirect to {loc:?}"),
                });
            };
            continue;
        }
        let last_modified = resp.header("Last-Modified").map(str::to_string);
        let mut body = resp.into_reader().take(cap + 1);
        let mut buf = vec![0u8; 64 << 10];
        let mut size = 0u64;
        loop {
            if start.elapsed() > deadline {
                return Err(ClientError::Transport {
                    url: url.clone(),
                    msg: format!("not done after {} s", deadline.as_secs()),
                });
            }
            let n = body.read(&mut buf).map_err(|e| ClientError::Transport {
                url: url.clone(),
                msg: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > cap {
                return Err(ClientError::TooLarge {
                    what: url.clone(),
                    limit: cap,
                });
            }
            out.write_all(&buf[..n]).map_err(|e| ClientError::Io {
                op: "write",
                path: url.clone(),
                source: e,
            })?;
        }
        return Ok(Downloaded {
            url,
            last_modified,
            size,
        });
    }
    Err(ClientError::BadResponse {
        what: url,
        msg: format!("more than {MAX_REDIRECTS} redirects"),
    })
}
