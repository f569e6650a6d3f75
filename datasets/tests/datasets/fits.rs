//! Failure models fitted to the LANL records, and the simulator sampling from them.

use crate::{fixture, shared};
use hale_datasets::fit::{FailureModel, FaultTargets, Scope};
use hale_datasets::lanl::Cause;
use hale_datasets::{Trace, load};
use hale_sim::{Fidelity, IntervalSpec, Scenario, SimTime, Simulation};
use std::sync::Arc;

fn lanl() -> Option<hale_datasets::lanl::FailureLog> {
    let path = shared("lanl_failures_1996_2005/LA-UR-05-7318-failure-data-1996-2005.csv")?;
    match load(&path, None).unwrap().1 {
        Trace::Failures(log) => Some(log),
        _ => unreachable!(),
    }
}

/// Mean and variance of an interval distribution.
fn moments(every: &IntervalSpec) -> (f64, f64) {
    match *every {
        IntervalSpec::Exponential { mean_s } => (mean_s, mean_s * mean_s),
        IntervalSpec::Weibull { shape, scale_s } => {
            let g1 = hale_datasets::fit::gamma(1.0 + 1.0 / shape);
            let g2 = hale_datasets::fit::gamma(1.0 + 2.0 / shape);
            (scale_s * g1, scale_s * scale_s * (g2 - g1 * g1))
        }
    }
}

#[test]
fn the_fixture_fits_per_cause_and_merges_simultaneous_starts() {
    let Trace::Failures(log) = load(&fixture("lanl.csv"), None).unwrap().1 else {
        panic!()
    };
    let m = FailureModel::fit(&log, Scope::System, &[]);
    let hw = m.cause(Cause::Hardware).unwrap();
    assert_eq!((hw.records, hw.events), (3, 3));
    // Gaps 1 day and 1 day 21 h 6 min, in seconds.
    let between = hw.between.as_ref().unwrap();
    assert_eq!(between.n, 2);
    assert!((between.sample_mean_s - (86_400.0 + 162_360.0) / 2.0).abs() < 1e-6);
    let sw = m.cause(Cause::Software).unwrap();
    assert_eq!(sw.records, 2);
    assert!(sw.between.is_none(), "one gap is too few to fit");
    assert!(
        m.cause(Cause::Undetermined).unwrap().between.is_none(),
        "one record: no gap"
    );
}

#[test]
fn lanl_fits_are_reported_per_cause() {
    let Some(log) = lanl() else { return };
    let m = FailureModel::fit(&log, Scope::System, &[]);
    eprintln!(
        "cause         events  TBF exp mean h  KS    | Weibull k  λ h     KS    | repair mean min  Weibull k"
    );
    for c in &m.causes {
        let (Some(b), Some(r)) = (&c.between, &c.repair) else {
            continue;
        };
        eprintln!(
            "{:<13} {:>6}  {:>14.2}  {:.3} | {:>9.3}  {:>7.2} {:.3} | {:>15.1}  {:.3}",
            c.cause.name(),
            c.events,
            b.exponential.mean_s / 3600.0,
            b.exponential.ks,
            b.weibull.shape,
            b.weibull.scale_s / 3600.0,
            b.weibull.ks,
            r.sample_mean_s / 60.0,
            r.weibull.shape
        );
        // Failures cluster (Schroeder & Gibson: Weibull shape < 1 for time between
        // failures), and the Weibull fits better than the exponential.
        if c.events > 300 {
            assert!(b.weibull.shape < 1.0, "{:?}: {}", c.cause, b.weibull.shape);
            assert!(b.weibull.ks < b.exponential.ks, "{:?}", c.cause);
            assert!(b.weibull.log_likelihood > b.exponential.log_likelihood);
        }
    }
    let hw = m.cause(Cause::Hardware).unwrap();
    assert_eq!(hw.records, 14_341);
    // Per-node scope: far longer gaps than per system.
    let per_node = FailureModel::fit(&log, Scope::Node, &[]);
    let node_hw = per_node
        .cause(Cause::Hardware)
        .unwrap()
        .between
        .as_ref()
        .unwrap();
    assert!(node_hw.sample_mean_s > 10.0 * hw.between.as_ref().unwrap().sample_mean_s);
}

#[test]
fn the_simulator_samples_the_fitted_time_between_failures() {
    let Some(log) = lanl() else { return };
    let m = FailureModel::fit(&log, Scope::System, &[20]);
    let fitted = m.cause(Cause::Software).unwrap().between.as_ref().unwrap();
    // Replay the software process 1:N so that its mean is 20 simulated seconds.
    let scale = 20.0 / moments(&fitted.best(1.0)).0;
    let processes = m.fault_processes(&FaultTargets {
        service: "api".into(),
        zone: None,
        time_scale: scale,
    });
    let crash = processes
        .iter()
        .find(|p| p.fault.kind_name() == "crash" && p.every == fitted.best(scale))
        .expect("software → crash")
        .clone();
    let (mean, var) = moments(&crash.every);
    assert!((mean - 20.0).abs() < 1e-6, "{mean}");
    let mut spec = Scenario::builtin("three-tier").unwrap().spec;
    spec.fidelity = Fidelity::Fluid;
    spec.faults.schedule.clear();
    spec.faults.mtbf = vec![crash];
    let sc = Arc::new(Scenario::from_spec(spec, "three-tier + LANL software").unwrap());
    let horizon = 40_000.0;
    let mut sim = Simulation::new(sc, 3);
    sim.run_until(SimTime::from_secs_f64(horizon));
    let n = sim.faults().len() as f64 + sim.faults_missed() as f64;
    // A renewal process: N(T) ≈ T/μ with variance ≈ T σ²/μ³.
    let expected = horizon / mean;
    let sd = (horizon * var / mean.powi(3)).sqrt();
    eprintln!(
        "faults {n}, expected {expected:.0} ± {sd:.0} (shape of the fit: {:?})",
        fitted.best(1.0)
    );
    assert!((n - expected).abs() < 4.0 * sd, "{n} vs {expected} ± {sd}");
}
