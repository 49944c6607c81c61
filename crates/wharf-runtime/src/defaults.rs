//! (placeholder) OWNED BY: security/cgroups helper.
