//! Times GNN training steps (the `gnn` criterion bench's workload) and prints one JSON
//! line, for `benches/scripts/gnn_torch.py`.
//!
//! `cargo run --release -p hale-benches --example gnn_step -- [ITERATIONS] [GRAPHS] [NODES] [fused|burn]`
//!
//! `fused` (the default) times the fused CPU step that `hale train` uses for the GNN;
//! `burn` times burn's autodiff.

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
    let path = std::env::args().nth(4).unwrap_or_else(|| "fused".into());
    let mut step = match path.as_str() {
        "fused" => GnnStep::fused(graphs, nodes, 32),
        "burn" => GnnStep::new(graphs, nodes, 32, Device::flex().autodiff()),
        other => {
            eprintln!("gnn_step: PATH is `fused` or `burn`, not `{other}`");
            std::process::exit(2);
        }
    };
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
        "{{\"tool\":\"hale\",\"path\":\"{path}\",\"ms_per_step\":{ms:.3},\"iterations\":{iterations},\"threads\":{},\"last_loss\":{loss}}}",
        rayon::current_num_threads()
    );
}
