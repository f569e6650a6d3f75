//! The adapter's config: TOML → checked config.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hale_adapter::config::AdapterConfig::from_toml_str(text, Path::new("fuzz.toml"));
});
