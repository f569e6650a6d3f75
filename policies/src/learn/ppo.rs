//! Proximal Policy Optimization (Schulman et al., 2017), read top to bottom as
//! CleanRL's `ppo.py`: hyperparameters, network, rollout, advantages (GAE), update.
//!
//! - Rollouts: `num_envs` environments in a [`VectorEnv`] with same-step autoreset, so
//!   the last observation of an episode is known: a **truncated** episode's last reward
//!   is bootstrapped with `γ · V(final_obs)`; a **terminated** one is not. `truncated`
//!   is never treated as terminal.
//! - Actions: one categorical head per `Discrete` / `MultiDiscrete` component; the
//!   environment's action mask sets masked logits to −1e8 when sampling and when
//!   computing log-probabilities and entropies.
//! - Update: GAE(λ), advantage normalisation per minibatch, clipped surrogate, clipped
//!   value loss, entropy bonus, `update_epochs` epochs of `num_minibatches` shuffled
//!   minibatches, linear learning-rate annealing, global gradient-norm clipping, and an
//!   optional early stop on approximate KL.
//! - Networks: an MLP over flat observations, or (`network = "gnn"`) a GraphSAGE
//!   network over the env's resource graph, whose node scores are the action logits
//!   (see [`crate::network`]). The rollout stores graphs as they came.
//! - Randomness: one seeded stream for action sampling and minibatch order, and the
//!   backend seeded for the initial weights: same seed, same run, bit for bit.

use super::{
    Checkpoint, HyperparameterError, IterationStats, LearnError, Learner, MAX_TRANSITIONS,
    TrainError, check_counts, check_fractions, check_reals,
};
use crate::nets::{Heads, tensor1, to_vec};
use crate::network::{Encoder, GnnSpec, LayoutSpec, Network, NetworkKind, Observations};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use hale_envs::wrappers::{RewardNormalizer, RunningMeanStd};
use hale_envs::{AutoReset, EnvError, GraphValue, Space, Value, VectorEnv};
use hale_sim::rng::Stream;
use serde::{Deserialize, Serialize};

/// PPO hyperparameters (defaults: CleanRL's `ppo.py`, tuned for CartPole-v1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Environment steps in all (over all envs).
    pub total_timesteps: u64,
    /// Adam learning rate (annealed linearly to 0 when `anneal_lr`).
    pub learning_rate: f64,
    /// Parallel environments.
    pub num_envs: usize,
    /// Steps per environment per rollout.
    pub num_steps: usize,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    /// Discount factor γ.
    pub gamma: f64,
    /// GAE λ.
    pub gae_lambda: f64,
    /// Minibatches per epoch.
    pub num_minibatches: usize,
    /// Epochs over each rollout.
    pub update_epochs: usize,
    /// Normalise advantages per minibatch.
    pub norm_adv: bool,
    /// Surrogate clipping coefficient ε.
    pub clip_coef: f64,
    /// Clip the value loss with `clip_coef` as well.
    pub clip_vloss: bool,
    /// Entropy bonus coefficient.
    pub ent_coef: f64,
    /// Value loss coefficient.
    pub vf_coef: f64,
    /// Largest global gradient norm.
    pub max_grad_norm: f64,
    /// Stop the epochs of an update early when the approximate KL exceeds this.
    pub target_kl: Option<f64>,
    /// Hidden layer widths of the actor and of the critic (MLP).
    pub hidden: Vec<usize>,
    /// `mlp` over flat observations, or `gnn` over graph observations (set the env's
    /// `observation = "graph"`).
    pub network: NetworkKind,
    /// GNN: width of the node embeddings.
    pub gnn_hidden: usize,
    /// GNN: message-passing (GraphSAGE) layers.
    pub gnn_layers: usize,
    /// Divide rewards by the running standard deviation of the discounted return
    /// (Gymnasium's `NormalizeReward`, one statistic over all envs) before GAE. Logged
    /// episodic returns stay in the env's units.
    pub normalize_reward: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            total_timesteps: 500_000,
            learning_rate: 2.5e-4,
            num_envs: 4,
            num_steps: 128,
            anneal_lr: true,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            hidden: vec![64, 64],
            network: NetworkKind::Mlp,
            gnn_hidden: 64,
            gnn_layers: 2,
            normalize_reward: false,
        }
    }
}

