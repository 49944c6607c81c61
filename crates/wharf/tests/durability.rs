//! A power cut right after an image arrives. The store lives on a loop-mounted ext4; after
//! `import` / `load` / `pull` returns, the file system is shut down WITHOUT flushing
//! (`EXT4_IOC_SHUTDOWN` with `NOLOGFLUSH`, how xfstests simulates a crash), remounted, and the
//! image must still run with every file's contents. Without syncing the snapshot before it
//! becomes visible, this is the containerd#5854 / moby#49784 failure: the image is listed, its
//! files are there, and they are empty (`exec format error`).

// test helpers: a failed setup step is a failed test
#![allow(clippy::unwrap_used)]

mod common;
use common::registry::Serve;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A 512 MiB ext4 image loop-mounted at `mnt`; unmounted on drop.
struct LoopFs {
    img: PathBuf,
    mnt: PathBuf,
}

impl LoopFs {
    fn new(dir: &Path, mnt: PathBuf) -> LoopFs {
        let img = dir.join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(512 << 20)
            .unwrap();
        let o = sh(&format!("mkfs.ext4 -q -F {}", img.display()));
        assert!(o.status.success(), "mkfs.ext4: {}", stderr(&o));
        std::fs::create_dir_all(&mnt).unwrap();
        let fs = LoopFs { img, mnt };
        fs.mount();
        fs
    }

    fn mount(&self) {
        let o = sh(&format!(
            "mount -o loop {} {}",
            self.img.display(),
            self.mnt.display()
        ));
        assert!(o.status.success(), "mount: {}", stderr(&o));
    }

    /// Power cut: shut the file system down without writing anything dirty, then remount.
    fn crash_and_remount(&self) {
        let o = Command::new("python3")
            .arg("-c")
            .arg(
                "import fcntl,os,struct,sys\n\
                 fd = os.open(sys.argv[1], os.O_RDONLY)\n\
                 fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 2))  # EXT4_IOC_SHUTDOWN, NOLOGFLUSH",
            )
            .arg(&self.mnt)
            .output()
            .unwrap();
        assert!(o.status.success(), "shutdown ioctl: {}", stderr(&o));
        let o = sh(&format!("umount {}", self.mnt.display()));
        assert!(o.status.success(), "umount: {}", stderr(&o));
        self.mount();
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = sh(&format!("umount {}", self.mnt.display()));
    }
}

/// Regular files of size 0 in the store's snapshots.
fn empty_files(w: &Wharf) -> usize {
    let o = sh(&format!(
        "find {} -type f -size 0 | wc -l",
        w.root().join("snapshots").display()
    ));
    stdout(&o).trim().parse().unwrap()
}

/// Gets an image into a store on a fresh loop fs with `arrive`, cuts the power, and checks
/// the image is listed and runs with its files intact.
fn survives_power_cut(what: &str, image: &str, arrive: impl FnOnce(&Wharf)) {
    let w = Wharf::new();
    let fs = LoopFs::new(w.dir.path(), w.root());
    arrive(&w);
    let empty = empty_files(&w);
    fs.crash_and_remount();
    assert!(
        w.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .lines()
            .any(|l| l == image),
        "{what}: image gone"
    );
    assert_eq!(empty_files(&w), empty, "{what}: files lost their contents");
    let o = w.run(&[
        "run",
        "--rm",
        image,
        "sh",
        "-c",
        "echo ran; busybox | head -1",
    ]);
    assert!(
        stdout(&o).starts_with("ran\nBusyBox"),
        "{what}: {} {}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn images_survive_a_power_cut_right_after_they_arrive() {
    let src = Wharf::new().with_busybox();
    let d = src.dir.path();
    let rootfs = d.join("busybox.tar");
    write_busybox_tar(&rootfs);
    survives_power_cut("import", "bb:1", |w| {
        w.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    });
    // an uncompressed archive (tar-split path) and a gzip-layered one (background unpack)
    let plain = d.join("plain.tar");
    src.ok(&["save", "-o", plain.to_str().unwrap(), "busybox"]);
    survives_power_cut("load", "busybox:latest", |w| {
        w.ok(&["load", "-i", plain.to_str().unwrap()]);
    });
    let reg = {
        let mut cmd = Command::new(Wharf::bin());
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(d.join("registry"));
        Serve::start(cmd)
    };
    let name = format!("{}/bb:1", reg.addr);
    src.ok(&["tag", "busybox", &name]);
    src.ok(&["push", &name]); // gzip-compressed on the way
                              // a pulled image keeps its gzip layers; saved, they stay gzip
    let pulled = Wharf::new();
    pulled.ok(&["pull", &name]);
    let gz = d.join("gz.tar");
    pulled.ok(&["save", "-o", gz.to_str().unwrap(), &name]);
    let gzip_members = tar::Archive::new(std::fs::File::open(&gz).unwrap())
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut magic = [0u8; 2];
            std::io::Read::read_exact(&mut e, &mut magic).is_ok() && magic == [0x1f, 0x8b]
        })
        .filter(|gzip| *gzip)
        .count();
    assert_eq!(gzip_members, 1, "the archive carries the gzip layer");
    survives_power_cut("load (gzip layers)", &name, |w| {
        w.ok(&["load", "-i", gz.to_str().unwrap()]);
    });
    survives_power_cut("pull", &name, |w| {
        w.ok(&["pull", &name]);
    });
}
