//! An env's reward weights ([`hale_envs::reward_weights`]) weigh the reward and change
//! nothing else: with each weight changed, the same seed and actions give the same
//! observations, masks and episode ends, and a different reward somewhere.

use hale_envs::{
    AgentMap, Value, make, make_parallel, parallel_registry, registry, reward_weights,
};
use hale_sim::rng::Stream;
use serde_json::{Value as Json, json};

/// A short episode's config for each env where `field` is in play.
fn small(id: &str, field: &str) -> Json {
    match id {
        "Scaling-v0" if field == "slo_minute_price" => {
            json!({"scenario": "three-tier", "episode_s": 900, "reward": "dollars"})
        }
        "Scaling-v0" => json!({"scenario": "three-tier", "episode_s": 900}),
        "Healing-v0" => json!({"scenario": "three-tier", "episode_s": 900, "fault_mix": true}),
        "Security-v0" => json!({"scenario": "microservices-20", "max_steps": 40}),
        "Cost-v0" => json!({"episode_s": 1800, "spot_notice_s": 30}),
        "CloudOps-v0" => {
            json!({"max_steps": 30, "agents": ["scaler", "healer", "defender", "optimiser"]})
        }
        _ => json!({}),
    }
}

fn with(config: &Json, field: &str, value: f64) -> Json {
    let mut c = config.clone();
    c[field] = json!(value);
    c
}

/// Observations, masks and ends (each as its debug text) and rewards over 60 steps of
/// actions drawn within the mask.
fn play(id: &str, config: &Json) -> (Vec<String>, Vec<f64>) {
    let (mut seen, mut rewards) = (vec![], vec![]);
    let mut rng = Stream::from_key(5);
    if registry().iter().any(|s| s.id == id) {
        let mut e = make(id, config).unwrap();
        let (obs, _) = e.reset(Some(3), None).unwrap();
        seen.push(format!("{obs:?}"));
        for _ in 0..60 {
            let mask = e.action_mask().map(<[bool]>::to_vec);
            seen.push(format!("{mask:?}"));
            let a = e.action_space().sample(&mut rng, mask.as_deref());
            let s = e.step(&a).unwrap();
            seen.push(format!("{:?} {} {}", s.obs, s.terminated, s.truncated));
            rewards.push(s.reward);
            if s.terminated || s.truncated {
                e.reset(None, None).unwrap();
            }
        }
    } else {
        let mut e = make_parallel(id, config).unwrap();
        let (obs, _) = e.reset(Some(3), None).unwrap();
        seen.push(format!("{obs:?}"));
        for _ in 0..60 {
            let agents = e.agents().to_vec();
            if agents.is_empty() {
                e.reset(None, None).unwrap();
                continue;
            }
            let mut actions = AgentMap::<Value>::new();
            for agent in &agents {
                let mask = e.action_mask(agent).map(<[bool]>::to_vec);
                seen.push(format!("{mask:?}"));
                let space = e.action_space(agent).unwrap().clone();
                actions.insert(agent.clone(), space.sample(&mut rng, mask.as_deref()));
            }
            let s = e.step(&actions).unwrap();
            seen.push(format!(
                "{:?} {:?} {:?}",
                s.obs, s.terminations, s.truncations
            ));
            rewards.extend(s.rewards.values());
        }
    }
    (seen, rewards)
}

#[test]
fn reward_weights_change_the_reward_and_nothing_else() {
    let ids = registry()
        .iter()
        .map(|s| s.id)
        .chain(parallel_registry().iter().map(|s| s.id));
    let mut checked = 0;
    for id in ids {
        for field in reward_weights(id) {
            let config = small(id, field);
            let (seen, rewards) = play(id, &config);
            let (seen2, rewards2) = play(id, &with(&config, field, 3.7));
            assert!(seen == seen2, "{id}: {field} changed more than the reward");
            assert_ne!(rewards, rewards2, "{id}: {field} changed nothing");
            checked += 1;
        }
    }
    assert_eq!(checked, 4 + 3 + 2 + 1 + 5);
    assert!(reward_weights("CartPole-v1").is_empty());
    assert!(reward_weights("No-such-v0").is_empty());
}
