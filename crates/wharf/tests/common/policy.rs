//! A store under an admin policy file written by the test, with its own audit log: runs the
//! binary with `WHARF_POLICY`/`WHARF_AUDIT_LOG` and checks refusals by rule name.

use super::{stderr, stdout, Wharf};
use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Pol<'a> {
    pub w: &'a Wharf,
    pub file: PathBuf,
    pub audit: PathBuf,
}

impl<'a> Pol<'a> {
    pub fn new(w: &'a Wharf, text: &str) -> Pol<'a> {
        let file = w.dir.path().join("policy.toml");
        std::fs::write(&file, text).expect("write policy");
        Pol {
            w,
            file,
            audit: w.dir.path().join("log").join("audit.log"),
        }
    }

    /// Replaces the policy file's text.
    pub fn set(&self, text: &str) {
        std::fs::write(&self.file, text).expect("write policy");
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.w.command(args);
        c.env("WHARF_POLICY", &self.file)
            .env("WHARF_AUDIT_LOG", &self.audit);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run wharf")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?} failed: {} {}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// Asserts a refusal by `rule` naming the policy file.
    pub fn refused(&self, args: &[&str], rule: &str) -> Output {
        let o = self.run(args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} was allowed: {}", stdout(&o));
        assert!(
            err.contains(&format!("policy rule `{rule}`"))
                && err.contains(self.file.to_str().expect("utf-8 path")),
            "{args:?}: expected a refusal by {rule}: {err}"
        );
        o
    }

    /// Every line of the audit log.
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// (action, rule) of every refusal in the audit log.
    pub fn refusals(&self) -> Vec<(String, String)> {
        self.audit_lines()
            .iter()
            .filter(|l| l["result"] == "refused")
            .map(|l| {
                (
                    l["action"].as_str().unwrap_or_default().to_string(),
                    l["rule"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}
