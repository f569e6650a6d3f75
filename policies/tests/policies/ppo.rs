//! PPO runs a few iterations on CartPole-v1 and Scaling-v0, deterministically.

use burn::prelude::*;
use hale_envs::{AutoReset, VectorEnv};
use hale_policies::learn::ppo::{Ppo, PpoConfig};
use hale_policies::nets::to_vec;
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
    let w = to_vec(run.model().logits(Tensor::ones([1, d], &device())));
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
    assert!(e.contains("num_minibatches"), "{e}");
    let e = toml::from_str::<PpoConfig>("learning_rat = 0.1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("learning_rat"), "{e}");
}
