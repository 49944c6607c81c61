//! A private dockerd for interop tests (its own data root, exec root and socket; no bridge,
//! no iptables), stopped and its mounts detached on drop. `start()` returns None where dockerd
//! cannot run, and the caller prints why it skips.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private dockerd (its own data root and socket), stopped on drop.
pub struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    pub fn start() -> Option<Dockerd> {
        let dockerd = Path::new("/usr/sbin/dockerd");
        if !dockerd.exists() || Command::new("docker").arg("--version").output().is_err() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("wharf-dockerd-")
            .tempdir_in("/var/tmp")
            .ok()?;
        let p = dir.path();
        let log = std::fs::File::create(p.join("log")).ok()?;
        let child = Command::new(dockerd)
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--host")
            .arg(format!("unix://{}/docker.sock", p.display()))
            .arg("--pidfile")
            .arg(p.join("pid"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .args(["--bridge", "none", "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().ok()?)
            .stderr(log)
            .spawn()
            .ok()?;
        let d = Dockerd { child, dir };
        for _ in 0..100 {
            if d.docker(&["info"]).status.success() {
                return Some(d);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }

    /// The daemon's API socket.
    pub fn sock(&self) -> std::path::PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// The daemon's socket as a `-H` value.
    pub fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.path().display())
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("cfg"))
            .env(
                "DOCKER_HOST",
                format!("unix://{}/docker.sock", self.dir.path().display()),
            )
            .output()
            .expect("docker")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut mine: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&*self.dir.path().to_string_lossy()))
            .collect();
        mine.sort_by(|a, b| b.cmp(a));
        for m in mine {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
