//! Trains PPO on CartPole-v1 with the default (CleanRL) hyperparameters and prints the
//! mean return of the last 20 episodes as it goes, with wall time.
//!
//! `cargo run --release -p hale-policies --features learn --example ppo_cartpole -- [SEED] [STEPS]`

use burn::prelude::*;
use hale_envs::{AutoReset, VectorEnv};
use hale_policies::learn::Learner;
use hale_policies::learn::ppo::{Ppo, PpoConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().map_or(1, |s| s.parse().expect("seed"));
    let steps: u64 = args.next().map_or(500_000, |s| s.parse().expect("steps"));
    let cfg = PpoConfig {
        total_timesteps: steps,
        ..PpoConfig::default()
    };
    let envs = VectorEnv::make(
        "CartPole-v1",
        &serde_json::json!({}),
        cfg.num_envs,
        AutoReset::SameStep,
    )
    .unwrap();
    let mut ppo = Ppo::new(cfg, envs, Device::flex().autodiff(), seed).unwrap();
    let start = std::time::Instant::now();
    let mut recent: std::collections::VecDeque<f64> = Default::default();
    while !ppo.done() {
        let s = ppo.iterate().unwrap();
        for &r in &s.episodic_returns {
            recent.push_back(r);
            if recent.len() > 20 {
                recent.pop_front();
            }
        }
        if ppo.iteration.is_multiple_of(20) {
            let mean = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            println!(
                "step {:>7}  return(20) {mean:>6.1}  SPS {:>6.0}  v_loss {:.3} kl {:.4} clipfrac {:.3}",
                s.global_step,
                s.global_step as f64 / start.elapsed().as_secs_f64(),
                s.get("losses/value_loss").unwrap_or(f64::NAN),
                s.get("losses/approx_kl").unwrap_or(f64::NAN),
                s.get("losses/clipfrac").unwrap_or(f64::NAN)
            );
        }
    }
}
