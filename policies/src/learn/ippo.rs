//! Independent PPO (IPPO; de Witt et al., 2020): one [`Ppo`] learner per agent of a
//! multi-agent env, each with its own network, optimiser and sampling stream, all
//! acting on the same joint envs. With a [`Lockstep::with_state`], MAPPO (Yu et al.,
//! 2022): each agent's critic reads the joint env's state beside the agent's own
//! observation (centralised training), its actor only the latter (decentralised
//! execution: the agent's bundle is its actor).
//!
//! - Envs: N joint envs shared through a [`Lockstep`]: agent `a`'s learner owns a
//!   [`VectorEnv`] of its N views. A view's step waits for every agent's action for
//!   its joint env, so the learners' rollouts meet step by step and every agent sees
//!   the same episodes. Each agent's reward is the env's (the team reward, or its own
//!   with CloudOps-v0's `reward = "own"`).
//! - Threads: each learner runs in a thread of its own with a one-thread rayon pool
//!   (its envs' steps and its network's kernels): a view blocks until the others
//!   arrive, and a shared pool would block on itself. The result does not depend on
//!   which thread arrives first: same seed, same run, bit for bit.
//! - Seeds: every learner resets the envs with the run's seed (they must agree); its
//!   weights and actions come from the run's seed mixed with its agent's name.
//! - A learner that fails stops the lockstep, so the others return instead of waiting;
//!   the error names the agent that failed first.
//! - Hyperparameters: one `[ppo]` table for every agent (all step together, so
//!   `num_envs` and `num_steps` must agree anyway). `network = "gnn"` gives a GNN to
//!   each agent that observes the resource graph (CloudOps-v0's `observation =
//!   "graph"`) and an MLP to the others; a GNN's action layout is that of the
//!   single-agent env the agent mirrors.
//! - Parameter sharing (`share_parameters = true`, IPPO with MLPs): one network for
//!   every agent. Each agent's views are padded to one layout with its one-hot
//!   ([`hale_envs::sharing`]); the agents collect their rollouts with copies of the
//!   network, then one update runs on all their transitions together (the first
//!   agent's optimiser and sampling stream; `num_minibatches` splits the joint batch,
//!   so minibatches are as many times larger as there are agents) and every agent
//!   gets the result. Each agent's bundle is the network cut down to its own
//!   observation and actions.

use super::ppo::{Ppo, PpoConfig, update_metrics};
use super::{Checkpoint, IterationStats, LearnError, Learner, TrainError};
use crate::heads::Heads;
use crate::network::{Network, NetworkKind};
use burn::prelude::Device;
use hale_envs::lockstep::Lockstep;
use hale_envs::sharing::SharedLayout;
use hale_envs::{AutoReset, Env, EnvError, Space, VectorEnv};
use std::sync::{Arc, Mutex};

/// One agent's learner and the pool its work runs in.
struct Agent {
    name: String,
    ppo: Ppo,
    pool: rayon::ThreadPool,
}

/// An IPPO run in progress: one PPO learner per agent of the lockstep's env.
pub struct Ippo {
    agents: Vec<Agent>,
    lock: Arc<Lockstep>,
    metric_names: &'static [&'static str],
    /// `ippo`, or `mappo` over views that carry the state.
    algorithm: &'static str,
    /// One network for every agent (`share_parameters`).
    shared: bool,
}

/// A one-thread rayon pool for one agent's work.
fn pool(agent: &str) -> Result<rayon::ThreadPool, LearnError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name({
            let agent = agent.to_string();
            move |_| format!("ippo-{agent}")
        })
        .build()
        .map_err(|e| LearnError::Unfit {
            algorithm: "ippo",
            env: agent.to_string(),
            reason: format!("no thread pool for the agent: {e}"),
        })
}

/// The seed of agent `agent`'s weights and actions in a run seeded `seed`.
fn agent_seed(seed: u64, agent: &str) -> u64 {
    let name = agent.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hale_sim::rng::mix64(seed ^ name)
}

