//! Docker's shell lexer for the builder (BuildKit's `shell.Lex`): variable substitution and
//! word splitting as the Dockerfile instructions that expand use them.
//!
//! What it does: `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`,
//! `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//! `${VAR/pat/rep}`, `${VAR//pat/rep}`; single quotes (literal), double quotes (`$` expands,
//! the escape character escapes only `"`, `$` and itself), the escape character outside
//! quotes (escapes anything; dropped at the end of the word). An unset variable expands to
//! the empty string unless [`Lexer::skip_unset`] keeps it as written.
//!
//! What it must not do: run commands (no `$(...)`, no backticks), read the process
//! environment, or recurse without bound (nesting of `${...}` is capped at
//! [`MAX_NESTING`]).

use std::collections::{BTreeMap, HashMap};

/// How deep `${a:-${b:-...}}` may nest before the lexer refuses the word.
pub const MAX_NESTING: usize = 64;

/// Where the lexer looks variables up.
pub trait Env {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

/// `KEY=value` entries as an image config or a RUN step carries them; the last one wins.
impl Env for [String] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|e| {
            let (k, v) = e.split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

impl Env for Vec<String> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A word the lexer cannot process. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR?msg}` / `${VAR:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("substitutions nested deeper than {MAX_NESTING} levels")]
    TooDeep,
}

/// A [`ShellError`] with the word it happened in: `failed to process "${a": ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {error}")]
pub struct WordError {
    pub word: String,
    pub error: ShellError,
}

impl wharf_types::error::HasKind for WordError {
    fn kind(&self) -> wharf_types::ErrorKind {
        wharf_types::ErrorKind::InvalidArgument
    }
}

/// The lexer's settings. [`Lexer::new`] is what the builder uses for instructions.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output (the heredoc detector's mode).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave `$UNSET` / `${UNSET...}` as written instead of expanding to nothing.
    pub skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }

    /// One word out: quotes removed, escapes applied, variables expanded, whitespace kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, WordError> {
        self.run(word, env).map(|(w, _)| w)
    }

    /// Words out: as [`Lexer::process_word`], split at unquoted whitespace (including
    /// whitespace that came out of an unquoted `$VAR`).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, WordError> {
        self.run(word, env).map(|(_, ws)| ws)
    }

    fn run(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), WordError> {
        let mut sw = ShellWord {
            lx: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            depth: 0,
        };
        sw.process_stop_on(None, self.raw_escapes)
            .map_err(|error| WordError {
                word: word.to_string(),
                error,
            })
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() && self.in_word {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else if !ch.is_whitespace() {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct ShellWord<'a> {
    lx: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    depth: usize,
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                _ => {
                    self.next();
                    let mut ch = ch;
                    if ch == self.lx.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(c) => ch = c,
                        }
                        words.add_raw_char(ch);
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(ShellError::UnexpectedEnd(stop));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lx.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ShellError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lx.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lx.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ShellError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lx.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lx.escape {
                        if self.lx.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // an escape at the end of the word is dropped
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lx.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }

    fn nested_stop_on(
        &mut self,
        stop: char,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        if self.depth >= MAX_NESTING {
            return Err(ShellError::TooDeep);
        }
        self.depth += 1;
        let r = self.process_stop_on(Some(stop), raw_escapes);
        self.depth -= 1;
        r
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(ShellError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellError::BadSubstitution),
            _ => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return Err(ShellError::MissingBrace);
        };
        let mut chs = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => {
                return Ok(match self.lookup(&name) {
                    Some(v) => v,
                    None if self.lx.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            ':' => {
                null_is_unset = true;
                ch = self.next().ok_or(ShellError::MissingBrace)?;
                chs.push(ch);
            }
            '/' => return self.replace(&name),
            _ => {}
        }
        if !matches!(ch, '+' | '-' | '?' | '#' | '%') {
            return Err(ShellError::UnsupportedModifier(chs));
        }
        let raw = ch == '#' || ch == '%';
        if null_is_unset && raw {
            return Err(ShellError::UnsupportedModifier(chs));
        }
        let word = match self.nested_stop_on('}', raw) {
            Ok((w, _)) => w,
            Err(e) => {
                if self.peek().is_none() && !matches!(e, ShellError::TooDeep) {
                    return Err(ShellError::MissingBrace);
                }
                return Err(e);
            }
        };
        let value = self.lookup(&name);
        if self.lx.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let empty_or_unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match ch {
            '-' => Ok(if empty_or_unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty_or_unset { String::new() } else { word }),
            '?' => match value {
                None => Err(ShellError::Required {
                    name,
                    message: non_empty_or(word, "is not allowed to be unset"),
                }),
                Some(v) if null_is_unset && v.is_empty() => Err(ShellError::Required {
                    name,
                    message: non_empty_or(word, "is not allowed to be empty"),
                }),
                Some(v) => Ok(v),
            },
            _ => {
                let value = value.unwrap_or_default();
                let (greedy, pat) = match word.strip_prefix(ch) {
                    Some(p) => (true, p.to_string()),
                    None => (false, word),
                };
                let pat = glob_tokens(&pat, self.lx.escape);
                Ok(if ch == '#' {
                    trim_prefix(&pat, &value, greedy)
                } else {
                    trim_suffix(&pat, &value, greedy)
                })
            }
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn replace(&mut self, name: &str) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pattern, _) = self.nested_stop_on('/', true)?;
        let (replacement, _) = self.nested_stop_on('}', true)?;
        let Some(value) = self.lookup(name) else {
            if self.lx.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let pat = glob_tokens(&pattern, self.lx.escape);
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            if replaced && !all {
                out.extend(&v[i..]);
                break;
            }
            // leftmost match, longest at that position
            let hit = (i..=v.len())
                .rev()
                .find(|&end| glob_match(&pat, &v[i..end]));
            match hit {
                Some(end) => {
                    out.push_str(&replacement);
                    replaced = true;
                    if end == i {
                        if let Some(c) = v.get(i) {
                            out.push(*c);
                        }
                        i += 1;
                    } else {
                        i = end;
                    }
                }
                None => {
                    if let Some(c) = v.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                }
            }
        }
        Ok(out)
    }
}

fn non_empty_or(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word
    }
}

/// A token of a shell pattern (`${VAR#pattern}`): `*` and `?` match any character, `/`
/// included; `[...]` is a class (`!` or `^` negates); the escape character quotes.
#[derive(Debug, Clone)]
enum Glob {
    Lit(char),
    Any,
    One,
    Class { neg: bool, items: Vec<(char, char)> },
}

fn glob_tokens(pat: &str, escape: char) -> Vec<Glob> {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => out.push(Glob::Any),
            '?' => out.push(Glob::One),
            '[' => match parse_class(&chars, i, escape) {
                Some((tok, next)) => {
                    out.push(tok);
                    i = next;
                }
                None => out.push(Glob::Lit('[')),
            },
            c if c == escape => match chars.get(i) {
                Some(n) => {
                    out.push(Glob::Lit(*n));
                    i += 1;
                }
                None => out.push(Glob::Lit(c)),
            },
            c => out.push(Glob::Lit(c)),
        }
    }
    out
}

