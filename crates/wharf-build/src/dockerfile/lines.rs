//! Physical lines → nodes, as BuildKit's `parser.Parse`: parser directives at the top,
//! comments, line continuations (the escape character at the end of a line; comment lines
//! and empty lines inside a continuation are dropped), heredocs for RUN/COPY/ADD, then per
//! instruction the split into keyword, `--flags` and arguments (JSON or shell form).

use super::words::{self, Json};
use super::{Directives, Heredoc, SyntaxError, Warning, MAX_LINE_BYTES};
use super::{DockerfileError, MAX_DOCKERFILE_BYTES};
use crate::shell::{Lexer, NoEnv};

/// At most this many heredocs on one instruction line.
pub(super) const MAX_HEREDOCS_PER_LINE: usize = 64;

/// How an instruction's arguments came out of its line.
#[derive(Debug, Clone)]
pub(super) enum Args {
    /// JSON array (exec form).
    Json(Vec<String>),
    /// Words (whitespace fields, or quote-keeping words for ARG).
    Words(Vec<String>),
    /// The rest of the line as one string (shell form, USER, WORKDIR...).
    Rest(String),
    /// ENV/LABEL pairs; `legacy` for `KEY value`.
    Pairs(Vec<(String, String)>),
    /// HEALTHCHECK: the type word and its command.
    Health(String, Box<Args>),
    /// ONBUILD: the trigger's own node.
    Sub(Box<Node>),
    None,
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    /// The keyword as written.
    pub keyword: String,
    pub flags: Vec<String>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    /// 1-based column of the keyword on its first line.
    pub column: usize,
}

pub(super) struct Parsed {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<Warning>,
}

struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, on a line with its leading
    /// whitespace already trimmed. The first line that is not a known directive ends the
    /// directives (an unknown directive is a comment and ends them too).
    fn line(&mut self, line: &str, d: &mut Directives) -> Result<(), SyntaxError> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&name) {
            return Err(SyntaxError::DuplicateDirective(name));
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "escape" => {
                d.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(SyntaxError::InvalidEscape(value.to_string())),
                }
            }
            "syntax" => d.syntax = Some(value.to_string()),
            _ => d.check = Some(value.to_string()),
        }
        Ok(())
    }
}

fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, tail) = rest.split_at(name_len);
    let value = tail.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((name, value))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The line without a trailing `<escape>[ \t]*`, and whether it had one.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(s) => (s, true),
        None => (line, false),
    }
}

struct Lines<'a> {
    src: &'a [u8],
    pos: usize,
    /// 1-based number of the line last returned.
    number: usize,
}

impl<'a> Lines<'a> {
    /// The next physical line without its `\n` (and a `\r` before it).
    fn next(&mut self) -> Option<Result<&'a str, DockerfileError>> {
        if self.pos >= self.src.len() {
            return None;
        }
        let rest = &self.src[self.pos..];
        let (raw, advance) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.number += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let err = |error| DockerfileError::Syntax {
            line: self.number,
            column: None,
            error,
        };
        if raw.len() > MAX_LINE_BYTES {
            return Some(Err(err(SyntaxError::LineTooLong {
                len: raw.len(),
                limit: MAX_LINE_BYTES,
            })));
        }
        Some(std::str::from_utf8(raw).map_err(|_| err(SyntaxError::NotUtf8)))
    }
}

