//! The environment contract, after Gymnasium's `gymnasium.Env`.

use crate::space::{GraphValue, Space, Value};
use serde::Serialize;
use serde_json::Value as Json;

/// Extra information from `reset` and `step`: Gymnasium's `info` dict, typed. Each
/// env fills the parts that concern it; evaluation and learners read named fields
/// (a misspelt one does not compile, where `info["…"]` read 0), and [`Info::to_json`]
/// gives the dict, with the field names below as keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Info {
    /// The cloud envs (Scaling-v0, Healing-v0): what the step served and cost.
    #[serde(flatten)]
    pub cloud: Option<CloudInfo>,
    /// Scaling-v0: the reward's terms.
    #[serde(flatten)]
    pub scaling: Option<ScalingInfo>,
    /// Healing-v0: the remedy taken.
    #[serde(flatten)]
    pub healing: Option<HealingInfo>,
    /// Security-v0: the reward's parts and what the attacker did.
    #[serde(flatten)]
    pub security: Option<SecurityInfo>,
    /// CloudOps-v0: the team's reward terms and the conflict ledger.
    #[serde(flatten)]
    pub cloudops: Option<crate::cloudops::CloudOpsInfo>,
    /// Cost-v0 (and CloudOps-v0's optimiser): the host mix and what the optimiser did.
    #[serde(flatten)]
    pub cost: Option<crate::cost::CostInfo>,
    /// At the last step of an episode, under [`crate::wrappers::EpisodeStatistics`]
    /// (Gymnasium's `info["episode"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode: Option<EpisodeInfo>,
}

impl Info {
    /// Gymnasium's `info` dict: one key per field that is set.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

/// What a step of a cloud env served and cost, as evaluation tables need it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CloudInfo {
    /// The step's length, simulated seconds.
    pub step_s: f64,
    /// External requests that arrived in the step.
    pub requests: f64,
    /// Of those, the ones not served (failed, timed out or dropped).
    pub unserved: f64,
    /// SLO-violation seconds in the step, summed over SLOs.
    pub slo_violation_s: f64,
    /// The host bill of the step.
    pub cost: f64,
    /// Cores requested by live replicas × the step's hours (a chargeback cost).
    pub core_hours: f64,
    /// The user-facing p95 latency (the first workload's entry service, last scrape);
    /// `None` before the first scrape.
    pub p95_ms: Option<f64>,
    /// The user-facing p99 latency, as `p95_ms`.
    pub p99_ms: Option<f64>,
    /// CPU and memory used and requested per service over the step.
    pub usage: Usage,
    /// Over-provisioning in slots: 1 − busy slots / ready slots (last scrape).
    pub slot_slack: Option<f64>,
    /// Time to recovery (seconds) of each fault resolved in the step.
    pub ttr_s: Vec<f64>,
    /// Their kinds.
    pub ttr_kinds: Vec<&'static str>,
    /// Desired replicas per service (scenario order) at the end of the step.
    pub desired: Vec<u32>,
    /// Live hosts at the end of the step.
    pub hosts: u32,
    /// Spot hosts the provider reclaimed in the step.
    pub spot_reclaims: u32,
    /// Live replicas deleted in the step to be recreated elsewhere (reschedules,
    /// drains, the cluster autoscaler's drains, spot reclaims).
    pub evictions: u32,
    /// Faults injected and not resolved at the end of the step.
    pub faults_open: u32,
    /// Their summed age at the end of the step, seconds (at an episode's last step:
    /// what each unresolved fault's time to recovery is at least).
    pub open_fault_age_s: f64,
}

/// Per service (scenario order), what live replicas used and requested over a step.
/// Autopilot's slack is 1 − used / requested, over any span: sum the steps first.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Core-seconds used: busy slot-seconds × a replica's cores / its slots.
    pub cpu_used_core_s: Vec<f64>,
    /// Core-seconds requested by live replicas (their cores × the step).
    pub cpu_requested_core_s: Vec<f64>,
    /// MiB-seconds of memory in use: the request, plus what leaks added (the
    /// simulator's replicas use their whole request, so memory slack is 0 without
    /// leaks and negative with them).
    pub memory_used_mib_s: Vec<f64>,
    /// MiB-seconds of memory requested by live replicas.
    pub memory_requested_mib_s: Vec<f64>,
}

/// Scaling-v0's reward terms of a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScalingInfo {
    /// Replica cost relative to the initial sizing.
    pub relative_replica_cost: f64,
    /// Share of the step's SLO time in violation.
    pub slo_violation_fraction: f64,
    /// Share of the step's requests dropped.
    pub dropped_fraction: f64,
    /// Services whose replica count the action changed.
    pub scaling_changes: u32,
}

/// Healing-v0's remedy of a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HealingInfo {
    /// The remedy's kind (`no-op`, `restart`, `reschedule`, `rollback`, `drain`).
    pub remedy: &'static str,
    /// Why the cluster refused it, if it did (rolling back a good deploy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Share of the step's requests not served.
    pub unserved_fraction: f64,
    /// The remedy's cost in the reward.
    pub remedy_cost: f64,
}

