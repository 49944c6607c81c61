//! Control groups on cgroup v1, v2 and the hybrid layout (v1 controllers under
//! /sys/fs/cgroup/<ctrl>, a controller-less v2 hierarchy at /sys/fs/cgroup/unified).
//!
//! Owns: layout detection (from /proc/self/mountinfo), creating a container's cgroup in every
//! hierarchy, applying memory/cpu/pids limits and the v1 device allow-list, joining,
//! listing, killing and removing, and OOM detection. Must not: decide limits (the engine does)
//! or leave a requested limit unapplied: a limit whose controller is missing is an error
//! naming it (fail closed).
//!
//! Pure v2 TODO: the device allow-list needs a BPF_PROG_TYPE_CGROUP_DEVICE program, which is
//! not implemented. Until it is, `caps::resolve` removes MKNOD from non-privileged containers
//! on pure v2 hosts (see there); device nodes wharf itself creates in /dev are the default
//! harmless set, so without MKNOD a container cannot reach other host devices.
//! On the hybrid layout the unified hierarchy is joined for process tracking only.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wharf_sys::features::{force_disabled, Feature};
use wharf_types::error::{ErrorKind, HasKind};

mod resources;
pub use resources::shares_to_weight;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {op}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{limit} limit requested but the {controller} cgroup controller is not available")]
    MissingController {
        controller: &'static str,
        limit: &'static str,
    },
    #[error("invalid cgroup path {path:?}: must be relative without '..'")]
    InvalidPath { path: String },
    #[error("invalid {what} limit {value}")]
    InvalidLimit { what: &'static str, value: i64 },
    #[error("cgroup {path}: processes still running after kill")]
    Busy { path: PathBuf },
    #[error("invalid device cgroup rule {rule:?}: want 'TYPE MAJOR:MINOR ACCESS' (c 10:229 rwm)")]
    DeviceRule { rule: String },
}

impl HasKind for CgroupError {
    fn kind(&self) -> ErrorKind {
        match self {
            CgroupError::Io { source, .. } if vanished(source) => ErrorKind::NotFound,
            CgroupError::Io { .. } => ErrorKind::Internal,
            CgroupError::MissingController { .. } => ErrorKind::FailedPrecondition,
            CgroupError::InvalidPath { .. }
            | CgroupError::InvalidLimit { .. }
            | CgroupError::DeviceRule { .. } => ErrorKind::InvalidArgument,
            CgroupError::Busy { .. } => ErrorKind::Conflict,
        }
    }
}

/// The v1 controllers wharf places containers in (others are left alone).
const V1_USED: &[&str] = &[
    "memory", "pids", "cpu", "cpuacct", "devices", "freezer", "cpuset", "blkio",
];
const V1_KNOWN: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Which cgroup hierarchies the host has. `controllers` maps each v1 controller to its mount
/// point (co-mounted controllers such as cpu,cpuacct share one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    V1 {
        controllers: Vec<(String, PathBuf)>,
    },
    V2 {
        root: PathBuf,
    },
    Hybrid {
        controllers: Vec<(String, PathBuf)>,
        unified: PathBuf,
    },
}

