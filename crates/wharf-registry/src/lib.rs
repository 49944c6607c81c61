//! wharf-registry: the OCI distribution server. OWNED BY: registry helper.
