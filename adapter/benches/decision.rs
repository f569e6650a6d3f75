//! Decision latency: from a whole observation to the guarded actions, with no network
//! in it (what `Adapter::decide` does each step), per policy kind:
//!
//! - `hpa`: the rule-based baseline on Scaling-v0 (three-tier);
//! - `mlp`: an MLP bundle (64×64, untrained weights: latency does not depend on
//!   them) on Scaling-v0 (three-tier), with its scores for the explanation;
//! - `gnn`: a GNN bundle (hidden 32, two rounds) reading a Healing-v0 graph of
//!   microservices-20 (about 100 nodes), its scores, and the guard's verdict on the
//!   restart it picks. The adapter does not yet build live graphs, so this is the
//!   policy and guard part of the path.
//!
//! Criterion reports means; the p50/p99 lines come from 2000 timed calls each,
//! printed before criterion's runs.
//!
//! `cargo bench -p hale-adapter --bench decision`

use burn::prelude::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use hale_adapter::action::Action;
use hale_adapter::config::AdapterConfig;
use hale_adapter::guard::{Guard, GuardConfig};
use hale_adapter::observe::{Observation, Replicas};
use hale_adapter::run::Adapter;
use hale_envs::Value;
use hale_envs::live::ServiceReading;
use hale_policies::Policy;
use hale_policies::bundle::{self, Bundle, BundleSpec};
use hale_policies::network::{Encoder, GnnSpec, LayoutSpec, Network};
use serde_json::json;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

fn scaling_config() -> serde_json::Value {
    json!({"scenario": "three-tier", "action": "delta", "control_interval_s": 15.0})
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
    let network = Network::new(
        &encoder,
        obs_dim,
        heads.iter().sum(),
        &hidden,
        &Device::flex(),
    );
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

/// An adapter on a dry-run three-tier target whose Prometheus is never asked.
fn adapter(policy: &str, audit: &Path) -> Adapter {
    let text = format!(
        r#"
policy = "{policy}"
env = "Scaling-v0"
mode = "auto"
audit_log = "{}"
[env_config]
scenario = "three-tier"
action = "delta"
control_interval_s = 15.0
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
"#,
        audit.display()
    );
    let cfg: AdapterConfig = toml::from_str(&text).unwrap();
    Adapter::new(&cfg).unwrap()
}

fn scaling_observation() -> (Observation, Vec<Option<Replicas>>) {
    let env = hale_envs::Scaling::new(&scaling_config()).unwrap();
    let encoding = env.live_observation();
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
    let (obs, replicas) = scaling_observation();

    let mlp_dir = tmp.path().join("mlp");
    bundle(&mlp_dir, "Scaling-v0", &scaling_config(), Encoder::Mlp);
    let mut group = c.benchmark_group("decision");
    for (name, policy) in [
        ("hpa", "hpa".to_string()),
        ("mlp", mlp_dir.display().to_string()),
    ] {
        let mut a = adapter(&policy, &tmp.path().join(format!("{name}.jsonl")));
        let (p50, p99) = percentiles(|| {
            black_box(a.decide(&obs, &replicas, 0.0).unwrap());
        });
        println!("decision/{name}: p50 {p50:.1} µs, p99 {p99:.1} µs");
        group.bench_function(name, |b| {
            b.iter(|| black_box(a.decide(black_box(&obs), &replicas, 0.0).unwrap()))
        });
    }

    // The graph policy.
    let healing = json!({"scenario": "microservices-20", "observation": "graph"});
    let env = hale_envs::make("Healing-v0", &healing).unwrap();
    let layout = LayoutSpec::for_env("Healing-v0", &healing, env.action_space()).unwrap();
    let mut env = env;
    let (graph, _) = env.reset(Some(1), None).unwrap();
    let Value::Graph(g) = &graph else {
        panic!("Healing-v0 with observation = graph gives graphs")
    };
    let hale_envs::Space::Graph { node_features, .. } = env.observation_space() else {
        panic!("a graph space")
    };
    let node_dim = *node_features;
    let nodes = g.nodes.len() / node_dim;
    let gnn_dir = tmp.path().join("gnn");
    bundle(
        &gnn_dir,
        "Healing-v0",
        &healing,
        Encoder::Gnn(GnnSpec {
            node_dim,
            hidden: 32,
            layers: 2,
            layout,
        }),
    );
    let mut policy = Bundle::load(&gnn_dir, &Device::flex())
        .unwrap()
        .into_policy("gnn");
    let guard = Guard::new(GuardConfig::default()).unwrap();
    let mask: Option<Vec<bool>> = env.action_mask().map(<[bool]>::to_vec);
    let mut decide = || {
        let action = policy.act_checked(&graph, mask.as_deref()).unwrap();
        let scores = policy.scores(&graph, mask.as_deref());
        let restart = Action::Restart {
            namespace: "default".into(),
            service: "svc".into(),
            replica: format!("{action:?}"),
        };
        black_box((scores, guard.check(&restart, None, 0.0)))
    };
    let (p50, p99) = percentiles(&mut decide);
    println!("decision/gnn ({nodes}-node graph): p50 {p50:.1} µs, p99 {p99:.1} µs");
    group.bench_function(format!("gnn-{nodes}-nodes"), |b| b.iter(&mut decide));
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
