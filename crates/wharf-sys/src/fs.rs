//! Path resolution inside untrusted trees (invariant 2) and the *at() primitives layer
//! application needs. OWNED BY: store helper (fills this in).
