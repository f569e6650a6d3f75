//! IPPO on CloudOps-v0: one PPO learner per agent over lockstep views of the same
//! joint envs. Same seed, same run, bit for bit, whichever thread arrives first; a
//! failing agent stops the run (with the first failure named) instead of hanging it;
//! a run with an unfit hyperparameter is refused, naming it.

use burn::prelude::*;
use hale_envs::lockstep::Lockstep;
use hale_envs::{CloudOps, ParallelEnv};
use hale_policies::learn::ippo::Ippo;
use hale_policies::learn::ppo::PpoConfig;
use hale_policies::learn::{LearnError, Learner, TrainError};
use serde_json::json;
use std::sync::Arc;

fn config() -> PpoConfig {
    PpoConfig {
        total_timesteps: 3 * 32 * 4,
        num_envs: 3,
        num_steps: 32,
        num_minibatches: 2,
        update_epochs: 2,
        hidden: vec![16],
        ..PpoConfig::default()
    }
}

fn env_config() -> serde_json::Value {
    json!({
        "agents": ["scaler", "healer", "optimiser"],
        "scaler_action": "target",
        "max_steps": 20,
    })
}

fn lock(n: usize) -> Arc<Lockstep> {
    let envs = (0..n)
        .map(|_| Box::new(CloudOps::new(&env_config()).unwrap()) as Box<dyn ParallelEnv>)
        .collect();
    Lockstep::new(envs).unwrap()
}

fn ippo(seed: u64) -> Ippo {
    Ippo::new(
        config(),
        (lock(3), &env_config()),
        Device::flex().autodiff(),
        seed,
    )
    .unwrap()
}

/// A checkpoint's files: name and bytes.
type Files = Vec<(String, Vec<u8>)>;

/// Every agent's weights and state after the whole run, and the logged returns.
fn whole_run(seed: u64) -> (Files, serde_json::Value, Vec<u64>) {
    let mut run = ippo(seed);
    let mut returns = vec![];
    while !run.done() {
        let s = run.iterate().unwrap();
        assert_eq!(s.metrics.len(), 3 * 6, "six PPO metrics per agent");
        assert!(s.metrics.iter().all(|(_, v)| v.is_finite()), "{s:?}");
        returns.extend(s.episodic_returns.iter().map(|r| r.to_bits()));
    }
    let c = run.checkpoint().unwrap();
    (c.files, c.state, returns)
}

/// Whether two checkpoints hold the same weights, byte for byte (the names of the
/// files that differ are printed: the bytes would flood the log). burn's optimiser
/// file (`optim.bin`, from runs that do not use the fused update) would be left out:
/// burn writes its per-parameter state in a hash map's order.
fn same_files(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)]) -> bool {
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b));
    let differ: Vec<&str> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| !x.0.ends_with("optim.bin") && x.1 != y.1)
        .map(|(x, _)| x.0.as_str())
        .collect();
    eprintln!("files that differ: {differ:?}");
    differ.is_empty()
}

#[test]
fn same_seed_same_run_and_agents_draw_their_own_weights() {
    let a = whole_run(7);
    let b = whole_run(7);
    assert!(
        same_files(&a.0, &b.0),
        "every agent's weights and optimiser, byte for byte"
    );
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    assert!(!a.2.is_empty(), "20-step episodes end within the run");
    let names: Vec<&str> = a.0.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "scaler.model.bpk",
            "scaler.adam.bin",
            "healer.model.bpk",
            "healer.adam.bin",
            "optimiser.model.bpk",
            "optimiser.adam.bin",
        ]
    );
    let c = whole_run(8);
    assert!(!same_files(&a.0, &c.0), "another seed, other weights");
    // The agents' sampling streams are their own, not one stream copied.
    let rngs: Vec<&serde_json::Value> = ["scaler", "healer", "optimiser"]
        .iter()
        .map(|agent| &a.1[agent]["rng"])
        .collect();
    assert!(rngs[0] != rngs[1] && rngs[1] != rngs[2], "{rngs:?}");
}

#[test]
fn a_checkpoint_restores_into_a_fresh_run_and_continues_it_exactly() {
    let mut a = ippo(3);
    a.iterate().unwrap();
    a.reset_envs(3).unwrap();
    let saved = a.checkpoint().unwrap();
    a.iterate().unwrap();
    let mut b = ippo(3);
    b.restore(&saved).unwrap();
    b.reset_envs(3).unwrap();
    b.iterate().unwrap();
    assert_eq!(b.iteration(), 2);
    assert!(same_files(
        &a.checkpoint().unwrap().files,
        &b.checkpoint().unwrap().files
    ));
}

