//! The decision loop on a dry-run target with a stand-in Prometheus: the HPA baseline
//! scales up under load within the guardrails, every step is audited, and the adapter
//! holds while Prometheus is gone and acts again when it is back. A policy trained
//! with CPU levels resizes requests from the target's base, once.

use hale_adapter::config::AdapterConfig;
use hale_adapter::report::{Outcome, Resolution};
use hale_adapter::run::Adapter;

mod common;
use common::{Answers, QUERIES, serve_readings, stand_in};

const NOW: f64 = 1_800_000_000.0;
const SERVICES: [&str; 3] = ["front", "api", "db"];

fn load(answers: &Answers, cpu: f64) {
    serve_readings(answers, &SERVICES, cpu, NOW - 2.0);
}

fn config(url: &str, audit: &std::path::Path) -> AdapterConfig {
    let text = format!(
        r#"
policy = "hpa"
env = "Scaling-v0"
mode = "auto"
audit_log = "{}"

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

[observation]
prometheus = "{url}"
{QUERIES}"#,
        audit.display()
    );
    let cfg: AdapterConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

#[test]
fn hpa_scales_up_within_the_guardrails_and_holds_without_data() {
    let (url, answers) = stand_in();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut adapter = Adapter::new(&config(&url, &audit)).unwrap();

    // CPU at 95 % of requests everywhere: the HPA wants about twice the replicas;
    // max_step = 1 lets each service grow by one.
    load(&answers, 0.95);
    let Outcome::Decided { decisions } = adapter.step(NOW, 0.0).unwrap() else {
        panic!("expected decisions")
    };
    assert!(!decisions.is_empty());
    for d in &decisions {
        let hale_adapter::action::Action::Scale { replicas, .. } = d.proposed else {
            panic!("{d:?}")
        };
        assert!(replicas > 2, "{d:?}");
        assert_eq!(d.result, Resolution::Applied, "{d:?}");
        let done = d.verdict.action().unwrap();
        assert!(
            matches!(
                done,
                hale_adapter::action::Action::Scale { replicas: 3, .. }
            ),
            "{d:?}"
        );
    }

    // Prometheus loses the series: hold, naming what is missing.
    answers.lock().unwrap().clear();
    let Outcome::Hold { reasons, missing } = adapter.step(NOW + 15.0, 15.0).unwrap() else {
        panic!("expected a hold")
    };
    assert_eq!(missing.len(), 18, "six features of three services");
    assert_eq!(reasons.len(), 1, "one cause: {reasons:?}");
    assert!(
        reasons[0].contains("no sample") && reasons[0].contains("front request_rate"),
        "{reasons:?}"
    );

    // Back: it acts again, from the replicas it set.
    load(&answers, 0.95);
    let Outcome::Decided { decisions } = adapter.step(NOW + 30.0, 30.0).unwrap() else {
        panic!("expected decisions")
    };
    assert!(
        decisions
            .iter()
            .all(|d| d.seen.as_ref().is_some_and(|s| s.replicas.desired == 3)),
        "{decisions:?}"
    );

    let log: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = log.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(
        events.contains(&"hold") && events.contains(&"decision"),
        "{events:?}"
    );
    let d = log.iter().find(|e| e["event"] == "decision").unwrap();
    assert_eq!(d["verdict"]["verdict"], "adjusted", "{d}");
    assert_eq!(d["verdict"]["rules"][0]["rule"], "max_step", "{d}");
}

/// A bundle trained with `cpu_levels` sets each service's CPU request to its chosen
/// level times the base the target reports, explains it, and, the request being
/// there, does not ask again (a level-triggered controller); the HPA on the same env
/// keeps the base.
#[test]
fn a_sizing_policy_resizes_cpu_requests_from_the_base_once() {
    use hale_adapter::action::Action;
    use hale_adapter::config::TargetConfig;
    let (url, answers) = stand_in();
    let dir = tempfile::tempdir().unwrap();
    let levels = [0.25, 0.5, 1.0];
    let env_config = serde_json::json!({"scenario": "three-tier", "action": "target",
        "control_interval_s": 15.0, "cpu_levels": levels});
    let bundle = dir.path().join("sizing");
    common::mlp_bundle(&bundle, "Scaling-v0", &env_config);
    let sized = |policy: &str, audit: &str| {
        let mut cfg = config(&url, &dir.path().join(audit));
        cfg.policy = policy.into();
        cfg.env_config = toml::Value::try_from(&env_config)
            .unwrap()
            .as_table()
            .unwrap()
            .clone();
        // Replica counts held at 2, so that the observation stays the same.
        cfg.guardrails.min_replicas = 2;
        cfg.guardrails.max_replicas = 2;
        cfg.guardrails.max_disruptive = 10;
        let TargetConfig::DryRun { cpu_millicores, .. } = &mut cfg.target else {
            unreachable!()
        };
        *cpu_millicores = Some(400);
        Adapter::new(&cfg).unwrap()
    };
    let resizes = |outcome: Outcome| -> Vec<hale_adapter::report::Decision> {
        let Outcome::Decided { decisions } = outcome else {
            panic!("expected decisions: {outcome:?}")
        };
        decisions
            .into_iter()
            .filter(|d| matches!(d.proposed, Action::Resize { .. }))
            .collect()
    };

    load(&answers, 0.3);
    let mut adapter = sized(&bundle.display().to_string(), "mlp.jsonl");
    let first = resizes(adapter.step(NOW, 0.0).unwrap());
    assert!(
        !first.is_empty(),
        "the untrained policy keeps every request"
    );
    for d in &first {
        let Action::Resize { millicores, .. } = d.proposed else {
            unreachable!()
        };
        assert!(
            levels[..2]
                .iter()
                .any(|l| (400.0 * l - f64::from(millicores)).abs() < 0.5),
            "{d:?}"
        );
        assert_eq!(d.result, Resolution::Applied, "{d:?}");
        let e = &d.explanation;
        assert!(
            e.expected_effect
                .starts_with(&format!("CPU request 400m → {millicores}m")),
            "{e:?}"
        );
        assert!(
            e.features
                .iter()
                .any(|f| f.name == "base_cpu_millicores" && f.value == 400.0),
            "{e:?}"
        );
        assert_eq!(e.alternatives.len(), 3, "{e:?}");
    }
    let again = resizes(adapter.step(NOW + 15.0, 15.0).unwrap());
    assert!(again.is_empty(), "asked again: {again:?}");

    let mut hpa = sized("hpa", "hpa.jsonl");
    assert!(resizes(hpa.step(NOW, 0.0).unwrap()).is_empty());
}

#[test]
fn what_cannot_run_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // Manual mode with an endpoint needs its bearer token.
    let mut cfg = config("http://127.0.0.1:9", &dir.path().join("a.jsonl"));
    cfg.mode = hale_adapter::config::Mode::Manual;
    cfg.server = Some(hale_adapter::config::ServerConfig {
        listen: "127.0.0.1:0".into(),
        token_env: "HALE_TEST_TOKEN_THAT_IS_NOT_SET".into(),
        token_file: None,
    });
    let e = Adapter::new(&cfg).err().unwrap().to_string();
    assert!(
        e.contains("$HALE_TEST_TOKEN_THAT_IS_NOT_SET is not set"),
        "{e}"
    );
    let empty = dir.path().join("token");
    std::fs::write(&empty, "\n").unwrap();
    cfg.server.as_mut().unwrap().token_file = Some(empty);
    let e = Adapter::new(&cfg).err().unwrap().to_string();
    assert!(
        e.contains("server.token_file") && e.contains("is empty"),
        "{e}"
    );
    // A GNN bundle reads the resource graph, whose replica nodes need the
    // per-replica queries: refused up front, naming them, not held at every step.
    let gnn = dir.path().join("gnn");
    common::gnn_bundle(
        &gnn,
        "Scaling-v0",
        &serde_json::json!({"scenario": "three-tier", "action": "target",
            "control_interval_s": 15.0, "observation": "graph"}),
    );
    let mut cfg = config("http://127.0.0.1:9", &dir.path().join("a.jsonl"));
    cfg.policy = gnn.display().to_string();
    let e = format!("{:#}", Adapter::new(&cfg).err().unwrap());
    assert!(e.contains("replica_queries"), "{e}");
    // The target must list the env's services.
    let mut cfg = config("http://127.0.0.1:9", &dir.path().join("a.jsonl"));
    cfg.target = hale_adapter::config::TargetConfig::DryRun {
        namespace: "shop".into(),
        services: vec!["front".into()],
        initial_replicas: 1,
        cpu_millicores: None,
    };
    let e = Adapter::new(&cfg).err().unwrap().to_string();
    assert!(e.contains("target lists 1 services"), "{e}");
}
