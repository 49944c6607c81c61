//! The CLI parity suite (issue 16): each everyday command runs against wharf (invoked as
//! `docker`, a symlink to the binary, as a user's `ln -s wharf docker`) and against a private
//! dockerd with the docker CLI, on the same objects made the same way, and the two are
//! compared: exit code, error text, output shape (header, columns, line count) or the
//! `inspect` key sets. Adding a case is one line in `CASES`. The differences kept on purpose
//! are listed in docs/cli.md ("Parity with docker") with their reasons; `INSPECT_ALLOWED`
//! names the inspect keys among them.

mod common;

use common::dockerd::Dockerd;
use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

/// What must be the same.
#[derive(Clone, Copy, Debug)]
enum Same {
    /// exit code only
    Code,
    /// exit code and stderr (ids normalised)
    Err,
    /// exit code and what was printed, stdout then stderr, `\r\n` as `\n` (dockerd 20.10
    /// streams an exec's start error on the exec's own output; wharf prints it on stderr,
    /// as newer daemons' CLIs do)
    Printed,
    /// exit code, stdout and stderr (ids normalised)
    Exact,
    /// exit code, stdout as a set of lines (order not compared), stderr
    LineSet,
    /// exit code, stdout's line count
    Lines,
    /// exit code, the header's columns and the line count
    Table,
    /// exit code, the header's columns
    Header,
    /// exit code, the JSON's keys, recursively, in order (minus `INSPECT_ALLOWED`)
    Keys,
}

/// The cases, in order (they share the objects `setup` makes; none changes them).
const CASES: &[(&[&str], Same)] = &[
    // lists and their groups
    (&["ps"], Same::Table),
    (&["ps", "-a"], Same::Table),
    (&["ps", "-a", "-q"], Same::Lines),
    (&["ps", "-a", "--no-trunc", "-q"], Same::Lines),
    (
        &["ps", "-a", "--format", "{{.Names}} {{.Command}}"],
        Same::LineSet,
    ),
    (
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "{{.Names}} {{.Command}}",
        ],
        Same::LineSet,
    ),
    (
        &[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}",
        ],
        Same::Exact,
    ),
    // dockerd 20.10 says "Invalid filter", newer ones "invalid filter" (wharf)
    (&["ps", "-f", "colour=red"], Same::Code),
    (&["container", "ls", "-a"], Same::Table),
    (&["container", "list", "-a"], Same::Table),
    (&["container", "ps", "-a"], Same::Table),
    (&["images"], Same::Table),
    (&["image", "ls"], Same::Table),
    (&["image", "list"], Same::Table),
    (&["images", "-q"], Same::Lines),
    (&["images", "--digests"], Same::Table),
    (
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        Same::LineSet,
    ),
    (
        &[
            "images",
            "-f",
            "reference=pa-*",
            "--format",
            "{{.Repository}}",
        ],
        Same::Exact,
    ),
    (&["volume", "ls"], Same::Table),
    (&["volume", "ls", "-q"], Same::Exact),
    (&["network", "ls"], Same::Header),
    (&["history", "busybox"], Same::Table),
    (&["image", "history", "-q", "busybox"], Same::Lines),
    (&["system", "df"], Same::Table),
    // templates
    (
        &["ps", "-a", "--format", "{{range .Names}}{{.}}{{end}}"],
        Same::Lines,
    ),
    (
        &["info", "--format", "{{.Containers}} {{.Images}}"],
        Same::Exact,
    ),
    (&["version", "--format", "{{.Client.Os}}"], Same::Exact),
    // logs of a foreground run
    (&["logs", "pa-fg"], Same::Exact),
    (&["container", "logs", "--tail", "2", "pa-fg"], Same::Exact),
    // inspect
    (&["inspect", "pa-fg"], Same::Keys),
    (&["container", "inspect", "pa-bg"], Same::Keys),
    (&["inspect", "--size", "pa-fg"], Same::Keys),
    (&["inspect", "busybox"], Same::Keys),
    (&["image", "inspect", "busybox"], Same::Keys),
    (&["inspect", "pa-vol"], Same::Keys),
    (&["volume", "inspect", "pa-vol"], Same::Keys),
    (&["inspect", "none"], Same::Keys),
    (&["inspect", "-f", "json", "pa-fg"], Same::Keys),
    (&["inspect", "-f", "json", "pa-fg", "busybox"], Same::Lines),
    (
        &["inspect", "-f", "{{.Name}}", "pa-fg", "nosuch"],
        Same::Exact,
    ),
    (
        &["inspect", "--type", "container", "-f", "{{.Name}}", "pa-fg"],
        Same::Exact,
    ),
    (&["inspect", "nosuch"], Same::Exact),
    (&["inspect", "--type", "bogus", "pa-fg"], Same::Exact),
    (&["inspect", "--type", "volume", "pa-fg"], Same::Code),
    // exit codes and texts
    (&["rm", "-f", "nosuch"], Same::Exact),
    (&["rmi", "-f", "nosuch"], Same::Exact),
    (&["rm", "nosuch"], Same::Exact),
    (&["rmi", "nosuch"], Same::Exact),
    (&["tag", "nosuch", "x"], Same::Exact),
    (&["exec", "pa-bg", "nosuchcmd"], Same::Printed),
    (&["exec", "pa-bg", "/etc"], Same::Printed),
    (&["exec", "nosuch", "true"], Same::Exact),
    (&["exec", "pa-bg", "sh", "-c", "exit 3"], Same::Exact),
    (&["stop", "nosuch"], Same::Exact),
    (&["logs", "nosuch"], Same::Exact),
    (&["volume", "rm", "nosuch"], Same::Code),
    (&["network", "inspect", "nosuch"], Same::Code),
    (&["pull", "UPPER"], Same::Code),
    (&["diff", "pa-fg"], Same::Exact),
    (
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "/nonexistent",
        ],
        Same::Code,
    ),
    (
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 7",
        ],
        Same::Exact,
    ),
    (
        &["run", "--rm", "--network", "none", "busybox", "echo", "hi"],
        Same::Exact,
    ),
    (&["info"], Same::Code),
    (&["help"], Same::Code),
    (&["help", "run"], Same::Code),
    (&["--help"], Same::Code),
];

