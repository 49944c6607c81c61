//! Image reference parsing (docker's grammar). Must never panic, and what parses must print
//! back to something that parses to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_types::ImageRef;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = ImageRef::parse(s) else { return };
    let _ = r.familiar();
    let _ = r.familiar_repository();
    let again = ImageRef::parse(&r.to_string()).expect("a printed reference parses");
    assert_eq!(again.to_string(), r.to_string());
});
