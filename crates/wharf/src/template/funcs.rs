//! Go's template builtins (`and or not len index slice print printf println eq ne lt le gt
//! ge html js urlquery`) and docker's functions (`json split join title lower upper pad
//! truncate`), with Go's printing of values (`fmt`'s `%v`).

use std::cmp::Ordering;

use serde_json::Value;

use super::exec::Val;

pub(super) const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "call",
];

pub(super) const DOCKER: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

pub(super) fn defined(name: &str) -> bool {
    BUILTINS.contains(&name) || DOCKER.contains(&name)
}

/// Go's type of a JSON-decoded value, as its errors name it.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's truth of a value (`if`, `with`, `and`, `or`, `not`).
pub(super) fn truth(v: &Val) -> bool {
    match v {
        Val::Missing => false,
        Val::Json(j) => match j {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(m) => !m.is_empty(),
        },
    }
}

/// How `{{.}}` prints a value (text/template's printValue → fmt's `%v`): a missing key
/// and a nil interface both print `<no value>` there (nil inside a list is `<nil>`).
pub(super) fn print_value(v: &Val) -> String {
    match v {
        Val::Missing | Val::Json(Value::Null) => "<no value>".into(),
        Val::Json(j) => fmt_v(j),
    }
}

/// encoding/json's output of a decoded value, as docker's `json` function writes it
/// (HTML not escaped, map keys sorted, floats in Go's shortest form: `1234567` for 1234567.0).
pub(super) fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&go_json_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => go_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(e, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                go_json(&m[*k], out);
            }
            out.push('}');
        }
    }
}

fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// encoding/json's float: plain decimal, or exponent form below 1e-6 and from 1e21.
fn go_json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (m, x) = s.split_once('e').unwrap_or((&s, "0"));
        let x: i32 = x.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs()).replace("e-0", "e-");
    }
    // shortest digits in plain decimal
    let (digits, exp) = decompose(&format!("{:e}", abs));
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut s = String::new();
    if f.is_sign_negative() && f != 0.0 {
        s.push('-');
    }
    push_plain(&mut s, digits, exp);
    s
}

/// fmt's `%v` of a JSON-decoded value.
pub(super) fn fmt_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => fmt_number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(fmt_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", fmt_v(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

fn fmt_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    go_float_g(n.as_f64().unwrap_or(0.0), None)
}

/// Go's `%g` (`%v` of a float is `%g` with the shortest digits): the `%e` form when the
/// exponent is < -4 or ≥ the precision (6 for the shortest form), else the `%f` form;
/// trailing zeros dropped.
fn go_float_g(f: f64, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let (digits, exp) = match prec {
        None => decompose(&format!("{:e}", f.abs())),
        Some(p) => decompose(&format!("{:.*e}", p.max(1) - 1, f.abs())),
    };
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let eprec: i32 = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            let nd = digits.len() as i32;
            if p > nd && nd > exp {
                nd
            } else {
                p
            }
        }
    };
    let mut s = String::new();
    if f.is_sign_negative() {
        s.push('-');
    }
    if exp < -4 || exp >= eprec {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if exp < 0 { '-' } else { '+' });
        s.push_str(&format!("{:02}", exp.abs()));
    } else {
        push_plain(&mut s, digits, exp);
    }
    s
}

/// Significant `digits` with decimal exponent `exp` written without an exponent
/// (`1234`, 2 → `123.4`; `5`, -3 → `0.005`).
fn push_plain(s: &mut String, digits: &str, exp: i32) {
    if exp < 0 {
        s.push_str("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(digits);
        return;
    }
    let e = exp as usize;
    if digits.len() <= e + 1 {
        s.push_str(digits);
        for _ in digits.len()..=e {
            s.push('0');
        }
    } else {
        s.push_str(&digits[..=e]);
        s.push('.');
        s.push_str(&digits[e + 1..]);
    }
}

/// `d.ddde±x` → ("dddd", x).
fn decompose(e: &str) -> (String, i32) {
    let (m, x) = e.split_once('e').unwrap_or((e, "0"));
    let digits: String = m.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, x.parse().unwrap_or(0))
}

/// A basic kind, for comparisons (Go's basicKind).
#[derive(Debug, PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind(v: &Val) -> Kind {
    match v {
        Val::Missing | Val::Json(Value::Null) => Kind::Invalid,
        Val::Json(Value::Bool(_)) => Kind::Bool,
        Val::Json(Value::Number(n)) if n.is_f64() => Kind::Float,
        Val::Json(Value::Number(_)) => Kind::Int,
        Val::Json(Value::String(_)) => Kind::Str,
        Val::Json(_) => Kind::Other,
    }
}

