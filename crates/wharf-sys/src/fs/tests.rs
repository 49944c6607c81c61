use super::*;
use std::os::unix::fs::symlink;

type OpenFn = fn(BorrowedFd<'_>, &Path, i32) -> io::Result<OwnedFd>;
type MkdirFn = fn(BorrowedFd<'_>, &Path, u32) -> io::Result<OwnedFd>;

const BENEATH: [(OpenFn, MkdirFn); 2] = [
    (open_beneath_nofollow, mkdir_all_beneath),
    (open_beneath_nofollow_fallback, mkdir_all_beneath_fallback),
];
const IN_ROOT: [(OpenFn, MkdirFn, MkdirFn); 2] = [
    (open_in_root, mkdir_all_in_root, create_file_in_root),
    (
        open_in_root_fallback,
        mkdir_all_in_root_fallback,
        create_file_in_root_fallback,
    ),
];

/// tmp/{root/{d/f, l -> d, esc -> /etc, up -> ../../.., hostabs -> <tmp>/outside},
/// outside/secret}
struct Fixture {
    tmp: tempfile::TempDir,
    root: std::fs::File,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().join("root");
        std::fs::create_dir_all(r.join("d")).unwrap();
        std::fs::write(r.join("d/f"), b"inside").unwrap();
        std::fs::create_dir_all(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/secret"), b"secret").unwrap();
        symlink("d", r.join("l")).unwrap();
        symlink("/etc", r.join("esc")).unwrap();
        symlink("../../..", r.join("up")).unwrap();
        symlink(tmp.path().join("outside"), r.join("hostabs")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        let root = std::fs::File::open(&r).unwrap();
        Fixture { tmp, root }
    }
    fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
    fn rpath(&self, p: &str) -> PathBuf {
        self.tmp.path().join("root").join(p)
    }
    fn outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.tmp.path().join("outside"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("secret")]);
    }
}

fn ino(fd: BorrowedFd<'_>) -> (u64, u64) {
    let st = fstat(fd).unwrap();
    (st.st_dev, st.st_ino)
}

fn ino_path(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.dev(), m.ino())
}

fn code(r: io::Result<OwnedFd>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

#[test]
fn beneath_opens_plain_paths() {
    for (open, _) in BENEATH {
        let fx = Fixture::new();
        let fd = open(fx.root(), Path::new("d/f"), libc::O_RDONLY).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d/f")));
        let fd = open(
            fx.root(),
            Path::new("./d"),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d")));
        let fd = open(fx.root(), Path::new(""), libc::O_PATH).unwrap();
        assert_eq!(ino(fd.as_fd()), ino(fx.root()));
    }
}

#[test]
fn beneath_rejects_any_symlink_and_dotdot() {
    for (open, _) in BENEATH {
        let fx = Fixture::new();
        for p in [
            "l/f",
            "esc/passwd",
            "up/etc/passwd",
            "hostabs/secret",
            "l",
            "loop1",
            "loop1/x",
        ] {
            for flags in [
                libc::O_RDONLY,
                libc::O_PATH,
                libc::O_PATH | libc::O_DIRECTORY,
            ] {
                let c = code(open(fx.root(), Path::new(p), flags));
                assert!(
                    c == libc::ELOOP || c == libc::ENOTDIR,
                    "{p} flags {flags:#x}: errno {c}"
                );
            }
        }
        assert_eq!(
            code(open(fx.root(), Path::new("../root/d/f"), libc::O_RDONLY)),
            libc::EXDEV
        );
        assert_eq!(
            code(open(fx.root(), Path::new("d/../d/f"), libc::O_RDONLY)),
            libc::EXDEV
        );
        assert_eq!(
            code(open(fx.root(), Path::new("/etc/passwd"), libc::O_RDONLY)),
            libc::EXDEV
        );
        assert_eq!(
            code(open(
                fx.root(),
                Path::new("d/f"),
                libc::O_CREAT | libc::O_WRONLY
            )),
            libc::EINVAL
        );
        fx.outside_untouched();
    }
}

#[test]
fn mkdir_beneath_creates_and_refuses_symlinks() {
    for (_, mkdir) in BENEATH {
        let fx = Fixture::new();
        let fd = mkdir(fx.root(), Path::new("a/b/c"), 0o755).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("a/b/c")));
        // existing: same dir again
        let fd2 = mkdir(fx.root(), Path::new("a/b/c"), 0o755).unwrap();
        assert_eq!(ino(fd2.as_fd()), ino(fd.as_fd()));
        // the returned fd is usable as an *at() dir fd
        mkdirat(fd.as_fd(), OsStr::new("x"), 0o700).unwrap();
        assert!(fx.rpath("a/b/c/x").is_dir());
        for p in ["l/new", "hostabs/new", "up/new", "esc/new", "l"] {
            let c = code(mkdir(fx.root(), Path::new(p), 0o755));
            assert!(c == libc::ELOOP || c == libc::ENOTDIR, "{p}: {c}");
        }
        assert_eq!(
            code(mkdir(fx.root(), Path::new("d/f/x"), 0o755)),
            libc::ENOTDIR
        );
        assert_eq!(
            code(mkdir(fx.root(), Path::new("../evil"), 0o755)),
            libc::EXDEV
        );
        assert!(!fx.rpath("d/new").exists());
        assert!(!fx.tmp.path().join("evil").exists());
        fx.outside_untouched();
    }
}

