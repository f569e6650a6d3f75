//! One multi-agent env seen as one single-agent [`Env`] per agent, stepped in
//! lockstep: what independent learners (IPPO) need to train each agent with a
//! single-agent algorithm while all of them act on the same clouds.
//!
//! [`Lockstep::new`] takes N multi-agent envs; [`Lockstep::agent_envs`] gives agent
//! `a`'s N views. A view's `step(action)` deposits `a`'s action for its joint env and
//! waits until every agent has deposited one; the last to arrive steps the joint env
//! and every view returns its agent's share (observation, reward, flags, info, mask).
//! `reset` works the same way (every agent must ask for the same seed). Each agent's
//! views are driven from its own thread (with a rayon pool of its own when they sit in
//! a [`crate::VectorEnv`]: a shared pool would block on itself). The result does not
//! depend on which thread arrives last, so a run is as deterministic as the env.
//!
//! A thread that fails calls [`Lockstep::abort`]: the others get an error instead of
//! waiting forever.
//!
//! [`Lockstep::with_state`] gives views for a centralised critic (MAPPO): a view's
//! observation is its agent's followed by the joint env's [`ParallelEnv::state`], and
//! the learner's actor reads only the first part.

use crate::env::{Env, EnvError, Info, Step};
use crate::multi::{AgentMap, ParallelEnv};
use crate::space::{Space, Value};
use serde_json::Value as Json;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// What an agent asks of its joint env this round.
#[derive(Clone, Debug, PartialEq)]
enum Request {
    Reset(Option<u64>),
    Step(Value),
}

/// One agent's share of a round's outcome.
#[derive(Clone, Debug)]
struct Share {
    obs: Value,
    reward: f64,
    terminated: bool,
    truncated: bool,
    info: Info,
    mask: Option<Vec<bool>>,
}

struct Round {
    env: Box<dyn ParallelEnv>,
    requests: AgentMap<Request>,
    /// Rounds completed.
    generation: u64,
    /// The last round's outcome, per agent (or why it failed).
    outcome: Result<AgentMap<Share>, String>,
}

struct Slot {
    round: Mutex<Round>,
    done: Condvar,
}

/// N joint envs shared by their agents' views.
pub struct Lockstep {
    id: String,
    agents: Vec<String>,
    slots: Vec<Slot>,
    aborted: Mutex<Option<String>>,
    /// Views append the joint env's state to their agent's observation.
    with_state: bool,
}

impl Lockstep {
    /// Shares `envs` (one kind, all agents alive together) among their agents.
    pub fn new(envs: Vec<Box<dyn ParallelEnv>>) -> Result<Arc<Lockstep>, EnvError> {
        let first = envs.first().ok_or_else(|| EnvError::Config {
            env: "lockstep".into(),
            field: "envs".into(),
            reason: "at least one env".into(),
        })?;
        let (id, agents) = (first.id().to_string(), first.possible_agents().to_vec());
        Ok(Arc::new(Lockstep {
            slots: envs
                .into_iter()
                .map(|env| Slot {
                    round: Mutex::new(Round {
                        env,
                        requests: AgentMap::new(),
                        generation: 0,
                        outcome: Ok(AgentMap::new()),
                    }),
                    done: Condvar::new(),
                })
                .collect(),
            id,
            agents,
            aborted: Mutex::new(None),
            with_state: false,
        }))
    }

    /// [`Lockstep::new`] with views whose observation is their agent's followed by the
    /// joint env's state (both flat boxes): what a centralised critic reads.
    pub fn with_state(envs: Vec<Box<dyn ParallelEnv>>) -> Result<Arc<Lockstep>, EnvError> {
        let lock = Lockstep::new(envs)?;
        let mut lock = Arc::into_inner(lock).expect("a lockstep no one else holds yet");
        lock.with_state = true;
        Ok(Arc::new(lock))
    }

    /// Whether views carry the joint env's state ([`Lockstep::with_state`]).
    pub fn shares_state(&self) -> bool {
        self.with_state
    }

