//! `wharf system service` for the Engine API tests: a server on a socket of its own over a
//! test's store, the docker CLI pointed at it, and raw requests.

use super::{stderr, stdout, Wharf};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The docker CLI 28 this workplace has; Debian's docker.io CLI (20.10, API 1.41) where it
/// is missing (CI installs docker.io).
pub fn docker_bin() -> &'static str {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/usr/local/bin/docker")
}

/// `wharf system service` on a socket of its own, stopped (SIGTERM) on drop.
pub struct Service {
    pub child: std::process::Child,
    pub sock: PathBuf,
    _sockdir: tempfile::TempDir,
    pub config: tempfile::TempDir,
}

impl Service {
    /// Serves `w`'s store; `env` adds variables (a policy file, its audit log). The socket
    /// is `root:nogroup` 0660 in a directory anyone may traverse.
    pub fn start(w: &Wharf, env: &[(&str, &Path)]) -> Service {
        Service::start_with(w, env, false)
    }

    /// [`Service::start`]; `debug` (`wharf -D`) logs one line per request in service.log
    /// (what a client called).
    pub fn start_with(w: &Wharf, env: &[(&str, &Path)], debug: bool) -> Service {
        let sockdir = super::tmp_dir("wharf-api-sock-");
        std::fs::set_permissions(sockdir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod socket dir");
        let sock = sockdir.path().join("api.sock");
        let host = format!("unix://{}", sock.display());
        let mut cmd = w.command(&[]);
        if debug {
            cmd.arg("-D");
        }
        cmd.args([
            "system",
            "service",
            "-H",
            host.as_str(),
            "--group",
            "nogroup",
            "--header-timeout",
            "2",
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = std::fs::File::create(w.dir.path().join("service.log")).expect("log");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn wharf system service");
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "the service did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Service {
            child,
            sock,
            _sockdir: sockdir,
            config: super::tmp_dir("wharf-api-docker-config-"),
        }
    }

    pub fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new(docker_bin());
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.docker(args).output().expect("spawn docker")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {} {}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// The service's log so far (`-D`: `wharf: api: METHOD PATH -> STATUS` per request).
    pub fn log(w: &Wharf) -> String {
        std::fs::read_to_string(w.dir.path().join("service.log")).unwrap_or_default()
    }

    /// One raw request; the status and the body (read to the connection's end).
    pub fn raw(&self, request: &[u8]) -> (u16, String) {
        let mut s = UnixStream::connect(&self.sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        // the server may answer (413) and close before an oversized request is all sent
        let _ = s.write_all(request);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn have_docker() -> bool {
    Path::new(docker_bin()).exists()
}
