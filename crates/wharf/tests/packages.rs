//! The .deb and .rpm of scripts/package.sh (docs/packaging.md), built from the static release
//! binary: reproducible bytes, contents equal to the golden lists in packaging/golden/,
//! lintian and rpmlint clean (overrides justified in their files), the .deb's install →
//! upgrade → smoke test → remove → purge in a Debian 12 root made with debootstrap, the
//! .rpm's install → upgrade → erase into an `rpm --root`, and the static binary's `wharf
//! check` / `wharf version` in a root with no libc at all.
//!
//! Needs root, dpkg-deb, rpm/rpmbuild, rpmlint, lintian, debootstrap, unshare,
//! systemd-socket-activate and the docker CLI (.ci/run installs them). Everything a test
//! mounts or starts lives in namespaces of its own (`unshare`) and dies with them.

mod common;

use common::{mounts_under, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn static_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let target = if target.is_relative() {
        workspace().join(target)
    } else {
        target
    };
    target.join("x86_64-unknown-linux-gnu/release/wharf")
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()))
}

struct Pkgs {
    deb: PathBuf,
    rpm: PathBuf,
}

struct Built {
    current: Pkgs,
    /// The same input built a second time, into another directory.
    again: Pkgs,
    /// A lower version (0.0.1) of the same binary: what the upgrade starts from.
    old: Pkgs,
}

/// scripts/package.sh into `dist`; `bin` None lets it build the static binary itself.
fn package(dist: &Path, version: Option<&str>, bin: Option<&Path>) -> Pkgs {
    let mut c = Command::new(workspace().join("scripts/package.sh"));
    c.env("WHARF_DIST", dist).env_remove("WHARF_PKG_VERSION");
    if let Some(v) = version {
        c.env("WHARF_PKG_VERSION", v);
    }
    if let Some(b) = bin {
        c.env("WHARF_BIN", b);
    }
    let out = ok(run(&mut c), "scripts/package.sh");
    let mut lines = out.lines().rev();
    let rpm = PathBuf::from(lines.next().expect("rpm path"));
    let deb = PathBuf::from(lines.next().expect("deb path"));
    assert!(deb.to_string_lossy().ends_with("_amd64.deb"), "{deb:?}");
    assert!(rpm.to_string_lossy().ends_with("-1.x86_64.rpm"), "{rpm:?}");
    Pkgs { deb, rpm }
}

/// Built once per test process (the tests share it): current twice, and the old version.
fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("packages");
        let _ = std::fs::remove_dir_all(&dir);
        let current = package(&dir.join("a"), None, None);
        let bin = static_bin();
        let again = package(&dir.join("b"), None, Some(&bin));
        let old = package(&dir.join("old"), Some("0.0.1"), Some(&bin));
        Built {
            current,
            again,
            old,
        }
    })
}

fn sha256(p: &Path) -> String {
    ok(run(Command::new("sha256sum").arg(p)), "sha256sum")
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn packages_are_reproducible() {
    let b = built();
    assert_eq!(sha256(&b.current.deb), sha256(&b.again.deb), "deb differs");
    assert_eq!(sha256(&b.current.rpm), sha256(&b.again.rpm), "rpm differs");
    // names carry the version from Cargo.toml and git, and it sorts above the old one
    let v = ok(
        run(Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&b.current.deb)
            .arg("Version")),
        "dpkg-deb -f",
    );
    let v = v.trim();
    assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
    ok(
        run(Command::new("dpkg").args(["--compare-versions", v, "gt", "0.0.1"])),
        "dpkg version order",
    );
    let r = ok(
        run(Command::new("rpm")
            .args(["-qp", "--qf", "%{VERSION}-%{RELEASE}"])
            .arg(&b.current.rpm)),
        "rpm -qp",
    );
    assert_eq!(r, format!("{v}-1"));
    let cmp = ok(
        run(Command::new("rpm")
            .arg("--eval")
            .arg(format!("%{{lua: print(rpm.vercmp('{v}', '0.0.1'))}}"))),
        "rpm.vercmp",
    );
    assert_eq!(cmp.trim(), "1", "rpm orders {v} below 0.0.1");
}

