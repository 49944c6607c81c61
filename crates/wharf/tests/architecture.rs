//! Keeps the crate graph honest (CONVENTIONS.md "forbidden edges"): reads `cargo metadata`
//! and fails when a crate depends on something its layer may not.

use std::collections::BTreeMap;

fn workspace_deps() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let mut map = BTreeMap::new();
    for p in v["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let deps = p["dependencies"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter(|d| d["kind"].is_null()) // normal deps only
                    .map(|d| d["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        map.insert(name, deps);
    }
    map
}

#[test]
fn no_forbidden_edges() {
    let deps = workspace_deps();
    let internal = |c: &str| {
        deps[c]
            .iter()
            .filter(|d| d.starts_with("wharf"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let allowed: &[(&str, &[&str])] = &[
        // the binary is a front end: clap → typed request → engine → render
        (
            "wharf",
            &["wharf-types", "wharf-sys", "wharf-engine", "wharf-api"],
        ),
        // the Engine API server: HTTP mapping onto the engine's services, nothing lower
        ("wharf-api", &["wharf-types", "wharf-engine", "wharf-http"]),
        // the one HTTP/1.1 server stack (hyper) both servers run on
        ("wharf-http", &["wharf-sys"]),
        ("wharf-types", &[]),
        ("wharf-sys", &[]),
        ("wharf-store", &["wharf-types", "wharf-sys"]),
        ("wharf-runtime", &["wharf-types", "wharf-sys"]),
        ("wharf-logs", &["wharf-types", "wharf-sys"]),
        // the builder front end is pure: the executor reaches the store and runtime
        // through engine services, never directly
        ("wharf-build", &["wharf-types"]),
        (
            "wharf-registry",
            &["wharf-types", "wharf-sys", "wharf-store", "wharf-http"],
        ),
        (
            "wharf-engine",
            &[
                "wharf-types",
                "wharf-sys",
                "wharf-store",
                "wharf-runtime",
                "wharf-logs",
                "wharf-registry",
                // the build executor (`wharf_engine::build`) drives the pure front end
                "wharf-build",
            ],
        ),
    ];
    for (krate, ok) in allowed {
        assert!(
            deps.contains_key(*krate),
            "{krate} missing from the workspace"
        );
        for d in internal(krate) {
            assert!(ok.contains(&d.as_str()), "forbidden edge: {krate} -> {d}");
        }
    }
    // the engine stays synchronous: only the API server runs a reactor
    for krate in [
        "wharf-types",
        "wharf-sys",
        "wharf-store",
        "wharf-runtime",
        "wharf-logs",
        "wharf-build",
        "wharf-engine",
    ] {
        for heavy in ["tokio", "hyper", "anyhow", "reqwest"] {
            assert!(
                !deps[krate].iter().any(|d| d == heavy),
                "{krate} must not depend on {heavy}"
            );
        }
    }
    // libc's *functions* are all unsafe, and every crate but wharf-sys forbids unsafe code;
    // make sure that lint stays on
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let ws = std::fs::read_to_string(format!("{root}/Cargo.toml")).expect("root manifest");
    assert!(
        ws.contains("unsafe_code = \"forbid\""),
        "workspace must forbid unsafe code"
    );
    for krate in deps.keys().filter(|k| k.as_str() != "wharf-sys") {
        let m =
            std::fs::read_to_string(format!("{root}/crates/{krate}/Cargo.toml")).expect("manifest");
        assert!(
            m.contains("[lints]\nworkspace = true"),
            "{krate} must inherit the workspace lints"
        );
    }
}

/// Every command is clap → typed request → engine → render: no source of the binary names
/// the store, the registry, the runtime or the log drivers (the engine re-exports what a
/// front end renders), and the engine's store is not reachable from outside it.
#[test]
fn the_binary_reaches_everything_through_the_engine() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut files,
    );
    assert!(files.len() > 10, "found only {files:?}");
    for f in &files {
        let src = std::fs::read_to_string(f).expect("source");
        for name in [
            "wharf_store",
            "wharf_registry",
            "wharf_runtime",
            "wharf_logs",
            ".store()",
        ] {
            assert!(!src.contains(name), "{} names {name}", f.display());
        }
    }
    let engine = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wharf-engine/src/lib.rs"
    ))
    .expect("engine lib.rs");
    assert!(
        !engine.contains("pub fn store("),
        "Engine::store() must stay private to the engine"
    );
}
