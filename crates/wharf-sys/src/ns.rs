//! (placeholder) setns and namespace fds. OWNED BY: exec helper.
