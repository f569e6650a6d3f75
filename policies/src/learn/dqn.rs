//! Deep Q-Network (Mnih et al., 2015) with double-DQN targets (van Hasselt et al.,
//! 2016), read top to bottom as CleanRL's `dqn.py`: hyperparameters, replay buffer,
//! ε-greedy acting, TD update, target network.
//!
//! - Network: the actor of an [`ActorCritic`] reads out one Q-value per action (its
//!   logits), so a DQN policy bundle is loaded and run exactly like a PPO one (greedy:
//!   the allowed action with the largest Q-value). The critic is not used.
//! - Actions: `Discrete` spaces only. With probability ε (linear from `start_e` to
//!   `end_e` over `exploration_fraction · total_timesteps` steps) a uniformly random
//!   allowed action, otherwise the greedy one; masked actions are never taken and never
//!   bootstrapped from.
//! - Transitions: a **truncated** episode's last transition bootstraps from its final
//!   observation (all actions allowed there: the vector env keeps no mask for it); a
//!   **terminated** one does not.
//! - Update: every `train_frequency` vector steps after `learning_starts` env steps, a
//!   uniform minibatch of `batch_size` transitions, target
//!   `r + γ · (1 − terminated) · Q_target(s', a*)` with `a* = argmax Q_online(s')`
//!   (double DQN) or `argmax Q_target(s')`, mean squared TD error, Adam. The target
//!   network is a copy of the online one, refreshed every `target_network_frequency`
//!   vector steps.
//! - Randomness: one seeded stream for exploration and minibatches, and the backend
//!   seeded for the initial weights: same seed, same run, bit for bit (the replay
//!   buffer is checkpointed, so a resumed run continues exactly).

use super::{
    Checkpoint, HyperparameterError, IterationStats, LearnError, Learner, MAX_TRANSITIONS,
    TrainError, check_counts, check_fractions, check_reals,
};
use crate::heads::Heads;
use crate::mlp::ActorCritic;
use crate::tensors::{tensor1, tensor2, to_vec};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use hale_envs::{AutoReset, EnvError, Space, Value, VectorEnv};
use hale_sim::rng::Stream;
use serde::{Deserialize, Serialize};

/// DQN hyperparameters (defaults: CleanRL's `dqn.py` for CartPole-v1, with double-DQN
/// targets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Environment steps in all (over all envs).
    pub total_timesteps: u64,
    /// Adam learning rate (constant).
    pub learning_rate: f64,
    /// Parallel environments.
    pub num_envs: usize,
    /// Transitions the replay buffer holds (the oldest are overwritten).
    pub buffer_size: usize,
    /// Discount factor γ.
    pub gamma: f64,
    /// Vector steps between copies of the online network into the target network.
    pub target_network_frequency: u64,
    /// Transitions per update.
    pub batch_size: usize,
    /// ε at the start.
    pub start_e: f64,
    /// ε after the exploration phase.
    pub end_e: f64,
    /// Share of `total_timesteps` over which ε falls from `start_e` to `end_e`.
    pub exploration_fraction: f64,
    /// Environment steps before the first update.
    pub learning_starts: u64,
    /// Vector steps between updates.
    pub train_frequency: u64,
    /// Double-DQN targets (the online network picks the next action, the target
    /// network values it).
    pub double_dqn: bool,
    /// Hidden layer widths of the Q-network.
    pub hidden: Vec<usize>,
    /// Environment steps per iteration: one metrics row, and the unit of
    /// `checkpoint_every`.
    pub steps_per_iteration: u64,
}

impl Default for DqnConfig {
    fn default() -> Self {
        DqnConfig {
            total_timesteps: 500_000,
            learning_rate: 2.5e-4,
            num_envs: 1,
            buffer_size: 10_000,
            gamma: 0.99,
            target_network_frequency: 500,
            batch_size: 128,
            start_e: 1.0,
            end_e: 0.05,
            exploration_fraction: 0.5,
            learning_starts: 10_000,
            train_frequency: 10,
            double_dqn: true,
            hidden: vec![120, 84],
            steps_per_iteration: 1000,
        }
    }
}

impl DqnConfig {
    /// Iterations in the run: `total_timesteps / steps_per_iteration`.
    pub fn num_iterations(&self) -> u64 {
        self.total_timesteps / self.steps_per_iteration.max(1)
    }

