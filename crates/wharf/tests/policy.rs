//! The admin policy through the real binary: each rule refused and allowed, the audit log's
//! lines, malformed files failing closed, records and exec re-checked, the image paths
//! (pull, push, load, import) against `[registries]`.
#![allow(clippy::unwrap_used)]

mod common;

use common::policy::Pol;
use common::registry::Serve;
use common::*;
use std::path::PathBuf;
use std::process::Command;

/// `run --rm -u USER -l owner=ops -m MEM --pids-limit PIDS EXTRA busybox CMD`.
fn run_args<'a>(
    user: &'a str,
    mem: &'a str,
    pids: &'a str,
    extra: &[&'a str],
    cmd: &[&'a str],
) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "--rm",
        "-u",
        user,
        "-l",
        "owner=ops",
        "-m",
        mem,
        "--pids-limit",
        pids,
    ];
    v.extend_from_slice(extra);
    v.push("busybox");
    v.extend_from_slice(cmd);
    v
}

fn containers(w: &Wharf) -> usize {
    w.ok(&["ps", "-aq"]).lines().count()
}

#[test]
fn run_rules_refused_and_allowed() {
    let w = Wharf::new().with_busybox();
    let data = w.dir.path().join("data");
    let other = w.dir.path().join("other");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    // a symlink inside the allowed directory that leads out of it
    std::os::unix::fs::symlink(&other, data.join("escape")).unwrap();
    let p = Pol::new(
        &w,
        &format!(
            "[run]\nprivileged = false\nhost_network = false\nseccomp_unconfined = false\n\
             cap_add = [\"NET_BIND_SERVICE\"]\nbind_mounts = [\"{}:ro\"]\nnon_root = true\n\
             required_labels = [\"owner\"]\n[limits]\nmemory = \"64m\"\npids = 100\n",
            data.display()
        ),
    );
    let bind = format!("{}:/d:ro", data.display());
    // allowed: every rule satisfied
    assert_eq!(
        p.ok(&run_args("app", "32m", "50", &[], &["id", "-u"]))
            .trim(),
        "1000"
    );
    p.ok(&run_args(
        "app",
        "32m",
        "50",
        &["-v", &bind, "--cap-add", "net_bind_service"],
        &["true"],
    ));
    let before = containers(&w);
    let rw = format!("{}:/d", data.display());
    let outside = format!("{}:/d:ro", other.display());
    let escape = format!("{}/escape:/d:ro", data.display());
    for (user, mem, pids, extra, rule) in [
        ("app", "32m", "50", vec!["--privileged"], "run.privileged"),
        (
            "app",
            "32m",
            "50",
            vec!["--network", "host"],
            "run.host_network",
        ),
        (
            "app",
            "32m",
            "50",
            vec!["--security-opt", "seccomp=unconfined"],
            "run.seccomp_unconfined",
        ),
        (
            "app",
            "32m",
            "50",
            vec!["--cap-add", "SYS_ADMIN"],
            "run.cap_add",
        ),
        ("app", "32m", "50", vec!["-v", &rw], "run.bind_mounts"),
        ("app", "32m", "50", vec!["-v", &outside], "run.bind_mounts"),
        ("app", "32m", "50", vec!["-v", &escape], "run.bind_mounts"),
        ("0", "32m", "50", vec![], "run.non_root"),
        ("root", "32m", "50", vec![], "run.non_root"),
        ("nosuchuser", "32m", "50", vec![], "run.non_root"),
        ("app", "128m", "50", vec![], "limits.memory"),
        ("app", "32m", "-1", vec![], "limits.pids"),
    ] {
        p.refused(&run_args(user, mem, pids, &extra, &["true"]), rule);
    }
    // the image's default user is root
    p.refused(
        &[
            "run",
            "--rm",
            "-l",
            "owner=x",
            "-m",
            "8m",
            "--pids-limit",
            "5",
            "busybox",
            "true",
        ],
        "run.non_root",
    );
    p.refused(
        &[
            "create",
            "-u",
            "app",
            "-m",
            "8m",
            "--pids-limit",
            "5",
            "busybox",
            "true",
        ],
        "run.required_labels",
    );
    assert_eq!(containers(&w), before, "a refused create left a record");
    // audit: one line per decision with who/what/rule/result
    let lines = p.audit_lines();
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| l["result"] == "refused")
        .map(|l| l["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(refused.len(), 14, "{refused:?}");
    assert!(refused.contains(&"run.cap_add".to_string()));
    let allowed = lines.iter().filter(|l| l["result"] == "allowed").count();
    assert_eq!(allowed, 4, "create + start for each allowed run");
    let first = &lines[0];
    assert_eq!(first["uid"], 0);
    assert_eq!(first["action"], "create");
    assert_eq!(first["target"], "busybox");
    assert!(first["pid"].as_u64().unwrap() > 0);
    assert!(first["command"].as_str().unwrap().contains(" run "));
}

#[test]
fn malformed_policy_fails_closed() {
    let w = Wharf::new().with_busybox();
    // a container created before the file broke
    let id = w.ok(&["create", "busybox", "true"]);
    let id = id.trim();
    let p = Pol::new(&w, "[run]\nprivileged = false\nprivilegd = true\n");
    for args in [
        vec!["run", "--rm", "busybox", "true"],
        vec!["start", id],
        vec!["create", "busybox", "true"],
    ] {
        let o = p.run(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} ran under a broken policy");
        assert!(
            err.contains("line 3") && err.contains("`privilegd`"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(containers(&w), 1);
    let st = p.ok(&["inspect", "-f", "{{.State.Status}}", id]);
    assert_eq!(st.trim(), "created");
    // looking and cleaning up still work
    p.ok(&["ps", "-a"]);
    let o = p.run(&["policy", "show"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("line 3"), "{}", stdout(&o));
    // `policy check FILE` validates before install
    let o = p.run(&["policy", "check", p.file.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("line 3, key `privilegd`"),
        "{}",
        stderr(&o)
    );
    let good = w.dir.path().join("good.toml");
    std::fs::write(&good, "[run]\nprivileged = false\n").unwrap();
    let out = p.ok(&["policy", "check", good.to_str().unwrap()]);
    assert!(out.contains("is valid") && out.contains("privileged           refused"));
    // a bad value names its key and line too
    p.set("[limits]\n\nmemory = \"lots\"\n");
    let o = p.run(&["run", "--rm", "busybox", "true"]);
    assert!(
        stderr(&o).contains("line 3, key `memory`"),
        "{}",
        stderr(&o)
    );
    // the refusal is audited
    let lines = p.audit_lines();
    assert!(lines
        .iter()
        .all(|l| l["rule"] == "policy-file" && l["result"] == "refused"));
    // fixed: runs again
    p.set("");
    p.ok(&["start", "-a", id]);
    p.ok(&["rm", id]);
}

#[test]
fn start_and_exec_recheck_records_made_before_the_policy() {
    let w = Wharf::new().with_busybox();
    let created = w.ok(&["create", "--privileged", "busybox", "true"]);
    let running = w.ok(&["run", "-d", "-u", "app", "busybox", "sleep", "30"]);
    let (created, running) = (created.trim(), running.trim());
    let p = Pol::new(&w, "[run]\nprivileged = false\nnon_root = true\n");
    p.refused(&["start", created], "run.privileged");
    // exec: the container is fine, the exec's user is checked against its own passwd
    assert_eq!(p.ok(&["exec", running, "id", "-u"]).trim(), "1000");
    p.refused(&["exec", "-u", "0", running, "id"], "run.non_root");
    p.refused(&["exec", "-u", "root", running, "id"], "run.non_root");
    // a user the container added to its passwd with uid 0 is still root
    w.ok(&[
        "exec",
        "-u",
        "0",
        running,
        "sh",
        "-c",
        "echo admin:x:0:0::/:/bin/sh >> /etc/passwd",
    ]);
    p.refused(&["exec", "-u", "admin", running, "id"], "run.non_root");
    let actions: Vec<String> = p
        .audit_lines()
        .iter()
        .map(|l| {
            format!(
                "{}:{}",
                l["action"].as_str().unwrap(),
                l["result"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        actions.contains(&"start:refused".to_string()),
        "{actions:?}"
    );
    assert!(actions.contains(&"exec:refused".to_string()), "{actions:?}");
    assert!(actions.contains(&"exec:allowed".to_string()), "{actions:?}");
    w.ok(&["rm", "-f", running, created]);
}

#[test]
fn forced_protections_nosuid_and_no_new_privileges() {
    let w = Wharf::new().with_busybox();
    let p = Pol::new(&w, "[run]\nno_new_privileges = true\nnosuid = true\n");
    let out = p.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges=false",
        "busybox",
        "sh",
        "-c",
        "grep NoNewPrivs /proc/self/status; grep ' / ' /proc/self/mounts",
    ]);
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let root = out.lines().find(|l| l.contains(" / ")).unwrap();
    assert!(root.contains("nosuid"), "{root}");
    // the same on the old-kernel paths (legacy mount API, no openat2)
    let out = p
        .cmd(&["run", "--rm", "busybox", "grep", " / ", "/proc/self/mounts"])
        .env("WHARF_DISABLE", "mountapi,openat2,clone3")
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("nosuid"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    // without the policy: docker's rules (no_new_privileges=false is honoured)
    let out = w.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges=false",
        "busybox",
        "sh",
        "-c",
        "grep NoNewPrivs /proc/self/status; grep ' / ' /proc/self/mounts",
    ]);
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(!out
        .lines()
        .find(|l| l.contains(" / "))
        .unwrap()
        .contains("nosuid"));
    // exec gets it too
    let id = p.ok(&[
        "run",
        "-d",
        "--security-opt",
        "no-new-privileges=false",
        "busybox",
        "sleep",
        "30",
    ]);
    let out = p.ok(&["exec", id.trim(), "grep", "NoNewPrivs", "/proc/self/status"]);
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    w.ok(&["rm", "-f", id.trim()]);
}

#[test]
fn registries_for_pull_push_load_import_and_run() {
    let w = Wharf::new().with_busybox();
    let reg_dir = w.dir.path().join("reg");
    let port = common::registry::free_port("127.0.0.1");
    let addr = format!("127.0.0.1:{port}");
    let mut c = Command::new(Wharf::bin());
    c.args(["registry", "serve", "--addr", &addr, "--root"])
        .arg(&reg_dir);
    let _reg = Serve::start(c);
    let name = format!("{addr}/bb:1");
    w.ok(&["tag", "busybox", &name]);
    let p = Pol::new(&w, "[registries]\nallow = [\"registry.local:5000\"]\n");
    p.refused(&["push", &name], "registries.allow");
    p.set(&format!("[registries]\nallow = [\"{addr}\"]\n"));
    p.ok(&["push", &name]);
    let archive = w.dir.path().join("bb.tar");
    w.ok(&["save", "-o", archive.to_str().unwrap(), &name, "busybox"]);
    w.ok(&["rmi", &name]);
    // pull: only allowed registries, and pinned by digest when required
    p.set(&format!("[registries]\nallow = [\"{addr}/other\"]\n"));
    p.refused(&["pull", &name], "registries.allow");
    p.set(&format!(
        "[registries]\nallow = [\"{addr}\"]\nrequire_digest = true\n"
    ));
    p.refused(&["pull", &name], "registries.require_digest");
    w.ok(&["pull", &name]);
    let inspect: serde_json::Value =
        serde_json::from_str(&w.ok(&["image", "inspect", &name])).unwrap();
    let pinned = inspect[0]["RepoDigests"][0].as_str().unwrap().to_string();
    assert!(pinned.contains("@sha256:"), "{pinned}");
    p.ok(&["pull", &pinned]);
    // run: by tag refused (not pinned), by digest allowed, docker.io refused
    p.refused(&["run", "--rm", &name, "true"], "registries.require_digest");
    p.ok(&["run", "--rm", &pinned, "true"]);
    p.refused(&["run", "--rm", "busybox", "true"], "registries.allow");
    // import with a name outside the allowed registries
    let tar = w.dir.path().join("rootfs.tar");
    write_busybox_tar(&tar);
    p.refused(
        &["import", tar.to_str().unwrap(), "quay.io/x/y:1"],
        "registries.allow",
    );
    // load: the refused name does not stay, the allowed one does
    w.ok(&["rmi", "-f", &name, "busybox"]);
    let o = p.refused(
        &["load", "-i", archive.to_str().unwrap()],
        "registries.allow",
    );
    drop(o);
    let tags = w.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(tags.contains(&format!("{addr}/bb:1")), "{tags}");
    assert!(!tags.contains("busybox:latest"), "{tags}");
    // a refused name that named another image before the load is given back to it
    let other = w.dir.path().join("other.tar");
    write_busybox_tar_with(&other, &["etc/group"], &|_| {});
    let before = w.ok(&["import", other.to_str().unwrap(), "busybox:latest"]);
    p.refused(
        &["load", "-i", archive.to_str().unwrap()],
        "registries.allow",
    );
    let now = w.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox:latest"]);
    assert_eq!(now.trim(), before.trim());
}

#[test]
fn audit_log_rotates() {
    let w = Wharf::new().with_busybox();
    let p = Pol::new(
        &w,
        "[run]\nprivileged = false\n[audit]\nmax_size = \"1k\"\n",
    );
    for _ in 0..6 {
        p.refused(
            &["create", "--privileged", "busybox", "true"],
            "run.privileged",
        );
    }
    let rotated = PathBuf::from(format!("{}.1", p.audit.display()));
    let cur = std::fs::metadata(&p.audit).unwrap().len();
    assert!(rotated.exists(), "no rotation");
    assert!(cur <= 1024, "{cur}");
    let all =
        std::fs::read_to_string(&rotated).unwrap() + &std::fs::read_to_string(&p.audit).unwrap();
    for l in all.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["rule"], "run.privileged");
    }
    // concurrent writers and rotators: every line stays whole, and no rotation throws away
    // a fresh log (what is left in both files is at least the last max_size of lines)
    p.set("[run]\nprivileged = false\n[audit]\nmax_size = \"4k\"\n");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10 {
                    p.refused(
                        &["create", "--privileged", "busybox", "true"],
                        "run.privileged",
                    );
                }
            });
        }
    });
    let cur = std::fs::read_to_string(&p.audit).unwrap();
    let old = std::fs::read_to_string(&rotated).unwrap();
    // two writers may both find room for their line: a file may pass max_size by a line each
    assert!(
        cur.len() <= 4096 + 4 * 1024 && old.len() <= 4096 + 4 * 1024,
        "{} {}",
        cur.len(),
        old.len()
    );
    for l in old.lines().chain(cur.lines()) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(v["result"], "refused");
    }
    assert!(
        old.len() + cur.len() > 4096,
        "a rotation lost the previous log"
    );
}

