//! Output formatting shared by the listing commands: docker-style aligned tables and a
//! subset of Go templates for `--format` (`{{.Field}}`, `{{.A.B}}`, `{{json .}}`,
//! `{{json .Field}}`, a leading `table`, `\t` and `\n` escapes, and the shorthand `json`).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field { path: Vec<String>, json: bool },
}

/// A parsed `--format` template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `table ...`: print a header row first.
    pub table: bool,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let src = if src == "json" { "{{json .}}" } else { src };
        let (table, body) = match src.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, src),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("template: unclosed action in {src:?}"))?;
            let action = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            let (json, expr) = match action.strip_prefix("json") {
                Some(e) if e.is_empty() || e.starts_with(' ') => (true, e.trim()),
                _ => (false, action),
            };
            if !expr.starts_with('.') {
                return Err(format!("template: unsupported action {{{{{action}}}}}"));
            }
            let path: Vec<String> = expr[1..]
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if path
                .iter()
                .any(|p| !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(format!("template: unsupported action {{{{{action}}}}}"));
            }
            pieces.push(Piece::Field { path, json });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces, table })
    }

    /// Renders one object.
    pub fn render(&self, v: &Value) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { path, json } => {
                    let mut cur = v;
                    for seg in path {
                        cur = cur
                            .get(seg)
                            .ok_or_else(|| format!("template: can't evaluate field {seg}"))?;
                    }
                    if *json {
                        out.push_str(&serde_json::to_string(cur).unwrap_or_default());
                    } else {
                        out.push_str(&plain(cur));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Header row for `table` templates: the field names, upper-cased with docker's spacing.
    pub fn header(&self, names: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { path, .. } => out.push_str(&names(&path.join("."))),
            }
        }
        out
    }
}

/// Go's default printing of a value: strings bare, null as `<no value>`, maps as `map[..]`.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Prints rows as a table with columns separated by at least three spaces (docker's tabwriter).
pub fn print_table(rows: &[Vec<String>]) {
    let mut out = String::new();
    render_table(rows, &mut out);
    print!("{out}");
}

pub fn render_table(rows: &[Vec<String>], out: &mut String) {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i] - c.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Renders objects through a user template (with a header row for `table` templates).
pub fn print_with_template(
    tpl: &Template,
    items: &[Value],
    header_names: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    if tpl.table {
        let mut rows = vec![split_cells(&tpl.header(header_names))];
        for it in items {
            rows.push(split_cells(&tpl.render(it)?));
        }
        print_table(&rows);
    } else {
        let mut out = String::new();
        for it in items {
            out.push_str(&tpl.render(it)?);
            out.push('\n');
        }
        print!("{out}");
    }
    Ok(())
}

fn split_cells(s: &str) -> Vec<String> {
    s.split('\t').map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates() {
        let v = json!({"ID": "abc", "State": {"Status": "running"}, "Labels": {}});
        let t = Template::parse("{{.ID}} {{.State.Status}}").unwrap();
        assert_eq!(t.render(&v).unwrap(), "abc running");
        let t = Template::parse("{{json .State}}").unwrap();
        assert_eq!(t.render(&v).unwrap(), r#"{"Status":"running"}"#);
        let t = Template::parse("json").unwrap();
        assert!(t.render(&v).unwrap().starts_with('{'));
        let t = Template::parse("table {{.ID}}\\t{{.State.Status}}").unwrap();
        assert!(t.table);
        assert_eq!(t.header(&|n| n.to_uppercase()), "ID\tSTATE.STATUS");
        assert!(Template::parse("{{.ID").is_err());
        assert!(Template::parse("{{range .}}").is_err());
        assert!(Template::parse("{{.Missing}}").unwrap().render(&v).is_err());
    }

    #[test]
    fn tables_align() {
        let mut out = String::new();
        render_table(
            &[
                vec!["A".into(), "BB".into()],
                vec!["long".into(), "x".into()],
            ],
            &mut out,
        );
        assert_eq!(out, "A      BB\nlong   x\n");
    }
}
