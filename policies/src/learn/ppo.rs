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

use super::fused::{
    FusedMlp, HeadGrad, LossValues as FusedLoss, Minibatch, SPLIT_ROWS, ppo_gradient,
};
use super::fused_gnn::FusedGnn;
use super::{
    Checkpoint, HyperparameterError, IterationStats, LearnError, Learner, MAX_TRANSITIONS,
    TrainError, check_counts, check_fractions, check_reals,
};
use crate::gnn::{ActionLayout, GraphBatch};
use crate::heads::{Heads, MASKED_LOGIT};
use crate::mlp::ActorCritic;
use crate::network::{
    Encoder, ForwardError, GnnSpec, LayoutSpec, Network, NetworkKind, Observations,
};
use crate::tensors::{tensor1, to_vec};
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
    /// Multi-agent (`ippo`): one network for every agent, trained on all their
    /// transitions at once. Each agent's observation is padded to the longest and ends
    /// with a one-hot of the agent; its actions are padded and masked to its own (see
    /// [`hale_envs::sharing`]). Each agent's bundle is the shared network cut down to
    /// its own observation and actions.
    pub share_parameters: bool,
    /// Update the network on the CPU with the fused path (`learn/fused.rs` for the
    /// MLP, `learn/fused_gnn.rs` for the GNN): the same loss and Adam step with the
    /// gradient written out by hand over reused buffers, rather than burn's autodiff
    /// (several times faster for networks this small); the rollout's forward passes
    /// go through it too. GPU devices always use burn; `false` makes the CPU use it
    /// too.
    pub fused: bool,
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
            share_parameters: false,
            fused: true,
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

// ---------------------------------------------------------------------------------
// Rollout storage
// ---------------------------------------------------------------------------------

/// One rollout, stored as CleanRL's `ppo.py` stores it: step-major arrays of shape
/// `[num_steps, num_envs, …]`, flattened row-major, so transition `k = t · num_envs + i`
/// is env `i` at step `t`.
struct Rollout {
    num_steps: usize,
    num_envs: usize,
    /// Features per flat observation.
    obs_dim: usize,
    /// Logits per action mask row (0: the env gives no masks).
    mask_len: usize,
    /// Categorical heads per action.
    num_heads: usize,
    /// Observations are graphs (stored in `graphs`), not flat (in `obs`).
    graph: bool,
    /// `[num_steps, num_envs, obs_dim]`.
    obs: Vec<f32>,
    /// `[num_steps, num_envs]` (graph observations only).
    graphs: Vec<GraphValue>,
    /// `[num_steps, num_envs, mask_len]`.
    masks: Vec<bool>,
    /// `[num_steps, num_envs, num_heads]`.
    actions: Vec<i64>,
    /// `[num_steps, num_envs]`: log π(a|s) summed over heads, when sampled.
    logprobs: Vec<f32>,
    /// `[num_steps, num_envs]`: V(s) when sampled.
    values: Vec<f32>,
    /// `[num_steps, num_envs]`: the (normalised) reward, plus `γ · V(final_obs)` where
    /// the episode was truncated at this step.
    rewards: Vec<f32>,
    /// `[num_steps, num_envs]`: this step's observation begins an episode (CleanRL's
    /// `dones`, shifted: the previous step ended one).
    starts: Vec<bool>,
}

impl Rollout {
    fn with_capacity(
        num_steps: usize,
        num_envs: usize,
        obs_dim: usize,
        mask_len: usize,
        num_heads: usize,
        graph: bool,
    ) -> Rollout {
        let k = num_steps * num_envs;
        Rollout {
            num_steps,
            num_envs,
            obs_dim,
            mask_len,
            num_heads,
            graph,
            obs: Vec::with_capacity(k * obs_dim),
            graphs: Vec::with_capacity(if graph { k } else { 0 }),
            masks: Vec::with_capacity(k * mask_len),
            actions: Vec::with_capacity(k * num_heads),
            logprobs: Vec::with_capacity(k),
            values: Vec::with_capacity(k),
            rewards: Vec::with_capacity(k),
            starts: Vec::with_capacity(k),
        }
    }

    /// Transitions held: `num_steps · num_envs` once full.
    fn len(&self) -> usize {
        self.values.len()
    }

    /// The observations of transitions `idx` as a network batch (`flat` receives the
    /// rows of flat observations and must outlive the batch).
    fn observations<'a>(&'a self, idx: &[usize], flat: &'a mut Vec<f32>) -> Observations<'a> {
        if !self.graph {
            *flat = gather(&self.obs, self.obs_dim, idx);
            Observations::Flat {
                values: flat,
                rows: idx.len(),
            }
        } else {
            Observations::Graphs(idx.iter().map(|&k| &self.graphs[k]).collect())
        }
    }
}

/// Rows `idx` of `src`, whose rows are `width` values long.
fn gather<T: Copy>(src: &[T], width: usize, idx: &[usize]) -> Vec<T> {
    let mut rows = Vec::with_capacity(idx.len() * width);
    gather_into(&mut rows, src, width, idx);
    rows
}

// ---------------------------------------------------------------------------------
// Advantages
// ---------------------------------------------------------------------------------

