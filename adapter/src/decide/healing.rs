//! Healing-v0: replicas, hosts and services in (or the resource graph), at most one
//! remedy out: restart or reschedule a replica, roll back a service, drain a node.

use super::{Context, Decide, Input};
use crate::action::Action;
use crate::config::EnvKind;
use crate::explain::{
    Explanation, discrete_alternatives, healing_features, host_features, scaling_features,
};
use crate::live::{LiveHost, LiveInput, LiveReplica};
use crate::observe::Replicas;
use crate::report::{Outcome, Plan, Seen};
use crate::target::TargetState;
use hale_envs::Value;
use hale_envs::encoding::{
    GraphEncoding, HealingAction, HealingObservation, HostReading, ReplicaReading, ReplicaState,
};

/// Healing-v0's encoding, mask and action layout, from the env the policy was
/// trained on.
pub struct HealingDecision {
    encoding: HealingObservation,
    graph: Option<GraphEncoding>,
}

impl HealingDecision {
    /// The decision for the Healing-v0 env `env_config` builds.
    pub fn new(env_config: &serde_json::Value) -> Result<HealingDecision, hale_envs::EnvError> {
        let env = hale_envs::Healing::new(env_config)?;
        Ok(HealingDecision {
            encoding: env.observation_encoding(),
            graph: super::reads_graphs(env_config).then(|| env.graph_encoding()),
        })
    }
}

impl Decide for HealingDecision {
    fn env(&self) -> EnvKind {
        EnvKind::Healing
    }

    fn env_services(&self) -> &[String] {
        &self.encoding.services
    }

    fn reads_graphs(&self) -> bool {
        self.graph.is_some()
    }

    fn observe(
        &self,
        cx: &Context<'_>,
        state: &TargetState,
        replicas: &[Option<Replicas>],
        now_unix: f64,
    ) -> Result<Input, Outcome> {
        crate::live::gather(&cx.sources, state, replicas, now_unix, self.graph.is_some())
            .map(Input::Live)
    }

    fn decide(&self, cx: &mut Context<'_>, input: &Input, now_s: f64) -> Result<Vec<Plan>, String> {
        match input {
            Input::Live(input) => self.plan(cx, input, now_s),
            Input::Services { .. } => {
                Err("Healing-v0 reads each replica and node, not per-service features".into())
            }
        }
    }
}

impl HealingDecision {
    /// The policy's remedy for `input`, if any, as a plan.
    fn plan(
        &self,
        cx: &mut Context<'_>,
        input: &LiveInput,
        now_s: f64,
    ) -> Result<Vec<Plan>, String> {
        let encoding = &self.encoding;
        let replicas: Vec<ReplicaReading> = input.replicas.iter().map(|r| r.reading).collect();
        let hosts: Vec<HostReading> = input.hosts.iter().map(|h| h.reading).collect();
        let obs = match &self.graph {
            Some(g) => Value::Graph(input.graph(g)),
            None => Value::Box(encoding.encode(&replicas, &hosts, &input.services)),
        };
        let mask = encoding.mask(&replicas, &hosts, &input.rollback_possible);
        let (a, scores) = match cx.policy.act_explained(&obs, Some(&mask)) {
            Ok((Value::Discrete(a), scores)) => (a, scores),
            Ok((other, _)) => return Err(format!("the policy answered {other:?}")),
            Err(e) => return Err(format!("the policy cannot read the observation: {e}")),
        };
        let chosen = usize::try_from(a)
            .ok()
            .filter(|&a| mask.get(a).copied().unwrap_or(false))
            .and_then(|a| encoding.action(a))
            .ok_or_else(|| format!("the policy chose action {a}, which does not apply now"))?;
        let name = |a: usize| -> String {
            match encoding.action(a) {
                Some(HealingAction::Noop) | None => "no-op".into(),
                Some(HealingAction::Restart(k)) => format!("restart {}", input.replicas[k].name),
                Some(HealingAction::Reschedule(k)) => {
                    format!("reschedule {}", input.replicas[k].name)
                }
                Some(HealingAction::Rollback(s)) => format!("roll back {}", cx.sources.services[s]),
                Some(HealingAction::Drain(h)) => format!("drain {}", input.hosts[h].name),
            }
        };
        let alternatives = scores
            .as_ref()
            .and_then(|s| s.first())
            .map(|head| discrete_alternatives(head, &mask, 5, name))
            .unwrap_or_default();
        let ns = cx.sources.namespace.to_string();
        let seen = |s: usize| Seen::of(&input.services[s], input.counts[s]);
        let (subject, service, proposed, features, effect) = match chosen {
            HealingAction::Noop => return Ok(vec![]),
            HealingAction::Restart(k) | HealingAction::Reschedule(k) => {
                let LiveReplica {
                    name: replica,
                    reading: r,
                    ..
                } = &input.replicas[k];
                let s = r.service;
                let counts = input.counts[s];
                let verb = if matches!(chosen, HealingAction::Restart(_)) {
                    "a new process"
                } else {
                    "a replacement placed by the orchestrator's scheduler"
                };
                (
                    cx.sources.services[s].clone(),
                    Some(s),
                    Action::Restart {
                        namespace: ns,
                        service: cx.sources.services[s].clone(),
                        replica: replica.clone(),
                    },
                    healing_features(r, &input.services[s], counts),
                    format!(
                        "replica {replica} ({}, {} restarts) gets {verb}; {} keeps {} of {} \
                         ready meanwhile",
                        state_name(r.state),
                        r.restarts,
                        cx.sources.services[s],
                        counts
                            .ready
                            .saturating_sub(u32::from(r.state == ReplicaState::Ready)),
                        counts.desired
                    ),
                )
            }
            HealingAction::Rollback(s) => (
                cx.sources.services[s].clone(),
                Some(s),
                Action::Rollback {
                    namespace: ns,
                    service: cx.sources.services[s].clone(),
                },
                scaling_features(&input.services[s], input.counts[s]),
                format!(
                    "{} goes back to its previous template (error rate now {:.1} %)",
                    cx.sources.services[s],
                    100.0 * input.services[s].error_rate
                ),
            ),
            HealingAction::Drain(h) => {
                let LiveHost {
                    name: node,
                    reading: host,
                    ..
                } = &input.hosts[h];
                let on_it = input
                    .replicas
                    .iter()
                    .filter(|r| r.node.as_ref() == Some(node))
                    .count();
                let open = input
                    .hosts
                    .iter()
                    .filter(|h| &h.name != node && h.reading.up && !h.reading.cordoned)
                    .count();
                (
                    node.clone(),
                    None,
                    Action::Drain { node: node.clone() },
                    host_features(host, on_it),
                    format!(
                        "node {node} takes no new work and its replicas move to the {open} \
                         other schedulable node{}",
                        if open == 1 { "" } else { "s" }
                    ),
                )
            }
        };
        let current = service.map(|s| input.counts[s].desired);
        let verdict = cx.guard.check(&proposed, current, now_s);
        let plan = Plan {
            service: subject,
            current,
            seen: service.map(seen),
            proposed,
            verdict,
            explanation: Explanation {
                policy: cx.policy.name().to_string(),
                features,
                alternatives,
                expected_effect: effect,
            },
        };
        Ok(vec![plan])
    }
}

/// A replica state in words.
fn state_name(state: ReplicaState) -> &'static str {
    use ReplicaState as S;
    match state {
        S::Pending => "pending",
        S::Booting => "booting",
        S::Ready => "ready",
        S::Degraded => "degraded",
        S::Hung => "hung",
        S::Crashed => "crashed",
        S::Terminating => "terminating",
        S::Terminated => "terminated",
    }
}
