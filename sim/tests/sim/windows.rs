//! Trace windows that move from run to run (`offset = "random"` or `"tiled"`).

use hale_sim::{RateSpec, ResolvedSeries, Scenario, ScenarioSpec, Simulation, TraceOffset};
use std::sync::Arc;

/// three-tier with its frontend driven by a resolved 100-step series (10 s steps,
/// rate = 100 + step index), windows of `window_s`, at `offset`.
fn traced(offset: TraceOffset, window_s: Option<f64>) -> Result<Scenario, String> {
    let base = Scenario::builtin("three-tier").unwrap();
    let mut spec: ScenarioSpec = base.spec.clone();
    let text = format!(
        "kind = \"trace\"\npath = \"made-up.txt\"\noffset = \"{}\"\n{}",
        match offset {
            TraceOffset::Start => "start",
            TraceOffset::Random => "random",
            TraceOffset::Tiled => "tiled",
        },
        window_s.map_or(String::new(), |d| format!("duration_s = {d}\n"))
    );
    let mut rate: RateSpec = toml::from_str(&text).unwrap();
    if let RateSpec::Trace(t) = &mut rate {
        t.resolved = Some(ResolvedSeries {
            step_s: 10.0,
            rps: (0..100)
                .map(|i| 100.0 + i as f64)
                .collect::<Vec<_>>()
                .into(),
        });
    }
    spec.workload[0].rate = rate;
    Scenario::from_spec(spec, "traced").map_err(|e| e.to_string())
}

fn offset_of(sc: &Arc<Scenario>, seed: u64) -> Option<f64> {
    Simulation::new(sc.clone(), seed).window_offsets_s()[0]
}

#[test]
fn a_random_window_is_drawn_from_the_seed_and_tiles_go_in_order() {
    let sc = Arc::new(traced(TraceOffset::Random, Some(300.0)).unwrap());
    let offsets: Vec<f64> = (0..40).map(|s| offset_of(&sc, s).unwrap()).collect();
    assert_eq!(
        offset_of(&sc, 7),
        Some(offsets[7]),
        "same seed, same window"
    );
    // 100 steps, 30 in a window: 71 whole-step offsets, 0 s to 700 s.
    assert!(
        offsets
            .iter()
            .all(|&o| (0.0..=700.0).contains(&o) && o % 10.0 == 0.0)
    );
    let distinct: std::collections::BTreeSet<u64> = offsets.iter().map(|&o| o as u64).collect();
    assert!(distinct.len() > 20, "{distinct:?}");

    // The run's rate is its window: 100 + offset/10 at the start, held for 10 s.
    let mut sim = Simulation::new(sc.clone(), 3);
    sim.run_until(hale_sim::SimTime::from_secs_f64(10.0));
    let arrived = sim.requests().arrived;
    let want = 100.0 + offsets[3] / 10.0;
    assert!(
        (arrived / (10.0 * want) - 1.0).abs() < 0.15,
        "{arrived} arrivals in 10 s at {want}/s"
    );

    // Tiled: three whole 300 s windows in 1000 s; seed s takes window s mod 3.
    let tiled = Arc::new(traced(TraceOffset::Tiled, Some(300.0)).unwrap());
    let got: Vec<Option<f64>> = (0..5).map(|s| offset_of(&tiled, s)).collect();
    assert_eq!(
        got,
        vec![Some(0.0), Some(300.0), Some(600.0), Some(0.0), Some(300.0)]
    );

    // At its start (the default) the window does not move.
    let fixed = Arc::new(traced(TraceOffset::Start, Some(300.0)).unwrap());
    assert_eq!(offset_of(&fixed, 5), None);
}

#[test]
fn a_moving_window_needs_its_length() {
    let e = traced(TraceOffset::Random, None).unwrap_err();
    assert!(e.contains("workload[0].rate.duration_s"), "{e}");
}
