//! Hostile and well-formed layer archives, applied for real (run as root).

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use tar::{Builder, EntryType, Header};

/// Appends an entry with raw name/link bytes (bypassing the tar crate's path checks).
fn raw(
    b: &mut Builder<Vec<u8>>,
    name: &[u8],
    kind: EntryType,
    link: &[u8],
    data: &[u8],
    mode: u32,
) {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

struct Fx {
    tmp: tempfile::TempDir,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("dest")).unwrap();
        std::fs::create_dir(tmp.path().join("sentinel")).unwrap();
        std::fs::write(tmp.path().join("sentinel/passwd"), b"root").unwrap();
        Fx { tmp }
    }
    fn dest(&self) -> PathBuf {
        self.tmp.path().join("dest")
    }
    fn sentinel(&self) -> PathBuf {
        self.tmp.path().join("sentinel")
    }
    /// Nothing but `dest` and the untouched sentinel exist in the temp dir.
    fn assert_contained(&self) {
        let mut top: Vec<_> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        assert_eq!(top, vec!["dest", "sentinel"]);
        let s: Vec<_> = std::fs::read_dir(self.sentinel())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(s, vec!["passwd"]);
        assert_eq!(
            std::fs::read(self.sentinel().join("passwd")).unwrap(),
            b"root"
        );
        assert!(!Path::new("/evil").exists() && !Path::new("/abs").exists());
    }
}

fn hostile(build: impl FnOnce(&mut Builder<Vec<u8>>, &Fx)) -> (Fx, LayerError) {
    let fx = Fx::new();
    let mut b = Builder::new(Vec::new());
    build(&mut b, &fx);
    let data = b.into_inner().unwrap();
    let e = apply_layer(&fx.dest(), &data[..]).expect_err("hostile archive accepted");
    fx.assert_contained();
    (fx, e)
}

#[test]
fn rejects_dotdot() {
    let (_, e) = hostile(|b, _| raw(b, b"../evil", EntryType::Regular, b"", b"x", 0o644));
    assert!(e.to_string().contains("../evil"), "{e}");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let (_, e) = hostile(|b, _| raw(b, b"a/../../evil", EntryType::Directory, b"", b"", 0o755));
    assert!(matches!(e, LayerError::Unsafe { .. }), "{e}");
}

#[test]
fn rejects_absolute() {
    let (_, e) = hostile(|b, _| raw(b, b"/abs", EntryType::Regular, b"", b"x", 0o644));
    assert!(e.to_string().contains("/abs"), "{e}");
}