pub(super) fn parse_nodes(src: &[u8]) -> Result<Parsed, DockerfileError> {
    debug_assert!(src.len() <= MAX_DOCKERFILE_BYTES);
    let src = src.strip_prefix(b"\xef\xbb\xbf").unwrap_or(src);
    let mut lines = Lines {
        src,
        pos: 0,
        number: 0,
    };
    let mut d = Directives::default();
    let mut dp = DirectiveParser {
        done: false,
        seen: Vec::new(),
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let syntax = |line, error| DockerfileError::Syntax {
        line,
        column: None,
        error,
    };
    while let Some(first) = lines.next() {
        let first = first?;
        let trimmed = first.trim_start();
        dp.line(trimmed, &mut d)
            .map_err(|e| syntax(lines.number, e))?;
        let start_line = lines.number;
        let column = first[..first.len() - trimmed.len()].chars().count() + 1;
        let content = if is_comment(trimmed) { "" } else { trimmed };
        let (head, mut cont) = trim_continuation(content, d.escape);
        if !cont && head.is_empty() {
            continue;
        }
        let mut line = head.to_string();
        let mut empty_continuation = false;
        while cont {
            let Some(next) = lines.next() else { break };
            let next = next?;
            dp.line(next, &mut d).map_err(|e| syntax(lines.number, e))?;
            if is_comment(next) {
                continue;
            }
            if next.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, more) = trim_continuation(next, d.escape);
            line.push_str(part);
            cont = more;
            if line.len() > MAX_LINE_BYTES {
                return Err(syntax(
                    start_line,
                    SyntaxError::LineTooLong {
                        len: line.len(),
                        limit: MAX_LINE_BYTES,
                    },
                ));
            }
        }
        if empty_continuation {
            warnings.push(Warning {
                line: lines.number,
                message: format!("Empty continuation line found in: {line}"),
            });
        }
        let mut node = node_from_line(&line, &d, false).map_err(|e| syntax(start_line, e))?;
        node.start_line = start_line;
        node.column = column;
        if can_contain_heredoc(&node) && line.contains("<<") {
            let docs = heredocs_from_line(&line).map_err(|e| syntax(start_line, e))?;
            for mut doc in docs {
                let mut terminated = false;
                while let Some(body) = lines.next() {
                    let body = body?;
                    let candidate = if doc.chomp {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(body);
                    doc.content.push('\n');
                }
                if !terminated {
                    return Err(syntax(start_line, SyntaxError::UnterminatedHeredoc));
                }
                if doc.chomp {
                    doc.content = chomp(&doc.content);
                }
                node.heredocs.push(doc);
            }
        }
        node.end_line = lines.number;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(syntax(lines.number.max(1), SyntaxError::NoInstructions));
    }
    Ok(Parsed {
        directives: d,
        nodes,
        warnings,
    })
}

/// `<<-` strips leading tabs from every line of the body.
fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

fn can_contain_heredoc(node: &Node) -> bool {
    matches!(
        node.keyword.to_ascii_lowercase().as_str(),
        "run" | "copy" | "add"
    ) && !matches!(node.args, Args::Json(_))
}

/// BuildKit's `heredocsFromLine`: the line's words (quotes and escapes kept, `\` as escape
/// whatever the directive says), each tried as a heredoc marker.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, SyntaxError> {
    let lx = Lexer {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: false,
    };
    let words = lx.process_words(line, &NoEnv).unwrap_or_default();
    let mut out = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w) {
            if out.len() == MAX_HEREDOCS_PER_LINE {
                return Err(SyntaxError::TooManyHeredocs(MAX_HEREDOCS_PER_LINE));
            }
            out.push(h);
        }
    }
    Ok(out)
}

/// BuildKit's `ParseHeredoc`: `^(\d*)<<(-?)([^<]*)$` whose last part is one shell word; the
/// body expands only when no part of that word was quoted.
pub(super) fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (fd, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    // Go ignores an fd that does not parse (0)
    let fd = fd.parse().unwrap_or(0);
    let mut lx = Lexer::new('\\');
    lx.skip_unset = true;
    let cooked = lx.process_words(rest, &NoEnv).ok()?;
    if cooked.len() != 1 {
        return None;
    }
    lx.raw_quotes = true;
    let raw = lx.process_words(rest, &NoEnv).ok()?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw.len() == 1 && quotes(&cooked[0]) == quotes(&raw[0]);
    Some(Heredoc {
        name: cooked[0].clone(),
        content: String::new(),
        expand,
        chomp,
        fd,
    })
}

