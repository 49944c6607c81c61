//! docker's zero values for the keys of its `info` object that wharf has no data for (kernel
//! features it does not use, a containerd commit): present with docker's zero value, so clients that read them (and the
//! dockerd comparison test, crates/wharf/tests/api_compare.rs) find docker's shape. A key
//! already there is never overwritten. The inspect objects' shape is `inspect_shape`'s.
//!
//! Must not: invent a value that is not zero or not wharf's (a real setting is rendered
//! where it is kept, not here).

use serde_json::{json, Value};

/// Inserts each of `defaults`' keys that `v` (an object) lacks.
pub(crate) fn fill(v: &mut Value, defaults: Value) {
    if let (Value::Object(o), Value::Object(d)) = (v, defaults) {
        for (k, dv) in d {
            o.entry(k).or_insert(dv);
        }
    }
}

/// `info`: kernel features wharf does not use, the proxies, and the commits of components
/// wharf does not have (containerd, runc, docker-init).
pub(crate) fn info() -> Value {
    let none = json!({"ID": "", "Expected": ""});
    let env = |k: &str| {
        std::env::var(k)
            .or_else(|_| std::env::var(k.to_ascii_lowercase()))
            .unwrap_or_default()
    };
    json!({
        "KernelMemory": false, "KernelMemoryTCP": false, "CPUShares": true, "CPUSet": true,
        "OomKillDisable": false,
        "BridgeNfIptables": sysctl_on("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        "BridgeNfIp6tables": sysctl_on("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
        "HttpProxy": env("HTTP_PROXY"), "HttpsProxy": env("HTTPS_PROXY"),
        "NoProxy": env("NO_PROXY"), "GenericResources": null,
        "ContainerdCommit": none.clone(), "RuncCommit": none.clone(), "InitCommit": none,
    })
}

/// Whether a boolean sysctl reads `1` (its first bytes only).
fn sysctl_on(path: &str) -> bool {
    use std::io::Read;
    let mut b = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut b))
        .map(|n| b[..n].first() == Some(&b'1'))
        .unwrap_or(false)
}