/// `dpkg-deb -c` / `rpm -qp` as "mode owner path" lines (rpm: with its file flags), the
/// per-command man pages folded into one line so a new command does not change the list.
fn normalize(lines: impl Iterator<Item = String>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut man = 0;
    for l in lines {
        if l.contains("/usr/share/man/man1/wharf-") && l.ends_with(".1.gz") {
            man += 1;
            continue;
        }
        out.push(l);
    }
    assert!(man > 50, "only {man} per-command man pages");
    let mut out = out.join("\n");
    out.push_str("\n(per-command man pages /usr/share/man/man1/wharf-*.1.gz)\n");
    out
}

fn golden(name: &str, actual: &str) {
    let path = workspace().join("packaging/golden").join(name);
    if std::env::var_os("WHARF_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        actual,
        want,
        "{} differs (WHARF_UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

#[test]
fn contents_match_the_golden_lists() {
    let b = built();
    let deb = ok(
        run(Command::new("dpkg-deb").arg("-c").arg(&b.current.deb)),
        "dpkg-deb -c",
    );
    let deb = normalize(deb.lines().map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // mode owner/group size date time path
        format!("{} {} {}", f[0], f[1], f[5..].join(" "))
    }));
    golden("deb.list", &deb);
    let rpm = ok(
        run(Command::new("rpm")
            .args([
                "-qp",
                "--qf",
                "[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} (%{FILEFLAGS:fflags}) %{FILENAMES}\n]",
            ])
            .arg(&b.current.rpm)),
        "rpm -qp",
    );
    golden("rpm.list", &normalize(rpm.lines().map(str::to_string)));
    // the relations both package managers explain
    let names = [
        "docker",
        "docker-ce",
        "docker-ee",
        "docker-engine",
        "docker.io",
        "lxc-docker",
        "moby-engine",
        "podman-docker",
    ];
    let conflicts = ok(
        run(Command::new("dpkg-deb")
            .arg("-f")
            .arg(&b.current.deb)
            .arg("Conflicts")),
        "dpkg-deb -f",
    );
    let rpm_conflicts = ok(
        run(Command::new("rpm")
            .args(["-qp", "--conflicts"])
            .arg(&b.current.rpm)),
        "rpm --conflicts",
    );
    for n in names {
        assert!(
            conflicts.split(", ").any(|c| c.trim() == n),
            "deb: {n} not in {conflicts}"
        );
        assert!(
            rpm_conflicts.lines().any(|c| c.trim() == n),
            "rpm: {n} not in {rpm_conflicts}"
        );
    }
    let cf = ok(
        run(Command::new("sh").arg("-c").arg(format!(
            "dpkg-deb --ctrl-tarfile '{}' | tar -xOf - ./conffiles",
            b.current.deb.display()
        ))),
        "conffiles",
    );
    assert_eq!(cf, "/etc/wharf/daemon.json\n/etc/wharf/policy.toml\n");
}

#[test]
fn lintian_and_rpmlint_are_clean() {
    let b = built();
    let l = run(Command::new("lintian")
        .args(["--fail-on", "error,warning"])
        .arg(&b.current.deb));
    let out = format!("{}{}", stdout(&l), stderr(&l));
    assert!(l.status.success(), "lintian:\n{out}");
    assert!(!out.contains("\nW: ") && !out.starts_with("W: "), "{out}");
    let r = run(Command::new("rpmlint")
        .arg("-c")
        .arg(workspace().join("packaging/rpm/rpmlint.toml"))
        .arg(&b.current.rpm));
    let out = format!("{}{}", stdout(&r), stderr(&r));
    assert!(r.status.success(), "rpmlint:\n{out}");
    assert!(out.contains(" 0 errors, 0 warnings"), "rpmlint:\n{out}");
}

/// A Debian 12 root (scripts/debian-root.sh, cached under /var/cache/wharf-test).
fn debian_root(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    ok(
        run(Command::new(workspace().join("scripts/debian-root.sh")).arg(d.path())),
        "scripts/debian-root.sh",
    );
    d
}

#[test]
fn deb_install_upgrade_smoke_remove_purge_in_debian_12() {
    let b = built();
    let root = debian_root("wharf-pkg-deb-");
    let bb = root.path().join("busybox.tar");
    common::write_busybox_tar(&bb);
    let o = run(Command::new("timeout")
        .args([
            "300",
            "unshare",
            "--mount",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
        ])
        .arg("bash")
        .arg(workspace().join("crates/wharf/tests/packages/deb-lifecycle.sh"))
        .arg(root.path())
        .arg(&b.old.deb)
        .arg(&b.current.deb)
        .arg(&bb));
    // the namespaces are gone: nothing of the run is mounted on the host
    assert_eq!(mounts_under(root.path()), Vec::<String>::new());
    let out = ok(o, "deb-lifecycle.sh");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok: ")).count(),
        7,
        "{out}"
    );
}

