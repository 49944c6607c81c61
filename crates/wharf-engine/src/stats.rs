//! (placeholder) OWNED BY: exec helper.
