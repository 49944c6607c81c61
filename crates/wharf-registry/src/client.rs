//! (placeholder) The distribution client: pull, push, auth. OWNED BY: client helper.