impl PpoConfig {
    /// Rollout size: `num_envs · num_steps` (at most [`MAX_TRANSITIONS`] in a
    /// validated config).
    pub fn batch_size(&self) -> usize {
        self.num_envs.saturating_mul(self.num_steps)
    }

    /// `batch_size / num_minibatches`.
    pub fn minibatch_size(&self) -> usize {
        self.batch_size() / self.num_minibatches.max(1)
    }

    /// Updates in the run: `total_timesteps / batch_size`.
    pub fn num_iterations(&self) -> u64 {
        self.total_timesteps / self.batch_size().max(1) as u64
    }

    /// Checks the values before anything is built; the error names the field.
    pub fn validate(&self) -> Result<(), HyperparameterError> {
        check_counts(&[
            ("num_envs", self.num_envs as u64),
            ("num_steps", self.num_steps as u64),
            ("num_minibatches", self.num_minibatches as u64),
            ("update_epochs", self.update_epochs as u64),
            ("gnn_hidden", self.gnn_hidden as u64),
            ("gnn_layers", self.gnn_layers as u64),
        ])?;
        check_reals(&[
            ("learning_rate", self.learning_rate, true),
            ("clip_coef", self.clip_coef, true),
            ("max_grad_norm", self.max_grad_norm, true),
            ("ent_coef", self.ent_coef, false),
            ("vf_coef", self.vf_coef, false),
        ])?;
        if let Some(kl) = self.target_kl {
            check_reals(&[("target_kl", kl, true)])?;
        }
        check_fractions(&[("gamma", self.gamma), ("gae_lambda", self.gae_lambda)])?;
        let batch = (self.num_envs as u64).checked_mul(self.num_steps as u64);
        if batch.is_none_or(|b| b > MAX_TRANSITIONS) {
            return Err(HyperparameterError::new(
                "num_steps",
                format!(
                    "a rollout of num_envs · num_steps = {} · {} transitions is more than {MAX_TRANSITIONS}",
                    self.num_envs, self.num_steps
                ),
            ));
        }
        if !self.batch_size().is_multiple_of(self.num_minibatches) {
            return Err(HyperparameterError::new(
                "num_minibatches",
                format!(
                    "{} must divide num_envs · num_steps ({})",
                    self.num_minibatches,
                    self.batch_size()
                ),
            ));
        }
        if self.num_iterations() == 0 {
            return Err(HyperparameterError::new(
                "total_timesteps",
                format!(
                    "{} is less than one rollout ({})",
                    self.total_timesteps,
                    self.batch_size()
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

/// The categorical heads of an action space (`None` for spaces PPO here does not
/// handle).
pub fn heads_of(space: &Space) -> Option<Heads> {
    match space {
        Space::Discrete { n } => Some(Heads {
            sizes: vec![*n as usize],
        }),
        Space::MultiDiscrete { nvec } => Some(Heads {
            sizes: nvec.iter().map(|&n| n as usize).collect(),
        }),
        _ => None,
    }
}

/// A PPO run in progress: the network, its optimiser, the environments and the
/// random stream. [`Ppo::iterate`] does one rollout and one update.
pub struct Ppo {
    /// Hyperparameters.
    pub config: PpoConfig,
    model: Option<Network>,
    optim: ModuleOptimizer,
    device: Device,
    envs: VectorEnv,
    heads: Heads,
    rng: Stream,
    /// Iterations done.
    pub iteration: u64,
    /// Environment steps done.
    pub global_step: u64,
    starts: Vec<bool>,
    /// Reward normalisation (Gymnasium's), one running return per env.
    reward_norm: RewardNormalizer,
}

impl Ppo {
    /// Builds the run: `envs` (same-step autoreset is set here) already made, `device`
    /// an autodiff device (the binary picks the backend), `seed` for everything.
    pub fn new(
        config: PpoConfig,
        mut envs: VectorEnv,
        device: Device,
        seed: u64,
    ) -> Result<Ppo, LearnError> {
        config.validate()?;
        if envs.num_envs() != config.num_envs {
            return Err(LearnError::Unfit {
                algorithm: "ppo",
                env: envs.single_env().id().to_string(),
                reason: format!(
                    "{} envs given, num_envs is {}",
                    envs.num_envs(),
                    config.num_envs
                ),
            });
        }
        let heads =
            heads_of(envs.single_env().action_space()).ok_or_else(|| LearnError::Unfit {
                algorithm: "ppo",
                env: envs.single_env().id().to_string(),
                reason: format!(
                    "it needs a Discrete or MultiDiscrete action space, not {:?}",
                    envs.single_env().action_space()
                ),
            })?;
        let encoder = encoder_for(&config, &envs, &heads)?;
        envs.set_mode(AutoReset::SameStep);
        // Episode returns and lengths come from the envs' infos.
        envs.record_episode_statistics();
        let model = super::seeded(&device, seed, |d| {
            Network::new(&encoder, envs.obs_dim(), heads.total(), &config.hidden, d)
        });
        let optim = AdamConfig::new().with_epsilon(1e-5).init();
        envs.reset(Some(seed))?;
        let n = config.num_envs;
        let reward_norm = RewardNormalizer::new(n, config.gamma);
        Ok(Ppo {
            config,
            model: Some(model),
            optim,
            device,
            envs,
            heads,
            rng: Stream::from_key(hale_sim::rng::mix64(seed ^ 0x5050_5050)),
            iteration: 0,
            global_step: 0,
            starts: vec![false; n],
            reward_norm,
        })
    }

    /// The actor-critic (on the autodiff device).
    pub fn model(&self) -> &Network {
        self.model
            .as_ref()
            .expect("the model is put back after each step")
    }

    /// Whether the run has done all its iterations.
    pub fn done(&self) -> bool {
        self.iteration >= self.config.num_iterations()
    }

    /// One rollout of `num_steps` in every env, then the update.
    pub fn iterate(&mut self) -> Result<IterationStats, TrainError> {
        let cfg = self.config.clone();
        let (n, t_len, d) = (cfg.num_envs, cfg.num_steps, self.envs.obs_dim());
        let n_heads = self.heads.sizes.len();
        let mask_len = if self.envs.masks.is_empty() {
            0
        } else {
            self.heads.total()
        };
        let infer_device = self.device.clone().inner();
        let infer = self.model().valid();
        let gamma = cfg.gamma;

        // Annealing: lr = (1 − iteration / iterations) · learning_rate.
        let frac = 1.0 - self.iteration as f64 / cfg.num_iterations() as f64;
        let lr = if cfg.anneal_lr {
            frac * cfg.learning_rate
        } else {
            cfg.learning_rate
        };

        // Rollout.
        let graph = self.envs.graph_observations();
        let mut obs_buf = Vec::with_capacity(t_len * n * d);
        let mut graph_buf: Vec<GraphValue> = Vec::with_capacity(if graph { t_len * n } else { 0 });
        let mut mask_buf = Vec::with_capacity(t_len * n * mask_len);
        let mut act_buf = Vec::with_capacity(t_len * n * n_heads);
        let mut logp_buf = Vec::with_capacity(t_len * n);
        let mut val_buf = Vec::with_capacity(t_len * n);
        let mut rew_buf = Vec::with_capacity(t_len * n);
        let mut start_buf = Vec::with_capacity(t_len * n);
        let mut stats = IterationStats {
            learning_rate: lr,
            ..Default::default()
        };
        let iteration = self.iteration + 1;
        let non_finite = |what: String| TrainError::NonFinite { iteration, what };
        let bad_input = |what: String| TrainError::NonFiniteInput { iteration, what };
        let refused = |e: crate::network::ForwardError| TrainError::Observation {
            iteration,
            message: e.to_string(),
        };
        for _ in 0..t_len {
            if let Some(what) = non_finite_observation(&self.envs) {
                return Err(bad_input(what));
            }
            let (logits, values) = infer
                .forward(current_obs(&self.envs), &infer_device)
                .map_err(refused)?;
            let (logits, values) = (to_vec(logits), to_vec(values));
            let rng = &mut self.rng;
            let (actions, logp) = self
                .heads
                .sample(&logits, &self.envs.masks, n, || rng.unit());
            obs_buf.extend_from_slice(&self.envs.obs);
            graph_buf.extend_from_slice(&self.envs.graphs);
            mask_buf.extend_from_slice(&self.envs.masks);
            act_buf.extend_from_slice(&actions);
            logp_buf.extend_from_slice(&logp);
            val_buf.extend_from_slice(&values);
            start_buf.extend_from_slice(&self.starts);
            let values_of_actions: Vec<Value> = actions
                .chunks(n_heads)
                .map(|a| {
                    if n_heads == 1
                        && matches!(
                            self.envs.single_env().action_space(),
                            Space::Discrete { .. }
                        )
                    {
                        Value::Discrete(a[0])
                    } else {
                        Value::MultiDiscrete(a.to_vec())
                    }
                })
                .collect();
            self.envs.step(&values_of_actions)?;
            self.global_step += n as u64;
            // Bootstrap truncated episodes from their final observation.
            let truncated: Vec<usize> = (0..n)
                .filter(|&i| self.envs.truncated[i] && !self.envs.terminated[i])
                .collect();
            let mut final_values = vec![0.0f32; n];
            if !truncated.is_empty() {
                let fin: Vec<f32> = truncated
                    .iter()
                    .flat_map(|&i| self.envs.final_obs[i * d..(i + 1) * d].iter().copied())
                    .collect();
                let obs = if graph {
                    Observations::Graphs(
                        truncated
                            .iter()
                            .map(|&i| &self.envs.final_graphs[i])
                            .collect(),
                    )
                } else {
                    Observations::Flat {
                        values: &fin,
                        rows: truncated.len(),
                    }
                };
                let v = to_vec(infer.value(obs, &infer_device).map_err(refused)?);
                for (k, &i) in truncated.iter().enumerate() {
                    final_values[i] = v[k];
                }
            }
            for (i, &final_value) in final_values.iter().enumerate() {
                let r = self.envs.rewards[i];
                if !r.is_finite() {
                    return Err(bad_input(format!("reward of env {i}")));
                }
                let done = self.envs.terminated[i] || self.envs.truncated[i];
                let r = if cfg.normalize_reward {
                    self.reward_norm.normalize(i, r, self.envs.terminated[i])
                } else {
                    r
                };
                rew_buf.push((r + gamma * f64::from(final_value)) as f32);
                self.starts[i] = done;
                if let Some(episode) = self.envs.infos[i].episode {
                    stats.episodic_returns.push(episode.r);

                    stats.episodic_lengths.push(episode.l);
                }
            }
        }
        stats.global_step = self.global_step;

        // Advantages: GAE(λ), bootstrapped from the value of the next observation.
        let next_value = to_vec(
            infer
                .value(current_obs(&self.envs), &infer_device)
                .map_err(refused)?,
        );
        let mut advantages = vec![0.0f32; t_len * n];
        for i in 0..n {
            let mut last = 0.0f64;
            for t in (0..t_len).rev() {
                let (next_nonterminal, next_v) = if t == t_len - 1 {
                    (
                        f64::from(u8::from(!self.starts[i])),
                        f64::from(next_value[i]),
                    )
                } else {
                    (
                        f64::from(u8::from(!start_buf[(t + 1) * n + i])),
                        f64::from(val_buf[(t + 1) * n + i]),
                    )
                };
                let k = t * n + i;
                let delta = f64::from(rew_buf[k]) + gamma * next_v * next_nonterminal
                    - f64::from(val_buf[k]);
                last = delta + gamma * cfg.gae_lambda * next_nonterminal * last;
                advantages[k] = last as f32;
            }
        }
        let returns: Vec<f32> = advantages
            .iter()
            .zip(&val_buf)
            .map(|(a, v)| a + v)
            .collect();

        // Update: epochs of shuffled minibatches.
        let batch = t_len * n;
        let mb = cfg.minibatch_size();
        let mut order: Vec<usize> = (0..batch).collect();
        let (mut clipfracs, mut last_pg, mut last_v, mut last_ent, mut last_kl) =
            (Vec::new(), 0.0, 0.0, 0.0, 0.0);
        'epochs: for _ in 0..cfg.update_epochs {
            for i in (1..batch).rev() {
                order.swap(i, self.rng.below(i + 1));
            }
            for chunk in order.chunks(mb) {
                let pick = |src: &[f32], w: usize| -> Vec<f32> {
                    chunk
                        .iter()
                        .flat_map(|&k| src[k * w..(k + 1) * w].iter().copied())
                        .collect()
                };
                let m = chunk.len();
                let flat = pick(&obs_buf, d);
                let obs = if graph {
                    Observations::Graphs(chunk.iter().map(|&k| &graph_buf[k]).collect())
                } else {
                    Observations::Flat {
                        values: &flat,
                        rows: m,
                    }
                };
                let acts: Vec<i64> = chunk
                    .iter()
                    .flat_map(|&k| act_buf[k * n_heads..(k + 1) * n_heads].iter().copied())
                    .collect();
                let acts =
                    Tensor::<2, Int>::from_data(TensorData::new(acts, [m, n_heads]), &self.device);
                let mask = (mask_len > 0).then(|| {
                    let v: Vec<bool> = chunk
                        .iter()
                        .flat_map(|&k| mask_buf[k * mask_len..(k + 1) * mask_len].iter().copied())
                        .collect();
                    Tensor::<2, Bool>::from_data(TensorData::new(v, [m, mask_len]), &self.device)
                });
                let old_logp = tensor1(pick(&logp_buf, 1), &self.device);
                let old_v = tensor1(pick(&val_buf, 1), &self.device);
                let ret = tensor1(pick(&returns, 1), &self.device);
                let mut adv = pick(&advantages, 1);
                if cfg.norm_adv && m > 1 {
                    let mean = adv.iter().map(|&a| f64::from(a)).sum::<f64>() / m as f64;
                    let var = adv
                        .iter()
                        .map(|&a| (f64::from(a) - mean).powi(2))
                        .sum::<f64>()
                        / (m - 1) as f64;
                    let sd = var.sqrt() + 1e-8;
                    for a in &mut adv {
                        *a = ((f64::from(*a) - mean) / sd) as f32;
                    }
                }
                let adv = tensor1(adv, &self.device);

                let (logits, new_v) = self.model().forward(obs, &self.device).map_err(refused)?;
                let head = self.heads.stats(logits, mask, acts);
                let log_ratio = head.log_prob - old_logp;
                let ratio = log_ratio.clone().exp();
                {
                    // Diagnostics, outside the graph.
                    let lr_v = to_vec(log_ratio.clone().detach());
                    let kl = lr_v
                        .iter()
                        .map(|&x| (f64::from(x).exp() - 1.0) - f64::from(x))
                        .sum::<f64>()
                        / m as f64;
                    let cf = lr_v
                        .iter()
                        .filter(|&&x| (f64::from(x).exp() - 1.0).abs() > cfg.clip_coef)
                        .count() as f64
                        / m as f64;
                    last_kl = kl;
                    clipfracs.push(cf);
                }
                let pg1 = -adv.clone() * ratio.clone();
                let pg2 = -adv * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
                let pg_loss = pg1.max_pair(pg2).mean();
                let v_loss = if cfg.clip_vloss {
                    let unclipped = (new_v.clone() - ret.clone()).square();
                    let clipped =
                        old_v.clone() + (new_v - old_v).clamp(-cfg.clip_coef, cfg.clip_coef);
                    let clipped = (clipped - ret).square();
                    unclipped.max_pair(clipped).mean() * 0.5
                } else {
                    (new_v - ret).square().mean() * 0.5
                };
                let entropy = head.entropy.mean();
                let loss =
                    pg_loss.clone() - entropy.clone() * cfg.ent_coef + v_loss.clone() * cfg.vf_coef;
                last_pg = f64::from(to_vec(pg_loss.detach())[0]);
                last_v = f64::from(to_vec(v_loss.detach())[0]);
                last_ent = f64::from(to_vec(entropy.detach())[0]);
                for (what, v) in [
                    ("the policy loss", last_pg),
                    ("the value loss", last_v),
                    ("the entropy", last_ent),
                ] {
                    if !v.is_finite() {
                        return Err(non_finite(what.into()));
                    }
                }

                let mut grads = GradientsParams::from_grads(loss.backward(), self.model());
                clip_global_norm(&mut grads, self.model(), cfg.max_grad_norm as f32);
                let model = self
                    .model
                    .take()
                    .expect("the model is put back after each step");
                self.model = Some(self.optim.step(lr, model, grads));
            }
            if let Some(target) = cfg.target_kl
                && last_kl > target
            {
                break 'epochs;
            }
        }
        let var_y = variance(&returns);
        let resid: Vec<f32> = returns.iter().zip(&val_buf).map(|(r, v)| r - v).collect();
        let explained_variance = if var_y == 0.0 {
            f64::NAN
        } else {
            1.0 - variance(&resid) / var_y
        };
        stats.metrics = vec![
            ("losses/value_loss", last_v),
            ("losses/policy_loss", last_pg),
            ("losses/entropy", last_ent),
            ("losses/approx_kl", last_kl),
            (
                "losses/clipfrac",
                clipfracs.iter().sum::<f64>() / clipfracs.len().max(1) as f64,
            ),
            ("losses/explained_variance", explained_variance),
        ];
        self.iteration += 1;
        Ok(stats)
    }
}

/// What a run needs to continue exactly where it stopped (taken at an iteration
/// boundary, right after [`Ppo::reset_envs`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    /// Iterations done.
    pub iteration: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// The action/minibatch stream.
    pub rng: [u64; 4],
    /// Running statistics of the discounted return (reward normalisation).
    #[serde(default = "no_reward_stats")]
    pub reward_stats: RunningMeanStd,
}

fn no_reward_stats() -> RunningMeanStd {
    RunningMeanStd::new(1)
}

impl Ppo {
    /// Resets every environment with seeds derived from `seed` and the iteration (so a
    /// resumed run resets them the same way) and forgets unfinished episodes. The
    /// trainer calls it at each checkpoint boundary, resumed or not.
    pub fn reset_envs(&mut self, seed: u64) -> Result<(), EnvError> {
        let s = hale_sim::rng::mix64(seed ^ self.iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.envs.reset(Some(s))?;
        self.starts.fill(false);
        self.reward_norm.forget_returns();
        Ok(())
    }

    /// The run's state, the network's weights (`model.bpk`, burnpack) and the
    /// optimiser's state (`optim.bin`, burn's optimiser record).
    pub fn checkpoint(&self) -> Result<Checkpoint, LearnError> {
        let model = crate::weights::module_bytes(self.model().clone())?;
        let optim = self
            .optim
            .into_bytes()
            .map_err(|e| LearnError::checkpoint("optim.bin", e))?
            .to_vec();
        let state = RunState {
            iteration: self.iteration,
            global_step: self.global_step,
            rng: self.rng.state(),
            reward_stats: self.reward_norm.stats.clone(),
        };
        Ok(Checkpoint {
            state: serde_json::to_value(state).map_err(|e| LearnError::checkpoint("state", e))?,
            files: vec![("model.bpk".into(), model), ("optim.bin".into(), optim)],
        })
    }

    /// Continues from a checkpoint taken by [`Ppo::checkpoint`] on a run with the same
    /// config and seed.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), LearnError> {
        let state: RunState = serde_json::from_value(checkpoint.state.clone())
            .map_err(|e| LearnError::checkpoint("state", e))?;
        let current = self
            .model
            .take()
            .expect("the model is put back after each step");
        self.model = Some(crate::weights::load_module_bytes(
            current,
            checkpoint.file("model.bpk")?.to_vec(),
        )?);
        let fresh = AdamConfig::new().with_epsilon(1e-5).init();
        self.optim = fresh
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(
                checkpoint.file("optim.bin")?.to_vec(),
            ))
            .map_err(|e| LearnError::checkpoint("optim.bin", e))?;
        self.iteration = state.iteration;
        self.global_step = state.global_step;
        self.rng = Stream::from_state(state.rng);
        self.reward_norm.stats = state.reward_stats;
        Ok(())
    }

    /// The categorical heads.
    pub fn heads(&self) -> &Heads {
        &self.heads
    }
}

fn variance(x: &[f32]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    x.iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n
}

/// Scales every gradient so that their global L2 norm is at most `max` (PyTorch's
/// `clip_grad_norm_`); returns the norm before clipping.
pub fn clip_global_norm<M: Module>(grads: &mut GradientsParams, model: &M, max: f32) -> f32 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sq: f64,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(p.id) {
                self.sq += f64::from(g.square().sum().into_scalar::<f32>());
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        k: f32,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(p.id) {
                self.grads.register(p.id, g.mul_scalar(self.k));
            }
        }
    }
    let mut norm = Norm { grads, sq: 0.0 };
    model.visit(&mut norm);
    let total = norm.sq.sqrt() as f32;
    if total > max {
        let mut scale = Scale {
            grads,
            k: max / (total + 1e-6),
        };
        model.visit(&mut scale);
    }
    total
}

/// The names PPO logs, in order.
const PPO_METRICS: &[&str] = &[
    "losses/value_loss",
    "losses/policy_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
];

impl Learner for Ppo {
    fn algorithm(&self) -> &'static str {
        "ppo"
    }
    fn iterate(&mut self) -> Result<IterationStats, TrainError> {
        Ppo::iterate(self)
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
        self.config.batch_size() as u64
    }
    fn metric_names(&self) -> &'static [&'static str] {
        PPO_METRICS
    }
    fn reset_envs(&mut self, seed: u64) -> Result<(), EnvError> {
        Ppo::reset_envs(self, seed)
    }
    fn checkpoint(&self) -> Result<Checkpoint, LearnError> {
        Ppo::checkpoint(self)
    }
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), LearnError> {
        Ppo::restore(self, checkpoint)
    }
    fn heads(&self) -> &Heads {
        Ppo::heads(self)
    }
    fn network(&self) -> Network {
        self.model().valid()
    }
}