/// Runs `work(k, agent)` for every agent at once, each in its own thread (and `pool`),
/// and returns the results in agent order. A failure or panic in one stops the
/// lockstep first so that the others return; the error is the first agent's to fail,
/// and a panic is passed on once every thread has returned.
fn each_agent<T: Send, A: Send>(
    lock: &Lockstep,
    agents: Vec<A>,
    name: impl Fn(&A) -> String + Sync,
    work: impl Fn(A) -> Result<T, TrainError> + Sync,
) -> Result<Vec<T>, TrainError> {
    let first_failed: Mutex<Option<String>> = Mutex::new(None);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = agents
            .into_iter()
            .map(|a| {
                let (work, first_failed, name) = (&work, &first_failed, &name);
                s.spawn(move || {
                    let who = name(&a);
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(a)));
                    let failure = match &run {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some("panicked".to_string()),
                    };
                    if let Some(reason) = failure {
                        // Who failed first is recorded before the others can hear of it.
                        first_failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| who.clone());
                        lock.abort(&format!("agent {who}: {reason}"));
                    }
                    (who, run)
                })
            })
            .collect();
        // Every thread catches its own panic: joining cannot fail.
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .collect::<Vec<_>>()
    });
    let first = first_failed.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(results.len());
    let mut first_error = None;
    for (agent, run) in results {
        match run {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) if first.as_deref() == Some(agent.as_str()) => {
                first_error = Some(TrainError::Agent {
                    agent,
                    source: Box::new(e),
                });
            }
            Ok(Err(_)) => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

impl Ippo {
    /// Builds one PPO learner per agent of `lock`'s env with `config`, on `device`:
    /// each agent's views of the N joint envs (N = `config.num_envs`) in a
    /// [`VectorEnv`], reset together with `seed`.
    pub fn new(
        config: PpoConfig,
        (lock, env_config): (Arc<Lockstep>, &serde_json::Value),
        device: Device,
        seed: u64,
    ) -> Result<Ippo, LearnError> {
        config.validate()?;
        let algorithm = if lock.shares_state() { "mappo" } else { "ippo" };
        if lock.num_envs() != config.num_envs {
            return Err(LearnError::Unfit {
                algorithm,
                env: lock.id().to_string(),
                reason: format!(
                    "{} joint envs given, num_envs is {}",
                    lock.num_envs(),
                    config.num_envs
                ),
            });
        }
        let layout = if config.share_parameters {
            Some(shared_layout(&lock, &config, algorithm)?)
        } else {
            None
        };
        let mut parts = Vec::new();
        let mut own_spaces = Vec::new();
        for (k, agent) in lock.agents().iter().enumerate() {
            let mut views = lock.agent_envs(agent)?;
            own_spaces.push(views[0].action_space().clone());
            if let Some(layout) = &layout {
                views = views
                    .into_iter()
                    .map(|v| Ok(Box::new(layout.wrap(k, v)?) as Box<dyn Env>))
                    .collect::<Result<_, EnvError>>()?;
            }
            let envs = VectorEnv::new(views, AutoReset::SameStep)?.with_config(env_config.clone());
            let actor_dim = if lock.shares_state() {
                Some(lock.agent_obs_dim(agent)?)
            } else {
                None
            };
            // `network = "gnn"` is for the agents that observe a graph; the others
            // (the optimiser) keep an MLP.
            let mut config = config.clone();
            if !envs.graph_observations() {
                config.network = NetworkKind::Mlp;
            }
            parts.push((agent.clone(), envs, pool(agent)?, actor_dim, config));
        }
        if config.network == NetworkKind::Gnn
            && parts.iter().all(|(.., c)| c.network != NetworkKind::Gnn)
        {
            return Err(LearnError::Unfit {
                algorithm,
                env: lock.id().to_string(),
                reason: "network = \"gnn\" is for agents that observe the resource graph, \
                         and none does: set env_config.observation = \"graph\""
                    .into(),
            });
        }
        // Every learner resets its envs as it is built: they must all be built at once.
        let built = Mutex::new(None);
        let agents = each_agent(
            &lock,
            parts,
            |(name, ..)| name.clone(),
            |(name, envs, pool, actor_dim, config)| {
                let ppo = pool.install(|| {
                    Ppo::for_agent(
                        config,
                        envs,
                        device.clone(),
                        (agent_seed(seed, &name), seed),
                        actor_dim,
                    )
                });
                match ppo {
                    Ok(ppo) => Ok(Agent { name, ppo, pool }),
                    Err(e) => {
                        let message = e.to_string();
                        built
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        Err(TrainError::Env(EnvError::Config {
                            env: algorithm.into(),
                            field: name,
                            reason: message,
                        }))
                    }
                }
            },
        );
        let agents = match agents {
            Ok(agents) => agents,
            Err(e) => {
                // The learner's own error when one refused to build (a hyperparameter,
                // a network that does not fit); otherwise the env's.
                let refused = built.into_inner().unwrap_or_else(|p| p.into_inner());
                return Err(match (refused, e) {
                    (Some(LearnError::Unfit { env, reason, .. }), _) => LearnError::Unfit {
                        algorithm,
                        env,
                        reason,
                    },
                    (Some(other), _) => other,
                    (None, TrainError::Agent { source, .. }) => match *source {
                        TrainError::Env(e) => LearnError::Env(e),
                        other => LearnError::Env(EnvError::Config {
                            env: lock.id().to_string(),
                            field: "reset".into(),
                            reason: other.to_string(),
                        }),
                    },
                    (None, other) => LearnError::Env(EnvError::Config {
                        env: lock.id().to_string(),
                        field: "reset".into(),
                        reason: other.to_string(),
                    }),
                });
            }
        };
        let mut agents = agents;
        if let Some(layout) = &layout {
            // Every agent starts from the first one's weights.
            let model = agents[0].ppo.model().clone();
            for (k, (a, own)) in agents.iter_mut().zip(&own_spaces).enumerate() {
                let inputs = lock.agent_obs_dim(&a.name)?;
                a.ppo
                    .specialise(own, inputs, layout.indicator(k), layout.own_logits(own))?;
                if k > 0 {
                    a.ppo.set_model(model.clone());
                }
            }
        }
        let metric_names = metric_names(&agents);
        Ok(Ippo {
            agents,
            lock,
            metric_names,
            algorithm,
            shared: layout.is_some(),
        })
    }

    /// Agent `agent`'s learner.
    pub fn learner(&self, agent: &str) -> Option<&Ppo> {
        self.agents.iter().find(|a| a.name == agent).map(|a| &a.ppo)
    }

    /// One iteration with one network: every agent collects its rollout (all at
    /// once, the joint envs in lockstep), the first agent's learner updates the
    /// network on all the transitions, and every agent takes the result. Each agent's
    /// stats carry the update's losses and its own explained variance.
    fn iterate_shared(&mut self) -> Result<Vec<IterationStats>, TrainError> {
        let lock = self.lock.clone();
        let agents: Vec<&mut Agent> = self.agents.iter_mut().collect();
        let collected = each_agent(
            &lock,
            agents,
            |a| a.name.clone(),
            |a| a.pool.install(|| a.ppo.collect()),
        )?;
        let explained: Vec<f64> = collected.iter().map(|c| c.explained_variance()).collect();
        let mut stats = Vec::with_capacity(collected.len());
        let mut joint = None;
        for mut c in collected {
            stats.push(std::mem::take(&mut c.stats));
            match &mut joint {
                None => joint = Some(c),
                Some(j) => j.append(c),
            }
        }
        let mut joint = joint.expect("an IPPO run has agents");
        joint.stats.learning_rate = stats[0].learning_rate;
        let first = &mut self.agents[0];
        let update = first
            .pool
            .install(|| first.ppo.learn(&joint))
            .map_err(|e| TrainError::Agent {
                agent: first.name.clone(),
                source: Box::new(e),
            })?;
        let model = first.ppo.model().clone();
        for (k, a) in self.agents.iter_mut().enumerate() {
            if k > 0 {
                a.ppo.set_model(model.clone());
            }
            a.ppo.end_iteration();
        }
        for (s, e) in stats.iter_mut().zip(explained) {
            s.metrics = update_metrics(&update, e);
        }
        Ok(stats)
    }
}

/// The padded layout of `lock`'s agents for one shared network, or why there cannot
/// be one (a centralised critic, a GNN, graph observations).
fn shared_layout(
    lock: &Arc<Lockstep>,
    config: &PpoConfig,
    algorithm: &'static str,
) -> Result<SharedLayout, LearnError> {
    let refuse = |reason: &str| LearnError::Unfit {
        algorithm,
        env: lock.id().to_string(),
        reason: reason.to_string(),
    };
    if lock.shares_state() {
        return Err(refuse(
            "share_parameters is built for ippo: MAPPO's critic reads the state after each \
             agent's own observation, which the padding does not lay out (set algorithm = \"ippo\")",
        ));
    }
    if config.network != NetworkKind::Mlp {
        return Err(refuse(
            "share_parameters pads flat observations for one MLP; each GNN agent reads \
             its own graph (set network = \"mlp\" or share_parameters = false)",
        ));
    }
    let mut spaces: Vec<(String, Space, Space)> = Vec::new();
    for agent in lock.agents() {
        let view = lock.agent_envs(agent)?.swap_remove(0);
        spaces.push((
            agent.clone(),
            view.observation_space().clone(),
            view.action_space().clone(),
        ));
    }
    let spaces: Vec<(&str, &Space, &Space)> =
        spaces.iter().map(|(a, o, s)| (a.as_str(), o, s)).collect();
    Ok(SharedLayout::new(lock.id(), &spaces)?)
}

/// Each agent's PPO metrics, named `{agent}/losses/…`: built once per agent set and
/// kept for the process (a handful of names, shared by every run with those agents).
fn metric_names(agents: &[Agent]) -> &'static [&'static str] {
    static INTERNED: Mutex<Vec<(Vec<String>, &'static [&'static str])>> = Mutex::new(Vec::new());
    let key: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    let mut interned = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, names)) = interned.iter().find(|(k, _)| *k == key) {
        return names;
    }
    let names: Vec<&'static str> = agents
        .iter()
        .flat_map(|a| {
            a.ppo
                .metric_names()
                .iter()
                .map(move |m| &*Box::leak(format!("{}/{m}", a.name).into_boxed_str()))
        })
        .collect();
    let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
    interned.push((key, names));
    names
}