impl HealingInfo {
    /// Whether the step did something (anything but a no-op).
    pub fn acted(&self) -> bool {
        self.remedy != "no-op"
    }
}

/// Security-v0's step: the reward's parts and the attacker's action.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SecurityInfo {
    /// The reward's confidentiality term: minus the value of the hosts where the
    /// attacker is root.
    pub reward_confidentiality: f64,
    /// Its availability term: −10 while the operational service is stopped.
    pub reward_availability: f64,
    /// The defender's action cost (−1 for a restore; cloud mode: −`restart_cost` per
    /// restart).
    pub reward_action_cost: f64,
    /// Restores (cloud mode: replica restarts the defender caused) in the step.
    pub restarts: u32,
    /// Cloud mode: the SLO term (−`slo_weight` × the step's share of SLO violation,
    /// summed over SLOs); 0 in CAGE 2 mode.
    pub reward_slo: f64,
    /// Cloud mode: data exfiltrated in the step, MB; 0 in CAGE 2 mode.
    pub exfiltrated_mb: f64,
    /// The attacker's action (`ExploitRemoteService`, …).
    pub red_action: &'static str,
    /// Whether it worked.
    pub red_success: bool,
    /// Hosts (cloud mode: replicas) where the attacker has a shell, besides CAGE 2's
    /// way in (the hidden truth).
    pub footholds: u32,
    /// Of those, the ones where it is root (or SYSTEM).
    pub privileged: u32,
    /// Whether the defender did something (anything but sleep and monitor).
    pub acted: bool,
}

/// An episode's totals (Gymnasium's `info["episode"]`, without wall time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EpisodeInfo {
    /// The return (undiscounted sum of rewards).
    pub r: f64,
    /// The length in steps.
    pub l: u64,
}

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
    /// `step` after the episode ended (terminated or truncated), before `reset`.
    #[error("{0}: step called after the episode ended; call reset")]
    EpisodeOver(String),
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

    /// `step`, writing the observation into `obs` (a row of a flat buffer, or a graph)
    /// instead of returning a new one. Vector envs use it; envs with a cheap
    /// observation override it. Whatever it writes and returns is what `step` would
    /// have returned (the checker holds every registered env to this).
    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let s = self.step(action)?;
        write_obs(self.id(), s.obs, obs)?;
        Ok(StepInto {
            reward: s.reward,
            terminated: s.terminated,
            truncated: s.truncated,
            info: s.info,
        })
    }

    /// `reset`, writing the observation into `obs`.
    fn reset_into(&mut self, seed: Option<u64>, obs: ObsSlot<'_>) -> Result<Info, EnvError> {
        let (o, info) = self.reset(seed, None)?;
        write_obs(self.id(), o, obs)?;
        Ok(info)
    }
}

/// Where [`Env::step_into`] and [`Env::reset_into`] write an observation.
#[derive(Debug)]
pub enum ObsSlot<'a> {
    /// A flat observation's row (Box; Discrete and MultiDiscrete as floats).
    Flat(&'a mut [f32]),
    /// A graph observation.
    Graph(&'a mut GraphValue),
}

/// What [`Env::step_into`] returns besides the observation it wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepInto {
    /// The reward of the step.
    pub reward: f64,
    /// A terminal state of the MDP was reached.
    pub terminated: bool,
    /// An outside limit ended the episode.
    pub truncated: bool,
    /// Diagnostics.
    pub info: Info,
}

/// Writes observation `v` of env `id` into `slot`: a flat value into a row of exactly
/// its length, a graph into a graph slot. Anything else is an error naming the env
/// (never a silent skip or a panic).
pub fn write_obs(id: &str, v: Value, slot: ObsSlot<'_>) -> Result<(), EnvError> {
    let mismatch = |reason: String| EnvError::Config {
        env: id.to_string(),
        field: "observation".into(),
        reason,
    };
    match (v, slot) {
        (Value::Box(x), ObsSlot::Flat(out)) if out.len() == x.len() => out.copy_from_slice(&x),
        (Value::Discrete(a), ObsSlot::Flat(out)) if out.len() == 1 => out[0] = a as f32,
        (Value::MultiDiscrete(a), ObsSlot::Flat(out)) if out.len() == a.len() => {
            out.iter_mut().zip(&a).for_each(|(o, &x)| *o = x as f32)
        }
        (Value::Graph(g), ObsSlot::Graph(out)) => *out = g,
        (Value::Graph(_), ObsSlot::Flat(_)) => {
            return Err(mismatch(
                "a graph observation, written to a flat buffer".into(),
            ));
        }
        (_, ObsSlot::Graph(_)) => {
            return Err(mismatch(
                "a flat observation, written to a graph slot".into(),
            ));
        }
        (v, ObsSlot::Flat(out)) => {
            return Err(mismatch(format!(
                "an observation of {} values, written to a row of {}",
                v.flat_len(),
                out.len()
            )));
        }
    }
    Ok(())
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
