//! `.dockerignore` as docker reads and matches it (docker's `dockerignore.ReadAll` and
//! `patternmatcher`):
//!
//! - a line starting with `#` (in its first column) is a comment; other lines are trimmed,
//!   empty ones skipped; `!` makes an exception (re-include);
//! - each pattern is cleaned as Go's `filepath.Clean` does, and a leading `/` dropped, so
//!   `/a`, `./a` and `a/` are all `a`;
//! - `*` and `?` do not cross `/`, `[...]` is a class, `\` quotes, `**` matches any number
//!   of directories (`**/x`, `a/**`, `a/**/b`);
//! - a path is excluded when the last pattern that matches it or one of its parent
//!   directories is not an exception (so `dir` excludes everything under `dir`, and
//!   `!dir/keep` brings one file back);
//! - the Dockerfile and `.dockerignore` match like any file: the builder still reads them
//!   (docker sends them anyway), but COPY and ADD do not see them when excluded
//!   ([`Dockerignore::excluded`] answers for COPY/ADD). A Dockerfile-specific
//!   `<Dockerfile>.dockerignore` beside the Dockerfile replaces `.dockerignore`
//!   ([`ignore_file_candidates`]).
//!
//! What it must not do: read files. Patterns are capped in number and length.

use wharf_types::error::HasKind;
use wharf_types::ErrorKind;

/// A `.dockerignore` larger than this is refused.
pub const MAX_IGNORE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    #[error(".dockerignore is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    #[error("syntax error in pattern {0:?}")]
    BadPattern(String),
}

impl HasKind for IgnoreError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// The ignore files to try for a Dockerfile at `dockerfile` (relative to the context):
/// `<dockerfile>.dockerignore` first, then `.dockerignore` at the context root.
pub fn ignore_file_candidates(dockerfile: &str) -> Vec<String> {
    vec![format!("{dockerfile}.dockerignore"), ".dockerignore".into()]
}

/// Go's `path.Clean` for `/`-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    Class {
        neg: bool,
        items: Vec<(char, char)>,
    },
    /// `**` at the end: anything.
    Any,
    /// `**` (with its `/`) elsewhere: `(.*/)?`.
    Dirs,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    typ: MatchType,
    toks: Vec<Tok>,
}

