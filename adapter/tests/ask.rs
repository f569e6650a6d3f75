//! Requests in plain words through the endpoint (issue 21), with a stand-in
//! Prometheus and a dry-run target: an action is delegated to the agent that owns it,
//! checked by the guardrails, carried out between steps and audited; a request for an
//! agent this adapter does not run, or for a service it does not know, is refused
//! naming them; questions are answered from the audit log; a pause holds the next
//! step and a resume lets it decide; a typo gets the closest command; nothing answers
//! without the token. `hale-adapter ask` is the same from the command line.

use hale_adapter::config::AdapterConfig;
use hale_adapter::report::Outcome;
use hale_adapter::run::Adapter;
use std::time::{Duration, Instant};

mod common;

const NOW: f64 = 1_800_000_000.0;

fn config_text(dir: &std::path::Path, prometheus: &str) -> String {
    std::fs::write(dir.join("token"), "s3cret\n").unwrap();
    format!(
        r#"
policy = "hpa"
env = "Scaling-v0"
mode = "auto"
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

[observation]
prometheus = "{prometheus}"
{queries}"#,
        dir = dir.display(),
        queries = common::QUERIES,
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POSTs `text` to /ask with `token`: the status and the JSON answer.
fn ask(base: &str, token: Option<&str>, text: &str) -> (u16, serde_json::Value) {
    let mut req = agent()
        .post(&format!("{base}/ask"))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req
        .send(serde_json::json!({"text": text, "by": "ana"}).to_string())
        .unwrap();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Runs the adapter's wait loop (which carries requests out) until `person` is done.
fn serve_while<T>(adapter: &mut Adapter, person: std::thread::JoinHandle<T>) -> T {
    let start = Instant::now();
    while !person.is_finished() {
        adapter.wait(0.05, start).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the person hangs"
        );
    }
    person.join().unwrap()
}

#[test]
fn plain_words_requests_are_delegated_guarded_audited_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (prometheus, answers) = common::stand_in();
    common::serve_readings(&answers, &["front", "api", "db"], 0.3, NOW - 2.0);
    let path = dir.path().join("adapter.toml");
    std::fs::write(&path, config_text(dir.path(), &prometheus)).unwrap();
    let mut adapter = Adapter::new(&AdapterConfig::load(&path).unwrap()).unwrap();
    let base = format!("http://{}", adapter.server_addr().unwrap());

    let person = {
        let base = base.clone();
        std::thread::spawn(move || {
            let token = Some("s3cret");
            // No token, a wrong one, a bad body: nothing is done.
            assert_eq!(ask(&base, None, "scale api to 4").0, 401);
            assert_eq!(ask(&base, Some("wrong"), "scale api to 4").0, 401);
            let r = agent()
                .post(&format!("{base}/ask"))
                .header("Authorization", "Bearer s3cret")
                .send("{\"txt\": 1}")
                .unwrap();
            assert_eq!(r.status(), 400);
            let (status, body) = ask(&base, token, "scael api to 4");
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["suggestion"], "scale api to 4");
            // The guardrails' max_step = 1 turns 2 → 4 into 2 → 3.
            let (status, body) = ask(&base, token, "please scale api to 4");
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["result"], "applied", "{body}");
            assert!(body["answer"].as_str().unwrap().contains('3'), "{body}");
            // Not this adapter's agent, not its service.
            let (status, body) = ask(&base, token, "restart api-7f9c");
            assert_eq!(status, 422, "{body}");
            assert!(
                body["error"].as_str().unwrap().contains("healing agent"),
                "{body}"
            );
            let (status, body) = ask(&base, token, "scale cart to 3");
            assert_eq!(status, 422, "{body}");
            assert!(
                body["error"].as_str().unwrap().contains("\"cart\""),
                "{body}"
            );
            let (status, body) = ask(&base, token, "pause healing");
            assert_eq!(status, 422, "{body}");
            // Questions, from the audit log.
            let (status, body) = ask(&base, token, "why did you scale api?");
            assert_eq!(status, 200, "{body}");
            let why = body["answer"].as_str().unwrap();
            assert!(
                why.contains("ana asked for it") && why.contains("applied"),
                "{why}"
            );
            let (_, body) = ask(&base, token, "what happened in the last hour?");
            assert!(
                body["answer"]
                    .as_str()
                    .unwrap()
                    .contains("1 × scale applied"),
                "{body}"
            );
            let (status, body) = ask(&base, token, "pause the scaler");
            assert_eq!(
                (status, body["result"].as_str()),
                (200, Some("paused")),
                "{body}"
            );
        })
    };
    serve_while(&mut adapter, person);

    // Paused: the step holds, saying who paused it and how to resume.
    match adapter.step(NOW, 20.0).unwrap() {
        Outcome::Hold { reasons, .. } => {
            assert!(reasons[0].contains("paused (by ana)"), "{reasons:?}");
        }
        other => panic!("expected a hold, got {other:?}"),
    }
    let person = {
        let base = base.clone();
        std::thread::spawn(move || ask(&base, Some("s3cret"), "resume scaling"))
    };
    let (status, body) = serve_while(&mut adapter, person);
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("resumed")),
        "{body}"
    );
    assert!(matches!(
        adapter.step(NOW + 15.0, 35.0).unwrap(),
        Outcome::Decided { .. }
    ));

    // Modes: to manual (proposals from the next step), again (no change), back.
    let person = {
        let base = base.clone();
        std::thread::spawn(move || {
            [
                "switch scaling to manual",
                "put the scaler in manual mode",
                "switch scaling to auto",
            ]
            .map(|text| ask(&base, Some("s3cret"), text))
        })
    };
    let said = serve_while(&mut adapter, person);
    let answers: Vec<&str> = said
        .iter()
        .map(|(_, b)| b["answer"].as_str().unwrap())
        .collect();
    assert!(answers[0].contains("proposes from now on"), "{answers:?}");
    assert!(answers[1].contains("manual mode already"), "{answers:?}");
    assert!(answers[2].contains("acts on its own"), "{answers:?}");

    // Every request is in the audit log, with who asked.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let requests: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "request")
        .collect();
    let texts: Vec<&str> = requests
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "scale api to 4",
            "restart api-7f9c",
            "scale cart to 3",
            "pause healing",
            "pause scaling",
            "resume scaling",
            "switch scaling to manual",
            "switch scaling to manual",
            "switch scaling to auto"
        ]
    );
    assert!(requests.iter().all(|e| e["by"] == "ana"));
    let scaled = &requests[0]["decision"];
    assert_eq!(scaled["result"], "applied");
    assert_eq!(scaled["verdict"]["action"]["replicas"], 3, "{scaled}");
    assert!(requests[1]["refused"].as_str().unwrap().contains("healing"));

    // The command line (with the config's listen address where this adapter bound):
    // a typo is refused before any round trip; a question answers.
    let listen = adapter.server_addr().unwrap().to_string();
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("127.0.0.1:0", &listen),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("hale-adapter")
            .unwrap()
            .arg("ask")
            .arg(&path)
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["scael", "api", "to", "4"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `scale api to 4`"), "{err}");
    let out = cli(&["what happened in the last hour?"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("scale applied") && said.contains("asked by ana"),
        "{said}"
    );
}