/// Generalised advantage estimates and the returns the critic regresses on, both
/// `[num_steps, num_envs]`.
struct Advantages {
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

/// GAE(λ) over a full rollout, as CleanRL computes it: backwards in time per env,
/// `δ_t = r_t + γ · V(s_{t+1}) · (1 − start_{t+1}) − V(s_t)` and
/// `A_t = δ_t + γλ · (1 − start_{t+1}) · A_{t+1}`, bootstrapped after the last step
/// from `next_value` (`[num_envs]`) unless `next_start` says an episode begins there.
/// Returns are `A + V`.
fn gae(
    rollout: &Rollout,
    next_value: &[f32],
    next_start: &[bool],
    gamma: f64,
    lambda: f64,
) -> Advantages {
    let (t_len, n) = (rollout.num_steps, rollout.num_envs);
    let mut advantages = vec![0.0f32; t_len * n];
    for i in 0..n {
        let mut last = 0.0f64;
        for t in (0..t_len).rev() {
            let (next_nonterminal, next_v) = if t == t_len - 1 {
                (
                    f64::from(u8::from(!next_start[i])),
                    f64::from(next_value[i]),
                )
            } else {
                let k = (t + 1) * n + i;
                (
                    f64::from(u8::from(!rollout.starts[k])),
                    f64::from(rollout.values[k]),
                )
            };
            let k = t * n + i;
            let delta = f64::from(rollout.rewards[k]) + gamma * next_v * next_nonterminal
                - f64::from(rollout.values[k]);
            last = delta + gamma * lambda * next_nonterminal * last;
            advantages[k] = last as f32;
        }
    }
    let returns = advantages
        .iter()
        .zip(&rollout.values)
        .map(|(a, v)| a + v)
        .collect();
    Advantages {
        advantages,
        returns,
    }
}

// ---------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------

/// A PPO run in progress: the network, its optimiser, the environments and the
/// random stream. [`Learner::iterate`] does one rollout and one update.
pub struct Ppo {
    /// Hyperparameters.
    pub config: PpoConfig,
    model: Network,
    optim: ModuleOptimizer,
    device: Device,
    envs: VectorEnv,
    heads: Heads,
    rng: Stream,
    /// Iterations done.
    pub iteration: u64,
    /// Environment steps done.
    pub global_step: u64,
    /// `[num_envs]`: the envs' current observation begins an episode.
    starts: Vec<bool>,
    /// Reward normalisation (Gymnasium's), one running return per env.
    reward_norm: RewardNormalizer,
    /// An agent of a shared network: what its own network and heads are.
    own: Option<Own>,
    /// The network's weights and Adam state for the fused CPU update
    /// (`config.fused`), which then also runs the rollout's forward passes; `model`
    /// is kept equal to it after every update.
    fused: Option<Fused>,
}

/// One agent's part of a shared network ([`hale_envs::sharing`]): its bundle is the
/// network specialised to its inputs and logits.
struct Own {
    heads: Heads,
    inputs: usize,
    indicator: usize,
    logits: Vec<usize>,
}

/// One iteration's rollout with its advantages, before the update.
pub(crate) struct Collected {
    rollout: Rollout,
    adv: Advantages,
    /// The learning rate of the update, the step and the episodes that ended.
    pub stats: IterationStats,
}

impl Collected {
    /// Appends `other`'s transitions (same layout; GAE already done per rollout).
    pub(crate) fn append(&mut self, other: Collected) {
        let (r, o) = (&mut self.rollout, other.rollout);
        r.num_envs += o.num_envs;
        r.obs.extend(o.obs);
        r.graphs.extend(o.graphs);
        r.masks.extend(o.masks);
        r.actions.extend(o.actions);
        r.logprobs.extend(o.logprobs);
        r.values.extend(o.values);
        r.rewards.extend(o.rewards);
        r.starts.extend(o.starts);
        self.adv.advantages.extend(other.adv.advantages);
        self.adv.returns.extend(other.adv.returns);
    }

    /// The fraction of the returns' variance the sampled values explain.
    pub(crate) fn explained_variance(&self) -> f64 {
        explained_variance(&self.adv.returns, &self.rollout.values)
    }
}

/// What an update logs, as PPO's metrics (with the explained variance given).
pub(crate) fn update_metrics(update: &UpdateStats, explained: f64) -> Vec<(&'static str, f64)> {
    vec![
        ("losses/value_loss", update.value),
        ("losses/policy_loss", update.policy),
        ("losses/entropy", update.entropy),
        ("losses/approx_kl", update.approx_kl),
        (
            "losses/clipfrac",
            update.clipfracs.iter().sum::<f64>() / update.clipfracs.len().max(1) as f64,
        ),
        ("losses/explained_variance", explained),
    ]
}

impl Ppo {
    /// Builds the run: `envs` (same-step autoreset is set here) already made, `device`
    /// an autodiff device (the binary picks the backend), `seed` for everything.
    pub fn new(
        config: PpoConfig,
        envs: VectorEnv,
        device: Device,
        seed: u64,
    ) -> Result<Ppo, LearnError> {
        if config.share_parameters {
            return Err(LearnError::Unfit {
                algorithm: "ppo",
                env: envs.single_env().id().to_string(),
                reason: "share_parameters shares one network among the agents of a \
                         multi-agent env (algorithm = \"ippo\"); a single-agent run has one"
                    .into(),
            });
        }
        Ppo::for_agent(config, envs, device, (seed, seed), None)
    }

    /// [`Ppo::new`] for one agent of a multi-agent run ([`super::ippo`]): the envs'
    /// first reset seeded apart from the network and the sampling stream (`seeds` =
    /// (network and actions, envs): learners that share envs reset them with one seed
    /// and draw their weights and actions from their own), and, with `actor_dim`, a
    /// centralised critic (MAPPO): the actor reads the first `actor_dim` features of
    /// an observation (the agent's own), the critic all of them (the global state
    /// follows).
    pub fn for_agent(
        config: PpoConfig,
        mut envs: VectorEnv,
        device: Device,
        (seed, env_seed): (u64, u64),
        actor_dim: Option<usize>,
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
        let model = match (actor_dim, &encoder) {
            (None, _) => super::seeded(&device, seed, |d| {
                Network::new(&encoder, envs.obs_dim(), heads.total(), &config.hidden, d)
            }),
            (Some(a), Encoder::Mlp) if a <= envs.obs_dim() => super::seeded(&device, seed, |d| {
                Network::Mlp(ActorCritic::centralised(
                    a,
                    envs.obs_dim(),
                    heads.total(),
                    &config.hidden,
                    d,
                ))
            }),
            (Some(a), _) => {
                return Err(LearnError::Unfit {
                    algorithm: "ppo",
                    env: envs.single_env().id().to_string(),
                    reason: format!(
                        "a centralised critic needs an MLP over observations of at least {a} values (network = \"mlp\")"
                    ),
                });
            }
        };
        let optim = AdamConfig::new().with_epsilon(1e-5).init();
        let fused = fused_for(&config, &model, &device, envs.obs_dim());
        envs.reset(Some(env_seed))?;
        let n = config.num_envs;
        let reward_norm = RewardNormalizer::new(n, config.gamma);
        Ok(Ppo {
            config,
            model,
            optim,
            device,
            envs,
            heads,
            rng: Stream::from_key(hale_sim::rng::mix64(seed ^ 0x5050_5050)),
            iteration: 0,
            global_step: 0,
            starts: vec![false; n],
            reward_norm,
            own: None,
            fused,
        })
    }

