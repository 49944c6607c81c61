//! (placeholder) OWNED BY: monitor helper.
