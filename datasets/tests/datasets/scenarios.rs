//! Scenarios that name traces: transforms, errors, and the simulator's arrivals.

use crate::{fixture, shared};
use hale_datasets::{Cache, load_scenario, resolve_trace};
use hale_sim::{RateSpec, Scenario, SimTime, Simulation, TraceSpec};
use std::path::Path;
use std::sync::Arc;

const THREE_TIER: &str = include_str!("../../../sim/scenarios/three-tier.toml");
const RATE_LINE: &str =
    r#"rate = { kind = "diurnal", mean_rps = 600, amplitude = 0.6, period_s = 3600 }"#;

/// three-tier with its workload's rate replaced by `rate`, written into `dir`.
fn scenario_with(dir: &Path, rate: &str) -> String {
    assert!(THREE_TIER.contains(RATE_LINE));
    let path = dir.join("scenario.toml");
    std::fs::write(
        &path,
        THREE_TIER.replacen(RATE_LINE, &format!("rate = {rate}"), 1),
    )
    .unwrap();
    path.display().to_string()
}

fn spec(toml_inline: &str) -> TraceSpec {
    toml::from_str(toml_inline).unwrap()
}

#[test]
fn transforms_apply_in_order_with_the_train_part_scaling_every_part() {
    let dir = fixture("");
    let cache = Cache::off();
    let base = "path = \"series.csv\"\n"; // 1, 2, 4, 8 per minute
    let s = resolve_trace(&spec(base), &dir, &cache).unwrap();
    assert_eq!(s.rps, vec![1.0, 2.0, 4.0, 8.0]);
    let s = resolve_trace(&spec(&format!("{base}step_s = 120.0")), &dir, &cache).unwrap();
    assert_eq!(s.rps, vec![1.5, 6.0]);
    // Split 50/25/25: train [1, 2], validation [4], test [8]. peak_rps scales by the
    // train part's peak (2), so the test part is 8 × 10/2.
    let t = format!("{base}split = \"test\"\nsplit_fractions = [0.5, 0.25, 0.25]\npeak_rps = 10.0");
    let s = resolve_trace(&spec(&t), &dir, &cache).unwrap();
    assert_eq!((s.start_s, s.rps.clone()), (180.0, vec![40.0]));
    let t = format!("{base}start_s = 60.0\nduration_s = 120.0\nmean_rps = 1.5");
    let s = resolve_trace(&spec(&t), &dir, &cache).unwrap();
    // Window [2, 4]; factor from the whole series' mean 3.75.
    assert_eq!(s.rps, vec![2.0 * 1.5 / 3.75, 4.0 * 1.5 / 3.75]);
}

#[test]
fn bad_trace_options_name_the_field() {
    let dir = fixture("");
    let cache = Cache::off();
    for (extra, field) in [
        ("split = \"holdout\"", "split"),
        ("split_fractions = [0.5, 0.5, 0.5]", "split_fractions"),
        ("peak_rps = 1.0\nmean_rps = 1.0", "peak_rps"),
        ("step_s = -1.0", "step_s"),
        ("start_s = 1e9", "start_s"),
        ("select = [\"abc\"]", "select"),
        ("column = \"cpu\"", "column"),
        ("format = \"excel\"", "format"),
    ] {
        let t = spec(&format!("path = \"series.csv\"\n{extra}"));
        let e = resolve_trace(&t, &dir, &cache).unwrap_err().to_string();
        assert!(
            e.contains("series.csv") && e.contains(&format!(": {field}: ")),
            "{extra}: {e}"
        );
    }
    let e = resolve_trace(&spec("path = \"lanl.csv\""), &dir, &cache)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a workload"), "{e}");
    let e = resolve_trace(
        &spec("path = \"azure_invocations.csv\"\ntrigger = \"cron\""),
        &dir,
        &cache,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("trigger") && e.contains("http, timer"), "{e}");
}

