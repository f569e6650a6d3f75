//! Several agents in one adapter (issue 21): the HPA scaler and the kubelet healer on
//! one scripted cluster, with the coordinator between them. When the healer restarts
//! a crashed replica of `api` in the same step as the scaler scales `api` and `db`
//! down, `api`'s scale-down is dropped (`remediation_first`), counted in `/metrics`
//! and audited, while `db`'s goes ahead; `api` stays held
//! for the window. An operator's pause goes to the agent it names. Two agents for one
//! env are refused.

use hale_adapter::action::Action;
use hale_adapter::config::AdapterConfig;
use hale_adapter::report::{Outcome, Resolution};
use hale_adapter::team::Team;

mod common;
mod scripted;
use common::{QUERIES, serve_readings, stand_in};
use scripted::{REPLICA_QUERIES, SERVICES, Scripted, cluster};

const NOW: f64 = 1_800_000_000.0;

fn config(dir: &std::path::Path, url: &str) -> AdapterConfig {
    std::fs::write(dir.join("token"), "s3cret\n").unwrap();
    let text = format!(
        r#"
policy = "hpa"
env = "Scaling-v0"
mode = "auto"
audit_log = "{dir}/audit.jsonl"
coordination_window_s = 300

[env_config]
scenario = "three-tier"
action = "target"
control_interval_s = 10.0

[target]
kind = "dry-run"
namespace = "shop"
services = ["front", "api", "db"]

[guardrails]
cooldown_s = 0

[server]
listen = "127.0.0.1:0"
token_file = "{dir}/token"

[[also]]
policy = "kubelet"
env = "Healing-v0"
mode = "auto"
[also.env_config]
scenario = "three-tier"
control_interval_s = 10.0

[observation]
prometheus = "{url}"
{QUERIES}
{REPLICA_QUERIES}"#,
        dir = dir.display()
    );
    let path = dir.join("adapter.toml");
    std::fs::write(&path, text).unwrap();
    AdapterConfig::load(&path).unwrap()
}

/// Readings of every service at CPU `cpu`, and of every running replica.
fn readings(answers: &common::Answers, cpu: f64, ts: f64) {
    scripted::serve(answers, ts);
    serve_readings(answers, &SERVICES, cpu, ts);
}

fn decided(outcome: &Outcome) -> Vec<(Action, Resolution)> {
    match outcome {
        Outcome::Decided { decisions } => decisions
            .iter()
            .map(|d| {
                (
                    d.verdict.action().cloned().unwrap_or(Action::Noop),
                    d.result.clone(),
                )
            })
            .collect(),
        Outcome::Hold { reasons, .. } => panic!("hold: {reasons:?}"),
    }
}

/// Asks the team over its endpoint while it serves requests; the result word.
fn ask(team: &mut Team, base: &str, text: &str) -> String {
    let (base, text) = (base.to_string(), text.to_string());
    let person = std::thread::spawn(move || {
        let mut r = ureq::post(&format!("{base}/ask"))
            .header("Authorization", "Bearer s3cret")
            .send(serde_json::json!({"text": text, "by": "ana"}).to_string())
            .unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        body["result"].as_str().unwrap_or_default().to_string()
    });
    let start = std::time::Instant::now();
    while !person.is_finished() {
        team.wait(0.05, start).unwrap();
        assert!(start.elapsed().as_secs() < 30, "no answer");
    }
    person.join().unwrap()
}

fn scale(service: &str, replicas: u32) -> Action {
    Action::Scale {
        namespace: "shop".into(),
        service: service.into(),
        replicas,
    }
}

