//! The parser: tokens → a tree of nodes, with Go's control structures (`if`/`else if`/`else`,
//! `range` with `break`/`continue`, `with`, `define`/`template`/`block`) and pipelines.

use std::collections::HashMap;

use super::lex::{Item, Tok};
use super::TemplateError;

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    /// `{{pipeline}}`: printed unless the pipeline declares or assigns variables.
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
    /// `{{template "name" pipeline}}`.
    Template {
        name: String,
        pipe: Option<Pipe>,
        line: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub els: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(super) struct Pipe {
    /// Variables declared (`:=`) or assigned (`=`), one or two (range's `$i, $e`).
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(super) enum Arg {
    /// `.A.B` on dot (an empty path is `.` itself).
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
}

impl Arg {
    /// How the argument reads in an error (`<.Foo>`).
    pub fn show(&self) -> String {
        match self {
            Arg::Field(p) if p.is_empty() => ".".into(),
            Arg::Field(p) => format!(".{}", p.join(".")),
            Arg::Var(v, p) if p.is_empty() => v.clone(),
            Arg::Var(v, p) => format!("{v}.{}", p.join(".")),
            Arg::Func(f) => f.clone(),
            Arg::Sub(_, p) if p.is_empty() => "(...)".into(),
            Arg::Sub(_, p) => format!("(...).{}", p.join(".")),
            Arg::Str(s) => format!("{s:?}"),
            Arg::Int(i) => i.to_string(),
            Arg::Float(f) => f.to_string(),
            Arg::Bool(b) => b.to_string(),
            Arg::Nil => "nil".into(),
        }
    }
}

pub(super) struct Parsed {
    pub root: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
}

pub(super) fn parse(
    items: Vec<Item>,
    funcs: &dyn Fn(&str) -> bool,
) -> Result<Parsed, TemplateError> {
    let mut p = Parser {
        items,
        pos: 0,
        funcs,
        defines: HashMap::new(),
        vars: vec!["$".to_string()],
        range_depth: 0,
        nesting: 0,
    };
    let (root, end) = p.list()?;
    if let Some(end) = end {
        return Err(TemplateError::parse(
            end.1,
            &format!("unexpected {{{{{}}}}}", end.0),
        ));
    }
    Ok(Parsed {
        root,
        defines: p.defines,
    })
}

struct Parser<'a> {
    items: Vec<Item>,
    pos: usize,
    funcs: &'a dyn Fn(&str) -> bool,
    defines: HashMap<String, Vec<Node>>,
    /// Variables in scope (Go checks at parse time that a variable is defined).
    vars: Vec<String>,
    range_depth: usize,
    /// Depth of nested control structures and parentheses (bounded: the parser recurses).
    nesting: usize,
}

/// Deepest nesting of `if`/`range`/`with`/`define`/`block` and parentheses accepted.
const MAX_NESTING: usize = 100;

/// What ended a list: `end`, `else` (with what follows `else` still unread), and its line.
type End = (&'static str, usize);

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.items.get(self.pos).map(|i| &i.tok)
    }

    fn line(&self) -> usize {
        self.items
            .get(self.pos)
            .or_else(|| self.items.last())
            .map_or(1, |i| i.line)
    }

    fn col(&self) -> usize {
        self.items.get(self.pos).map_or(0, |i| i.col)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.items.get(self.pos).map(|i| i.tok.clone());
        self.pos += 1;
        t
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(&Tok::Space) {
            self.pos += 1;
        }
    }

    fn err<T>(&self, msg: &str) -> Result<T, TemplateError> {
        Err(TemplateError::parse(self.line(), msg))
    }

    /// Nodes up to the end of input or an `{{end}}`/`{{else}}` (returned, consumed up to the
    /// keyword).
    fn list(&mut self) -> Result<(Vec<Node>, Option<End>), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(t) = self.next() {
            match t {
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Open => {
                    self.skip_space();
                    let line = self.line();
                    if let Some(Tok::Ident(k)) = self.peek().cloned() {
                        match k.as_str() {
                            "end" => {
                                self.pos += 1;
                                self.close()?;
                                return Ok((nodes, Some(("end", line))));
                            }
                            "else" => {
                                self.pos += 1;
                                self.skip_space();
                                return Ok((nodes, Some(("else", line))));
                            }
                            "if" | "with" | "range" => {
                                self.pos += 1;
                                let b = self.branch(&k)?;
                                nodes.push(match k.as_str() {
                                    "if" => Node::If(b),
                                    "with" => Node::With(b),
                                    _ => Node::Range(b),
                                });
                                continue;
                            }
                            "break" | "continue" => {
                                self.pos += 1;
                                if self.range_depth == 0 {
                                    return self.err(&format!("{{{{{k}}}}} outside {{{{range}}}}"));
                                }
                                self.close()?;
                                nodes.push(if k == "break" {
                                    Node::Break
                                } else {
                                    Node::Continue
                                });
                                continue;
                            }
                            "define" => {
                                self.pos += 1;
                                self.define()?;
                                continue;
                            }
                            "template" | "block" => {
                                self.pos += 1;
                                nodes.push(self.template(k == "block")?);
                                continue;
                            }
                            _ => {}
                        }
                    }
                    let pipe = self.pipeline(true)?;
                    self.expect_close()?;
                    nodes.push(Node::Action(pipe));
                }
                _ => return self.err("unexpected token"),
            }
        }
        Ok((nodes, None))
    }

    fn close(&mut self) -> Result<(), TemplateError> {
        self.skip_space();
        match self.next() {
            Some(Tok::Close) => Ok(()),
            _ => {
                self.pos -= 1;
                self.err("unexpected token in action: expected }}")
            }
        }
    }

    fn expect_close(&mut self) -> Result<(), TemplateError> {
        self.close()
    }

    /// `if`/`with`/`range` after the keyword: pipeline, body, optional else (incl. `else if`).
    fn branch(&mut self, kind: &str) -> Result<Branch, TemplateError> {
        self.enter()?;
        let r = self.branch_inner(kind);
        self.nesting -= 1;
        r
    }

    fn enter(&mut self) -> Result<(), TemplateError> {
        if self.nesting >= MAX_NESTING {
            return self.err(&format!("nested deeper than {MAX_NESTING} levels"));
        }
        self.nesting += 1;
        Ok(())
    }

    fn branch_inner(&mut self, kind: &str) -> Result<Branch, TemplateError> {
        let scope = self.vars.len();
        let pipe = self.pipeline(true)?;
        if pipe.vars.len() > 1 && kind != "range" {
            return self.err(&format!("too many declarations in {kind}"));
        }
        if pipe.cmds.is_empty() {
            return self.err(&format!("missing value for {kind}"));
        }
        self.expect_close()?;
        if kind == "range" {
            self.range_depth += 1;
        }
        let body = self.list();
        if kind == "range" {
            self.range_depth -= 1;
        }
        let (body, end) = body?;
        let els = match end {
            Some(("end", _)) => Vec::new(),
            Some(("else", line)) => {
                // `else if ...` / `else with ...`: a nested branch that shares this `end`
                if let Some(Tok::Ident(k)) = self.peek().cloned() {
                    if (k == "if" && kind == "if") || (k == "with" && kind == "with") {
                        self.pos += 1;
                        let nested = self.branch(&k)?;
                        self.vars.truncate(scope);
                        let node = if k == "if" {
                            Node::If(nested)
                        } else {
                            Node::With(nested)
                        };
                        return Ok(Branch {
                            pipe,
                            body,
                            els: vec![node],
                        });
                    }
                }
                if self.peek() != Some(&Tok::Close) {
                    return Err(TemplateError::parse(line, "unexpected token after else"));
                }
                self.pos += 1;
                let (els, end) = self.list()?;
                match end {
                    Some(("end", _)) => els,
                    Some((_, l)) => {
                        return Err(TemplateError::parse(l, "expected end; found {{else}}"))
                    }
                    None => return self.err(&format!("unexpected EOF in {kind}")),
                }
            }
            Some((_, l)) => return Err(TemplateError::parse(l, "unexpected keyword")),
            None => return self.err(&format!("unexpected EOF in {kind}")),
        };
        self.vars.truncate(scope);
        Ok(Branch { pipe, body, els })
    }

    fn define(&mut self) -> Result<(), TemplateError> {
        self.skip_space();
        let Some(Tok::Str(name)) = self.next() else {
            return self.err("define: expected a quoted name");
        };
        self.expect_close()?;
        self.enter()?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let res = self.list();
        self.vars = saved;
        self.nesting -= 1;
        let (body, end) = res?;
        if !matches!(end, Some(("end", _))) {
            return self.err("unexpected EOF in define");
        }
        self.defines.insert(name, body);
        Ok(())
    }

    fn template(&mut self, block: bool) -> Result<Node, TemplateError> {
        let line = self.line();
        self.skip_space();
        let Some(Tok::Str(name)) = self.next() else {
            return self.err("template: expected a quoted name");
        };
        self.skip_space();
        let pipe = if self.peek() == Some(&Tok::Close) {
            None
        } else {
            Some(self.pipeline(false)?)
        };
        self.expect_close()?;
        if block {
            self.enter()?;
            let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
            let res = self.list();
            self.vars = saved;
            self.nesting -= 1;
            let (body, end) = res?;
            if !matches!(end, Some(("end", _))) {
                return self.err("unexpected EOF in block");
            }
            self.defines.entry(name.clone()).or_insert(body);
        }
        Ok(Node::Template { name, pipe, line })
    }

    /// A pipeline up to `}}` or `)` (not consumed), with an optional declaration.
    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipe, TemplateError> {
        self.skip_space();
        let line = self.line();
        let col = self.col();
        let mut vars = Vec::new();
        let mut assign = false;
        if allow_decl {
            let save = self.pos;
            let mut names = Vec::new();
            if let Some(Tok::Var(v)) = self.peek().cloned() {
                self.pos += 1;
                self.skip_space();
                names.push(v);
                if self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    self.skip_space();
                    if let Some(Tok::Var(v2)) = self.peek().cloned() {
                        self.pos += 1;
                        self.skip_space();
                        names.push(v2);
                    } else {
                        return self.err("expected variable after comma");
                    }
                }
                match self.peek() {
                    Some(Tok::Declare) => {
                        self.pos += 1;
                        vars = names;
                    }
                    Some(Tok::Assign) => {
                        self.pos += 1;
                        for n in &names {
                            if !self.vars.contains(n) {
                                return self.err(&format!("undefined variable \"{n}\""));
                            }
                        }
                        vars = names;
                        assign = true;
                    }
                    _ => self.pos = save,
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(Tok::Close) | Some(Tok::RParen) | None => break,
                Some(Tok::Pipe) if !cmds.is_empty() => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            cmds.push(self.command()?);
            self.skip_space();
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.pos += 1;
                    self.skip_space();
                    if matches!(self.peek(), Some(Tok::Close) | Some(Tok::RParen) | None) {
                        return self.err("missing command after |");
                    }
                }
                _ => break,
            }
        }
        if !vars.is_empty() && !assign {
            self.vars.extend(vars.iter().cloned());
        }
        if cmds.is_empty() && !vars.is_empty() {
            return self.err("missing value for command");
        }
        Ok(Pipe {
            vars,
            assign,
            cmds,
            line,
            col,
        })
    }

    fn command(&mut self) -> Result<Cmd, TemplateError> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(Tok::Close) | Some(Tok::RParen) | Some(Tok::Pipe) | None => break,
                _ => {}
            }
            args.push(self.operand()?);
            // operands are separated by space
            match self.peek() {
                Some(Tok::Space) | Some(Tok::Close) | Some(Tok::RParen) | Some(Tok::Pipe)
                | None => {}
                _ => return self.err("missing space between operands"),
            }
        }
        if args.is_empty() {
            return self.err("empty command");
        }
        Ok(Cmd { args })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut path = Vec::new();
        while let Some(Tok::Field(f)) = self.peek().cloned() {
            self.pos += 1;
            path.push(f);
        }
        path
    }

    fn operand(&mut self) -> Result<Arg, TemplateError> {
        let Some(t) = self.next() else {
            return self.err("unexpected EOF");
        };
        Ok(match t {
            Tok::Dot => {
                if matches!(self.peek(), Some(Tok::Field(_))) {
                    return self.err("unexpected . after term");
                }
                Arg::Field(Vec::new())
            }
            Tok::Field(f) => {
                let mut path = vec![f];
                path.extend(self.fields());
                Arg::Field(path)
            }
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return self.err(&format!("undefined variable \"{v}\""));
                }
                Arg::Var(v, self.fields())
            }
            Tok::LParen => {
                self.enter()?;
                let p = self.pipeline(false);
                self.nesting -= 1;
                let p = p?;
                self.skip_space();
                if self.next() != Some(Tok::RParen) {
                    return self.err("unclosed left paren");
                }
                Arg::Sub(Box::new(p), self.fields())
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ if (self.funcs)(&id) => Arg::Func(id),
                _ => return self.err(&format!("function \"{id}\" not defined")),
            },
            Tok::Str(s) => Arg::Str(s),
            Tok::Char(c) => Arg::Int(c as i64),
            Tok::Number(n) => number(&n).ok_or_else(|| {
                TemplateError::parse(self.line(), &format!("bad number syntax: \"{n}\""))
            })?,
            Tok::RParen => return self.err("unexpected right paren"),
            _ => return self.err("unexpected token in operand"),
        })
    }
}

fn number(s: &str) -> Option<Arg> {
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let radix = |b: &str, r: u32| i64::from_str_radix(b, r).ok();
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        radix(h, 16)
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        radix(o, 8)
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        radix(b, 2)
    } else if body.len() > 1 && body.starts_with('0') && body.chars().all(|c| c.is_ascii_digit()) {
        radix(&body[1..], 8)
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Arg::Int(if neg { -i } else { i }));
    }
    let f: f64 = body.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    Some(Arg::Float(if neg { -f } else { f }))
}
