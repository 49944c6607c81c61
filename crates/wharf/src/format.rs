//! Output formatting shared by the listing commands: docker-style aligned tables, and
//! `--format` templates (Go's text/template with docker's functions: crate::template).

use serde_json::Value;

pub use crate::template::{Template, TemplateError};

/// Prints rows as a table as docker's CLI does (Go's tabwriter with minwidth 10, padding 3):
/// each column as wide as its widest cell plus three spaces, and at least ten.
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
                let pad = (widths[i] + 3).max(10) - c.chars().count();
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
) -> Result<(), TemplateError> {
    if tpl.table {
        let mut rows = vec![split_cells(&tpl.header(items.first(), header_names))];
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
        assert_eq!(out, "A         BB\nlong      x\n");
        let mut out = String::new();
        render_table(
            &[
                vec!["CONTAINER ID".into(), "IMAGE".into(), "NAMES".into()],
                vec!["0123456789ab".into(), "bb".into(), "web".into()],
            ],
            &mut out,
        );
        // docker ps: "CONTAINER ID   IMAGE     NAMES"
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     NAMES\n0123456789ab   bb        web\n"
        );
    }
}