#[test]
fn a_stopped_lockstep_fails_every_learner_instead_of_hanging() {
    let lock = lock(3);
    let mut run = Ippo::new(
        config(),
        (lock.clone(), &env_config()),
        Device::flex().autodiff(),
        1,
    )
    .unwrap();
    lock.abort("the operator pulled the plug");
    let e = run.iterate().unwrap_err();
    let TrainError::Agent { agent, .. } = &e else {
        panic!("{e}")
    };
    assert!(["scaler", "healer", "optimiser"].contains(&agent.as_str()));
    assert!(
        e.to_string().contains("the operator pulled the plug"),
        "{e}"
    );
}

#[test]
fn unfit_runs_are_refused_naming_the_field() {
    let bad = PpoConfig {
        num_envs: 2,
        ..config()
    };
    let e = Ippo::new(bad, (lock(3), &env_config()), Device::flex().autodiff(), 1)
        .err()
        .unwrap();
    assert!(matches!(e, LearnError::Unfit { .. }), "{e}");
    assert!(e.to_string().contains("num_envs"), "{e}");
    let bad = PpoConfig {
        learning_rate: f64::NAN,
        ..config()
    };
    let e = Ippo::new(bad, (lock(3), &env_config()), Device::flex().autodiff(), 1)
        .err()
        .unwrap();
    assert!(e.to_string().contains("learning_rate"), "{e}");
    // A GNN with no agent observing the graph is refused, saying how to get one.
    let bad = PpoConfig {
        network: hale_policies::network::NetworkKind::Gnn,
        ..config()
    };
    let e = Ippo::new(bad, (lock(3), &env_config()), Device::flex().autodiff(), 1)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("ippo cannot train") && e.to_string().contains("observation"),
        "{e}"
    );
}

/// MAPPO: the same learners over views that carry the global state. Each critic reads
/// the agent's observation and the state, each actor only the former, so the agent's
/// bundle (its actor, with a zero critic) acts on its own observation exactly as the
/// trained actor did on the longer one; runs are reproducible.
#[test]
fn mappo_critics_read_the_state_and_bundles_act_on_the_agents_own_view() {
    use hale_policies::network::Observations;
    use hale_policies::tensors::to_vec;
    let cfg = json!({
        "agents": ["scaler", "healer"], "attacker": "none", "max_steps": 20,
        "scaler_action": "target",
    });
    let envs = || {
        (0..3)
            .map(|_| Box::new(CloudOps::new(&cfg).unwrap()) as Box<dyn ParallelEnv>)
            .collect::<Vec<_>>()
    };
    let probe = CloudOps::new(&json!({"agents": ["scaler", "healer"]})).unwrap();
    let state_dim = probe.state_space().flat_dim().unwrap();
    let run = |seed| {
        let lock = Lockstep::with_state(envs()).unwrap();
        let mut run = Ippo::new(config(), (lock, &cfg), Device::flex().autodiff(), seed).unwrap();
        assert_eq!(run.algorithm(), "mappo");
        while !run.done() {
            run.iterate().unwrap();
        }
        run
    };
    let (a, b) = (run(5), run(5));
    assert!(same_files(
        &a.checkpoint().unwrap().files,
        &b.checkpoint().unwrap().files
    ));
    let device = Device::flex();
    for (agent, learner) in a.agents() {
        let own = probe.observation_space(agent).unwrap().flat_dim().unwrap();
        // An observation and a state to read: the training network takes both, the
        // bundle's network only the first part.
        let row: Vec<f32> = (0..own + state_dim).map(|i| (i % 7) as f32 / 7.0).collect();
        let acting = learner.network();
        let (logits, values) = acting
            .forward(
                Observations::Flat {
                    values: &row[..own],
                    rows: 1,
                },
                &device,
            )
            .unwrap();
        assert!(
            to_vec(values).iter().all(|&v| v == 0.0),
            "{agent}: the critic stays behind"
        );
        let (full, critic) = a
            .learner(agent)
            .unwrap()
            .training_network()
            .forward(
                Observations::Flat {
                    values: &row,
                    rows: 1,
                },
                &device,
            )
            .unwrap();
        assert_eq!(
            to_vec(logits),
            to_vec(full),
            "{agent}: the actor reads its own part only"
        );
        assert!(
            to_vec(critic)[0] != 0.0,
            "{agent}: the trained critic reads it all"
        );
    }
}