#[test]
fn rpm_install_upgrade_erase_in_an_rpm_root() {
    let b = built();
    let root = debian_root("wharf-pkg-rpm-");
    let r = root.path();
    let rpm = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--root").arg(r).args(args);
        c
    };
    // The root is Debian's: no rpm database lists its packages, so /bin/sh, groupadd and
    // update-alternatives (present) cannot satisfy Requires: --nodeps. The scriptlets run.
    ok(run(&mut rpm(&["--initdb"])), "rpm --initdb");
    ok(run(rpm(&["-i", "--nodeps"]).arg(&b.old.rpm)), "rpm -i old");
    assert!(std::fs::read_to_string(r.join("etc/group"))
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("wharf:")));
    assert_eq!(
        std::fs::read_link(r.join("usr/bin/docker")).ok(),
        Some(PathBuf::from("/etc/alternatives/docker"))
    );
    let conf = r.join("etc/wharf/daemon.json");
    std::fs::write(&conf, "{\"log-driver\": \"none\"}\n").expect("edit conf");
    std::fs::create_dir_all(r.join("var/lib/wharf")).expect("store");
    std::fs::write(r.join("var/lib/wharf/marker"), "").expect("marker");
    ok(run(rpm(&["-U", "--nodeps"]).arg(&b.current.rpm)), "rpm -U");
    let q = ok(
        run(&mut rpm(&["-q", "--qf", "%{VERSION}", "wharf"])),
        "rpm -q",
    );
    let v = ok(
        run(Command::new("rpm")
            .args(["-qp", "--qf", "%{VERSION}"])
            .arg(&b.current.rpm)),
        "rpm -qp",
    );
    assert_eq!(q, v);
    assert_eq!(
        std::fs::read_to_string(&conf).ok().as_deref(),
        Some("{\"log-driver\": \"none\"}\n"),
        "%config(noreplace) replaced"
    );
    ok(run(&mut rpm(&["-e", "wharf"])), "rpm -e");
    for f in ["usr/bin/wharf", "usr/lib/systemd/system/wharf.socket"] {
        assert!(!r.join(f).exists(), "{f} left after erase");
    }
    assert!(
        r.join("usr/bin/docker").symlink_metadata().is_err(),
        "docker alternative left after erase"
    );
    assert!(r.join("etc/wharf/daemon.json.rpmsave").exists());
    assert!(
        r.join("var/lib/wharf/marker").exists(),
        "erase took the data"
    );
}

#[test]
fn static_binary_checks_in_a_root_without_libc() {
    let b = built();
    let d = common::tmp_dir("wharf-pkg-nolibc-");
    let r = d.path().join("r");
    ok(
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(&b.current.deb)
            .arg(&r)),
        "dpkg-deb -x",
    );
    let libs = ok(
        run(Command::new("find").arg(&r).args([
            "-name",
            "ld-linux*",
            "-o",
            "-name",
            "*.so",
            "-o",
            "-name",
            "*.so.*",
        ])),
        "find",
    );
    assert_eq!(libs, "", "the package carries a shared library");
    for dir in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(r.join(dir)).expect("mkdir");
    }
    let script = r#"set -e
r=$1
mount --make-rprivate /
chroot "$r" /usr/bin/wharf version
set +e
chroot "$r" /usr/bin/wharf check; echo "exit=$?"
set -e
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
chroot "$r" /usr/bin/wharf check; echo "exit=$?"
"#;
    let o = run(Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "sh", "-c", script, "sh"])
        .arg(&r));
    assert_eq!(mounts_under(d.path()), Vec::<String>::new());
    let out = ok(o, "no-libc root");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    let (before, after) = out
        .split_once("exit=1\n")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        before.contains("procfs") && before.contains("missing"),
        "{before}"
    );
    assert!(
        after.contains("wharf can run containers on this host") && after.ends_with("exit=0\n"),
        "{after}"
    );
    assert!(
        after.contains("namespace pid") && after.contains("overlayfs"),
        "{after}"
    );
}
