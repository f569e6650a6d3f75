//! PPO runs a few iterations on CartPole-v1 and Scaling-v0, deterministically.

use burn::prelude::*;
use hale_envs::{AutoReset, VectorEnv};
use hale_policies::learn::ppo::{Ppo, PpoConfig};
use hale_policies::learn::{LearnError, Learner};
use hale_policies::network::Observations;
use hale_policies::tensors::to_vec;
use serde_json::json;

fn device() -> Device {
    Device::flex().autodiff()
}

fn run(env: &str, config: serde_json::Value, ppo: PpoConfig, seed: u64) -> (Vec<f32>, Vec<f64>) {
    let envs = VectorEnv::make(env, &config, ppo.num_envs, AutoReset::NextStep).unwrap();
    let mut run = Ppo::new(ppo, envs, device(), seed).unwrap();
    let mut returns = Vec::new();
    while !run.done() {
        let s = run.iterate().unwrap();
        let get = |k: &str| s.get(k).unwrap();
        assert!(
            get("losses/value_loss").is_finite()
                && get("losses/policy_loss").is_finite()
                && get("losses/entropy").is_finite(),
            "{s:?}"
        );
        assert!(
            get("losses/approx_kl").is_finite() && (0.0..=1.0).contains(&get("losses/clipfrac")),
            "{s:?}"
        );
        returns.extend(s.episodic_returns);
    }
    let d = match env {
        "CartPole-v1" => 4,
        _ => 20 * 9,
    };
    let ones = vec![1.0f32; d];
    let obs = Observations::Flat {
        values: &ones,
        rows: 1,
    };
    let w = to_vec(run.network().forward(obs, &Device::flex()).unwrap().0);
    (w, returns)
}

#[test]
fn ppo_on_cartpole_is_deterministic_and_runs() {
    let cfg = PpoConfig {
        total_timesteps: 2048,
        ..PpoConfig::default()
    };
    let (w1, r1) = run("CartPole-v1", json!({}), cfg.clone(), 3);
    let (w2, r2) = run("CartPole-v1", json!({}), cfg.clone(), 3);
    assert_eq!(w1, w2, "same seed, same weights");
    assert_eq!(r1, r2);
    assert!(!r1.is_empty());
    let (w3, _) = run("CartPole-v1", json!({}), cfg, 4);
    assert_ne!(w1, w3);
}

#[test]
fn ppo_handles_multidiscrete_scaling() {
    let cfg = PpoConfig {
        total_timesteps: 2 * 2 * 16,
        num_envs: 2,
        num_steps: 16,
        num_minibatches: 2,
        update_epochs: 2,
        ..PpoConfig::default()
    };
    let (w, _) = run(
        "Scaling-v0",
        json!({"fidelity": "fluid", "episode_s": 300}),
        cfg,
        1,
    );
    assert!(w.iter().all(|v| v.is_finite()));
    assert_eq!(w.len(), 20 * 5);
}

