//! The lexer of Go's text/template: text and `{{ }}` actions (with `{{-`/`-}}` trim markers
//! and `/* */` comments), and the tokens inside an action.

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Text between actions (already trimmed by neighbouring trim markers).
    Text(String),
    /// `{{` (after any trim).
    Open,
    /// `}}`.
    Close,
    /// `.Name` (one segment; a chain is several tokens without space between).
    Field(String),
    /// `.` alone.
    Dot,
    /// `$` or `$name`.
    Var(String),
    Ident(String),
    Str(String),
    Char(char),
    Number(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Space,
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

pub(super) fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut offset = 0usize;
    // whether the previous action ended with `-}}` (trim the text after it)
    let mut trim_next = false;
    let pos = |off: usize| -> (usize, usize) {
        let before = &src[..off];
        let line = before.matches('\n').count() + 1;
        let col = off - before.rfind('\n').map_or(0, |i| i + 1);
        (line, col)
    };
    loop {
        let start = rest.find("{{");
        let text_end = start.unwrap_or(rest.len());
        let mut text = &rest[..text_end];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let (body, trim_left) = match start {
            Some(s) => {
                let after = &rest[s + 2..];
                let tl = after.starts_with("- ")
                    || after.starts_with("-\t")
                    || after.starts_with("-\n")
                    || after.starts_with("-\r");
                (Some((s, after)), tl)
            }
            None => (None, false),
        };
        if trim_left {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            let (line, col) = pos(offset);
            out.push(Item {
                tok: Tok::Text(text.to_string()),
                line,
                col,
            });
        }
        let Some((s, after)) = body else { break };
        let open_off = offset + s;
        let (line, col) = pos(open_off);
        let inner_start = if trim_left { 3 } else { 2 };
        let mut inner = &after[inner_start - 2..];
        let inner_off = open_off + inner_start;
        // a comment: {{/* ... */}} with optional trim markers
        if inner.trim_start_matches(is_space).starts_with("/*") {
            let lead = inner.len() - inner.trim_start_matches(is_space).len();
            let Some(end) = inner[lead..].find("*/") else {
                return Err(TemplateError::parse(line, "unclosed comment"));
            };
            let after_comment = &inner[lead + end + 2..];
            let (trim_r, close_len) = if after_comment.starts_with(" -}}") {
                (true, 4)
            } else if after_comment.starts_with("}}") {
                (false, 2)
            } else {
                return Err(TemplateError::parse(
                    line,
                    "comment ends before closing delimiter",
                ));
            };
            let consumed = inner_start + lead + end + 2 + close_len;
            trim_next = trim_r;
            offset = open_off + consumed;
            rest = &src[offset..];
            continue;
        }
        out.push(Item {
            tok: Tok::Open,
            line,
            col,
        });
        let mut off = inner_off;
        loop {
            let (l, c) = pos(off);
            let item = |tok| Item {
                tok,
                line: l,
                col: c,
            };
            if inner.is_empty() {
                return Err(TemplateError::parse(line, "unclosed action"));
            }
            // the close delimiter, possibly with a trim marker
            if inner.starts_with("}}") {
                out.push(item(Tok::Close));
                trim_next = false;
                off += 2;
                break;
            }
            let ch = inner.chars().next().unwrap_or(' ');
            if is_space(ch) {
                let trimmed = inner.trim_start_matches(is_space);
                let n = inner.len() - trimmed.len();
                if trimmed.starts_with("-}}") {
                    out.push(item(Tok::Close));
                    trim_next = true;
                    off += n + 3;
                    break;
                }
                out.push(item(Tok::Space));
                off += n;
                inner = trimmed;
                continue;
            }
            let (tok, n) = match ch {
                '(' => (Tok::LParen, 1),
                ')' => (Tok::RParen, 1),
                '|' => (Tok::Pipe, 1),
                ',' => (Tok::Comma, 1),
                '=' => (Tok::Assign, 1),
                ':' => {
                    if inner.starts_with(":=") {
                        (Tok::Declare, 2)
                    } else {
                        return Err(TemplateError::parse(l, "expected :="));
                    }
                }
                '"' => lex_quoted(inner, l)?,
                '`' => {
                    let Some(end) = inner[1..].find('`') else {
                        return Err(TemplateError::parse(l, "unterminated raw quoted string"));
                    };
                    (Tok::Str(inner[1..1 + end].to_string()), end + 2)
                }
                '\'' => lex_char(inner, l)?,
                '.' => {
                    let next = inner[1..].chars().next();
                    match next {
                        Some(c) if c.is_ascii_digit() => lex_number(inner, l)?,
                        Some(c) if is_alnum(c) => {
                            let n = 1 + ident_len(&inner[1..]);
                            (Tok::Field(inner[1..n].to_string()), n)
                        }
                        _ => (Tok::Dot, 1),
                    }
                }
                '$' => {
                    let n = 1 + ident_len(&inner[1..]);
                    (Tok::Var(inner[..n].to_string()), n)
                }
                '+' | '-' | '0'..='9' => lex_number(inner, l)?,
                c if is_alnum(c) => {
                    let n = ident_len(inner);
                    (Tok::Ident(inner[..n].to_string()), n)
                }
                c => {
                    return Err(TemplateError::parse(
                        l,
                        &format!("unexpected {c:?} in command"),
                    ))
                }
            };
            out.push(item(tok));
            off += n;
            inner = &inner[n..];
        }
        offset = off;
        rest = &src[offset..];
    }
    Ok(out)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|&(_, c)| !is_alnum(c))
        .map_or(s.len(), |(i, _)| i)
}