    /// Marks this learner as agent `own`'s of a shared network: its bundle
    /// ([`Learner::network`], [`Learner::heads`]) is the network cut down to the
    /// agent's first `inputs` features (the `indicator` feature is 1) and to the
    /// logits `logits` of the padded action space, which are the agent's `own` action
    /// space's in order.
    pub(crate) fn specialise(
        &mut self,
        own: &Space,
        inputs: usize,
        indicator: usize,
        logits: Vec<usize>,
    ) -> Result<(), LearnError> {
        let heads = heads_of(own).ok_or_else(|| LearnError::Unfit {
            algorithm: "ippo",
            env: self.envs.single_env().id().to_string(),
            reason: format!("it needs a Discrete or MultiDiscrete action space, not {own:?}"),
        })?;
        self.own = Some(Own {
            heads,
            inputs,
            indicator,
            logits,
        });
        Ok(())
    }

    /// The network being trained, to share.
    pub(crate) fn model(&self) -> &Network {
        &self.model
    }

    /// Replaces the network being trained (by the shared one).
    pub(crate) fn set_model(&mut self, model: Network) {
        self.model = model;
        self.refresh_fused();
    }

    /// Copies `model`'s weights into the fused network (after they changed outside an
    /// update), keeping its Adam state.
    fn refresh_fused(&mut self) {
        if let Some(f) = &mut self.fused {
            f.load_weights(&self.model);
        }
    }

    /// The first half of an iteration: a rollout of `num_steps` in every env and its
    /// advantages.
    pub(crate) fn collect(&mut self) -> Result<Collected, TrainError> {
        let lr = self.learning_rate();
        let mut stats = IterationStats {
            learning_rate: lr,
            ..Default::default()
        };
        let infer = self.model.valid();
        let rollout = self.collect_rollout(&infer, &mut stats)?;
        stats.global_step = self.global_step;
        let next_value = match &mut self.fused {
            Some(f) => f
                .forward(current_obs(&self.envs))
                .map_err(|e| refused(self.iteration + 1, e))?
                .1
                .to_vec(),
            None => to_vec(
                infer
                    .value(current_obs(&self.envs), &self.device.clone().inner())
                    .map_err(|e| refused(self.iteration + 1, e))?,
            ),
        };
        drop(infer);
        let adv = gae(
            &rollout,
            &next_value,
            &self.starts,
            self.config.gamma,
            self.config.gae_lambda,
        );
        Ok(Collected {
            rollout,
            adv,
            stats,
        })
    }

    /// The second half: the update on `collected` (one agent's, or every agent's
    /// appended) with its learning rate. The iteration is counted by
    /// [`Ppo::end_iteration`].
    pub(crate) fn learn(&mut self, collected: &Collected) -> Result<UpdateStats, TrainError> {
        let lr = collected.stats.learning_rate;
        self.update(&collected.rollout, &collected.adv, lr)
    }

    /// Counts an iteration done.
    pub(crate) fn end_iteration(&mut self) {
        self.iteration += 1;
    }

    /// The network being trained (with a centralised critic, the one that reads the
    /// state; [`Learner::network`] gives the one that acts).
    pub fn training_network(&self) -> Network {
        self.model.valid()
    }

    /// The learning rate of the next update: annealed linearly from `learning_rate`
    /// towards 0 over the run when `anneal_lr`.
    fn learning_rate(&self) -> f64 {
        let cfg = &self.config;
        if cfg.anneal_lr {
            let frac = 1.0 - self.iteration as f64 / cfg.num_iterations() as f64;
            frac * cfg.learning_rate
        } else {
            cfg.learning_rate
        }
    }

    /// `num_steps` steps in every env with actions sampled from `infer` (the network
    /// without autodiff), stored in a [`Rollout`]; the episodes that ended go into
    /// `stats`.
    fn collect_rollout(
        &mut self,
        infer: &Network,
        stats: &mut IterationStats,
    ) -> Result<Rollout, TrainError> {
        let (n, d) = (self.config.num_envs, self.envs.obs_dim());
        let iteration = self.iteration + 1;
        let mask_len = if self.envs.masks.is_empty() {
            0
        } else {
            self.heads.total()
        };
        let num_heads = self.heads.sizes.len();
        let mut rollout = Rollout::with_capacity(
            self.config.num_steps,
            n,
            d,
            mask_len,
            num_heads,
            self.envs.graph_observations(),
        );
        let infer_device = self.device.clone().inner();
        let refused = |e: ForwardError| refused(iteration, e);
        let discrete = matches!(
            self.envs.single_env().action_space(),
            Space::Discrete { .. }
        );
        for _ in 0..self.config.num_steps {
            if let Some(what) = non_finite_observation(&self.envs) {
                return Err(TrainError::NonFiniteInput { iteration, what });
            }
            let (logits, values) = match &mut self.fused {
                Some(f) => {
                    let (l, v) = f.forward(current_obs(&self.envs)).map_err(refused)?;
                    (l.to_vec(), v.to_vec())
                }
                None => {
                    let (l, v) = infer
                        .forward(current_obs(&self.envs), &infer_device)
                        .map_err(refused)?;
                    (to_vec(l), to_vec(v))
                }
            };
            let rng = &mut self.rng;
            let (actions, logprobs) = self
                .heads
                .sample(&logits, &self.envs.masks, n, || rng.unit());
            rollout.obs.extend_from_slice(&self.envs.obs);
            if rollout.graph {
                rollout.graphs.extend_from_slice(&self.envs.graphs);
            }
            rollout.masks.extend_from_slice(&self.envs.masks);
            rollout.actions.extend_from_slice(&actions);
            rollout.logprobs.extend_from_slice(&logprobs);
            rollout.values.extend_from_slice(&values);
            rollout.starts.extend_from_slice(&self.starts);

            let actions: Vec<Value> = actions
                .chunks(num_heads)
                .map(|a| {
                    if discrete {
                        Value::Discrete(a[0])
                    } else {
                        Value::MultiDiscrete(a.to_vec())
                    }
                })
                .collect();
            self.envs.step(&actions)?;
            self.global_step += n as u64;

            let final_values = self.truncated_final_values(infer).map_err(refused)?;
            for (i, &final_value) in final_values.iter().enumerate() {
                let r = self.envs.rewards[i];
                if !r.is_finite() {
                    return Err(TrainError::NonFiniteInput {
                        iteration,
                        what: format!("reward of env {i}"),
                    });
                }
                let r = if self.config.normalize_reward {
                    self.reward_norm.normalize(i, r, self.envs.terminated[i])
                } else {
                    r
                };
                rollout
                    .rewards
                    .push((r + self.config.gamma * f64::from(final_value)) as f32);
                self.starts[i] = self.envs.terminated[i] || self.envs.truncated[i];
                if let Some(episode) = self.envs.infos[i].episode {
                    stats.episodic_returns.push(episode.r);
                    stats.episodic_lengths.push(episode.l);
                }
            }
        }
        Ok(rollout)
    }

