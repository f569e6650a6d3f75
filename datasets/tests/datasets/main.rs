//! hale-datasets: loaders on repo fixtures (always) and on the real traces in
//! ../shared/traces (skipped, with a printed reason, where ../shared is absent), bad
//! input, failure-model fits, scenarios driven by traces.

mod bad_input;
mod fits;
mod fixtures;
mod real_traces;
mod scenarios;

use std::path::PathBuf;

/// A fixture in datasets/fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A trace in ../shared/traces/, or `None` (with the reason printed) where it is absent.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is absent; ../shared sits beside the checkout in CI",
            p.display()
        );
        None
    }
}