#[test]
fn in_root_follows_but_clamps() {
    for (open, _, _) in IN_ROOT {
        let fx = Fixture::new();
        let want = ino_path(&fx.rpath("d/f"));
        for p in [
            "d/f",
            "/d/f",
            "l/f",
            "/l/../d/f",
            "../../d/f",
            "up/d/f",
            "up/up/l/f",
            "d/../../../d/f",
        ] {
            let fd = open(fx.root(), Path::new(p), libc::O_RDONLY)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(ino(fd.as_fd()), want, "{p}");
        }
        // absolute link target and `..` escapes resolve inside root, where these don't exist
        assert_eq!(
            code(open(fx.root(), Path::new("esc/passwd"), libc::O_RDONLY)),
            libc::ENOENT
        );
        assert_eq!(
            code(open(fx.root(), Path::new("hostabs/secret"), libc::O_RDONLY)),
            libc::ENOENT
        );
        assert_eq!(
            code(open(
                fx.root(),
                Path::new("up/outside/secret"),
                libc::O_RDONLY
            )),
            libc::ENOENT
        );
        // `..` and `/` and `up` at the top are the root itself
        for p in ["..", "/", "up", "", "d/../.."] {
            let fd = open(fx.root(), Path::new(p), libc::O_PATH | libc::O_DIRECTORY)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(ino(fd.as_fd()), ino(fx.root()), "{p}");
        }
        // a trailing symlink to a dir, O_PATH: the dir, not the link
        let fd = open(fx.root(), Path::new("l"), libc::O_PATH).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d")));
        // O_NOFOLLOW|O_PATH on the link gives the link
        let fd = open(fx.root(), Path::new("l"), libc::O_PATH | libc::O_NOFOLLOW).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("l")));
        assert_eq!(
            code(open(fx.root(), Path::new("loop1"), libc::O_RDONLY)),
            libc::ELOOP
        );
        assert_eq!(
            code(open(fx.root(), Path::new("loop1/x"), libc::O_PATH)),
            libc::ELOOP
        );
        fx.outside_untouched();
    }
}

#[test]
fn mkdir_in_root_creates_inside_only() {
    for (_, mkdir, _) in IN_ROOT {
        let fx = Fixture::new();
        let fd = mkdir(fx.root(), Path::new("/x/y"), 0o755).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("x/y")));
        // through an absolute host-path symlink: created under root/<that path>
        mkdir(fx.root(), Path::new("hostabs/newdir"), 0o755).unwrap();
        let host_outside = fx.tmp.path().join("outside");
        let inside = fx.rpath(host_outside.strip_prefix("/").unwrap().to_str().unwrap());
        assert!(inside.join("newdir").is_dir());
        // `esc -> /etc` (dangling inside root): root/etc/sub
        mkdir(fx.root(), Path::new("esc/sub"), 0o755).unwrap();
        assert!(fx.rpath("etc/sub").is_dir());
        mkdir(fx.root(), Path::new("up/../../z"), 0o755).unwrap();
        assert!(fx.rpath("z").is_dir());
        // existing via symlink
        let fd = mkdir(fx.root(), Path::new("l"), 0o755).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d")));
        assert_eq!(
            code(mkdir(fx.root(), Path::new("loop1/a"), 0o755)),
            libc::ELOOP
        );
        assert_eq!(
            code(mkdir(fx.root(), Path::new("d/f/a"), 0o755)),
            libc::ENOTDIR
        );
        // usable as a mount-target path
        assert!(fd_path(fd.as_fd()).is_dir());
        fx.outside_untouched();
        assert!(!fx.tmp.path().join("z").exists());
    }
}

