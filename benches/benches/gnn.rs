//! GNN training speed: forward + backward + Adam step of two GraphSAGE layers over 64
//! graphs × 50 nodes × 32 features (`benches/scripts/gnn_torch.py` runs the same in
//! PyTorch beside it): with burn's autodiff and with the fused CPU step.
//!
//! `cargo bench -p hale-benches --bench gnn`

use burn::prelude::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use hale_benches::GnnStep;
use std::hint::black_box;

fn gnn(c: &mut Criterion) {
    let mut g = c.benchmark_group("gnn");
    let mut step = GnnStep::new(64, 50, 32, Device::flex().autodiff());
    g.bench_function("sage2_64x50x32_fwd_bwd_adam", |b| {
        b.iter(|| black_box(step.step()))
    });
    let mut fused = GnnStep::fused(64, 50, 32);
    g.bench_function("sage2_64x50x32_fused", |b| {
        b.iter(|| black_box(fused.step()))
    });
    g.finish();
}

criterion_group!(benches, gnn);
criterion_main!(benches);
