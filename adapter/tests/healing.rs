//! The decision loop for Healing-v0 on a scripted target with a stand-in Prometheus:
//! the kubelet baseline restarts a crashed replica after its back-off, names it by
//! the target's name, leaves a replica that only fails readiness to the orchestrator,
//! and holds (naming the replica and query) when a running replica's metrics are
//! missing. A config without per-replica queries is refused.

use hale_adapter::action::Action;
use hale_adapter::config::AdapterConfig;
use hale_adapter::report::{Outcome, Resolution};
use hale_adapter::run::Adapter;

mod common;
mod scripted;
use common::{QUERIES, stand_in};
use scripted::{REPLICA_QUERIES, Scripted, cluster, replica, serve};

const NOW: f64 = 1_800_000_000.0;

fn config(url: &str, audit: &std::path::Path, replica_queries: &str) -> AdapterConfig {
    let text = format!(
        r#"
policy = "kubelet"
env = "Healing-v0"
mode = "auto"
audit_log = "{}"

[env_config]
scenario = "three-tier"
control_interval_s = 10.0

[target]
kind = "dry-run"
namespace = "shop"
services = ["front", "api", "db"]

[guardrails]
cooldown_s = 0

[observation]
prometheus = "{url}"
{QUERIES}
{replica_queries}"#,
        audit.display()
    );
    toml::from_str(&text).unwrap()
}

#[test]
fn the_kubelet_restarts_a_crashed_replica_after_its_back_off_and_holds_without_its_data() {
    let (url, answers) = stand_in();
    serve(&answers, NOW - 1.0);
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let cfg = config(&url, &audit, REPLICA_QUERIES);
    cfg.validate().unwrap();
    let target = Scripted::default();
    *target.state.lock().unwrap() = cluster();
    let mut adapter = Adapter::new(&cfg)
        .unwrap()
        .with_target(Box::new(target.clone()));

    // First sight of the crash: the kubelet's 10 s back-off has not passed.
    let first = adapter.step(NOW, 0.0).unwrap();
    assert_eq!(
        first,
        Outcome::Decided { decisions: vec![] },
        "nothing is due yet"
    );
    // One control interval later it is: the crashed replica, by its target name.
    let Outcome::Decided { decisions } = adapter.step(NOW + 10.0, 10.0).unwrap() else {
        panic!("expected a decision")
    };
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let d = &decisions[0];
    assert_eq!(
        d.proposed,
        Action::Restart {
            namespace: "shop".into(),
            service: "api".into(),
            replica: "api-b".into(),
        }
    );
    assert_eq!(d.result, Resolution::Applied);
    assert!(
        d.explanation.expected_effect.contains("crashed"),
        "{:?}",
        d.explanation
    );
    assert!(
        d.explanation
            .expected_effect
            .contains("api keeps 1 of 2 ready"),
        "{:?}",
        d.explanation
    );
    assert_eq!(
        target.applied.lock().unwrap().as_slice(),
        std::slice::from_ref(&d.proposed)
    );

    // db-b fails readiness only: the orchestrator's liveness probe owns it; the
    // kubelet does not restart it, however long it waits.
    {
        let mut state = target.state.lock().unwrap();
        let api = state.replicas.get_mut("shop/api").unwrap();
        api[1] = replica("api-c", "n2", "running", true);
    }
    for k in 2..8 {
        let t = 10.0 * f64::from(k);
        serve(&answers, NOW + t - 1.0);
        assert_eq!(
            adapter.step(NOW + t, t).unwrap(),
            Outcome::Decided { decisions: vec![] }
        );
    }

    // A running replica's memory is gone from Prometheus: hold, naming it.
    serve(&answers, NOW + 79.0);
    answers.lock().unwrap().remove("mem(front-a)");
    let Outcome::Hold { reasons, missing } = adapter.step(NOW + 80.0, 80.0).unwrap() else {
        panic!("expected a hold")
    };
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].feature, "memory_fraction of front-a");
    assert!(missing[0].reason.contains("mem(front-a)"), "{missing:?}");
    assert!(
        reasons[0].contains("memory_fraction of front-a"),
        "{reasons:?}"
    );

    // Every step is in the audit log: two decisions with changes or none, six quiet
    // ones, a hold.
    let log = std::fs::read_to_string(&audit).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 9, "{log}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "hold").count(),
        1,
        "{log}"
    );
}

#[test]
fn healing_without_replica_queries_or_for_another_env_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("http://127.0.0.1:9", &dir.path().join("a.jsonl"), "");
    let err = cfg.validate().unwrap_err();
    assert_eq!(err.field, "observation.replica_queries", "{err}");
    let err = Adapter::new(&cfg).err().unwrap().to_string();
    assert!(err.contains("replica_queries"), "{err}");

    // Another env is refused when the config is read, naming the choices.
    let err = "CartPole-v1"
        .parse::<hale_adapter::config::EnvKind>()
        .unwrap_err();
    assert!(err.message.contains("Scaling-v0 and Healing-v0"), "{err}");
}