/// A `[...]` class starting after the `[` at `i`; `None` when it never closes.
fn parse_class(chars: &[char], mut i: usize, escape: char) -> Option<(Glob, usize)> {
    let neg = matches!(chars.get(i), Some('!' | '^'));
    if neg {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let mut c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Glob::Class { neg, items }, i + 1));
        }
        first = false;
        if c == escape {
            i += 1;
            c = *chars.get(i)?;
        }
        i += 1;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|n| *n != ']') {
            let mut hi = chars[i + 1];
            i += 2;
            if hi == escape {
                hi = *chars.get(i)?;
                i += 1;
            }
            items.push((c, hi));
        } else {
            items.push((c, c));
        }
    }
}

/// Whether the whole of `text` matches the pattern. Iterative with one backtrack point per
/// `*`, so linear-ish and never recursive.
fn glob_match(pat: &[Glob], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let ok = match pat.get(p) {
            Some(Glob::Any) => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(Glob::One) => true,
            Some(Glob::Lit(c)) => *c == text[t],
            Some(Glob::Class { neg, items }) => {
                let c = text[t];
                items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *neg
            }
            None => false,
        };
        if ok {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|g| matches!(g, Glob::Any))
}

fn trim_prefix(pat: &[Glob], value: &str, greedy: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new((0..=v.len()).rev())
    } else {
        Box::new(0..=v.len())
    };
    match ends.find(|&e| glob_match(pat, &v[..e])) {
        Some(e) => v[e..].iter().collect(),
        None => value.to_string(),
    }
}

fn trim_suffix(pat: &[Glob], value: &str, greedy: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new(0..=v.len())
    } else {
        Box::new((0..=v.len()).rev())
    };
    match starts.find(|&s| glob_match(pat, &v[s..])) {
        Some(s) => v[..s].iter().collect(),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("a", "x"), ("e", ""), ("sp", "one  two")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn basic() {
        let lx = Lexer::new('\\');
        assert_eq!(lx.process_word("$a${a}", &env()).unwrap(), "xx");
        assert_eq!(
            lx.process_words("$sp z", &env()).unwrap(),
            ["one", "two", "z"]
        );
        assert_eq!(
            lx.process_words("\"$sp\" z", &env()).unwrap(),
            ["one  two", "z"]
        );
    }

    #[test]
    fn glob() {
        let p = glob_tokens("a*c", '\\');
        assert!(glob_match(&p, &"abbc".chars().collect::<Vec<_>>()));
        assert!(!glob_match(&p, &"abb".chars().collect::<Vec<_>>()));
        assert_eq!(trim_prefix(&glob_tokens("*/", '\\'), "a/b/c", false), "b/c");
        assert_eq!(trim_prefix(&glob_tokens("*/", '\\'), "a/b/c", true), "c");
        assert_eq!(
            trim_suffix(&glob_tokens(".*", '\\'), "f.tar.gz", false),
            "f.tar"
        );
        assert_eq!(trim_suffix(&glob_tokens(".*", '\\'), "f.tar.gz", true), "f");
    }
}
