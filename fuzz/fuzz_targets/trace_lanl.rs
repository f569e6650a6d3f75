//! The `lanl` trace loader on arbitrary bytes.
#![no_main]
use hale_datasets::Format;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let format = Format::parse("lanl").expect("a known format");
    let _ = hale_datasets::parse(Path::new("fuzz"), data, format);
});