    /// `[num_envs]`: V(final observation) for the envs whose episode was truncated
    /// (not terminated) at the last step, 0 elsewhere. A truncated episode's last
    /// reward is bootstrapped with it; truncation is never treated as terminal.
    fn truncated_final_values(&mut self, infer: &Network) -> Result<Vec<f32>, ForwardError> {
        let (n, d) = (self.envs.num_envs(), self.envs.obs_dim());
        let truncated: Vec<usize> = (0..n)
            .filter(|&i| self.envs.truncated[i] && !self.envs.terminated[i])
            .collect();
        let mut final_values = vec![0.0f32; n];
        if truncated.is_empty() {
            return Ok(final_values);
        }
        let flat = gather(&self.envs.final_obs, d, &truncated);
        let obs = if self.envs.graph_observations() {
            Observations::Graphs(
                truncated
                    .iter()
                    .map(|&i| &self.envs.final_graphs[i])
                    .collect(),
            )
        } else {
            Observations::Flat {
                values: &flat,
                rows: truncated.len(),
            }
        };
        let v = match &mut self.fused {
            Some(f) => f.forward(obs)?.1.to_vec(),
            None => to_vec(infer.value(obs, &self.device.clone().inner())?),
        };
        for (k, &i) in truncated.iter().enumerate() {
            final_values[i] = v[k];
        }
        Ok(final_values)
    }

    /// `update_epochs` epochs over the rollout in shuffled minibatches, one Adam step
    /// each, stopping early when the approximate KL passes `target_kl`.
    fn update(
        &mut self,
        rollout: &Rollout,
        adv: &Advantages,
        lr: f64,
    ) -> Result<UpdateStats, TrainError> {
        let batch = rollout.len();
        let mut order: Vec<usize> = (0..batch).collect();
        let mut stats = UpdateStats::default();
        let mut scratch = Scratch::default();
        for _ in 0..self.config.update_epochs {
            for i in (1..batch).rev() {
                order.swap(i, self.rng.below(i + 1));
            }
            for idx in order.chunks(self.config.minibatch_size()) {
                if self.fused.is_some() {
                    let values = self.fused_step(rollout, adv, idx, &mut scratch, lr)?;
                    stats.record(&values);
                    continue;
                }
                let losses = self.minibatch_loss(rollout, adv, idx)?;
                stats.record(&losses.values);
                let mut grads = GradientsParams::from_grads(losses.total.backward(), &self.model);
                clip_global_norm(&mut grads, &self.model, self.config.max_grad_norm as f32);
                self.model = self.optim.step(lr, self.model.clone(), grads);
            }
            if self
                .config
                .target_kl
                .is_some_and(|target| stats.approx_kl > target)
            {
                break;
            }
        }
        if let Some(f) = &self.fused {
            self.model = f.write_into(&self.model);
        }
        Ok(stats)
    }

    /// [`Ppo::minibatch_loss`] and the optimiser step on the fused network: the same
    /// loss, the same checks, no autodiff.
    fn fused_step(
        &mut self,
        rollout: &Rollout,
        adv: &Advantages,
        idx: &[usize],
        s: &mut Scratch,
        lr: f64,
    ) -> Result<LossValues, TrainError> {
        let cfg = &self.config;
        let iteration = self.iteration + 1;
        s.fill(rollout, adv, idx, cfg.norm_adv);
        let fused = self.fused.as_mut().expect("called with a fused network");
        let mut log_ratio = std::mem::take(&mut s.log_ratio);
        let graphs: Vec<&GraphValue> = if rollout.graph {
            idx.iter().map(|&k| &rollout.graphs[k]).collect()
        } else {
            Vec::new()
        };
        let loss = fused
            .loss_and_gradient(&s.batch(), &graphs, &self.heads, cfg, &mut log_ratio)
            .map_err(|e| refused(iteration, e))?;
        let (approx_kl, clipfrac) = ratio_diagnostics(&log_ratio, cfg.clip_coef);
        s.log_ratio = log_ratio;
        let values = LossValues {
            policy: loss.policy,
            value: loss.value,
            entropy: loss.entropy,
            approx_kl,
            clipfrac,
        };
        values.check(iteration)?;
        fused.clip_and_step(cfg.max_grad_norm as f32, lr);
        Ok(values)
    }

