//! Times GNN training steps (the `gnn` criterion bench's workload) and prints one JSON
//! line, for `benches/scripts/gnn_torch.py`.
//!
//! `cargo run --release -p hale-benches --example gnn_step -- [ITERATIONS]`

use burn::prelude::Device;
use hale_benches::GnnStep;

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ITERATIONS is a number"))
        .unwrap_or(50);
    let graphs: usize = std::env::args()
        .nth(2)
        .map_or(64, |a| a.parse().expect("GRAPHS"));
    let nodes: usize = std::env::args()
        .nth(3)
        .map_or(50, |a| a.parse().expect("NODES"));
    let mut step = GnnStep::new(graphs, nodes, 32, Device::flex().autodiff());
    for _ in 0..5 {
        step.step();
    }
    let start = std::time::Instant::now();
    let mut loss = 0.0;
    for _ in 0..iterations {
        loss = step.step();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / iterations as f64;
    println!(
        "{{\"tool\":\"hale\",\"ms_per_step\":{ms:.3},\"iterations\":{iterations},\"threads\":{},\"last_loss\":{loss}}}",
        rayon::current_num_threads()
    );
}
