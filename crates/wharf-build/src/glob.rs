//! COPY/ADD source wildcards: Go's `filepath.Match`, which docker applies to a source
//! (`*` and `?` never match `/`, `[...]` classes with `^`/`!` negation and ranges, `\`
//! escapes). The executor matches one path component at a time.

/// A malformed pattern (`filepath.ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {0:?}")]
pub struct BadPattern(pub String);

/// Whether `s` has a wildcard (`*`, `?`, `[`): docker matches such a source as a pattern.
pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `filepath.Match(pattern, name)`.
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let bad = || BadPattern(pattern.to_string());
    // iterative with one backtrack point for the last `*` (linear in practice)
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
            continue;
        }
        if pi < p.len() && ni < n.len() {
            let (ok, next) = match_one(&p, pi, n[ni]).ok_or_else(bad)?;
            if ok {
                pi = next;
                ni += 1;
                continue;
            }
        } else if pi == p.len() && ni == n.len() {
            return Ok(true);
        }
        // mismatch: let the last `*` take one more character (never a `/`)
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => {
                // the rest of the pattern must still be well formed
                check_rest(&p, pi).ok_or_else(bad)?;
                return Ok(false);
            }
        }
    }
}

/// Matches one pattern item at `pi` against `c`: (matched, index after the item); None for
/// a malformed item.
fn match_one(p: &[char], pi: usize, c: char) -> Option<(bool, usize)> {
    match p[pi] {
        '?' => Some((c != '/', pi + 1)),
        '\\' => {
            let e = *p.get(pi + 1)?;
            Some((e == c, pi + 2))
        }
        '[' => {
            let mut i = pi + 1;
            let negated = matches!(p.get(i), Some('^') | Some('!'));
            if negated {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            loop {
                let mut lo = *p.get(i)?;
                if lo == ']' && !first {
                    i += 1;
                    break;
                }
                first = false;
                if lo == '\\' {
                    i += 1;
                    lo = *p.get(i)?;
                }
                i += 1;
                let mut hi = lo;
                if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
                    i += 1;
                    hi = *p.get(i)?;
                    if hi == '\\' {
                        i += 1;
                        hi = *p.get(i)?;
                    }
                    i += 1;
                    if hi < lo {
                        return None;
                    }
                }
                if lo <= c && c <= hi {
                    matched = true;
                }
            }
            Some((matched != negated && c != '/', i))
        }
        x => Some((x == c, pi + 1)),
    }
}

/// Whether the pattern from `pi` on is well formed (Go reports a bad pattern even after a
/// mismatch).
fn check_rest(p: &[char], mut pi: usize) -> Option<()> {
    while pi < p.len() {
        if p[pi] == '*' {
            pi += 1;
            continue;
        }
        pi = match_one(p, pi, '\u{0}')?.1;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match_table() {
        // from Go's documentation of filepath.Match (behaviour, not its test file)
        let yes = [
            ("abc", "abc"),
            ("*", "abc"),
            ("*c", "abc"),
            ("a*", "a"),
            ("a*/b", "abc/b"),
            ("a*b*c*d*e*/f", "axbxcxdxe/f"),
            ("a*b?c*x", "abxbbxdbxebxczzx"),
            ("ab[c]", "abc"),
            ("ab[b-d]", "abc"),
            ("ab[^c]", "abd"),
            ("ab[!c]", "abd"),
            ("a\\*b", "a*b"),
            ("a?b", "a☺b"),
            ("[a-ζ]*", "α"),
            ("*.txt", "f.txt"),
            ("[\\]a]", "]"),
            ("[x\\-]", "-"),
            ("[]a]x", "]x"),
        ];
        for (p, n) in yes {
            assert_eq!(matches(p, n), Ok(true), "{p} {n}");
        }
        let no = [
            ("*x", "xxx/"),
            ("a*", "ab/c"),
            ("a*/b", "a/c/b"),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"),
            ("ab[^c]", "abc"),
            ("a?b", "a/b"),
            ("a*b", "a/b"),
            ("*.txt", "f.md"),
            ("a\\*b", "ab"),
        ];
        for (p, n) in no {
            assert_eq!(matches(p, n), Ok(false), "{p} {n}");
        }
        for p in ["[", "[^", "a\\", "[a-", "[z-a]", "*x["] {
            assert!(matches(p, "x").is_err(), "{p} is malformed");
        }
        assert!(has_meta("a*") && has_meta("[a]") && !has_meta("plain/name"));
    }
}