/// Go's `filepath.Match` syntax check: classes closed and non-empty, no `-` or `]` where
/// a class item must be, no `\` at the end.
fn validate(p: &str) -> bool {
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    // one class item character (escaped or not), or None when the pattern is malformed
    let esc = |i: &mut usize| -> Option<char> {
        match c.get(*i) {
            None | Some('-' | ']') => None,
            Some('\\') => {
                *i += 2;
                c.get(*i - 1).copied()
            }
            Some(ch) => {
                *i += 1;
                Some(*ch)
            }
        }
    };
    while i < c.len() {
        match c[i] {
            '\\' => {
                if i + 1 >= c.len() {
                    return false;
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if c.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    if c.get(i) == Some(&']') && n > 0 {
                        i += 1;
                        break;
                    }
                    let Some(lo) = esc(&mut i) else {
                        return false;
                    };
                    if c.get(i) == Some(&'-') {
                        i += 1;
                        // a range that runs backwards does not compile (docker's regexp)
                        match esc(&mut i) {
                            Some(hi) if hi >= lo => {}
                            _ => return false,
                        }
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    true
}

fn class(c: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let neg = c.get(i) == Some(&'^');
    if neg {
        i += 1;
    }
    let mut items = Vec::new();
    let take = |i: &mut usize| -> Option<char> {
        let mut ch = *c.get(*i)?;
        if ch == '\\' {
            *i += 1;
            ch = *c.get(*i)?;
        }
        *i += 1;
        Some(ch)
    };
    loop {
        if c.get(i) == Some(&']') && !items.is_empty() {
            return Some((Tok::Class { neg, items }, i + 1));
        }
        let lo = take(&mut i)?;
        let hi = if c.get(i) == Some(&'-') {
            i += 1;
            take(&mut i)?
        } else {
            lo
        };
        items.push((lo, hi));
    }
}

impl Pattern {
    fn compile(cleaned: String, exclusion: bool) -> Pattern {
        let c: Vec<char> = cleaned.chars().collect();
        let mut toks = Vec::new();
        let mut typ = MatchType::Exact;
        let mut i = 0;
        let mut first = true;
        while i < c.len() {
            let ch = c[i];
            i += 1;
            match ch {
                '*' if c.get(i) == Some(&'*') => {
                    i += 1;
                    if c.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= c.len() {
                        if typ == MatchType::Exact {
                            typ = MatchType::Prefix;
                        } else {
                            typ = MatchType::Regexp;
                        }
                        toks.push(Tok::Any);
                    } else {
                        toks.push(Tok::Dirs);
                        typ = MatchType::Regexp;
                    }
                    if first {
                        typ = MatchType::Suffix;
                    }
                }
                '*' => {
                    toks.push(Tok::Star);
                    typ = MatchType::Regexp;
                }
                '?' => {
                    toks.push(Tok::One);
                    typ = MatchType::Regexp;
                }
                // an escaped character is literal; matched by tokens, not by comparing
                // the pattern's text (which still holds the backslash)
                '\\' => {
                    if typ == MatchType::Exact {
                        typ = MatchType::Regexp;
                    }
                    match c.get(i) {
                        Some(n) => {
                            toks.push(Tok::Lit(*n));
                            i += 1;
                        }
                        None => toks.push(Tok::Lit('\\')),
                    }
                }
                '[' => {
                    typ = MatchType::Regexp;
                    match class(&c, i) {
                        Some((t, next)) => {
                            toks.push(t);
                            i = next;
                        }
                        None => toks.push(Tok::Lit('[')),
                    }
                }
                ']' => {
                    typ = MatchType::Regexp;
                    toks.push(Tok::Lit(']'));
                }
                ch => toks.push(Tok::Lit(ch)),
            }
            first = false;
        }
        Pattern {
            cleaned,
            exclusion,
            typ,
            toks,
        }
    }

    /// The pattern as cleaned, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> bool {
        match self.typ {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            MatchType::Regexp => {
                let text: Vec<char> = path.chars().collect();
                full_match(&self.toks, &text)
            }
        }
    }

    /// Whether some path starting with `prefix` (which ends in `/`) could match.
    fn could_extend(&self, prefix: &str) -> bool {
        match self.typ {
            MatchType::Exact => self.cleaned.starts_with(prefix),
            MatchType::Prefix => {
                let p = &self.cleaned[..self.cleaned.len() - 2];
                p.starts_with(prefix) || prefix.starts_with(p)
            }
            MatchType::Suffix => true,
            MatchType::Regexp => {
                let text: Vec<char> = prefix.chars().collect();
                alive_after(&self.toks, &text)
            }
        }
    }
}

/// Whether the tokens match all of `text`: a table over (token, position), filled from the
/// end, so O(tokens × length) whatever the pattern.
fn full_match(toks: &[Tok], text: &[char]) -> bool {
    let n = text.len();
    let mut next = vec![false; n + 1];
    next[n] = true; // no tokens left: only the end matches
    for t in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        match t {
            Tok::Any => {
                let mut any = false;
                for i in (0..=n).rev() {
                    any |= next[i];
                    cur[i] = any;
                }
            }
            Tok::Star => {
                let mut any = false;
                for i in (0..=n).rev() {
                    if i < n && text[i] == '/' {
                        any = false;
                    }
                    any |= next[i];
                    cur[i] = any;
                }
            }
            Tok::Dirs => {
                // empty, or anything ending in '/'
                let mut after_slash = false;
                for i in (0..=n).rev() {
                    if i < n && text[i] == '/' && next[i + 1] {
                        after_slash = true;
                    }
                    cur[i] = next[i] || after_slash;
                }
            }
            one => {
                for i in 0..n {
                    cur[i] = next[i + 1] && one_char(one, text[i]);
                }
            }
        }
        next = cur;
    }
    next[0]
}

fn one_char(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => *l == c,
        Tok::One => c != '/',
        Tok::Class { neg, items } => items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *neg,
        _ => false,
    }
}

/// Whether a forward run of the tokens over `text` leaves any state alive (more text could
/// still complete a match).
fn alive_after(toks: &[Tok], text: &[char]) -> bool {
    let closure = |set: &mut Vec<bool>| {
        for i in 0..toks.len() {
            if set[i] && matches!(toks[i], Tok::Any | Tok::Star | Tok::Dirs) {
                set[i + 1] = true;
            }
        }
    };
    let mut states = vec![false; toks.len() + 1];
    states[0] = true;
    closure(&mut states);
    for &c in text {
        let mut next = vec![false; toks.len() + 1];
        for i in 0..toks.len() {
            if !states[i] {
                continue;
            }
            match &toks[i] {
                Tok::Any | Tok::Dirs => next[i] = true,
                Tok::Star => next[i] = c != '/',
                t => {
                    if one_char(t, c) {
                        next[i + 1] = true;
                    }
                }
            }
            if let Tok::Dirs = toks[i] {
                if c == '/' {
                    next[i + 1] = true;
                }
            }
        }
        closure(&mut next);
        states = next;
        if !states.iter().any(|s| *s) {
            return false;
        }
    }
    states.iter().any(|s| *s)
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
}

impl Dockerignore {
    /// Reads a `.dockerignore`'s text (docker's `ReadAll`, then its pattern matcher).
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        if text.len() > MAX_IGNORE_BYTES {
            return Err(IgnoreError::TooLarge {
                size: text.len(),
                limit: MAX_IGNORE_BYTES,
            });
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for raw in text.lines() {
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut p = p.to_string();
            if !p.is_empty() {
                p = clean(&p);
                if p.len() > 1 && p.starts_with('/') {
                    p.remove(0);
                }
            }
            lines.push(if invert { format!("!{p}") } else { p });
        }
        Self::from_patterns(&lines)
    }

    /// Patterns as docker's `patternmatcher.New` takes them (`!` for exceptions).
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, IgnoreError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean(p);
            let (exclusion, p) = match p.strip_prefix('!') {
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            if p.is_empty() {
                return Err(IgnoreError::IllegalExclusion);
            }
            if !validate(&p) {
                return Err(IgnoreError::BadPattern(p));
            }
            out.push(Pattern::compile(p, exclusion));
        }
        Ok(Dockerignore { patterns: out })
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether `path` (relative to the context; `/`, `./` and `..` cleaned away) is left out
    /// of what COPY and ADD see.
    pub fn excluded(&self, path: &str) -> bool {
        let file = normalize(path);
        let parents: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(&file);
            if !hit {
                for i in 0..parents.len() {
                    if p.matches(&parents[..=i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// For walk pruning: `false` only when `dir` is excluded and no exception could bring
    /// back anything under it. Conservative: `true` whenever unsure.
    pub fn may_include_under(&self, dir: &str) -> bool {
        let dir = normalize(dir);
        // the context root holds everything
        if dir == "." || !self.excluded(&dir) {
            return true;
        }
        let prefix = format!("{dir}/");
        let ancestors: Vec<String> = {
            let parts: Vec<&str> = dir.split('/').collect();
            (1..=parts.len()).map(|i| parts[..i].join("/")).collect()
        };
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| p.could_extend(&prefix) || ancestors.iter().any(|a| p.matches(a)))
    }
}

fn normalize(path: &str) -> String {
    let c = clean(path);
    let c = c.trim_start_matches('/');
    if c.is_empty() {
        ".".into()
    } else {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        for (i, o) in [
            ("a/b/../c", "a/c"),
            ("./a/", "a"),
            ("/../a", "/a"),
            ("../a", "../a"),
            ("", "."),
            ("a//b", "a/b"),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }

    #[test]
    fn bad_patterns() {
        for p in ["[", "a[", "[]a]", "[-a]", "[a-]", "a\\", "[z-a]"] {
            assert!(!validate(p), "{p}");
        }
        for p in ["[a-z]", "[^a]", "\\*", "*.go", "[\\]]"] {
            assert!(validate(p), "{p}");
        }
    }
}
