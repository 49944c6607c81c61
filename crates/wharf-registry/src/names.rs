//! Validation of repository names and tags: the distribution reference grammar of
//! `wharf_types::reference`. Every name or tag that reaches `storage` passed through here;
//! this module does no I/O.

/// A repository name: wharf-types' reference grammar (lowercase path components separated
/// by `/`), at most 255 bytes.
pub fn valid_name(n: &str) -> bool {
    n.len() <= 255 && wharf_types::reference::valid_path(n)
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (wharf-types' grammar).
pub fn valid_tag(t: &str) -> bool {
    wharf_types::reference::valid_tag(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "test/busybox", "a-b/c__d/e.f", "x--y", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "a/.",
            "_a",
            "a_",
            "a/_layers",
            "a b",
            "a%2f",
            "a___b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags() {
        assert!(valid_tag("latest") && valid_tag("_x") && valid_tag("V1.2-rc"));
        assert!(!valid_tag("") && !valid_tag(".x") && !valid_tag("a/b") && !valid_tag("-a"));
        assert!(!valid_tag(&"a".repeat(129)));
    }
}
