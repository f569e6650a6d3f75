//! An environment checker in the spirit of Gymnasium's `check_env`.

use crate::env::{Env, EnvError};
use crate::space::{Space, Value};
use hale_sim::rng::Stream;
use serde_json::Value as Json;

/// Runs the checks on envs made by `make` (called twice, for determinism) and
/// returns every failure found; empty means the env conforms.
///
/// Checks: reset with a seed is reproducible; observations are in the observation
/// space; rewards are finite; actions sampled within the mask are accepted; two envs
/// given the same seed and actions produce identical trajectories, across an episode
/// boundary (`reset(None)` continues the random stream); an action outside the space is
/// an error, not a panic; `close` twice is harmless.
pub fn check_env(make: &dyn Fn() -> Result<Box<dyn Env>, EnvError>, steps: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let (mut a, mut b) = match (make(), make()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return vec![format!("make failed: {e}")],
    };
    let id = a.id().to_string();
    let mut fail = |m: String| failures.push(format!("{id}: {m}"));
    if a.observation_space() != b.observation_space() || a.action_space() != b.action_space() {
        fail("two instances disagree on their spaces".into());
    }
    let trace_a = trajectory(a.as_mut(), 123, steps);
    let trace_b = trajectory(b.as_mut(), 123, steps);
    match (&trace_a, &trace_b) {
        (Err(e), _) | (_, Err(e)) => fail(e.clone()),
        (Ok(ta), Ok(tb)) => {
            if ta != tb {
                let i = ta
                    .iter()
                    .zip(tb)
                    .position(|(x, y)| x != y)
                    .unwrap_or(ta.len().min(tb.len()));
                fail(format!(
                    "not deterministic: same seed and actions diverge at step {i}"
                ));
            }
        }
    }
    // Seeded reset is reproducible even after running.
    let first = a.reset(Some(7), None).map(|(o, _)| o);
    let again = a.reset(Some(7), None).map(|(o, _)| o);
    if first != again {
        fail("reset(seed = 7) twice gave different observations".into());
    }
    // An action outside the space is an error.
    let outside = match a.action_space() {
        Space::Discrete { n } => Some(Value::Discrete(*n as i64)),
        Space::MultiDiscrete { nvec } => Some(Value::MultiDiscrete(
            nvec.iter().map(|&n| n as i64).collect(),
        )),
        Space::Box { low, .. } => Some(Value::Box(vec![f32::NAN; low.len()])),
        Space::Graph { .. } => None,
    };
    if let Some(v) = outside {
        match a.step(&v) {
            Err(EnvError::InvalidAction { .. }) => {}
            other => fail(format!(
                "an action outside the space was not refused: {other:?}"
            )),
        }
    }
    a.close();
    a.close();
    failures
}

/// (obs, reward, terminated, truncated) per step, resetting with `None` after an
/// episode ends; errors describe the broken check.
type Trace = Vec<(Value, u64, bool, bool)>;

fn trajectory(env: &mut dyn Env, seed: u64, steps: usize) -> Result<Trace, String> {
    let mut rng = Stream::from_key(seed);
    let (obs, _) = env
        .reset(Some(seed), None)
        .map_err(|e| format!("reset failed: {e}"))?;
    if !env.observation_space().contains(&obs) {
        return Err(format!(
            "reset observation is outside the observation space: {obs:?}"
        ));
    }
    let mut trace = vec![(obs, 0, false, false)];
    for i in 0..steps {
        let mask = env.action_mask().map(<[bool]>::to_vec);
        let action = env.action_space().sample(&mut rng, mask.as_deref());
        let s = env
            .step(&action)
            .map_err(|e| format!("step {i} refused a sampled, allowed action: {e}"))?;
        if !env.observation_space().contains(&s.obs) {
            return Err(format!(
                "step {i}: observation outside the observation space"
            ));
        }
        if !s.reward.is_finite() {
            return Err(format!("step {i}: reward {} is not finite", s.reward));
        }
        let end = s.terminated || s.truncated;
        trace.push((s.obs, s.reward.to_bits(), s.terminated, s.truncated));
        if end {
            let (obs, _) = env
                .reset(None, None)
                .map_err(|e| format!("reset after an episode failed: {e}"))?;
            trace.push((obs, 0, false, false));
        }
    }
    Ok(trace)
}

/// Checks a registered env with its default configuration.
pub fn check_registered(id: &str, config: &Json, steps: usize) -> Vec<String> {
    check_env(&|| crate::make(id, config), steps)
}
