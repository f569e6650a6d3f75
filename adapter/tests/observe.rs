//! The Prometheus observation source against a stand-in Prometheus on loopback:
//! whole observations encode as the env does; missing, stale and failing data are
//! reported by service and feature, never read as zero.

use hale_adapter::observe::{ObservationConfig, PrometheusSource, Queries, Replicas};
use hale_envs::encoding::{ScalingObservation, ServiceReading};
use std::net::TcpListener;

mod common;
use common::{Answers, sample, stand_in};

fn queries() -> Queries {
    Queries {
        request_rate: "rate($service)".into(),
        p50_ms: "p50($service)".into(),
        p95_ms: "p95($service)".into(),
        p99_ms: "p99($service)".into(),
        error_rate: "errors($service)".into(),
        cpu_utilization: "cpu($service)".into(),
    }
}

fn encoding() -> ScalingObservation {
    ScalingObservation {
        services: vec!["web".into(), "db".into()],
        latency_refs_ms: vec![200.0, 50.0],
        max_replicas: 10.0,
    }
}

const NOW: f64 = 1_800_000_000.0;

fn fill(answers: &Answers, service: &str, values: [f64; 6]) {
    let names = ["rate", "p50", "p95", "p99", "errors", "cpu"];
    let mut a = answers.lock().unwrap();
    for (n, v) in names.iter().zip(values) {
        a.insert(format!("{n}({service})"), sample(v, NOW - 5.0));
    }
}

#[test]
fn a_whole_observation_is_the_envs_encoding() {
    let (url, answers) = stand_in();
    fill(&answers, "web", [120.0, 40.0, 150.0, 400.0, 0.01, 0.55]);
    fill(&answers, "db", [30.0, 5.0, 20.0, 80.0, 0.0, 0.2]);
    let source = PrometheusSource::new(ObservationConfig {
        prometheus: url,
        timeout_s: 2.0,
        max_age_s: 30.0,
        queries: queries(),
        replica_queries: None,
    })
    .unwrap();
    let replicas = [
        Some(Replicas {
            ready: 3,
            booting: 1,
            desired: 4,
        }),
        Some(Replicas {
            ready: 2,
            booting: 0,
            desired: 2,
        }),
    ];
    let services = ["web".to_string(), "db".to_string()];
    let obs = source.observe(&encoding(), &services, &replicas, NOW);
    assert!(obs.missing.is_empty(), "{:?}", obs.missing);
    let expect = encoding()
        .encode(&[
            ServiceReading {
                request_rate: 120.0,
                p50_ms: 40.0,
                p95_ms: 150.0,
                p99_ms: 400.0,
                error_rate: 0.01,
                cpu_utilization: 0.55,
                ready: 3,
                booting: 1,
                desired: 4,
            },
            ServiceReading {
                request_rate: 30.0,
                p50_ms: 5.0,
                p95_ms: 20.0,
                p99_ms: 80.0,
                error_rate: 0.0,
                cpu_utilization: 0.2,
                ready: 2,
                booting: 0,
                desired: 2,
            },
        ])
        .unwrap();
    assert_eq!(obs.features, expect);
    assert_eq!(obs.oldest_sample_s, 5.0);
}

#[test]
fn missing_stale_and_failing_data_is_named_not_zeroed() {
    let (url, answers) = stand_in();
    fill(&answers, "web", [120.0, 40.0, 150.0, 400.0, 0.01, 0.55]);
    fill(&answers, "db", [30.0, 5.0, 20.0, 80.0, 0.0, 0.2]);
    {
        let mut a = answers.lock().unwrap();
        a.remove("p99(db)");
        a.insert("cpu(web)".into(), sample(0.5, NOW - 600.0));
        a.insert("errors(db)".into(), (500, "oops".into()));
    }
    let config = ObservationConfig {
        prometheus: url,
        timeout_s: 2.0,
        max_age_s: 30.0,
        queries: queries(),
        replica_queries: None,
    };
    let source = PrometheusSource::new(config.clone()).unwrap();
    let services = ["web".to_string(), "db".to_string()];
    let one = Some(Replicas::default());
    let obs = source.observe(&encoding(), &services, &[one, None], NOW);
    let said: Vec<(String, String, String)> = obs
        .missing
        .iter()
        .map(|m| (m.service.clone(), m.feature.clone(), m.reason.clone()))
        .collect();
    let has = |svc: &str, feat: &str, why: &str| {
        said.iter()
            .any(|(s, f, r)| s == svc && f == feat && r.contains(why))
    };
    assert!(has("web", "cpu_utilization", "stale"), "{said:?}");
    assert!(has("db", "p99_ms", "no sample"), "{said:?}");
    assert!(has("db", "error_rate", "HTTP 500"), "{said:?}");
    assert!(has("db", "replicas", "did not report"), "{said:?}");
    assert_eq!(said.len(), 4, "{said:?}");

    // Prometheus down: every feature of every service is reported unreachable.
    let down = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", down.local_addr().unwrap());
    drop(down);
    let source = PrometheusSource::new(ObservationConfig {
        prometheus: dead,
        ..config
    })
    .unwrap();
    let obs = source.observe(&encoding(), &services, &[one, one], NOW);
    assert_eq!(obs.missing.len(), 12);
    assert!(obs.missing.iter().all(|m| m.reason.contains("unreachable")));
    assert!(
        PrometheusSource::new(ObservationConfig {
            prometheus: "localhost:9090".into(),
            timeout_s: 1.0,
            max_age_s: 1.0,
            queries: queries(),
            replica_queries: None,
        })
        .is_err()
    );
}

/// A Prometheus that accepts and never answers: each query fails after `timeout_s`,
/// named, instead of hanging the adapter.
#[test]
fn a_silent_prometheus_times_out() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let source = PrometheusSource::new(ObservationConfig {
        prometheus: url,
        timeout_s: 0.5,
        max_age_s: 30.0,
        queries: queries(),
        replica_queries: None,
    })
    .unwrap();
    let start = std::time::Instant::now();
    let one = Some(Replicas::default());
    let services = ["web".to_string(), "db".to_string()];
    let obs = source.observe(&encoding(), &services, &[one, one], NOW);
    assert_eq!(obs.missing.len(), 12);
    assert!(
        obs.missing.iter().all(|m| m.reason.contains("unreachable")),
        "{:?}",
        obs.missing[0]
    );
    // The twelve queries wait together: one timeout, not twelve (6 s).
    assert!(start.elapsed().as_secs_f64() < 3.0, "{:?}", start.elapsed());
    drop(silent);
}
