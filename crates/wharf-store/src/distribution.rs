//! (placeholder) Store operations for the registry client (pull/push). OWNED BY: client helper.
