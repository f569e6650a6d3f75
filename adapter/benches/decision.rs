//! Decision latency: from a whole observation to the guarded actions, with no network
//! in it (what `Adapter::decide` does each step), per policy kind:
//!
//! - `hpa`: the rule-based baseline on Scaling-v0 (three-tier);
//! - `mlp`: an MLP bundle (64×64, untrained weights: latency does not depend on
//!   them) on Scaling-v0 (three-tier), with its scores for the explanation;
//! - `gnn`: a GNN bundle (hidden 32, two rounds, untrained) reading Scaling-v0's
//!   resource graph of microservices-20 at two sizes (the fewest replicas per
//!   service that give 100 nodes or more, and the most the action space allows), its
//!   scores, and the guard's verdicts on the 20 scale actions. The adapter does not yet build
//!   live graphs, so this is the policy and guard part of the path;
//! - `healing-kubelet` and `healing-mlp`: Healing-v0 (three-tier, 16 replica and 8
//!   host slots) from 16 live replicas on 4 nodes, one of them crashed, to the guarded
//!   remedy with its explanation (`Adapter::decide` on the live input); the MLP is 64×64 and
//!   untrained over 44 actions;
//! - `healing-gnn-live`: a GNN bundle (hidden 32, two rounds) on Healing-v0, with
//!   the resource graph built from the live input each call: 91 replicas on 4 nodes
//!   in 2 zones, 100 nodes in all. This is the adapter's whole path for a graph
//!   policy, graph building included.
//!
//! Criterion reports means; the p50/p99 lines come from 2000 timed calls each,
//! printed before criterion's runs.
//!
//! `cargo bench -p hale-adapter --bench decision`

use burn::prelude::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use hale_adapter::action::Action;
use hale_adapter::config::AdapterConfig;
use hale_adapter::decide::Input;
use hale_adapter::guard::{Guard, GuardConfig};
use hale_adapter::live::{LiveHost, LiveInput, LiveReplica};
use hale_adapter::observe::{Observation, Replicas};
use hale_adapter::run::Adapter;
use hale_envs::Value;
use hale_envs::encoding::ServiceReading;
use hale_policies::Policy;
use hale_policies::bundle::{self, Bundle, BundleSpec};
use hale_policies::network::{Encoder, GnnSpec, LayoutSpec, Network};
use serde_json::json;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

fn scaling_config() -> serde_json::Value {
    json!({"scenario": "three-tier", "action": "target", "control_interval_s": 15.0})
}

/// An untrained bundle for `env_id` with `config`, written to `dir`.
fn bundle(dir: &Path, env_id: &str, config: &serde_json::Value, encoder: Encoder) {
    let env = hale_envs::make(env_id, config).unwrap();
    let heads: Vec<usize> = match env.action_space() {
        hale_envs::Space::Discrete { n } => vec![*n as usize],
        hale_envs::Space::MultiDiscrete { nvec } => nvec.iter().map(|&n| n as usize).collect(),
        other => panic!("{other:?}"),
    };
    let obs_dim = env.observation_space().flat_dim().unwrap_or(0);
    let hidden = vec![64, 64];
    let network = hale_policies::tensors::seeded(&Device::flex(), 1, |d| {
        Network::new(&encoder, obs_dim, heads.iter().sum(), &hidden, d)
    });
    let spec = BundleSpec {
        format_version: bundle::FORMAT_VERSION,
        env_id: env_id.into(),
        env_config: config.clone(),
        observation_space: env.observation_space().clone(),
        action_space: env.action_space().clone(),
        obs_dim,
        heads,
        hidden,
        encoder,
        algorithm: "ppo".into(),
        hyperparameters: json!({}),
        obs_normalization: None,
        git_revision: None,
        seed: 0,
        weights_sha256: String::new(),
    };
    bundle::save(dir, &network, spec).unwrap();
}

/// An adapter on a dry-run three-tier target whose Prometheus is never asked; for
/// Healing-v0 with `healing`.
fn adapter(policy: &str, audit: &Path, healing: bool) -> Adapter {
    let (env, extra) = if healing {
        (
            "env = \"Healing-v0\"\n[env_config]\nscenario = \"three-tier\"\ncontrol_interval_s = 10.0",
            "[observation.replica_queries]\nmemory_fraction = \"m\"\nmean_latency_ms = \"l\"\nerror_rate = \"e\"",
        )
    } else {
        (
            "env = \"Scaling-v0\"\n[env_config]\nscenario = \"three-tier\"\naction = \"target\"\ncontrol_interval_s = 15.0",
            "",
        )
    };
    let text = format!(
        r#"
policy = "{policy}"
mode = "auto"
audit_log = "{}"
{env}
[target]
kind = "dry-run"
services = ["front", "api", "db"]
initial_replicas = 2
[observation]
prometheus = "http://127.0.0.1:9"
[observation.queries]
request_rate = "r"
p50_ms = "a"
p95_ms = "b"
p99_ms = "c"
error_rate = "e"
cpu_utilization = "u"
{extra}
"#,
        audit.display()
    );
    let cfg: AdapterConfig = toml::from_str(&text).unwrap();
    Adapter::new(&cfg).unwrap()
}

