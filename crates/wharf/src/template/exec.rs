//! Execution of a parsed template over JSON data, with Go's semantics: a missing map key is
//! "no value" (printed `<no value>`), a JSON null is a nil interface (printed `<nil>`), truth
//! is Go's (`false`, `0`, `""`, empty array/map, nil are false), variables are scoped to
//! their control structure, `range` over arrays and maps (sorted keys).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::funcs;
use super::parse::{Arg, Branch, Cmd, Node, Pipe};
use super::TemplateError;

/// A value during execution: Go's invalid reflect.Value (a missing key) or a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Missing,
    Json(Value),
}

impl Val {
    pub fn json(&self) -> Option<&Value> {
        match self {
            Val::Missing => None,
            Val::Json(v) => Some(v),
        }
    }
}

/// How many nested `template` calls are allowed (Go's limit is 100000; the CLI's
/// templates are short, and the stack is the main thread's).
const MAX_DEPTH: usize = 100;

/// Bound on loop iterations and output, so a template cannot run away.
const MAX_OUTPUT: usize = 64 << 20;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Exec<'a> {
    pub defines: &'a HashMap<String, Vec<Node>>,
    pub vars: Vec<(String, Val)>,
    pub out: String,
    pub depth: usize,
    /// Rendering a table header: docker's header functions (identity) replace its own.
    pub header: bool,
    /// The action being evaluated, for error messages.
    at: String,
    line: usize,
    col: usize,
}

impl<'a> Exec<'a> {
    pub fn new(defines: &'a HashMap<String, Vec<Node>>, root: Val, header: bool) -> Exec<'a> {
        Exec {
            defines,
            vars: vec![("$".into(), root)],
            out: String::new(),
            depth: 0,
            header,
            at: String::new(),
            line: 1,
            col: 0,
        }
    }

    fn err(&self, msg: impl std::fmt::Display) -> TemplateError {
        TemplateError::Exec(format!(
            "template: :{}:{}: executing \"\" at <{}>: {msg}",
            self.line, self.col, self.at
        ))
    }

    pub fn run(&mut self, nodes: &[Node], dot: &Val) -> Result<(), TemplateError> {
        match self.list(nodes, dot)? {
            Flow::Normal => Ok(()),
            // the parser refuses break/continue outside range
            Flow::Break | Flow::Continue => Ok(()),
        }
    }

    fn list(&mut self, nodes: &[Node], dot: &Val) -> Result<Flow, TemplateError> {
        for n in nodes {
            if self.out.len() > MAX_OUTPUT {
                return Err(self.err("output exceeds 64 MiB"));
            }
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.vars.is_empty() {
                        let s = funcs::print_value(&v);
                        self.out.push_str(&s);
                    }
                }
                Node::If(b) => {
                    let scope = self.vars.len();
                    let v = self.pipe(&b.pipe, dot)?;
                    let flow = if funcs::truth(&v) {
                        self.list(&b.body, dot)?
                    } else {
                        self.list(&b.els, dot)?
                    };
                    self.vars.truncate(scope);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With(b) => {
                    let scope = self.vars.len();
                    let v = self.pipe(&b.pipe, dot)?;
                    let flow = if funcs::truth(&v) {
                        self.list(&b.body, &v)?
                    } else {
                        self.list(&b.els, dot)?
                    };
                    self.vars.truncate(scope);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(b) => {
                    let scope = self.vars.len();
                    self.range(b, dot)?;
                    self.vars.truncate(scope);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::Template { name, pipe, line } => {
                    self.line = *line;
                    self.at = format!("{{{{template {name:?}}}}}");
                    let Some(body) = self.defines.get(name) else {
                        return Err(self.err(format!("no such template {name:?}")));
                    };
                    let new_dot = match pipe {
                        Some(p) => self.pipe(p, dot)?,
                        None => Val::Missing,
                    };
                    if self.depth >= MAX_DEPTH {
                        return Err(
                            self.err(format!("exceeded maximum template depth ({MAX_DEPTH})"))
                        );
                    }
                    // a template sees only its own `$`
                    let saved =
                        std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                    self.depth += 1;
                    let r = self.list(body, &new_dot);
                    self.depth -= 1;
                    self.vars = saved;
                    r?;
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, b: &Branch, dot: &Val) -> Result<(), TemplateError> {
        let v = self.pipe(&b.pipe, dot)?;
        // the variables the pipeline declared hold the element (and key) per iteration
        let decl: Vec<String> = if b.pipe.assign {
            Vec::new()
        } else {
            b.pipe.vars.clone()
        };
        let items: Vec<(Value, Value)> = match &v {
            Val::Json(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i as u64), e.clone()))
                .collect(),
            Val::Json(Value::Object(m)) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (Value::String(k.clone()), m[k].clone()))
                    .collect()
            }
            Val::Missing | Val::Json(Value::Null) => Vec::new(),
            Val::Json(other) => {
                return Err(self.err(format!(
                    "range can't iterate over {}",
                    funcs::print_value(&Val::Json(other.clone()))
                )))
            }
        };
        if items.is_empty() {
            self.list(&b.els, dot)?;
            return Ok(());
        }
        let base = self.vars.len();
        for (k, e) in items {
            self.vars.truncate(base);
            match decl.len() {
                1 => self.set_var(&decl[0], Val::Json(e.clone())),
                2 => {
                    self.set_var(&decl[0], Val::Json(k));
                    self.set_var(&decl[1], Val::Json(e.clone()));
                }
                _ => {}
            }
            match self.list(&b.body, &Val::Json(e))? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
            if self.out.len() > MAX_OUTPUT {
                return Err(self.err("output exceeds 64 MiB"));
            }
        }
        Ok(())
    }

    fn set_var(&mut self, name: &str, v: Val) {
        // declared by the range pipeline: pushed anew per iteration
        self.vars.push((name.to_string(), v));
    }

    pub fn pipe(&mut self, p: &Pipe, dot: &Val) -> Result<Val, TemplateError> {
        self.line = p.line;
        self.col = p.col;
        let mut v: Option<Val> = None;
        for c in &p.cmds {
            v = Some(self.cmd(c, dot, v)?);
        }
        let v = v.unwrap_or(Val::Missing);
        if p.assign {
            for name in &p.vars {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            }
        } else {
            for name in &p.vars {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, c: &Cmd, dot: &Val, piped: Option<Val>) -> Result<Val, TemplateError> {
        let first = &c.args[0];
        self.at = first.show();
        match first {
            Arg::Func(name) => self.call(name, &c.args[1..], dot, piped),
            _ => {
                if c.args.len() > 1 || piped.is_some() {
                    let shown = first.show();
                    return Err(match first {
                        Arg::Field(p) | Arg::Var(_, p) | Arg::Sub(_, p) if !p.is_empty() => {
                            let name = p.last().cloned().unwrap_or_default();
                            self.err(format!(
                                "{name} has arguments but cannot be invoked as function"
                            ))
                        }
                        _ => self.err(format!("can't give argument to non-function {shown}")),
                    });
                }
                self.arg(first, dot)
            }
        }
    }

    /// One operand's value.
    pub fn arg(&mut self, a: &Arg, dot: &Val) -> Result<Val, TemplateError> {
        Ok(match a {
            Arg::Field(path) => self.fields(dot.clone(), path)?,
            Arg::Var(name, path) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(self.err(format!("undefined variable: {name}")));
                };
                let v = v.clone();
                self.fields(v, path)?
            }
            Arg::Sub(p, path) => {
                let v = self.pipe(p, dot)?;
                self.fields(v, path)?
            }
            Arg::Func(name) => self.call(name, &[], dot, None)?,
            Arg::Str(s) => Val::Json(Value::String(s.clone())),
            Arg::Int(i) => Val::Json(Value::from(*i)),
            Arg::Float(f) => {
                Val::Json(serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number))
            }
            Arg::Bool(b) => Val::Json(Value::Bool(*b)),
            Arg::Nil => return Err(self.err("nil is not a command")),
        })
    }

