//! The fluid model against the request level, on three-tier.

use crate::sim;
use hale_sim::{FaultsSpec, Fidelity, RateSpec, Scenario, SimTime};

/// Mean end-to-end latency after `secs` of constant load `rps`, without faults.
fn mean_latency_ms(rps: f64, api_replicas: u32, fidelity: Fidelity, secs: u64) -> f64 {
    let mut spec = Scenario::builtin("three-tier").unwrap().spec;
    spec.services[1].replicas = api_replicas;
    spec.fidelity = fidelity;
    spec.workload[0].rate = RateSpec::Constant { rps };
    spec.faults = FaultsSpec::default();
    let mut s = sim(
        Scenario::from_spec(spec, "three-tier (constant load)").unwrap(),
        11,
    );
    s.run_until(SimTime::from_secs(secs));
    s.requests().mean_latency_s() * 1e3
}

#[test]
fn fluid_agrees_with_request_level_on_three_tier() {
    // The api tier is the bottleneck: 3 replicas × 8 slots, each held for the api's
    // 8 ms plus the db's ~5.5 ms, so its utilisation is about rps × 0.0135 / 24, and
    // 1422 rps is rho ≈ 0.8. The db (16 slots × 5 ms) and frontend (64 slots × ~16 ms)
    // are below that.
    // With one api replica (8 slots) queueing matters more: rho ≈ rps × 0.0135 / 8,
    // so 474 rps is rho ≈ 0.8.
    let cases = [
        (3, 300.0),
        (3, 700.0),
        (3, 1100.0),
        (3, 1422.0),
        (1, 180.0),
        (1, 300.0),
        (1, 400.0),
        (1, 474.0),
    ];
    for (api, rps) in cases {
        let request = mean_latency_ms(rps, api, Fidelity::Request, 400);
        let fluid = mean_latency_ms(rps, api, Fidelity::Fluid, 400);
        let err = (fluid - request).abs() / request;
        eprintln!(
            "api ×{api}, rps {rps}: request {request:.3} ms, fluid {fluid:.3} ms, error {:.1} %",
            err * 100.0
        );
        assert!(
            err < 0.10,
            "api ×{api}, rps {rps}: request {request:.3} ms vs fluid {fluid:.3} ms"
        );
    }
}