/// GNN bundles read the resource graph built from the live state: a Healing-v0 one
/// picks a remedy the mask allows (an action outside it would be refused), a
/// Scaling-v0 one decides per service; without the nodes' memory the step holds.
#[test]
fn gnn_bundles_run_on_the_live_resource_graph() {
    let (url, answers) = stand_in();
    serve(&answers, NOW - 1.0);
    let dir = tempfile::tempdir().unwrap();
    for (env, env_config) in [
        (
            "Healing-v0",
            serde_json::json!({"scenario": "three-tier", "control_interval_s": 10.0,
                "observation": "graph"}),
        ),
        (
            "Scaling-v0",
            serde_json::json!({"scenario": "three-tier", "action": "target",
                "control_interval_s": 15.0, "observation": "graph"}),
        ),
    ] {
        let bundle = dir.path().join(env);
        common::gnn_bundle(&bundle, env, &env_config);
        let mut cfg = config(
            &url,
            &dir.path().join(format!("{env}.jsonl")),
            REPLICA_QUERIES,
        );
        cfg.policy = bundle.display().to_string();
        cfg.env = env.parse().unwrap();
        cfg.env_config = toml::Table::new();
        let target = Scripted::default();
        *target.state.lock().unwrap() = cluster();
        let mut adapter = Adapter::new(&cfg)
            .unwrap_or_else(|e| panic!("{env}: {e:#}"))
            .with_target(Box::new(target.clone()));
        for k in 0..3 {
            let t = 10.0 * f64::from(k);
            serve(&answers, NOW + t - 1.0);
            match adapter.step(NOW + t, t).unwrap() {
                Outcome::Decided { decisions } => {
                    for d in &decisions {
                        assert_eq!(d.explanation.policy, "ppo", "{d:?}");
                        assert!(!d.explanation.alternatives.is_empty(), "{d:?}");
                    }
                }
                other => panic!("{env}: {other:?}"),
            }
        }
        // A node that does not say how much memory it has: the graph cannot be built.
        target.state.lock().unwrap().nodes[1].memory_allocation = None;
        let Outcome::Hold { missing, .. } = adapter.step(NOW + 30.0, 30.0).unwrap() else {
            panic!("{env}: expected a hold")
        };
        assert!(
            missing
                .iter()
                .any(|m| m.service == "node/n2" && m.feature == "memory_allocation"),
            "{missing:?}"
        );
    }
}

/// The live graph has the env's shape: zones, hosts, services, replicas as nodes;
/// contains, calls (three-tier: front → api → db), owns and runs as edges.
#[test]
fn the_live_graph_has_the_envs_nodes_and_edges() {
    use hale_adapter::live::{LiveHost, LiveInput, LiveReplica};
    use hale_envs::encoding::{HostReading, ReplicaReading, ReplicaState as S};
    let env = hale_envs::Healing::new(&serde_json::json!({"scenario": "three-tier"})).unwrap();
    let encoding = env.graph_encoding();
    let replica = |service: usize, node: Option<&str>| LiveReplica {
        name: format!("r{service}"),
        node: node.map(str::to_string),
        reading: ReplicaReading {
            service,
            state: if node.is_some() { S::Ready } else { S::Pending },
            probe_failures: 0,
            restarts: 0,
            memory_fraction: 0.5,
            mean_latency_ms: 10.0,
            error_rate: 0.0,
            host_up: node.is_some(),
        },
    };
    let host = |name: &str, zone| LiveHost {
        name: name.into(),
        zone,
        reading: HostReading {
            up: true,
            cordoned: false,
            cpu_allocation: 0.5,
        },
        memory_allocation: 0.25,
    };
    let input = LiveInput {
        replicas: vec![
            replica(0, Some("b")),
            replica(1, Some("a")),
            replica(2, None),
        ],
        hosts: vec![host("a", 0), host("b", 1)],
        zones: 2,
        services: vec![],
        counts: vec![],
        rollback_possible: vec![],
    };
    let g = input.graph(&encoding);
    let f = hale_envs::encoding::NODE_FEATURES;
    assert_eq!(g.nodes.len(), (2 + 2 + 3 + 3) * f);
    // Kinds in order: zone, zone, host, host, service × 3, replica × 3.
    let kinds: Vec<usize> = g
        .nodes
        .chunks(f)
        .map(|row| (0..4).find(|&k| row[k] == 1.0).unwrap())
        .collect();
    assert_eq!(kinds, [0, 0, 1, 1, 2, 2, 2, 3, 3, 3]);
    // Contains ×2, calls ×2, then owns (+ runs where placed) per replica.
    assert_eq!(
        g.links,
        [
            [0, 2],
            [1, 3],
            [4, 5],
            [5, 6],
            [4, 7],
            [3, 7],
            [5, 8],
            [2, 8],
            [6, 9]
        ]
    );
    assert_eq!(g.edges.len(), 9 * hale_envs::encoding::EDGE_FEATURES);
}
