//! Environment speed: CartPole-v1 and Scaling-v0 (fluid), single and vectorised;
//! Security-v0 (CAGE 2) single, on one core; CloudOps-v0 (three and four agents) × 64.
//!
//! `cargo bench -p hale-benches --bench envs`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hale_envs::{AgentMap, AutoReset, Env, ObsSlot, ParallelVectorEnv, Value, VectorEnv, make};
use serde_json::{Value as Json, json};
use std::hint::black_box;

/// Steps one env `n` times with alternating actions, resetting at episode ends.
fn single(env: &mut dyn Env, actions: &[Value], n: usize) {
    env.reset(Some(0), None).unwrap();
    let mut obs = vec![0.0f32; env.observation_space().flat_dim().unwrap()];
    for i in 0..n {
        let s = env
            .step_into(&actions[i % actions.len()], ObsSlot::Flat(&mut obs))
            .unwrap();
        if s.terminated || s.truncated {
            env.reset(None, None).unwrap();
        }
    }
    black_box(obs);
}

fn vector(v: &mut VectorEnv, actions: &[Value], steps: usize) {
    rayon::scope(|_| {
        for _ in 0..steps {
            v.step(actions).unwrap();
        }
    });
    black_box(&v.obs);
}

fn cartpole(c: &mut Criterion) {
    let mut g = c.benchmark_group("CartPole-v1");
    let actions = [
        Value::Discrete(0),
        Value::Discrete(1),
        Value::Discrete(1),
        Value::Discrete(0),
    ];
    g.throughput(Throughput::Elements(100_000));
    let mut env = make("CartPole-v1", &Json::Null).unwrap();
    g.bench_function("single_100k_steps", |b| {
        b.iter(|| single(env.as_mut(), &actions, 100_000))
    });
    let mut v = VectorEnv::make("CartPole-v1", &Json::Null, 64, AutoReset::NextStep).unwrap();
    v.reset(Some(0)).unwrap();
    let batch: Vec<Value> = (0..64).map(|i| actions[i % 4].clone()).collect();
    g.throughput(Throughput::Elements(64 * 2_000));
    g.bench_function("vector64_2k_steps", |b| {
        b.iter(|| vector(&mut v, &batch, 2_000))
    });
    g.finish();
}

fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("Scaling-v0");
    g.sample_size(20);
    let config = json!({"fidelity": "fluid", "fluid_tick_s": 30});
    let hold = Value::MultiDiscrete(vec![2; 20]);
    let mut env = make("Scaling-v0", &config).unwrap();
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("fluid_single_1k_steps", |b| {
        b.iter(|| single(env.as_mut(), std::slice::from_ref(&hold), 1_000))
    });
    let mut v = VectorEnv::make("Scaling-v0", &config, 64, AutoReset::NextStep).unwrap();
    v.reset(Some(0)).unwrap();
    let batch = vec![hold; 64];
    g.throughput(Throughput::Elements(64 * 50));
    g.bench_function("fluid_vector64_50_steps", |b| {
        b.iter(|| vector(&mut v, &batch, 50))
    });
    g.finish();
}

/// Security-v0 in CAGE 2 mode, one env on one thread (the 740 k steps/s is ten
/// times mini-CAGE's 74 k): a defender that monitors, analyses, removes and restores.
fn security(c: &mut Criterion) {
    let mut g = c.benchmark_group("Security-v0");
    let actions: Vec<Value> = [1, 1, 2 + 3, 1, 15 + 2, 1, 132 + 7, 1]
        .into_iter()
        .map(Value::Discrete)
        .collect();
    for red in ["b_line", "meander"] {
        let mut env = make("Security-v0", &json!({ "red": red })).unwrap();
        g.throughput(Throughput::Elements(100_000));
        g.bench_function(format!("cage2_{red}_single_100k_steps"), |b| {
            b.iter(|| single(env.as_mut(), &actions, 100_000))
        });
    }
    g.finish();
}

/// CloudOps-v0 with its three agents (scaler, healer, defender against B_line) on
/// microservices-20, fluid, 64 envs: each step is one joint step of every sub-env
/// (the scaler holds, the healer and the defender do nothing, so the cloud and the
/// attacker are what is measured).
fn cloudops(c: &mut Criterion) {
    let mut g = c.benchmark_group("CloudOps-v0");
    g.sample_size(10);
    let mut v = ParallelVectorEnv::make("CloudOps-v0", &Json::Null, 64).unwrap();
    v.reset(Some(0)).unwrap();
    let joint: AgentMap<Value> = [
        ("scaler".to_string(), Value::MultiDiscrete(vec![2; 20])),
        ("healer".to_string(), Value::Discrete(0)),
        ("defender".to_string(), Value::Discrete(0)),
    ]
    .into_iter()
    .collect();
    let batch = vec![joint; 64];
    g.throughput(Throughput::Elements(64 * 50));
    g.bench_function("three_agents_vector64_50_steps", |b| {
        b.iter(|| {
            rayon::scope(|_| {
                for _ in 0..50 {
                    v.step(&batch).unwrap();
                }
            });
            black_box(&v.obs);
        })
    });
    // The four agents: the optimiser too, on Cost-v0's cloud (spot reclaims, working
    // sets), keeping on demand, consolidating nothing, requests at the scenario's.
    let config = json!({"agents": ["scaler", "healer", "defender", "optimiser"]});
    let mut v = ParallelVectorEnv::make("CloudOps-v0", &config, 64).unwrap();
    v.reset(Some(0)).unwrap();
    let hold = hale_envs::CostLayout::from_config(&json!({})).unwrap();
    let mut joint = batch[0].clone();
    joint.insert(
        "optimiser".to_string(),
        Value::MultiDiscrete(hold.action(false, None)),
    );
    let batch = vec![joint; 64];
    g.bench_function("four_agents_vector64_50_steps", |b| {
        b.iter(|| {
            rayon::scope(|_| {
                for _ in 0..50 {
                    v.step(&batch).unwrap();
                }
            });
            black_box(&v.obs);
        })
    });
    g.finish();
}

criterion_group!(benches, cartpole, scaling, security, cloudops);
criterion_main!(benches);
