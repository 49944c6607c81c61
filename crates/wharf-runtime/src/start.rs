//! (placeholder) OWNED BY: runtime-core helper.
