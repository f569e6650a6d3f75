//! Learning with burn (the `learn` feature): networks and algorithms, each algorithm
//! in one file that reads top to bottom (CleanRL style). Library code takes a
//! [`burn::prelude::Device`]; the binary chooses the backend.

pub mod dqn;
mod fused;
pub mod fused_gnn;
pub mod ippo;
pub mod ppo;

use crate::heads::Heads;
use crate::network::Network;
use hale_envs::EnvError;
use serde::Serialize;

pub(crate) use crate::tensors::seeded;

/// What one iteration measured, named as CleanRL logs them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IterationStats {
    /// Environment steps so far.
    pub global_step: u64,
    /// `charts/learning_rate`.
    pub learning_rate: f64,
    /// Returns of the episodes that ended in this iteration (`charts/episodic_return`).
    pub episodic_returns: Vec<f64>,
    /// Their lengths (`charts/episodic_length`).
    pub episodic_lengths: Vec<u64>,
    /// The algorithm's own values (`losses/…`, `charts/…`), in the order of
    /// [`Learner::metric_names`].
    pub metrics: Vec<(&'static str, f64)>,
}

impl IterationStats {
    /// The value logged as `name`, if this algorithm logs it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }
}

/// A hyperparameter that cannot be trained with, named by its field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct HyperparameterError {
    /// The field, as in the config file (`learning_rate`).
    pub field: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl HyperparameterError {
    fn new(field: &'static str, reason: impl Into<String>) -> HyperparameterError {
        HyperparameterError {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks that each named value is finite and, where `positive`, above 0.
fn check_reals(values: &[(&'static str, f64, bool)]) -> Result<(), HyperparameterError> {
    for &(field, v, positive) in values {
        if !v.is_finite() {
            return Err(HyperparameterError::new(
                field,
                format!("must be finite, got {v}"),
            ));
        }
        if positive && v <= 0.0 {
            return Err(HyperparameterError::new(
                field,
                format!("must be positive, got {v}"),
            ));
        }
    }
    Ok(())
}

/// Checks that each named count is above 0.
fn check_counts(values: &[(&'static str, u64)]) -> Result<(), HyperparameterError> {
    match values.iter().find(|(_, v)| *v == 0) {
        Some((field, _)) => Err(HyperparameterError::new(field, "must be positive")),
        None => Ok(()),
    }
}

/// Checks that each named value is in [0, 1].
fn check_fractions(values: &[(&'static str, f64)]) -> Result<(), HyperparameterError> {
    for &(field, v) in values {
        if !(0.0..=1.0).contains(&v) {
            return Err(HyperparameterError::new(
                field,
                format!("must be in [0, 1], got {v}"),
            ));
        }
    }
    Ok(())
}

/// The most transitions a rollout (PPO's `num_envs · num_steps`) or a replay buffer
/// (DQN's `buffer_size`) may hold: 2^24, about 16.8 M. Beyond it the arrays of
/// observations alone take tens of GB for the cloud envs, and the product of two
/// counts could overflow; a config past it is refused before anything is allocated.
pub const MAX_TRANSITIONS: u64 = 1 << 24;

/// Why an iteration failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An environment refused a step or reset.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// An observation or reward from the environment was not finite.
    #[error("iteration {iteration}: {what} is not finite (the environment produced it)")]
    NonFiniteInput {
        /// The iteration (1-based) that met it.
        iteration: u64,
        /// Which value.
        what: String,
    },
    /// The network refused an observation (a malformed graph, or one that does not
    /// fit the action layout).
    #[error("iteration {iteration}: {message}")]
    Observation {
        /// The iteration (1-based) that met it.
        iteration: u64,
        /// What was wrong.
        message: String,
    },
    /// One agent's learner of a multi-agent run failed (the first to fail: the others
    /// stopped on hearing of it).
    #[error("agent {agent}: {source}")]
    Agent {
        /// The agent.
        agent: String,
        /// What failed.
        source: Box<TrainError>,
    },
    /// A loss was not finite: training stops rather than go on with NaN.
    #[error(
        "iteration {iteration}: {what} is not finite (learning rate too high, or rewards too large: PPO's normalize_reward = true scales them)"
    )]
    NonFinite {
        /// The iteration (1-based) that produced it.
        iteration: u64,
        /// Which value.
        what: String,
    },
}

/// Why a learner cannot be built, checkpointed or restored.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A hyperparameter out of range.
    #[error(transparent)]
    Hyperparameter(#[from] HyperparameterError),
    /// The envs cannot be reset.
    #[error("the envs: {0}")]
    Env(#[from] EnvError),
    /// The algorithm or network cannot train on these envs (what does not fit).
    #[error("{algorithm} cannot train on {env}: {reason}")]
    Unfit {
        /// `ppo`, `dqn`.
        algorithm: &'static str,
        /// The env id.
        env: String,
        /// What does not fit.
        reason: String,
    },
    /// The GNN's action layout.
    #[error(transparent)]
    Layout(#[from] crate::gnn::LayoutError),
    /// Weights that cannot be written or read back.
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
    /// A buffer too large for this machine's memory.
    #[error(
        "a replay buffer of {capacity} transitions × {obs_dim} features needs {gigabytes:.1} GB, \
         which cannot be allocated: lower buffer_size"
    )]
    Memory {
        /// Transitions.
        capacity: usize,
        /// Features per observation.
        obs_dim: usize,
        /// What it would take.
        gigabytes: f64,
    },
    /// A checkpoint without a file the learner writes.
    #[error("the checkpoint has no {0}")]
    MissingFile(String),
    /// A part of a checkpoint that cannot be written or read back (`state`,
    /// `optim.bin`, `replay.bin`).
    #[error("checkpoint {part}: {reason}")]
    Checkpoint {
        /// The part.
        part: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl LearnError {
    /// A checkpoint part that cannot be used.
    pub fn checkpoint(part: &'static str, reason: impl std::fmt::Display) -> LearnError {
        LearnError::Checkpoint {
            part,
            reason: reason.to_string(),
        }
    }
}

/// A learner's state at an iteration boundary: a JSON state (counters, random
/// streams, statistics) and named binary files (weights, optimiser state, replay).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Counters, random-stream states and statistics.
    pub state: serde_json::Value,
    /// File name and contents, e.g. `("model.bpk", …)`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    /// The contents of file `name`, or an error naming it.
    pub fn file(&self, name: &str) -> Result<&[u8], LearnError> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| LearnError::MissingFile(name.to_string()))
    }
}

/// A training run in progress, whatever the algorithm: what `hale train` drives.
pub trait Learner {
    /// Algorithm name (`ppo`, `dqn`).
    fn algorithm(&self) -> &'static str;
    /// One iteration (PPO: a rollout and an update; DQN: a fixed number of steps).
    fn iterate(&mut self) -> Result<IterationStats, TrainError>;
    /// Iterations done.
    fn iteration(&self) -> u64;
    /// Environment steps done.
    fn global_step(&self) -> u64;
    /// Iterations in the whole run.
    fn num_iterations(&self) -> u64;
    /// Whether the run has done all its iterations.
    fn done(&self) -> bool {
        self.iteration() >= self.num_iterations()
    }
    /// Environment steps per iteration.
    fn steps_per_iteration(&self) -> u64;
    /// Names of [`IterationStats::metrics`], in order.
    fn metric_names(&self) -> &'static [&'static str];
    /// Resets the environments with seeds derived from `seed` and the iteration, and
    /// forgets unfinished episodes (at every checkpoint boundary, resumed or not).
    fn reset_envs(&mut self, seed: u64) -> Result<(), EnvError>;
    /// Everything needed to continue exactly from here.
    fn checkpoint(&self) -> Result<Checkpoint, LearnError>;
    /// Continues from a [`Learner::checkpoint`] of a run with the same config and seed.
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), LearnError>;
    /// The action heads.
    fn heads(&self) -> &Heads;
    /// The network a policy bundle holds (greedy actions from its logits), on the
    /// inference device.
    fn network(&self) -> Network;
    /// A multi-agent learner's per-agent learners, by agent (each gives its own
    /// bundle); empty for a single-agent one.
    fn agents(&self) -> Vec<(&str, &dyn Learner)> {
        Vec::new()
    }
}
