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

/// Runs PettingZoo's parallel-API checks on multi-agent envs made by `make` (called
/// twice, for determinism) and returns every failure found; empty means conformance.
///
/// Checks: `agents` is a subset of `possible_agents` in its order, and an agent that
/// leaves never comes back within an episode; every per-agent map of `reset` and
/// `step` has exactly the agents alive before the call as keys; spaces are the same
/// object at every call, and observations are in them; rewards are finite; `state()`
/// is in `state_space()`; actions sampled within each agent's mask are accepted; two
/// envs given the same seed and actions produce identical joint trajectories; a
/// missing action, an action for an unknown agent and one outside its space are
/// errors, not panics; after the episode ends `agents` is empty and `step` is an
/// error; `close` twice is harmless.
pub fn check_parallel_env(
    make: &dyn Fn() -> Result<Box<dyn crate::ParallelEnv>, EnvError>,
    steps: usize,
) -> Vec<String> {
    let mut failures = Vec::new();
    let (mut a, mut b) = match (make(), make()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return vec![format!("make failed: {e}")],
    };
    let id = a.id().to_string();
    let mut fail = |m: String| failures.push(format!("{id}: {m}"));
    if a.possible_agents() != b.possible_agents() {
        fail("two instances disagree on possible_agents".into());
    }
    if a.possible_agents().is_empty() {
        fail("possible_agents is empty".into());
    }
    // Spaces: the same object at every call.
    for agent in a.possible_agents().to_vec() {
        let same = |f: &dyn Fn() -> Result<*const Space, EnvError>| matches!((f(), f()), (Ok(x), Ok(y)) if x == y);
        if !same(&|| a.observation_space(&agent).map(|s| s as *const Space))
            || !same(&|| a.action_space(&agent).map(|s| s as *const Space))
        {
            fail(format!(
                "{agent}: a space is not the same object at every call"
            ));
        }
    }
    if a.observation_space("no-such-agent").is_ok() {
        fail("observation_space of an unknown agent was not an error".into());
    }
    let trace_a = joint_trajectory(a.as_mut(), 123, steps);
    let trace_b = joint_trajectory(b.as_mut(), 123, steps);
    match (&trace_a, &trace_b) {
        (Err(e), _) | (_, Err(e)) => fail(e.clone()),
        (Ok(ta), Ok(tb)) if ta != tb => fail(format!(
            "not deterministic: same seed and actions diverge at step {}",
            ta.iter()
                .zip(tb)
                .position(|(x, y)| x != y)
                .unwrap_or(ta.len().min(tb.len()))
        )),
        _ => {}
    }
    // Bad joint actions are errors.
    match a.reset(Some(5), None) {
        Err(e) => fail(format!("reset failed: {e}")),
        Ok(_) => {
            let mut rng = Stream::from_key(9);
            let good = sample_joint(a.as_ref(), &mut rng);
            if let Some(first) = good.keys().next().cloned() {
                let mut missing = good.clone();
                missing.remove(&first);
                if a.step(&missing).is_ok() {
                    fail(format!("a joint action without `{first}` was accepted"));
                }
                let mut outside = good.clone();
                let bad = match a.action_space(&first) {
                    Ok(Space::Discrete { n }) => Some(Value::Discrete(*n as i64)),
                    Ok(Space::MultiDiscrete { nvec }) => Some(Value::MultiDiscrete(
                        nvec.iter().map(|&n| n as i64).collect(),
                    )),
                    _ => None,
                };
                if let Some(bad) = bad {
                    outside.insert(first.clone(), bad);
                    match a.step(&outside) {
                        Err(EnvError::InvalidAction { .. }) => {}
                        other => fail(format!(
                            "an action outside `{first}`'s space was not refused: {:?}",
                            other.map(|_| ())
                        )),
                    }
                }
            }
            let mut extra = good.clone();
            extra.insert("no-such-agent".into(), Value::Discrete(0));
            if a.step(&extra).is_ok() {
                fail("an action for an unknown agent was accepted".into());
            }
        }
    }
    a.close();
    a.close();
    failures
}

/// One action per alive agent, sampled within its mask.
fn sample_joint(env: &dyn crate::ParallelEnv, rng: &mut Stream) -> crate::AgentMap<Value> {
    env.agents()
        .iter()
        .filter_map(|agent| {
            let space = env.action_space(agent).ok()?;
            Some((agent.clone(), space.sample(rng, env.action_mask(agent))))
        })
        .collect()
}

/// Per step: (agents alive, observations, reward bits, truncations, state), over
/// episodes, resetting with `None` when every agent is gone.
type JointTrace = Vec<(Vec<String>, Vec<Value>, Vec<u64>, Vec<bool>, Value)>;

