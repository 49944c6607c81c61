//! Resolve `user[:group]` and `--group-add` against the container's own /etc/passwd and
//! /etc/group (read after pivot_root; never the host's NSS), with Docker's semantics and
//! messages. Numeric ids need no entry.

use super::InitError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub(crate) fn resolve(user: &str, additional: &[String]) -> Result<ExecUser, InitError> {
    resolve_with(user, additional, &read("/etc/passwd"), &read("/etc/group"))
}

fn not_found(what: &str, name: &str, file: &str) -> InitError {
    InitError {
        code: 125,
        message: format!("unable to find {what} {name}: no matching entries in {file} file"),
    }
}

fn resolve_with(
    user: &str,
    additional: &[String],
    passwd: &str,
    group: &str,
) -> Result<ExecUser, InitError> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|e| e.name == u)
                .ok_or_else(|| not_found("user", u, "passwd"))?,
        ),
    };
    let uid = match (u.parse::<u32>(), entry) {
        (Ok(n), _) => n,
        (Err(_), Some(e)) => e.uid,
        (Err(_), None) => return Err(not_found("user", u, "passwd")),
    };
    let lookup_group = |g: &str| -> Result<u32, InitError> {
        match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| not_found("group", g, "group")),
        }
    };
    let gid = match g {
        Some(g) if !g.is_empty() => lookup_group(g)?,
        _ => entry.map_or(0, |e| e.gid),
    };
    let mut sup: Vec<u32> = Vec::new();
    if g.is_none() {
        if let Some(e) = entry {
            sup.extend(
                groups
                    .iter()
                    .filter(|gr| gr.members.contains(&e.name))
                    .map(|gr| gr.gid),
            );
        }
    }
    for a in additional {
        sup.push(lookup_group(a)?);
    }
    if !sup.contains(&gid) {
        sup.insert(0, gid);
    }
    sup.dedup();
    let home = entry
        .map(|e| e.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    Ok(ExecUser {
        uid,
        gid,
        groups: sup,
        home,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PW: &str =
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GR: &str = "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n";

    #[test]
    fn root_default() {
        let u = resolve_with("", &[], PW, GR).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.groups, vec![0, 10]);
    }

    #[test]
    fn names_and_numbers() {
        let u = resolve_with("nobody", &[], PW, GR).unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        let u = resolve_with("1234:55", &["wheel".into()], PW, GR).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 55, "/"));
        assert_eq!(u.groups, vec![55, 10]);
        let u = resolve_with("nobody:wheel", &[], PW, GR).unwrap();
        assert_eq!((u.uid, u.gid), (65534, 10));
    }

    #[test]
    fn unknown_user_and_group() {
        let e = resolve_with("ghost", &[], PW, GR).unwrap_err();
        assert_eq!(
            e.message,
            "unable to find user ghost: no matching entries in passwd file"
        );
        let e = resolve_with("root:ghosts", &[], PW, GR).unwrap_err();
        assert_eq!(
            e.message,
            "unable to find group ghosts: no matching entries in group file"
        );
    }
}
