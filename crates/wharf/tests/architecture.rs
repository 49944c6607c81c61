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
        ("wharf-types", &[]),
        ("wharf-sys", &[]),
        ("wharf-store", &["wharf-types", "wharf-sys"]),
        ("wharf-runtime", &["wharf-types", "wharf-sys"]),
        ("wharf-logs", &["wharf-types", "wharf-sys"]),
        (
            "wharf-registry",
            &["wharf-types", "wharf-sys", "wharf-store"],
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
    for krate in [
        "wharf-types",
        "wharf-sys",
        "wharf-store",
        "wharf-runtime",
        "wharf-logs",
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

/// The image and distribution commands are clap → typed request → engine → render: they name
/// neither the store nor the registry crate (the engine re-exports what they render).
#[test]
fn image_and_distribution_commands_go_through_the_engine() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cmd");
    for f in ["images.rs", "archive.rs", "distribution.rs", "registry.rs"] {
        let src = std::fs::read_to_string(format!("{dir}/{f}")).expect("command source");
        for krate in ["wharf_store", "wharf_registry"] {
            assert!(!src.contains(krate), "cmd/{f} names {krate}");
        }
    }
}