impl Learner for Ippo {
    fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// One PPO iteration per agent, all at once: their rollouts step the joint envs
    /// together, then each updates its own network. The episodes' returns are the
    /// mean over agents (the team return when every agent gets the team reward).
    fn iterate(&mut self) -> Result<IterationStats, TrainError> {
        let lock = self.lock.clone();
        let stats = if self.shared {
            self.iterate_shared()?
        } else {
            each_agent(
                &lock,
                self.agents.iter_mut().collect(),
                |a| a.name.clone(),
                |a| a.pool.install(|| a.ppo.iterate()),
            )?
        };
        let k = stats.len() as f64;
        let first = &stats[0];
        let returns = (0..first.episodic_returns.len())
            .map(|e| stats.iter().map(|s| s.episodic_returns[e]).sum::<f64>() / k)
            .collect();
        Ok(IterationStats {
            global_step: first.global_step,
            learning_rate: first.learning_rate,
            episodic_returns: returns,
            episodic_lengths: first.episodic_lengths.clone(),
            metrics: stats
                .iter()
                .flat_map(|s| s.metrics.iter().map(|&(_, v)| v))
                .zip(self.metric_names)
                .map(|(v, &name)| (name, v))
                .collect(),
        })
    }

    fn iteration(&self) -> u64 {
        self.agents[0].ppo.iteration
    }