    /// Agent `agent`'s own observation length (the first part of a view's observation
    /// when [`Lockstep::shares_state`]).
    pub fn agent_obs_dim(&self, agent: &str) -> Result<usize, EnvError> {
        let round = self.slots[0]
            .round
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let space = round.env.observation_space(agent)?;
        space.flat_dim().ok_or_else(|| EnvError::Config {
            env: self.id.clone(),
            field: format!("agent {agent}"),
            reason: "its observation is not a flat box".into(),
        })
    }

    /// The joint envs' id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The agents, in the env's order.
    pub fn agents(&self) -> &[String] {
        &self.agents
    }

    /// Joint envs.
    pub fn num_envs(&self) -> usize {
        self.slots.len()
    }

    /// Agent `agent`'s view of every joint env, in order.
    pub fn agent_envs(self: &Arc<Self>, agent: &str) -> Result<Vec<Box<dyn Env>>, EnvError> {
        let lock = |j: usize| {
            self.slots[j]
                .round
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        let round = lock(0);
        let own = round.env.observation_space(agent)?.clone();
        let obs_space = if self.with_state {
            joined(&own, round.env.state_space()).ok_or_else(|| EnvError::Config {
                env: self.id.clone(),
                field: format!("agent {agent}"),
                reason: "a centralised critic needs flat box observations and state".into(),
            })?
        } else {
            own
        };
        let act_space = round.env.action_space(agent)?.clone();
        drop(round);
        Ok((0..self.slots.len())
            .map(|j| {
                Box::new(AgentEnv {
                    id: format!("{}:{agent}", self.id),
                    lock: self.clone(),
                    slot: j,
                    agent: agent.to_string(),
                    obs_space: obs_space.clone(),
                    act_space: act_space.clone(),
                    mask: None,
                }) as Box<dyn Env>
            })
            .collect())
    }

    /// Stops every round: whoever waits, and whoever asks next, gets `reason` (the
    /// first one given: later aborts are the others hearing of it).
    pub fn abort(&self, reason: &str) {
        self.aborted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| reason.to_string());
        for slot in &self.slots {
            // Taking the lock orders the flag before the wake-up.
            drop(slot.round.lock().unwrap_or_else(|p| p.into_inner()));
            slot.done.notify_all();
        }
    }

