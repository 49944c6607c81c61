//! TLS trust and credential helpers of `wharf pull` / `push` / `login` / `logout` against
//! Debian's real `docker-registry` (distribution 2.8) serving HTTPS with certificates made by
//! the `openssl` CLI, and Debian's real `docker-credential-pass` (with `pass` and a
//! passphrase-less gpg key in a temp GNUPGHOME / PASSWORD_STORE_DIR).
//!
//! Verified TLS needs a registry that is not "insecure": like docker, wharf treats loopback as
//! an insecure registry (HTTPS without verification first, then plain HTTP), so those tests
//! listen on this machine's first non-loopback IPv4 address (`ip -4 addr`) and skip when
//! there is none. Each test has its own WHARF_ROOT, DOCKER_CONFIG and WHARF_CONFIG.

#![allow(clippy::unwrap_used)]

mod common;
use common::registry::{public_ip, DockerRegistry, DOCKER_REGISTRY};
use common::{output_with_stdin, run_ok as sh, tmp_dir};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_wharf");

fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: {tool} not installed");
    }
    ok
}

/// A CA and certificates it signs, made with the openssl CLI.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        sh(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=wharf test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(dir.join("ca.crt")));
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Issues `<name>.crt` / `<name>.key` with `ext` (subjectAltName, extendedKeyUsage).
    /// A server certificate for `ip`.
    fn server(&self, ip: &str) -> (PathBuf, PathBuf) {
        self.issue(
            "server",
            &format!("subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth"),
        )
    }

    fn issue(&self, name: &str, ext: &str) -> (PathBuf, PathBuf) {
        let (crt, key, csr) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
            self.dir.join(format!("{name}.csr")),
        );
        let extfile = self.dir.join(format!("{name}.ext"));
        std::fs::write(&extfile, format!("basicConstraints=CA:FALSE\n{ext}\n")).unwrap();
        sh(Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj"])
            .arg(format!("/CN={name}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        sh(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "7"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(self.ca())
            .arg("-CAkey")
            .arg(self.dir.join("ca.key"))
            .arg("-extfile")
            .arg(&extfile)
            .arg("-out")
            .arg(&crt));
        (crt, key)
    }
}

#[derive(Default)]
struct RegOpts<'a> {
    tls: Option<(&'a Path, &'a Path)>,
    client_ca: Option<&'a Path>,
    htpasswd: Option<&'a Path>,
}

fn docker_registry(dir: &Path, ip: &str, o: RegOpts<'_>) -> DockerRegistry {
    let mut http = String::new();
    if let Some((crt, key)) = o.tls {
        http.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            crt.display(),
            key.display()
        ));
        if let Some(ca) = o.client_ca {
            http.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
        }
    }
    let auth = o
        .htpasswd
        .map(|h| {
            format!(
                "auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n",
                h.display()
            )
        })
        .unwrap_or_default();
    DockerRegistry::start(dir, ip, &http, &auth).expect("docker-registry installed")
}

/// [`docker_registry`] serving TLS with `crt`/`key`.
fn tls_registry(dir: &Path, ip: &str, crt: &Path, key: &Path) -> DockerRegistry {
    docker_registry(
        dir,
        ip,
        RegOpts {
            tls: Some((crt, key)),
            ..Default::default()
        },
    )
}

/// One wharf "machine": root, run root, docker config dir, daemon.json, extra env.
struct Env {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Env {
    fn new(base: &Path, name: &str) -> Env {
        let dir = base.join(name);
        std::fs::create_dir_all(dir.join("docker")).unwrap();
        Env {
            dir,
            env: Vec::new(),
        }
    }

    fn set(&mut self, k: &str, v: &str) {
        self.env.push((k.to_string(), v.to_string()));
    }

    fn daemon_json(&self, v: serde_json::Value) {
        std::fs::write(self.dir.join("daemon.json"), v.to_string()).unwrap();
    }

