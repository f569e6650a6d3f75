//! The real traces in ../shared/traces, checked against the facts their READMEs state.

use crate::shared;
use hale_datasets::lanl::Cause;
use hale_datasets::{Cache, CacheUse, Trace, format_minutes, load};

#[test]
fn nasa_july_1995_per_second() {
    let Some(path) = shared("nasa_http_1995_per_second/workload.txt") else {
        return;
    };
    let (format, trace) = load(&path, None).unwrap();
    assert_eq!(format.name(), "counts");
    let Trace::Counts(c) = &trace else { panic!() };
    // README: 1,814,400 values; 1,542,640 requests; max 20/s; 933,097 zero seconds.
    assert_eq!(c.counts.len(), 1_814_400);
    assert_eq!(
        c.counts.iter().map(|&v| u64::from(v)).sum::<u64>(),
        1_542_640
    );
    assert_eq!(c.counts.iter().max(), Some(&20));
    assert_eq!(c.counts.iter().filter(|&&v| v == 0).count(), 933_097);
    let s = trace.workload(&path, &[], None, None).unwrap().unwrap();
    assert!((s.mean() - 0.85).abs() < 0.005, "{}", s.mean());
    // Daily totals: 35k–134k requests, 21 days.
    let daily = s.resample(86_400.0);
    assert_eq!(daily.rps.len(), 21);
    for d in &daily.rps {
        let total = d * 86_400.0;
        assert!((35_000.0..=134_500.0).contains(&total), "{total}");
    }
    assert!((daily.total() - 1_542_640.0).abs() < 1e-3);
}

#[test]
fn azure_functions_2019_sample() {
    let Some(dir) = shared("azure_functions_2019_sample") else {
        return;
    };
    let path = dir.join("invocations.csv");
    let (_, trace) = load(&path, None).unwrap();
    let Trace::Invocations(t) = &trace else {
        panic!()
    };
    // README: 500 functions, minute columns 480–959, total 3,037,902, trigger counts.
    assert_eq!(t.functions.len(), 500);
    assert_eq!((t.first_minute, t.minutes), (480, 480));
    assert_eq!(t.total(), 3_037_902);
    for (trigger, n) in [
        ("timer", 247),
        ("http", 139),
        ("queue", 69),
        ("orchestration", 25),
        ("event", 14),
        ("storage", 5),
        ("others", 1),
    ] {
        let got = t.functions.iter().filter(|f| f.trigger == trigger).count();
        assert_eq!(got, n, "{trigger}");
    }
    let s = trace.workload(&path, &[], None, None).unwrap().unwrap();
    assert_eq!(
        (s.start_s, s.step_s, s.span_s()),
        (8.0 * 3600.0, 60.0, 8.0 * 3600.0)
    );
    assert!((s.total() - 3_037_902.0).abs() < 1e-6 * 3_037_902.0);
    let (_, d) = load(&dir.join("durations.csv"), None).unwrap();
    let Trace::Durations(d) = d else { panic!() };
    assert_eq!(d.ids.len(), 500);
    // Durations are keyed by HashFunction: every invoked function has one.
    for f in &t.functions {
        assert!(d.ids.iter().any(|i| i[2] == f.function), "{}", f.function);
    }
}