    /// Checks the values before anything is built; the error names the field.
    pub fn validate(&self) -> Result<(), HyperparameterError> {
        check_counts(&[
            ("num_envs", self.num_envs as u64),
            ("buffer_size", self.buffer_size as u64),
            ("batch_size", self.batch_size as u64),
            ("train_frequency", self.train_frequency),
            ("target_network_frequency", self.target_network_frequency),
            ("steps_per_iteration", self.steps_per_iteration),
        ])?;
        check_reals(&[("learning_rate", self.learning_rate, true)])?;
        check_fractions(&[
            ("gamma", self.gamma),
            ("start_e", self.start_e),
            ("end_e", self.end_e),
            ("exploration_fraction", self.exploration_fraction),
        ])?;
        if self.buffer_size as u64 > MAX_TRANSITIONS {
            return Err(HyperparameterError::new(
                "buffer_size",
                format!(
                    "{} transitions is more than {MAX_TRANSITIONS}",
                    self.buffer_size
                ),
            ));
        }
        if self.num_envs as u64 > MAX_TRANSITIONS {
            return Err(HyperparameterError::new(
                "num_envs",
                format!("{} is more than {MAX_TRANSITIONS}", self.num_envs),
            ));
        }
        if !self
            .steps_per_iteration
            .is_multiple_of(self.num_envs as u64)
        {
            return Err(HyperparameterError::new(
                "steps_per_iteration",
                format!(
                    "num_envs ({}) must divide steps_per_iteration ({})",
                    self.num_envs, self.steps_per_iteration
                ),
            ));
        }
        if self.num_iterations() == 0 {
            return Err(HyperparameterError::new(
                "total_timesteps",
                format!(
                    "{} is less than one iteration ({})",
                    self.total_timesteps, self.steps_per_iteration
                ),
            ));
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(HyperparameterError::new(
                "hidden",
                "must list positive layer widths",
            ));
        }
        Ok(())
    }
}

/// ε at `step`: linear from `start` to `end` over `duration` steps, then `end`.
pub fn linear_schedule(start: f64, end: f64, duration: f64, step: u64) -> f64 {
    if step as f64 >= duration {
        return end;
    }
    let slope = (end - start) / duration;
    (slope * step as f64 + start).max(end.min(start))
}

/// A ring buffer of transitions, flat arrays row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    mask_len: usize,
    len: usize,
    pos: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<i64>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    next_masks: Vec<bool>,
}

const REPLAY_MAGIC: &[u8; 12] = b"hale-replay1";

impl ReplayBuffer {
    /// An empty buffer for `capacity` transitions, or an error saying how much
    /// memory it would take when that cannot be had (rather than an abort).
    pub fn new(
        capacity: usize,
        obs_dim: usize,
        mask_len: usize,
    ) -> Result<ReplayBuffer, LearnError> {
        let bytes =
            capacity.saturating_mul(obs_dim.saturating_mul(8).saturating_add(mask_len + 14));
        let too_big = || LearnError::Memory {
            capacity,
            obs_dim,
            gigabytes: bytes as f64 / 1e9,
        };
        fn filled<T: Clone>(n: Option<usize>, value: T) -> Option<Vec<T>> {
            let n = n?;
            let mut v = Vec::new();
            v.try_reserve_exact(n).ok()?;
            v.resize(n, value);
            Some(v)
        }
        let floats = capacity.checked_mul(obs_dim);
        Ok(ReplayBuffer {
            capacity,
            obs_dim,
            mask_len,
            len: 0,
            pos: 0,
            obs: filled(floats, 0.0).ok_or_else(too_big)?,
            next_obs: filled(floats, 0.0).ok_or_else(too_big)?,
            actions: filled(Some(capacity), 0).ok_or_else(too_big)?,
            rewards: filled(Some(capacity), 0.0).ok_or_else(too_big)?,
            terminated: filled(Some(capacity), false).ok_or_else(too_big)?,
            next_masks: filled(capacity.checked_mul(mask_len), true).ok_or_else(too_big)?,
        })
    }

