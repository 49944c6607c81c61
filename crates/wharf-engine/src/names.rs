//! Random container names in docker's `adjective_noun` style, and random ids.

use std::io::Read;

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "calm", "clever", "eager", "fair", "gentle", "happy", "keen", "kind",
    "lively", "lucid", "merry", "nimble", "proud", "quiet", "rapid", "serene", "sharp", "steady",
    "swift", "tidy", "vivid", "wise", "witty", "zealous", "amber", "silver", "golden",
];

const NOUNS: &[&str] = &[
    "anchor", "barge", "beacon", "buoy", "cargo", "dock", "ferry", "galley", "harbor", "hull",
    "jetty", "keel", "lantern", "mast", "pier", "quay", "rudder", "sail", "schooner", "skiff",
    "tide", "tugboat", "wharf", "windlass", "yacht", "compass", "current", "lagoon", "reef",
    "cove",
];

/// `n` random bytes from the kernel.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// A name like `swift_harbor`; the caller retries on a collision.
pub fn random_name(seed: [u8; 2]) -> String {
    let a = ADJECTIVES[seed[0] as usize % ADJECTIVES.len()];
    let n = NOUNS[seed[1] as usize % NOUNS.len()];
    format!("{a}_{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid() {
        for a in 0..=255u8 {
            let n = random_name([a, a.wrapping_mul(7)]);
            assert!(wharf_types::id::validate_container_name(&n), "{n}");
        }
        assert_ne!(random_bytes::<16>().unwrap(), [0u8; 16]);
    }
}
