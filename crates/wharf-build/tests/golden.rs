//! Golden tests: every `tests/corpus/*.Dockerfile` parses to exactly its `.json` (the typed
//! output, checked by hand), and every `tests/corpus/errors/*.Dockerfile` is refused with
//! exactly the message in its `.err` (parse errors, then plan errors) — or, for the few
//! look-alikes docker accepts, says `parsed and planned`. `UPDATE_GOLDEN=1` rewrites the expectations (then
//! read the diff before committing it).

use std::path::{Path, PathBuf};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus in {}", dir.display());
    v
}

fn check(path: &Path, ext: &str, actual: &str) -> Result<(), String> {
    let expected = path.with_extension(ext);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected, actual).expect("write golden");
        return Ok(());
    }
    let want =
        std::fs::read_to_string(&expected).map_err(|e| format!("{}: {e}", expected.display()))?;
    if want != actual {
        return Err(format!(
            "{} differs:\n--- expected\n{want}\n--- actual\n{actual}",
            expected.display()
        ));
    }
    Ok(())
}

#[test]
fn corpus_parses_to_golden_json() {
    let mut failures = Vec::new();
    for p in corpus("corpus") {
        let src = std::fs::read(&p).expect("read");
        let actual = match wharf_build::parse(&src) {
            Ok(df) => serde_json::to_string_pretty(&df).expect("json") + "\n",
            Err(e) => {
                failures.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        if let Err(e) = check(&p, "json", &actual) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn error_corpus_is_refused_in_dockers_words() {
    let mut failures = Vec::new();
    for p in corpus("corpus/errors") {
        let src = std::fs::read(&p).expect("read");
        let actual = match wharf_build::parse(&src) {
            Ok(df) => match wharf_build::stages::plan(&df, &opts()) {
                Ok(_) => "parsed and planned\n".to_string(),
                Err(e) => format!("{e}\n"),
            },
            Err(e) => format!("{e}\n"),
        };
        if let Err(e) = check(&p, "err", &actual) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn opts() -> wharf_build::stages::BuildOptions {
    let p = wharf_types::oci::Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    };
    wharf_build::stages::BuildOptions {
        target: None,
        build_args: Default::default(),
        target_platform: p.clone(),
        build_platform: p,
    }
}
