//! Engine API input: arbitrary bytes as a `POST /containers/create` body (mapped onto the
//! engine's request, then prepared: parsed and checked as a create would, nothing made) and
//! as a query string with `filters`, and a request path's version prefix. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = wharf_api::parse_create_body(Some("fuzz".into()), data) {
        assert!(req.flags.remote, "an API request is always remote");
        let _ = wharf_engine::validate::prepare(req);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = wharf_api::parse_query_filters(s);
        let _ = wharf_api::version::split(s);
    }
});
