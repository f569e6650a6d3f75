//! The Prometheus observation source against a stand-in Prometheus on loopback:
//! whole observations encode as the env does; missing, stale and failing data are
//! reported by service and feature, never read as zero.

use hale_adapter::observe::{ObservationConfig, PrometheusSource, Queries, Replicas};
use hale_envs::live::{ScalingObservation, ServiceReading};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the stand-in answers: per query, (HTTP status, body).
type Answers = Arc<Mutex<HashMap<String, (u16, String)>>>;

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A one-thread HTTP server for `/api/v1/query`; unknown queries get an empty result.
fn stand_in() -> (String, Answers) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answers: Answers = Arc::default();
    let served = answers.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let query = target
                .split_once("query=")
                .map(|(_, q)| decode(q.split('&').next().unwrap()))
                .unwrap_or_default();
            let (status, body) = served.lock().unwrap().get(&query).cloned().unwrap_or((
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into(),
            ));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, answers)
}

fn sample(value: f64, ts: f64) -> (u16, String) {
    (
        200,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"{value}"]}}]}}}}"#
        ),
    )
}

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
        timeout_s: 0.2,
        max_age_s: 30.0,
        queries: queries(),
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
    assert!(start.elapsed().as_secs_f64() < 10.0);
    drop(silent);
}
