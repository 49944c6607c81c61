//! (placeholder) save/load archives. OWNED BY: archive helper.