    /// PPO's loss on the transitions `idx`: clipped surrogate, (clipped) value loss
    /// and entropy bonus, with the diagnostics CleanRL logs. Fails on a non-finite
    /// loss rather than step with it.
    fn minibatch_loss(
        &self,
        rollout: &Rollout,
        adv: &Advantages,
        idx: &[usize],
    ) -> Result<Losses, TrainError> {
        let cfg = &self.config;
        let iteration = self.iteration + 1;
        let (m, device) = (idx.len(), &self.device);
        let mut flat = Vec::new();
        let obs = rollout.observations(idx, &mut flat);
        // [m, num_heads]
        let actions = Tensor::<2, Int>::from_data(
            TensorData::new(
                gather(&rollout.actions, rollout.num_heads, idx),
                [m, rollout.num_heads],
            ),
            device,
        );
        // [m, mask_len]
        let mask = (rollout.mask_len > 0).then(|| {
            let rows = gather(&rollout.masks, rollout.mask_len, idx);
            Tensor::<2, Bool>::from_data(TensorData::new(rows, [m, rollout.mask_len]), device)
        });
        // [m] each
        let old_logprob = tensor1(gather(&rollout.logprobs, 1, idx), device);
        let old_value = tensor1(gather(&rollout.values, 1, idx), device);
        let returns = tensor1(gather(&adv.returns, 1, idx), device);
        let mut advantages = gather(&adv.advantages, 1, idx);
        if cfg.norm_adv && m > 1 {
            normalize(&mut advantages);
        }
        let advantages = tensor1(advantages, device);

        let (logits, new_value) = self
            .model
            .forward(obs, device)
            .map_err(|e| refused(iteration, e))?;
        let head = self.heads.stats(logits, mask, actions);
        let log_ratio = head.log_prob - old_logprob;
        let ratio = log_ratio.clone().exp();
        let (approx_kl, clipfrac) = ratio_diagnostics(&to_vec(log_ratio.detach()), cfg.clip_coef);

        let pg1 = -advantages.clone() * ratio.clone();
        let pg2 = -advantages * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
        let pg_loss = pg1.max_pair(pg2).mean();
        let v_loss = if cfg.clip_vloss {
            let unclipped = (new_value.clone() - returns.clone()).square();
            let clipped =
                old_value.clone() + (new_value - old_value).clamp(-cfg.clip_coef, cfg.clip_coef);
            let clipped = (clipped - returns).square();
            unclipped.max_pair(clipped).mean() * 0.5
        } else {
            (new_value - returns).square().mean() * 0.5
        };
        let entropy = head.entropy.mean();
        let total = pg_loss.clone() - entropy.clone() * cfg.ent_coef + v_loss.clone() * cfg.vf_coef;
        let scalar = |t: Tensor<1>| f64::from(to_vec(t.detach())[0]);
        let values = LossValues {
            policy: scalar(pg_loss),
            value: scalar(v_loss),
            entropy: scalar(entropy),
            approx_kl,
            clipfrac,
        };
        values.check(iteration)?;
        Ok(Losses { values, total })
    }
}

/// One minibatch's losses: the one to differentiate, and its parts as numbers.
struct Losses {
    values: LossValues,
    /// `policy − ent_coef · entropy + vf_coef · value`, in the autodiff graph.
    total: Tensor<1>,
}

/// One minibatch's losses as numbers, with the diagnostics CleanRL logs.
pub(crate) struct LossValues {
    policy: f64,
    value: f64,
    entropy: f64,
    approx_kl: f64,
    clipfrac: f64,
}

impl LossValues {
    /// Fails on a non-finite loss rather than step with it.
    fn check(&self, iteration: u64) -> Result<(), TrainError> {
        for (what, v) in [
            ("the policy loss", self.policy),
            ("the value loss", self.value),
            ("the entropy", self.entropy),
        ] {
            if !v.is_finite() {
                return Err(TrainError::NonFinite {
                    iteration,
                    what: what.into(),
                });
            }
        }
        Ok(())
    }
}

/// The fused update's gathered minibatch, reused from one minibatch to the next.
#[derive(Default)]
struct Scratch {
    obs: Vec<f32>,
    actions: Vec<i64>,
    masks: Vec<bool>,
    old_logprob: Vec<f32>,
    old_value: Vec<f32>,
    returns: Vec<f32>,
    advantages: Vec<f32>,
    log_ratio: Vec<f32>,
}

impl Scratch {
    /// The transitions `idx`, with their advantages normalised when `norm_adv`.
    fn fill(&mut self, rollout: &Rollout, adv: &Advantages, idx: &[usize], norm_adv: bool) {
        gather_into(&mut self.obs, &rollout.obs, rollout.obs_dim, idx);
        gather_into(&mut self.actions, &rollout.actions, rollout.num_heads, idx);
        gather_into(&mut self.masks, &rollout.masks, rollout.mask_len, idx);
        gather_into(&mut self.old_logprob, &rollout.logprobs, 1, idx);
        gather_into(&mut self.old_value, &rollout.values, 1, idx);
        gather_into(&mut self.returns, &adv.returns, 1, idx);
        gather_into(&mut self.advantages, &adv.advantages, 1, idx);
        if norm_adv && idx.len() > 1 {
            normalize(&mut self.advantages);
        }
    }

    fn batch(&self) -> Minibatch<'_> {
        Minibatch {
            obs: &self.obs,
            actions: &self.actions,
            masks: &self.masks,
            old_logprob: &self.old_logprob,
            old_value: &self.old_value,
            returns: &self.returns,
            advantages: &self.advantages,
        }
    }
}

/// [`gather`] into `dst`, reusing its allocation.
fn gather_into<T: Copy>(dst: &mut Vec<T>, src: &[T], width: usize, idx: &[usize]) {
    dst.clear();
    for &k in idx {
        dst.extend_from_slice(&src[k * width..(k + 1) * width]);
    }
}

/// The fused network for `model` when `config` asks for it and it applies: on
/// burn's CPU backend.
fn fused_for(
    config: &PpoConfig,
    model: &Network,
    device: &Device,
    obs_dim: usize,
) -> Option<Fused> {
    if !config.fused || device.clone().inner() != Device::flex() {
        return None;
    }
    match model {
        Network::Mlp(mlp) => FusedMlp::from_model(mlp, obs_dim).map(Fused::Mlp),
        Network::Gnn(net) => FusedGnn::from_model(net.gnn()).map(|f| Fused::Gnn {
            net: f,
            spec: net.spec().clone(),
            parts: Default::default(),
        }),
    }
}

/// The network in plain buffers for the fused CPU update: the MLP, or the GNN with
/// its width, depth and action layout.
// One per run: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Fused {
    Mlp(FusedMlp),
    Gnn {
        net: FusedGnn,
        spec: GnnSpec,
        /// The batches (one or two shares of a minibatch, or a forward pass's) and
        /// their action layouts, refilled each time.
        parts: [(GraphBatch, ActionLayout); 2],
    },
}

impl Fused {
    /// Logits and values of `obs`, as [`Network::forward`] gives them.
    fn forward(&mut self, obs: Observations<'_>) -> Result<(&[f32], &[f32]), ForwardError> {
        match (self, obs) {
            (Fused::Mlp(f), Observations::Flat { values, rows }) => Ok(f.forward(values, rows)),
            (Fused::Gnn { net, spec, parts }, Observations::Graphs(graphs)) => {
                let (batch, layout) = &mut parts[0];
                batch.refill(&graphs, spec.node_dim)?;
                *layout = spec.layout.build(batch)?;
                Ok(net.forward(batch, layout, MASKED_LOGIT))
            }
            (Fused::Mlp(_), Observations::Graphs(_)) => Err(ForwardError::Kind {
                network: "an MLP",
                given: "graph",
            }),
            (Fused::Gnn { .. }, Observations::Flat { .. }) => Err(ForwardError::Kind {
                network: "a GNN",
                given: "flat",
            }),
        }
    }