    fn global_step(&self) -> u64 {
        self.agents[0].ppo.global_step
    }

    fn num_iterations(&self) -> u64 {
        self.agents[0].ppo.num_iterations()
    }

    fn steps_per_iteration(&self) -> u64 {
        self.agents[0].ppo.steps_per_iteration()
    }

    fn metric_names(&self) -> &'static [&'static str] {
        self.metric_names
    }

    fn reset_envs(&mut self, seed: u64) -> Result<(), EnvError> {
        let lock = self.lock.clone();
        let agents: Vec<&mut Agent> = self.agents.iter_mut().collect();
        each_agent(
            &lock,
            agents,
            |a| a.name.clone(),
            |a| Ok(a.pool.install(|| a.ppo.reset_envs(seed))?),
        )
        .map(drop)
        .map_err(|e| match e {
            TrainError::Agent { source, .. } => match *source {
                TrainError::Env(e) => e,
                other => EnvError::Config {
                    env: lock.id().to_string(),
                    field: "reset".into(),
                    reason: other.to_string(),
                },
            },
            TrainError::Env(e) => e,
            other => EnvError::Config {
                env: lock.id().to_string(),
                field: "reset".into(),
                reason: other.to_string(),
            },
        })
    }

    /// Every agent's checkpoint: its state under its name, its files prefixed with it
    /// (`scaler.model.bpk`).
    fn checkpoint(&self) -> Result<Checkpoint, LearnError> {
        let mut state = serde_json::Map::new();
        let mut files = Vec::new();
        for a in &self.agents {
            let c = a.ppo.checkpoint()?;
            state.insert(a.name.clone(), c.state);
            files.extend(
                c.files
                    .into_iter()
                    .map(|(f, bytes)| (format!("{}.{f}", a.name), bytes)),
            );
        }
        Ok(Checkpoint {
            state: serde_json::Value::Object(state),
            files,
        })
    }

    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), LearnError> {
        for a in &mut self.agents {
            let prefix = format!("{}.", a.name);
            let state = checkpoint.state.get(&a.name).cloned().ok_or_else(|| {
                LearnError::checkpoint("state", format!("no state for agent {}", a.name))
            })?;
            let files = checkpoint
                .files
                .iter()
                .filter_map(|(f, b)| f.strip_prefix(&prefix).map(|f| (f.to_string(), b.clone())))
                .collect();
            a.ppo.restore(&Checkpoint { state, files })?;
        }
        Ok(())
    }

    /// The first agent's heads (each agent's are in [`Learner::agents`]).
    fn heads(&self) -> &Heads {
        self.agents[0].ppo.heads()
    }

    /// The first agent's network (each agent's are in [`Learner::agents`]).
    fn network(&self) -> Network {
        self.agents[0].ppo.network()
    }

    fn agents(&self) -> Vec<(&str, &dyn Learner)> {
        self.agents
            .iter()
            .map(|a| (a.name.as_str(), &a.ppo as &dyn Learner))
            .collect()
    }
}
