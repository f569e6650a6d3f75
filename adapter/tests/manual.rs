//! Manual mode through the HTTP endpoint, with a stand-in Prometheus and a dry-run
//! target: a person accepts one proposal, declines one and lets one expire; in the
//! next step modifies one beyond the guardrails. The audit log, the endpoint's
//! answers, the webhook and `/metrics` all tell the same story.

use hale_adapter::config::AdapterConfig;
use hale_adapter::report::{ApprovalDecision, Outcome, Resolution};
use hale_adapter::run::Adapter;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

const NOW: f64 = 1_800_000_000.0;

fn config(dir: &std::path::Path, prometheus: &str, webhook: &str) -> AdapterConfig {
    std::fs::write(dir.join("token"), "s3cret\n").unwrap();
    let text = format!(
        r#"
policy = "hpa"
env = "Scaling-v0"
mode = "manual"
audit_log = "{dir}/audit.jsonl"

[env_config]
scenario = "three-tier"
action = "target"
control_interval_s = 15.0

[target]
kind = "dry-run"
namespace = "shop"
services = ["front", "api", "db"]
initial_replicas = 2

[guardrails]
max_step = 1
max_replicas = 6
cooldown_s = 0

[server]
listen = "127.0.0.1:0"
token_file = "{dir}/token"

[manual]
ttl_s = 2.0
prompt = false

[notify]
webhook = "{webhook}"

[observation]
prometheus = "{prometheus}"
{queries}"#,
        dir = dir.display(),
        queries = common::QUERIES,
    );
    let path = dir.join("adapter.toml");
    std::fs::write(&path, text).unwrap();
    AdapterConfig::load(&path).unwrap()
}