#[test]
fn a_scenario_reads_its_trace_relative_to_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("series.csv"), dir.path().join("load.csv")).unwrap();
    let path = scenario_with(
        dir.path(),
        r#"{ kind = "trace", path = "load.csv", peak_rps = 800.0 }"#,
    );
    let sc = load_scenario(&path).unwrap();
    let (step, rps, repeat) = sc.spec.workload[0].rate.as_series().unwrap();
    assert_eq!(
        (step, rps, repeat),
        (60.0, &[100.0, 200.0, 400.0, 800.0][..], true)
    );
    // The spec keeps what was written, not the series.
    let written = toml::to_string(&sc.spec).unwrap();
    assert!(
        written.contains("load.csv") && !written.contains("resolved"),
        "{written}"
    );
    // Without hale-datasets the simulator refuses the trace, and says why.
    let e = Scenario::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("workload[0].rate") && e.contains("hale_datasets::load_scenario"),
        "{e}"
    );
    // A missing trace names the scenario, the field and the trace file.
    let path = scenario_with(dir.path(), r#"{ kind = "trace", path = "nope.csv" }"#);
    let e = load_scenario(&path).unwrap_err().to_string();
    assert!(
        e.contains("scenario.toml") && e.contains("workload[0].rate") && e.contains("nope.csv"),
        "{e}"
    );
    // Unknown fields in a trace rate are refused by name.
    let path = scenario_with(
        dir.path(),
        r#"{ kind = "trace", path = "load.csv", peek_rps = 1.0 }"#,
    );
    let e = load_scenario(&path).unwrap_err().to_string();
    assert!(e.contains("peek_rps"), "{e}");
}

#[test]
fn the_simulator_draws_the_traces_arrivals() {
    let Some(nasa) = shared("nasa_http_1995_per_second/workload.txt") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rate = format!(
        r#"{{ kind = "trace", path = "{}", step_s = 60.0, split = "test", peak_rps = 400.0 }}"#,
        nasa.display()
    );
    let path = scenario_with(dir.path(), &rate);
    let mut sc = load_scenario(&path).unwrap();
    sc.spec.fidelity = hale_sim::Fidelity::Request;
    let (step, rps, _) = sc.spec.workload[0].rate.as_series().unwrap();
    assert_eq!(step, 60.0);
    // The test part: the last 15 % of 21 days, per minute.
    assert_eq!(rps.len(), 30_240 - 25_704);
    let horizon = 3600.0;
    let expected: f64 = rps[..60].iter().sum::<f64>() * 60.0;
    let sc = Arc::new(Scenario::from_spec(sc.spec.clone(), "nasa").unwrap());
    let mut sim = Simulation::new(sc, 1);
    sim.run_until(SimTime::from_secs_f64(horizon));
    let arrived = sim.requests().arrived;
    assert!(
        (arrived - expected).abs() < 5.0 * expected.sqrt(),
        "{arrived} arrivals, expected {expected:.0}"
    );
    assert!(matches!(
        sim.scenario().spec.workload[0].rate,
        RateSpec::Trace(_)
    ));
}

/// A window that moves from run to run: the scenario keeps the whole part, each run
/// takes its window from its seed, and a window longer than the part is refused.
#[test]
fn a_moving_window_keeps_the_whole_part_and_each_run_takes_its_own() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("series.csv"), dir.path().join("load.csv")).unwrap();
    let path = scenario_with(
        dir.path(),
        r#"{ kind = "trace", path = "load.csv", duration_s = 120.0, offset = "random" }"#,
    );
    let sc = Arc::new(load_scenario(&path).unwrap());
    let (_, rps, _) = sc.spec.workload[0].rate.as_series().unwrap();
    assert_eq!(rps, &[1.0, 2.0, 4.0, 8.0][..], "the whole series");
    let offsets: std::collections::BTreeSet<u64> = (0..30)
        .map(|seed| Simulation::new(sc.clone(), seed).window_offsets_s()[0].unwrap() as u64)
        .collect();
    // A window of two 60 s steps in a series of four: offsets 0, 60 or 120 s.
    assert_eq!(offsets.into_iter().collect::<Vec<_>>(), vec![0, 60, 120]);

    let path = scenario_with(
        dir.path(),
        r#"{ kind = "trace", path = "load.csv", duration_s = 600.0, offset = "tiled" }"#,
    );
    let e = load_scenario(&path).unwrap_err().to_string();
    assert!(e.contains("load.csv") && e.contains("duration_s"), "{e}");
}