    /// Transitions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds one transition, overwriting the oldest when full.
    pub fn push(
        &mut self,
        obs: &[f32],
        action: i64,
        reward: f32,
        next_obs: &[f32],
        terminated: bool,
        next_mask: Option<&[bool]>,
    ) {
        let (d, m, i) = (self.obs_dim, self.mask_len, self.pos);
        self.obs[i * d..(i + 1) * d].copy_from_slice(obs);
        self.next_obs[i * d..(i + 1) * d].copy_from_slice(next_obs);
        self.actions[i] = action;
        self.rewards[i] = reward;
        self.terminated[i] = terminated;
        let slot = &mut self.next_masks[i * m..(i + 1) * m];
        match next_mask {
            Some(mask) => slot.copy_from_slice(mask),
            None => slot.fill(true),
        }
        self.pos = (self.pos + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// The buffer as bytes (little-endian), for checkpoints.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = REPLAY_MAGIC.to_vec();
        for v in [
            self.capacity,
            self.obs_dim,
            self.mask_len,
            self.len,
            self.pos,
        ] {
            out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        for x in self.obs.iter().chain(&self.next_obs).chain(&self.rewards) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for a in &self.actions {
            out.extend_from_slice(&a.to_le_bytes());
        }
        out.extend(
            self.terminated
                .iter()
                .chain(&self.next_masks)
                .map(|&b| b as u8),
        );
        out
    }

    /// Reads [`ReplayBuffer::to_bytes`] back, checking it has the expected shape.
    pub fn from_bytes(
        bytes: &[u8],
        capacity: usize,
        obs_dim: usize,
        mask_len: usize,
    ) -> Result<ReplayBuffer, LearnError> {
        let bad = |reason: String| LearnError::checkpoint("replay.bin", reason);
        let head = REPLAY_MAGIC.len() + 5 * 8;
        if bytes.len() < head || &bytes[..REPLAY_MAGIC.len()] != REPLAY_MAGIC {
            return Err(bad("not a replay buffer written by this version".into()));
        }
        let word = |k: usize| {
            let at = REPLAY_MAGIC.len() + 8 * k;
            u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize
        };
        let (cap, d, m, len, pos) = (word(0), word(1), word(2), word(3), word(4));
        if (cap, d, m) != (capacity, obs_dim, mask_len) {
            return Err(bad(format!(
                "{cap} transitions × {d} features × {m} mask entries, the run needs \
                 {capacity} × {obs_dim} × {mask_len}"
            )));
        }
        if len > cap || pos >= cap.max(1) {
            return Err(bad(format!("length {len} / position {pos} out of range")));
        }
        let body = 4 * (2 * cap * d + cap) + 8 * cap + cap + cap * m;
        if bytes.len() != head + body {
            return Err(bad(format!(
                "{} bytes, expected {} (truncated?)",
                bytes.len(),
                head + body
            )));
        }
        let mut b = ReplayBuffer::new(cap, d, m)?;
        b.len = len;
        b.pos = pos;
        let mut at = head;
        let mut f32s = |n: usize| -> Vec<f32> {
            let v = bytes[at..at + 4 * n]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            at += 4 * n;
            v
        };
        b.obs = f32s(cap * d);
        b.next_obs = f32s(cap * d);
        b.rewards = f32s(cap);
        b.actions = bytes[at..at + 8 * cap]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        at += 8 * cap;
        b.terminated = bytes[at..at + cap].iter().map(|&x| x != 0).collect();
        at += cap;
        b.next_masks = bytes[at..at + cap * m].iter().map(|&x| x != 0).collect();
        Ok(b)
    }
}

/// What a run needs to continue exactly where it stopped, besides its files.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DqnState {
    /// Iterations done.
    pub iteration: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// Vector steps done.
    pub vector_step: u64,
    /// The exploration/minibatch stream.
    pub rng: [u64; 4],
}

/// A DQN run in progress.
pub struct Dqn {
    /// Hyperparameters.
    pub config: DqnConfig,
    model: ActorCritic,
    target: ActorCritic,
    optim: ModuleOptimizer,
    device: Device,
    envs: VectorEnv,
    heads: Heads,
    n_actions: usize,
    replay: ReplayBuffer,
    rng: Stream,
    /// Iterations done.
    pub iteration: u64,
    /// Environment steps done.
    pub global_step: u64,
    vector_step: u64,
}

impl Dqn {
    /// Builds the run: `envs` already made (same-step autoreset is set here), `device`
    /// an autodiff device, `seed` for everything.
    pub fn new(
        config: DqnConfig,
        mut envs: VectorEnv,
        device: Device,
        seed: u64,
    ) -> Result<Dqn, LearnError> {
        config.validate()?;
        if envs.num_envs() != config.num_envs {
            return Err(LearnError::Unfit {
                algorithm: "dqn",
                env: envs.single_env().id().to_string(),
                reason: format!(
                    "{} envs given, num_envs is {}",
                    envs.num_envs(),
                    config.num_envs
                ),
            });
        }
        let unfit = |reason: String| LearnError::Unfit {
            algorithm: "dqn",
            env: envs.single_env().id().to_string(),
            reason,
        };
        if envs.graph_observations() {
            return Err(unfit(
                "it reads flat observations, and the env gives graphs: set the env's \
                 observation = \"matrix\" (or train the GNN with PPO)"
                    .into(),
            ));
        }
        let n_actions = match envs.single_env().action_space() {
            Space::Discrete { n } => *n as usize,
            other => {
                return Err(unfit(format!(
                    "it needs a Discrete action space, not {other:?}"
                )));
            }
        };
        envs.set_mode(AutoReset::SameStep);
        // Episode returns and lengths come from the envs' infos.
        envs.record_episode_statistics();
        let model = super::seeded(&device, seed, |d| {
            ActorCritic::new(envs.obs_dim(), n_actions, &config.hidden, d)
        });
        let target = model.valid();
        let mask_len = if envs.masks.is_empty() { 0 } else { n_actions };
        let replay = ReplayBuffer::new(config.buffer_size, envs.obs_dim(), mask_len)?;
        envs.reset(Some(seed))?;
        Ok(Dqn {
            optim: AdamConfig::new().init(),
            model,
            target,
            device,
            envs,
            heads: Heads {
                sizes: vec![n_actions],
            },
            n_actions,
            replay,
            rng: Stream::from_key(hale_sim::rng::mix64(seed ^ 0xd0d0_d0d0)),
            iteration: 0,
            global_step: 0,
            vector_step: 0,
            config,
        })
    }

