//! The `series-parquet` trace loader on arbitrary bytes.
//!
//! hale catches the parquet reader's own panics (polars' thrift decoder `expect`s
//! well-formed metadata) and refuses the file: `hale_datasets::frame::read_parquet`.
//! Here such a panic, raised inside polars-parquet and caught by hale, is not a
//! finding; any other panic still aborts, as libFuzzer's hook does.
#![no_main]
use hale_datasets::Format;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(
    init: {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| l.file().contains("polars-parquet"))
            {
                return;
            }
            abort(info);
        }));
    },
    |data: &[u8]| {
        let format = Format::parse("series-parquet").expect("a known format");
        let _ = hale_datasets::parse(Path::new("fuzz"), data, format);
    }
);
