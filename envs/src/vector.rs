//! Vector environments: N copies stepped in parallel (rayon) into contiguous buffers,
//! with Gymnasium's autoreset modes.

use crate::env::{Env, EnvError};
use crate::space::{GraphValue, Space, Value};
use rayon::prelude::*;

/// When a finished sub-env is reset (Gymnasium's `AutoresetMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AutoReset {
    /// On the step after the one that ended the episode; that step's action is
    /// ignored and it returns the reset observation with reward 0 and no flags.
    #[default]
    NextStep,
    /// In the step that ended the episode: it returns the reset observation, and the
    /// last observation of the episode is kept in `final_obs`.
    SameStep,
}

/// N environments of one kind, stepped together.
///
/// Flat (Box) observations go into one contiguous buffer, `obs`; graph observations
/// (the resource graph of the cloud envs) into `graphs`, one per sub-env.
///
/// Results do not depend on how many threads rayon uses: each sub-env owns its
/// randomness, and sub-env i is seeded `seed + i`.
///
/// Call `step` from inside the rayon pool (e.g. run the training loop in
/// `rayon::scope`) when the envs are cheap: from an outside thread, every step pays
/// for waking a worker and waiting on it.
pub struct VectorEnv {
    envs: Vec<Box<dyn Env>>,
    mode: AutoReset,
    obs_dim: usize,
    graph: bool,
    config: serde_json::Value,
    mask_dim: usize,
    needs_reset: Vec<bool>,
    /// Observations, `[num_envs × obs_dim]`.
    pub obs: Vec<f32>,
    /// Rewards of the last step.
    pub rewards: Vec<f64>,
    /// Terminated flags of the last step.
    pub terminated: Vec<bool>,
    /// Truncated flags of the last step.
    pub truncated: Vec<bool>,
    /// Same-step mode: the episode's last observation where an episode just ended.
    pub final_obs: Vec<f32>,
    /// Action masks, `[num_envs × mask_dim]` (empty when the env has none).
    pub masks: Vec<bool>,
    /// Graph observations, one per sub-env (empty for flat observations).
    pub graphs: Vec<GraphValue>,
    /// Same-step mode: the episode's last graph where an episode just ended.
    pub final_graphs: Vec<GraphValue>,
}

impl VectorEnv {
    /// Groups `envs` (all of one kind, with flat or graph observations).
    pub fn new(envs: Vec<Box<dyn Env>>, mode: AutoReset) -> Result<VectorEnv, EnvError> {
        let first = envs.first().ok_or_else(|| EnvError::Config {
            env: "vector".into(),
            field: "num_envs".into(),
            reason: "at least one env is needed".into(),
        })?;
        let graph = matches!(first.observation_space(), Space::Graph { .. });
        let obs_dim = first.observation_space().flat_dim().unwrap_or(0);
        let mask_dim = if first.action_mask().is_some() || first.action_space().mask_len().is_some()
        {
            first.action_space().mask_len().unwrap_or(0)
        } else {
            0
        };
        let n = envs.len();
        let graphs = if graph {
            vec![GraphValue::default(); n]
        } else {
            Vec::new()
        };
        Ok(VectorEnv {
            envs,
            mode,
            obs_dim,
            graph,
            config: serde_json::Value::Null,
            mask_dim,
            needs_reset: vec![false; n],
            obs: vec![0.0; n * obs_dim],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            final_obs: vec![0.0; n * obs_dim],
            masks: vec![true; n * mask_dim],
            final_graphs: graphs.clone(),
            graphs,
        })
    }

    /// Makes `n` copies of a registered env.
    pub fn make(
        id: &str,
        config: &serde_json::Value,
        n: usize,
        mode: AutoReset,
    ) -> Result<VectorEnv, EnvError> {
        let envs = (0..n)
            .map(|_| crate::make(id, config))
            .collect::<Result<Vec<_>, _>>()?;
        let mut v = VectorEnv::new(envs, mode)?;
        v.config = config.clone();
        Ok(v)
    }

    /// The config the sub-envs were made with ([`VectorEnv::make`]; null for
    /// [`VectorEnv::new`]).
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// Changes the autoreset mode (before the next `reset`).
    pub fn set_mode(&mut self, mode: AutoReset) {
        self.mode = mode;
        self.needs_reset.fill(false);
    }

    /// Number of sub-envs.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }

    /// Length of one flat observation (0 for graph observations).
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Whether observations are graphs (in `graphs`) rather than flat (in `obs`).
    pub fn graph_observations(&self) -> bool {
        self.graph
    }

    /// The first sub-env (for its spaces).
    pub fn single_env(&self) -> &dyn Env {
        self.envs[0].as_ref()
    }

    /// Sub-envs per rayon task: a few tasks per thread, so a cheap env's step is not
    /// dwarfed by scheduling.
    fn min_len(&self) -> usize {
        (self.envs.len() / (4 * rayon::current_num_threads())).max(1)
    }

    /// Clears the step results and reads the masks after every sub-env was reset.
    fn after_reset(&mut self) {
        self.needs_reset.fill(false);
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.gather_masks();
    }

