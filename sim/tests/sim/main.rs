//! Integration tests of hale-sim (one test binary; one module per concern).

mod actions_and_faults;
mod bad_input;
mod erlang;
mod fidelity;
mod intrusions;
mod invariants;
mod memory;
mod spot;
mod windows;

use hale_sim::{Scenario, Simulation};
use std::sync::Arc;

/// A builtin scenario with its TOML edited by `edit` (a string replacement per pair).
pub fn builtin_with(name: &str, edits: &[(&str, &str)]) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in {name}");
        text = text.replacen(from, to, 1);
    }
    Scenario::from_toml_str(&text, &path).unwrap()
}

pub fn sim(s: Scenario, seed: u64) -> Simulation {
    Simulation::new(Arc::new(s), seed)
}
