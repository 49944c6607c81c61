//! Test harness: a private wharf root per test, a busybox image built from Debian's
//! busybox-static (/bin/busybox), and helpers to run the real `wharf` binary.
#![allow(dead_code)]

pub mod api;
pub mod dockerd;
pub mod net;
pub mod policy;
pub mod registry;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BUSYBOX: &str = "/bin/busybox";

pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "env", "id", "ls", "pwd", "mount", "reboot", "sleep", "true", "false",
    "grep", "touch", "hostname", "head", "tail", "tr", "seq", "wc", "kill", "mkdir", "rm", "dd",
    "tty", "stat", "test", "readlink", "umount", "ps", "cut", "timeout", "yes", "chmod", "ln",
];

pub struct Wharf {
    pub dir: tempfile::TempDir,
}

/// The store's default network has its own subnet on the host-wide `wharf0` bridge: the
/// address and firewall rules go with the test's store (`net::forget_default_network`).
impl Drop for Wharf {
    fn drop(&mut self) {
        net::forget_default_network(&self.root(), &self.run_root());
    }
}

impl Wharf {
    pub fn new() -> Wharf {
        let dir = tempfile::Builder::new()
            .prefix("wharf-it-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        Wharf { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn run_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn bin() -> &'static str {
        env!("CARGO_BIN_EXE_wharf")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(Self::bin());
        c.args(args)
            .env("WHARF_ROOT", self.root())
            .env("WHARF_RUNROOT", self.run_root())
            .env_remove("WHARF_DISABLE")
            // the local store, whatever endpoint the environment names (api_client.rs
            // points the CLI at a server explicitly)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn wharf")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "wharf {args:?} failed ({:?}): stdout={} stderr={}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        output_with_stdin(&mut self.command(args), input)
    }

    /// Imports the busybox image as `busybox:latest`.
    pub fn with_busybox(self) -> Wharf {
        let tar = self.dir.path().join("busybox.tar");
        write_busybox_tar(&tar);
        self.ok(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
        self
    }
}

fn gnu_header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes a busybox rootfs tarball: /bin/busybox, applet symlinks, /etc/passwd, /etc/group.
pub fn write_busybox_tar(path: &Path) {
    write_busybox_tar_with(path, &[], &|_| {});
}

/// [`write_busybox_tar`] without the files named in `skip` (`"etc/passwd"`), then `extra`
/// appends its own entries (hostile images).
pub fn write_busybox_tar_with(
    path: &Path,
    skip: &[&str],
    extra: &dyn Fn(&mut tar::Builder<std::fs::File>),
) {
    let f = std::fs::File::create(path).expect("create tar");
    let mut b = tar::Builder::new(f);
    let dir = |b: &mut tar::Builder<std::fs::File>, name: &str, mode: u32| {
        let mut h = gnu_header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, std::io::empty()).expect("dir");
    };
    for (d, m) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("var", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ] {
        dir(&mut b, d, m);
    }
    let mut h = gnu_header();
    let data = std::fs::read(BUSYBOX).expect("busybox-static must be installed at /bin/busybox");
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "bin/busybox", &data[..])
        .expect("busybox");
    for a in APPLETS {
        let mut h = gnu_header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .expect("link");
    }
    let files: [(&str, &str); 2] = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        (
            "etc/group",
            "root:x:0:\ndaemon:x:1:\nwheel:x:10:app\naudio:x:29:app,nobody\nnogroup:x:65534:\napp:x:1000:\n",
        ),
    ];
    for (name, content) in files.into_iter().filter(|(n, _)| !skip.contains(n)) {
        let mut h = gnu_header();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, content.as_bytes())
            .expect("file");
    }
    extra(&mut b);
    b.finish().expect("finish tar");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Mount points below `dir` in the host mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.display().to_string();
    mi.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&d))
        .map(str::to_string)
        .collect()
}

/// Cgroup directories for a container id in every hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let p = e.path().join("wharf").join(id);
            if p.exists() {
                out.push(p);
            }
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/wharf").join(id);
    if v2.exists() {
        out.push(v2);
    }
    out
}

/// A child process killed and reaped on drop.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tmpfs of `size` (mount's `size=` syntax) at `dir`, created if needed; unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("tmpfs mount point");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(
            st.success(),
            "mount tmpfs at {} (tests run as root)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A temp dir under /var/tmp (overlayfs and the store need a real file system, not tmpfs).
pub fn tmp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .expect("tempdir")
}

/// `sh -c cmd`: its output, whatever the status.
pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().expect("sh")
}

/// Runs `cmd` (stdin from /dev/null), asserts it succeeded; its stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
    o.stdout
}

/// Runs `cmd` with `input` on its stdin.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(input);
    }
    child.wait_with_output().expect("wait")
}

/// wharf with `--root root`, `HOME` and `WHARF_CONFIG` (daemon.json) under `home`, and `env`.
pub fn wharf_at(root: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(Wharf::bin())
        .envs(env.iter().copied())
        .arg("--root")
        .arg(root)
        .args(args)
        .env("HOME", home)
        .env("WHARF_CONFIG", home.join("daemon.json"))
        .stdin(Stdio::null())
        .output()
        .expect("spawn wharf")
}

/// Asserts `o` succeeded; its stdout.
pub fn expect_ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Bytes in regular files under `root` (lock files and `meta/` aside) and the leftover
/// temporaries (staging names, atomic-writer temps).
pub fn store_usage(root: &Path) -> (u64, Vec<String>) {
    let mut bytes = 0;
    let mut temps = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("listing the store").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let md = e.path().symlink_metadata().expect("stat in the store");
            if ["tmp-", "load-", "tarsplit-", "layer-", "blob-", "del-"]
                .iter()
                .any(|p| name.starts_with(p))
                || (name.starts_with('.') && name.contains(".tmp-"))
            {
                temps.push(e.path().display().to_string());
            }
            // metadata holds timestamps whose printed length varies by a byte or two between
            // two otherwise identical stores: count content (blobs, snapshots, records) only
            let in_meta = e
                .path()
                .strip_prefix(root)
                .is_ok_and(|r| r.starts_with("meta"));
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() && !name.ends_with("lock") && !in_meta {
                bytes += md.len();
            }
        }
    }
    (bytes, temps)
}

/// Removes every container of the test's root when dropped, also when the test panics: a
/// failed assertion must not leave monitors and containers running.
pub struct Cleanup<'a>(pub &'a Wharf);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ids = stdout(&self.0.run(&["ps", "-aq", "--no-trunc"]));
        let mut args = vec!["rm", "-f"];
        args.extend(ids.lines().filter(|l| !l.is_empty()));
        if args.len() > 2 {
            let _ = self.0.run(&args);
        }
    }
}

/// Polls `f` every 20 ms for up to `secs` seconds; whether it became true.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