#[test]
fn the_coordinator_keeps_the_scaler_off_a_service_the_healer_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let (url, answers) = stand_in();
    let target = Scripted::default();
    *target.state.lock().unwrap() = cluster();
    let mut team = Team::new(&config(dir.path(), &url))
        .unwrap()
        .with_target(target.clone());
    assert_eq!(
        team.agents(),
        [
            hale_adapter::ask::Agent::Scaling,
            hale_adapter::ask::Agent::Healing
        ]
    );

    // Step 1: the crash is not past its back-off, and an operator has paused the
    // scaler (the request goes to the agent that owns it): the healer waits, the
    // scaler holds.
    let base = format!("http://{}", team.server_addr().unwrap());
    assert_eq!(ask(&mut team, &base, "pause scaling"), "paused");
    readings(&answers, 0.2, NOW - 1.0);
    let outcomes = team.step(NOW, 0.0).unwrap();
    assert_eq!(outcomes.len(), 2);
    assert!(matches!(&outcomes[0], Outcome::Hold { .. }), "{outcomes:?}");
    assert!(decided(&outcomes[1]).is_empty(), "{outcomes:?}");
    assert_eq!(ask(&mut team, &base, "resume scaling"), "resumed");
    let before = target.applied.lock().unwrap().len();

    // Step 2: the back-off has passed: the healer restarts api-b; the scaler, seeing
    // one ready replica of api and of db at target CPU, would scale both down to one;
    // api's is dropped, db's goes ahead.
    readings(&answers, 0.5, NOW + 9.0);
    let outcomes = team.step(NOW + 10.0, 10.0).unwrap();
    let scaler = decided(&outcomes[0]);
    let healer = decided(&outcomes[1]);
    let restart = Action::Restart {
        namespace: "shop".into(),
        service: "api".into(),
        replica: "api-b".into(),
    };
    assert_eq!(healer, vec![(restart.clone(), Resolution::Applied)]);
    let scaled: Vec<&Action> = scaler.iter().map(|(a, _)| a).collect();
    assert!(
        scaled.contains(&&scale("db", 1))
            && !scaled.iter().any(|a| a.service() == Some(("shop", "api"))),
        "{scaler:?}"
    );
    let applied = target.applied.lock().unwrap()[before..].to_vec();
    assert!(applied.contains(&restart) && !applied.contains(&scale("api", 1)));
    let counted = |team: &Team, rule: &str| {
        team.metrics()
            .prevented
            .get_or_create(&hale_adapter::metrics::RuleLabels { rule: rule.into() })
            .get()
    };
    assert_eq!(counted(&team, "remediation_first"), 1);

    // Step 3, within the window: api is still held; the others are at their count.
    readings(&answers, 0.5, NOW + 19.0);
    team.step(NOW + 20.0, 20.0).unwrap();
    assert_eq!(counted(&team, "remediation_first"), 2);
    assert!(!target.applied.lock().unwrap()[before..].contains(&scale("api", 1)));

    // /metrics on the first agent's endpoint shows the count; the audit log the why.
    let mut r = ureq::get(&format!("{base}/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("hale_adapter_conflicts_prevented_total{rule=\"remediation_first\"} 2"),
        "{text}"
    );
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let prevented: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "prevented")
        .collect();
    // Each agent's events name it; the console (with the token) shows both agents,
    // and the restart as the healer's.
    let restarted = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "decision" && e["proposed"]["kind"] == "restart")
        .unwrap();
    assert_eq!(restarted["agent"], "healing");
    let page = |path: &str| {
        let mut r = ureq::get(&format!("{base}{path}"))
            .header("Authorization", "Bearer s3cret")
            .call()
            .unwrap();
        r.body_mut().read_to_string().unwrap()
    };
    let agents = page("/console/part/agents");
    assert!(
        agents.contains(r#"data-agent="scaling""#) && agents.contains(r#"data-agent="healing""#),
        "{agents}"
    );
    let actions = page("/console/part/actions");
    let row = actions
        .split("<tr class=\"action")
        .find(|r| r.contains("api-b"))
        .unwrap_or_else(|| panic!("{actions}"));
    assert!(row.contains("<td>healing</td>"), "{row}");
    assert_eq!(prevented.len(), 2);
    assert_eq!(prevented[0]["rule"], "remediation_first");
    assert_eq!(prevented[0]["action"]["service"], "api");
    assert!(
        prevented[0]["because"]
            .as_str()
            .unwrap()
            .contains("Healing"),
        "{}",
        prevented[0]
    );
}

#[test]
fn two_agents_for_one_env_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "http://127.0.0.1:9");
    let text = std::fs::read_to_string(dir.path().join("adapter.toml"))
        .unwrap()
        .replace(
            "policy = \"kubelet\"\nenv = \"Healing-v0\"",
            "policy = \"hpa\"\nenv = \"Scaling-v0\"",
        );
    drop(cfg);
    let path = dir.path().join("twice.toml");
    std::fs::write(&path, text).unwrap();
    let e = AdapterConfig::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("also[0].env") && e.contains("one agent per env"),
        "{e}"
    );
}