    fn gather_masks(&mut self) {
        if self.mask_dim == 0 {
            return;
        }
        for (env, m) in self.envs.iter().zip(self.masks.chunks_mut(self.mask_dim)) {
            match env.action_mask() {
                Some(mask) => m.copy_from_slice(mask),
                None => m.fill(true),
            }
        }
    }

    /// Resets every sub-env; with a seed, sub-env i gets `seed + i`.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<(), EnvError> {
        if self.graph {
            return self.reset_graphs(seed);
        }
        let d = self.obs_dim;
        let results: Vec<Result<(), EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(self.obs.par_chunks_mut(d))
            .enumerate()
            .map(|(i, (env, obs))| env.reset_into(seed.map(|s| s.wrapping_add(i as u64)), obs))
            .collect();
        results.into_iter().collect::<Result<(), _>>()?;
        self.after_reset();
        Ok(())
    }

    /// Steps every sub-env with its action. The first error, by sub-env index, is
    /// returned (the others' steps have still happened).
    pub fn step(&mut self, actions: &[Value]) -> Result<(), EnvError> {
        if actions.len() != self.envs.len() {
            return Err(EnvError::InvalidAction {
                env: self.envs[0].id().into(),
                reason: format!("{} actions for {} envs", actions.len(), self.envs.len()),
            });
        }
        if self.graph {
            return self.step_graphs(actions);
        }
        let (d, mode) = (self.obs_dim, self.mode);
        let min_len = self.min_len();
        let results: Vec<Result<(), EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(self.obs.par_chunks_mut(d))
            .zip(self.final_obs.par_chunks_mut(d))
            .zip(self.rewards.par_iter_mut())
            .zip(
                self.terminated
                    .par_iter_mut()
                    .zip(self.truncated.par_iter_mut()),
            )
            .zip(self.needs_reset.par_iter_mut().zip(actions.par_iter()))
            .with_min_len(min_len)
            .map(
                |(((((env, obs), fin), rew), (term, trunc)), (needs_reset, action))| {
                    if mode == AutoReset::NextStep && *needs_reset {
                        env.reset_into(None, obs)?;
                        (*rew, *term, *trunc, *needs_reset) = (0.0, false, false, false);
                        return Ok(());
                    }
                    let (r, te, tr) = env.step_into(action, obs)?;
                    (*rew, *term, *trunc) = (r, te, tr);
                    if te || tr {
                        match mode {
                            AutoReset::NextStep => *needs_reset = true,
                            AutoReset::SameStep => {
                                fin.copy_from_slice(obs);
                                env.reset_into(None, obs)?;
                            }
                        }
                    }
                    Ok(())
                },
            )
            .collect();
        self.gather_masks();
        results.into_iter().collect()
    }

    fn reset_graphs(&mut self, seed: Option<u64>) -> Result<(), EnvError> {
        let results: Vec<Result<(), EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(self.graphs.par_iter_mut())
            .enumerate()
            .map(|(i, (env, g))| {
                *g = graph_of(
                    env.reset(seed.map(|s| s.wrapping_add(i as u64)), None)?.0,
                    env.as_ref(),
                )?;
                Ok(())
            })
            .collect();
        results.into_iter().collect::<Result<(), _>>()?;
        self.after_reset();
        Ok(())
    }

    /// `step` for graph observations: the same semantics, values moved instead of
    /// copied into a flat buffer.
    fn step_graphs(&mut self, actions: &[Value]) -> Result<(), EnvError> {
        let mode = self.mode;
        let results: Vec<Result<(), EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(self.graphs.par_iter_mut())
            .zip(self.final_graphs.par_iter_mut())
            .zip(self.rewards.par_iter_mut())
            .zip(
                self.terminated
                    .par_iter_mut()
                    .zip(self.truncated.par_iter_mut()),
            )
            .zip(self.needs_reset.par_iter_mut().zip(actions.par_iter()))
            .map(
                |(((((env, obs), fin), rew), (term, trunc)), (needs_reset, action))| {
                    if mode == AutoReset::NextStep && *needs_reset {
                        *obs = graph_of(env.reset(None, None)?.0, env.as_ref())?;
                        (*rew, *term, *trunc, *needs_reset) = (0.0, false, false, false);
                        return Ok(());
                    }
                    let step = env.step(action)?;
                    *obs = graph_of(step.obs, env.as_ref())?;
                    (*rew, *term, *trunc) = (step.reward, step.terminated, step.truncated);
                    if step.terminated || step.truncated {
                        match mode {
                            AutoReset::NextStep => *needs_reset = true,
                            AutoReset::SameStep => {
                                let next = graph_of(env.reset(None, None)?.0, env.as_ref())?;
                                *fin = std::mem::replace(obs, next);
                            }
                        }
                    }
                    Ok(())
                },
            )
            .collect();
        self.gather_masks();
        results.into_iter().collect()
    }
}

fn graph_of(v: Value, env: &dyn Env) -> Result<GraphValue, EnvError> {
    match v {
        Value::Graph(g) => Ok(g),
        other => Err(EnvError::Config {
            env: env.id().into(),
            field: "observation".into(),
            reason: format!("a graph observation space, but the env returned {other:?}"),
        }),
    }
}