fn num(v: &Val) -> f64 {
    v.json().and_then(Value::as_f64).unwrap_or(0.0)
}

fn int(v: &Val) -> i128 {
    match v.json() {
        Some(Value::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .unwrap_or(0),
        _ => 0,
    }
}

fn eq2(a: &Val, b: &Val) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Invalid || kb == Kind::Invalid {
            return Ok(false);
        }
        return Err("incompatible types for comparison".into());
    }
    Ok(match ka {
        Kind::Bool | Kind::Str => a == b,
        Kind::Int => int(a) == int(b),
        Kind::Float => num(a) == num(b),
        Kind::Invalid => true,
        Kind::Other => {
            return Err(format!(
                "non-comparable type {}: {}",
                print_value(a),
                a.json().map_or("<nil>", type_name)
            ))
        }
    })
}

fn cmp2(a: &Val, b: &Val) -> Result<Ordering, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    match ka {
        Kind::Int => Ok(int(a).cmp(&int(b))),
        Kind::Float => num(a)
            .partial_cmp(&num(b))
            .ok_or_else(|| "incomparable NaN".to_string()),
        Kind::Str => Ok(str_of(a).cmp(str_of(b))),
        _ => Err("invalid type for comparison".into()),
    }
}

fn str_of(v: &Val) -> &str {
    v.json().and_then(Value::as_str).unwrap_or("")
}

fn want(name: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn as_string(v: &Val, what: &'static str) -> Result<String, String> {
    match v.json() {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!(
            "wrong type for value; expected string; got {}",
            v.json().map_or(what, type_name)
        )),
    }
}

fn as_int(v: &Val) -> Result<i64, String> {
    match v.json() {
        Some(Value::Number(n)) if !n.is_f64() => {
            n.as_i64().ok_or_else(|| "integer out of range".to_string())
        }
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.map_or("<nil>", type_name)
        )),
    }
}