#[test]
fn create_file_in_root_works_and_clamps() {
    for (_, _, create) in IN_ROOT {
        let fx = Fixture::new();
        let fd = create(fx.root(), Path::new("/etc/hosts"), 0o644).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("etc/hosts")));
        assert!(fx.rpath("etc/hosts").is_file());
        // existing file: same inode, content kept
        let fd = create(fx.root(), Path::new("d/f"), 0o644).unwrap();
        assert_eq!(ino(fd.as_fd()), ino_path(&fx.rpath("d/f")));
        assert_eq!(std::fs::read(fx.rpath("d/f")).unwrap(), b"inside");
        // dangling symlink to an absolute host path: created inside root
        symlink("/new-top", fx.rpath("dangling")).unwrap();
        create(fx.root(), Path::new("dangling"), 0o644).unwrap();
        assert!(fx.rpath("new-top").is_file());
        // ... and through a symlinked parent pointing at a host path
        create(fx.root(), Path::new("hostabs/new"), 0o644).unwrap();
        fx.outside_untouched();
        assert_eq!(code(create(fx.root(), Path::new("d"), 0o644)), libc::EISDIR);
        // a FIFO target is returned without being opened for I/O (would block)
        mknodat(fx.root(), OsStr::new("fifo"), libc::S_IFIFO | 0o644, 0).unwrap();
        create(fx.root(), Path::new("fifo"), 0o644).unwrap();
    }
}