    /// PPO's loss on `batch` (with `graphs`, its observations as graphs, for the GNN)
    /// and its gradient, left in place for [`Fused::clip_and_step`]; the log-ratios
    /// into `log_ratio`. A minibatch of at least [`SPLIT_ROWS`] is computed as two
    /// halves side by side.
    fn loss_and_gradient(
        &mut self,
        batch: &Minibatch<'_>,
        graphs: &[&GraphValue],
        heads: &Heads,
        cfg: &PpoConfig,
        log_ratio: &mut Vec<f32>,
    ) -> Result<FusedLoss, ForwardError> {
        let (f, spec, parts) = match self {
            Fused::Mlp(f) => return Ok(f.loss_and_gradient(batch, heads, cfg, log_ratio)),
            Fused::Gnn { net, spec, parts } => (net, spec, parts),
        };
        let rows = batch.old_logprob.len();
        let obs_dim = batch.obs.len() / rows.max(1);
        let ranges: Vec<(usize, usize)> = if rows >= SPLIT_ROWS {
            vec![(0, rows / 2), (rows / 2, rows)]
        } else {
            vec![(0, rows)]
        };
        for (&(from, to), (b, layout)) in ranges.iter().zip(parts.iter_mut()) {
            b.refill(&graphs[from..to], spec.node_dim)?;
            *layout = spec.layout.build(b)?;
        }
        let shares: Vec<_> = parts[..ranges.len()].iter().map(|(b, l)| (b, l)).collect();
        let out = f.gradient(
            &shares,
            MASKED_LOGIT,
            |i, logits, values, head: &mut HeadGrad| {
                let part = batch.rows(ranges[i], obs_dim, heads);
                let sums = ppo_gradient(logits, values, &part, rows, heads, cfg, head);
                (sums, head.log_ratio.clone())
            },
        );
        log_ratio.clear();
        let mut total = super::fused::Sums::default();
        for (sums, ratios) in out {
            log_ratio.extend_from_slice(&ratios);
            total = total + sums;
        }
        Ok(total.means(rows))
    }

    /// Clips the gradient's global norm to `max_norm` and takes one Adam step.
    fn clip_and_step(&mut self, max_norm: f32, lr: f64) {
        match self {
            Fused::Mlp(f) => f.clip_and_step(max_norm, lr),
            Fused::Gnn { net: f, .. } => f.clip_and_step(max_norm, lr),
        }
    }

    /// `model` with this network's weights (same parameters, same ids).
    fn write_into(&self, model: &Network) -> Network {
        match (self, model) {
            (Fused::Mlp(f), Network::Mlp(mlp)) => Network::Mlp(f.write_into(mlp)),
            (Fused::Gnn { net: f, .. }, Network::Gnn(net)) => {
                Network::Gnn(net.with_gnn(f.write_into(net.gnn())))
            }
            _ => unreachable!("the fused network is built from the model"),
        }
    }

    /// Takes `model`'s weights, keeping Adam's state.
    fn load_weights(&mut self, model: &Network) {
        match (self, model) {
            (Fused::Mlp(f), Network::Mlp(mlp)) => f.load_weights(mlp),
            (Fused::Gnn { net: f, .. }, Network::Gnn(net)) => f.load_weights(net.gnn()),
            _ => unreachable!("the fused network is built from the model"),
        }
    }

    fn adam_bytes(&self) -> Vec<u8> {
        match self {
            Fused::Mlp(f) => f.adam_bytes(),
            Fused::Gnn { net: f, .. } => f.adam_bytes(),
        }
    }

    fn set_adam_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Fused::Mlp(f) => f.set_adam_bytes(bytes),
            Fused::Gnn { net: f, .. } => f.set_adam_bytes(bytes),
        }
    }

    /// Every parameter's gradient from the last [`Fused::loss_and_gradient`].
    #[cfg(test)]
    fn gradients(&self) -> Vec<Vec<f32>> {
        match self {
            Fused::Mlp(f) => f.gradients(),
            Fused::Gnn { net: f, .. } => f.gradients(),
        }
    }
}

/// What an update logs: the last minibatch's losses and KL, the mean clip fraction.
#[derive(Default)]
pub(crate) struct UpdateStats {
    policy: f64,
    value: f64,
    entropy: f64,
    approx_kl: f64,
    clipfracs: Vec<f64>,
}

impl UpdateStats {
    fn record(&mut self, losses: &LossValues) {
        self.policy = losses.policy;
        self.value = losses.value;
        self.entropy = losses.entropy;
        self.approx_kl = losses.approx_kl;
        self.clipfracs.push(losses.clipfrac);
    }
}

/// Approximate KL (`mean((r − 1) − log r)`, Schulman's k3 estimator) and the fraction
/// of ratios outside `1 ± clip_coef`, from the log-ratios.
fn ratio_diagnostics(log_ratio: &[f32], clip_coef: f64) -> (f64, f64) {
    let m = log_ratio.len() as f64;
    let kl = log_ratio
        .iter()
        .map(|&x| (f64::from(x).exp() - 1.0) - f64::from(x))
        .sum::<f64>()
        / m;
    let clipfrac = log_ratio
        .iter()
        .filter(|&&x| (f64::from(x).exp() - 1.0).abs() > clip_coef)
        .count() as f64
        / m;
    (kl, clipfrac)
}

/// Normalises `x` to mean 0 and (sample) standard deviation 1, in place.
fn normalize(x: &mut [f32]) {
    let m = x.len() as f64;
    let mean = x.iter().map(|&a| f64::from(a)).sum::<f64>() / m;
    let var = x
        .iter()
        .map(|&a| (f64::from(a) - mean).powi(2))
        .sum::<f64>()
        / (m - 1.0);
    let sd = var.sqrt() + 1e-8;
    for a in x {
        *a = ((f64::from(*a) - mean) / sd) as f32;
    }
}