#[test]
fn bitbrains_rnd_2013_07() {
    let Some(dir) = shared("bitbrains_rnd_2013_07") else {
        return;
    };
    let (_, trace) = load(&dir, None).unwrap();
    let Trace::Bitbrains(b) = &trace else {
        panic!()
    };
    // README: 16 VMs, 30,668 rows: 15 × 2016 and VM 14 with 428.
    assert_eq!(b.vms.len(), 16);
    assert_eq!(b.rows(), 30_668);
    let utc = |ts: i64| format_minutes(ts.div_euclid(60));
    for vm in &b.vms {
        let (first, last) = (vm.timestamp_s[0], *vm.timestamp_s.last().unwrap());
        if vm.id == "14" {
            assert_eq!(vm.timestamp_s.len(), 428);
            assert_eq!(utc(first), "2013-07-29 10:22");
            assert_eq!(utc(last), "2013-07-30 21:57");
            assert!(vm.values.iter().all(|c| c[0] == 0.0), "first row all zeros");
        } else {
            assert_eq!(vm.timestamp_s.len(), 2016, "VM {}", vm.id);
            assert_eq!(utc(first), "2013-06-30 22:03", "VM {}", vm.id);
            let end = utc(last);
            // README: "about 22:04–22:14"; the files end from 21:59 (VMs 1, 2, 5, 6, 7,
            // 16) to 22:24 (VM 12), the later ones pushed by gaps.
            assert!(
                ("2013-07-07 21:59".."2013-07-07 22:25").contains(&end.as_str()),
                "{end}"
            );
        }
    }
    // Mean CPU usage: 0.0 % (VM 2) to 23.6 % (VM 9).
    let mean = |id: &str| {
        let v = b
            .vms
            .iter()
            .find(|v| v.id == id)
            .unwrap()
            .column("cpu_usage_pct")
            .unwrap();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean("2") < 0.05, "{}", mean("2"));
    assert!((mean("9") - 23.6).abs() < 0.05, "{}", mean("9"));
    for vm in &b.vms {
        assert!(mean(&vm.id) <= mean("9") + 1e-9);
    }
    // As a workload: a 300 s grid over the union of the spans.
    let s = trace
        .workload(&dir, &["1".into(), "9".into()], None, None)
        .unwrap()
        .unwrap();
    assert_eq!(s.step_s, 300.0);
    assert!((2016..=2020).contains(&s.rps.len()), "{}", s.rps.len());
}

#[test]
fn lanl_failures_1996_2005() {
    let Some(dir) = shared("lanl_failures_1996_2005") else {
        return;
    };
    let path = dir.join("LA-UR-05-7318-failure-data-1996-2005.csv");
    let (_, trace) = load(&path, None).unwrap();
    let Trace::Failures(log) = &trace else {
        panic!()
    };
    // README: 23,739 records on 23 systems; cause counts; Prob Started span.
    assert_eq!(log.failures.len(), 23_739);
    assert_eq!(log.systems().len(), 23);
    let counts: std::collections::HashMap<Cause, usize> = log.cause_counts().into_iter().collect();
    assert_eq!(counts[&Cause::Hardware], 14_341);
    assert_eq!(counts[&Cause::Software], 5_361);
    assert_eq!(counts[&Cause::Undetermined], 2_652);
    assert_eq!(counts[&Cause::Network], 421);
    assert_eq!(counts[&Cause::Facilities], 362);
    assert_eq!(counts[&Cause::HumanError], 149);
    // The README's counts sum to 23,286: the other 453 records name no cause.
    assert_eq!(counts[&Cause::Unrecorded], 453);
    let first = log.failures.iter().map(|f| f.started_min).min().unwrap();
    let last = log.failures.iter().map(|f| f.started_min).max().unwrap();
    assert_eq!(format_minutes(first), "1995-05-19 21:55");
    assert_eq!(format_minutes(last), "2005-09-09 12:28");
    // Systems 2, 18, 19, 16 and 20 hold most of the records.
    let big: usize = log
        .failures
        .iter()
        .filter(|f| [2, 16, 18, 19, 20].contains(&f.system))
        .count();
    assert!(big * 2 > log.failures.len(), "{big}");
}

#[test]
fn real_traces_round_trip_through_the_parquet_cache() {
    let Some(root) = shared("") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    for rel in [
        "nasa_http_1995_per_second/workload.txt",
        "azure_functions_2019_sample/invocations.csv",
        "azure_functions_2019_sample/durations.csv",
        "bitbrains_rnd_2013_07",
        "lanl_failures_1996_2005/LA-UR-05-7318-failure-data-1996-2005.csv",
    ] {
        let path = root.join(rel);
        let (_, parsed, used) = cache.load(&path, None).unwrap();
        assert_eq!(used, CacheUse::Stored, "{rel}");
        let (_, cached, used) = cache.load(&path, None).unwrap();
        assert_eq!(used, CacheUse::Hit, "{rel}");
        assert!(cached == parsed, "{rel}: the cached trace differs");
    }
}
