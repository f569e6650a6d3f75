//! An environment checker in the spirit of Gymnasium's `check_env`.

use crate::env::{Env, EnvError, ObsSlot, StepInto};
use crate::space::{GraphValue, Space, Value};
use hale_sim::rng::Stream;
use serde_json::Value as Json;

/// Runs the checks on envs made by `make` (called twice, for determinism) and
/// returns every failure found; empty means the env conforms.
///
/// Checks: reset with a seed is reproducible; observations are in the observation
/// space; rewards are finite; actions sampled within the mask are accepted; two envs
/// given the same seed and actions produce identical trajectories, across an episode
/// boundary (`reset(None)` continues the random stream); `step_into` and
/// `reset_into` write the observation `step` and `reset` return, with the same
/// reward, flags and info; an action outside the space is an error, not a panic;
/// `close` twice is harmless.
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
    // step_into writes what step returns.
    match (make(), make()) {
        (Ok(mut c), Ok(mut d)) => {
            if let Err(e) = step_into_matches_step(c.as_mut(), d.as_mut(), 123, steps) {
                fail(e);
            }
        }
        (Err(e), _) | (_, Err(e)) => fail(format!("make failed: {e}")),
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

/// Steps `by_value` with `step` and `in_place` with `step_into` (same seed, same
/// sampled actions, resets at episode ends) and compares what they give.
fn step_into_matches_step(
    by_value: &mut dyn Env,
    in_place: &mut dyn Env,
    seed: u64,
    steps: usize,
) -> Result<(), String> {
    let space = by_value.observation_space().clone();
    let mut row = vec![0.0f32; space.flat_dim().unwrap_or(0)];
    let mut graph = GraphValue::default();
    let mut written = |env: &mut dyn Env, seed: Option<u64>, action: Option<&Value>| {
        let slot = match space {
            Space::Graph { .. } => ObsSlot::Graph(&mut graph),
            _ => ObsSlot::Flat(&mut row),
        };
        let out = match action {
            None => env.reset_into(seed, slot).map(|info| StepInto {
                info,
                ..StepInto::default()
            }),
            Some(a) => env.step_into(a, slot),
        };
        let obs = match space {
            Space::Graph { .. } => Value::Graph(graph.clone()),
            _ => Value::Box(row.clone()),
        };
        out.map(|o| (obs, o))
    };
    let flat = |v: Value| match (v, &space) {
        (Value::Graph(g), _) => Value::Graph(g),
        (v, Space::Box { .. }) => v,
        (Value::Discrete(a), _) => Value::Box(vec![a as f32]),
        (Value::MultiDiscrete(a), _) => Value::Box(a.iter().map(|&x| x as f32).collect()),
        (v, _) => v,
    };
    let mut rng = Stream::from_key(seed ^ 0x57e9);
    let (obs, info) = by_value
        .reset(Some(seed), None)
        .map_err(|e| format!("reset failed: {e}"))?;
    let (into, out) =
        written(in_place, Some(seed), None).map_err(|e| format!("reset_into failed: {e}"))?;
    if flat(obs) != into || info != out.info {
        return Err("reset_into wrote another observation or info than reset returned".into());
    }
    for i in 0..steps {
        let mask = by_value.action_mask().map(<[bool]>::to_vec);
        let action = by_value.action_space().sample(&mut rng, mask.as_deref());
        let s = by_value
            .step(&action)
            .map_err(|e| format!("step {i}: {e}"))?;
        let (into, out) = written(in_place, None, Some(&action))
            .map_err(|e| format!("step_into {i} refused what step took: {e}"))?;
        if flat(s.obs) != into {
            return Err(format!(
                "step {i}: step_into wrote another observation than step returned"
            ));
        }
        if (s.reward.to_bits(), s.terminated, s.truncated, &s.info)
            != (
                out.reward.to_bits(),
                out.terminated,
                out.truncated,
                &out.info,
            )
        {
            return Err(format!(
                "step {i}: step_into returned another reward, flags or info than step"
            ));
        }
        if s.terminated || s.truncated {
            by_value
                .reset(None, None)
                .map_err(|e| format!("reset failed: {e}"))?;
            written(in_place, None, None).map_err(|e| format!("reset_into failed: {e}"))?;
        }
    }
    Ok(())
}

/// Checks a registered env with its default configuration.
pub fn check_registered(id: &str, config: &Json, steps: usize) -> Vec<String> {
    check_env(&|| crate::make(id, config), steps)
}