    fn aborted(&self) -> Option<String> {
        self.aborted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Deposits `agent`'s request for joint env `j` and returns its share once every
    /// agent has asked.
    fn round(&self, j: usize, agent: &str, request: Request) -> Result<Share, EnvError> {
        let fail = |reason: String| EnvError::Config {
            env: self.id.clone(),
            field: format!("agent {agent}"),
            reason,
        };
        let slot = &self.slots[j];
        let mut round: MutexGuard<Round> = slot.round.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = self.aborted() {
            return Err(fail(format!("the lockstep run stopped: {reason}")));
        }
        if round.requests.insert(agent.to_string(), request).is_some() {
            return Err(fail(format!(
                "asked twice in one round of env {j} (every agent steps every env once a round)"
            )));
        }
        let generation = round.generation;
        if round.requests.len() == self.agents.len() {
            let requests = std::mem::take(&mut round.requests);
            round.outcome =
                play(round.env.as_mut(), &requests, self.with_state).map_err(|e| e.to_string());
            round.generation += 1;
            slot.done.notify_all();
        } else {
            while round.generation == generation {
                if let Some(reason) = self.aborted() {
                    return Err(fail(format!("the lockstep run stopped: {reason}")));
                }
                round = slot.done.wait(round).unwrap_or_else(|p| p.into_inner());
            }
        }
        match &round.outcome {
            Ok(shares) => shares
                .get(agent)
                .cloned()
                .ok_or_else(|| fail("not alive in this round".into())),
            Err(reason) => Err(fail(reason.clone())),
        }
    }
}

/// `own` followed by `state`, if both are flat boxes.
fn joined(own: &Space, state: &Space) -> Option<Space> {
    match (own, state) {
        (
            Space::Box { low, high, .. },
            Space::Box {
                low: state_low,
                high: state_high,
                ..
            },
        ) => {
            let low: Vec<f32> = low.iter().chain(state_low).copied().collect();
            let high: Vec<f32> = high.iter().chain(state_high).copied().collect();
            let shape = vec![low.len()];
            Some(Space::Box { low, high, shape })
        }
        _ => None,
    }
}

/// Plays one round on `env` ([`play_round`]); with `with_state`, each agent's
/// observation is followed by the env's state after the round.
fn play(
    env: &mut dyn ParallelEnv,
    requests: &AgentMap<Request>,
    with_state: bool,
) -> Result<AgentMap<Share>, EnvError> {
    let mut shares = play_round(env, requests)?;
    if with_state {
        let state = env.state()?;
        for share in shares.values_mut() {
            if let (Value::Box(own), Value::Box(state)) = (&mut share.obs, &state) {
                own.extend_from_slice(state);
            }
        }
    }
    Ok(shares)
}

/// Plays one round on `env`: a reset when every agent asked for the same one, a joint
/// step when every agent sent an action.
fn play_round(
    env: &mut dyn ParallelEnv,
    requests: &AgentMap<Request>,
) -> Result<AgentMap<Share>, EnvError> {
    let id = env.id().to_string();
    let resets: Vec<Option<u64>> = requests
        .values()
        .filter_map(|r| match r {
            Request::Reset(s) => Some(*s),
            Request::Step(_) => None,
        })
        .collect();
    let out_of_step = |reason: String| EnvError::Config {
        env: id.clone(),
        field: "lockstep".into(),
        reason,
    };
    let mut shares = AgentMap::new();
    if resets.len() == requests.len() {
        if resets.windows(2).any(|w| w[0] != w[1]) {
            return Err(out_of_step(format!(
                "the agents asked for different reset seeds: {resets:?}"
            )));
        }
        let (obs, infos) = env.reset(resets[0], None)?;
        for (agent, o) in obs {
            let mask = env.action_mask(&agent).map(<[bool]>::to_vec);
            let info = infos.get(&agent).cloned().unwrap_or_default();
            shares.insert(
                agent,
                Share {
                    obs: o,
                    reward: 0.0,
                    terminated: false,
                    truncated: false,
                    info,
                    mask,
                },
            );
        }
    } else if resets.is_empty() {
        let actions: AgentMap<Value> = requests
            .iter()
            .map(|(a, r)| match r {
                Request::Step(v) => (a.clone(), v.clone()),
                Request::Reset(_) => unreachable!("no resets in this round"),
            })
            .collect();
        let step = env.step(&actions)?;
        for (agent, o) in step.obs {
            let mask = env.action_mask(&agent).map(<[bool]>::to_vec);
            shares.insert(
                agent.clone(),
                Share {
                    obs: o,
                    reward: step.rewards.get(&agent).copied().unwrap_or(0.0),
                    terminated: step.terminations.get(&agent).copied().unwrap_or(false),
                    truncated: step.truncations.get(&agent).copied().unwrap_or(false),
                    info: step.infos.get(&agent).cloned().unwrap_or_default(),
                    mask,
                },
            );
        }
    } else {
        return Err(out_of_step(
            "some agents reset while others stepped (they must reset together)".into(),
        ));
    }
    Ok(shares)
}

/// Agent `agent`'s view of joint env `slot`.
struct AgentEnv {
    id: String,
    lock: Arc<Lockstep>,
    slot: usize,
    agent: String,
    obs_space: Space,
    act_space: Space,
    mask: Option<Vec<bool>>,
}

impl Env for AgentEnv {
    fn id(&self) -> &str {
        &self.id
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        if options.is_some_and(|o| o.as_object().is_some_and(|m| !m.is_empty())) {
            return Err(EnvError::Config {
                env: self.id.clone(),
                field: "options".into(),
                reason: "a lockstep view takes no reset options".into(),
            });
        }
        let share = self
            .lock
            .round(self.slot, &self.agent, Request::Reset(seed))?;
        self.mask = share.mask;
        Ok((share.obs, share.info))
    }

    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let share = self
            .lock
            .round(self.slot, &self.agent, Request::Step(action.clone()))?;
        self.mask = share.mask;
        Ok(Step {
            obs: share.obs,
            reward: share.reward,
            terminated: share.terminated,
            truncated: share.truncated,
            info: share.info,
        })
    }

    fn action_mask(&self) -> Option<&[bool]> {
        self.mask.as_deref()
    }
}
