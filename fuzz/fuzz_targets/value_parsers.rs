//! docker's small value grammars (`wharf_types::parse`): sizes, Go durations, `--cpus`,
//! `--ulimit`, env entries and env files, and `-p` (`wharf_types::ports`). The first byte picks
//! the parser. Must never panic,
//! and what parses must hold its promises: sizes and cpus non-negative, a duration's sign
//! the input's, soft ≤ hard, every env entry `KEY=value` with a name free of whitespace and
//! no NUL anywhere; a published port is never 0 and its host range is ordered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_types::{parse, ports};

fn check_env(e: &str) {
    let (k, _) = e.split_once('=').expect("an entry has '='");
    assert!(!k.is_empty() && !k.chars().any(char::is_whitespace), "{e:?}");
    assert!(!e.contains('\0'), "{e:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let lookup = |k: &str| (k.len() % 2 == 0).then(|| format!("v{k}"));
    if which % 7 == 6 {
        if let Ok(s) = std::str::from_utf8(rest) {
            if let Ok(v) = ports::parse_publish(s) {
                for m in v {
                    assert!(m.container.port != 0, "{s:?}");
                    if let Some((a, b)) = m.host_ports {
                        assert!(a <= b, "{s:?}");
                    }
                }
            }
        }
        return;
    }
    if which % 7 == 5 {
        if let Ok(v) = parse::env_file(rest, &lookup) {
            v.iter().for_each(|e| check_env(e));
        }
        return;
    }
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 7 {
        0 => {
            if let Ok(n) = parse::size(s) {
                assert!(n >= 0, "{s:?} → {n}");
            }
        }
        1 => {
            if let Ok(ns) = parse::go_duration(s) {
                if ns < 0 {
                    assert!(s.starts_with('-'), "{s:?} → {ns}");
                }
            }
        }
        2 => {
            if let Ok(n) = parse::cpus(s) {
                assert!(n >= 0, "{s:?} → {n}");
            }
        }
        3 => {
            if let Ok(u) = parse::ulimit(s) {
                assert!(u.soft <= u.hard, "{s:?}");
            }
        }
        _ => {
            if let Ok(Some(e)) = parse::env_entry(s, &lookup) {
                check_env(&e);
            }
        }
    }
});
