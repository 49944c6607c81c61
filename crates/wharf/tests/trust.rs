//! `registries.require_signed` and `wharf trust` through the real binary: unsigned images
//! refused at run and at create+start, a signature by a trusted key allowed, an untrusted key,
//! a removed key, a tampered or misplaced signature file refused, a malformed key directory
//! failing closed, revoke, audit lines, `policy check`; bundles carrying signatures to a host
//! that runs the images only because they arrived signed.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A store under a policy that requires signatures by the keys in `<dir>/trusted`.
struct Host<'a> {
    w: &'a Wharf,
    policy: PathBuf,
    audit: PathBuf,
    keys: PathBuf,
}

impl<'a> Host<'a> {
    fn new(w: &'a Wharf) -> Host<'a> {
        let keys = w.dir.path().join("trusted");
        std::fs::create_dir_all(&keys).unwrap();
        let policy = w.dir.path().join("policy.toml");
        std::fs::write(
            &policy,
            format!(
                "[registries]\nrequire_signed = true\ntrusted_keys = \"{}\"\n",
                keys.display()
            ),
        )
        .unwrap();
        Host {
            w,
            policy,
            audit: w.dir.path().join("audit.log"),
            keys,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.w.command(args);
        c.env("WHARF_POLICY", &self.policy)
            .env("WHARF_AUDIT_LOG", &self.audit);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?} failed: {} {}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// Refused by `registries.require_signed`, naming the policy file and `what`.
    fn refused(&self, args: &[&str], what: &str) -> String {
        let o = self.run(args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} was allowed: {}", stdout(&o));
        if args[0] == "run" {
            assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        }
        assert!(
            err.contains("policy rule `registries.require_signed`")
                && err.contains(self.policy.to_str().unwrap())
                && err.contains(what),
            "{args:?}: expected a refusal saying {what:?}: {err}"
        );
        err
    }

    fn trust(&self, name: &str) -> PathBuf {
        let dst = self.keys.join(format!("{name}.pub"));
        std::fs::copy(self.w.dir.path().join(format!("{name}.pub")), &dst).unwrap();
        dst
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn inspect(&self, image: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["trust", "inspect", image])).unwrap();
        v[0].clone()
    }
}

fn key(w: &Wharf, name: &str) -> PathBuf {
    let dir = w.dir.path().to_str().unwrap();
    let out = w.ok(&["trust", "key", "generate", "--dir", dir, name]);
    let private = PathBuf::from(out.lines().next().unwrap());
    assert_eq!(private, w.dir.path().join(format!("{name}.pem")));
    private
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn manifest_of(w: &Wharf, image: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&w.ok(&["trust", "inspect", image])).unwrap();
    v[0]["ManifestDigest"].as_str().unwrap().to_string()
}

fn sig_dir(w: &Wharf, manifest: &str) -> PathBuf {
    w.root()
        .join("meta/signatures")
        .join(manifest.trim_start_matches("sha256:"))
}

#[test]
fn only_images_signed_by_a_trusted_key_run() {
    let w = Wharf::new().with_busybox();
    let alice = key(&w, "alice");
    let mallory = key(&w, "mallory");
    // made before the policy: checked again at start
    let early = w.ok(&["create", "busybox", "true"]);
    let early = early.trim();
    let h = Host::new(&w);
    h.trust("alice");

    // unsigned: refused at run, at create (no record left) and at start
    h.refused(&["run", "--rm", "busybox", "true"], "it has no signature");
    h.refused(&["create", "busybox", "true"], "it has no signature");
    h.refused(&["start", early], "it has no signature");
    assert_eq!(w.ok(&["ps", "-aq"]).lines().count(), 1);
    let o = h.run(&["policy", "check", "busybox"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("registries.require_signed: image \"busybox\""),
        "{}",
        stdout(&o)
    );

    // signed by a key that is not trusted: still refused
    h.ok(&["trust", "sign", "busybox", "--key", s(&mallory)]);
    h.refused(&["run", "--rm", "busybox", "true"], "is not trusted");

    // signed by a trusted key: runs, and create + start work
    let out = h.ok(&["trust", "sign", "busybox:latest", "--key", s(&alice)]);
    assert!(
        out.starts_with("Signed docker.io/library/busybox:latest (manifest sha256:"),
        "{out}"
    );
    assert_eq!(h.ok(&["run", "--rm", "busybox", "echo", "hi"]).trim(), "hi");
    let id = h.ok(&["create", "busybox", "true"]);
    h.ok(&["start", "-a", id.trim()]);
    h.ok(&["start", "-a", early]);
    let v = h.inspect("busybox");
    let sigs = v["Signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{v}");
    let trusted: Vec<bool> = sigs
        .iter()
        .map(|s| s["Trusted"].as_bool().unwrap())
        .collect();
    assert_eq!(trusted.iter().filter(|t| **t).count(), 1, "{v}");
    assert!(sigs.iter().all(|s| s["Valid"] == true), "{v}");
    let alice_sig = sigs.iter().find(|s| s["Trusted"] == true).unwrap();
    assert_eq!(alice_sig["Reference"], "docker.io/library/busybox:latest");
    assert!(alice_sig["KeyFile"]
        .as_str()
        .unwrap()
        .ends_with("alice.pub"));
    let alice_id = alice_sig["KeyID"].as_str().unwrap().to_string();
    let alice_file = PathBuf::from(alice_sig["File"].as_str().unwrap());

    // removing the key from the directory revokes what it signed
    let installed = h.keys.join("alice.pub");
    std::fs::remove_file(&installed).unwrap();
    h.refused(&["start", "-a", id.trim()], "there is no key in");
    h.trust("alice");
    h.ok(&["start", "-a", id.trim()]);

    // a tampered signature file does not count
    let good = std::fs::read_to_string(&alice_file).unwrap();
    let tampered = good.replace(
        "docker.io/library/busybox:latest",
        "docker.io/library/busybox:1",
    );
    assert_ne!(tampered, good);
    std::fs::write(&alice_file, &tampered).unwrap();
    h.refused(
        &["run", "--rm", "busybox", "true"],
        "the signature does not verify",
    );
    std::fs::write(&alice_file, "{not json").unwrap();
    h.refused(
        &["run", "--rm", "busybox", "true"],
        "not a signature record",
    );
    std::fs::write(&alice_file, &good).unwrap();
    h.ok(&["run", "--rm", "busybox", "true"]);

    // a valid signature of another image, copied next to this one's, does not count
    let other_tar = w.dir.path().join("other.tar");
    write_busybox_tar_with(&other_tar, &["etc/group"], &|_| {});
    w.ok(&["import", s(&other_tar), "other:1"]);
    h.ok(&["trust", "sign", "other:1", "--key", s(&alice)]);
    let other_sig = sig_dir(&w, &manifest_of(&w, "other:1")).join(format!("{alice_id}.json"));
    std::fs::copy(&other_sig, &alice_file).unwrap();
    h.refused(&["run", "--rm", "busybox", "true"], "not this image's");
    h.ok(&["run", "--rm", "other:1", "true"]);
    std::fs::write(&alice_file, &good).unwrap();

    // a malformed file in the key directory fails closed, naming it, even for a signed image
    let junk = h.keys.join("junk.pub");
    std::fs::write(
        &junk,
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    h.refused(&["run", "--rm", "busybox", "true"], s(&junk));
    std::fs::remove_file(&junk).unwrap();
    // a private key by mistake, and a FIFO (never blocked on)
    std::fs::copy(&alice, h.keys.join("alice.pem")).unwrap();
    h.refused(&["run", "--rm", "busybox", "true"], "alice.pem");
    std::fs::remove_file(h.keys.join("alice.pem")).unwrap();
    let fifo = h.keys.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    h.refused(&["run", "--rm", "busybox", "true"], "not a regular file");
    std::fs::remove_file(&fifo).unwrap();
    h.ok(&["run", "--rm", "busybox", "true"]);

    // revoke one key's signature, then all
    let out = h.ok(&["trust", "revoke", "--key", &alice_id[..12], "busybox"]);
    assert!(out.contains(&alice_id), "{out}");
    h.refused(&["run", "--rm", "busybox", "true"], "is not trusted");
    h.ok(&["trust", "sign", "busybox", "--key", s(&alice)]);
    h.ok(&["run", "--rm", "busybox", "true"]);
    h.ok(&["trust", "revoke", "busybox"]);
    assert!(h.inspect("busybox")["Signatures"]
        .as_array()
        .unwrap()
        .is_empty());
    h.refused(&["run", "--rm", "busybox", "true"], "it has no signature");
    let o = h.run(&["trust", "revoke", "--key", s(&alice), "busybox"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("has no signature by key"),
        "{}",
        stderr(&o)
    );

    // the audit log has every decision under the rule's name
    let lines = h.audit_lines();
    let refused = lines
        .iter()
        .filter(|l| l["result"] == "refused")
        .inspect(|l| assert_eq!(l["rule"], "registries.require_signed", "{l}"))
        .count();
    assert_eq!(refused, 13, "{lines:?}");
    let start_refused = lines
        .iter()
        .find(|l| l["action"] == "start" && l["result"] == "refused")
        .unwrap();
    assert_eq!(start_refused["target"], early);
    assert!(lines
        .iter()
        .any(|l| l["action"] == "create" && l["result"] == "allowed"));

    // rmi: the image's signatures go with it
    w.ok(&["rm", early, id.trim()]);
    let other_dir = sig_dir(&w, &manifest_of(&w, "other:1"));
    assert!(other_dir.exists());
    w.ok(&["rmi", "other:1"]);
    assert!(!other_dir.exists(), "signatures outlived their image");
}

#[test]
fn missing_key_directory_fails_closed() {
    let w = Wharf::new().with_busybox();
    let alice = key(&w, "alice");
    let h = Host::new(&w);
    h.ok(&["trust", "sign", "busybox", "--key", s(&alice)]);
    std::fs::remove_dir(&h.keys).unwrap();
    h.refused(
        &["run", "--rm", "busybox", "true"],
        "trusted keys directory",
    );
    let v = h.inspect("busybox");
    assert!(
        v["TrustedKeysError"].as_str().unwrap().contains("trusted"),
        "{v}"
    );
    assert_eq!(v["Signatures"][0]["Trusted"], false);
    // without a policy nothing is required, and inspect says no key is judged
    w.ok(&["run", "--rm", "busybox", "true"]);
    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["trust", "inspect", "busybox"])).unwrap();
    assert!(v[0]["Signatures"][0]["Trusted"].is_null(), "{v}");
    assert_eq!(v[0]["Signatures"][0]["Valid"], true);
}

#[test]
fn bundles_carry_signatures() {
    let src = Wharf::new().with_busybox();
    let alice = key(&src, "alice");
    let bob = key(&src, "bob");
    // bob signed on the source; the bundle is created (and signed) with alice's key
    src.ok(&["trust", "sign", "busybox", "--key", s(&bob)]);
    let out = src.dir.path().join("release");
    src.ok(&[
        "bundle",
        "create",
        "-o",
        s(&out),
        "--sign",
        s(&alice),
        "busybox",
    ]);
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(src.dir.path().join("release.index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        index["images"][0]["signatures"].as_array().unwrap().len(),
        2,
        "{index}"
    );

    let tgt = Wharf::new();
    for k in ["alice.pub", "bob.pub"] {
        std::fs::copy(src.dir.path().join(k), tgt.dir.path().join(k)).unwrap();
    }
    let h = Host::new(&tgt);
    h.trust("alice");
    h.ok(&[
        "bundle",
        "apply",
        "--key",
        s(&tgt.dir.path().join("alice.pub")),
        s(&out),
    ]);
    assert_eq!(h.ok(&["run", "--rm", "busybox", "echo", "ok"]).trim(), "ok");
    let v = h.inspect("busybox");
    assert_eq!(v["Signatures"].as_array().unwrap().len(), 2, "{v}");
    // bob's signature came along too: a host that trusts only bob runs it
    std::fs::remove_file(h.keys.join("alice.pub")).unwrap();
    h.refused(&["run", "--rm", "busybox", "true"], "there is no key in");
    h.trust("bob");
    h.ok(&["run", "--rm", "busybox", "true"]);

    // an unsigned bundle still carries the stored signatures, and one edited in transit is
    // refused before anything is imported
    let plain = src.dir.path().join("plain");
    src.ok(&["bundle", "create", "-o", s(&plain), "busybox"]);
    let idx_path = src.dir.path().join("plain.index.json");
    let text = std::fs::read_to_string(&idx_path).unwrap();
    assert!(text.contains("signatures"), "{text}");
    std::fs::write(
        &idx_path,
        text.replace(
            "docker.io/library/busybox:latest",
            "docker.io/library/evil:latest",
        ),
    )
    .unwrap();
    let empty = Wharf::new();
    let o = empty.run(&["bundle", "apply", s(&plain)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("carries a signature by key") && stderr(&o).contains("does not count"),
        "{}",
        stderr(&o)
    );
    assert!(empty.ok(&["images", "-q"]).trim().is_empty());
}
