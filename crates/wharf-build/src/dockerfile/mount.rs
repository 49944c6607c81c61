//! `RUN --mount=` values: a CSV list of `key=value` fields, as BuildKit's `parseMount`.

use super::{Mount, MountType, Sharing, SyntaxError};

/// Splits a CSV record (`a=b,"c=d,e"`); quotes group and `""` is a quote.
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut in_quotes = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                in_quotes = true;
                at_start = false;
            }
            ',' => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    out.push(cur);
    out
}

/// Go's `strconv.ParseBool`.
fn go_bool(key: &str, v: &str) -> Result<bool, SyntaxError> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(bad(key, v)),
    }
}

fn bad(key: &str, value: &str) -> SyntaxError {
    SyntaxError::MountValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

pub(super) fn parse_mount(value: &str) -> Result<Mount, SyntaxError> {
    let mut m = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        readonly: false,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    let mut readonly: Option<bool> = None;
    let mut only: Vec<(String, &'static [MountType])> = Vec::new();
    for field in csv_fields(value) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        // flag-like keys may stand alone
        match (key.as_str(), &val) {
            ("readonly" | "ro", v) => {
                readonly = Some(match v {
                    None => true,
                    Some(v) => go_bool(&key, v)?,
                });
                continue;
            }
            ("readwrite" | "rw", v) => {
                readonly = Some(match v {
                    None => false,
                    Some(v) => !go_bool(&key, v)?,
                });
                continue;
            }
            ("required", v) => {
                m.required = match v {
                    None => true,
                    Some(v) => go_bool(&key, v)?,
                };
                only.push((key, &[MountType::Secret, MountType::Ssh]));
                continue;
            }
            (_, None) => {
                return Err(SyntaxError::MountKey {
                    key: key.clone(),
                    field: field.clone(),
                })
            }
            _ => {}
        }
        let val = val.unwrap_or_default();
        match key.as_str() {
            "type" => {
                m.kind = match val.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(SyntaxError::MountType(val)),
                }
            }
            "source" | "src" => m.source = Some(val),
            "target" | "dst" | "destination" => m.target = Some(val),
            "from" => {
                m.from = Some(val);
                only.push((key, &[MountType::Bind, MountType::Cache]));
            }
            "id" => m.id = Some(val),
            "sharing" => {
                m.sharing = Some(match val.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(SyntaxError::MountSharing(val)),
                });
                only.push((key, &[MountType::Cache]));
            }
            "mode" => {
                m.mode = Some(u32::from_str_radix(&val, 8).map_err(|_| bad(&key, &val))?);
            }
            "uid" => m.uid = Some(val.parse().map_err(|_| bad(&key, &val))?),
            "gid" => m.gid = Some(val.parse().map_err(|_| bad(&key, &val))?),
            "size" => {
                let n = wharf_types::parse::size(&val).map_err(|_| bad(&key, &val))?;
                m.size = Some(u64::try_from(n).map_err(|_| bad(&key, &val))?);
                only.push((key, &[MountType::Tmpfs]));
            }
            "env" => {
                m.env = Some(val);
                only.push((key, &[MountType::Secret]));
            }
            _ => return Err(SyntaxError::MountKey { key, field }),
        }
    }
    for (key, kinds) in only {
        if !kinds.contains(&m.kind) {
            return Err(SyntaxError::MountOption {
                key,
                kind: m.kind.as_str(),
            });
        }
    }
    m.readonly = readonly.unwrap_or(matches!(
        m.kind,
        MountType::Bind | MountType::Secret | MountType::Ssh
    ));
    match m.kind {
        MountType::Bind | MountType::Cache | MountType::Tmpfs if m.target.is_none() => {
            return Err(SyntaxError::MountTarget(m.kind.as_str()))
        }
        MountType::Secret if m.target.is_none() && m.id.is_none() && m.env.is_none() => {
            return Err(SyntaxError::MountTarget("secret"))
        }
        _ => {}
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv() {
        assert_eq!(csv_fields(r#"a=b,"c=d,e",f"#), ["a=b", "c=d,e", "f"]);
    }

    #[test]
    fn cache_defaults() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!(m.sharing, Some(Sharing::Locked));
        assert!(parse_mount("type=bind,sharing=locked,target=/x").is_err());
        assert!(parse_mount("type=cache").is_err());
        assert!(parse_mount("type=nfs,target=/x").is_err());
    }
}