/// The fraction of the returns' variance the values explain (NaN when the returns
/// do not vary).
fn explained_variance(returns: &[f32], values: &[f32]) -> f64 {
    let var_y = variance(returns);
    let resid: Vec<f32> = returns.iter().zip(values).map(|(r, v)| r - v).collect();
    if var_y == 0.0 {
        f64::NAN
    } else {
        1.0 - variance(&resid) / var_y
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

fn refused(iteration: u64, e: ForwardError) -> TrainError {
    TrainError::Observation {
        iteration,
        message: e.to_string(),
    }
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

// ---------------------------------------------------------------------------------
// Iteration, checkpoints
// ---------------------------------------------------------------------------------

/// What a run needs to continue exactly where it stopped (taken at an iteration
/// boundary, right after [`Learner::reset_envs`]).
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

    /// One rollout of `num_steps` in every env, its advantages, then the update.
    fn iterate(&mut self) -> Result<IterationStats, TrainError> {
        let collected = self.collect()?;
        let update = self.learn(&collected)?;
        let explained = collected.explained_variance();
        let mut stats = collected.stats;
        stats.metrics = update_metrics(&update, explained);
        self.end_iteration();
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
        self.config.batch_size() as u64
    }

    fn metric_names(&self) -> &'static [&'static str] {
        PPO_METRICS
    }

    /// Resets every environment with seeds derived from `seed` and the iteration (so
    /// a resumed run resets them the same way) and forgets unfinished episodes.
    fn reset_envs(&mut self, seed: u64) -> Result<(), EnvError> {
        let s = hale_sim::rng::mix64(seed ^ self.iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.envs.reset(Some(s))?;
        self.starts.fill(false);
        self.reward_norm.forget_returns();
        Ok(())
    }

    /// The run's state, the network's weights (`model.bpk`, burnpack) and the
    /// optimiser's state (`optim.bin`, burn's optimiser record, or with the fused
    /// update `adam.bin`, its own).
    fn checkpoint(&self) -> Result<Checkpoint, LearnError> {
        let model = crate::weights::module_bytes(self.model.clone())?;
        let optim = match &self.fused {
            Some(f) => ("adam.bin".into(), f.adam_bytes()),
            None => (
                "optim.bin".into(),
                self.optim
                    .into_bytes()
                    .map_err(|e| LearnError::checkpoint("optim.bin", e))?
                    .to_vec(),
            ),
        };
        let state = RunState {
            iteration: self.iteration,
            global_step: self.global_step,
            rng: self.rng.state(),
            reward_stats: self.reward_norm.stats.clone(),
        };
        Ok(Checkpoint {
            state: serde_json::to_value(state).map_err(|e| LearnError::checkpoint("state", e))?,
            files: vec![("model.bpk".into(), model), optim],
        })
    }

    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), LearnError> {
        let state: RunState = serde_json::from_value(checkpoint.state.clone())
            .map_err(|e| LearnError::checkpoint("state", e))?;
        self.model = crate::weights::load_module_bytes(
            self.model.clone(),
            checkpoint.file("model.bpk")?.to_vec(),
        )?;
        if self.fused.is_none() {
            let fresh = AdamConfig::new().with_epsilon(1e-5).init();
            self.optim = fresh
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(
                    checkpoint.file("optim.bin")?.to_vec(),
                ))
                .map_err(|e| LearnError::checkpoint("optim.bin", e))?;
        }
        self.iteration = state.iteration;
        self.global_step = state.global_step;
        self.rng = Stream::from_state(state.rng);
        self.reward_norm.stats = state.reward_stats;
        self.refresh_fused();
        if let Some(f) = &mut self.fused {
            f.set_adam_bytes(checkpoint.file("adam.bin")?)
                .map_err(|e| LearnError::checkpoint("adam.bin", e))?;
        }
        Ok(())
    }

    /// The heads of the env's actions (an agent of a shared network: of its own).
    fn heads(&self) -> &Heads {
        self.own.as_ref().map_or(&self.heads, |o| &o.heads)
    }

    /// The network for acting: with a centralised critic, the actor alone (see
    /// [`ActorCritic::decentralised`]); an agent of a shared network's, cut down to its
    /// own observation and actions (see [`ActorCritic::specialised`]).
    fn network(&self) -> Network {
        match (self.model.valid(), &self.own) {
            (Network::Mlp(net), Some(own)) => {
                Network::Mlp(net.specialised(own.inputs, own.indicator, &own.logits))
            }
            (Network::Mlp(net), None) => {
                Network::Mlp(net.decentralised(&self.device.clone().inner()))
            }
            (gnn, _) => gnn,
        }
    }
}