    /// One gradient step on a uniform minibatch; returns the TD loss and the mean
    /// Q-value of the taken actions. `online` is the online network without autodiff.
    fn update(&mut self, online: &ActorCritic) -> Result<(f64, f64), TrainError> {
        let cfg = &self.config;
        let (b, d, a_n) = (cfg.batch_size, self.replay.obs_dim, self.n_actions);
        let m = self.replay.mask_len;
        let idx: Vec<usize> = (0..b).map(|_| self.rng.below(self.replay.len())).collect();
        let rows = |src: &[f32]| -> Vec<f32> {
            idx.iter()
                .flat_map(|&k| src[k * d..(k + 1) * d].iter().copied())
                .collect()
        };
        let infer_device = self.device.clone().inner();

        // Targets, outside the graph: r + γ (1 − terminated) Q_target(s', a*).
        let next = rows(&self.replay.next_obs);
        let q_target = to_vec(
            self.target
                .logits(tensor2(next.clone(), b, d, &infer_device)),
        );
        let q_pick = if cfg.double_dqn {
            to_vec(online.logits(tensor2(next, b, d, &infer_device)))
        } else {
            q_target.clone()
        };
        let mut y = Vec::with_capacity(b);
        for (j, &k) in idx.iter().enumerate() {
            let allowed = |a: usize| m == 0 || self.replay.next_masks[k * m + a];
            let best = argmax_allowed(&q_pick[j * a_n..(j + 1) * a_n], allowed);
            let bootstrap = if self.replay.terminated[k] {
                0.0
            } else {
                cfg.gamma as f32 * q_target[j * a_n + best]
            };
            y.push(self.replay.rewards[k] + bootstrap);
        }

        let obs = tensor2(rows(&self.replay.obs), b, d, &self.device);
        let actions: Vec<i64> = idx.iter().map(|&k| self.replay.actions[k]).collect();
        let actions = Tensor::<2, Int>::from_data(TensorData::new(actions, [b, 1]), &self.device);
        let q_taken = self
            .model
            .logits(obs)
            .gather(1, actions)
            .squeeze_dim::<1>(1);
        let loss = (q_taken.clone() - tensor1(y, &self.device)).square().mean();
        let loss_v = f64::from(to_vec(loss.clone().detach())[0]);
        if !loss_v.is_finite() {
            return Err(TrainError::NonFinite {
                iteration: self.iteration + 1,
                what: "the TD loss".into(),
            });
        }
        let q_mean = f64::from(to_vec(q_taken.detach().mean())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optim
            .step(cfg.learning_rate, self.model.clone(), grads);
        Ok((loss_v, q_mean))
    }
}

/// The index of the largest value among the allowed ones (the first on ties; 0 when
/// none is allowed).
fn argmax_allowed(values: &[f32], allowed: impl Fn(usize) -> bool) -> usize {
    let mut best: Option<usize> = None;
    for (a, &v) in values.iter().enumerate() {
        if allowed(a) && best.is_none_or(|b| v > values[b]) {
            best = Some(a);
        }
    }
    best.unwrap_or(0)
}

const DQN_METRICS: &[&str] = &["losses/td_loss", "losses/q_values", "charts/epsilon"];

impl Learner for Dqn {
    fn algorithm(&self) -> &'static str {
        "dqn"
    }

