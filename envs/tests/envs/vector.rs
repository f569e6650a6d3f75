//! Vector envs: autoreset semantics, seeding, thread-count independence.

use hale_envs::{AutoReset, Value, VectorEnv};
use serde_json::Value as Json;

type Run = (Vec<f32>, Vec<f64>, Vec<bool>, Vec<bool>);

fn run(n: usize, mode: AutoReset, steps: usize) -> Run {
    run_env("CartPole-v1", &Json::Null, n, mode, steps)
}

fn run_env(id: &str, config: &Json, n: usize, mode: AutoReset, steps: usize) -> Run {
    let mut v = VectorEnv::make(id, config, n, mode).unwrap();
    v.reset(Some(10)).unwrap();
    let (mut obs, mut rew, mut term, mut trunc) = (vec![], vec![], vec![], vec![]);
    for t in 0..steps {
        // A fixed action pattern: among the actions the mask allows (all, without
        // one), the (t / 3 + i)-th.
        let dim = if v.masks.is_empty() {
            2
        } else {
            v.masks.len() / n
        };
        let actions: Vec<Value> = (0..n)
            .map(|i| {
                let allowed: Vec<usize> = (0..dim)
                    .filter(|&a| v.masks.is_empty() || v.masks[i * dim + a])
                    .collect();
                Value::Discrete(allowed[(t / 3 + i * 7) % allowed.len()] as i64)
            })
            .collect();
        v.step(&actions).unwrap();
        obs.extend_from_slice(&v.obs);
        rew.extend_from_slice(&v.rewards);
        term.extend_from_slice(&v.terminated);
        trunc.extend_from_slice(&v.truncated);
    }
    (obs, rew, term, trunc)
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| run(16, AutoReset::NextStep, 200));
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(|| run(16, AutoReset::NextStep, 200));
    assert_eq!(one, two);
    assert!(
        one.2.iter().any(|&t| t),
        "episodes should end in 200 steps of this pattern"
    );
}

#[test]
fn security_episodes_do_not_depend_on_the_thread_count() {
    // Both modes: the CAGE 2 game, and the simulated cloud with its attacker.
    for config in [
        serde_json::json!({"red": "mixed", "max_steps": 30}),
        serde_json::json!({"scenario": "microservices-20", "red": "mixed", "max_steps": 30}),
    ] {
        let go = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| run_env("Security-v0", &config, 6, AutoReset::NextStep, 70))
        };
        let one = go(1);
        assert_eq!(one, go(2), "{config}");
        assert!(
            one.1.iter().any(|&r| r < 0.0),
            "{config}: the attacker does harm"
        );
        assert!(one.3.iter().any(|&t| t), "{config}: episodes end");
    }
}

#[test]
fn sub_env_i_is_seeded_seed_plus_i() {
    let mut v = VectorEnv::make("CartPole-v1", &Json::Null, 3, AutoReset::NextStep).unwrap();
    v.reset(Some(10)).unwrap();
    let mut single = hale_envs::make("CartPole-v1", &Json::Null).unwrap();
    for i in 0..3 {
        let (o, _) = single.reset(Some(10 + i as u64), None).unwrap();
        assert_eq!(o.as_box(), &v.obs[i * 4..(i + 1) * 4]);
    }
}

#[test]
fn next_step_autoreset_resets_on_the_following_step() {
    let mut v = VectorEnv::make("CartPole-v1", &Json::Null, 1, AutoReset::NextStep).unwrap();
    v.reset(Some(1)).unwrap();
    let push = [Value::Discrete(1)];
    let mut t = 0;
    while !v.terminated[0] {
        v.step(&push).unwrap();
        t += 1;
        assert!(t < 100);
    }
    let last = v.obs.clone();
    v.step(&push).unwrap(); // the reset step: action ignored, reward 0, no flags
    assert_eq!(
        (v.rewards[0], v.terminated[0], v.truncated[0]),
        (0.0, false, false)
    );
    assert_ne!(v.obs, last);
    assert!(
        v.obs.iter().all(|x| x.abs() <= 0.05),
        "a fresh state: {:?}",
        v.obs
    );
}

#[test]
fn same_step_autoreset_keeps_the_final_observation() {
    let mut v = VectorEnv::make("CartPole-v1", &Json::Null, 1, AutoReset::SameStep).unwrap();
    v.reset(Some(1)).unwrap();
    let push = [Value::Discrete(1)];
    loop {
        v.step(&push).unwrap();
        if v.terminated[0] {
            break;
        }
    }
    assert_eq!(v.rewards[0], 1.0);
    assert!(
        v.final_obs[2].abs() > 0.2 || v.final_obs[0].abs() > 2.4,
        "final obs is terminal: {:?}",
        v.final_obs
    );
    assert!(
        v.obs.iter().all(|x| x.abs() <= 0.05),
        "obs is already the reset one: {:?}",
        v.obs
    );
}

