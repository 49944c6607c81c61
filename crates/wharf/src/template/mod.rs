//! Go's text/template for `--format`, as docker's CLI has it: the whole language (actions,
//! pipelines, variables, `if`/`else if`/`else`, `range` with `break`/`continue`, `with`,
//! `define`/`template`/`block`, comments, trim markers), Go's builtins and docker's
//! functions (`json`, `join`, `split`, `lower`, `upper`, `title`, `truncate`, `pad`), over
//! the JSON objects the commands print. A leading `table` makes a header row, rendered as
//! docker does: the same template over each field's header text, with docker's functions
//! returning their argument. The shorthand `json` is `{{json .}}`.
//!
//! Semantics follow Go's on decoded JSON data (`map[string]interface{}`): a missing key
//! prints `<no value>`, a null `<nil>`, an empty list `[]`, a map `map[k:v]` with sorted
//! keys. `crates/wharf/tests/template_go.rs` checks the outputs against Go's own
//! text/template, case by case.

mod exec;
mod funcs;
mod lex;
mod parse;

use std::collections::HashMap;

use serde_json::Value;

use parse::{Arg, Node, Pipe};

/// A template that failed to parse or to execute, in Go's words.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateError {
    Parse { line: usize, msg: String },
    Exec(String),
}

impl TemplateError {
    fn parse(line: usize, msg: &str) -> TemplateError {
        TemplateError::Parse {
            line,
            msg: msg.to_string(),
        }
    }
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Parse { line, msg } => {
                write!(f, "template parsing error: template: :{line}: {msg}")
            }
            TemplateError::Exec(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Longest template accepted (the CLI's own argument; a bound all the same).
const MAX_SOURCE: usize = 1 << 20;

/// A parsed `--format` template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Vec<Node>,
    defines: HashMap<String, Vec<Node>>,
    /// `table ...`: print a header row first.
    pub table: bool,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        if src.len() > MAX_SOURCE {
            return Err(TemplateError::parse(1, "template longer than 1 MiB"));
        }
        let src = if src == "json" { "{{json .}}" } else { src };
        // docker's CLI: a leading "table" asks for the header row, spaces around the
        // template are dropped, and the two-character escapes \t and \n become the
        // characters everywhere (also inside quoted strings)
        let (table, body) = match src.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, src),
        };
        let body = prepare(body);
        let items = lex::lex(&body)?;
        let parsed = parse::parse(items, &funcs::defined)?;
        Ok(Template {
            root: parsed.root,
            defines: parsed.defines,
            table,
        })
    }

    /// Renders one object.
    pub fn render(&self, v: &Value) -> Result<String, TemplateError> {
        let root = exec::Val::Json(v.clone());
        let mut ex = exec::Exec::new(&self.defines, root.clone(), false);
        ex.run(&self.root, &root)?;
        Ok(ex.out)
    }

    /// The header row of a `table` template: the template over a map of each top-level
    /// field it names (and each key of `sample`) to `names(field)`, with docker's functions
    /// returning their argument. As docker's, an error stops the header where it happened.
    pub fn header(&self, sample: Option<&Value>, names: &dyn Fn(&str) -> String) -> String {
        let mut keys = Vec::new();
        collect_fields(&self.root, &mut keys);
        for n in self.defines.values() {
            collect_fields(n, &mut keys);
        }
        if let Some(Value::Object(m)) = sample {
            keys.extend(m.keys().cloned());
        }
        keys.sort();
        keys.dedup();
        let data = exec::header_data(&keys, names);
        let mut ex = exec::Exec::new(&self.defines, data.clone(), true);
        let _ = ex.run(&self.root, &data);
        ex.out
    }
}

/// docker's preFormat: spaces around trimmed, `\t` and `\n` replaced.
pub(crate) fn prepare(src: &str) -> String {
    src.trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

fn collect_fields(nodes: &[Node], out: &mut Vec<String>) {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Action(p) => collect_pipe(p, out),
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                collect_pipe(&b.pipe, out);
                collect_fields(&b.body, out);
                collect_fields(&b.els, out);
            }
            Node::Template { pipe, .. } => {
                if let Some(p) = pipe {
                    collect_pipe(p, out);
                }
            }
        }
    }
}

fn collect_pipe(p: &Pipe, out: &mut Vec<String>) {
    for c in &p.cmds {
        for a in &c.args {
            match a {
                Arg::Field(path) | Arg::Var(_, path) => {
                    if let Some(f) = path.first() {
                        out.push(f.clone());
                    }
                }
                Arg::Sub(p, _) => collect_pipe(p, out),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
