//! Docker's variable substitution (BuildKit's shell lexer), as tables: input, variables,
//! expected output (or error). Cases written from the Dockerfile reference's "Environment
//! replacement" section and POSIX parameter expansion, which BuildKit follows.

use std::collections::BTreeMap;

use wharf_build::shell::{Lexer, NoEnv};

fn env() -> BTreeMap<String, String> {
    [
        ("HOME", "/root"),
        ("EMPTY", ""),
        ("NAME", "wharf"),
        ("SPACED", "a  b"),
        ("PATHV", "/usr/local/bin/tool.tar.gz"),
        ("Ü", "unicode"),
        ("_under", "u"),
        ("v1", "one"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn process_word_table() {
    let lx = Lexer::new('\\');
    let e = env();
    let cases: &[(&str, &str)] = &[
        // plain forms
        ("$HOME", "/root"),
        ("${HOME}", "/root"),
        ("x${HOME}y", "x/rooty"),
        ("$HOMEx", ""),
        ("${HOME}x", "/rootx"),
        ("$_under$v1", "uone"),
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$ x", "$ x"),
        ("$-", ""),
        ("$1x", "x"),
        ("$Ü", "unicode"),
        // modifiers
        ("${UNSET:-word}", "word"),
        ("${EMPTY:-word}", "word"),
        ("${NAME:-word}", "wharf"),
        ("${UNSET-word}", "word"),
        ("${EMPTY-word}", ""),
        ("${NAME-word}", "wharf"),
        ("${UNSET:+word}", ""),
        ("${EMPTY:+word}", ""),
        ("${NAME:+word}", "word"),
        ("${UNSET+word}", ""),
        ("${EMPTY+word}", "word"),
        ("${NAME+word}", "word"),
        ("${NAME:?must be set}", "wharf"),
        ("${EMPTY?fine when empty}", ""),
        // nested and quoted words inside modifiers
        ("${UNSET:-$HOME}", "/root"),
        ("${UNSET:-${NAME:+x$NAME}}", "xwharf"),
        ("${UNSET:-'a b'}", "a b"),
        ("${UNSET:-\"$NAME\"}", "wharf"),
        ("${UNSET:-a\\}b}", "a}b"),
        // pattern removal
        ("${PATHV#*/}", "usr/local/bin/tool.tar.gz"),
        ("${PATHV##*/}", "tool.tar.gz"),
        ("${PATHV%.*}", "/usr/local/bin/tool.tar"),
        ("${PATHV%%.*}", "/usr/local/bin/tool"),
        ("${PATHV#nomatch}", "/usr/local/bin/tool.tar.gz"),
        ("${NAME#w?a}", "rf"),
        ("${NAME%[a-z]}", "whar"),
        // replacement
        ("${NAME/a/A}", "whArf"),
        ("${SPACED// /_}", "a__b"),
        ("${NAME/x/y}", "wharf"),
        // quotes
        ("'$HOME'", "$HOME"),
        ("\"$HOME\"", "/root"),
        ("\"'$HOME'\"", "'/root'"),
        ("'\"$HOME\"'", "\"$HOME\""),
        ("\"a  b\"", "a  b"),
        ("a\"\"b", "ab"),
        ("''", ""),
        // escapes outside quotes: anything, and dropped at the end
        ("\\$HOME", "$HOME"),
        ("\\${HOME}", "${HOME}"),
        ("a\\ b", "a b"),
        ("a\\\\b", "a\\b"),
        ("\\'x\\'", "'x'"),
        ("end\\", "end"),
        // escapes inside double quotes: only \" \$ \\ are escapes
        ("\"\\$HOME\"", "$HOME"),
        ("\"\\\"\"", "\""),
        ("\"\\\\\"", "\\"),
        ("\"\\n\"", "\\n"),
        ("\"\\a\"", "\\a"),
        // single quotes keep backslashes
        ("'\\$HOME'", "\\$HOME"),
        // whitespace survives in process_word
        ("$SPACED", "a  b"),
    ];
    let mut bad = Vec::new();
    for (input, want) in cases {
        match lx.process_word(input, &e) {
            Ok(got) if got == *want => {}
            other => bad.push(format!("{input:?}: want {want:?}, got {other:?}")),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn backtick_escape_table() {
    let lx = Lexer::new('`');
    let e = env();
    for (input, want) in [
        ("`$HOME", "$HOME"),
        ("C:\\path\\$NAME", "C:\\path\\wharf"),
        ("\"`\"\"", "\""),
        ("a` b", "a b"),
    ] {
        assert_eq!(lx.process_word(input, &e).unwrap(), want, "{input}");
    }
}

#[test]
fn process_words_splits_at_unquoted_whitespace() {
    let lx = Lexer::new('\\');
    let e = env();
    let cases: &[(&str, &[&str])] = &[
        ("a b  c", &["a", "b", "c"]),
        ("$SPACED", &["a", "b"]),
        ("\"$SPACED\"", &["a  b"]),
        ("x$SPACED", &["xa", "b"]),
        ("'a b' c", &["a b", "c"]),
        ("a\\ b c", &["a b", "c"]),
        ("\"\" a", &["a"]),
        ("$EMPTY", &[]),
        ("  ", &[]),
    ];
    for (input, want) in cases {
        assert_eq!(lx.process_words(input, &e).unwrap(), *want, "{input:?}");
    }
}

#[test]
fn errors_in_dockers_words() {
    let lx = Lexer::new('\\');
    let e = env();
    for (input, want) in [
        (
            "${HOME",
            "failed to process \"${HOME\": syntax error: missing '}'",
        ),
        ("${", "failed to process \"${\": syntax error: missing '}'"),
        (
            "${}",
            "failed to process \"${}\": syntax error: bad substitution",
        ),
        (
            "${:-x}",
            "failed to process \"${:-x}\": syntax error: bad substitution",
        ),
        (
            "${HOME:x}",
            "failed to process \"${HOME:x}\": unsupported modifier (:x) in substitution",
        ),
        (
            "${HOME:#x}",
            "failed to process \"${HOME:#x}\": unsupported modifier (:#) in substitution",
        ),
        (
            "${UNSET:?}",
            "failed to process \"${UNSET:?}\": UNSET: is not allowed to be unset",
        ),
        (
            "${EMPTY:?}",
            "failed to process \"${EMPTY:?}\": EMPTY: is not allowed to be empty",
        ),
        (
            "${UNSET?set it}",
            "failed to process \"${UNSET?set it}\": UNSET: set it",
        ),
        (
            "'open",
            "failed to process \"'open\": unexpected end of statement while looking for matching single-quote",
        ),
        (
            "\"open",
            "failed to process \"\\\"open\": unexpected end of statement while looking for matching double-quote",
        ),
        (
            "${UNSET:-x",
            "failed to process \"${UNSET:-x\": syntax error: missing '}'",
        ),
    ] {
        let got = lx.process_word(input, &e).expect_err(input).to_string();
        assert_eq!(got, want, "{input}");
    }
}

#[test]
fn skip_unset_keeps_what_it_cannot_expand() {
    let mut lx = Lexer::new('\\');
    lx.skip_unset = true;
    let e = env();
    assert_eq!(lx.process_word("$UNSET-$NAME", &e).unwrap(), "$UNSET-wharf");
    assert_eq!(lx.process_word("${UNSET}", &e).unwrap(), "${UNSET}");
    assert_eq!(lx.process_word("${UNSET:-x}", &e).unwrap(), "${UNSET:-x}");
}

#[test]
fn nesting_is_bounded() {
    let lx = Lexer::new('\\');
    let deep = "${a:-".repeat(10_000) + &"}".repeat(10_000);
    let err = lx.process_word(&deep, &NoEnv).expect_err("too deep");
    assert!(err.to_string().contains("nested deeper than"), "{err}");
    // just under the cap still works
    let ok = "${a:-".repeat(60) + "x" + &"}".repeat(60);
    assert_eq!(lx.process_word(&ok, &NoEnv).unwrap(), "x");
}

#[test]
fn image_style_env_lists_last_entry_wins() {
    let lx = Lexer::new('\\');
    let env: Vec<String> = vec![
        "PATH=/bin".into(),
        "A=first".into(),
        "A=second".into(),
        "NOEQUALS".into(),
    ];
    assert_eq!(
        lx.process_word("$A:$PATH:${NOEQUALS:-unset}", &env)
            .unwrap(),
        "second:/bin:unset"
    );
}
