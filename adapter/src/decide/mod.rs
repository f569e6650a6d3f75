//! The decision, per env: what the policy reads, and from its answer the changes it
//! wants, each with the guardrails' verdict and an explanation. Nothing here is
//! carried out ([`crate::run`] does that, or asks a person first). One
//! implementation of [`Decide`] per env: [`scaling`] and [`healing`].

pub mod healing;
pub mod scaling;

use crate::config::EnvKind;
use crate::guard::Guard;
use crate::live::{LiveInput, Sources};
use crate::observe::{Observation, Replicas};
use crate::report::{Outcome, Plan};
use crate::target::{CpuRequest, TargetState};
use hale_policies::Policy;

/// What a decision reads besides its input.
pub struct Context<'a> {
    /// The policy.
    pub policy: &'a mut dyn Policy,
    /// The guardrails (checked, not recorded: nothing is carried out here).
    pub guard: &'a Guard,
    /// Where observations come from, and the target's names.
    pub sources: Sources<'a>,
}

/// What a policy decides from.
#[derive(Clone, Debug)]
pub enum Input {
    /// Scaling-v0's flat observation: per-service features from Prometheus, and
    /// the replica counts (none where the target does not list the service).
    Services {
        /// The observation and the readings behind it.
        observation: Observation,
        /// Replica counts per service.
        replicas: Vec<Option<Replicas>>,
        /// CPU request per replica of each service (none where the target reports
        /// none); read by policies that size CPU requests.
        cpu: Vec<Option<CpuRequest>>,
    },
    /// Replicas, nodes and services: Healing-v0's input, and any graph policy's.
    Live(LiveInput),
}

/// How the env a policy was trained on reads and decides.
pub trait Decide: Send {
    /// The env.
    fn env(&self) -> EnvKind;
    /// The env's service names, in its order.
    fn env_services(&self) -> &[String];
    /// Whether the policy reads the resource graph.
    fn reads_graphs(&self) -> bool;
    /// Reads what the policy needs from Prometheus and the target's state; a hold
    /// when anything is missing.
    fn observe(
        &self,
        cx: &Context<'_>,
        state: &TargetState,
        replicas: &[Option<Replicas>],
        now_unix: f64,
    ) -> Result<Input, Outcome>;
    /// The changes the policy wants, with their verdicts as of `now_s` and their
    /// explanations; an error when the policy cannot read the input or answers
    /// out of place.
    fn decide(&self, cx: &mut Context<'_>, input: &Input, now_s: f64) -> Result<Vec<Plan>, String>;
}

/// The decision for `env` on the env built from `env_config` (whose `observation`
/// says whether the policy reads graphs).
pub fn for_env(
    env: EnvKind,
    env_config: &serde_json::Value,
) -> Result<Box<dyn Decide>, hale_envs::EnvError> {
    Ok(match env {
        EnvKind::Scaling => Box::new(scaling::ScalingDecision::new(env_config)?),
        EnvKind::Healing => Box::new(healing::HealingDecision::new(env_config)?),
    })
}

/// Whether an env config asks for graph observations.
fn reads_graphs(env_config: &serde_json::Value) -> bool {
    env_config.get("observation").and_then(|v| v.as_str()) == Some("graph")
}
