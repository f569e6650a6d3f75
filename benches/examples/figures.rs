//! Prints the simulator's headline figures as JSON lines, one per measurement
//! (a quick stand-in for `cargo bench` when only the numbers are wanted).
//!
//! `cargo run --release -p hale-benches --example figures`

use hale_sim::{Scenario, SimTime, Simulation};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let sc = Arc::new(Scenario::builtin("microservices-20").unwrap());
    let start = Instant::now();
    let mut sim = Simulation::new(sc, 1);
    sim.run_until(SimTime::from_secs(120));
    let wall = start.elapsed().as_secs_f64();
    let calls: f64 = (0..sim.services().len())
        .map(|s| sim.service_totals(s).arrivals)
        .sum();
    println!(
        "{{\"bench\":\"microservices-20 request level, 120 s\",\"requests\":{},\"calls\":{},\"events\":{},\"wall_s\":{wall:.3},\"requests_per_s\":{:.0},\"calls_per_s\":{:.0},\"events_per_s\":{:.0}}}",
        sim.requests().arrived,
        calls,
        sim.events_processed(),
        sim.requests().arrived / wall,
        calls / wall,
        sim.events_processed() as f64 / wall
    );

    let spec = hale_benches::fluid_fleet(10_000, 100, 1_000);
    let start = Instant::now();
    let sc = Arc::new(Scenario::from_spec(spec, "fluid-fleet").unwrap());
    let mut sim = Simulation::new(sc, 1);
    let setup = start.elapsed().as_secs_f64();
    sim.run_until(SimTime::from_secs(3600));
    let wall = start.elapsed().as_secs_f64();
    let live = sim
        .services()
        .iter()
        .map(|s| s.replicas.len())
        .sum::<usize>();
    println!(
        "{{\"bench\":\"fluid fleet, 1 simulated hour\",\"hosts\":{},\"replicas\":{live},\"setup_s\":{setup:.3},\"wall_s\":{wall:.3},\"faults\":{},\"requests\":{:.0}}}",
        sim.hosts().len(),
        sim.faults().len(),
        sim.requests().arrived
    );
}
