//! The GNN on the environments' real resource graphs: action layouts line up with the
//! action spaces, and a training step flows gradients through message passing.

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use hale_envs::{Space, Value, make};
use hale_policies::gnn::{GnnActorCritic, GraphBatch, healing_layout, scaling_layout};
use hale_policies::heads::MASKED_LOGIT;
use hale_policies::tensors::seeded;
use hale_policies::tensors::to_vec;
use serde_json::json;

fn graph_of(obs: Value) -> hale_envs::GraphValue {
    match obs {
        Value::Graph(g) => g,
        other => panic!("{other:?}"),
    }
}

fn node_dim(space: &Space) -> usize {
    match space {
        Space::Graph { node_features, .. } => *node_features,
        other => panic!("{other:?}"),
    }
}

#[test]
fn healing_layout_gives_every_allowed_action_a_node_score() {
    let config = json!({"observation": "graph"});
    let mut env = make("Healing-v0", &config).unwrap();
    let Space::Discrete { n } = *env.action_space() else {
        panic!()
    };
    let d = node_dim(env.observation_space());
    let device = Device::flex();
    // Built under the backend-RNG lock: unlocked, this draw would race the PPO tests'
    // seeded ones in this binary and change their weights.
    let net = seeded(&device, 1, |dev| GnnActorCritic::new(d, 32, 2, 2, 1, dev));
    let mut graphs = Vec::new();
    let mut masks = Vec::new();
    for seed in 0..3 {
        let (obs, _) = env.reset(Some(seed), None).unwrap();
        let mut obs = obs;
        // A few steps in, so faults have struck and the graphs differ.
        for _ in 0..(5 * seed) {
            obs = env.step(&Value::Discrete(0)).unwrap().obs;
        }
        masks.push(env.action_mask().unwrap().to_vec());
        graphs.push(graph_of(obs));
    }
    let refs: Vec<_> = graphs.iter().collect();
    let batch = GraphBatch::new(&refs, d).unwrap();
    // Slots as the env's (default) config has them; the layout pads the empty ones.
    let cfg = hale_envs::HealingConfig::default();
    let layout = healing_layout(&batch, cfg.max_replicas, 3, cfg.max_hosts);
    assert_eq!(layout.actions, n as usize);
    let (logits, values) = net.forward(&batch, &layout, MASKED_LOGIT, &device);
    assert_eq!(logits.dims(), [3, n as usize]);
    assert_eq!(values.dims(), [3]);
    let logits = to_vec(logits);
    for (g, mask) in masks.iter().enumerate() {
        for (a, &ok) in mask.iter().enumerate() {
            if ok {
                assert_ne!(
                    logits[g * n as usize + a],
                    MASKED_LOGIT,
                    "graph {g}: allowed action {a} has no node behind it"
                );
            }
        }
    }
}

#[test]
fn scaling_gnn_trains_through_message_passing() {
    let config = json!({"observation": "graph", "action": "target", "fidelity": "fluid"});
    let mut env = make("Scaling-v0", &config).unwrap();
    let Space::MultiDiscrete { nvec } = env.action_space().clone() else {
        panic!()
    };
    let d = node_dim(env.observation_space());
    let (obs, _) = env.reset(Some(1), None).unwrap();
    let g = graph_of(obs);
    let device = Device::flex().autodiff();
    let mut net = seeded(&device, 1, |dev| {
        GnnActorCritic::new(d, 32, 2, nvec[0] as usize, 1, dev)
    });
    let batch = GraphBatch::new(&[&g, &g], d).unwrap();
    let layout = scaling_layout(&batch, nvec.len(), nvec[0] as usize).unwrap();
    assert_eq!(layout.actions, nvec.iter().sum::<u64>() as usize);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..20 {
        // Push the value of both graphs towards 1.
        let (_, v) = net.forward(&batch, &layout, MASKED_LOGIT, &device);
        let loss = (v - 1.0).square().mean();
        losses.push(to_vec(loss.clone().detach())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-2, net, grads);
    }
    assert!(losses[19] < 0.1 * losses[0], "{losses:?}");
    assert!(scaling_layout(&batch, nvec.len() + 1, 20).is_err());
}

#[test]
fn security_layout_scores_every_action_of_the_cloud_defender() {
    let config = json!({"scenario": "microservices-20", "observation": "graph"});
    let mut env = make("Security-v0", &config).unwrap();
    let Space::Discrete { n } = *env.action_space() else {
        panic!()
    };
    let d = node_dim(env.observation_space());
    let spec =
        hale_policies::network::LayoutSpec::for_env("Security-v0", &config, env.action_space())
            .unwrap();
    assert_eq!(spec.actions(), n as usize);
    let device = Device::flex();
    let net = seeded(&device, 2, |dev| {
        GnnActorCritic::new(d, 32, 2, spec.node_outputs(), spec.graph_outputs(), dev)
    });
    let mut graphs = Vec::new();
    for seed in 0..2 {
        let (mut obs, _) = env.reset(Some(seed), None).unwrap();
        for _ in 0..(10 * seed) {
            obs = env.step(&Value::Discrete(0)).unwrap().obs;
        }
        graphs.push(graph_of(obs));
    }
    let refs: Vec<_> = graphs.iter().collect();
    let batch = GraphBatch::new(&refs, d).unwrap();
    let layout = spec.build(&batch).unwrap();
    let (logits, values) = net.forward(&batch, &layout, MASKED_LOGIT, &device);
    assert_eq!(logits.dims(), [2, n as usize]);
    assert_eq!(values.dims(), [2]);
    // Every slot has its node: no action is left at the pad score, and no two
    // actions of a graph read the same score.
    let logits = to_vec(logits);
    assert!(logits.iter().all(|&l| l != MASKED_LOGIT && l.is_finite()));
    for g in 0..2 {
        let mut seen = layout.index[g * n as usize..(g + 1) * n as usize].to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n as usize, "graph {g}: an index used twice");
    }
    // CAGE 2 has no graph: a GNN is refused there, naming why.
    let e = hale_policies::network::LayoutSpec::for_env(
        "Security-v0",
        &json!({}),
        &Space::Discrete { n: 145 },
    )
    .unwrap_err();
    assert!(e.to_string().contains("cloud mode"), "{e}");
}
