//! Policy bundle loading. The first byte chooses what is arbitrary: `policy.json`
//! (beside the demo bundle's real weights), or `weights.bpk` (beside the demo bundle's
//! `policy.json` with the checksum of those bytes, so that the weights are read).
#![no_main]
use burn::prelude::Device;
use hale_policies::bundle::{Bundle, sha256_hex};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const SPEC: &[u8] = include_bytes!("../../adapter/tests/data/demo-scaling-ppo/policy.json");
const WEIGHTS: &[u8] = include_bytes!("../../adapter/tests/data/demo-scaling-ppo/weights.bpk");

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let device = Device::flex();
    let dir = Path::new("fuzz");
    if choice % 2 == 0 {
        let _ = Bundle::from_bytes(dir, rest, WEIGHTS.to_vec(), &device);
    } else {
        let mut spec: serde_json::Value = serde_json::from_slice(SPEC).expect("the demo spec");
        spec["weights_sha256"] = sha256_hex(rest).into();
        let spec = serde_json::to_vec(&spec).expect("a spec serialises");
        let _ = Bundle::from_bytes(dir, &spec, rest.to_vec(), &device);
    }
});
