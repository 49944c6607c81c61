//! `.dockerignore` tables, from docker's `.dockerignore` documentation and Go's
//! `filepath.Match` rules.

use wharf_build::dockerignore::{ignore_file_candidates, Dockerignore, IgnoreError};

fn check(file: &str, cases: &[(&str, bool)]) {
    let ig = Dockerignore::parse(file).expect("parses");
    let bad: Vec<String> = cases
        .iter()
        .filter(|(p, want)| ig.excluded(p) != *want)
        .map(|(p, want)| format!("{p}: want excluded={want}"))
        .collect();
    assert!(bad.is_empty(), "patterns:\n{file}\n{}", bad.join("\n"));
}

#[test]
fn documented_example() {
    check(
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
        &[
            ("somedir/temporary.txt", true),
            ("somedir/temp", true),
            ("somedir/temp/inside", true),
            ("somedir/subdir/temporary.txt", true),
            ("tempa", true),
            ("tempb", true),
            ("temp", false),
            ("tempab", false),
            ("temporary.txt", false),
            ("a/b/c/temp", false),
            ("# comment", false),
        ],
    );
}

#[test]
fn double_star() {
    check(
        "**/*.go\n",
        &[
            ("main.go", true),
            ("a/b/c.go", true),
            ("a/b/c.go.txt", false),
            ("go", false),
        ],
    );
    check(
        "a/**/b\n",
        &[
            ("a/b", true),
            ("a/x/b", true),
            ("a/x/y/b", true),
            ("ab", false),
        ],
    );
    check(
        "vendor/**\n",
        &[("vendor/x", true), ("vendor/x/y", true), ("vendor", false)],
    );
    // a leading "**" with only literals after is a suffix match (docker's fast path)
    check(
        "**/node_modules\n",
        &[
            ("node_modules", true),
            ("a/node_modules", true),
            ("a/node_modules/x/y", true),
            ("a/my_node_modules", false),
        ],
    );
    check("**\n", &[("anything", true), ("a/b", true)]);
}

#[test]
fn exceptions_last_match_wins() {
    check(
        "*.md\n!README.md\n",
        &[("a.md", true), ("README.md", false), ("docs/a.md", false)],
    );
    check(
        "*.md\n!README*.md\nREADME-secret.md\n",
        &[
            ("a.md", true),
            ("README.md", false),
            ("README-x.md", false),
            ("README-secret.md", true),
        ],
    );
    check(
        "*.md\nREADME-secret.md\n!README*.md\n",
        &[("README-secret.md", false), ("other.md", true)],
    );
    // include-only: exclude everything, then bring back
    check(
        "*\n!src\n!Dockerfile\n",
        &[
            ("src", false),
            ("src/main.rs", false),
            ("Dockerfile", false),
            ("target/x", true),
            (".git/HEAD", true),
        ],
    );
}

#[test]
fn directories_exclude_their_contents() {
    check(
        "build\n!build/keep.txt\n",
        &[
            ("build", true),
            ("build/a/b/c", true),
            ("build/keep.txt", false),
            ("builder", false),
            ("x/build", false),
        ],
    );
}

#[test]
fn cleaning_and_leading_slash() {
    for file in [
        "/foo/bar\n",
        "./foo/bar\n",
        "foo/bar/\n",
        "foo//bar\n",
        "foo/x/../bar\n",
    ] {
        check(
            file,
            &[
                ("foo/bar", true),
                ("foo/bar/baz", true),
                ("/foo/bar", true),
                ("./foo/bar", true),
                ("foo", false),
                ("bar", false),
            ],
        );
    }
    // whitespace around a pattern and around "!" is trimmed; "#" not in column 1 is a pattern
    check(
        "  spaced  \n ! spaced/keep\n #hash\n",
        &[("spaced/x", true), ("spaced/keep", false), ("#hash", true)],
    );
}

#[test]
fn glob_syntax() {
    check(
        "[a-c]?.txt\nfile\\*\nx[^0-9]\n",
        &[
            ("a1.txt", true),
            ("d1.txt", false),
            ("a/1.txt", false),
            ("file*", true),
            ("filex", false),
            ("xa", true),
            ("x1", false),
        ],
    );
    // * and ? never cross "/"
    check("a*b\n", &[("axxb", true), ("ax/xb", false)]);
}

#[test]
fn dockerfile_and_dockerignore_match_like_any_file() {
    // docker: they are still sent (the builder reads them) but COPY does not see them
    check(
        "Dockerfile\n.dockerignore\n",
        &[
            ("Dockerfile", true),
            (".dockerignore", true),
            ("sub/Dockerfile", false),
        ],
    );
    assert_eq!(
        ignore_file_candidates("build/Dockerfile"),
        ["build/Dockerfile.dockerignore", ".dockerignore"]
    );
}

#[test]
fn bad_patterns_are_refused() {
    assert_eq!(
        Dockerignore::parse("!\n").unwrap_err(),
        IgnoreError::IllegalExclusion
    );
    for p in ["[", "a[b", "[z-a]", "x\\"] {
        assert!(
            matches!(Dockerignore::parse(p), Err(IgnoreError::BadPattern(_))),
            "{p}"
        );
    }
    let big = "a\n".repeat(600_000);
    assert!(matches!(
        Dockerignore::parse(&big),
        Err(IgnoreError::TooLarge { .. })
    ));
}

#[test]
fn walk_pruning_is_safe() {
    let ig = Dockerignore::parse("node_modules\n*.log\n").unwrap();
    assert!(!ig.may_include_under("node_modules"));
    assert!(!ig.may_include_under("node_modules/a"));
    assert!(ig.may_include_under("src"));

    let ig = Dockerignore::parse("vendor\n!vendor/keep/**\n").unwrap();
    assert!(ig.may_include_under("vendor"));
    assert!(ig.may_include_under("vendor/keep"));
    assert!(!ig.may_include_under("vendor/other"));

    let ig = Dockerignore::parse("*\n!**/*.go\n").unwrap();
    assert!(ig.may_include_under("deep"));

    let ig = Dockerignore::parse("a\n!a/b/c.txt\n").unwrap();
    assert!(ig.may_include_under("a"));
    assert!(ig.may_include_under("a/b"));
    assert!(!ig.may_include_under("a/x"));
    // whatever pruning says, it never hides a file that is not excluded
    for (dir, file) in [("a", "a/b/c.txt"), ("a/b", "a/b/c.txt")] {
        if !ig.excluded(file) {
            assert!(
                ig.may_include_under(dir),
                "{dir} pruned but {file} included"
            );
        }
    }
}