    /// `steps_per_iteration` environment steps: act, store, and learn as scheduled.
    fn iterate(&mut self) -> Result<IterationStats, TrainError> {
        let cfg = self.config.clone();
        let (n, d, a_n) = (cfg.num_envs, self.envs.obs_dim(), self.n_actions);
        let iteration = self.iteration + 1;
        let bad_input = |what: String| TrainError::NonFiniteInput { iteration, what };
        let infer_device = self.device.clone().inner();
        let mut infer = self.model.valid();
        let mut stats = IterationStats {
            learning_rate: cfg.learning_rate,
            ..Default::default()
        };
        let (mut td_losses, mut q_means, mut epsilon) = (Vec::new(), Vec::new(), cfg.start_e);
        for _ in 0..cfg.steps_per_iteration / n as u64 {
            if let Some(k) = self.envs.obs.iter().position(|x| !x.is_finite()) {
                return Err(bad_input(format!(
                    "observation feature {} of env {}",
                    k % d,
                    k / d
                )));
            }
            // Act: ε-greedy over the allowed actions.
            epsilon = linear_schedule(
                cfg.start_e,
                cfg.end_e,
                cfg.exploration_fraction * cfg.total_timesteps as f64,
                self.global_step,
            );
            let q = to_vec(infer.logits(tensor2(self.envs.obs.clone(), n, d, &infer_device)));
            let masks = &self.envs.masks;
            let allowed = |i: usize, a: usize| masks.is_empty() || masks[i * a_n + a];
            let mut actions = Vec::with_capacity(n);
            for i in 0..n {
                let a = if self.rng.unit() < epsilon {
                    let choices: Vec<usize> = (0..a_n).filter(|&a| allowed(i, a)).collect();
                    choices[self.rng.below(choices.len())]
                } else {
                    argmax_allowed(&q[i * a_n..(i + 1) * a_n], |a| allowed(i, a))
                };
                actions.push(a);
            }
            let prev_obs = self.envs.obs.clone();
            let values: Vec<Value> = actions.iter().map(|&a| Value::Discrete(a as i64)).collect();
            self.envs.step(&values)?;
            self.global_step += n as u64;
            self.vector_step += 1;

            // Store: a finished episode's next observation is its final one.
            for (i, &a) in actions.iter().enumerate() {
                let r = self.envs.rewards[i];
                if !r.is_finite() {
                    return Err(bad_input(format!("reward of env {i}")));
                }
                let done = self.envs.terminated[i] || self.envs.truncated[i];
                let next = if done {
                    &self.envs.final_obs[i * d..(i + 1) * d]
                } else {
                    &self.envs.obs[i * d..(i + 1) * d]
                };
                let next_mask = (!done && !self.envs.masks.is_empty())
                    .then(|| &self.envs.masks[i * a_n..(i + 1) * a_n]);
                self.replay.push(
                    &prev_obs[i * d..(i + 1) * d],
                    a as i64,
                    r as f32,
                    next,
                    self.envs.terminated[i],
                    next_mask,
                );
                if let Some(episode) = self.envs.infos[i].episode {
                    stats.episodic_returns.push(episode.r);

                    stats.episodic_lengths.push(episode.l);
                }
            }

            // Learn.
            if self.global_step > cfg.learning_starts {
                if self.vector_step.is_multiple_of(cfg.train_frequency) {
                    let (loss, q_mean) = self.update(&infer)?;
                    td_losses.push(loss);
                    q_means.push(q_mean);
                    infer = self.model.valid();
                }
                if self
                    .vector_step
                    .is_multiple_of(cfg.target_network_frequency)
                {
                    self.target = self.model.valid();
                }
            }
        }
        stats.global_step = self.global_step;
        let mean = |v: &[f64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        stats.metrics = vec![
            ("losses/td_loss", mean(&td_losses)),
            ("losses/q_values", mean(&q_means)),
            ("charts/epsilon", epsilon),
        ];
        self.iteration += 1;
        Ok(stats)
    }

    fn iteration(&self) -> u64 {
        self.iteration
    }

    fn global_step(&self) -> u64 {
        self.global_step
    }

    fn num_iterations(&self) -> u64 {
        self.config.num_iterations()
    }

    fn steps_per_iteration(&self) -> u64 {
        self.config.steps_per_iteration
    }

    fn metric_names(&self) -> &'static [&'static str] {
        DQN_METRICS
    }