/// Parse /proc/self/mountinfo content into a layout.
fn parse_mountinfo(s: &str) -> Layout {
    let mut controllers: Vec<(String, PathBuf)> = Vec::new();
    let mut unified: Option<PathBuf> = None;
    for line in s.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || pre[3] != "/" {
            continue;
        }
        let mnt = PathBuf::from(pre[4].replace("\\040", " "));
        match post[0] {
            "cgroup2" if unified.is_none() => unified = Some(mnt),
            "cgroup" => {
                for opt in post[2].split(',') {
                    if V1_KNOWN.contains(&opt) && !controllers.iter().any(|(c, _)| c == opt) {
                        controllers.push((opt.to_string(), mnt.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    match (controllers.is_empty(), unified) {
        (true, Some(root)) => Layout::V2 { root },
        (false, Some(unified)) => Layout::Hybrid {
            controllers,
            unified,
        },
        (_, None) => Layout::V1 { controllers },
    }
}

/// The host's layout, detected once per process (v1 controllers named by
/// `WHARF_DISABLE=cgroup.<name>` are left out, as on a kernel without them).
pub fn layout() -> &'static Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    L.get_or_init(|| {
        let mut l =
            parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
        if let Layout::V1 { controllers } | Layout::Hybrid { controllers, .. } = &mut l {
            controllers.retain(|(c, _)| !wharf_sys::features::cgroup_controller_hidden(c));
        }
        l
    })
}

/// Whether the host can apply limits of `controller` to containers: a v1 hierarchy with it,
/// or (pure v2) listed in the root's `cgroup.controllers`.
pub fn controller_available(controller: &str) -> bool {
    controller_in(layout(), controller)
}

/// Whether v1 `memory.oom_control` has the `oom_kill` counter (4.13+; see
/// [`Cgroup::oom_killed`] for what is used without it).
pub fn oom_kill_counter() -> bool {
    if force_disabled(Feature::OomKillCounter) {
        return false;
    }
    let (Layout::V1 { controllers } | Layout::Hybrid { controllers, .. }) = layout() else {
        return true;
    };
    controllers
        .iter()
        .find(|(c, _)| c == "memory")
        .and_then(|(_, m)| std::fs::read_to_string(m.join("memory.oom_control")).ok())
        .is_some_and(|t| t.lines().any(|l| l.starts_with("oom_kill ")))
}

fn controller_in(layout: &Layout, controller: &str) -> bool {
    if wharf_sys::features::cgroup_controller_hidden(controller) {
        return false;
    }
    match layout {
        Layout::V2 { root } => read_file(root, "cgroup.controllers")
            .map(|s| s.split_whitespace().any(|x| x == controller))
            .unwrap_or(false),
        Layout::V1 { controllers } | Layout::Hybrid { controllers, .. } => {
            controllers.iter().any(|(c, _)| c == controller)
        }
    }
}

/// One directory of a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    /// v1 controllers mounted at this hierarchy (empty for v2).
    controllers: Vec<String>,
    /// Mount point of the hierarchy.
    mount: PathBuf,
    /// `mount/<relative path>`.
    path: PathBuf,
    v2: bool,
}

/// One v1 hierarchy of a container's cgroup, for the view mounted inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1View {
    /// Directory name under /sys/fs/cgroup (the host mount point's name, one component).
    pub name: String,
    /// The container's own cgroup directory in that hierarchy (a host path).
    pub dir: PathBuf,
    /// Controller names that become symlinks to `name` (`cpu` → `cpu,cpuacct`).
    pub links: Vec<String>,
}

/// Open files for a new process to join a cgroup by itself ([`Cgroup::prepare_join`]).
#[derive(Debug, Default)]
pub struct Join {
    v2: Option<std::fs::File>,
    v1_tasks: Vec<(std::fs::File, std::ffi::CString)>,
}

impl Join {
    /// The view `wharf_sys::process::spawn_reexec` takes.
    pub fn for_child(&self) -> wharf_sys::process::CgroupJoin<'_> {
        use std::os::fd::AsFd;
        wharf_sys::process::CgroupJoin {
            v2_dir: self.v2.as_ref().map(|f| f.as_fd()),
            v1_tasks: self
                .v1_tasks
                .iter()
                .map(|(f, m)| (f.as_fd(), m.as_c_str()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cgroup {
    dirs: Vec<Dir>,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { op, path, source }
}

fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(io_err("write", &p))
}

fn read_file(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let p = dir.join(file);
    std::fs::read_to_string(&p).map_err(io_err("read", &p))
}

fn check_rel(path: &str) -> Result<(), CgroupError> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidPath {
            path: path.to_string(),
        })
    }
}

fn dirs_for(layout: &Layout, rel: &str) -> Vec<Dir> {
    let mut dirs: Vec<Dir> = Vec::new();
    let (ctrls, v2root) = match layout {
        Layout::V1 { controllers } => (controllers.as_slice(), None),
        Layout::Hybrid {
            controllers,
            unified,
        } => (controllers.as_slice(), Some(unified)),
        Layout::V2 { root } => (&[][..], Some(root)),
    };
    for (c, mnt) in ctrls.iter().filter(|(c, _)| V1_USED.contains(&c.as_str())) {
        if let Some(d) = dirs.iter_mut().find(|d| &d.mount == mnt) {
            d.controllers.push(c.clone());
        } else {
            dirs.push(Dir {
                controllers: vec![c.clone()],
                mount: mnt.clone(),
                path: mnt.join(rel),
                v2: false,
            });
        }
    }
    if let Some(root) = v2root {
        dirs.push(Dir {
            controllers: Vec::new(),
            mount: root.clone(),
            path: root.join(rel),
            v2: true,
        });
    }
    dirs
}

/// mkdir every component of `rel` under `d.mount`; in cpuset hierarchies copy cpus/mems from
/// the parent into each new directory (v1 leaves them empty, and tasks cannot join then).
/// Creates `rel` level by level under the hierarchy. On pure v2 (`delegate`), each parent first
/// enables its available controllers for its children (`cgroup.subtree_control`); the leaf,
/// which will hold processes, never gets subtree_control ("no internal processes" rule).
fn mkdir_chain(d: &Dir, rel: &str, delegate: bool) -> Result<(), CgroupError> {
    let cpuset = d.controllers.iter().any(|c| c == "cpuset");
    let mut cur = d.mount.clone();
    for comp in Path::new(rel).components() {
        let parent = cur.clone();
        if delegate {
            enable_here(&parent)?;
        }
        cur.push(comp);
        match std::fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("mkdir", &cur)(e)),
        }
        if cpuset {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if read_file(&cur, f)?.trim().is_empty() {
                    let v = read_file(&parent, f)?;
                    write_file(&cur, f, v.trim())?;
                }
            }
        }
    }
    Ok(())
}

