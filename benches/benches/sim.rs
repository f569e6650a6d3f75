//! Simulator speed: raw M/M/c events, request-level microservices-20, fluid fleet.
//!
//! `cargo bench -p hale-benches --bench sim`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hale_sim::{Scenario, SimTime, Simulation};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn mmc(c: &mut Criterion) {
    // M/M/8 at rho = 0.9: 100 000 customers, two events each.
    let sc = Arc::new(Scenario::mmc(8, 7.2, 1.0, 100_000).unwrap());
    let mut g = c.benchmark_group("mmc");
    g.throughput(Throughput::Elements(200_000));
    g.bench_function("c8_rho0.9_events", |b| {
        b.iter(|| {
            let mut sim = Simulation::new(sc.clone(), 1);
            sim.run_until_drained(SimTime::MAX);
            black_box(sim.events_processed())
        })
    });
    g.finish();
}

fn microservices(c: &mut Criterion) {
    // 20 s of microservices-20 at request level (~1 000 external requests/s, each
    // about 7 calls deep and wide).
    let sc = Arc::new(Scenario::builtin("microservices-20").unwrap());
    let mut probe = Simulation::new(sc.clone(), 1);
    probe.run_until(SimTime::from_secs(20));
    let requests = probe.requests().arrived as u64;
    let mut g = c.benchmark_group("microservices-20");
    g.throughput(Throughput::Elements(requests));
    g.bench_function("request_level_20s_requests", |b| {
        b.iter(|| {
            let mut sim = Simulation::new(sc.clone(), 1);
            sim.run_until(SimTime::from_secs(20));
            black_box(sim.requests())
        })
    });
    g.finish();
}

fn fluid(c: &mut Criterion) {
    let spec = hale_benches::fluid_fleet(10_000, 100, 1_000);
    let sc = Arc::new(Scenario::from_spec(spec, "fluid-fleet").unwrap());
    let mut g = c.benchmark_group("fluid");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("fleet_10k_hosts_100k_replicas_1h", |b| {
        b.iter(|| {
            let mut sim = Simulation::new(sc.clone(), 1);
            sim.run_until(SimTime::from_secs(3600));
            black_box(sim.requests())
        })
    });
    g.finish();
}

criterion_group!(benches, mmc, microservices, fluid);
criterion_main!(benches);
