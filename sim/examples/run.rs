//! Runs a scenario (builtin name or TOML file) with no policy and prints a summary
//! per scrape window: what the monitoring system saw, cost and SLO time.
//!
//! `cargo run --release -p hale-sim --example run -- microservices-20 --seconds 600`

use clap::Parser;
use hale_sim::{Scenario, SimTime, Simulation};
use std::sync::Arc;

/// Run a scenario without a policy and print what monitoring saw.
#[derive(Parser)]
struct Args {
    /// Builtin scenario name (three-tier, microservices-20) or path to a TOML file.
    scenario: String,
    /// Simulated seconds (default: the scenario's duration).
    #[arg(long)]
    seconds: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one line per this many seconds.
    #[arg(long, default_value_t = 60.0)]
    every: f64,
}

fn main() {
    let a = Args::parse();
    let sc = match Scenario::load(&a.scenario) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let secs = a.seconds.unwrap_or(sc.spec.simulation.duration_s);
    let mut sim = Simulation::new(sc.clone(), a.seed);
    let mut t = 0.0;
    while t < secs {
        t = (t + a.every).min(secs);
        sim.run_until(SimTime::from_secs_f64(t));
        let Some(snap) = sim.observe() else { continue };
        let worst = snap
            .services
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.p99_ms.total_cmp(&b.1.p99_ms))
            .map(|(i, m)| format!("{} p99 {:.1} ms", sc.spec.services[i].name, m.p99_ms))
            .unwrap_or_default();
        let k = sim.requests();
        println!(
            "t={t:>6.0}s arrived {:>9.0} completed {:>9.0} failed {:>6.0} timed out {:>6.0} mean {:>6.2} ms | slowest {worst} | cost {:.3} | faults {}",
            k.arrived,
            k.completed,
            k.failed,
            k.timed_out,
            k.mean_latency_s() * 1e3,
            sim.cost(),
            sim.faults().len()
        );
    }
    println!("SLO violation seconds: {:?}", sim.slo_violation_s());
}