/// inspect keys where wharf and dockerd 20.10 differ on purpose (docs/cli.md, "Parity with
/// docker"): keys of newer API versions wharf serves (docker 28's daemon has them), keys
/// dockerd 20.10 still has and newer daemons dropped, and the image's storage (wharf's
/// layers are read-only snapshots, not an overlay of their own).
const INSPECT_ALLOWED: &[&str] = &[
    ".HostConfig.KernelMemory",
    ".HostConfig.KernelMemoryTCP",
    ".NetworkSettings.Networks.*.DNSNames",
    ".NetworkSettings.Networks.*.GwPriority",
    ".Descriptor",
    ".Descriptor.mediaType",
    ".Descriptor.digest",
    ".GraphDriver.Data.LowerDir",
    ".GraphDriver.Data.MergedDir",
    ".GraphDriver.Data.UpperDir",
    ".GraphDriver.Data.WorkDir",
];

/// wharf as `docker`: a symlink named docker to the binary, the test's store.
struct AsDocker<'a> {
    w: &'a Wharf,
    exe: std::path::PathBuf,
}

impl AsDocker<'_> {
    fn new(w: &Wharf) -> AsDocker<'_> {
        let exe = w.dir.path().join("bin").join("docker");
        std::fs::create_dir_all(w.dir.path().join("bin")).expect("bin dir");
        std::os::unix::fs::symlink(Wharf::bin(), &exe).expect("symlink docker");
        AsDocker { w, exe }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.exe)
            .args(args)
            .env("WHARF_ROOT", self.w.root())
            .env("WHARF_RUNROOT", self.w.run_root())
            .env_remove("WHARF_DISABLE")
            .stdin(Stdio::null())
            .output()
            .expect("spawn wharf as docker")
    }
}

