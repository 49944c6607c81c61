#![allow(clippy::unwrap_used)]
//! Root-level: trusted.* xattrs and mknod need CAP_SYS_ADMIN/CAP_MKNOD (skipped otherwise).

use super::*;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn mknod(p: &Path, kind: u32, dev: u64) {
    let dir = std::fs::File::open(p.parent().unwrap()).unwrap();
    sfs::mknodat(dir.as_fd(), p.file_name().unwrap(), kind | 0o644, dev).unwrap();
}

fn set_opaque(p: &Path) {
    let f = std::fs::File::open(p).unwrap();
    sfs::fsetxattr(f.as_fd(), OPAQUE, b"y").unwrap();
}

/// lower: /etc/{a,b}, /d/{old}, /keep; upper: /etc/a changed, /etc/b deleted, /etc/new
/// added, /d opaque with /d/fresh, /keep untouched (absent from upper), extras.
fn fixture(t: &Path) -> (PathBuf, PathBuf) {
    let lower = t.join("lower");
    let upper = t.join("upper");
    for d in ["etc", "d"] {
        fs::create_dir_all(lower.join(d)).unwrap();
    }
    fs::write(lower.join("etc/a"), "1").unwrap();
    fs::write(lower.join("etc/b"), "2").unwrap();
    fs::write(lower.join("d/old"), "3").unwrap();
    fs::write(lower.join("keep"), "4").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::open(lower.join("etc"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::create_dir_all(upper.join("d")).unwrap();
    fs::write(upper.join("etc/a"), "changed").unwrap();
    mknod(&upper.join("etc/b"), S_IFCHR, 0);
    fs::write(upper.join("etc/new"), "new").unwrap();
    fs::hard_link(upper.join("etc/new"), upper.join("etc/new2")).unwrap();
    symlink("/etc/shadow", upper.join("etc/out")).unwrap();
    mknod(&upper.join("etc/fifo"), S_IFIFO, 0);
    mknod(&upper.join("etc/null"), S_IFCHR, libc::makedev(1, 3));
    let _sock = std::os::unix::net::UnixListener::bind(upper.join("etc/sock")).unwrap();
    fs::write(upper.join("d/fresh"), "5").unwrap();
    set_opaque(&upper.join("d"));
    fs::set_permissions(upper.join("etc/new"), fs::Permissions::from_mode(0o4755)).unwrap();
    (upper, lower)
}

#[test]
fn changes_as_docker_lists_them() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (upper, lower) = fixture(t.path());
    let got: Vec<String> = changes(&upper, &[lower], &[])
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path))
        .collect();
    assert_eq!(
        got,
        [
            "C /d",
            "A /d/fresh",
            "D /d/old",
            "C /etc",
            "C /etc/a",
            "A /etc/fifo",
            "A /etc/new",
            "A /etc/new2",
            "A /etc/null",
            "A /etc/out",
            "A /etc/sock",
            "D /etc/b",
        ]
    );
}

fn tar_of(upper: &Path) -> (Vec<u8>, TarStats) {
    let f = std::fs::File::open(upper).unwrap();
    let mut out = Vec::new();
    let stats = write_tar(f.as_fd(), TreeKind::OverlayUpper, &[], &mut out).unwrap();
    (out, stats)
}

#[test]
fn layer_tar_converts_whiteouts_and_is_deterministic() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (upper, _) = fixture(t.path());
    let (a, stats) = tar_of(&upper);
    let (b, _) = tar_of(&upper);
    assert_eq!(a, b, "same tree, same bytes");
    assert_eq!(stats.sockets_skipped, 1);
    assert_eq!(stats.whiteouts, 2);
    let mut ar = tar::Archive::new(&a[..]);
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let h = e.header().clone();
        let kind = h.entry_type();
        let line = match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => format!(
                "{path} {:?} -> {}",
                kind,
                e.link_name().unwrap().unwrap().display()
            ),
            tar::EntryType::Char => format!(
                "{path} char {}:{}",
                h.device_major().unwrap().unwrap(),
                h.device_minor().unwrap().unwrap()
            ),
            _ => format!("{path} {kind:?} {:o}", h.mode().unwrap()),
        };
        if path == "etc/new" {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(s, "new");
        }
        seen.push(line);
    }
    assert_eq!(
        seen,
        [
            "d/ Directory 755",
            "d/.wh..wh..opq Regular 0",
            "d/fresh Regular 644",
            "etc/ Directory 755",
            "etc/a Regular 644",
            "etc/.wh.b Regular 600",
            "etc/fifo Fifo 644",
            "etc/new Regular 4755",
            "etc/new2 Link -> etc/new",
            "etc/null char 1:3",
            "etc/out Symlink -> /etc/shadow",
        ]
    );
}

#[test]
fn a_symlinked_directory_is_never_followed() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let upper = t.path().join("upper");
    fs::create_dir_all(&upper).unwrap();
    let outside = t.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "s").unwrap();
    symlink(&outside, upper.join("link")).unwrap();
    let (tar, _) = tar_of(&upper);
    let mut ar = tar::Archive::new(&tar[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["link"]);
}

#[test]
fn overlay_redirect_is_refused() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let upper = t.path().join("upper");
    fs::create_dir_all(upper.join("moved")).unwrap();
    let f = std::fs::File::open(upper.join("moved")).unwrap();
    sfs::fsetxattr(f.as_fd(), REDIRECT, b"/orig").unwrap();
    let root = std::fs::File::open(&upper).unwrap();
    let err = write_tar(root.as_fd(), TreeKind::OverlayUpper, &[], io::sink()).unwrap_err();
    assert!(
        matches!(err, DiffError::OverlayFeature { ref path, feature: "redirect" } if path == "/moved"),
        "{err}"
    );
}

#[test]
fn changes_see_the_image_through_its_whiteouts_and_opaque_dirs() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (l1, l2, upper) = (
        t.path().join("l1"),
        t.path().join("l2"),
        t.path().join("up"),
    );
    for d in [
        l1.join("etc"),
        l1.join("d"),
        l2.join("etc"),
        l2.join("d"),
        upper.join("etc"),
        upper.join("d"),
    ] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(l1.join("etc/x"), "1").unwrap();
    fs::write(l1.join("d/a"), "a").unwrap();
    fs::write(l1.join("d/b"), "b").unwrap();
    // the top layer deletes /etc/x and replaces /d with one holding only c
    mknod(&l2.join("etc/x"), S_IFCHR, 0);
    fs::write(l2.join("d/c"), "c").unwrap();
    set_opaque(&l2.join("d"));
    // the container makes /etc/x again and replaces /d once more
    fs::write(upper.join("etc/x"), "again").unwrap();
    fs::write(upper.join("d/new"), "n").unwrap();
    set_opaque(&upper.join("d"));
    let got: Vec<String> = changes(&upper, &[l2, l1], &[])
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path))
        .collect();
    assert_eq!(got, ["C /d", "A /d/new", "D /d/c", "C /etc", "A /etc/x"]);
    // a skipped path is left out with what is below it
    let got = changes(&upper, &[], &[Path::new("d")]).unwrap();
    assert!(got.iter().all(|c| !c.path.starts_with("/d")), "{got:?}");
}