/// Calls a function with evaluated arguments (a piped value last). In `header` mode
/// docker's functions return their first argument (docker's HeaderFunctions).
pub(super) fn call(name: &str, a: &[Val], header: bool) -> Result<Val, String> {
    let s = |x: String| Ok(Val::Json(Value::String(x)));
    if header && DOCKER.contains(&name) {
        return Ok(a.first().cloned().unwrap_or(Val::Missing));
    }
    match name {
        "not" => {
            want(name, a, 1)?;
            Ok(Val::Json(Value::Bool(!truth(&a[0]))))
        }
        "len" => {
            want(name, a, 1)?;
            match a[0].json() {
                Some(Value::String(x)) => Ok(Val::Json(x.len().into())),
                Some(Value::Array(x)) => Ok(Val::Json(x.len().into())),
                Some(Value::Object(x)) => Ok(Val::Json(x.len().into())),
                None | Some(Value::Null) => Err("len of nil pointer".into()),
                Some(o) => Err(format!("len of type {}", type_name(o))),
            }
        }
        "index" => {
            if a.is_empty() {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            }
            let mut cur = a[0].clone();
            for ix in &a[1..] {
                cur = match cur.json() {
                    Some(Value::Array(arr)) => {
                        let i = as_index(ix, arr.len())?;
                        Val::Json(arr[i].clone())
                    }
                    Some(Value::String(st)) => {
                        let i = as_index(ix, st.len())?;
                        Val::Json(Value::from(st.as_bytes()[i]))
                    }
                    Some(Value::Object(m)) => {
                        let k = as_string(ix, "<nil>")?;
                        Val::Json(m.get(&k).cloned().unwrap_or(Value::Null))
                    }
                    None | Some(Value::Null) => return Err("index of untyped nil".into()),
                    Some(o) => return Err(format!("can't index item of type {}", type_name(o))),
                };
            }
            Ok(cur)
        }
        "slice" => {
            if a.is_empty() || a.len() > 4 {
                return Err(format!(
                    "wrong number of args for slice: want 1-4 got {}",
                    a.len()
                ));
            }
            let idx: Vec<i64> = a[1..].iter().map(as_int).collect::<Result<_, _>>()?;
            match a[0].json() {
                Some(Value::String(st)) => {
                    if idx.len() == 3 {
                        return Err("cannot 3-index slice a string".into());
                    }
                    let (i, j) = bounds(&idx, st.len())?;
                    let sub = st
                        .get(i..j)
                        .ok_or_else(|| "slice index not on a character boundary".to_string())?;
                    s(sub.to_string())
                }
                Some(Value::Array(arr)) => {
                    let (i, j) = bounds(&idx, arr.len())?;
                    Ok(Val::Json(Value::Array(arr[i..j].to_vec())))
                }
                None | Some(Value::Null) => Err("slice of untyped nil".into()),
                Some(o) => Err(format!("can't slice item of type {}", type_name(o))),
            }
        }
        "print" => s(sprint(a)),
        "println" => s(format!(
            "{}\n",
            a.iter().map(fmt_arg).collect::<Vec<_>>().join(" ")
        )),
        "printf" => {
            if a.is_empty() {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            }
            let f = as_string(&a[0], "<nil>")?;
            s(printf(&f, &a[1..]))
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &a[1..] {
                if eq2(&a[0], b)? {
                    return Ok(Val::Json(Value::Bool(true)));
                }
            }
            Ok(Val::Json(Value::Bool(false)))
        }
        "ne" => {
            want(name, a, 2)?;
            Ok(Val::Json(Value::Bool(!eq2(&a[0], &a[1])?)))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, a, 2)?;
            let o = cmp2(&a[0], &a[1])?;
            let r = match name {
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            };
            Ok(Val::Json(Value::Bool(r)))
        }
        "html" => s(html_escape(&eval_args(a))),
        "js" => s(js_escape(&eval_args(a))),
        "urlquery" => s(query_escape(&eval_args(a))),
        "call" => Err("call of a non-function: the data has no functions".into()),
        // docker's functions
        "json" => {
            want(name, a, 1)?;
            let mut out = String::new();
            match a[0].json() {
                None => out.push_str("null"),
                Some(v) => go_json(v, &mut out),
            }
            Ok(Val::Json(Value::String(out)))
        }
        "split" => {
            want(name, a, 2)?;
            let (st, sep) = (as_string(&a[0], "<nil>")?, as_string(&a[1], "<nil>")?);
            let parts: Vec<Value> = if sep.is_empty() {
                st.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                st.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Ok(Val::Json(Value::Array(parts)))
        }
        "join" => {
            want(name, a, 2)?;
            let sep = as_string(&a[1], "<nil>")?;
            match a[0].json() {
                Some(Value::Array(items)) => {
                    let mut parts = Vec::with_capacity(items.len());
                    for it in items {
                        match it {
                            Value::String(x) => parts.push(x.clone()),
                            o => {
                                return Err(format!(
                                "wrong type for value; expected []string; got element of type {}",
                                type_name(o)
                            ))
                            }
                        }
                    }
                    s(parts.join(&sep))
                }
                other => Err(format!(
                    "wrong type for value; expected []string; got {}",
                    other.map_or("<nil>", type_name)
                )),
            }
        }
        "lower" => {
            want(name, a, 1)?;
            s(as_string(&a[0], "<nil>")?.to_lowercase())
        }
        "upper" => {
            want(name, a, 1)?;
            s(as_string(&a[0], "<nil>")?.to_uppercase())
        }
        "title" => {
            want(name, a, 1)?;
            s(title(&as_string(&a[0], "<nil>")?))
        }
        "pad" => {
            want(name, a, 3)?;
            let st = as_string(&a[0], "<nil>")?;
            let (pre, suf) = (as_int(&a[1])?, as_int(&a[2])?);
            if st.is_empty() {
                return s(st);
            }
            let rep = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0).min(4096));
            s(format!("{}{st}{}", rep(pre), rep(suf)))
        }
        "truncate" => {
            want(name, a, 2)?;
            let st = as_string(&a[0], "<nil>")?;
            let n = as_int(&a[1])?;
            let n = usize::try_from(n).map_err(|_| "negative length".to_string())?;
            // docker's truncateWithLength counts runes
            if st.chars().count() < n {
                return s(st);
            }
            s(st.chars().take(n).collect())
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

fn as_index(ix: &Val, len: usize) -> Result<usize, String> {
    let i = as_int(ix).map_err(|_| {
        format!(
            "cannot index slice/array with type {}",
            ix.json().map_or("<nil>", type_name)
        )
    })?;
    usize::try_from(i)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| format!("index out of range: {i}"))
}