#[test]
fn a_bad_action_is_an_error_naming_it() {
    let mut v = VectorEnv::make("CartPole-v1", &Json::Null, 2, AutoReset::NextStep).unwrap();
    v.reset(Some(1)).unwrap();
    let err = v
        .step(&[Value::Discrete(0), Value::Discrete(3)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "CartPole-v1: invalid action: action 3 is outside Discrete(2)"
    );
    let err = v.step(&[Value::Discrete(0)]).unwrap_err().to_string();
    assert!(err.contains("1 actions for 2 envs"), "{err}");
}

/// Graph observations go into `graphs`; the graph view steps the same simulation as
/// the matrix view (same seeds and actions, same rewards and flags), and same-step
/// autoreset keeps the episode's last graph.
#[test]
fn graph_observations_are_a_view_of_the_same_episodes() {
    let config = |obs: &str| serde_json::json!({"observation": obs, "fidelity": "fluid", "episode_s": 300.0});
    let mut g = VectorEnv::make("Healing-v0", &config("graph"), 2, AutoReset::SameStep).unwrap();
    let mut m = VectorEnv::make("Healing-v0", &config("matrix"), 2, AutoReset::SameStep).unwrap();
    assert!(g.graph_observations() && !m.graph_observations());
    assert_eq!(g.obs_dim(), 0);
    g.reset(Some(11)).unwrap();
    m.reset(Some(11)).unwrap();
    let mut ended = 0;
    for t in 0..70 {
        assert!(g.graphs.iter().all(|x| !x.nodes.is_empty()));
        assert_eq!(g.masks, m.masks, "step {t}");
        // Restart replica slot 0 now and then, where allowed; otherwise no-op.
        let actions: Vec<Value> = (0..2)
            .map(|i| {
                let restart = t % 7 == i && g.masks[g.masks.len() / 2 * i + 1];
                Value::Discrete(i64::from(restart))
            })
            .collect();
        let before = g.graphs.clone();
        g.step(&actions).unwrap();
        m.step(&actions).unwrap();
        assert_eq!(g.rewards, m.rewards, "step {t}");
        assert_eq!((&g.terminated, &g.truncated), (&m.terminated, &m.truncated));
        for (i, old) in before.iter().enumerate() {
            if g.truncated[i] || g.terminated[i] {
                ended += 1;
                assert!(!g.final_graphs[i].nodes.is_empty());
                assert_ne!(
                    &g.final_graphs[i], old,
                    "the final graph is the one the last step produced"
                );
            }
        }
    }
    assert_eq!(ended, 4, "two 30-step episodes per env in 70 steps");
}

/// Infos come per sub-env (issue 15): with episode statistics recorded, the last step
/// of each episode, and only it, carries the episode's return and length, in both
/// autoreset modes; the cloud envs' typed info is there on every step, for flat and
/// graph observations alike.
#[test]
fn infos_carry_episode_statistics_and_the_envs_own_fields() {
    for mode in [AutoReset::SameStep, AutoReset::NextStep] {
        let mut v = VectorEnv::make("CartPole-v1", &Json::Null, 2, mode).unwrap();
        v.record_episode_statistics();
        v.reset(Some(3)).unwrap();
        let (mut sum, mut len, mut episodes, mut resetting) = (0.0, 0u64, 0, false);
        for t in 0..300 {
            let a = Value::Discrete(t % 2);
            v.step(&[a.clone(), a]).unwrap();
            if resetting {
                // Next-step autoreset: this step only reset sub-env 0.
                resetting = false;
                assert_eq!(v.infos[0].episode, None);
                continue;
            }
            sum += v.rewards[0];
            len += 1;
            let done = v.terminated[0] || v.truncated[0];
            match v.infos[0].episode {
                Some(e) => {
                    assert!(done, "{mode:?} step {t}");
                    assert_eq!((e.r, e.l), (sum, len), "{mode:?} step {t}");
                    (sum, len, episodes) = (0.0, 0, episodes + 1);
                    resetting = mode == AutoReset::NextStep;
                }
                None => assert!(!done, "{mode:?} step {t}: an episode ended without totals"),
            }
        }
        assert!(episodes >= 5, "{mode:?}: {episodes} episodes");
    }
    for observation in ["matrix", "graph"] {
        let config = serde_json::json!({"scenario": "three-tier", "observation": observation, "episode_s": 300});
        let mut v = VectorEnv::make("Healing-v0", &config, 2, AutoReset::SameStep).unwrap();
        v.reset(Some(1)).unwrap();
        v.step(&[Value::Discrete(0), Value::Discrete(0)]).unwrap();
        for info in &v.infos {
            assert_eq!(info.healing.as_ref().unwrap().remedy, "no-op");
            assert!(info.cloud.as_ref().unwrap().requests > 0.0, "{observation}");
        }
    }
}