/// The same objects on both sides: busybox (and a second tag), a container that ran in the
/// foreground (`pa-fg`: its log), one that runs (`pa-bg`), a volume.
fn setup(run: &dyn Fn(&[&str]) -> Output, tar: &str) {
    for args in [
        &["import", tar, "busybox:latest"][..],
        &["tag", "busybox", "pa-other:1"],
        &[
            "run",
            "--name",
            "pa-fg",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo hi; echo two words >&2",
        ],
        &[
            "run",
            "-d",
            "--name",
            "pa-bg",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "sleep 1000",
        ],
        &["volume", "create", "pa-vol"],
    ] {
        let o = run(args);
        assert!(o.status.success(), "setup {args:?}: {}", stderr(&o));
    }
}

/// 64- and 12-digit hex ids → `<id>`, so texts naming ids compare.
fn normalise(s: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let hex = word.chars().all(|c| c.is_ascii_hexdigit());
        if hex && (word.len() == 64 || word.len() == 12) {
            out.push_str("<id>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The columns of a table's header (words split on two or more spaces).
fn columns(header: &str) -> Vec<String> {
    header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every key path of a JSON document, in order; the keys of maps whose keys are data
/// (`Networks`, `Labels`, `Ports`, …) are `*`.
fn key_paths(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            let data_map = [
                ".Networks",
                ".Labels",
                ".Ports",
                ".Options",
                ".Containers",
                ".Volumes",
                ".ExposedPorts",
                ".LogConfig.Config",
            ]
            .iter()
            .any(|m| path.ends_with(m));
            let mut seen = BTreeSet::new();
            for (k, x) in o {
                let key = if data_map { "*" } else { k.as_str() };
                let p = format!("{path}.{key}");
                if seen.insert(p.clone()) {
                    out.push(p.clone());
                }
                key_paths(x, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                if x.is_object() {
                    key_paths(x, path, out);
                }
            }
        }
        _ => {}
    }
}

fn inspect_keys(out: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(out).unwrap_or(serde_json::Value::Null);
    let first = v.as_array().and_then(|a| a.first()).cloned().unwrap_or(v);
    let mut keys = Vec::new();
    key_paths(&first, "", &mut keys);
    let mut dedup = BTreeSet::new();
    keys.into_iter()
        .filter(|k| dedup.insert(k.clone()))
        .filter(|k| !INSPECT_ALLOWED.contains(&k.as_str()))
        .collect()
}

/// The differences of one case, empty when the two agree.
fn compare(args: &[&str], same: Same, w: &Output, d: &Output) -> Vec<String> {
    let mut diffs = Vec::new();
    let (wo, wd) = (normalise(&stdout(w)), normalise(&stdout(d)));
    let (we, de) = (normalise(&stderr(w)), normalise(&stderr(d)));
    if w.status.code() != d.status.code() {
        diffs.push(format!(
            "exit code: wharf {:?}, docker {:?} (stderr wharf {we:?}, docker {de:?})",
            w.status.code(),
            d.status.code()
        ));
    }
    let lines = |s: &str| s.lines().count();
    match same {
        Same::Code => {}
        Same::Err => {
            if we != de {
                diffs.push(format!("stderr: wharf {we:?}, docker {de:?}"));
            }
        }
        Same::Printed => {
            let (a, b) = (
                format!("{wo}{we}").replace("\r\n", "\n"),
                format!("{wd}{de}").replace("\r\n", "\n"),
            );
            if a != b {
                diffs.push(format!("printed: wharf {a:?}, docker {b:?}"));
            }
        }
        Same::Exact | Same::LineSet => {
            let (a, b) = if matches!(same, Same::LineSet) {
                let set = |s: &str| {
                    s.lines()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                (set(&wo), set(&wd))
            } else {
                (wo.clone(), wd.clone())
            };
            if a != b {
                diffs.push(format!("stdout: wharf {wo:?}, docker {wd:?}"));
            }
            if we != de {
                diffs.push(format!("stderr: wharf {we:?}, docker {de:?}"));
            }
        }
        Same::Lines => {
            if lines(&wo) != lines(&wd) {
                diffs.push(format!("line count: wharf {wo:?}, docker {wd:?}"));
            }
        }
        Same::Table | Same::Header => {
            let (hw, hd) = (
                columns(wo.lines().next().unwrap_or("")),
                columns(wd.lines().next().unwrap_or("")),
            );
            if hw != hd {
                diffs.push(format!("columns: wharf {hw:?}, docker {hd:?}"));
            }
            if matches!(same, Same::Table) && lines(&wo) != lines(&wd) {
                diffs.push(format!("rows: wharf {wo:?}, docker {wd:?}"));
            }
        }
        Same::Keys => {
            let (kw, kd) = (inspect_keys(&wo), inspect_keys(&wd));
            if kw != kd {
                let missing: Vec<_> = kd.iter().filter(|k| !kw.contains(k)).collect();
                let extra: Vec<_> = kw.iter().filter(|k| !kd.contains(k)).collect();
                diffs.push(format!(
                    "inspect keys: missing {missing:?}, extra {extra:?}{}",
                    if missing.is_empty() && extra.is_empty() {
                        " (order differs)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    diffs
        .into_iter()
        .map(|d| format!("{args:?}: {d}"))
        .collect()
}

#[test]
fn cli_parity_with_docker() {
    let Some(dd) = Dockerd::start() else {
        eprintln!("skipped: dockerd unavailable");
        return;
    };
    let w = Wharf::new();
    let wharf = AsDocker::new(&w);
    let tar = w.dir.path().join("busybox.tar");
    write_busybox_tar(&tar);
    let tar = tar.to_str().unwrap_or_default();
    setup(&|a| wharf.run(a), tar);
    setup(&|a| dd.docker(a), tar);
    let mut diffs = Vec::new();
    for (args, same) in CASES {
        let (ow, od) = (wharf.run(args), dd.docker(args));
        diffs.extend(compare(args, *same, &ow, &od));
    }
    let _ = wharf.run(&["rm", "-f", "pa-bg"]);
    let _ = dd.docker(&["rm", "-f", "pa-bg"]);
    assert!(
        diffs.is_empty(),
        "wharf differs from docker:\n{}",
        diffs.join("\n")
    );
}

/// The comparison itself: a difference in any compared part is found.
#[test]
fn compare_finds_differences() {
    use std::os::unix::process::ExitStatusExt;
    let out = |code: i32, o: &str, e: &str| Output {
        status: std::process::ExitStatus::from_raw(code << 8),
        stdout: o.as_bytes().to_vec(),
        stderr: e.as_bytes().to_vec(),
    };
    let a = out(0, "NAME  ID\nx  1\n", "");
    assert!(compare(&[], Same::Table, &a, &out(0, "NAME  ID\ny  2\n", "")).is_empty());
    assert!(!compare(&[], Same::Table, &a, &out(0, "NAME  ID  X\ny  2  3\n", "")).is_empty());
    assert!(!compare(&[], Same::Table, &a, &out(0, "NAME  ID\n", "")).is_empty());
    assert!(!compare(&[], Same::Code, &a, &out(1, "", "")).is_empty());
    assert!(!compare(&[], Same::Err, &out(1, "", "a"), &out(1, "", "b")).is_empty());
    assert!(compare(&[], Same::Printed, &out(1, "", "a\n"), &out(1, "a\r\n", "")).is_empty());
    assert!(!compare(&[], Same::Printed, &out(1, "", "a\n"), &out(1, "b\r\n", "")).is_empty());
    // ids are normalised, text is not
    let id = "0123456789ab";
    assert!(compare(
        &[],
        Same::Exact,
        &out(0, id, ""),
        &out(0, "ba9876543210", "")
    )
    .is_empty());
    assert!(!compare(&[], Same::Exact, &out(0, "a b", ""), &out(0, "a  b", "")).is_empty());
    // key sets: order and presence count, data map keys do not
    let j = |s: &str| out(0, s, "");
    assert!(compare(
        &[],
        Same::Keys,
        &j(r#"[{"A":1,"Labels":{"x":1}}]"#),
        &j(r#"[{"A":2,"Labels":{"y":1}}]"#)
    )
    .is_empty());
    assert!(!compare(
        &[],
        Same::Keys,
        &j(r#"[{"A":1,"B":1}]"#),
        &j(r#"[{"B":1,"A":1}]"#)
    )
    .is_empty());
    assert!(!compare(
        &[],
        Same::Keys,
        &j(r#"[{"A":1}]"#),
        &j(r#"[{"A":1,"C":{}}]"#)
    )
    .is_empty());
}