/// BuildKit's `newNodeFromLine`: keyword, flags, then the keyword's own argument parser.
/// `nested`: this is an ONBUILD trigger; its own ONBUILD (refused anyway) is not parsed
/// further, so `ONBUILD ONBUILD ONBUILD ...` cannot recurse without bound.
fn node_from_line(line: &str, d: &Directives, nested: bool) -> Result<Node, SyntaxError> {
    let (keyword, rest) = words::split_command(line);
    let (rest, flags) = words::extract_flags(rest);
    let rest = rest.trim();
    let keyword_lower = keyword.to_ascii_lowercase();
    let args = if nested && keyword_lower == "onbuild" {
        Args::Rest(rest.to_string())
    } else {
        parse_args(&keyword_lower, rest, d)?
    };
    Ok(Node {
        keyword: keyword.to_string(),
        flags,
        args,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        column: 1,
    })
}

fn maybe_json(rest: &str) -> Result<Args, SyntaxError> {
    if rest.is_empty() {
        return Ok(Args::None);
    }
    Ok(match words::parse_json(rest)? {
        Json::Array(a) => Args::Json(a),
        Json::NotJson => Args::Rest(rest.to_string()),
    })
}

fn parse_args(keyword: &str, rest: &str, d: &Directives) -> Result<Args, SyntaxError> {
    Ok(match keyword {
        "add" | "copy" | "volume" => match words::parse_json(rest)? {
            Json::Array(a) => Args::Json(a),
            Json::NotJson => Args::Words(words::fields(rest)),
        },
        "arg" => Args::Words(words::words_keep_quotes(rest, d.escape)),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest)?,
        "env" => name_val(rest, "ENV", d)?,
        "label" => name_val(rest, "LABEL", d)?,
        "expose" | "from" => Args::Words(words::fields(rest)),
        "healthcheck" => {
            let (typ, cmd) = match rest.find(char::is_whitespace) {
                Some(i) => (&rest[..i], rest[i..].trim_start()),
                None => (rest, ""),
            };
            if typ.is_empty() {
                Args::None
            } else {
                Args::Health(typ.to_string(), Box::new(maybe_json(cmd)?))
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if rest.is_empty() {
                Args::None
            } else {
                Args::Rest(rest.to_string())
            }
        }
        "onbuild" => {
            if rest.is_empty() {
                Args::None
            } else {
                Args::Sub(Box::new(node_from_line(rest, d, true)?))
            }
        }
        _ => Args::None,
    })
}

/// BuildKit's `parseNameVal`: `KEY value` (legacy, the value is the rest of the line) when
/// the first word has no `=`, else `KEY=value ...` words.
fn name_val(rest: &str, keyword: &'static str, d: &Directives) -> Result<Args, SyntaxError> {
    let ws = words::words_keep_quotes(rest, d.escape);
    let Some(first) = ws.first() else {
        return Ok(Args::None);
    };
    if !first.contains('=') {
        let (k, v) = words::split_command(rest);
        if v.is_empty() {
            return Err(SyntaxError::TwoArguments(keyword));
        }
        return Ok(Args::Pairs(vec![(k.to_string(), v.to_string())]));
    }
    ws.iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| SyntaxError::NoEquals(w.clone()))
        })
        .collect::<Result<_, _>>()
        .map(Args::Pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_forms() {
        for l in [
            "#directive=value",
            "# directive =value",
            "#\tdirective= value",
            "# directive = value",
        ] {
            assert_eq!(directive(l), Some(("directive", "value")), "{l}");
        }
        assert_eq!(directive("# direc \\ tive=value"), None);
        assert_eq!(directive("# 1x=y"), None);
    }

    #[test]
    fn heredoc_words() {
        let h = parse_heredoc("<<EOF").unwrap();
        assert!(h.expand && !h.chomp && h.name == "EOF");
        let h = parse_heredoc("<<-\"EOF\"").unwrap();
        assert!(!h.expand && h.chomp && h.name == "EOF");
        let h = parse_heredoc("3<<'E'OF").unwrap();
        assert!(!h.expand && h.fd == 3 && h.name == "EOF");
        assert!(parse_heredoc("<<").is_none());
        assert!(parse_heredoc("a<<EOF").is_none());
    }
}