    fn fields(&self, mut v: Val, path: &[String]) -> Result<Val, TemplateError> {
        for f in path {
            v = match v {
                Val::Missing => Val::Missing,
                Val::Json(Value::Object(m)) => m.get(f).cloned().map_or(Val::Missing, Val::Json),
                Val::Json(Value::Null) => {
                    return Err(self.err(format!("nil pointer evaluating interface {{}}.{f}")))
                }
                Val::Json(other) => {
                    return Err(self.err(format!(
                        "can't evaluate field {f} in type {}",
                        funcs::type_name(&other)
                    )))
                }
            };
        }
        Ok(v)
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, TemplateError> {
        let at = name.to_string();
        // and/or evaluate their arguments lazily (Go 1.18)
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(piped.is_some());
            if n == 0 {
                return Err(self.err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Val::Missing;
            for a in args {
                last = self.arg_value(a, dot)?;
                let t = funcs::truth(&last);
                if (name == "and" && !t) || (name == "or" && t) {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg_value(a, dot)?);
        }
        if let Some(p) = piped {
            vals.push(p);
        }
        self.at = at;
        funcs::call(name, &vals, self.header)
            .map_err(|e| self.err(format!("error calling {name}: {e}")))
    }

    /// An argument to a function (`nil` is allowed here, not as a command).
    fn arg_value(&mut self, a: &Arg, dot: &Val) -> Result<Val, TemplateError> {
        match a {
            // Go passes an untyped nil to the builtins as an invalid value
            Arg::Nil => Ok(Val::Missing),
            Arg::Func(name) => self.call(name, &[], dot, None),
            other => self.arg(other, dot),
        }
    }
}

/// The data a table header is rendered from: each top-level key's header text.
pub(super) fn header_data(keys: &[String], names: &dyn Fn(&str) -> String) -> Val {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), Value::String(names(k)));
    }
    Val::Json(Value::Object(m))
}
