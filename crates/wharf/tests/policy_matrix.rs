//! The policy matrix: every container rule through every entry point that can start or enter
//! a container — `create`, `start` of a record made before the policy, `exec` into a container
//! started before the policy — and the image rules through `bundle apply`, each refusal
//! audited with its action and rule. (tests/policy.rs covers `run`, pull/push/load/import,
//! malformed files and the audit log's rotation.)
#![allow(clippy::unwrap_used)]

mod common;

use common::policy::Pol;
use common::*;

#[test]
fn each_container_rule_through_create_start_and_exec() {
    let w = Wharf::new().with_busybox();
    let data = w.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let bind = format!("{}:/d", data.display());
    // (rule, policy, offending flags). Each policy also allows everything the others refuse,
    // so a refusal is by the rule under test alone.
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "run.privileged",
            "[run]\nprivileged = false\n",
            vec!["--privileged"],
        ),
        (
            "run.host_network",
            "[run]\nhost_network = false\n",
            vec!["--network", "host"],
        ),
        (
            "run.seccomp_unconfined",
            "[run]\nseccomp_unconfined = false\n",
            vec!["--security-opt", "seccomp=unconfined"],
        ),
        (
            "run.cap_add",
            "[run]\ncap_add = [\"NET_BIND_SERVICE\"]\n",
            vec!["--cap-add", "SYS_ADMIN"],
        ),
        (
            "run.bind_mounts",
            "[run]\nbind_mounts = \"deny\"\n",
            vec!["-v", &bind],
        ),
        ("run.non_root", "[run]\nnon_root = true\n", vec!["-u", "0"]),
        (
            "run.required_labels",
            "[run]\nrequired_labels = [\"owner\"]\n",
            vec!["-l", "team=x"],
        ),
        (
            "limits.memory",
            "[limits]\nmemory = \"64m\"\n",
            vec!["-m", "128m"],
        ),
        ("limits.cpus", "[limits]\ncpus = 1.0\n", vec!["--cpus", "2"]),
        (
            "limits.pids",
            "[limits]\npids = 100\n",
            vec!["--pids-limit", "500"],
        ),
        (
            "limits.required",
            "[limits]\nrequired = [\"memory\"]\n",
            vec!["-l", "no=limits"],
        ),
    ];
    for (rule, policy, flags) in &cases {
        // Made before the policy: a stopped record and a running container.
        let mut c = vec!["create"];
        c.extend(flags.iter().copied());
        c.extend(["busybox", "true"]);
        let created = w.ok(&c).trim().to_string();
        let mut r = vec!["run", "-d"];
        r.extend(flags.iter().copied());
        r.extend(["busybox", "sleep", "60"]);
        let running = w.ok(&r).trim().to_string();

        let p = Pol::new(&w, policy);
        p.refused(&c, rule);
        p.refused(&["start", &created], rule);
        // restart is refused before it stops anything
        p.refused(&["restart", "-t", "1", &running], rule);
        assert_eq!(
            w.ok(&["inspect", "-f", "{{.State.Running}}", &running])
                .trim(),
            "true",
            "{rule}: a refused restart stopped the container"
        );
        p.refused(&["exec", &running, "true"], rule);
        let got = p.refusals();
        for action in ["create", "start", "exec"] {
            assert!(
                got.contains(&(action.to_string(), rule.to_string())),
                "{rule}: no audited {action} refusal in {got:?}"
            );
        }
        w.ok(&["rm", "-f", &created, &running]);
        std::fs::remove_file(&p.audit).ok();
    }
}

#[test]
fn exec_is_refused_into_a_container_started_before_the_policy() {
    let w = Wharf::new().with_busybox();
    for (rule, policy, flags) in [
        (
            "run.privileged",
            "[run]\nprivileged = false\n",
            vec!["--privileged"],
        ),
        (
            "run.cap_add",
            "[run]\ncap_add = []\n",
            vec!["--cap-add", "NET_ADMIN"],
        ),
        (
            "limits.memory",
            "[limits]\nmemory = \"16m\"\n",
            vec!["-m", "64m"],
        ),
    ] {
        let mut r = vec!["run", "-d"];
        r.extend(flags.iter().copied());
        r.extend(["busybox", "sleep", "60"]);
        let id = w.ok(&r).trim().to_string();
        let p = Pol::new(&w, policy);
        p.refused(&["exec", &id, "true"], rule);
        assert!(
            p.refusals()
                .contains(&("exec".to_string(), rule.to_string())),
            "{rule}: {:?}",
            p.refusals()
        );
        // the container itself keeps running: the policy refuses new work, it kills nothing
        assert_eq!(
            w.ok(&["inspect", "-f", "{{.State.Running}}", &id]).trim(),
            "true"
        );
        w.ok(&["rm", "-f", &id]);
        std::fs::remove_file(&p.audit).ok();
    }
}

#[test]
fn bundle_apply_is_held_by_the_registries_rule() {
    let src = Wharf::new().with_busybox();
    let d = src.dir.path();
    let b = d.join("bb.bundle");
    src.ok(&["bundle", "create", "-o", b.to_str().unwrap(), "busybox"]);
    let index = format!("{}.index.json", b.display());

    let tgt = Wharf::new();
    let p = Pol::new(&tgt, "[registries]\nallow = [\"registry.local:5000\"]\n");
    p.refused(
        &["bundle", "apply", b.to_str().unwrap(), &index],
        "registries.allow",
    );
    let names = tgt.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!names.contains("busybox"), "a refused name stayed: {names}");
    assert!(p
        .refusals()
        .iter()
        .any(|(a, r)| a == "bundle apply" && r == "registries.allow"));

    let p = Pol::new(&tgt, "[registries]\nallow = [\"docker.io/library\"]\n");
    let out = p.ok(&["bundle", "apply", b.to_str().unwrap(), &index]);
    assert!(out.contains("busybox"), "{out}");
    p.ok(&["run", "--rm", "busybox", "true"]);
}
