//! An M/M/c queue on hale's engine, for comparison with queueing theory and with other
//! simulators (benches/scripts/simpy_mmc.py runs the same model in SimPy).
//!
//! `cargo run --release -p hale-sim --example mmc -- --servers 8 --lam 7.2 --mu 1 --customers 1000000 --seed 1`
//! prints one JSON line.

use clap::Parser;
use hale_sim::{Scenario, SimTime, Simulation, erlang_c};
use std::sync::Arc;
use std::time::Instant;

/// Simulate an M/M/c queue and print one JSON line of results.
#[derive(Parser)]
struct Args {
    /// Servers (c).
    #[arg(long, default_value_t = 8)]
    servers: u32,
    /// Arrival rate per second (lambda).
    #[arg(long, default_value_t = 7.2)]
    lam: f64,
    /// Service rate per server per second (mu).
    #[arg(long, default_value_t = 1.0)]
    mu: f64,
    /// Customers (arrivals) in all.
    #[arg(long, default_value_t = 1_000_000)]
    customers: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of the run dropped as warm-up before measuring waits.
    #[arg(long, default_value_t = 0.01)]
    warmup: f64,
}

fn main() {
    let a = Args::parse();
    let scenario = match Scenario::mmc(a.servers, a.lam, a.mu, a.customers) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let mut sim = Simulation::new(scenario, a.seed);
    let horizon = a.customers as f64 / a.lam;
    sim.run_until(SimTime::from_secs_f64(a.warmup * horizon));
    sim.reset_service_totals();
    sim.run_until_drained(SimTime::MAX);
    let wall_s = start.elapsed().as_secs_f64();
    let t = sim.service_totals(0);
    let load = a.lam / a.mu;
    let p_wait_theory = erlang_c(a.servers, load);
    let wq_theory = p_wait_theory / (a.servers as f64 * a.mu - a.lam);
    let events = sim.events_processed();
    println!(
        "{{\"servers\":{},\"lam\":{},\"mu\":{},\"customers\":{},\"seed\":{},\"events\":{},\"wall_s\":{:.6},\"events_per_s\":{:.0},\"mean_wait\":{:.6},\"p_wait\":{:.6},\"erlang_c_p_wait\":{:.6},\"erlang_c_wq\":{:.6}}}",
        a.servers,
        a.lam,
        a.mu,
        a.customers,
        a.seed,
        events,
        wall_s,
        events as f64 / wall_s,
        t.wait_s / t.started,
        t.waited / t.arrivals,
        p_wait_theory,
        wq_theory,
    );
}