fn lex_quoted(s: &str, line: usize) -> Result<(Tok, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(out), i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let Some((_, d)) = chars.next() else { break };
                            v = v * 8 + d.to_digit(8).unwrap_or(0);
                        }
                        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v = 0u32;
                        for _ in 0..n {
                            let Some((_, d)) = chars.next() else { break };
                            let Some(d) = d.to_digit(16) else {
                                return Err(TemplateError::parse(line, "invalid syntax"));
                            };
                            v = v.wrapping_mul(16).wrapping_add(d);
                        }
                        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    _ => return Err(TemplateError::parse(line, "invalid syntax")),
                }
            }
            c => out.push(c),
        }
    }
    Err(TemplateError::parse(line, "unterminated quoted string"))
}

fn lex_char(s: &str, line: usize) -> Result<(Tok, usize), TemplateError> {
    let mut it = s.char_indices().skip(1);
    let (c, end) = match it.next() {
        Some((_, '\\')) => {
            let e = it.next().map(|(_, e)| e);
            let c = match e {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('\\') => '\\',
                Some('\'') => '\'',
                Some('r') => '\r',
                Some('0') => '\0',
                _ => return Err(TemplateError::parse(line, "invalid syntax")),
            };
            (c, it.next())
        }
        Some((_, c)) => (c, it.next()),
        None => {
            return Err(TemplateError::parse(
                line,
                "unterminated character constant",
            ))
        }
    };
    match end {
        Some((i, '\'')) => Ok((Tok::Char(c), i + 1)),
        _ => Err(TemplateError::parse(
            line,
            "unterminated character constant",
        )),
    }
}

fn lex_number(s: &str, line: usize) -> Result<(Tok, usize), TemplateError> {
    let n = s
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphanumeric()
                || c == '.'
                || c == '_'
                || ((c == '+' || c == '-')
                    && (i == 0
                        || matches!(s.as_bytes().get(i - 1), Some(b'e' | b'E' | b'p' | b'P')))))
        })
        .map_or(s.len(), |(i, _)| i);
    if n == 0 || (n == 1 && matches!(s.as_bytes()[0], b'+' | b'-')) {
        return Err(TemplateError::parse(line, "bad number syntax"));
    }
    Ok((Tok::Number(s[..n].to_string()), n))
}