#[test]
fn bad_configs_name_the_field() {
    let envs = VectorEnv::make("CartPole-v1", &json!({}), 4, AutoReset::NextStep).unwrap();
    let cfg = PpoConfig {
        num_minibatches: 3,
        ..PpoConfig::default()
    };
    let e = Ppo::new(cfg, envs, device(), 1).err().unwrap();
    assert!(
        matches!(&e, LearnError::Hyperparameter(h) if h.field == "num_minibatches"),
        "{e}"
    );
    let e = toml::from_str::<PpoConfig>("learning_rat = 0.1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("learning_rat"), "{e}");
}

/// PPO with the GNN over Healing-v0's resource graph: deterministic per seed whatever
/// the thread count, and its bundle acts on graphs with the trained network's logits.
#[test]
fn ppo_trains_the_gnn_on_graph_observations() {
    use hale_envs::{Value, make};
    use hale_policies::bundle::{self, Bundle, BundleSpec};
    use hale_policies::network::{Encoder, NetworkKind};
    let config = json!({"observation": "graph", "fidelity": "fluid", "episode_s": 300});
    let cfg = PpoConfig {
        total_timesteps: 2 * 2 * 32,
        num_envs: 2,
        num_steps: 32,
        // One minibatch of 64: split in two shares by the fused update.
        num_minibatches: 1,
        update_epochs: 2,
        network: NetworkKind::Gnn,
        gnn_hidden: 16,
        ..PpoConfig::default()
    };
    let mut env = make("Healing-v0", &config).unwrap();
    let (obs, _) = env.reset(Some(5), None).unwrap();
    let Value::Graph(graph) = &obs else {
        panic!("{obs:?}")
    };
    let train = |seed: u64| {
        let envs = VectorEnv::make("Healing-v0", &config, 2, AutoReset::NextStep).unwrap();
        let mut run = Ppo::new(cfg.clone(), envs, device(), seed).unwrap();
        let mut returns = Vec::new();
        while !run.done() {
            let s = run.iterate().unwrap();
            assert!(s.get("losses/value_loss").unwrap().is_finite());
            returns.extend(s.episodic_returns);
        }
        let logits = run
            .network()
            .forward(Observations::Graphs(vec![graph]), &Device::flex())
            .unwrap()
            .0;
        (run, to_vec(logits), returns)
    };
    let (run, l1, r1) = train(7);
    let (_, l2, r2) = train(7);
    assert_eq!((&l1, &r1), (&l2, &r2), "same seed, same run");
    // The fused update splits a minibatch in two shares side by side; on one thread
    // the run is the same to the bit.
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (l3, r3) = one_thread.install(|| {
        let (_, l, r) = train(7);
        (l, r)
    });
    assert_eq!((&l1, &r1), (&l3, &r3), "same seed on one thread, same run");
    assert_eq!(r1.len(), 4, "two 30-step episodes per env");
    assert_eq!(l1.len(), env.action_space().mask_len().unwrap());

    // The bundle: spec records the GNN, loading rebuilds it, greedy acts match.
    let dir = std::env::temp_dir().join(format!("hale-gnn-bundle-{}", std::process::id()));
    let spec = BundleSpec {
        format_version: bundle::FORMAT_VERSION,
        env_id: "Healing-v0".into(),
        env_config: config.clone(),
        observation_space: env.observation_space().clone(),
        action_space: env.action_space().clone(),
        obs_dim: 0,
        heads: run.heads().sizes.clone(),
        hidden: vec![],
        encoder: Encoder::Mlp,
        algorithm: "ppo".into(),
        hyperparameters: json!({}),
        obs_normalization: None,
        git_revision: None,
        seed: 7,
        weights_sha256: String::new(),
    };
    use hale_policies::learn::Learner;
    let saved = bundle::save(&dir, &run.network(), spec).unwrap();
    assert!(matches!(saved.encoder, Encoder::Gnn(ref g) if g.hidden == 16 && g.layers == 2));
    let loaded = Bundle::load(&dir, &Device::flex()).unwrap();
    loaded
        .check_fits("Healing-v0", env.observation_space(), env.action_space())
        .unwrap();
    let policy = loaded.into_policy("gnn");
    let got = policy.logits(&obs, None).unwrap();
    for (a, b) in got.iter().zip(&l1) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let act = policy.try_act(&obs, env.action_mask()).unwrap();
    assert!(env.action_space().contains(&act));
    // A flat observation is refused, not misread.
    let e = policy.logits(&Value::Box(vec![0.0; 8]), None).unwrap_err();
    assert!(e.to_string().contains("GNN"), "{e}");
    // Through the Policy trait it is an error the caller sees, naming the policy
    // (issue 15: `act` panicked).
    let mut policy = policy;
    let e = hale_policies::Policy::act(&mut policy, &Value::Box(vec![0.0; 8]), None).unwrap_err();
    assert!(e.to_string().starts_with("policy gnn: "), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn network_and_observations_must_match() {
    use hale_policies::network::NetworkKind;
    let graph = json!({"observation": "graph", "fidelity": "fluid"});
    let envs = VectorEnv::make("Healing-v0", &graph, 4, AutoReset::NextStep).unwrap();
    let e = Ppo::new(PpoConfig::default(), envs, device(), 1)
        .err()
        .unwrap();
    assert!(matches!(e, LearnError::Unfit { .. }), "{e}");
    assert!(e.to_string().contains("network = \"gnn\""), "{e}");
    let envs = VectorEnv::make("CartPole-v1", &json!({}), 4, AutoReset::NextStep).unwrap();
    let gnn = PpoConfig {
        network: NetworkKind::Gnn,
        ..PpoConfig::default()
    };
    let e = Ppo::new(gnn.clone(), envs, device(), 1).err().unwrap();
    assert!(e.to_string().contains("observation = \"graph\""), "{e}");
    // CartPole has no graph at all: the layout names the envs the GNN can drive.
    let envs = VectorEnv::make(
        "Scaling-v0",
        &json!({"fidelity": "fluid"}),
        4,
        AutoReset::NextStep,
    )
    .unwrap();
    assert!(Ppo::new(gnn, envs, device(), 1).is_err());
}
