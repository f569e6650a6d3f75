//! The parser of Prometheus' instant-query answers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hale_adapter::observe::parse_instant_query(text);
});