/// Parameter sharing: every agent ends the run with the same weights (one update on
/// all their transitions), runs are reproducible, and each agent's bundle network —
/// the shared one cut down to its own observation and actions — gives the logits of
/// its actions and the value the shared network gives on its padded view.
#[test]
fn shared_parameters_are_one_network_and_each_bundle_is_its_agents_cut() {
    use hale_envs::sharing::SharedLayout;
    use hale_policies::network::Observations;
    use hale_policies::tensors::to_vec;
    let shared = PpoConfig {
        share_parameters: true,
        ..config()
    };
    let run = |seed| {
        let mut run = Ippo::new(
            shared.clone(),
            (lock(3), &env_config()),
            Device::flex().autodiff(),
            seed,
        )
        .unwrap();
        while !run.done() {
            let s = run.iterate().unwrap();
            assert_eq!(s.metrics.len(), 3 * 6, "six PPO metrics per agent");
            assert!(s.metrics.iter().all(|(_, v)| v.is_finite()), "{s:?}");
        }
        run
    };
    let (a, b) = (run(4), run(4));
    let files = a.checkpoint().unwrap().files;
    assert!(same_files(&files, &b.checkpoint().unwrap().files));
    let models: Vec<&Vec<u8>> = files
        .iter()
        .filter(|(n, _)| n.ends_with("model.bpk"))
        .map(|(_, bytes)| bytes)
        .collect();
    assert_eq!(models.len(), 3);
    assert!(
        models.iter().all(|m| *m == models[0]),
        "one network for every agent"
    );
    assert!(
        !same_files(&files, &ippo(4).checkpoint().unwrap().files),
        "the shared network is not an independent learner's"
    );

    let probe = CloudOps::new(&env_config()).unwrap();
    let agents = probe.possible_agents().to_vec();
    let spaces: Vec<(&str, &hale_envs::Space, &hale_envs::Space)> = agents
        .iter()
        .map(|g| {
            (
                g.as_str(),
                probe.observation_space(g).unwrap(),
                probe.action_space(g).unwrap(),
            )
        })
        .collect();
    let layout = SharedLayout::new("CloudOps-v0", &spaces).unwrap();
    let device = Device::flex();
    for (k, (agent, learner)) in a.agents().into_iter().enumerate() {
        let own = probe.observation_space(agent).unwrap().flat_dim().unwrap();
        let row: Vec<f32> = (0..own).map(|i| (i % 5) as f32 / 5.0).collect();
        let mut padded = row.clone();
        padded.resize(layout.obs_dim(), 0.0);
        padded[layout.indicator(k)] = 1.0;
        let (logits, value) = learner
            .network()
            .forward(
                Observations::Flat {
                    values: &row,
                    rows: 1,
                },
                &device,
            )
            .unwrap();
        let (full, full_value) = a
            .learner(agent)
            .unwrap()
            .training_network()
            .forward(
                Observations::Flat {
                    values: &padded,
                    rows: 1,
                },
                &device,
            )
            .unwrap();
        let (logits, full) = (to_vec(logits), to_vec(full));
        let keep = layout.own_logits(probe.action_space(agent).unwrap());
        assert_eq!(logits.len(), keep.len(), "{agent}: its own actions' logits");
        assert_eq!(
            learner.heads().sizes.iter().sum::<usize>(),
            keep.len(),
            "{agent}: its own heads"
        );
        for (x, &i) in logits.iter().zip(&keep) {
            assert!(
                (x - full[i]).abs() < 1e-5,
                "{agent}: logit {i}: {x} vs {}",
                full[i]
            );
        }
        let (v, w) = (to_vec(value)[0], to_vec(full_value)[0]);
        assert!((v - w).abs() < 1e-4, "{agent}: value {v} vs {w}");
    }
}

#[test]
fn shared_parameters_are_refused_where_they_cannot_be_laid_out() {
    let shared = PpoConfig {
        share_parameters: true,
        ..config()
    };
    let envs = || {
        (0..3)
            .map(|_| Box::new(CloudOps::new(&env_config()).unwrap()) as Box<dyn ParallelEnv>)
            .collect::<Vec<_>>()
    };
    let mappo = Lockstep::with_state(envs()).unwrap();
    let e = Ippo::new(
        shared.clone(),
        (mappo, &env_config()),
        Device::flex().autodiff(),
        1,
    )
    .err()
    .unwrap();
    assert!(
        e.to_string().contains("share_parameters") && e.to_string().contains("ippo"),
        "{e}"
    );
    let gnn = PpoConfig {
        network: hale_policies::network::NetworkKind::Gnn,
        ..shared.clone()
    };
    let e = Ippo::new(gnn, (lock(3), &env_config()), Device::flex().autodiff(), 1)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("share_parameters") && e.to_string().contains("mlp"),
        "{e}"
    );
    // A single-agent run has nothing to share with.
    let envs =
        hale_envs::VectorEnv::make("CartPole-v1", &json!({}), 3, hale_envs::AutoReset::SameStep)
            .unwrap();
    let e = hale_policies::learn::ppo::Ppo::new(shared, envs, Device::flex().autodiff(), 1)
        .err()
        .unwrap();
    assert!(e.to_string().contains("share_parameters"), "{e}");
}