fn bounds(idx: &[i64], len: usize) -> Result<(usize, usize), String> {
    let get = |k: usize, dflt: usize| -> Result<usize, String> {
        match idx.get(k) {
            None => Ok(dflt),
            Some(&v) => usize::try_from(v)
                .ok()
                .filter(|&v| v <= len)
                .ok_or_else(|| format!("index out of range: {v}")),
        }
    };
    let i = get(0, 0)?;
    let j = get(1, len)?;
    if i > j {
        return Err(format!("invalid slice index: {i} > {j}"));
    }
    Ok((i, j))
}

/// An argument as fmt's `%v` prints it (a missing value is an untyped nil there).
fn fmt_arg(v: &Val) -> String {
    match v {
        Val::Missing => "<nil>".into(),
        Val::Json(j) => fmt_v(j),
    }
}

/// fmt.Sprint: a space between operands when neither is a string.
fn sprint(a: &[Val]) -> String {
    let mut out = String::new();
    let is_str = |v: &Val| matches!(v.json(), Some(Value::String(_)));
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !is_str(v) && !is_str(&a[i - 1]) {
            out.push(' ');
        }
        out.push_str(&fmt_arg(v));
    }
    out
}

/// html/js/urlquery: one argument's string as is, else fmt.Sprint of all.
fn eval_args(a: &[Val]) -> String {
    if let [Val::Json(Value::String(s))] = a {
        return s.clone();
    }
    sprint(a)
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => o.push('\u{fffd}'),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            c => o.push(c),
        }
    }
    o
}

fn js_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '"' => o.push_str("\\\""),
            '<' => o.push_str("\\u003C"),
            '>' => o.push_str("\\u003E"),
            '&' => o.push_str("\\u0026"),
            '=' => o.push_str("\\u003D"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn query_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            b => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// strings.Title: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        let letter = c.is_alphanumeric() || c == '_' || c == '\'';
        if letter && !prev_letter {
            o.extend(c.to_uppercase());
        } else {
            o.push(c);
        }
        prev_letter = letter;
    }
    o
}

