//! Resolve `user[:group]` and `--group-add` against the container's own /etc/passwd and
//! /etc/group (read after pivot_root; never the host's NSS), with Docker's semantics and
//! messages. Numeric ids need no entry.

use super::{fail, InitError};
use wharf_types::user::{check_id, parse_id_or_name, parse_user_spec, IdOrName, UserError};

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
    /// As written in the file; checked against the id range when the entry is used.
    uid: u64,
    gid: u64,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u64,
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

/// The largest /etc/passwd or /etc/group init reads (an image controls both).
const MAX_DB: u64 = 4 << 20;

/// The container's `path` (we are inside its root): bounded, regular files only; a missing
/// file reads as empty, as with glibc.
fn read(path: &str) -> Result<String, InitError> {
    match wharf_sys::fs::read_small_file(None, std::path::Path::new(path), MAX_DB) {
        Ok(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Ok(None) => Ok(String::new()),
        Err(e) => Err(fail(format!("read {path}: {e}"))),
    }
}

pub(crate) fn resolve(user: &str, additional: &[String]) -> Result<ExecUser, InitError> {
    resolve_with(
        user,
        additional,
        &read("/etc/passwd")?,
        &read("/etc/group")?,
    )
}

fn not_found(what: &str, name: &str, file: &str) -> InitError {
    InitError {
        code: 125,
        message: format!("unable to find {what} {name}: no matching entries in {file} file"),
    }
}

fn range(e: UserError) -> InitError {
    fail(e.to_string())
}

/// An id taken from an image's passwd/group entry `name`.
fn entry_id(what: &'static str, file: &str, name: &str, id: u64) -> Result<u32, InitError> {
    check_id(what, id).map_err(|e| fail(format!("{file} entry {name:?}: {e}")))
}

fn resolve_with(
    user: &str,
    additional: &[String],
    passwd: &str,
    group: &str,
) -> Result<ExecUser, InitError> {
    let spec = parse_user_spec(user).map_err(range)?;
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (uid, entry) = match spec.user {
        IdOrName::Id(uid) => (uid, users.iter().find(|e| e.uid == u64::from(uid))),
        IdOrName::Name(n) => {
            let e = users
                .iter()
                .find(|e| e.name == n)
                .ok_or_else(|| not_found("user", n, "passwd"))?;
            (entry_id("uid", "passwd", &e.name, e.uid)?, Some(e))
        }
    };
    let lookup_group = |g: &IdOrName<'_>| -> Result<u32, InitError> {
        match *g {
            IdOrName::Id(n) => Ok(n),
            IdOrName::Name(name) => {
                let e = groups
                    .iter()
                    .find(|e| e.name == name)
                    .ok_or_else(|| not_found("group", name, "group"))?;
                entry_id("gid", "group", &e.name, e.gid)
            }
        }
    };
    let gid = match &spec.group {
        Some(g) => lookup_group(g)?,
        None => match entry {
            Some(e) => entry_id("gid", "passwd", &e.name, e.gid)?,
            None => 0,
        },
    };
    let mut sup: Vec<u32> = Vec::new();
    // an explicit group (even an empty one, "u:") replaces the user's memberships
    if !user.contains(':') {
        if let Some(e) = entry {
            for gr in groups.iter().filter(|gr| gr.members.contains(&e.name)) {
                sup.push(entry_id("gid", "group", &gr.name, gr.gid)?);
            }
        }
    }
    for a in additional {
        let g = parse_id_or_name("group", a).map_err(range)?;
        sup.push(lookup_group(&g)?);
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

/// For the fuzz target (`fuzz/fuzz_targets/passwd_group.rs`): resolve `user` and
/// `additional` against passwd/group texts as init does, returning (uid, gid, groups) or the
/// error message. Must never panic, and must never yield an id outside 0..=2^31-1.
#[doc(hidden)]
pub fn fuzz_resolve(
    user: &str,
    additional: &[String],
    passwd: &str,
    group: &str,
) -> Result<(u32, u32, Vec<u32>), String> {
    resolve_with(user, additional, passwd, group)
        .map(|u| (u.uid, u.gid, u.groups))
        .map_err(|e| e.message)
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

    #[test]
    fn ids_out_of_range_never_resolve() {
        let pw = "evil:x:4294967295:0::/:/bin/sh\nbadgid:x:5:4294967296::/:/bin/sh\n";
        let gr = "evilg:x:4294967295:\nmembers:x:4294967295:badgid\n";
        for (user, add) in [
            ("4294967295", vec![]),
            ("0:4294967295", vec![]),
            ("-1", vec![]),
            ("evil", vec![]),
            ("badgid", vec![]),
            ("0:evilg", vec![]),
            ("0", vec!["4294967296".to_string()]),
            ("0", vec!["evilg".to_string()]),
        ] {
            let e = resolve_with(user, &add, pw, gr).unwrap_err();
            assert!(
                e.message
                    .contains("uids and gids must be in range 0-2147483647"),
                "{user} {add:?}: {}",
                e.message
            );
        }
        // a member of a group whose gid is out of range
        let e = resolve_with("5:5", &[], pw, gr);
        assert!(e.is_ok(), "explicit group: memberships not used");
    }
}