fn joint_trajectory(
    env: &mut dyn crate::ParallelEnv,
    seed: u64,
    steps: usize,
) -> Result<JointTrace, String> {
    let possible = env.possible_agents().to_vec();
    let keys_match = |what: &str, keys: Vec<&String>, alive: &[String]| {
        if keys.into_iter().eq(alive.iter()) {
            Ok(())
        } else {
            Err(format!("{what}: keys are not the agents alive"))
        }
    };
    let in_order = |alive: &[String]| {
        let mut at = possible.iter();
        alive.iter().all(|a| at.any(|p| p == a))
    };
    let state = |env: &dyn crate::ParallelEnv| -> Result<Value, String> {
        let s = env.state().map_err(|e| format!("state(): {e}"))?;
        if !env.state_space().contains(&s) {
            return Err("state() is outside state_space()".into());
        }
        Ok(s)
    };
    let mut rng = Stream::from_key(seed);
    let mut trace = JointTrace::new();
    let start = |env: &mut dyn crate::ParallelEnv, seed: Option<u64>| {
        let (obs, infos) = env
            .reset(seed, None)
            .map_err(|e| format!("reset failed: {e}"))?;
        let mut alive = env.agents().to_vec();
        alive.sort();
        keys_match("reset observations", obs.keys().collect(), &alive)?;
        keys_match("reset infos", infos.keys().collect(), &alive)?;
        if !in_order(env.agents()) {
            return Err("agents is not a subset of possible_agents in its order".into());
        }
        for (agent, o) in &obs {
            let space = env.observation_space(agent).map_err(|e| e.to_string())?;
            if !space.contains(o) {
                return Err(format!("{agent}: reset observation outside its space"));
            }
        }
        Ok::<_, String>((obs.into_values().collect::<Vec<_>>(), state(env)?))
    };
    let (obs, s) = start(env, Some(seed))?;
    trace.push((env.agents().to_vec(), obs, vec![], vec![], s));
    let mut gone: Vec<String> = vec![];
    for i in 0..steps {
        let before = env.agents().to_vec();
        let mut alive = before.clone();
        alive.sort();
        let actions = sample_joint(env, &mut rng);
        let out = env
            .step(&actions)
            .map_err(|e| format!("step {i} refused sampled, allowed actions: {e}"))?;
        for (what, keys) in [
            ("observations", out.obs.keys().collect::<Vec<_>>()),
            ("rewards", out.rewards.keys().collect()),
            ("terminations", out.terminations.keys().collect()),
            ("truncations", out.truncations.keys().collect()),
            ("infos", out.infos.keys().collect()),
        ] {
            keys_match(&format!("step {i}: {what}"), keys, &alive)?;
        }
        for (agent, o) in &out.obs {
            let space = env.observation_space(agent).map_err(|e| e.to_string())?;
            if !space.contains(o) {
                return Err(format!("step {i}: {agent}: observation outside its space"));
            }
        }
        if let Some((agent, r)) = out.rewards.iter().find(|(_, r)| !r.is_finite()) {
            return Err(format!("step {i}: {agent}: reward {r} is not finite"));
        }
        let now = env.agents().to_vec();
        if !in_order(&now) {
            return Err(format!(
                "step {i}: agents is not a subset of possible_agents in its order"
            ));
        }
        if let Some(back) = now.iter().find(|a| gone.contains(a)) {
            return Err(format!("step {i}: agent `{back}` came back after leaving"));
        }
        for a in &before {
            let done = out.terminations[a] || out.truncations[a];
            if done == now.contains(a) {
                return Err(format!(
                    "step {i}: `{a}` is {} yet {}",
                    if done { "done" } else { "not done" },
                    if done { "still alive" } else { "gone" }
                ));
            }
            if done {
                gone.push(a.clone());
            }
        }
        let s = if now.is_empty() {
            if env.step(&crate::AgentMap::new()).is_ok() {
                return Err(format!(
                    "step {i}: step after the episode ended was accepted"
                ));
            }
            Value::Box(vec![])
        } else {
            state(env)?
        };
        trace.push((
            now.clone(),
            out.obs.into_values().collect(),
            out.rewards.values().map(|r| r.to_bits()).collect(),
            out.truncations.into_values().collect(),
            s,
        ));
        if now.is_empty() {
            gone.clear();
            let (obs, s) = start(env, None)?;
            trace.push((env.agents().to_vec(), obs, vec![], vec![], s));
        }
    }
    Ok(trace)
}
