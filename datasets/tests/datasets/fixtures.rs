//! Every loader and transform on small fixtures written for these tests (same formats
//! as the real traces), so the code paths run even without ../shared.

use crate::fixture;
use hale_datasets::{Cache, CacheUse, Format, RateSeries, Trace, load};

#[test]
fn formats_are_detected_from_content() {
    for (file, want) in [
        ("azure_invocations.csv", Format::AzureInvocations),
        ("azure_durations.csv", Format::AzureDurations),
        ("counts.txt", Format::Counts),
        ("bitbrains", Format::Bitbrains),
        ("bitbrains/1.csv", Format::Bitbrains),
        ("lanl.csv", Format::Lanl),
        ("series.csv", Format::SeriesCsv),
        ("synthetic.toml", Format::Synthetic),
    ] {
        assert_eq!(Format::detect(&fixture(file)).unwrap(), want, "{file}");
    }
}

#[test]
fn azure_invocations_aggregate_by_selection_and_trigger() {
    let path = fixture("azure_invocations.csv");
    let (_, trace) = load(&path, None).unwrap();
    let Trace::Invocations(t) = &trace else {
        panic!()
    };
    assert_eq!((t.functions.len(), t.first_minute, t.minutes), (3, 480, 5));
    assert_eq!(t.total(), 10 + 300 + 126);
    // All functions: per-minute sums / 60, starting at 08:00.
    let all = trace.workload(&path, &[], None, None).unwrap().unwrap();
    assert_eq!(all.start_s, 480.0 * 60.0);
    assert_eq!(
        all.rps,
        vec![61.0 / 60.0, 62.0 / 60.0, 183.0 / 60.0, 1.0, 70.0 / 60.0]
    );
    let http = trace
        .workload(&path, &[], Some("http"), None)
        .unwrap()
        .unwrap();
    assert!((http.total() - 136.0).abs() < 1e-9);
    let one = trace
        .workload(&path, &["c3c3c3c3".into()], None, None)
        .unwrap()
        .unwrap();
    assert_eq!(one.total(), 126.0);
}

#[test]
fn azure_durations_have_their_columns() {
    let (_, trace) = load(&fixture("azure_durations.csv"), None).unwrap();
    let Trace::Durations(d) = trace else { panic!() };
    assert_eq!(d.ids.len(), 2);
    assert_eq!(d.column("p99_ms").unwrap(), &[27.0, 240.0]);
    assert_eq!(d.column("count").unwrap(), &[137430.0, 300.0]);
}

#[test]
fn counts_are_requests_per_second() {
    let path = fixture("counts.txt");
    let (_, trace) = load(&path, None).unwrap();
    let s = trace.workload(&path, &[], None, None).unwrap().unwrap();
    assert_eq!(s.rps.len(), 180);
    assert_eq!(s.total(), (0..180).map(|i| (i % 5) as f64).sum::<f64>());
    let per_minute = s.resample(60.0);
    assert_eq!(per_minute.rps, vec![2.0; 3]);
}

#[test]
fn bitbrains_directory_sums_vms_on_a_grid_and_holds_gaps() {
    let path = fixture("bitbrains");
    let (_, trace) = load(&path, None).unwrap();
    let Trace::Bitbrains(b) = &trace else {
        panic!()
    };
    assert_eq!(
        b.vms.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(b.rows(), 6);
    let s = trace.workload(&path, &[], None, None).unwrap().unwrap();
    // VM 1: 100, 200, (gap: holds 200), 400; VM 2 from the second step: 50, 50, 50.
    assert_eq!(s.start_s, 1372629804.0);
    assert_eq!(s.rps, vec![100.0, 250.0, 250.0, 450.0]);
    let one = trace
        .workload(&path, &["2".into()], None, None)
        .unwrap()
        .unwrap();
    assert_eq!(
        (one.start_s, one.rps.clone()),
        (1372630104.0, vec![50.0; 3])
    );
    let pct = trace
        .workload(&path, &["2".into()], None, Some("cpu_usage_pct"))
        .unwrap()
        .unwrap();
    assert!((pct.rps[1] - 50.0 / 5851.9989 * 100.0).abs() < 1e-9);
}

#[test]
fn lanl_records_keep_quoted_causes_and_local_times() {
    let (_, trace) = load(&fixture("lanl.csv"), None).unwrap();
    let Trace::Failures(log) = trace else {
        panic!()
    };
    assert_eq!(log.failures.len(), 6);
    let f = &log.failures[4];
    assert_eq!(f.subcause, "MPI, PVM, Array services");
    assert_eq!(f.cause, hale_datasets::lanl::Cause::Software);
    assert_eq!(
        hale_datasets::format_minutes(f.started_min),
        "2005-09-06 10:32"
    );
    assert_eq!(f.fixed_min - f.started_min, 14);
    assert_eq!(f.downtime_min, 14.0);
}

#[test]
fn series_and_synthetic_load_as_series() {
    let (_, t) = load(&fixture("series.csv"), None).unwrap();
    assert_eq!(
        t,
        Trace::Series(RateSeries {
            start_s: 0.0,
            step_s: 60.0,
            rps: vec![1.0, 2.0, 4.0, 8.0]
        })
    );
    let (_, t) = load(&fixture("synthetic.toml"), None).unwrap();
    let Trace::Series(s) = t else { panic!() };
    assert_eq!(s.rps.len(), 7 * 1440);
    assert!(
        s.mean() > 150.0 && s.peak() > 2.0 * s.mean(),
        "{:?}",
        s.stats()
    );
}

#[test]
fn converted_series_load_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (_, t) = load(&fixture("azure_invocations.csv"), None).unwrap();
    let s = t
        .workload(&fixture("azure_invocations.csv"), &[], None, None)
        .unwrap()
        .unwrap();
    for name in ["s.csv", "s.parquet"] {
        let out = dir.path().join(name);
        hale_datasets::write_series(&out, &s).unwrap();
        let (_, back) = load(&out, None).unwrap();
        assert_eq!(back, Trace::Series(s.clone()), "{name}");
    }
}

#[test]
fn the_cache_stores_once_and_returns_the_same_trace() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    for file in [
        "azure_invocations.csv",
        "azure_durations.csv",
        "counts.txt",
        "bitbrains",
        "lanl.csv",
        "series.csv",
    ] {
        let path = fixture(file);
        let (_, direct) = load(&path, None).unwrap();
        let (_, first, used) = cache.load(&path, None).unwrap();
        assert_eq!(used, CacheUse::Stored, "{file}");
        let (_, second, used) = cache.load(&path, None).unwrap();
        assert_eq!(used, CacheUse::Hit, "{file}");
        assert_eq!(first, direct, "{file}");
        assert_eq!(second, direct, "{file}");
    }
    // A corrupt entry is parsed again and replaced.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(e.unwrap().path(), b"PAR1 not really").unwrap();
    }
    let (_, again, used) = cache.load(&fixture("lanl.csv"), None).unwrap();
    assert_eq!(used, CacheUse::Stored);
    assert_eq!(again, load(&fixture("lanl.csv"), None).unwrap().1);
}
