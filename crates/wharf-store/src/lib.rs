//! Content store. OWNED BY: store helper.