fn scaling_observation() -> (Observation, Vec<Option<Replicas>>) {
    let env = hale_envs::Scaling::new(&scaling_config()).unwrap();
    let encoding = env.observation_encoding();
    let readings: Vec<ServiceReading> = (0..3)
        .map(|i| ServiceReading {
            request_rate: 40.0 + 10.0 * i as f64,
            p50_ms: 20.0,
            p95_ms: 80.0,
            p99_ms: 150.0,
            error_rate: 0.01,
            cpu_utilization: 0.9,
            ready: 2,
            booting: 0,
            desired: 2,
        })
        .collect();
    let features = encoding.encode(&readings).unwrap();
    let replicas = vec![
        Some(Replicas {
            ready: 2,
            booting: 0,
            desired: 2
        });
        3
    ];
    (
        Observation {
            features,
            readings,
            missing: vec![],
            oldest_sample_s: 1.0,
        },
        replicas,
    )
}

/// p50 and p99 of `f` over 2000 calls, in microseconds.
fn healing_input(replicas: usize) -> LiveInput {
    use hale_envs::encoding::{HostReading, ReplicaReading, ReplicaState};
    let replicas = (0..replicas)
        .map(|k| LiveReplica {
            name: format!("replica-{k}"),
            node: Some(format!("node-{}", k % 4)),
            reading: ReplicaReading {
                service: k % 3,
                state: if k == 4 {
                    ReplicaState::Crashed
                } else {
                    ReplicaState::Ready
                },
                probe_failures: 0,
                restarts: 1,
                memory_fraction: 0.4,
                mean_latency_ms: 12.0,
                error_rate: 0.0,
                host_up: true,
            },
        })
        .collect();
    let reading = ServiceReading {
        request_rate: 300.0,
        p50_ms: 10.0,
        p95_ms: 40.0,
        p99_ms: 80.0,
        error_rate: 0.001,
        cpu_utilization: 0.5,
        ready: 5,
        booting: 0,
        desired: 5,
    };
    LiveInput {
        replicas,
        hosts: (0..4)
            .map(|h| LiveHost {
                name: format!("node-{h}"),
                zone: h % 2,
                reading: HostReading {
                    up: true,
                    cordoned: false,
                    cpu_allocation: 0.5,
                },
                memory_allocation: 0.4,
            })
            .collect(),
        zones: 2,
        services: vec![reading; 3],
        counts: vec![
            Replicas {
                ready: 5,
                booting: 0,
                desired: 5,
            };
            3
        ],
        rollback_possible: vec![true, false, false],
    }
}

