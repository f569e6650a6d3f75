//! The environment contract, after Gymnasium's `gymnasium.Env`.

use crate::space::{Space, Value};
use serde_json::{Map, Value as Json};

/// Extra information from `reset` and `step` (Gymnasium's `info` dict).
pub type Info = Map<String, Json>;

/// What `step` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The observation after the step.
    pub obs: Value,
    /// The reward of the step.
    pub reward: f64,
    /// A terminal state of the MDP was reached: do not bootstrap.
    pub terminated: bool,
    /// An outside limit (e.g. a time limit) ended the episode: bootstrap from `obs`.
    pub truncated: bool,
    /// Diagnostics.
    pub info: Info,
}

/// What can go wrong when using an environment. Every variant names what it is about.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EnvError {
    /// The action is not an element of the action space.
    #[error("{env}: invalid action: {reason}")]
    InvalidAction {
        /// Env id.
        env: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The action is masked out now.
    #[error("{env}: action {action} is masked out now ({reason})")]
    MaskedAction {
        /// Env id.
        env: String,
        /// The action, printed.
        action: String,
        /// Why it is not allowed.
        reason: String,
    },
    /// `step` before `reset`.
    #[error("{0}: step called before reset")]
    NeedsReset(String),
    /// An option or config value is wrong.
    #[error("{env}: {field}: {reason}")]
    Config {
        /// Env id.
        env: String,
        /// The option or config field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No env has this id.
    #[error("unknown environment `{id}` (registered: {known})")]
    UnknownEnv {
        /// The id asked for.
        id: String,
        /// Registered ids.
        known: String,
    },
}

/// A reinforcement-learning environment with Gymnasium's semantics.
///
/// - `reset(Some(seed), …)` rebuilds the env's random state from `seed`; `reset(None,
///   …)` keeps it going. The same seed gives the same episode.
/// - `step` returns `terminated` for terminal states of the MDP and `truncated` for
///   outside limits; the two are never merged.
/// - An action outside the space, or masked out, is an error, never a panic.
pub trait Env: Send {
    /// The registered id, e.g. `CartPole-v1`.
    fn id(&self) -> &str;

    /// Observations are elements of this space.
    fn observation_space(&self) -> &Space;

    /// Actions are elements of this space.
    fn action_space(&self) -> &Space;

    /// Starts an episode. `options` are env-specific (a JSON object).
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError>;

    /// Advances one step.
    fn step(&mut self, action: &Value) -> Result<Step, EnvError>;

    /// The actions allowed now (Discrete: one flag per action; MultiDiscrete: one block
    /// per dimension), or `None` when every action is allowed.
    fn action_mask(&self) -> Option<&[bool]> {
        None
    }

    /// Releases resources; calling it twice is harmless.
    fn close(&mut self) {}

    /// `step`, writing a flat (Box) observation into `obs` instead of allocating one.
    /// Vector envs use it; envs with a cheap observation override it.
    fn step_into(
        &mut self,
        action: &Value,
        obs: &mut [f32],
    ) -> Result<(f64, bool, bool), EnvError> {
        let s = self.step(action)?;
        copy_flat(&s.obs, obs);
        Ok((s.reward, s.terminated, s.truncated))
    }

    /// `reset`, writing a flat (Box) observation into `obs`.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<(), EnvError> {
        let (o, _) = self.reset(seed, None)?;
        copy_flat(&o, obs);
        Ok(())
    }
}

/// Copies a Box observation into a flat buffer (Discrete observations as one float).
pub fn copy_flat(v: &Value, out: &mut [f32]) {
    match v {
        Value::Box(x) => out[..x.len()].copy_from_slice(x),
        Value::Discrete(a) => out[0] = *a as f32,
        Value::MultiDiscrete(a) => out.iter_mut().zip(a).for_each(|(o, &x)| *o = x as f32),
        Value::Graph(_) => {}
    }
}

/// Checks an action against a space and a mask: the error every env returns.
pub fn check_action(
    id: &str,
    space: &Space,
    mask: Option<&[bool]>,
    action: &Value,
) -> Result<(), EnvError> {
    if let Some(reason) = space.explain(action) {
        return Err(EnvError::InvalidAction {
            env: id.to_string(),
            reason,
        });
    }
    if let Some(mask) = mask {
        let masked = match (space, action) {
            (Space::Discrete { .. }, Value::Discrete(a)) => {
                (!mask[*a as usize]).then(|| a.to_string())
            }
            (Space::MultiDiscrete { nvec }, Value::MultiDiscrete(a)) => {
                let mut offset = 0;
                let mut bad = None;
                for (i, (&x, &n)) in a.iter().zip(nvec).enumerate() {
                    if !mask[offset + x as usize] {
                        bad = Some(format!("[{i}] = {x}"));
                        break;
                    }
                    offset += n as usize;
                }
                bad
            }
            _ => None,
        };
        if let Some(action) = masked {
            return Err(EnvError::MaskedAction {
                env: id.to_string(),
                action,
                reason: "see action_mask()".into(),
            });
        }
    }
    Ok(())
}