#[test]
fn rejects_write_through_absolute_symlink() {
    let (fx, e) = hostile(|b, fx| {
        let t = fx.sentinel();
        raw(
            b,
            b"x",
            EntryType::Symlink,
            t.as_os_str().as_bytes(),
            b"",
            0o777,
        );
        raw(b, b"x/passwd", EntryType::Regular, b"", b"pwned", 0o644);
    });
    assert!(e.to_string().contains("x/passwd"), "{e}");
    // the symlink itself is fine content
    assert!(fx
        .dest()
        .join("x")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    let (_, e) = hostile(|b, fx| {
        let t = fx.sentinel();
        raw(
            b,
            b"x",
            EntryType::Symlink,
            t.as_os_str().as_bytes(),
            b"",
            0o777,
        );
        raw(b, b"x/sub/", EntryType::Directory, b"", b"", 0o755);
    });
    assert!(matches!(e, LayerError::Unsafe { .. }), "{e}");
}

#[test]
fn rejects_write_through_relative_symlink() {
    let (_, e) = hostile(|b, _| {
        raw(b, b"x", EntryType::Symlink, b"../../..", b"", 0o777);
        raw(b, b"x/foo", EntryType::Regular, b"", b"pwned", 0o644);
    });
    assert!(e.to_string().contains("x/foo"), "{e}");
    let (_, _) = hostile(|b, _| {
        raw(b, b"d/", EntryType::Directory, b"", b"", 0o755);
        raw(
            b,
            b"d/up",
            EntryType::Symlink,
            b"../../sentinel",
            b"",
            0o777,
        );
        raw(b, b"d/up/passwd", EntryType::Regular, b"", b"pwned", 0o644);
    });
}

#[test]
fn rejects_hardlink_escapes() {
    let (_, e) = hostile(|b, _| raw(b, b"h", EntryType::Link, b"../../etc/passwd", b"", 0o644));
    assert!(e.to_string().contains("\"h\""), "{e}");
    let (_, e) = hostile(|b, _| raw(b, b"h", EntryType::Link, b"/../../etc/passwd", b"", 0o644));
    assert!(matches!(e, LayerError::Unsafe { .. }), "{e}");
    let (_, e) = hostile(|b, _| raw(b, b"h", EntryType::Link, b"//a/../../passwd", b"", 0o644));
    assert!(matches!(e, LayerError::Unsafe { .. }), "{e}");
    // an absolute target that names nothing in the layer: not found, never the host's file
    let (_, e) = hostile(|b, _| raw(b, b"h", EntryType::Link, b"/etc/passwd", b"", 0o644));
    assert!(e.to_string().contains("\"h\""), "{e}");
    let (_, e) = hostile(|b, fx| {
        let t = fx.sentinel();
        raw(
            b,
            b"s",
            EntryType::Symlink,
            t.as_os_str().as_bytes(),
            b"",
            0o777,
        );
        raw(b, b"h", EntryType::Link, b"s/passwd", b"", 0o644);
    });
    assert!(e.to_string().contains("symlink"), "{e}");
    // hardlink to a symlink that points outside: links the symlink, never its target
    let fx = Fx::new();
    let mut b = Builder::new(Vec::new());
    raw(&mut b, b"s", EntryType::Symlink, b"/etc/passwd", b"", 0o777);
    raw(&mut b, b"h", EntryType::Link, b"s", b"", 0o777);
    apply_layer(&fx.dest(), &b.into_inner().unwrap()[..]).unwrap();
    assert!(fx
        .dest()
        .join("h")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    fx.assert_contained();
}

/// Debian's perl: `usr/bin/perlthanks` is a hardlink to `/usr/bin/perlbug`; the target is
/// relative to the layer root (docker and containerd strip the leading `/`).
#[test]
fn absolute_hardlink_target_is_layer_relative() {
    let fx = Fx::new();
    let mut b = Builder::new(Vec::new());
    raw(&mut b, b"usr/", EntryType::Directory, b"", b"", 0o755);
    raw(&mut b, b"usr/bin/", EntryType::Directory, b"", b"", 0o755);
    raw(
        &mut b,
        b"usr/bin/perlbug",
        EntryType::Regular,
        b"",
        b"#!perl",
        0o755,
    );
    raw(
        &mut b,
        b"usr/bin/perlthanks",
        EntryType::Link,
        b"/usr/bin/perlbug",
        b"",
        0o755,
    );
    raw(
        &mut b,
        b"two",
        EntryType::Link,
        b"///usr/./bin/perlbug",
        b"",
        0o755,
    );
    apply_layer(&fx.dest(), &b.into_inner().unwrap()[..]).unwrap();
    let a = fx.dest().join("usr/bin/perlbug").metadata().unwrap();
    let t = fx.dest().join("usr/bin/perlthanks").metadata().unwrap();
    assert_eq!((a.ino(), a.nlink()), (t.ino(), 3));
    assert_eq!(fx.dest().join("two").metadata().unwrap().ino(), a.ino());
    fx.assert_contained();
}

#[test]
fn rejects_odd_whiteouts_and_garbage() {
    let (_, e) = hostile(|b, _| raw(b, b"d/.wh..wh.plnk", EntryType::Regular, b"", b"", 0o644));
    assert!(e.to_string().contains("whiteout"), "{e}");
    let (_, e) = hostile(|b, _| raw(b, b".wh...", EntryType::Regular, b"", b"", 0o644));
    assert!(matches!(e, LayerError::Unsafe { .. }), "{e}");
    let fx = Fx::new();
    let e = apply_layer(&fx.dest(), &[0x55u8; 1024][..]).unwrap_err();
    assert!(matches!(e, LayerError::Read(_)), "{e}");
    fx.assert_contained();
}

#[test]
fn applies_metadata_whiteouts_and_duplicates() {
    let fx = Fx::new();
    let mut b = Builder::new(Vec::new());
    raw(&mut b, b"./", EntryType::Directory, b"", b"", 0o755);
    raw(&mut b, b"./bin/", EntryType::Directory, b"", b"", 0o711);
    // setuid file owned by 1000:1001 with a capability-like xattr (trusted.* so tmpfs works)
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_path("bin/su").unwrap();
    h.set_size(5);
    h.set_mode(0o4755);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_234_567_890);
    h.set_cksum();
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.wharftest", &b"v1"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
    ])
    .unwrap();
    b.append(&h, &b"hello"[..]).unwrap();
    raw(
        &mut b,
        b"bin/sh",
        EntryType::Symlink,
        b"/bin/busybox",
        b"",
        0o777,
    );
    raw(&mut b, b"bin/su2", EntryType::Link, b"bin/su", b"", 0o644);
    raw(&mut b, b"fifo", EntryType::Fifo, b"", b"", 0o640);
    raw(&mut b, b"dup", EntryType::Regular, b"", b"first", 0o644);
    raw(&mut b, b"dup", EntryType::Regular, b"", b"second", 0o600);
    raw(&mut b, b"dir2file/", EntryType::Directory, b"", b"", 0o755);
    raw(
        &mut b,
        b"dir2file/inner",
        EntryType::Regular,
        b"",
        b"x",
        0o644,
    );
    raw(
        &mut b,
        b"dir2file",
        EntryType::Regular,
        b"",
        b"now a file",
        0o644,
    );
    raw(
        &mut b,
        b"etc/.wh.shadow",
        EntryType::Regular,
        b"",
        b"",
        0o644,
    );
    raw(
        &mut b,
        b"var/cache/.wh..wh..opq",
        EntryType::Regular,
        b"",
        b"",
        0o644,
    );
    let data = b.into_inner().unwrap();
    let stats = apply_layer(&fx.dest(), &data[..]).unwrap();
    assert_eq!(stats.whiteouts, 2);
    let d = fx.dest();
    let m = std::fs::symlink_metadata(d.join("bin/su")).unwrap();
    assert_eq!(
        m.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept (chmod after chown)"
    );
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(m.mtime(), 1_234_567_890);
    assert_eq!(m.nlink(), 2);
    let bin = std::fs::File::open(d.join("bin")).unwrap();
    assert_eq!(
        sfs::lgetxattr_at(bin.as_fd(), OsStr::new("su"), "trusted.wharftest").unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        sfs::lgetxattr_at(bin.as_fd(), OsStr::new("su"), "trusted.overlay.redirect").unwrap(),
        None
    );
    assert_eq!(
        std::fs::read_link(d.join("bin/sh")).unwrap(),
        PathBuf::from("/bin/busybox")
    );
    let bm = std::fs::metadata(d.join("bin")).unwrap();
    assert_eq!(bm.permissions().mode() & 0o7777, 0o711);
    assert_eq!(
        bm.mtime(),
        1_600_000_000,
        "dir mtime set after its children"
    );
    let f = std::fs::symlink_metadata(d.join("fifo")).unwrap();
    assert_eq!(f.mode() & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!(f.mode() & 0o7777, 0o640);
    assert_eq!(std::fs::read(d.join("dup")).unwrap(), b"second");
    assert_eq!(std::fs::read(d.join("dir2file")).unwrap(), b"now a file");
    // whiteout: char device 0:0
    let w = std::fs::symlink_metadata(d.join("etc/shadow")).unwrap();
    assert_eq!(w.mode() & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(w.rdev(), 0);
    assert!(!d.join("etc/.wh.shadow").exists());
    let var = std::fs::File::open(d.join("var")).unwrap();
    assert_eq!(
        sfs::lgetxattr_at(var.as_fd(), OsStr::new("cache"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(std::fs::read_dir(d.join("var/cache")).unwrap().count(), 0);
    fx.assert_contained();
}

#[test]
fn devices_are_created() {
    let fx = Fx::new();
    let mut b = Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Char);
    h.set_path("dev/null").unwrap();
    h.set_size(0);
    h.set_mode(0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    apply_layer(&fx.dest(), &b.into_inner().unwrap()[..]).unwrap();
    let m = std::fs::symlink_metadata(fx.dest().join("dev/null")).unwrap();
    assert_eq!(m.mode() & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(m.mode() & 0o777, 0o666);
}

/// v2 `security.capability` for cap_net_raw (bit 13) permitted + effective.
fn caps_v2() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes()); // permitted lo
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable lo
    v.extend_from_slice(&0u32.to_le_bytes()); // permitted hi
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable hi
    v
}

fn caps_v3(rootid: u32) -> Vec<u8> {
    let mut v = caps_v2();
    v[..4].copy_from_slice(&(0x0300_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&rootid.to_le_bytes());
    v
}

#[test]
fn file_caps_fitted_to_the_kernel() {
    // v3 for root 0 is v2 on every kernel
    assert_eq!(fit_file_caps(&caps_v3(0), true), Some(caps_v2()));
    assert_eq!(fit_file_caps(&caps_v3(0), false), Some(caps_v2()));
    // v3 for another root: kept where the kernel knows v3, dropped where exec would fail
    assert_eq!(fit_file_caps(&caps_v3(1000), true), Some(caps_v3(1000)));
    assert_eq!(fit_file_caps(&caps_v3(1000), false), None);
    // v2, v1 and garbage are left alone
    assert_eq!(fit_file_caps(&caps_v2(), false), Some(caps_v2()));
    assert_eq!(
        fit_file_caps(b"\x00\x00\x00\x01abcdefgh", false).map(|v| v.len()),
        Some(12)
    );
    assert_eq!(fit_file_caps(b"ab", false), Some(b"ab".to_vec()));
}

/// End to end through apply. (A 4.14+ kernel also converts a root-0 v3 value written from the
/// initial user namespace itself, so on this kernel the result does not tell which did it; the
/// old-kernel decision is `file_caps_fitted_to_the_kernel`.)
#[test]
fn v3_file_caps_in_a_layer_are_written_as_v2() {
    // security.* xattrs need a real file system
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let mut b = Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_path("ping").unwrap();
    h.set_size(4);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_cksum();
    let v3 = caps_v3(0);
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &v3[..])])
        .unwrap();
    b.append(&h, &b"\x7fELF"[..]).unwrap();
    apply_layer(&dest, &b.into_inner().unwrap()[..]).unwrap();
    let d = std::fs::File::open(&dest).unwrap();
    let got = sfs::lgetxattr_at(d.as_fd(), OsStr::new("ping"), "security.capability")
        .unwrap()
        .expect("capability kept");
    assert_eq!(got, caps_v2());
}