fn percentiles<T>(mut f: impl FnMut() -> T) -> (f64, f64) {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for _ in 0..200 {
        black_box(f());
    }
    for _ in 0..2000 {
        let t = Instant::now();
        black_box(f());
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    (
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
    )
}

fn decision(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let (observation, replicas) = scaling_observation();
    let services = Input::Services {
        observation,
        replicas,
        cpu: Vec::new(),
    };

    let mlp_dir = tmp.path().join("mlp");
    bundle(&mlp_dir, "Scaling-v0", &scaling_config(), Encoder::Mlp);
    let mut group = c.benchmark_group("decision");
    for (name, policy) in [
        ("hpa", "hpa".to_string()),
        ("mlp", mlp_dir.display().to_string()),
    ] {
        let mut a = adapter(&policy, &tmp.path().join(format!("{name}.jsonl")), false);
        let (p50, p99) = percentiles(|| {
            black_box(a.decide(&services, 0.0).unwrap());
        });
        println!("decision/{name}: p50 {p50:.1} µs, p99 {p99:.1} µs");
        group.bench_function(name, |b| {
            b.iter(|| black_box(a.decide(black_box(&services), 0.0).unwrap()))
        });
    }

    // Healing-v0: 16 replicas (front, api, db in turn) on 4 nodes; one api replica
    // has crashed.
    let healing_cfg = json!({"scenario": "three-tier", "control_interval_s": 10.0});
    let healing_mlp = tmp.path().join("healing-mlp");
    bundle(&healing_mlp, "Healing-v0", &healing_cfg, Encoder::Mlp);
    let input = Input::Live(healing_input(16));
    for (name, policy) in [
        ("healing-kubelet", "kubelet".to_string()),
        ("healing-mlp", healing_mlp.display().to_string()),
    ] {
        let mut a = adapter(&policy, &tmp.path().join(format!("{name}.jsonl")), true);
        let mut now = 0.0;
        let mut decide = || {
            now += 10.0;
            black_box(a.decide(black_box(&input), now).unwrap())
        };
        let (p50, p99) = percentiles(&mut decide);
        println!("decision/{name}: p50 {p50:.1} µs, p99 {p99:.1} µs");
        group.bench_function(name, |b| b.iter(&mut decide));
    }

    // The graph policy on the live path: Healing-v0's graph built from 91 replicas,
    // 4 nodes, 2 zones and 3 services (100 nodes) at each call.
    let gnn_cfg =
        json!({"scenario": "three-tier", "control_interval_s": 10.0, "observation": "graph"});
    let healing_gnn = tmp.path().join("healing-gnn");
    {
        let env = hale_envs::make("Healing-v0", &gnn_cfg).unwrap();
        let hale_envs::Space::Graph { node_features, .. } = env.observation_space().clone() else {
            panic!("graph observations")
        };
        let layout = LayoutSpec::for_env("Healing-v0", &gnn_cfg, env.action_space()).unwrap();
        bundle(
            &healing_gnn,
            "Healing-v0",
            &gnn_cfg,
            Encoder::Gnn(GnnSpec {
                node_dim: node_features,
                hidden: 32,
                layers: 2,
                layout,
            }),
        );
    }
    let big = Input::Live(healing_input(91));
    let mut a = adapter(
        &healing_gnn.display().to_string(),
        &tmp.path().join("healing-gnn.jsonl"),
        true,
    );
    let mut now = 0.0;
    let mut decide = || {
        now += 10.0;
        black_box(a.decide(black_box(&big), now).unwrap())
    };
    let (p50, p99) = percentiles(&mut decide);
    println!(
        "decision/healing-gnn-live (100-node graph built each call): p50 {p50:.1} µs, p99 {p99:.1} µs"
    );
    group.bench_function("healing-gnn-live-100-nodes", |b| b.iter(&mut decide));

    // The graph policy: Scaling-v0 on microservices-20 read as a resource graph
    // (zones, hosts, services, replicas), scaled up until it has at least 100 nodes.
    let graph_cfg = json!({"scenario": "microservices-20", "action": "target",
        "control_interval_s": 15.0, "observation": "graph"});
    let mut env = hale_envs::make("Scaling-v0", &graph_cfg).unwrap();
    let hale_envs::Space::Graph { node_features, .. } = env.observation_space().clone() else {
        panic!("Scaling-v0 with observation = graph gives graphs")
    };
    let hale_envs::Space::MultiDiscrete { nvec } = env.action_space().clone() else {
        panic!("Scaling-v0 acts per service")
    };
    let nodes_of = |g: &Value| match g {
        Value::Graph(g) => g.nodes.len() / node_features,
        _ => 0,
    };
    // Two sizes: the first replica count per service that gives at least 100
    // nodes, and the most replicas the action space allows.
    let mut graphs = Vec::new();
    for k in 1..nvec[0] as i64 {
        env.reset(Some(1), None).unwrap();
        let g = env
            .step(&Value::MultiDiscrete(vec![k; nvec.len()]))
            .unwrap()
            .obs;
        if nodes_of(&g) >= 100 {
            graphs.push(g);
            break;
        }
    }
    env.reset(Some(1), None).unwrap();
    let most = Value::MultiDiscrete(nvec.iter().map(|&n| n as i64 - 1).collect());
    graphs.push(env.step(&most).unwrap().obs);
    assert!(nodes_of(&graphs[0]) >= 100, "no graph of 100 nodes");
    let layout = LayoutSpec::for_env("Scaling-v0", &graph_cfg, env.action_space()).unwrap();
    let gnn_dir = tmp.path().join("gnn");
    bundle(
        &gnn_dir,
        "Scaling-v0",
        &graph_cfg,
        Encoder::Gnn(GnnSpec {
            node_dim: node_features,
            hidden: 32,
            layers: 2,
            layout,
        }),
    );
    let mut policy = Bundle::load(&gnn_dir, &Device::flex())
        .unwrap()
        .into_policy("gnn");
    let guard = Guard::new(GuardConfig::default()).unwrap();
    for graph in &graphs {
        let nodes = nodes_of(graph);
        let mut decide = || {
            let (Value::MultiDiscrete(choice), scores) = policy.act_explained(graph, None).unwrap()
            else {
                panic!("one choice per service")
            };
            let verdicts: Vec<_> = choice
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let scale = Action::Scale {
                        namespace: "default".into(),
                        service: format!("svc-{i}"),
                        replicas: 1 + c as u32,
                    };
                    guard.check(&scale, Some(2), 0.0)
                })
                .collect();
            (scores, verdicts)
        };
        let (p50, p99) = percentiles(&mut decide);
        println!(
            "decision/gnn ({nodes}-node graph, {} services): p50 {p50:.1} µs, p99 {p99:.1} µs",
            nvec.len()
        );
        group.bench_function(format!("gnn-{nodes}-nodes"), |b| b.iter(&mut decide));
    }
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
