//! Reliability under load and faults, the figures issue 10 asks for, as tests: many
//! `run --rm` and `run -d`/`rm -f` cycles leak nothing (mounts, cgroups, processes, ingest
//! files, records); 100 parallel CLI invocations (run, rm, images, pull from a local registry,
//! load) leave a consistent store; kill -9 of the CLI or the monitor at random points of pull,
//! load, run and rm leaves a store the next command repairs or reports.
//!
//! Counts only this test's objects: its own WHARF_ROOT, and containers identified by ids it
//! saw. `WHARF_RELIABILITY_SCALE` (default 1) multiplies the cycle counts.

#![allow(clippy::unwrap_used)]

mod common;

use common::registry::Serve;
use common::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn scale() -> usize {
    std::env::var("WHARF_RELIABILITY_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Everything of this store's that could leak, as readable lines (empty: nothing leaked).
fn leaks(w: &Wharf, ids: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for m in mounts_under(w.dir.path()) {
        out.push(format!("mount {m}"));
    }
    // cgroup dirs of any container id we saw (short ids match by prefix)
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let Ok(cg) = std::fs::read_dir(h.path().join("wharf")) else {
                continue;
            };
            for e in cg.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if ids.iter().any(|id| name.starts_with(id.as_str())) {
                    out.push(format!("cgroup {}", e.path().display()));
                }
            }
        }
    }
    // processes: monitors name the root in their argv; container processes sit in our cgroups
    let root = w.root().display().to_string();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if pid.parse::<u32>().is_err() || pid == std::process::id().to_string() {
                continue;
            }
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            let ours = cmd.contains(&root)
                || cg.lines().any(|l| {
                    l.rsplit('/')
                        .next()
                        .is_some_and(|leaf| ids.iter().any(|id| leaf.starts_with(id.as_str())))
                });
            if ours {
                out.push(format!("process {pid}: {cmd}"));
            }
        }
    }
    for d in ["ingest", "containers", "meta/containers"] {
        if let Ok(rd) = std::fs::read_dir(w.root().join(d)) {
            for e in rd.flatten() {
                out.push(format!("{d}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(w.root().join("snapshots")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("tmp") || n.starts_with('.') {
                out.push(format!("snapshots/{n}"));
            }
        }
    }
    out
}

/// Every blob's content matches its name (nothing torn or unverified became visible).
fn blobs_verify(w: &Wharf) {
    let dir = w.root().join("blobs/sha256");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(hex(&Sha256::digest(&data)), name, "blob {name} is corrupt");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs `jobs` closures on `threads` threads; each returns Err(description) on failure.
fn parallel<F>(threads: usize, jobs: Vec<F>) -> Vec<String>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let queue = Arc::new(Mutex::new(jobs));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (q, e) = (queue.clone(), errors.clone());
            std::thread::spawn(move || loop {
                let job = q.lock().unwrap().pop();
                let Some(job) = job else { break };
                if let Err(msg) = job() {
                    e.lock().unwrap().push(msg);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    Arc::try_unwrap(errors).unwrap().into_inner().unwrap()
}

fn cmd(w: &Wharf, args: &[&str]) -> Command {
    let mut c = w.command(args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[test]
fn run_rm_and_detached_cycles_leak_nothing() {
    let w = Arc::new(Wharf::new().with_busybox());
    let ids = Arc::new(Mutex::new(BTreeSet::new()));
    let runs = 1000 * scale();
    let jobs: Vec<_> = (0..runs)
        .map(|_| {
            let (w, ids) = (w.clone(), ids.clone());
            move || {
                let o = w.run(&["run", "--rm", "busybox", "hostname"]);
                let id = stdout(&o).trim().to_string();
                if !o.status.success() || id.len() != 12 {
                    return Err(format!("run --rm: {:?} {id:?} {}", o.status, stderr(&o)));
                }
                ids.lock().unwrap().insert(id);
                Ok(())
            }
        })
        .collect();
    let errors = parallel(2, jobs);
    assert!(
        errors.is_empty(),
        "{} failures, first: {:?}",
        errors.len(),
        errors.first()
    );
    let detached = 200 * scale();
    let jobs: Vec<_> = (0..detached)
        .map(|_| {
            let (w, ids) = (w.clone(), ids.clone());
            move || {
                let o = w.run(&["run", "-d", "busybox", "sleep", "1000"]);
                let id = stdout(&o).trim().to_string();
                if !o.status.success() || id.len() != 64 {
                    return Err(format!("run -d: {:?} {}", o.status, stderr(&o)));
                }
                ids.lock().unwrap().insert(id.clone());
                let o = w.run(&["rm", "-f", &id]);
                if !o.status.success() {
                    return Err(format!("rm -f {id}: {}", stderr(&o)));
                }
                Ok(())
            }
        })
        .collect();
    let errors = parallel(2, jobs);
    assert!(
        errors.is_empty(),
        "{} failures, first: {:?}",
        errors.len(),
        errors.first()
    );
    let ids = ids.lock().unwrap().clone();
    assert_eq!(ids.len(), runs + detached, "every container had its own id");
    // A monitor may take a moment to exit after rm -f returned.
    let mut left = Vec::new();
    let clean = eventually(10, || {
        left = leaks(&w, &ids);
        left.is_empty()
    });
    assert!(
        clean,
        "leaked after {runs} run --rm and {detached} run -d/rm -f: {left:#?}"
    );
    assert_eq!(w.ok(&["ps", "-aq"]), "");
}

/// A registry with busybox pushed as `<addr>/bb:1`, and a `save` archive of it.
struct Fixture {
    _reg: Serve,
    reg_dir: tempfile::TempDir,
    name: String,
    archive: std::path::PathBuf,
}

fn fixture(w: &Wharf) -> Fixture {
    let reg_dir = tmp_dir("wharf-rel-reg-");
    let port = common::registry::free_port("127.0.0.1");
    let addr = format!("127.0.0.1:{port}");
    let mut c = Command::new(Wharf::bin());
    c.args(["registry", "serve", "--addr", &addr, "--root"])
        .arg(reg_dir.path().join("reg"));
    let reg = Serve::start(c);
    let name = format!("{addr}/bb:1");
    w.ok(&["tag", "busybox", &name]);
    w.ok(&["push", &name]);
    let archive = reg_dir.path().join("bb.tar");
    w.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    w.ok(&["rmi", &name]);
    Fixture {
        _reg: reg,
        reg_dir,
        name,
        archive,
    }
}

#[test]
fn parallel_cli_invocations_keep_the_store_consistent() {
    let w = Arc::new(Wharf::new().with_busybox());
    let fx = fixture(&w);
    let archive = fx.archive.display().to_string();
    let mut jobs: Vec<Box<dyn FnOnce() -> Result<(), String> + Send>> = Vec::new();
    let check = |what: String, o: std::process::Output| {
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("{what}: {:?} {}", o.status.code(), stderr(&o)))
        }
    };
    for i in 0..20 {
        let w1 = w.clone();
        jobs.push(Box::new(move || {
            check(
                format!("run --rm #{i}"),
                w1.run(&["run", "--rm", "busybox", "true"]),
            )
        }));
        let w2 = w.clone();
        jobs.push(Box::new(move || {
            let o = w2.run(&["run", "-d", "busybox", "sleep", "100"]);
            let id = stdout(&o).trim().to_string();
            check(format!("run -d #{i}"), o)?;
            check(format!("rm -f #{i}"), w2.run(&["rm", "-f", &id]))
        }));
        let w3 = w.clone();
        jobs.push(Box::new(move || {
            check(format!("images #{i}"), w3.run(&["images"]))
        }));
        let (w4, name) = (w.clone(), fx.name.clone());
        jobs.push(Box::new(move || {
            check(format!("pull #{i}"), w4.run(&["pull", &name]))
        }));
        let (w5, a) = (w.clone(), archive.clone());
        jobs.push(Box::new(move || {
            check(format!("load #{i}"), w5.run(&["load", "-i", &a]))
        }));
    }
    assert_eq!(jobs.len(), 100);
    // all 100 at once
    let errors = parallel(100, jobs);
    assert!(errors.is_empty(), "{errors:#?}");
    let images = w.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.contains("busybox:latest") && images.contains(&fx.name),
        "{images}"
    );
    assert_eq!(w.ok(&["run", "--rm", &fx.name, "echo", "ok"]), "ok\n");
    assert_eq!(w.ok(&["ps", "-aq"]), "");
    blobs_verify(&w);
    let mut left = Vec::new();
    assert!(
        eventually(10, || {
            left = leaks(&w, &BTreeSet::new());
            left.is_empty()
        }),
        "{left:#?}"
    );
    drop(fx.reg_dir);
}

/// A small deterministic generator (the seed is printed so a failure can be replayed).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn pids_of_monitors(w: &Wharf) -> Vec<i32> {
    let root = w.root().display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("__monitor") && cmd.contains(&root) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn kill_9_at_random_points_leaves_a_store_the_next_command_repairs() {
    let w = Wharf::new().with_busybox();
    let fx = fixture(&w);
    let seed = std::env::var("WHARF_RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("WHARF_RELIABILITY_SEED={seed}");
    let mut rng = Rng(seed);
    let archive = fx.archive.display().to_string();
    let rounds = 40 * scale();
    for round in 0..rounds {
        let op = rng.next(6);
        let mut c = match op {
            0 => {
                let _ = w.run(&["rmi", "-f", &fx.name]);
                cmd(&w, &["pull", &fx.name])
            }
            1 => {
                let _ = w.run(&["rmi", "-f", &fx.name]);
                cmd(&w, &["load", "-i", &archive])
            }
            2 => cmd(&w, &["run", "--rm", "busybox", "sleep", "0.3"]),
            3 => cmd(&w, &["run", "-d", "busybox", "sleep", "1000"]),
            4 => {
                let id = w.ok(&["run", "-d", "busybox", "sleep", "1000"]);
                cmd(&w, &["rm", "-f", id.trim()])
            }
            _ => {
                // the monitor, not the CLI
                w.ok(&["run", "-d", "busybox", "sleep", "1000"]);
                let mons = pids_of_monitors(&w);
                if let Some(p) = mons.get(rng.next(mons.len().max(1) as u64) as usize) {
                    std::thread::sleep(Duration::from_millis(rng.next(50)));
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                continue;
            }
        };
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.next(200)));
        let _ = child.kill();
        let _ = child.wait();
        // The next commands must work or report, never hang or crash.
        for args in [&["ps", "-a"][..], &["images"]] {
            let o = w.run(args);
            assert!(
                o.status.success(),
                "round {round} (op {op}, seed {seed}): wharf {args:?}: {}",
                stderr(&o)
            );
        }
    }
    // Repair: everything removable is removed, the images arrive again and run.
    let ids: Vec<String> = w
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let mut a = vec!["rm", "-f"];
        a.extend(ids.iter().map(String::as_str));
        w.ok(&a);
    }
    let _ = w.run(&["rmi", "-f", &fx.name]);
    w.ok(&["pull", &fx.name]);
    w.ok(&["load", "-i", &archive]);
    assert_eq!(
        w.ok(&["run", "--rm", &fx.name, "echo", "ok"]),
        "ok\n",
        "seed {seed}"
    );
    assert_eq!(
        w.ok(&["run", "--rm", "busybox", "echo", "ok"]),
        "ok\n",
        "seed {seed}"
    );
    blobs_verify(&w);
    let ids: BTreeSet<String> = ids.into_iter().collect();
    let mut left = Vec::new();
    assert!(
        eventually(10, || {
            left = leaks(&w, &ids);
            left.is_empty()
        }),
        "seed {seed}: {left:#?}"
    );
}
