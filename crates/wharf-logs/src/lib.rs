//! wharf-logs: container log drivers and readers. OWNED BY: logs helper.
