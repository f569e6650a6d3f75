//! Scenario TOML → validated scenario → a simulation built from it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scenario) = hale_sim::Scenario::from_toml_str(text, "fuzz.toml") {
        let _ = hale_sim::Simulation::new(Arc::new(scenario), 1);
    }
});
