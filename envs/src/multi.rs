//! The multi-agent contract, after PettingZoo's `ParallelEnv`: every agent acts at
//! every step, all at once.
//!
//! - `possible_agents()` is fixed for the env's life; `agents()` are the ones alive
//!   now, a subset, in the same order. An agent that leaves never comes back within
//!   an episode; after the episode ends `agents()` is empty until `reset`.
//! - Every per-agent value (observations, rewards, terminations, truncations, infos,
//!   and the actions given to `step`) is a [`BTreeMap`] keyed by agent id whose keys
//!   are exactly `agents()` (for `step`'s results: the agents alive before the step).
//! - `observation_space(agent)` and `action_space(agent)` return the same object at
//!   every call; `state()` is the global state a centralised critic reads, an element
//!   of `state_space()`.
//! - Bad input (an unknown agent, a missing or extra action, an action outside its
//!   space or masked out) is an error that names the agent, never a panic.

use crate::env::{EnvError, Info};
use crate::space::{Space, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// Per-agent values, keyed by agent id (PettingZoo's dicts, in a fixed order).
pub type AgentMap<T> = BTreeMap<String, T>;

/// What [`ParallelEnv::step`] returns: one entry per agent alive before the step.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStep {
    /// Each agent's observation after the step.
    pub obs: AgentMap<Value>,
    /// Each agent's reward.
    pub rewards: AgentMap<f64>,
    /// Whether each agent reached a terminal state (do not bootstrap).
    pub terminations: AgentMap<bool>,
    /// Whether an outside limit ended each agent's episode.
    pub truncations: AgentMap<bool>,
    /// Each agent's diagnostics.
    pub infos: AgentMap<Info>,
}

/// A multi-agent environment with PettingZoo's parallel semantics.
pub trait ParallelEnv: Send {
    /// The registered id, e.g. `CloudOps-v0`.
    fn id(&self) -> &str;

    /// Every agent that may ever act, fixed for the env's life.
    fn possible_agents(&self) -> &[String];

    /// The agents alive now (a subset of `possible_agents`, in its order).
    fn agents(&self) -> &[String];

    /// `agent`'s observation space (an error for an agent not in `possible_agents`).
    fn observation_space(&self, agent: &str) -> Result<&Space, EnvError>;

    /// `agent`'s action space.
    fn action_space(&self, agent: &str) -> Result<&Space, EnvError>;

    /// The space of [`ParallelEnv::state`].
    fn state_space(&self) -> &Space;

    /// The global state for a centralised critic.
    fn state(&self) -> Result<Value, EnvError>;

    /// Starts an episode: each agent's first observation and info.
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(AgentMap<Value>, AgentMap<Info>), EnvError>;

    /// Advances one step with one action per alive agent.
    fn step(&mut self, actions: &AgentMap<Value>) -> Result<MultiStep, EnvError>;

    /// The actions `agent` may take now (as [`crate::Env::action_mask`]), or `None`
    /// when every action is allowed.
    fn action_mask(&self, agent: &str) -> Option<&[bool]> {
        let _ = agent;
        None
    }

    /// Releases resources; calling it twice is harmless.
    fn close(&mut self) {}
}

/// The error for an agent that is not one of `possible`.
pub(crate) fn unknown_agent(env: &str, agent: &str, possible: &[String]) -> EnvError {
    EnvError::Config {
        env: env.into(),
        field: "agent".into(),
        reason: format!(
            "no agent `{agent}` (possible agents: {})",
            possible.join(", ")
        ),
    }
}

/// Checks that `actions` has exactly one entry per agent in `alive`.
pub(crate) fn check_keys(
    env: &str,
    alive: &[String],
    actions: &AgentMap<Value>,
) -> Result<(), EnvError> {
    if let Some(a) = alive.iter().find(|a| !actions.contains_key(*a)) {
        return Err(EnvError::InvalidAction {
            env: env.into(),
            reason: format!("no action for agent `{a}` (every alive agent acts at every step)"),
        });
    }
    if let Some(a) = actions.keys().find(|a| !alive.contains(a)) {
        return Err(EnvError::InvalidAction {
            env: env.into(),
            reason: format!(
                "an action for `{a}`, which is not alive (alive: {})",
                alive.join(", ")
            ),
        });
    }
    Ok(())
}