    /// Resets every environment (seeds from `seed` and the iteration) and forgets
    /// unfinished episodes; the replay buffer is kept.
    fn reset_envs(&mut self, seed: u64) -> Result<(), EnvError> {
        let s = hale_sim::rng::mix64(seed ^ self.iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.envs.reset(Some(s))?;
        Ok(())
    }

    /// The run's state, the online and target networks (`model.bpk`, `target.bpk`),
    /// the optimiser (`optim.bin`) and the replay buffer (`replay.bin`).
    fn checkpoint(&self) -> Result<Checkpoint, LearnError> {
        let state = DqnState {
            iteration: self.iteration,
            global_step: self.global_step,
            vector_step: self.vector_step,
            rng: self.rng.state(),
        };
        Ok(Checkpoint {
            state: serde_json::to_value(state).map_err(|e| LearnError::checkpoint("state", e))?,
            files: vec![
                (
                    "model.bpk".into(),
                    crate::weights::module_bytes(self.model.clone())?,
                ),
                (
                    "target.bpk".into(),
                    crate::weights::module_bytes(self.target.clone())?,
                ),
                (
                    "optim.bin".into(),
                    self.optim
                        .into_bytes()
                        .map_err(|e| LearnError::checkpoint("optim.bin", e))?
                        .to_vec(),
                ),
                ("replay.bin".into(), self.replay.to_bytes()),
            ],
        })
    }

    /// Continues from a [`Learner::checkpoint`] of a run with the same config and seed.
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), LearnError> {
        let state: DqnState = serde_json::from_value(checkpoint.state.clone())
            .map_err(|e| LearnError::checkpoint("state", e))?;
        self.model = crate::weights::load_module_bytes(
            self.model.clone(),
            checkpoint.file("model.bpk")?.to_vec(),
        )?;
        self.target = crate::weights::load_module_bytes(
            self.target.clone(),
            checkpoint.file("target.bpk")?.to_vec(),
        )?;
        self.optim = AdamConfig::new()
            .init()
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(
                checkpoint.file("optim.bin")?.to_vec(),
            ))
            .map_err(|e| LearnError::checkpoint("optim.bin", e))?;
        self.replay = ReplayBuffer::from_bytes(
            checkpoint.file("replay.bin")?,
            self.replay.capacity,
            self.replay.obs_dim,
            self.replay.mask_len,
        )?;
        self.iteration = state.iteration;
        self.global_step = state.global_step;
        self.vector_step = state.vector_step;
        self.rng = Stream::from_state(state.rng);
        Ok(())
    }

    fn heads(&self) -> &Heads {
        &self.heads
    }

    fn network(&self) -> crate::network::Network {
        crate::network::Network::Mlp(self.model.valid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_falls_linearly_then_stays() {
        assert_eq!(linear_schedule(1.0, 0.05, 100.0, 0), 1.0);
        assert!((linear_schedule(1.0, 0.05, 100.0, 50) - 0.525).abs() < 1e-12);
        assert_eq!(linear_schedule(1.0, 0.05, 100.0, 100), 0.05);
        assert_eq!(linear_schedule(1.0, 0.05, 100.0, 1000), 0.05);
    }

    #[test]
    fn replay_round_trips_and_refuses_truncation() {
        let mut b = ReplayBuffer::new(3, 2, 2).unwrap();
        for k in 0..5 {
            let x = k as f32;
            b.push(
                &[x, -x],
                k,
                x * 0.5,
                &[x + 1.0, 0.0],
                k % 2 == 0,
                Some(&[true, k != 3]),
            );
        }
        assert_eq!(b.len(), 3);
        let bytes = b.to_bytes();
        assert_eq!(ReplayBuffer::from_bytes(&bytes, 3, 2, 2).unwrap(), b);
        let e = ReplayBuffer::from_bytes(&bytes[..bytes.len() - 1], 3, 2, 2).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = ReplayBuffer::from_bytes(&bytes, 4, 2, 2).unwrap_err();
        assert!(e.to_string().contains("the run needs 4"), "{e}");
    }

    #[test]
    fn argmax_skips_masked_actions() {
        assert_eq!(argmax_allowed(&[3.0, 1.0, 2.0], |_| true), 0);
        assert_eq!(argmax_allowed(&[3.0, 1.0, 2.0], |a| a != 0), 2);
        assert_eq!(argmax_allowed(&[1.0, 1.0], |_| true), 0);
    }
}
