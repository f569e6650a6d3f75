//! Wrappers change one thing and pass the rest through.

use hale_envs::wrappers::{EpisodeStatistics, NormalizeObservation, NormalizeReward, TimeLimit};
use hale_envs::{CartPole, Env, Value};
use serde_json::json;

fn balanced() -> Option<&'static serde_json::Value> {
    static STATE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Some(STATE.get_or_init(|| json!({"state": [0.0, 0.0, 0.0, 0.0]})))
}

#[test]
fn time_limit_truncates_and_does_not_terminate() {
    let mut env = TimeLimit::new(CartPole::default(), 3);
    env.reset(None, balanced()).unwrap();
    // Alternating pushes keep an upright pole up for three steps.
    let flags: Vec<(bool, bool)> = [1, 0, 1]
        .iter()
        .map(|&a| {
            let s = env.step(&Value::Discrete(a)).unwrap();
            (s.terminated, s.truncated)
        })
        .collect();
    assert_eq!(flags, vec![(false, false), (false, false), (false, true)]);
    // A reset starts the count again.
    env.reset(None, balanced()).unwrap();
    assert!(!env.step(&Value::Discrete(1)).unwrap().truncated);
}

#[test]
fn episode_statistics_report_return_and_length_at_the_end() {
    let mut env = EpisodeStatistics::new(TimeLimit::new(CartPole::default(), 4));
    env.reset(None, balanced()).unwrap();
    let mut last = None;
    for a in [1, 0, 1, 0] {
        let s = env.step(&Value::Discrete(a)).unwrap();
        assert_eq!(s.info.episode.is_some(), s.truncated);
        last = Some(s);
    }
    let info = last.unwrap().info;
    assert_eq!(info.episode, Some(hale_envs::EpisodeInfo { r: 4.0, l: 4 }));
    // Gymnasium's dict form.
    assert_eq!(info.to_json(), json!({"episode": {"r": 4.0, "l": 4}}));
}

#[test]
fn normalised_observations_use_saved_statistics_when_frozen() {
    let mut env = NormalizeObservation::new(CartPole::default());
    env.reset(Some(1), None).unwrap();
    for t in 0..200 {
        let s = env.step(&Value::Discrete(t % 2)).unwrap();
        if s.terminated {
            env.reset(None, None).unwrap();
        }
    }
    let stats = env.stats.clone();
    assert!(stats.count > 200.0);
    let mut frozen = NormalizeObservation::with_stats(CartPole::default(), stats.clone(), false);
    let (obs, _) = frozen.reset(None, balanced()).unwrap();
    // An all-zero state maps to -mean / std per dimension, and the stats stay put.
    for (i, o) in obs.as_box().iter().enumerate() {
        let expected = (-stats.mean[i] / (stats.var[i] + 1e-8).sqrt()) as f32;
        assert!((o - expected).abs() < 1e-5, "{i}: {o} vs {expected}");
    }
    frozen.step(&Value::Discrete(0)).unwrap();
    assert_eq!(frozen.stats, stats);
}

#[test]
fn normalised_rewards_are_scaled_by_the_return_spread() {
    let mut env = NormalizeReward::new(CartPole::default(), 0.99);
    env.reset(Some(2), None).unwrap();
    let mut rewards = vec![];
    for t in 0..50 {
        let s = env.step(&Value::Discrete(t % 2)).unwrap();
        rewards.push(s.reward);
        if s.terminated {
            env.reset(None, None).unwrap();
        }
    }
    // The discounted return grows, so its spread grows and unit rewards shrink.
    assert!(rewards.last().unwrap() < &rewards[1], "{rewards:?}");
    assert!(rewards.iter().all(|r| r.is_finite() && *r > 0.0));
}
