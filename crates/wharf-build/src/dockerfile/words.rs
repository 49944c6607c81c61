//! The small splitters BuildKit's line parsers use: leading `--flags`, words that keep their
//! quotes (ENV/LABEL/ARG), whitespace fields (FROM/EXPOSE/COPY), and the JSON (exec) form.

use super::SyntaxError;

/// docker's `[\t\v\f\r ]+`.
fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Whitespace-separated fields (no quote handling).
pub(super) fn fields(s: &str) -> Vec<String> {
    s.split(is_ws)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits `cmd rest` at the first run of whitespace (after trimming).
pub(super) fn split_command(line: &str) -> (&str, &str) {
    let t = line.trim();
    match t.find(is_ws) {
        Some(i) => (&t[..i], t[i..].trim_start_matches(is_ws)),
        None => (t, ""),
    }
}

/// BuildKit's `extractBuilderFlags`: the leading words that start with `--` (quotes and
/// backslashes processed inside them), and the rest of the line. A lone `--` ends the flags.
pub(super) fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let (off, ch) = if at_end { (line.len(), '\0') } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                return (line[off..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[off..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            let mut c = ch;
            if ch == '\\' {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                i += 1;
                c = chars[i].1;
            }
            word.push(c);
            i += 1;
            continue;
        }
        // in a quote
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        let mut c = ch;
        if ch == '\\' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            c = chars[i].1;
        }
        word.push(c);
        i += 1;
    }
    (String::new(), words)
}

/// BuildKit's `parseWords`: whitespace-separated words where quotes group (and are kept)
/// and the escape character keeps the next character in the word (and is kept too).
pub(super) fn words_keep_quotes(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let ch = chars.get(i).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            let mut c = ch;
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                c = chars[i];
            }
            word.push(c);
            i += 1;
            continue;
        }
        // in a quote
        if ch == quote {
            phase = Phase::Word;
        }
        let mut c = ch;
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            c = chars[i];
        }
        word.push(c);
        i += 1;
    }
    words
}

/// The outcome of trying the JSON form.
pub(super) enum Json {
    /// A JSON array of strings.
    Array(Vec<String>),
    /// Not a JSON array: docker falls back to the shell form.
    NotJson,
}

/// BuildKit's `parseJSON`: `[` after optional whitespace, then a JSON array; an array with a
/// non-string member is an error, anything else that is not an array is shell form.
pub(super) fn parse_json(rest: &str) -> Result<Json, SyntaxError> {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Ok(Json::NotJson);
    }
    let Ok(v) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(Json::NotJson);
    };
    v.into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(SyntaxError::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Json::Array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let (rest, f) = extract_flags("--from=a --chown=\"x y\" src dst");
        assert_eq!(f, ["--from=a", "--chown=x y"]);
        assert_eq!(rest, "src dst");
        let (rest, f) = extract_flags("-- --x a");
        assert!(f.is_empty());
        assert_eq!(rest, " --x a");
        let (rest, f) = extract_flags("--link");
        assert_eq!(f, ["--link"]);
        assert_eq!(rest, "");
    }

    #[test]
    fn keep_quotes() {
        assert_eq!(
            words_keep_quotes(r#"a="b c" d=e\ f 'g h'"#, '\\'),
            [r#"a="b c""#, r"d=e\ f", "'g h'"]
        );
    }
}