#[test]
fn at_primitives() {
    let fx = Fixture::new();
    let d =
        open_beneath_nofollow(fx.root(), Path::new("d"), libc::O_PATH | libc::O_DIRECTORY).unwrap();
    // char device 0:0 (overlay whiteout) + chmod/chown/times
    mknodat(d.as_fd(), OsStr::new("wh"), libc::S_IFCHR, 0).unwrap();
    let st = lstat_at(d.as_fd(), OsStr::new("wh")).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(st.st_rdev, 0);
    // chown clears setuid, so chmod comes after it (as in layer apply)
    lchown_at(d.as_fd(), OsStr::new("wh"), 1000, 1001).unwrap();
    lchmod_at(d.as_fd(), OsStr::new("wh"), 0o4755).unwrap();
    lutimens_at(d.as_fd(), OsStr::new("wh"), (5, 0), (1_000_000, 7)).unwrap();
    let st = lstat_at(d.as_fd(), OsStr::new("wh")).unwrap();
    assert_eq!(st.st_mode & 0o7777, 0o4755);
    assert_eq!((st.st_uid, st.st_gid), (1000, 1001));
    assert_eq!((st.st_mtime, st.st_mtime_nsec), (1_000_000, 7));
    // symlinks: created verbatim, times without following, chmod refused
    symlinkat(Path::new("/nonexistent"), d.as_fd(), OsStr::new("sl")).unwrap();
    assert_eq!(
        readlinkat(d.as_fd(), OsStr::new("sl")).unwrap(),
        PathBuf::from("/nonexistent")
    );
    lutimens_at(d.as_fd(), OsStr::new("sl"), (1, 0), (2, 0)).unwrap();
    assert_eq!(lstat_at(d.as_fd(), OsStr::new("sl")).unwrap().st_mtime, 2);
    assert!(lchmod_at(d.as_fd(), OsStr::new("sl"), 0o600).is_err());
    // xattrs on dir entries and on O_PATH fds
    lsetxattr_at(d.as_fd(), OsStr::new("f"), "trusted.overlay.opaque", b"y").unwrap();
    assert_eq!(
        lgetxattr_at(d.as_fd(), OsStr::new("f"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(
        lgetxattr_at(d.as_fd(), OsStr::new("f"), "trusted.nope").unwrap(),
        None
    );
    fsetxattr(d.as_fd(), "trusted.x", b"1").unwrap();
    assert_eq!(
        lgetxattr_at(fx.root(), OsStr::new("d"), "trusted.x").unwrap(),
        Some(b"1".to_vec())
    );
    // hardlink, unlink, names must be single components
    linkat(d.as_fd(), OsStr::new("f"), fx.root(), OsStr::new("hl")).unwrap();
    assert_eq!(ino_path(&fx.rpath("hl")), ino_path(&fx.rpath("d/f")));
    unlinkat(fx.root(), OsStr::new("hl"), false).unwrap();
    for bad in ["", ".", "..", "a/b", "/x"] {
        assert_eq!(
            mkdirat(d.as_fd(), OsStr::new(bad), 0o755)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EINVAL)
        );
    }
    let f = openat_nofollow(
        d.as_fd(),
        OsStr::new("new"),
        libc::O_CREAT | libc::O_WRONLY,
        0o600,
    )
    .unwrap();
    chown_fd(f.as_fd(), 7, 8).unwrap();
    chmod_fd(f.as_fd(), 0o640).unwrap();
    let st = lstat_at(d.as_fd(), OsStr::new("new")).unwrap();
    assert_eq!((st.st_uid, st.st_gid, st.st_mode & 0o7777), (7, 8, 0o640));
    assert_eq!(
        code(openat_nofollow(
            d.as_fd(),
            OsStr::new("sl"),
            libc::O_RDONLY,
            0
        )),
        libc::ELOOP
    );
}

/// Run in a child process with WHARF_DISABLE=openat2 (feature detection is cached per
/// process, so the parent cannot flip it).
#[test]
fn disabled_child() {
    if std::env::var("WHARF_DISABLE").ok().as_deref() != Some("openat2") {
        return;
    }
    assert!(!openat2::available());
    // the public entry points work through the walk
    let fx = Fixture::new();
    assert_eq!(
        code(open_in_root(
            fx.root(),
            Path::new("esc/passwd"),
            libc::O_RDONLY
        )),
        libc::ENOENT
    );
    assert!(open_beneath_nofollow(fx.root(), Path::new("l/f"), libc::O_RDONLY).is_err());
    println!("WHARF-DISABLED-CHECKED");
}

#[test]
fn wharf_disable_turns_openat2_off() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "fs::tests::disabled_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WHARF_DISABLE", "openat2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("WHARF-DISABLED-CHECKED"), "{stdout}");
}

fn lsattr_has_t(dir: &Path) -> bool {
    let o = std::process::Command::new("lsattr")
        .arg("-d")
        .arg(dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.split_whitespace().next().unwrap_or("").contains('T')
}

#[test]
fn set_topdir_sets_chattr_t_where_the_file_system_has_it() {
    // /var/tmp is the store's file system in tests (ext4 here)
    let t = tempfile::tempdir_in("/var/tmp").unwrap();
    let d = t.path().join("snapshots");
    std::fs::create_dir(&d).unwrap();
    assert!(!lsattr_has_t(&d));
    let set = set_topdir(&d).unwrap();
    assert_eq!(set, lsattr_has_t(&d), "reported state matches lsattr");
    // idempotent
    assert_eq!(set_topdir(&d).unwrap(), set);
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&d)
        .output()
        .unwrap();
    if String::from_utf8_lossy(&fs.stdout).trim() == "ext2/ext3" {
        assert!(set, "ext4 has FS_TOPDIR_FL");
    }
    // a missing directory is an error, not a silent no
    assert!(set_topdir(&t.path().join("nope")).is_err());
}

#[test]
fn read_small_file_refuses_what_is_not_a_small_regular_file() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
    std::fs::create_dir_all(r.join("dev")).unwrap();
    nix::sys::stat::mknod(
        &r.join("dev/zero"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 5),
    )
    .unwrap();
    symlink("/dev/zero", r.join("etc/zero")).unwrap();
    symlink("/../../etc/passwd", r.join("etc/up")).unwrap();
    std::fs::create_dir(r.join("etc/dir")).unwrap();
    std::fs::write(r.join("etc/big"), vec![b'x'; 2048]).unwrap();
    nix::unistd::mkfifo(
        &r.join("etc/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let root = std::fs::File::open(&r).unwrap();
    let read = |p: &str| read_small_file(Some(root.as_fd()), Path::new(p), 1024);
    assert_eq!(
        read("/etc/passwd").unwrap().unwrap(),
        b"root:x:0:0::/:/bin/sh\n"
    );
    // clamped to the root: the rootfs's own passwd, not the host's
    assert_eq!(
        read("/etc/up").unwrap().unwrap(),
        b"root:x:0:0::/:/bin/sh\n"
    );
    assert!(read("/etc/missing").unwrap().is_none());
    for (p, what) in [
        ("/etc/zero", "a character device"),
        ("/etc/fifo", "a fifo"),
        ("/etc/dir", "a directory"),
        ("/etc/big", "too large (2048 bytes"),
    ] {
        let e = read(p).unwrap_err();
        assert!(e.to_string().contains(what), "{p}: {e}");
        assert!(e.to_string().contains(p), "{p}: {e}");
    }
    // without a root, the path as is (a process already inside the container's root)
    let e = read_small_file(None, &r.join("etc/fifo"), 1024).unwrap_err();
    assert!(e.to_string().contains("a fifo"), "{e}");
}