// ---------------------------------------------------------------------------------
// Envs and networks
// ---------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter's gradient in `grads`, in the order of the fused network's
    /// [`Fused::gradients`]; zeros where none.
    fn burn_gradients(model: &Network, grads: &GradientsParams) -> Vec<Vec<f32>> {
        match model {
            Network::Mlp(mlp) => mlp.dense_gradients(grads),
            Network::Gnn(net) => {
                let mut out = Vec::new();
                for l in net.gnn().linears() {
                    let w = grads.get::<2>(l.weight.id).map(to_vec);
                    out.push(
                        w.unwrap_or_else(|| vec![0.0; l.weight.val().dims().iter().product()]),
                    );
                    if let Some(b) = &l.bias {
                        let g = grads.get::<1>(b.id).map(to_vec);
                        out.push(g.unwrap_or_else(|| vec![0.0; b.val().dims()[0]]));
                    }
                }
                out
            }
        }
    }

    /// Every weight and bias of `model`, in one order for both networks of a kind.
    fn weights(model: &Network) -> Vec<f32> {
        match model {
            Network::Mlp(mlp) => {
                let (a, c) = mlp.dense_layers().unwrap();
                a.into_iter()
                    .chain(c)
                    .flat_map(|(w, b, _)| w.into_iter().chain(b))
                    .collect()
            }
            Network::Gnn(net) => net
                .gnn()
                .linears()
                .into_iter()
                .flat_map(|l| {
                    let (w, b, _) = crate::tensors::linear_values(l);
                    w.into_iter().chain(b.unwrap_or_default())
                })
                .collect(),
        }
    }

    /// The fused update computes burn's: on CartPole-v1, on Scaling-v0 (two heads,
    /// masks) with the MLP, and on Scaling-v0's graph with the GNN; with the value
    /// loss clipped and an entropy bonus, its losses and every parameter's gradient
    /// match autodiff's over several steps (ratios away from 1, so clipping is
    /// exercised), and so do the weights after Adam; minibatches large enough to be
    /// split in halves and too small to be.
    #[test]
    fn the_fused_update_matches_burns_autodiff() {
        let scaling = serde_json::json!({"fidelity": "fluid", "episode_s": 300});
        let graph =
            serde_json::json!({"fidelity": "fluid", "episode_s": 300, "observation": "graph"});
        for (env, config, network) in [
            ("CartPole-v1", serde_json::json!({}), NetworkKind::Mlp),
            ("Scaling-v0", scaling, NetworkKind::Mlp),
            ("Scaling-v0", graph, NetworkKind::Gnn),
        ] {
            let cfg = PpoConfig {
                num_envs: 2,
                num_steps: 48,
                learning_rate: 1e-2,
                fused: false,
                network,
                gnn_hidden: 16,
                ..PpoConfig::default()
            };
            let envs = VectorEnv::make(env, &config, 2, AutoReset::NextStep).unwrap();
            let mut ppo = Ppo::new(cfg.clone(), envs, Device::flex().autodiff(), 3).unwrap();
            assert!(ppo.fused.is_none());
            let collected = ppo.collect().unwrap();
            let (rollout, adv) = (&collected.rollout, &collected.adv);
            assert_eq!(rollout.graph, network == NetworkKind::Gnn);
            let large: Vec<usize> = (0..rollout.len()).rev().collect();
            let small: Vec<usize> = (0..rollout.len()).step_by(3).collect();
            assert!(large.len() >= SPLIT_ROWS);
            assert!(small.len() < SPLIT_ROWS);
            let obs_dim = ppo.envs.obs_dim();
            let with_fused = PpoConfig {
                fused: true,
                ..cfg.clone()
            };
            let mut clipped = 0.0;
            for step in 0..6 {
                let idx = if step % 2 == 0 { &large } else { &small };
                let before = ppo.model.clone();
                let mut fused = fused_for(&with_fused, &before, &ppo.device, obs_dim).unwrap();
                let mut s = Scratch::default();
                s.fill(rollout, adv, idx, true);
                let graphs: Vec<&GraphValue> = if rollout.graph {
                    idx.iter().map(|&k| &rollout.graphs[k]).collect()
                } else {
                    Vec::new()
                };
                let mut log_ratio = Vec::new();
                let got = fused
                    .loss_and_gradient(&s.batch(), &graphs, &ppo.heads, &cfg, &mut log_ratio)
                    .unwrap();
                let want = ppo.minibatch_loss(rollout, adv, idx).unwrap();
                clipped += want.values.clipfrac;
                assert!(
                    (ratio_diagnostics(&log_ratio, cfg.clip_coef).1 - want.values.clipfrac).abs()
                        < 0.02,
                    "{env} step {step}: clip fractions differ"
                );
                for (a, b, what) in [
                    (got.policy, want.values.policy, "policy"),
                    (got.value, want.values.value, "value"),
                    (got.entropy, want.values.entropy, "entropy"),
                ] {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{env} {network:?} step {step} {what}: {a} vs {b}"
                    );
                }
                let grads = GradientsParams::from_grads(want.total.backward(), &ppo.model);
                let theirs = burn_gradients(&before, &grads);
                let ours = fused.gradients();
                assert_eq!(ours.len(), theirs.len());
                let scale = theirs.iter().flatten().fold(0f32, |m, g| m.max(g.abs()));
                assert!(scale > 0.0);
                for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                    assert_eq!(a.len(), b.len(), "{env} parameter {k}");
                    for (x, y) in a.iter().zip(b) {
                        assert!(
                            (x - y).abs() <= 2e-4 * scale,
                            "{env} {network:?} step {step} parameter {k}: {x} vs {y} (largest {scale})"
                        );
                    }
                }
                // burn's Adam step and the fused one land on the same weights.
                let mut grads = grads;
                clip_global_norm(&mut grads, &ppo.model, cfg.max_grad_norm as f32);
                ppo.model = ppo.optim.step(1e-2, ppo.model.clone(), grads);
                fused.clip_and_step(cfg.max_grad_norm as f32, 1e-2);
                if step == 0 {
                    let (theirs, ours) = (weights(&ppo.model), weights(&fused.write_into(&before)));
                    assert_eq!(theirs.len(), ours.len());
                    assert_ne!(theirs, weights(&before), "{env}: the step changed nothing");
                    for (p, q) in theirs.iter().zip(&ours) {
                        assert!(
                            (p - q).abs() < 1e-5,
                            "{env} {network:?}: weights {p} vs {q} after a step"
                        );
                    }
                }
            }
            assert!(
                clipped > 0.0,
                "{env}: no ratio was clipped, the test exercises less than it says"
            );
        }
    }

    fn rollout(num_steps: usize, rewards: &[f32], values: &[f32], starts: &[bool]) -> Rollout {
        let mut r = Rollout::with_capacity(num_steps, 1, 0, 0, 1, false);
        r.rewards = rewards.to_vec();
        r.values = values.to_vec();
        r.starts = starts.to_vec();
        r
    }

    #[test]
    fn gae_matches_a_hand_computation() {
        // One env, three steps, an episode ending after step 1 (step 2 starts one).
        let (gamma, lambda) = (0.9, 0.5);
        let r = rollout(3, &[1.0, 2.0, 3.0], &[0.5, 1.0, 1.5], &[false, false, true]);
        let adv = gae(&r, &[2.0], &[false], gamma, lambda);
        // Step 2 bootstraps from next_value 2.0: δ = 3 + 0.9·2 − 1.5 = 3.3.
        let a2 = 3.3;
        // Step 1 ends its episode: no bootstrap, no carry. δ = 2 − 1 = 1.
        let a1 = 1.0;
        // Step 0: δ = 1 + 0.9·1.0 − 0.5 = 1.4; A = 1.4 + 0.45·A1.
        let a0 = 1.4 + 0.45 * a1;
        for (got, want) in adv.advantages.iter().zip([a0, a1, a2]) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
        for ((ret, a), v) in adv.returns.iter().zip(&adv.advantages).zip(&r.values) {
            assert_eq!(*ret, a + v);
        }
        // An episode starting right after the rollout: no bootstrap from next_value.
        let adv = gae(&r, &[2.0], &[true], gamma, lambda);
        assert!((adv.advantages[2] - 1.5).abs() < 1e-6);
    }

    #[test]
    fn gae_with_lambda_one_is_the_discounted_return_minus_the_value() {
        let gamma = 0.99;
        let rewards = [0.5f32, -1.0, 2.0, 0.25];
        let values = [0.1f32, 0.2, 0.3, 0.4];
        let r = rollout(4, &rewards, &values, &[false; 4]);
        let adv = gae(&r, &[1.0], &[false], gamma, 1.0);
        let mut g = 1.0f64;
        for t in (0..4).rev() {
            g = f64::from(rewards[t]) + gamma * g;
            assert!((f64::from(adv.returns[t]) - g).abs() < 1e-5, "step {t}");
        }
    }

    #[test]
    fn normalised_advantages_have_mean_zero_and_unit_sample_deviation() {
        let mut x = vec![1.0f32, 2.0, 4.0, 8.0];
        normalize(&mut x);
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / 4.0;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 3.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{x:?}");
    }
}