/// v2: enable the available controllers in subtree_control from the root down to the parent.
fn enable_here(dir: &Path) -> Result<(), CgroupError> {
    let avail = read_file(dir, "cgroup.controllers")?;
    let want: Vec<String> = avail
        .split_whitespace()
        .filter(|c| ["memory", "pids", "cpu", "io", "cpuset"].contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    write_file(dir, "cgroup.subtree_control", &want.join(" "))
}

/// Docker's default device allow-list (runc's AllowedDevices as used by moby).
const DEFAULT_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

const CPU_PERIOD_US: i64 = 100_000;

impl Cgroup {
    /// mkdir the path under every used controller (and the v2 / unified hierarchy), apply
    /// limits and the v1 device list. Fails closed: a requested limit that cannot be applied
    /// is an error, and the partly created cgroup is removed again.
    pub fn create(spec: &crate::spec::CgroupSpec, privileged: bool) -> Result<Cgroup, CgroupError> {
        create_in(layout(), spec, privileged)
    }

    /// `update` of a live container: writes the limits of `spec` that are set (its `path`
    /// names the cgroup; devices are left as they are). Validated first as at create, so a
    /// limit the host cannot apply fails before anything is written.
    pub fn update(spec: &crate::spec::CgroupSpec) -> Result<(), CgroupError> {
        check_rel(&spec.path)?;
        let layout = layout();
        let quota = validate(layout, spec)?;
        let pure_v2 = matches!(layout, Layout::V2 { .. });
        for d in dirs_for(layout, &spec.path) {
            if !d.path.is_dir() {
                return Err(io_err("open", &d.path)(io::Error::from(
                    io::ErrorKind::NotFound,
                )));
            }
            resources::write(&d, pure_v2, spec, quota)?;
        }
        Ok(())
    }

    /// The cgroup at `path` (relative, as in the spec), for later removal/inspection.
    pub fn open(path: &str) -> Cgroup {
        if check_rel(path).is_err() {
            return Cgroup { dirs: Vec::new() };
        }
        Cgroup {
            dirs: dirs_for(layout(), path),
        }
    }

    /// The v1 hierarchies of this cgroup as the container sees them under /sys/fs/cgroup
    /// (runc's v1 view): one entry per hierarchy with the container's own directory, named
    /// like the host's mount point (`memory`, `cpu,cpuacct`), with a symlink per co-mounted
    /// controller whose name differs. Empty on pure v2 and for hierarchies wharf does not use.
    pub fn v1_views(&self) -> Vec<V1View> {
        self.dirs
            .iter()
            .filter(|d| !d.v2)
            .filter_map(|d| {
                let name = d.mount.file_name()?.to_str()?.to_string();
                let links = d
                    .controllers
                    .iter()
                    .filter(|c| **c != name)
                    .cloned()
                    .collect();
                Some(V1View {
                    name,
                    dir: d.path.clone(),
                    links,
                })
            })
            .collect()
    }

    /// Move `pid` into the cgroup in every hierarchy.
    /// Opens what a new process needs to join this cgroup by itself (see
    /// `wharf_sys::process::CgroupJoin`): the v2 directory for CLONE_INTO_CGROUP and each v1
    /// hierarchy's `tasks` file. [`Cgroup::finish_join`] then does what the child could not.
    pub fn prepare_join(&self) -> Result<Join, CgroupError> {
        let mut j = Join::default();
        for d in &self.dirs {
            if d.v2 {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
                    .open(&d.path)
                    .map_err(io_err("open", &d.path))?;
                j.v2 = Some(f);
            } else if !force_disabled(Feature::SelfJoin) {
                let p = d.path.join("tasks");
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(nix::libc::O_CLOEXEC)
                    .open(&p)
                    .map_err(io_err("open", &p))?;
                let report = serde_json::json!({
                    "code": 125,
                    "message": format!("join cgroup {}: the write to its tasks file failed", d.path.display()),
                });
                let msg = std::ffi::CString::new(report.to_string()).unwrap_or_default();
                j.v1_tasks.push((f, msg));
            }
        }
        Ok(j)
    }

    /// After the child was spawned with `join`: move it (by pid) into what it could not join
    /// itself (the v2 directory when the kernel lacks CLONE_INTO_CGROUP; v1 hierarchies when
    /// self-joining is disabled).
    pub fn finish_join(&self, pid: i32, join: &Join, in_v2: bool) -> Result<(), CgroupError> {
        for d in &self.dirs {
            let done = if d.v2 {
                in_v2
            } else {
                !join.v1_tasks.is_empty()
            };
            if !done {
                write_file(&d.path, "cgroup.procs", &pid.to_string())?;
            }
        }
        Ok(())
    }

    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            write_file(&d.path, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Processes in the cgroup (union over the hierarchies; a directory that is missing or
    /// removed while being read counts as empty).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut set = BTreeSet::new();
        for d in &self.dirs {
            let p = d.path.join("cgroup.procs");
            match std::fs::read_to_string(&p) {
                Ok(s) => set.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
                // removed meanwhile (another release, the monitor's or `rm`'s): no processes
                Err(e) if vanished(&e) => {}
                Err(e) => return Err(io_err("read", &p)(e)),
            }
        }
        Ok(set.into_iter().collect())
    }

    /// SIGKILL everything left, then rmdir everywhere (retry EBUSY for up to ~1s). Missing
    /// dirs are fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        // The common case has nothing left to kill: pid 1 exited and was reaped (its pid
        // namespace took every other process with it), or another release removed the
        // cgroup already. Its directories then go at once, without a freeze/thaw of the v1
        // freezer and a read of every hierarchy's cgroup.procs (twice per foreground run).
        if self.remove_if_empty()? {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        // Freeze (v1 freezer) so a fork bomb cannot outrun the kill loop; cgroup.kill (v2,
        // Linux 5.14) kills atomically.
        let freezer = self
            .dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == "freezer") && d.path.exists());
        if let Some(f) = freezer {
            let _ = write_file(&f.path, "freezer.state", "FROZEN");
        }
        for d in self.dirs.iter().filter(|d| d.v2) {
            if d.path.join("cgroup.kill").exists() {
                let _ = write_file(&d.path, "cgroup.kill", "1");
            }
        }
        for pid in self.pids()? {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(f) = freezer {
            let _ = write_file(&f.path, "freezer.state", "THAWED");
        }
        for d in &self.dirs {
            loop {
                match std::fs::remove_dir(&d.path) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc_ebusy()) => {
                        if Instant::now() >= deadline {
                            return Err(CgroupError::Busy {
                                path: d.path.clone(),
                            });
                        }
                        for pid in self.pids()? {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => return Err(io_err("rmdir", &d.path)(e)),
                }
            }
        }
        Ok(())
    }

    /// Removes every directory of the cgroup if none holds a process: rmdir fails with EBUSY
    /// on a populated cgroup (v1 and v2), so an empty one is removed without reading it. The
    /// freezer's hierarchy goes last: when a process is found (a populated hierarchy, or one
    /// that joined meanwhile, an `exec`), nothing it is in has been removed and `false` leaves
    /// the kill to [`Cgroup::remove`]'s freeze-and-kill path. Missing directories are fine.
    fn remove_if_empty(&self) -> Result<bool, CgroupError> {
        let freezer = |d: &&Dir| d.controllers.iter().any(|c| c == "freezer");
        let order = self
            .dirs
            .iter()
            .filter(|d| !freezer(d))
            .chain(self.dirs.iter().filter(freezer));
        for d in order {
            match std::fs::remove_dir(&d.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc_ebusy()) => return Ok(false),
                Err(e) => return Err(io_err("rmdir", &d.path)(e)),
            }
        }
        Ok(true)
    }

    /// Freeze (`true`) or thaw every process of the cgroup: v1 `freezer.state`
    /// FROZEN/THAWED, else v2 `cgroup.freeze` 1/0. Waits (up to ~1s) until the v1 freezer
    /// reports the new state. Fails when neither hierarchy has a freezer for this cgroup.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let v1 = self
            .dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == "freezer") && d.path.exists());
        if let Some(f) = v1 {
            let want = if frozen { "FROZEN" } else { "THAWED" };
            write_file(&f.path, "freezer.state", want)?;
            let deadline = Instant::now() + Duration::from_secs(1);
            while read_file(&f.path, "freezer.state")?.trim() != want {
                if Instant::now() >= deadline {
                    return Err(CgroupError::Busy {
                        path: f.path.clone(),
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            return Ok(());
        }
        let v2 = self
            .dirs
            .iter()
            .find(|d| d.v2 && d.path.join("cgroup.freeze").exists());
        match v2 {
            Some(d) => write_file(&d.path, "cgroup.freeze", if frozen { "1" } else { "0" }),
            None => Err(CgroupError::MissingController {
                controller: "freezer",
                limit: "pause",
            }),
        }
    }

    /// Whether the cgroup is frozen (v1 `freezer.state` FROZEN/FREEZING, v2 `cgroup.freeze` 1).
    pub fn is_frozen(&self) -> bool {
        self.dirs.iter().any(|d| {
            if d.controllers.iter().any(|c| c == "freezer") {
                std::fs::read_to_string(d.path.join("freezer.state"))
                    .is_ok_and(|s| s.trim() != "THAWED")
            } else if d.v2 {
                std::fs::read_to_string(d.path.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            } else {
                false
            }
        })
    }

    /// Whether the kernel OOM-killed a process in this cgroup: v2 memory.events and v1
    /// memory.oom_control (4.13+) count kills (`oom_kill N`). Older v1 kernels have no
    /// counter: then a cgroup that is in OOM now (`under_oom 1`), or that hit its memory limit
    /// (`memory.failcnt` > 0) while pid 1 died of SIGKILL (`sigkilled`), was OOM-killed.
    pub fn oom_killed(&self, sigkilled: bool) -> bool {
        self.dirs.iter().any(|d| {
            let file = if d.v2 {
                "memory.events"
            } else if d.controllers.iter().any(|c| c == "memory") {
                "memory.oom_control"
            } else {
                return false;
            };
            let text = std::fs::read_to_string(d.path.join(file)).unwrap_or_default();
            let failcnt = || {
                read_file(&d.path, "memory.failcnt")
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            oom_verdict(&text, d.v2, sigkilled, failcnt)
        })
    }
}

/// See [`Cgroup::oom_killed`]; `text` is memory.events (v2) or memory.oom_control (v1).
fn oom_verdict(text: &str, v2: bool, sigkilled: bool, failcnt: impl FnOnce() -> u64) -> bool {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    let counter = if v2 || !force_disabled(Feature::OomKillCounter) {
        field("oom_kill ")
    } else {
        None
    };
    match counter {
        Some(n) => n > 0,
        None if v2 => false,
        None => field("under_oom ") == Some(1) || (sigkilled && failcnt() > 0),
    }
}

/// Whether `e` says the cgroup is gone: its directory (ENOENT), or the directory of a file
/// opened before a concurrent rmdir (kernfs then answers ENODEV).
fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(nix::errno::Errno::ENODEV as i32)
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

/// A device cgroup rule as the kernel's v1 `devices.allow` takes it: `a`, or
/// `TYPE MAJOR:MINOR ACCESS` with TYPE `a|b|c`, numbers or `*`, ACCESS a non-empty subset
/// of `rwm`.
pub fn check_device_rule(rule: &str) -> Result<(), CgroupError> {
    let bad = || CgroupError::DeviceRule {
        rule: rule.to_string(),
    };
    let parts: Vec<&str> = rule.split(' ').collect();
    let [kind, numbers, access] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |n: &str| {
        n == "*" || (!n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let ok = matches!(*kind, "a" | "b" | "c")
        && numbers
            .split_once(':')
            .is_some_and(|(ma, mi)| num(ma) && num(mi))
        && !access.is_empty()
        && access.len() <= 3
        && access.bytes().all(|b| b"rwm".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Checks every limit of `spec` against the layout before anything is written; returns the
/// CFS quota `nano_cpus` asks for.
fn validate(layout: &Layout, spec: &crate::spec::CgroupSpec) -> Result<Option<i64>, CgroupError> {
    let need = |c: &'static str, limit: &'static str| -> Result<(), CgroupError> {
        if controller_in(layout, c) {
            Ok(())
        } else {
            Err(CgroupError::MissingController {
                controller: c,
                limit,
            })
        }
    };
    if let Some(m) = spec.memory {
        if m <= 0 {
            return Err(CgroupError::InvalidLimit {
                what: "memory",
                value: m,
            });
        }
        need("memory", "memory")?;
    }
    let quota = match spec.nano_cpus {
        Some(n) => {
            let q = n.saturating_mul(CPU_PERIOD_US) / 1_000_000_000;
            if q < 1000 {
                return Err(CgroupError::InvalidLimit {
                    what: "cpu (minimum 0.01 cpus)",
                    value: n,
                });
            }
            need("cpu", "cpu")?;
            Some(q)
        }
        None => None,
    };
    if let Some(p) = spec.pids_limit {
        if p <= 0 && p != -1 {
            return Err(CgroupError::InvalidLimit {
                what: "pids",
                value: p,
            });
        }
        need("pids", "pids")?;
    }
    resources::check(layout, spec)?;
    Ok(quota)
}

fn create_in(
    layout: &Layout,
    spec: &crate::spec::CgroupSpec,
    privileged: bool,
) -> Result<Cgroup, CgroupError> {
    check_rel(&spec.path)?;
    let dirs = dirs_for(layout, &spec.path);
    let find_v1 = |c: &str| dirs.iter().find(|d| d.controllers.iter().any(|x| x == c));
    // Validate everything before touching the file system.
    let quota = validate(layout, spec)?;
    // The device allow-list is a protection, not a limit: required unless privileged (pure
    // v2: see the module doc, MKNOD is withheld instead).
    if !privileged && !matches!(layout, Layout::V2 { .. }) && find_v1("devices").is_none() {
        return Err(CgroupError::MissingController {
            controller: "devices",
            limit: "device allow-list",
        });
    }
    let cg = Cgroup { dirs: dirs.clone() };
    let r = apply(layout, &cg, spec, quota, privileged);
    if let Err(e) = r {
        let _ = cg.remove();
        return Err(e);
    }
    Ok(cg)
}

fn apply(
    layout: &Layout,
    cg: &Cgroup,
    spec: &crate::spec::CgroupSpec,
    quota: Option<i64>,
    privileged: bool,
) -> Result<(), CgroupError> {
    let pure_v2 = matches!(layout, Layout::V2 { .. });
    for d in &cg.dirs {
        mkdir_chain(d, &spec.path, d.v2 && pure_v2)?;
    }
    for d in &cg.dirs {
        let has = |c: &str| d.controllers.iter().any(|x| x == c);
        resources::write(d, pure_v2, spec, quota)?;
        if has("devices") {
            if privileged {
                write_file(&d.path, "devices.allow", "a")?;
            } else {
                write_file(&d.path, "devices.deny", "a")?;
                for dev in DEFAULT_DEVICES {
                    write_file(&d.path, "devices.allow", dev)?;
                }
                for rule in &spec.resources.devices {
                    write_file(&d.path, "devices.allow", rule)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::tests::{in_child, run_child};
    use crate::spec::CgroupSpec;
    use std::io::Write as _;

    #[test]
    fn v1_views_name_hierarchies_and_link_comounted_controllers() {
        let m = |p: &str| PathBuf::from(p);
        let v1 = vec![
            ("cpu".to_string(), m("/sys/fs/cgroup/cpu,cpuacct")),
            ("cpuacct".to_string(), m("/sys/fs/cgroup/cpu,cpuacct")),
            ("memory".to_string(), m("/sys/fs/cgroup/memory")),
            ("net_cls".to_string(), m("/sys/fs/cgroup/net_cls,net_prio")),
        ];
        let views = |layout: &Layout| {
            Cgroup {
                dirs: dirs_for(layout, "wharf/abc"),
            }
            .v1_views()
        };
        let want = vec![
            V1View {
                name: "cpu,cpuacct".into(),
                dir: m("/sys/fs/cgroup/cpu,cpuacct/wharf/abc"),
                links: vec!["cpu".into(), "cpuacct".into()],
            },
            V1View {
                name: "memory".into(),
                dir: m("/sys/fs/cgroup/memory/wharf/abc"),
                links: vec![],
            },
        ];
        assert_eq!(
            views(&Layout::V1 {
                controllers: v1.clone()
            }),
            want
        );
        // hybrid: the unified hierarchy is not part of the v1 view
        assert_eq!(
            views(&Layout::Hybrid {
                controllers: v1,
                unified: m("/sys/fs/cgroup/unified"),
            }),
            want
        );
        assert!(views(&Layout::V2 {
            root: m("/sys/fs/cgroup")
        })
        .is_empty());
    }

    fn rand_path() -> String {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("wharf-test-{}-{n}/ctr", std::process::id())
    }

    /// Remove the per-test parent directory (`wharf-test-*`) in every hierarchy.
    fn remove_parent(path: &str) {
        if let Some((parent, _)) = path.split_once('/') {
            Cgroup::open(parent).remove().expect("remove test parent");
            for d in &Cgroup::open(parent).dirs {
                assert!(!d.path.exists(), "{} left behind", d.path.display());
            }
        }
    }

    fn spec(path: &str, memory: Option<i64>, nano: Option<i64>, pids: Option<i64>) -> CgroupSpec {
        CgroupSpec {
            path: path.to_string(),
            memory,
            nano_cpus: nano,
            pids_limit: pids,
            ..Default::default()
        }
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    #[test]
    fn parses_hybrid_mountinfo() {
        let mi = "\
30 24 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let l = parse_mountinfo(mi);
        let Layout::Hybrid {
            controllers,
            unified,
        } = &l
        else {
            panic!("{l:?}")
        };
        assert_eq!(unified, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(controllers.len(), 3);
        let dirs = dirs_for(&l, "wharf/x");
        assert_eq!(dirs.len(), 3, "cpu,cpuacct share one dir: {dirs:?}");
        assert_eq!(
            dirs[0].path,
            Path::new("/sys/fs/cgroup/cpu,cpuacct/wharf/x")
        );
        assert_eq!(
            parse_mountinfo("31 24 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn rejects_bad_paths_and_missing_controllers() {
        for p in ["", "../x", "/abs", "a/../../b"] {
            assert!(matches!(
                Cgroup::create(&spec(p, None, None, None), false),
                Err(CgroupError::InvalidPath { .. })
            ));
        }
        let empty = Layout::V1 {
            controllers: vec![],
        };
        let e = create_in(
            &empty,
            &spec("wharf-test/none", Some(1 << 20), None, None),
            false,
        );
        assert!(
            matches!(
                e,
                Err(CgroupError::MissingController {
                    controller: "memory",
                    ..
                })
            ),
            "{e:?}"
        );
        let e = create_in(&empty, &spec("wharf-test/none", None, None, Some(5)), false);
        assert!(matches!(
            e,
            Err(CgroupError::MissingController {
                controller: "pids",
                ..
            })
        ));
        let e = create_in(&empty, &spec("wharf-test/none", None, None, None), false);
        assert!(matches!(
            e,
            Err(CgroupError::MissingController {
                controller: "devices",
                ..
            })
        ));
        assert!(matches!(
            Cgroup::create(&spec("wharf-test/x", None, Some(1), None), false),
            Err(CgroupError::InvalidLimit { .. })
        ));
    }

    #[test]
    fn create_limits_join_remove() {
        let path = rand_path();
        let cg = Cgroup::create(
            &spec(&path, Some(32 << 20), Some(500_000_000), Some(10)),
            false,
        )
        .expect("create");
        let l = layout();
        if let Layout::Hybrid { controllers, .. } | Layout::V1 { controllers } = l {
            let dir = |c: &str| {
                controllers
                    .iter()
                    .find(|(n, _)| n == c)
                    .map(|(_, m)| m.join(&path))
                    .expect("controller")
            };
            assert_eq!(
                read(&dir("memory").join("memory.limit_in_bytes")),
                "33554432"
            );
            let memsw = dir("memory").join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                assert_eq!(read(&memsw), "67108864");
            }
            assert_eq!(read(&dir("cpu").join("cpu.cfs_quota_us")), "50000");
            assert_eq!(read(&dir("cpu").join("cpu.cfs_period_us")), "100000");
            assert_eq!(read(&dir("pids").join("pids.max")), "10");
            let devs = read(&dir("devices").join("devices.list"));
            assert!(
                devs.contains("c 1:3 rwm") && devs.contains("c 136:* rwm"),
                "{devs}"
            );
            assert!(!devs.contains("a *:* rwm"), "{devs}");
            assert!(!read(&dir("cpuset").join("cpuset.cpus")).is_empty());
        }
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        cg.add_process(pid).expect("add");
        let pcg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("proc cgroup");
        assert!(pcg.contains(&format!("memory:/{path}\n")), "{pcg}");
        if matches!(l, Layout::Hybrid { .. }) {
            assert!(pcg.contains(&format!("0::/{path}\n")), "{pcg}");
        }
        assert_eq!(cg.pids().expect("pids"), vec![pid]);
        assert!(!cg.oom_killed(false));
        let reopened = Cgroup::open(&path);
        reopened.remove().expect("remove");
        let st = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(9), "remove() SIGKILLs what is left");
        for d in &cg.dirs {
            assert!(!d.path.exists(), "{} left behind", d.path.display());
        }
        reopened.remove().expect("second remove is fine");
        remove_parent(&path);
    }

    /// The fast path of `remove`: an empty cgroup is removed without a kill pass; a populated
    /// one is left whole (its process alive, every directory there) for the kill path.
    #[test]
    fn remove_if_empty_leaves_a_populated_cgroup_whole() {
        let path = rand_path();
        let cg =
            Cgroup::create(&spec(&path, Some(32 << 20), None, Some(10)), false).expect("create");
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        cg.add_process(pid).expect("add");
        let kept = cg.remove_if_empty();
        let alive = child.try_wait().expect("try_wait").is_none();
        let left: Vec<&Dir> = cg.dirs.iter().filter(|d| !d.path.exists()).collect();
        // the kill path must still do its work whatever the assertions below find
        cg.remove().expect("remove");
        let st = child.wait().expect("wait");
        assert!(
            !kept.expect("remove_if_empty"),
            "a populated cgroup is not empty"
        );
        assert!(alive, "the fast path kills nothing");
        assert!(
            left.is_empty(),
            "directories removed under a live process: {left:?}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(9), "remove() then SIGKILLs it");
        // empty (its process gone): removed at once, and again a no-op
        let cg = Cgroup::create(&spec(&path, Some(32 << 20), None, Some(10)), false)
            .expect("create again");
        assert!(cg.remove_if_empty().expect("empty"));
        for d in &cg.dirs {
            assert!(!d.path.exists(), "{} left behind", d.path.display());
        }
        assert!(cg.remove_if_empty().expect("gone already"));
        remove_parent(&path);
    }

    /// Two removers at once (a monitor releasing after pid 1 exited while `rm -f` releases
    /// too), and a reader (`top`) during removal: a cgroup that vanishes while being read is
    /// empty, not an error (its `cgroup.procs` then reads ENODEV; was: `rm -f` failing).
    #[test]
    fn concurrent_removal_and_reads_are_not_errors() {
        use std::error::Error as _;
        /// Removes the test's cgroups also when an assertion fails.
        struct Gone(String);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = Cgroup::open(&self.0).remove();
                if let Some((parent, _)) = self.0.split_once('/') {
                    let _ = Cgroup::open(parent).remove();
                }
            }
        }
        let path = rand_path();
        let _gone = Gone(path.clone());
        for round in 0..300 {
            let cg =
                Cgroup::create(&spec(&path, Some(32 << 20), None, None), false).expect("create");
            let other = {
                let path = path.clone();
                std::thread::spawn(move || Cgroup::open(&path).remove())
            };
            for _ in 0..20 {
                if let Err(e) = cg.pids() {
                    panic!("round {round}: pids during removal: {e}: {:?}", e.source());
                }
            }
            let mine = cg.remove();
            let theirs = other.join().expect("join");
            if let Err(e) = mine.and(theirs) {
                panic!("round {round}: remove: {e}: {:?}", e.source());
            }
        }
        remove_parent(&path);
    }

    /// Child side of the limit tests: wait for the parent to move us, then act.
    fn child_wait_go() {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }

    #[test]
    fn pids_limit_gives_eagain() {
        const NAME: &str = "cgroup::tests::pids_limit_gives_eagain";
        if in_child(NAME) {
            child_wait_go();
            let mut kids = Vec::new();
            let mut eagain = 0;
            for _ in 0..12 {
                match std::process::Command::new("/bin/sleep").arg("20").spawn() {
                    Ok(c) => kids.push(c),
                    Err(e) if e.raw_os_error() == Some(11) => eagain += 1,
                    Err(e) => eprintln!("spawn: {e}"),
                }
            }
            eprintln!("spawned {} eagain {eagain}", kids.len());
            for k in &mut kids {
                let _ = k.kill();
                let _ = k.wait();
            }
            std::process::exit(if eagain > 0 && kids.len() < 12 { 0 } else { 1 });
        }
        let path = rand_path();
        let cg = Cgroup::create(&spec(&path, None, None, Some(6)), false).expect("create");
        let mut child = run_child(NAME, std::process::Stdio::piped());
        cg.add_process(child.id() as i32).expect("add");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let st = child.wait().expect("wait");
        cg.remove().expect("remove");
        remove_parent(&path);
        assert_eq!(st.code(), Some(0), "{st:?}");
    }

    #[test]
    fn memory_limit_oom_kills() {
        const NAME: &str = "cgroup::tests::memory_limit_oom_kills";
        if in_child(NAME) {
            child_wait_go();
            let mut v = vec![0u8; 64 << 20];
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            let s: u64 = v.iter().step_by(4096).map(|b| u64::from(*b)).sum();
            std::process::exit(if s > 0 { 3 } else { 4 });
        }
        let path = rand_path();
        let cg = Cgroup::create(&spec(&path, Some(32 << 20), None, None), false).expect("create");
        let mut child = run_child(NAME, std::process::Stdio::piped());
        cg.add_process(child.id() as i32).expect("add");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let st = child.wait().expect("wait");
        let oom = cg.oom_killed(true);
        cg.remove().expect("remove");
        remove_parent(&path);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(9), "{st:?}");
        assert!(oom, "oom_kill counter");
    }

    #[test]
    fn oom_verdict_with_and_without_the_kill_counter() {
        // 4.13+ v1 and v2: the counter decides.
        let new_v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        assert!(oom_verdict(new_v1, false, false, || 0));
        assert!(!oom_verdict(
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            false,
            true,
            || 9
        ));
        assert!(oom_verdict(
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
            true,
            false,
            || 0
        ));
        assert!(!oom_verdict("low 0\noom 0\noom_kill 0\n", true, true, || 0));
        // 3.10 / 4.x before 4.13: no counter; the limit was hit and pid 1 died of SIGKILL.
        let old = "oom_kill_disable 0\nunder_oom 0\n";
        assert!(oom_verdict(old, false, true, || 12));
        assert!(
            !oom_verdict(old, false, true, || 0),
            "killed, but never at the limit"
        );
        assert!(
            !oom_verdict(old, false, false, || 12),
            "hit the limit, exited on its own"
        );
        assert!(oom_verdict(
            "oom_kill_disable 1\nunder_oom 1\n",
            false,
            false,
            || 0
        ));
    }

    /// The pure-v2 code path on a real cgroup2 hierarchy: this host's unified hierarchy has
    /// no controllers (they are bound to v1), so a limit must fail closed, naming the
    /// controller, while tracking (mkdir, join, remove) works.
    #[test]
    fn pure_v2_layout_on_the_real_unified_hierarchy() {
        let Layout::Hybrid { unified, .. } = layout() else {
            return; // only meaningful on the hybrid hosts CI runs on
        };
        let v2 = Layout::V2 {
            root: unified.clone(),
        };
        let path = rand_path();
        let err = create_in(&v2, &spec(&path, Some(32 << 20), None, None), true)
            .expect_err("no memory controller on this v2 hierarchy");
        assert!(
            matches!(
                err,
                CgroupError::MissingController {
                    controller: "memory",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!unified.join(&path).exists(), "nothing created on failure");
        let cg = create_in(&v2, &spec(&path, None, None, None), true).expect("tracking only");
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        cg.add_process(child.id() as i32).expect("join");
        let procs = read(&unified.join(&path).join("cgroup.procs"));
        assert_eq!(procs, child.id().to_string());
        cg.remove().expect("remove kills and rmdirs");
        let _ = child.wait();
        assert!(!unified.join(&path).exists());
        if let Some((parent, _)) = path.split_once('/') {
            let _ = std::fs::remove_dir(unified.join(parent));
            assert!(!unified.join(parent).exists());
        }
    }
}
