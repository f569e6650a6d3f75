//! Trace loading speed: the real traces in ../shared/traces, parsed from their original
//! formats and read back from the parquet cache, and resampling.
//!
//! `cargo bench -p hale-benches --bench datasets`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hale_datasets::{Cache, Trace, load};
use std::hint::black_box;
use std::path::PathBuf;

fn traces() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

fn loading(c: &mut Criterion) {
    let Some(root) = traces() else { return };
    let cache_dir = std::env::temp_dir().join(format!("hale-bench-cache-{}", std::process::id()));
    let cache = Cache::at(&cache_dir);
    let mut g = c.benchmark_group("load");
    g.sample_size(20);
    for (name, rel, rows) in [
        (
            "nasa-21d",
            "nasa_http_1995_per_second/workload.txt",
            1_814_400u64,
        ),
        (
            "azure-invocations",
            "azure_functions_2019_sample/invocations.csv",
            240_000,
        ),
        ("bitbrains-16vm", "bitbrains_rnd_2013_07", 30_668),
        (
            "lanl",
            "lanl_failures_1996_2005/LA-UR-05-7318-failure-data-1996-2005.csv",
            23_739,
        ),
    ] {
        let path = root.join(rel);
        g.throughput(Throughput::Elements(rows));
        g.bench_function(format!("{name}/parse"), |b| {
            b.iter(|| black_box(load(&path, None).unwrap()))
        });
        cache.load(&path, None).unwrap(); // fill
        g.bench_function(format!("{name}/cached"), |b| {
            b.iter(|| black_box(cache.load(&path, None).unwrap()))
        });
    }
    g.finish();
    let (_, nasa) = load(&root.join("nasa_http_1995_per_second/workload.txt"), None).unwrap();
    let Trace::Counts(counts) = nasa else {
        unreachable!()
    };
    let series = counts.series();
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(series.rps.len() as u64));
    g.bench_function("nasa-resample-1s-to-60s", |b| {
        b.iter(|| black_box(series.resample(60.0)))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(cache_dir);
}

criterion_group!(benches, loading);
criterion_main!(benches);