/// The network `config.network` asks for, checked against the envs' observations
/// and action heads.
fn encoder_for(config: &PpoConfig, envs: &VectorEnv, heads: &Heads) -> Result<Encoder, LearnError> {
    let env = envs.single_env();
    let unfit = |reason: String| LearnError::Unfit {
        algorithm: "ppo",
        env: env.id().to_string(),
        reason,
    };
    match (config.network, env.observation_space()) {
        (NetworkKind::Mlp, Space::Graph { .. }) => Err(unfit(
            "network = \"mlp\" reads flat observations, and the env gives graphs: set \
             network = \"gnn\" or the env's observation = \"matrix\""
                .into(),
        )),
        (NetworkKind::Mlp, _) => Ok(Encoder::Mlp),
        (NetworkKind::Gnn, Space::Graph { node_features, .. }) => {
            let layout = LayoutSpec::for_env(env.id(), envs.config(), env.action_space())?;
            if layout.actions() != heads.total() {
                return Err(unfit(format!(
                    "the GNN layout has {} logits, the action space {}",
                    layout.actions(),
                    heads.total()
                )));
            }
            Ok(Encoder::Gnn(GnnSpec {
                node_dim: *node_features,
                hidden: config.gnn_hidden,
                layers: config.gnn_layers,
                layout,
            }))
        }
        (NetworkKind::Gnn, _) => Err(unfit(
            "network = \"gnn\" reads graph observations, and the env gives flat ones: set \
             the env's observation = \"graph\""
                .into(),
        )),
    }
}

/// The envs' current observations as a network batch.
fn current_obs(envs: &VectorEnv) -> Observations<'_> {
    if envs.graph_observations() {
        Observations::Graphs(envs.graphs.iter().collect())
    } else {
        Observations::Flat {
            values: &envs.obs,
            rows: envs.num_envs(),
        }
    }
}

/// Where the envs' current observations hold a NaN or an infinity, if anywhere.
fn non_finite_observation(envs: &VectorEnv) -> Option<String> {
    if envs.graph_observations() {
        envs.graphs.iter().enumerate().find_map(|(i, g)| {
            g.nodes
                .iter()
                .position(|x| !x.is_finite())
                .map(|k| format!("graph node feature {k} (row-major) of env {i}"))
        })
    } else {
        let d = envs.obs_dim().max(1);
        envs.obs
            .iter()
            .position(|x| !x.is_finite())
            .map(|k| format!("observation feature {} of env {}", k % d, k / d))
    }
}