    fn docker_config(&self) -> PathBuf {
        self.dir.join("docker/config.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env("WHARF_ROOT", self.dir.join("root"))
            .env("WHARF_RUNROOT", self.dir.join("run"))
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env("WHARF_CONFIG", self.dir.join("daemon.json"))
            .env("HOME", &self.dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        output_with_stdin(&mut self.command(args), input.as_bytes())
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "wharf {args:?} failed: stdout={} stderr={}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs, expects failure, returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !o.status.success(),
            "wharf {args:?} succeeded: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(!err.contains("panicked"), "{err}");
        err
    }

    /// Imports the busybox image as `name`.
    fn import(&self, name: &str) {
        let tar = self.dir.join("busybox.tar");
        if !tar.exists() {
            common::write_busybox_tar(&tar);
        }
        self.ok(&["import", tar.to_str().unwrap(), name]);
    }

    /// Every file under the root with its size (to show a failed pull changed nothing).
    fn store_listing(&self) -> Vec<(String, u64)> {
        fn walk(d: &Path, out: &mut Vec<(String, u64)>) {
            let Ok(rd) = std::fs::read_dir(d) else { return };
            for e in rd.flatten() {
                let p = e.path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                if md.is_dir() {
                    walk(&p, out);
                }
                out.push((
                    p.display().to_string(),
                    if md.is_file() { md.len() } else { 0 },
                ));
            }
        }
        let mut v = Vec::new();
        walk(&self.dir.join("root"), &mut v);
        v.sort();
        v
    }
}

fn tmp() -> tempfile::TempDir {
    tmp_dir("wharf-tls-")
}

fn prereqs() -> Option<String> {
    if !Path::new(DOCKER_REGISTRY).exists() {
        eprintln!("SKIP: docker-registry not installed");
        return None;
    }
    if !have("openssl") {
        return None;
    }
    let ip = public_ip();
    if ip.is_none() {
        eprintln!("SKIP: no non-loopback IPv4 address");
    }
    ip
}

/// certs.d/<addr>/ca.crt in `env`'s dir, with daemon.json `certs-dir` pointing there.
fn trust(env: &Env, addr: &str, ca: &Path) -> PathBuf {
    let certs = env.dir.join("certs.d");
    std::fs::create_dir_all(certs.join(addr)).unwrap();
    std::fs::copy(ca, certs.join(addr).join("ca.crt")).unwrap();
    env.daemon_json(serde_json::json!({ "certs-dir": certs }));
    certs
}

#[test]
fn https_push_pull_with_certs_d_ca_and_unknown_ca_fails_cleanly() {
    let Some(ip) = prereqs() else { return };
    let t = tmp();
    let pki = Pki::new(t.path());
    let (crt, key) = pki.server(&ip);
    let reg = tls_registry(t.path(), &ip, &crt, &key);
    let name = format!("{}/tls/bb:v1", reg.addr);

    // Without the CA: push and pull fail with docker's x509 wording, store unchanged.
    let a = Env::new(t.path(), "a");
    a.import(&name);
    let err = a.fails(&["push", &name]);
    assert!(
        err.contains("x509: certificate signed by unknown authority") && err.contains(&reg.addr),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let b = Env::new(t.path(), "b");
    b.ok(&["images"]);
    let before = b.store_listing();
    let err = b.fails(&["pull", &name]);
    assert!(
        err.contains("x509: certificate signed by unknown authority") && err.contains(&reg.addr),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(b.store_listing(), before, "a failed pull changed the store");
    assert!(b.ok(&["images", "-q"]).trim().is_empty());

    // With the CA in certs-dir/<host:port>/ca.crt: push, then pull into a fresh root.
    trust(&a, &reg.addr, &pki.ca());
    let out = a.ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    trust(&b, &reg.addr, &pki.ca());
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(b.ok(&["images", "-q"]).trim().lines().count(), 1);

    // SSL_CERT_FILE naming a missing bundle: a clear error naming the path ...
    let mut c = Env::new(t.path(), "c");
    c.set("SSL_CERT_FILE", "/nonexistent/wharf-ca.pem");
    let err = c.fails(&["pull", &name]);
    assert!(
        err.contains("/nonexistent/wharf-ca.pem") && err.contains("root certificates"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // ... unless certs.d has a CA for the host: then those roots alone are used.
    trust(&c, &reg.addr, &pki.ca());
    let out = c.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");

    // SSL_CERT_DIR (OpenSSL/Go style: every file, non-certificates skipped) adds roots to
    // the system bundle: the CA there is trusted without certs.d.
    let mut e = Env::new(t.path(), "e");
    let cadir = t.path().join("ssl-cert-dir");
    std::fs::create_dir_all(&cadir).unwrap();
    std::fs::copy(pki.ca(), cadir.join("corp-ca.pem")).unwrap();
    std::fs::write(cadir.join("README"), "not a certificate\n").unwrap();
    let err = e.fails(&["pull", &name]);
    assert!(err.contains("unknown authority"), "without it: {err}");
    e.set("SSL_CERT_DIR", &format!("/nonexistent:{}", cadir.display()));
    let out = e.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");

    // An invalid PEM in certs.d is an error naming the file.
    let d = Env::new(t.path(), "d");
    let certs = trust(&d, &reg.addr, &pki.ca());
    let junk = certs.join(&reg.addr).join("junk.crt");
    std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let err = d.fails(&["pull", &name]);
    assert!(err.contains(junk.to_str().unwrap()), "{err}");
    // A client certificate without its key too.
    std::fs::remove_file(&junk).unwrap();
    let lone = certs.join(&reg.addr).join("client.cert");
    std::fs::copy(&crt, &lone).unwrap();
    let err = d.fails(&["pull", &name]);
    assert!(
        err.contains(lone.to_str().unwrap()) && err.contains("missing key"),
        "{err}"
    );
}

#[test]
fn name_mismatch_and_http_on_https_port() {
    let Some(ip) = prereqs() else { return };
    let t = tmp();
    let pki = Pki::new(t.path());
    let (crt, key) = pki.issue(
        "other",
        "subjectAltName=IP:10.255.255.1,DNS:registry.invalid\nextendedKeyUsage=serverAuth",
    );
    let reg = tls_registry(t.path(), &ip, &crt, &key);
    let a = Env::new(t.path(), "a");
    trust(&a, &reg.addr, &pki.ca());
    a.ok(&["images"]);
    let before = a.store_listing();
    let err = a.fails(&["pull", &format!("{}/x/y:1", reg.addr)]);
    assert!(
        err.contains("x509: certificate is valid for")
            && err.contains("10.255.255.1")
            && err.contains(&format!("not {ip}")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(a.store_listing(), before);

    // A plain-HTTP registry on a secure (non-loopback, not insecure-listed) address.
    let plain = docker_registry(t.path(), &ip, RegOpts::default());
    let err = a.fails(&["pull", &format!("{}/x/y:1", plain.addr)]);
    assert!(
        err.contains("server gave HTTP response to HTTPS client") && err.contains(&plain.addr),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(a.store_listing(), before);
    // Listing it in insecure-registries makes wharf fall back to plain HTTP (docker's rule).
    a.daemon_json(serde_json::json!({ "insecure-registries": [plain.addr] }));
    let err = a.fails(&["pull", &format!("{}/x/y:1", plain.addr)]);
    assert!(
        err.contains("not found") || err.contains("unknown"),
        "{err}"
    );
}

#[test]
fn mutual_tls_with_client_certificate() {
    let Some(ip) = prereqs() else { return };
    let t = tmp();
    let pki = Pki::new(t.path());
    let (crt, key) = pki.server(&ip);
    let (ccrt, ckey) = pki.issue("client", "extendedKeyUsage=clientAuth");
    let ca = pki.ca();
    let reg = docker_registry(
        t.path(),
        &ip,
        RegOpts {
            tls: Some((&crt, &key)),
            client_ca: Some(&ca),
            ..Default::default()
        },
    );
    let name = format!("{}/mtls/bb:v1", reg.addr);
    let a = Env::new(t.path(), "a");
    a.import(&name);
    let certs = trust(&a, &reg.addr, &ca);
    let err = a.fails(&["push", &name]);
    assert!(
        err.contains("client certificate") && err.contains(&reg.addr),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::copy(&ccrt, certs.join(&reg.addr).join("client.cert")).unwrap();
    std::fs::copy(&ckey, certs.join(&reg.addr).join("client.key")).unwrap();
    let out = a.ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    let b = Env::new(t.path(), "b");
    let bcerts = trust(&b, &reg.addr, &ca);
    std::fs::copy(&ccrt, bcerts.join(&reg.addr).join("client.cert")).unwrap();
    std::fs::copy(&ckey, bcerts.join(&reg.addr).join("client.key")).unwrap();
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
}

#[test]
fn loopback_is_insecure_https_first_then_http() {
    if !Path::new(DOCKER_REGISTRY).exists() || !have("openssl") {
        return;
    }
    let t = tmp();
    // A self-signed HTTPS registry on 127.0.0.1: docker skips verification for loopback.
    let pki = Pki::new(t.path());
    let (crt, key) = pki.issue(
        "server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    );
    let tls = docker_registry(
        t.path(),
        "127.0.0.1",
        RegOpts {
            tls: Some((&crt, &key)),
            ..Default::default()
        },
    );
    let plain = docker_registry(t.path(), "127.0.0.1", RegOpts::default());
    let a = Env::new(t.path(), "a");
    for reg in [&tls, &plain] {
        let name = format!("{}/lo/bb:v1", reg.addr);
        a.import(&name);
        let out = a.ok(&["push", &name]);
        assert!(out.contains("digest: sha256:"), "{out}");
        let b = Env::new(t.path(), &format!("b-{}", reg.addr.replace(':', "_")));
        let out = b.ok(&["pull", &name]);
        assert!(out.contains("Downloaded newer image"), "{out}");
    }
    // The TLS registry saw TLS requests (and served the push), the plain one plain HTTP.
    let log = std::fs::read_to_string(&tls.log).unwrap();
    assert!(
        log.contains("method=PUT") && log.contains("uri=/v2/lo/bb/manifests/v1"),
        "{log}"
    );
}

/// A temp GNUPGHOME with a passphrase-less key and a `pass` store; gpg-agent killed on drop.
struct PassStore {
    gnupg: PathBuf,
    store: PathBuf,
}

impl Drop for PassStore {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "all"])
            .env("GNUPGHOME", &self.gnupg)
            .status();
    }
}

fn pass_store(dir: &Path) -> Option<PassStore> {
    if !have("docker-credential-pass") || !have("pass") || !have("gpg") {
        return None;
    }
    let gnupg = dir.join("gnupg");
    let store = dir.join("pass");
    std::fs::create_dir_all(&gnupg).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ps = PassStore { gnupg, store };
    let params = dir.join("keyparams");
    std::fs::write(
        &params,
        "%no-protection\nKey-Type: RSA\nKey-Length: 2048\nSubkey-Type: RSA\nSubkey-Length: 2048\n\
         Name-Real: wharf test\nName-Email: wharf-test@example.invalid\nExpire-Date: 0\n%commit\n",
    )
    .unwrap();
    sh(Command::new("gpg")
        .args(["--batch", "--gen-key"])
        .arg(&params)
        .env("GNUPGHOME", &ps.gnupg));
    sh(Command::new("pass")
        .args(["init", "wharf-test@example.invalid"])
        .env("GNUPGHOME", &ps.gnupg)
        .env("PASSWORD_STORE_DIR", &ps.store));
    Some(ps)
}

fn write_htpasswd(dir: &Path) -> PathBuf {
    let p = dir.join("htpasswd");
    let line = wharf_registry::htpasswd_line("alice", "s3cret", 6).unwrap();
    std::fs::write(&p, line + "\n").unwrap();
    p
}

fn pass_has_entries(store: &Path) -> bool {
    std::fs::read_dir(store.join("docker-credential-helpers"))
        .map(|rd| rd.count() > 0)
        .unwrap_or(false)
}

#[test]
fn credential_helper_pass_login_pull_logout() {
    if !Path::new(DOCKER_REGISTRY).exists() {
        eprintln!("SKIP: docker-registry not installed");
        return;
    }
    let t = tmp();
    let Some(ps) = pass_store(t.path()) else {
        return;
    };
    let hp = write_htpasswd(t.path());
    let reg = docker_registry(
        t.path(),
        "127.0.0.1",
        RegOpts {
            htpasswd: Some(&hp),
            ..Default::default()
        },
    );
    let name = format!("{}/private/bb:v1", reg.addr);
    let mut a = Env::new(t.path(), "a");
    a.set("GNUPGHOME", ps.gnupg.to_str().unwrap());
    a.set("PASSWORD_STORE_DIR", ps.store.to_str().unwrap());
    std::fs::write(
        a.docker_config(),
        r#"{"credsStore":"pass","auths":{},"other":{"kept":true}}"#,
    )
    .unwrap();
    a.import(&name);
    // The helper has nothing: anonymous, which the registry refuses.
    let err = a.fails(&["push", &name]);
    assert!(err.contains("unauthorized"), "{err}");

    // login → helper `store`; config.json gets no secret.
    let o = a.run_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        "s3cret\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Login Succeeded"));
    let cfg = std::fs::read_to_string(a.docker_config()).unwrap();
    assert!(
        !cfg.contains("s3cret") && !cfg.contains("czNjcmV0"),
        "{cfg}"
    );
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["credsStore"], "pass");
    assert_eq!(v["other"]["kept"], true);
    assert!(v["auths"][&reg.addr].get("auth").is_none(), "{cfg}");
    assert!(pass_has_entries(&ps.store));

    // push and pull with the helper's credentials.
    let out = a.ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    let mut b = Env::new(t.path(), "b");
    b.set("GNUPGHOME", ps.gnupg.to_str().unwrap());
    b.set("PASSWORD_STORE_DIR", ps.store.to_str().unwrap());
    std::fs::write(
        b.docker_config(),
        format!(r#"{{"credHelpers":{{"{}":"pass"}}}}"#, reg.addr),
    )
    .unwrap();
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");

    // logout → helper `erase`; then the pull is anonymous again and refused.
    let out = a.ok(&["logout", &reg.addr]);
    assert!(out.contains("Removing login credentials"), "{out}");
    assert!(!pass_has_entries(&ps.store));
    let out = a.ok(&["logout", &reg.addr]);
    assert!(out.contains("Not logged in"), "{out}");
    let err = b.fails(&["pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");
}

/// A helper implementing docker's protocol from a script: `get` answers "credentials not
/// found" (exit 1) for every server, `store`/`erase` record their stdin.
fn script_helper(bin: &Path, name: &str, log: &Path) {
    std::fs::create_dir_all(bin).unwrap();
    let p = bin.join(format!("docker-credential-{name}"));
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nin=$(cat)\necho \"$1 $in\" >> {}\ncase \"$1\" in\n  get) echo 'credentials not found in native keychain'; exit 1;;\n  store|erase) exit 0;;\nesac\nexit 2\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn credentials_not_found_is_anonymous_and_missing_helper_is_an_error() {
    if !Path::new(DOCKER_REGISTRY).exists() {
        eprintln!("SKIP: docker-registry not installed");
        return;
    }
    let t = tmp();
    let reg = docker_registry(t.path(), "127.0.0.1", RegOpts::default());
    let name = format!("{}/public/bb:v1", reg.addr);
    let bin = t.path().join("bin");
    let log = t.path().join("helper.log");
    script_helper(&bin, "wharftest", &log);
    let mut a = Env::new(t.path(), "a");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    a.set("PATH", &path);
    std::fs::write(a.docker_config(), r#"{"credsStore":"wharftest"}"#).unwrap();
    a.import(&name);
    a.ok(&["push", &name]);
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains(&format!("get {}", reg.addr)), "{calls}");

    // A helper that is not installed: one clear line, nothing pulled.
    let mut b = Env::new(t.path(), "b");
    b.set("PATH", &path);
    std::fs::write(b.docker_config(), r#"{"credsStore":"nosuchhelper"}"#).unwrap();
    let err = b.fails(&["pull", &name]);
    assert!(
        err.contains("docker-credential-nosuchhelper") && err.contains("not found in $PATH"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(b.ok(&["images", "-q"]).trim().is_empty());

    // login with the script helper: `store` gets the JSON on stdin, the file gets no secret.
    let o = a.run_stdin(
        &["login", "-u", "bob", "--password-stdin", &reg.addr],
        "hunter2\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    let store_line = calls.lines().find(|l| l.starts_with("store ")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&store_line[6..]).unwrap();
    assert_eq!(v["ServerURL"], reg.addr.as_str());
    assert_eq!(v["Username"], "bob");
    assert_eq!(v["Secret"], "hunter2");
    let cfg = std::fs::read_to_string(a.docker_config()).unwrap();
    assert!(!cfg.contains("hunter2"), "{cfg}");
}
