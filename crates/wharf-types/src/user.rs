//! `user[:group]` specs (`--user`, `exec -u`, an image's `User`) and group names or ids
//! (`--group-add`), parsed without any lookup: a numeric part is an id and must lie in docker's
//! and runc's range 0..=2147483647, anything else is a name resolved later inside the
//! container. The range check is what keeps `4294967295` (`(uid_t)-1`, which `setresuid`
//! takes as "leave unchanged") from running a container as root (CVE-2024-40635).

/// The largest uid or gid a container may use (runc's `maxID`, `2^31 - 1`).
pub const MAX_ID: u32 = 2_147_483_647;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("invalid {what} {value:?}: uids and gids must be in range 0-{MAX_ID}")]
    OutOfRange { what: &'static str, value: String },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl crate::error::HasKind for UserError {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

/// One side of a spec: a numeric id (in range) or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName<'a> {
    Id(u32),
    Name(&'a str),
}

/// A parsed `user[:group]`. An empty user means root; `group` is `None` without a `:` or
/// with an empty group after it (docker: the user's primary group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec<'a> {
    pub user: IdOrName<'a>,
    pub group: Option<IdOrName<'a>>,
}

/// Parses a uid, a gid or a name. `what` names the thing in the error ("user", "group").
/// A string of digits (optionally signed, as Go's `Atoi` reads it) is an id and must be in
/// range; a name must not contain ':', NUL or a newline (it is matched against passwd/group
/// lines).
pub fn parse_id_or_name<'a>(what: &'static str, s: &'a str) -> Result<IdOrName<'a>, UserError> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let out_of_range = || UserError::OutOfRange {
            what,
            value: s.to_string(),
        };
        if s.starts_with('-') && digits.bytes().any(|b| b != b'0') {
            return Err(out_of_range());
        }
        return match digits.parse::<u64>() {
            Ok(n) if n <= u64::from(MAX_ID) => Ok(IdOrName::Id(n as u32)),
            _ => Err(out_of_range()),
        };
    }
    if s.is_empty() {
        return Err(UserError::Invalid {
            what,
            value: s.to_string(),
            reason: "empty name",
        });
    }
    if s.contains([':', '\0', '\n', '\r']) {
        return Err(UserError::Invalid {
            what,
            value: s.to_string(),
            reason: "a name must not contain ':', NUL or a line break",
        });
    }
    Ok(IdOrName::Name(s))
}

/// Parses `user[:group]` (docker's `--user`, `exec -u`, the image config's `User`).
pub fn parse_user_spec(spec: &str) -> Result<UserSpec<'_>, UserError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if u.is_empty() {
        IdOrName::Id(0)
    } else {
        parse_id_or_name("user", u)?
    };
    let group = match g {
        Some(g) if !g.is_empty() => Some(parse_id_or_name("group", g)?),
        _ => None,
    };
    Ok(UserSpec { user, group })
}

/// An id read from an image's passwd or group file, checked against the same range.
pub fn check_id(what: &'static str, id: u64) -> Result<u32, UserError> {
    if id <= u64::from(MAX_ID) {
        Ok(id as u32)
    } else {
        Err(UserError::OutOfRange {
            what,
            value: id.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_defaults() {
        let s = parse_user_spec("").unwrap();
        assert_eq!((s.user, s.group), (IdOrName::Id(0), None));
        let s = parse_user_spec("1000:50").unwrap();
        assert_eq!(
            (s.user, s.group),
            (IdOrName::Id(1000), Some(IdOrName::Id(50)))
        );
        let s = parse_user_spec("app:").unwrap();
        assert_eq!((s.user, s.group), (IdOrName::Name("app"), None));
        let s = parse_user_spec("2147483647:wheel").unwrap();
        assert_eq!(
            (s.user, s.group),
            (IdOrName::Id(MAX_ID), Some(IdOrName::Name("wheel")))
        );
        assert_eq!(parse_id_or_name("group", "-0").unwrap(), IdOrName::Id(0));
        assert_eq!(parse_id_or_name("group", "+7").unwrap(), IdOrName::Id(7));
    }

    #[test]
    fn out_of_range_is_refused() {
        for bad in [
            "4294967295",
            "2147483648",
            "4294967296",
            "-1",
            "99999999999999999999999",
        ] {
            let e = parse_user_spec(bad).unwrap_err();
            assert!(
                matches!(e, UserError::OutOfRange { what: "user", .. }),
                "{bad}"
            );
            assert_eq!(
                e.to_string(),
                format!("invalid user {bad:?}: uids and gids must be in range 0-2147483647")
            );
            let e = parse_user_spec(&format!("0:{bad}")).unwrap_err();
            assert!(
                matches!(e, UserError::OutOfRange { what: "group", .. }),
                "{bad}"
            );
            assert!(parse_id_or_name("group", bad).is_err());
        }
        assert!(check_id("uid", 4_294_967_295).is_err());
        assert_eq!(check_id("uid", 65534).unwrap(), 65534);
    }

    #[test]
    fn hostile_names_are_refused() {
        assert!(parse_user_spec("a\nroot").is_err());
        assert!(parse_user_spec("a:b:c").is_err());
        assert!(parse_id_or_name("group", "").is_err());
        assert!(parse_id_or_name("group", "x\0").is_err());
    }
}