/// A webhook receiver: keeps every body it is sent.
fn webhook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            keep.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            let _ = write!(
                stream,
                "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// GET /proposals with the token until `n` are pending.
fn pending(base: &str, n: usize) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let mut r = agent()
            .get(&format!("{base}/proposals"))
            .header("Authorization", "Bearer s3cret")
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let list = v["proposals"].as_array().unwrap().clone();
        if list.len() == n {
            return list;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn answer(base: &str, id: &serde_json::Value, body: &str) -> u16 {
    agent()
        .post(&format!("{base}/proposals/{id}"))
        .header("Authorization", "Bearer s3cret")
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

fn id_of<'a>(list: &'a [serde_json::Value], service: &str) -> &'a serde_json::Value {
    &list
        .iter()
        .find(|p| p["action"]["service"] == service)
        .unwrap_or_else(|| panic!("no proposal for {service}: {list:?}"))["id"]
}

#[test]
fn accept_decline_expire_and_modify_over_http_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (prometheus, answers) = common::stand_in();
    common::serve_readings(&answers, &["front", "api", "db"], 0.95, NOW - 2.0);
    let (hook, hooked) = webhook();
    let mut adapter = Adapter::new(&config(dir.path(), &prometheus, &hook)).unwrap();
    let base = format!("http://{}", adapter.server_addr().unwrap());

    let person = {
        let base = base.clone();
        std::thread::spawn(move || {
            // Without the token, nothing is shown or decided.
            let r = agent().get(&format!("{base}/proposals")).call().unwrap();
            assert_eq!(r.status(), 401);
            let list = pending(&base, 3);
            let front = id_of(&list, "front").clone();
            let p = list.iter().find(|p| p["id"] == front).unwrap();
            let effect = p["explanation"]["expected_effect"].as_str().unwrap();
            assert!(effect.contains("2 → 3 replicas"), "{effect}");
            assert!(effect.contains("95 % → about 63 %"), "{effect}");
            let cpu = p["explanation"]["features"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "cpu_utilization")
                .unwrap()["value"]
                .as_f64();
            assert_eq!(cpu, Some(0.95));
            let bad = agent()
                .post(&format!("{base}/proposals/{front}"))
                .header("Authorization", "Bearer wrong")
                .send(r#"{"decision":"accept"}"#)
                .unwrap();
            assert_eq!(bad.status(), 401);
            assert_eq!(answer(&base, &front, r#"{"decision":"maybe"}"#), 400);
            assert_eq!(answer(&base, &front, r#"{"decision":"modify"}"#), 400);
            assert_eq!(
                answer(&base, &front, r#"{"decision":"accept","by":"alice"}"#),
                202
            );
            let api = id_of(&list, "api").clone();
            assert_eq!(answer(&base, &api, r#"{"decision":"decline"}"#), 202);
            // A decided proposal is no longer there to answer.
            assert_eq!(answer(&base, &front, r#"{"decision":"decline"}"#), 404);
            // db's is left to expire.
        })
    };
    let Outcome::Decided { decisions } = adapter.step(NOW, 0.0).unwrap() else {
        panic!("expected decisions")
    };
    person.join().unwrap();
    let result = |s: &str| {
        decisions
            .iter()
            .find(|d| d.service == s)
            .map(|d| (d.result.clone(), d.approval.clone().unwrap()))
            .unwrap()
    };
    let (front, approval) = result("front");
    assert_eq!(front, Resolution::Applied);
    assert_eq!(
        (approval.decision, approval.by.as_deref()),
        (ApprovalDecision::Accepted, Some("alice"))
    );
    assert_eq!(result("api").0, Resolution::Declined(None));
    let (db, approval) = result("db");
    assert_eq!(
        (db, approval.decision, approval.by),
        (Resolution::Expired, ApprovalDecision::Expired, None)
    );

    // Step two: front is at 3, api and db still at 2. Modify api's proposal to 5:
    // the guardrails' max_step turns it into 3. Decline the others.
    let person = {
        let base = base.clone();
        std::thread::spawn(move || {
            let list = pending(&base, 3);
            let api = id_of(&list, "api").clone();
            assert_eq!(
                answer(&base, &api, r#"{"decision":"modify","replicas":5}"#),
                202
            );
            for s in ["front", "db"] {
                assert_eq!(
                    answer(&base, id_of(&list, s), r#"{"decision":"decline"}"#),
                    202
                );
            }
        })
    };
    let started = Instant::now();
    let Outcome::Decided { decisions } = adapter.step(NOW + 15.0, 15.0).unwrap() else {
        panic!("expected decisions")
    };
    person.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "all answered: no wait for expiry"
    );
    let api = decisions.iter().find(|d| d.service == "api").unwrap();
    assert_eq!(api.result, Resolution::Applied);
    assert_eq!(api.approval.as_ref().unwrap().replicas, Some(5));
    assert!(
        matches!(
            api.verdict.action(),
            Some(hale_adapter::action::Action::Scale { replicas: 3, .. })
        ),
        "{api:?}"
    );
    assert_eq!(
        decisions
            .iter()
            .find(|d| d.service == "front")
            .unwrap()
            .seen
            .as_ref()
            .map(|s| s.replicas.desired),
        Some(3),
        "front kept the accepted change"
    );

    // The audit log: six proposals, six approvals, in order, each with its outcome.
    let log: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |e: &str| log.iter().filter(|l| l["event"] == e).count();
    assert_eq!((count("proposal"), count("approval")), (6, 6));
    let outcomes: Vec<(String, String)> = log
        .iter()
        .filter(|l| l["event"] == "approval")
        .map(|l| {
            (
                l["service"].as_str().unwrap().to_string(),
                l["approval"]["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("front", "accepted"),
        ("api", "declined"),
        ("db", "expired"),
        ("api", "modified"),
        ("front", "declined"),
        ("db", "declined"),
    ] {
        assert!(
            outcomes.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {outcomes:?}"
        );
    }
    let proposal = log.iter().find(|l| l["event"] == "proposal").unwrap();
    assert!(
        proposal["expires_unix"].as_f64().unwrap() > proposal["created_unix"].as_f64().unwrap()
    );

    // The webhook saw every event the audit log has.
    let hooked = hooked.lock().unwrap();
    assert_eq!(hooked.len(), log.len());
    assert!(
        hooked
            .iter()
            .zip(&log)
            .all(|(h, l)| h["event"] == l["event"])
    );

    // /metrics counts it all, without a token.
    let mut r = agent().get(&format!("{base}/metrics")).call().unwrap();
    assert_eq!(r.status(), 200);
    let text = r.body_mut().read_to_string().unwrap();
    for line in [
        "hale_adapter_decisions_total 2",
        "hale_adapter_actions_total{kind=\"scale\",result=\"applied\"} 2",
        "hale_adapter_actions_total{kind=\"scale\",result=\"declined\"} 3",
        "hale_adapter_actions_total{kind=\"scale\",result=\"expired\"} 1",
        "hale_adapter_proposals_pending 0",
        // The second step read samples from NOW - 2 at NOW + 15.
        "hale_adapter_observation_staleness_seconds 17",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} in\n{text}"
        );
    }
    assert!(
        text.contains("hale_adapter_decision_latency_seconds_count 2"),
        "{text}"
    );
}

/// A client that trickles its upload (issue 15: 4 KB/s stalled the whole endpoint,
/// /metrics timed out) holds only its own request: /metrics and the proposal list
/// answer meanwhile.
#[test]
fn a_slow_client_does_not_stall_the_endpoint() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (prometheus, _answers) = common::stand_in();
    let (hook, _hooked) = webhook();
    let adapter = Adapter::new(&config(dir.path(), &prometheus, &hook)).unwrap();
    let addr = adapter.server_addr().unwrap();
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    write!(
        slow,
        "POST /proposals/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"decision\""
    )
    .unwrap();
    slow.flush().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if slow.write_all(&[b' '; 400]).is_err() {
                break;
            }
        }
    });
    let base = format!("http://{addr}");
    for _ in 0..3 {
        let r = agent().get(&format!("{base}/metrics")).call().unwrap();
        assert_eq!(r.status(), 200);
        let r = agent()
            .get(&format!("{base}/proposals"))
            .header("Authorization", "Bearer s3cret")
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    trickle.join().unwrap();
}