/// fmt.Sprintf for the verbs templates use: %v %s %q %d %t %x %X %o %b %c %f %F %e %E %g %G
/// %%, with flags `-+# 0`, width and precision.
pub(super) fn printf(f: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut ai = 0usize;
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut plus = false;
        let mut sharp = false;
        let mut zero = false;
        let mut space = false;
        while let Some(&fl) = chars.peek() {
            match fl {
                '-' => minus = true,
                '+' => plus = true,
                '#' => sharp = true,
                '0' => zero = true,
                ' ' => space = true,
                _ => break,
            }
            chars.next();
        }
        let mut width: Option<usize> = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(
                width
                    .unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(d as usize)
                    .min(4096),
            );
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            prec = Some(0);
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                prec = Some(
                    prec.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(d as usize)
                        .min(4096),
                );
                chars.next();
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        let body = format_one(verb, arg, prec, plus, sharp, space);
        let body = match body {
            Some(b) => b,
            None => {
                out.push_str(&bad_verb(verb, arg));
                continue;
            }
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.extend(std::iter::repeat_n(' ', pad));
                } else if zero && is_numeric_verb(verb) && is_number(arg) {
                    let (sign, digits) = match body.strip_prefix(['-', '+']) {
                        Some(d) => (&body[..1], d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(sign);
                    out.extend(std::iter::repeat_n('0', pad));
                    out.push_str(digits);
                } else {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if ai < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[ai..]
            .iter()
            .map(|a| format!("{}={}", go_type(a), fmt_arg(a)))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn is_numeric_verb(v: char) -> bool {
    matches!(
        v,
        'd' | 'x' | 'X' | 'o' | 'b' | 'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 'v'
    )
}

fn is_number(v: &Val) -> bool {
    matches!(v.json(), Some(Value::Number(_)))
}

fn go_type(v: &Val) -> String {
    match v.json() {
        None | Some(Value::Null) => "<nil>".into(),
        Some(o) => type_name(o).into(),
    }
}

fn bad_verb(verb: char, arg: &Val) -> String {
    match arg.json() {
        None | Some(Value::Null) => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", go_type(arg), fmt_arg(arg)),
    }
}

fn format_one(
    verb: char,
    arg: &Val,
    prec: Option<usize>,
    plus: bool,
    sharp: bool,
    space: bool,
) -> Option<String> {
    let j = arg.json();
    let sign = |neg: bool, s: String| -> String {
        if neg {
            format!("-{s}")
        } else if plus {
            format!("+{s}")
        } else if space {
            format!(" {s}")
        } else {
            s
        }
    };
    if verb == 'T' {
        return Some(go_type(arg));
    }
    // fmt formats a slice's or map's elements one by one with the verb
    match j {
        Some(Value::Array(items)) if verb != 'v' => {
            let parts: Vec<String> = items
                .iter()
                .map(|e| {
                    let e = Val::Json(e.clone());
                    format_one(verb, &e, prec, plus, sharp, space)
                        .unwrap_or_else(|| bad_verb(verb, &e))
                })
                .collect();
            return Some(format!("[{}]", parts.join(" ")));
        }
        Some(Value::Object(m)) if verb != 'v' => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    let kv = Val::Json(Value::String((*k).clone()));
                    let e = Val::Json(m[*k].clone());
                    let kf = format_one(verb, &kv, prec, plus, sharp, space)
                        .unwrap_or_else(|| bad_verb(verb, &kv));
                    let ef = format_one(verb, &e, prec, plus, sharp, space)
                        .unwrap_or_else(|| bad_verb(verb, &e));
                    format!("{kf}:{ef}")
                })
                .collect();
            return Some(format!("map[{}]", parts.join(" ")));
        }
        _ => {}
    }
    match (verb, j) {
        ('v', _) => Some(match j {
            Some(Value::Number(n)) if !n.is_f64() && plus => {
                sign(int(arg) < 0, int(arg).unsigned_abs().to_string())
            }
            Some(Value::Number(n)) if n.is_f64() => fmt_float('g', num(arg), prec, plus, space),
            Some(Value::String(s)) if prec.is_some() => s.chars().take(prec.unwrap_or(0)).collect(),
            _ => fmt_arg(arg),
        }),
        ('s', Some(Value::String(s))) => Some(match prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        }),
        ('q', Some(Value::String(s))) => Some(go_quote(s, sharp)),
        ('t', Some(Value::Bool(b))) => Some(b.to_string()),
        ('d', Some(Value::Number(n))) if !n.is_f64() => {
            let i = int(arg);
            let mut digits = i.unsigned_abs().to_string();
            if let Some(p) = prec {
                while digits.len() < p {
                    digits.insert(0, '0');
                }
            }
            Some(sign(i < 0, digits))
        }
        ('x' | 'X' | 'o' | 'b', Some(Value::Number(n))) if !n.is_f64() => {
            let i = int(arg);
            let u = i.unsigned_abs();
            let (mut d, pre) = match verb {
                'x' => (format!("{u:x}"), "0x"),
                'X' => (format!("{u:X}"), "0X"),
                'o' => (format!("{u:o}"), "0"),
                _ => (format!("{u:b}"), "0b"),
            };
            if sharp {
                d = format!("{pre}{d}");
            }
            Some(sign(i < 0, d))
        }
        ('x' | 'X', Some(Value::String(s))) => Some(
            s.bytes()
                .map(|b| {
                    if verb == 'x' {
                        format!("{b:02x}")
                    } else {
                        format!("{b:02X}")
                    }
                })
                .collect(),
        ),
        ('c', Some(Value::Number(n))) if !n.is_f64() => Some(
            u32::try_from(int(arg))
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}')
                .to_string(),
        ),
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Some(Value::Number(n))) if n.is_f64() => {
            Some(fmt_float(verb, num(arg), prec, plus, space))
        }
        _ => None,
    }
}

fn fmt_float(verb: char, f: f64, prec: Option<usize>, plus: bool, space: bool) -> String {
    let body = match verb {
        'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), f),
        'e' | 'E' => {
            let s = format!("{:.*e}", prec.unwrap_or(6), f);
            let (m, x) = s.split_once('e').unwrap_or((&s, "0"));
            let x: i32 = x.parse().unwrap_or(0);
            let s = format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs());
            if verb == 'E' {
                s.to_uppercase()
            } else {
                s
            }
        }
        _ => {
            let s = go_float_g(f, prec);
            if verb == 'G' {
                s.to_uppercase()
            } else {
                s
            }
        }
    };
    if !body.starts_with('-') {
        if plus {
            return format!("+{body}");
        }
        if space {
            return format!(" {body}");
        }
    }
    body
}

/// strconv.Quote (or a raw backquoted string with `%#q` where possible).
fn go_quote(s: &str, sharp: bool) -> String {
    if sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || !c.is_control()) {
        return format!("`{s}`");
    }
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\u{7}' => o.push_str("\\a"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            '\u{b}' => o.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
