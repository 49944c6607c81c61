//! (placeholder) Air-gap bundles and inventories. OWNED BY: bundle helper.