#[test]
fn policy_check_explains() {
    let w = Wharf::new().with_busybox();
    let p = Pol::new(
        &w,
        "[run]\nprivileged = false\nnon_root = true\n[limits]\nrequired = [\"memory\"]\n",
    );
    let o = p.run(&["policy", "check", "--privileged", "busybox"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for rule in ["run.privileged", "run.non_root", "limits.required"] {
        assert!(out.contains(rule), "{out}");
    }
    let out = p.ok(&["policy", "check", "-u", "app", "-m", "8m", "busybox", "id"]);
    assert!(out.starts_with("allowed"), "{out}");
    // what the policy forces is said too
    p.set("[run]\nnosuid = true\nno_new_privileges = true\n");
    let out = p.ok(&["policy", "check", "busybox"]);
    assert!(
        out.contains("forced on the container: no_new_privileges, nosuid rootfs"),
        "{out}"
    );
    p.set("[run]\nprivileged = false\nnon_root = true\n[limits]\nrequired = [\"memory\"]\n");
    // nothing was created, nothing logged by a check
    assert_eq!(containers(&w), 0);
    assert!(p.audit_lines().is_empty());
    let show = p.ok(&["policy", "show"]);
    assert!(show.contains("non_root             true"), "{show}");
}

/// The checks on the start path stay well under the 0.5 ms budget: the median of 200 start
/// checks in-process (the engine's own entry point, audit line included), debug build.
#[test]
fn start_checks_are_cheap() {
    let w = Wharf::new().with_busybox();
    let id = w.ok(&["create", "-u", "1000", "-m", "64m", "busybox", "true"]);
    let file = w.dir.path().join("policy.toml");
    std::fs::write(
        &file,
        format!(
            "[run]\nprivileged = false\nhost_network = false\nnon_root = true\n\
             no_new_privileges = true\nnosuid = true\ncap_add = []\nbind_mounts = \"deny\"\n\
             [limits]\nmemory = \"1g\"\npids = 4096\n[registries]\nallow = [\"docker.io\"]\n\
             [audit]\npath = \"{}\"\n",
            w.dir.path().join("audit.log").display()
        ),
    )
    .unwrap();
    let mut engine = wharf_engine::Engine::open(wharf_engine::EngineOptions {
        root: w.root(),
        run_root: w.run_root(),
        debug: false,
    })
    .unwrap();
    engine.set_policy(wharf_engine::policy::Loaded::load(&file));
    let rec = engine.container(id.trim()).unwrap().record;
    let mut times: Vec<std::time::Duration> = (0..200)
        .map(|_| {
            let t = std::time::Instant::now();
            engine.policy_start(&rec).unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    assert!(median.as_micros() < 500, "median start check {median:?}");
    // a user given by name is resolved in the image's passwd: still cheap
    let id = w.ok(&["create", "-u", "app", "-m", "64m", "busybox", "true"]);
    let rec = engine.container(id.trim()).unwrap().record;
    let t = std::time::Instant::now();
    for _ in 0..50 {
        engine.policy_start(&rec).unwrap();
    }
    eprintln!(
        "start check: median {median:?}, by-name user {:?} each",
        t.elapsed() / 50
    );
    let lines = std::fs::read_to_string(w.dir.path().join("audit.log")).unwrap();
    assert_eq!(lines.lines().count(), 250);
}

/// A restart by the monitor is checked again: the container made its user root in its own
/// passwd, the next start is refused (and logged by the monitor); a detached start is decided
/// and logged in the caller's process.
#[test]
fn monitor_restart_is_rechecked() {
    let w = Wharf::new().with_busybox();
    let p = Pol::new(&w, "[run]\nnon_root = true\n");
    let id = p.ok(&[
        "run",
        "-d",
        "--restart",
        "always",
        "-u",
        "app",
        "busybox",
        "sleep",
        "1",
    ]);
    let id = id.trim();
    let first = p.audit_lines();
    assert!(
        first.iter().any(|l| l["action"] == "start"
            && l["result"] == "allowed"
            && l["command"].as_str().unwrap().contains(" run -d ")),
        "{first:?}"
    );
    // as root, without the policy: app becomes uid 0 in the container's passwd
    w.ok(&[
        "exec",
        "-u",
        "0",
        id,
        "sh",
        "-c",
        "echo app:x:0:0::/:/bin/sh > /etc/passwd",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let refused = loop {
        let r = p.audit_lines().into_iter().find(|l| {
            l["action"] == "start" && l["result"] == "refused" && l["rule"] == "run.non_root"
        });
        if let Some(r) = r {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            p.audit_lines()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        refused["command"].as_str().unwrap().contains("__monitor"),
        "{refused}"
    );
    assert!(refused["reason"]
        .as_str()
        .unwrap()
        .contains("resolves to uid 0"));
    w.ok(&["rm", "-f", id]);
}

/// Under a pids maximum, wharf's default pids limit is a protection, not a default: a host
/// without the pids controller fails the start instead of running the container unlimited.
#[test]
fn pids_maximum_makes_the_default_limit_explicit() {
    let w = Wharf::new().with_busybox();
    let p = Pol::new(&w, "[limits]\npids = 4096\n");
    p.ok(&["run", "--rm", "busybox", "true"]);
    let no_pids = |c: &mut Command| {
        c.env("WHARF_DISABLE", "cgroup.pids");
    };
    let mut c = w.command(&["run", "--rm", "busybox", "true"]);
    no_pids(&mut c);
    let o = c.output().unwrap();
    assert!(o.status.success(), "without a policy: {}", stderr(&o));
    let mut c = p.cmd(&["run", "--rm", "busybox", "true"]);
    no_pids(&mut c);
    let o = c.output().unwrap();
    assert!(!o.status.success(), "ran without a pids limit");
    assert!(stderr(&o).contains("pids"), "{}", stderr(&o));
}

/// `[run] published_ports`: a host port given with `-p` outside the range is refused at
/// create; a port chosen at start comes from inside it (daemon.json's range narrowed); a
/// daemon range that misses it refuses the start, naming the rule; nothing is left behind.
/// `host_network = false` also refuses joining a container that is in the host's namespace.
#[test]
fn published_ports_and_joined_host_network() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    // inside daemon.json's default range (49153-65535), distinct per run
    let low = 49153 + common::net::free_port() % 16000;
    let p = Pol::new(
        &w,
        &format!(
            "[run]\npublished_ports = \"{low}-{}\"\nhost_network = false\n",
            low + 4
        ),
    );
    let outside = format!("{}:80", low + 5);
    p.refused(
        &["run", "--rm", "-p", &outside, "busybox", "true"],
        "run.published_ports",
    );
    p.refused(
        &[
            "create",
            "-p",
            &format!("{}-{}:80", low, low + 5),
            "busybox",
            "true",
        ],
        "run.published_ports",
    );
    // allocated from the intersection of daemon.json's default range and the rule's
    let id = p
        .ok(&["run", "-d", "-p", "80", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let port = p.ok(&["port", &id, "80"]);
    let hp: u16 = port.trim().rsplit_once(':').unwrap().1.parse().unwrap();
    assert!((low..=low + 4).contains(&hp), "{port}");
    p.ok(&["rm", "-f", &id]);
    assert_eq!(common::net::leftovers(&w, &id), Vec::<String>::new());
    // a daemon range the rule does not meet: the start is refused by the rule
    let cfg = w.dir.path().join("daemon.json");
    std::fs::write(&cfg, "{\"published-port-range\": \"1000-1010\"}").unwrap();
    let o = p
        .cmd(&[
            "run", "-d", "--name", "nr", "-p", "80", "busybox", "sleep", "300",
        ])
        .env("WHARF_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("policy rule `run.published_ports`")
            && stderr(&o).contains("do not overlap"),
        "{}",
        stderr(&o)
    );
    let nr = p.ok(&["inspect", "-f", "{{.Id}}", "nr"]).trim().to_string();
    assert_eq!(common::net::leftovers(&w, &nr), Vec::<String>::new());
    // --network container: of a container in the host's namespace is host networking
    std::fs::write(&p.file, "").unwrap();
    p.ok(&[
        "run",
        "-d",
        "--name",
        "hostnet",
        "--network",
        "host",
        "busybox",
        "sleep",
        "300",
    ]);
    p.set(&format!(
        "[run]\npublished_ports = \"{low}-{}\"\nhost_network = false\n",
        low + 4
    ));
    p.refused(
        &[
            "run",
            "--rm",
            "--network",
            "container:hostnet",
            "busybox",
            "true",
        ],
        "run.host_network",
    );
    let audit = p.audit_lines();
    assert!(audit
        .iter()
        .any(|l| l["rule"] == "run.published_ports" && l["action"] == "start"));
}
