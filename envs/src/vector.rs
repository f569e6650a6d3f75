//! Vector environments: N copies stepped in parallel (rayon) into contiguous buffers,
//! with Gymnasium's autoreset modes.

use crate::env::{Env, EnvError, Info, ObsSlot};
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
/// (the resource graph of the cloud envs) into `graphs`, one per sub-env. Both kinds
/// go through one step path (each sub-env writes through [`Env::step_into`]).
///
/// Infos come as a list, one [`Info`] per sub-env (`infos[i]`), rather than
/// Gymnasium's dict of arrays with presence masks: the typed fields say what is there.
/// After a step, `infos[i]` is sub-env i's info of that step, also where the step
/// ended an episode and same-step autoreset has already reset it (Gymnasium's
/// `final_info`); after a reset, or the step that resets under next-step autoreset,
/// it is the reset's info. With [`VectorEnv::record_episode_statistics`], an
/// episode's last step carries its return and length in `infos[i].episode`.
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
    /// Graph observations, one per sub-env (empty graphs for flat observations).
    pub graphs: Vec<GraphValue>,
    /// Same-step mode: the episode's last graph where an episode just ended.
    pub final_graphs: Vec<GraphValue>,
    /// Each sub-env's info of the last step or reset.
    pub infos: Vec<Info>,
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
        // Every sub-env has a row and a graph slot, so that one step path serves both
        // kinds: graph envs get a one-float row, flat envs an empty (unallocated) graph.
        let row = obs_dim.max(1);
        let graphs = vec![GraphValue::default(); n];
        Ok(VectorEnv {
            envs,
            mode,
            obs_dim,
            graph,
            config: serde_json::Value::Null,
            mask_dim,
            needs_reset: vec![false; n],
            obs: vec![0.0; n * row],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            final_obs: vec![0.0; n * row],
            masks: vec![true; n * mask_dim],
            final_graphs: graphs.clone(),
            graphs,
            infos: vec![Info::default(); n],
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
    /// [`VectorEnv::new`] unless [`VectorEnv::with_config`] says).
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// Records the config the sub-envs given to [`VectorEnv::new`] were made with
    /// (lockstep views: their multi-agent env's), for learners that read it.
    pub fn with_config(mut self, config: serde_json::Value) -> VectorEnv {
        self.config = config;
        self
    }

    /// Wraps every sub-env in [`crate::wrappers::EpisodeStatistics`]: the last step
    /// of each episode reports its return and length in `infos[i].episode`.
    pub fn record_episode_statistics(&mut self) {
        self.envs = std::mem::take(&mut self.envs)
            .into_iter()
            .map(|e| Box::new(crate::wrappers::EpisodeStatistics::new(e)) as Box<dyn Env>)
            .collect();
    }

    /// Wraps every sub-env in [`crate::wrappers::MaskedFallback`]: a masked-out action
    /// becomes the first allowed one instead of an error.
    pub fn fall_back_on_masked_actions(&mut self) {
        self.envs = std::mem::take(&mut self.envs)
            .into_iter()
            .map(|e| Box::new(crate::wrappers::MaskedFallback::new(e)) as Box<dyn Env>)
            .collect();
    }

    /// Changes the autoreset mode (before the next `reset`).
    pub fn set_mode(&mut self, mode: AutoReset) {
        self.mode = mode;
        self.needs_reset.fill(false);
    }

    /// The autoreset mode.
    pub fn mode(&self) -> AutoReset {
        self.mode
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
        let (row, graph) = (self.obs_dim.max(1), self.graph);
        let results: Vec<Result<(), EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(self.obs.par_chunks_mut(row).zip(self.graphs.par_iter_mut()))
            .zip(self.infos.par_iter_mut())
            .enumerate()
            .map(|(i, ((env, (obs, g)), info))| {
                let slot = slot(graph, obs, g);
                *info = env.reset_into(seed.map(|s| s.wrapping_add(i as u64)), slot)?;
                Ok(())
            })
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
        let (row, graph, mode) = (self.obs_dim.max(1), self.graph, self.mode);
        let min_len = self.min_len();
        let results: Vec<Result<(), EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(
                self.obs
                    .par_chunks_mut(row)
                    .zip(self.final_obs.par_chunks_mut(row)),
            )
            .zip(
                self.graphs
                    .par_iter_mut()
                    .zip(self.final_graphs.par_iter_mut()),
            )
            .zip(self.rewards.par_iter_mut().zip(self.infos.par_iter_mut()))
            .zip(
                self.terminated
                    .par_iter_mut()
                    .zip(self.truncated.par_iter_mut()),
            )
            .zip(self.needs_reset.par_iter_mut().zip(actions.par_iter()))
            .with_min_len(min_len)
            .map(
                |(
                    ((((env, (obs, fin)), (g, fin_g)), (rew, info)), (term, trunc)),
                    (needs_reset, action),
                )| {
                    if mode == AutoReset::NextStep && *needs_reset {
                        *info = env.reset_into(None, slot(graph, obs, g))?;
                        (*rew, *term, *trunc, *needs_reset) = (0.0, false, false, false);
                        return Ok(());
                    }
                    let s = env.step_into(action, slot(graph, obs, g))?;
                    (*rew, *term, *trunc, *info) = (s.reward, s.terminated, s.truncated, s.info);
                    if s.terminated || s.truncated {
                        match mode {
                            AutoReset::NextStep => *needs_reset = true,
                            AutoReset::SameStep => {
                                // The episode's last observation is kept; the reset's
                                // info is dropped for the step's (Gymnasium's final_info).
                                if graph {
                                    std::mem::swap(g, fin_g);
                                } else {
                                    fin.copy_from_slice(obs);
                                }
                                env.reset_into(None, slot(graph, obs, g))?;
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

/// Sub-env's observation slot: its graph, or its row of the flat buffer.
fn slot<'a>(graph: bool, row: &'a mut [f32], g: &'a mut GraphValue) -> ObsSlot<'a> {
    if graph {
        ObsSlot::Graph(g)
    } else {
        ObsSlot::Flat(row)
    }
}

/// N multi-agent environments of one kind, stepped together (rayon), each agent's
/// values in contiguous buffers keyed by agent: what IPPO and MAPPO read.
///
/// Observations must be flat (Box). Autoreset is next-step: once every agent of
/// sub-env i has left, the next `step` resets it (its actions are ignored; rewards 0,
/// no flags). An agent that left while others go on keeps its last observation and
/// its flags until the sub-env resets. Sub-env i is seeded `seed + i`; results do not
/// depend on how many threads rayon uses.
pub struct ParallelVectorEnv {
    envs: Vec<Box<dyn crate::ParallelEnv>>,
    possible: Vec<String>,
    obs_dims: Vec<usize>,
    mask_dims: Vec<usize>,
    state_dim: usize,
    needs_reset: Vec<bool>,
    /// Per agent, observations `[num_envs × obs_dim]`.
    pub obs: crate::AgentMap<Vec<f32>>,
    /// Per agent, rewards of the last step `[num_envs]`.
    pub rewards: crate::AgentMap<Vec<f64>>,
    /// Per agent, terminated flags of the last step.
    pub terminated: crate::AgentMap<Vec<bool>>,
    /// Per agent, truncated flags of the last step.
    pub truncated: crate::AgentMap<Vec<bool>>,
    /// Per masked agent, action masks `[num_envs × mask_len]`.
    pub masks: crate::AgentMap<Vec<bool>>,
    /// Global states `[num_envs × state_dim]`.
    pub state: Vec<f32>,
    /// Each sub-env's infos of the last step or reset.
    pub infos: Vec<crate::AgentMap<Info>>,
}

impl ParallelVectorEnv {
    /// `num_envs` copies of the registered multi-agent env `id` with `config`.
    pub fn make(
        id: &str,
        config: &serde_json::Value,
        num_envs: usize,
    ) -> Result<ParallelVectorEnv, EnvError> {
        let envs = (0..num_envs)
            .map(|_| crate::make_parallel(id, config))
            .collect::<Result<Vec<_>, _>>()?;
        ParallelVectorEnv::new(envs)
    }

    /// Groups `envs` (all of one kind, with flat observations).
    pub fn new(envs: Vec<Box<dyn crate::ParallelEnv>>) -> Result<ParallelVectorEnv, EnvError> {
        let first = envs.first().ok_or_else(|| EnvError::Config {
            env: "vector".into(),
            field: "num_envs".into(),
            reason: "at least one env is needed".into(),
        })?;
        let id = first.id().to_string();
        let possible = first.possible_agents().to_vec();
        let (mut obs_dims, mut mask_dims) = (vec![], vec![]);
        for agent in &possible {
            let space = first.observation_space(agent)?;
            let dim = match space {
                Space::Graph { .. } => None,
                s => s.flat_dim(),
            };
            obs_dims.push(dim.ok_or_else(|| EnvError::Config {
                env: id.clone(),
                field: "observation".into(),
                reason: format!("{agent}'s observation is not flat ({space}): vectorised multi-agent envs need flat ones"),
            })?);
            let act = first.action_space(agent)?;
            mask_dims.push(if first.action_mask(agent).is_some() {
                act.mask_len().unwrap_or(0)
            } else {
                0
            });
        }
        let state_dim = first.state_space().flat_dim().unwrap_or(0);
        if let Some(other) = envs
            .iter()
            .find(|e| e.id() != id || e.possible_agents() != possible)
        {
            return Err(EnvError::Config {
                env: id,
                field: "envs".into(),
                reason: format!(
                    "mixes kinds: {} with agents {:?}",
                    other.id(),
                    other.possible_agents()
                ),
            });
        }
        let n = envs.len();
        let per_agent = |f: &dyn Fn(usize) -> usize| -> crate::AgentMap<usize> {
            possible
                .iter()
                .enumerate()
                .map(|(i, a)| (a.clone(), f(i)))
                .collect()
        };
        let obs = per_agent(&|i| obs_dims[i] * n)
            .into_iter()
            .map(|(a, l)| (a, vec![0.0; l]))
            .collect();
        let masks = per_agent(&|i| mask_dims[i] * n)
            .into_iter()
            .filter(|(_, l)| *l > 0)
            .map(|(a, l)| (a, vec![false; l]))
            .collect();
        let zeros = |v| {
            possible
                .iter()
                .map(|a| (a.clone(), vec![v; n]))
                .collect::<crate::AgentMap<_>>()
        };
        Ok(ParallelVectorEnv {
            needs_reset: vec![false; n],
            obs,
            rewards: possible.iter().map(|a| (a.clone(), vec![0.0; n])).collect(),
            terminated: zeros(false),
            truncated: zeros(false),
            masks,
            state: vec![0.0; state_dim * n],
            infos: vec![crate::AgentMap::new(); n],
            envs,
            possible,
            obs_dims,
            mask_dims,
            state_dim,
        })
    }

    /// Sub-envs.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }

    /// The agents of every sub-env.
    pub fn possible_agents(&self) -> &[String] {
        &self.possible
    }

    /// One sub-env, for its spaces.
    pub fn single_env(&self) -> &dyn crate::ParallelEnv {
        self.envs[0].as_ref()
    }

    /// Resets every sub-env (sub-env i with `seed + i`, or continuing its stream).
    pub fn reset(&mut self, seed: Option<u64>) -> Result<(), EnvError> {
        let results: Vec<Result<_, EnvError>> = self
            .envs
            .par_iter_mut()
            .enumerate()
            .map(|(i, e)| e.reset(seed.map(|s| s + i as u64), None))
            .collect();
        for (i, r) in results.into_iter().enumerate() {
            let (obs, infos) = r?;
            self.write(i, &obs, None)?;
            self.infos[i] = infos;
            self.needs_reset[i] = false;
        }
        Ok(())
    }

    /// Steps every sub-env with `actions[i]` (one action per agent alive in sub-env
    /// i; ignored where the sub-env resets instead).
    pub fn step(&mut self, actions: &[crate::AgentMap<Value>]) -> Result<(), EnvError> {
        if actions.len() != self.envs.len() {
            return Err(EnvError::InvalidAction {
                env: self.envs[0].id().into(),
                reason: format!(
                    "{} joint actions for {} sub-envs",
                    actions.len(),
                    self.envs.len()
                ),
            });
        }
        let needs = &self.needs_reset;
        let results: Vec<Result<Outcome, EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(actions)
            .enumerate()
            .map(|(i, (e, a))| {
                if needs[i] {
                    let (obs, infos) = e.reset(None, None)?;
                    Ok(Outcome::Reset(obs, infos))
                } else {
                    let alive = e.agents().to_vec();
                    let joint: crate::AgentMap<Value> = a
                        .iter()
                        .filter(|(k, _)| alive.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Ok(Outcome::Step(e.step(&joint)?))
                }
            })
            .collect();
        for (i, r) in results.into_iter().enumerate() {
            match r? {
                Outcome::Reset(obs, infos) => {
                    self.write(i, &obs, None)?;
                    self.infos[i] = infos;
                    self.needs_reset[i] = false;
                }
                Outcome::Step(s) => {
                    self.write(
                        i,
                        &s.obs,
                        Some((&s.rewards, &s.terminations, &s.truncations)),
                    )?;
                    self.infos[i] = s.infos;
                    self.needs_reset[i] = self.envs[i].agents().is_empty();
                }
            }
        }
        Ok(())
    }

    /// Writes sub-env i's observations, masks, state and (after a step) rewards and
    /// flags; a reset clears rewards and flags.
    #[allow(clippy::type_complexity)]
    fn write(
        &mut self,
        i: usize,
        obs: &crate::AgentMap<Value>,
        step: Option<(
            &crate::AgentMap<f64>,
            &crate::AgentMap<bool>,
            &crate::AgentMap<bool>,
        )>,
    ) -> Result<(), EnvError> {
        let env = &self.envs[i];
        for (k, agent) in self.possible.iter().enumerate() {
            if let Some(Value::Box(x)) = obs.get(agent) {
                let d = self.obs_dims[k];
                self.obs.get_mut(agent).expect("every agent")[i * d..(i + 1) * d]
                    .copy_from_slice(x);
            }
            let (r, te, tr) = match step {
                None => (0.0, false, false),
                Some((r, te, tr)) => (
                    r.get(agent).copied().unwrap_or(0.0),
                    te.get(agent).copied().unwrap_or(self.terminated[agent][i]),
                    tr.get(agent).copied().unwrap_or(self.truncated[agent][i]),
                ),
            };
            self.rewards.get_mut(agent).expect("every agent")[i] = r;
            self.terminated.get_mut(agent).expect("every agent")[i] = te;
            self.truncated.get_mut(agent).expect("every agent")[i] = tr;
            let m = self.mask_dims[k];
            if m > 0
                && let Some(mask) = env.action_mask(agent)
            {
                self.masks.get_mut(agent).expect("masked agent")[i * m..(i + 1) * m]
                    .copy_from_slice(mask);
            }
        }
        if let Ok(Value::Box(s)) = env.state()
            && s.len() == self.state_dim
        {
            self.state[i * self.state_dim..(i + 1) * self.state_dim].copy_from_slice(&s);
        }
        Ok(())
    }
}

enum Outcome {
    Reset(crate::AgentMap<Value>, crate::AgentMap<Info>),
    Step(crate::MultiStep),
}
