//! Scaling-v0: service readings (or the resource graph) in, replica counts out, one
//! proposal per service whose count the policy wants changed.

use super::{Context, Decide, Input};
use crate::action::Action;
use crate::config::EnvKind;
use crate::explain::{Explanation, scaling_alternatives, scaling_effect, scaling_features};
use crate::observe::Replicas;
use crate::report::{Outcome, Plan, Seen};
use crate::target::TargetState;
use hale_envs::Value;
use hale_envs::encoding::{GraphEncoding, ScalingActions, ScalingObservation, ServiceReading};

/// Scaling-v0's encoding and action layout, from the env the policy was trained on.
pub struct ScalingDecision {
    encoding: ScalingObservation,
    actions: ScalingActions,
    graph: Option<GraphEncoding>,
}

impl ScalingDecision {
    /// The decision for the Scaling-v0 env `env_config` builds.
    pub fn new(env_config: &serde_json::Value) -> Result<ScalingDecision, hale_envs::EnvError> {
        let env = hale_envs::Scaling::new(env_config)?;
        let cfg = hale_envs::ScalingConfig::from_json(env_config)?;
        if cfg.features != hale_envs::encoding::FeatureSet::V1 {
            return Err(hale_envs::EnvError::Config {
                env: "Scaling-v0".into(),
                field: "features".into(),
                reason: "the adapter reads the v1 features only: a policy trained on \
                         `features = \"v2\"` cannot run here yet"
                    .into(),
            });
        }
        if !env.action_encoding().cpu_levels.is_empty() {
            return Err(hale_envs::EnvError::Config {
                env: "Scaling-v0".into(),
                field: "cpu_levels".into(),
                reason: "the adapter sets replica counts only: a policy that also sizes CPU \
                         requests (vertical sizing) cannot be actuated yet"
                    .into(),
            });
        }
        Ok(ScalingDecision {
            encoding: env.observation_encoding(),
            actions: env.action_encoding(),
            graph: super::reads_graphs(env_config).then(|| env.graph_encoding()),
        })
    }
}

impl Decide for ScalingDecision {
    fn env(&self) -> EnvKind {
        EnvKind::Scaling
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
        if self.graph.is_some() {
            return crate::live::gather(&cx.sources, state, replicas, now_unix, true)
                .map(Input::Live);
        }
        let observation =
            cx.sources
                .source
                .observe(&self.encoding, cx.sources.services, replicas, now_unix);
        cx.sources
            .metrics
            .staleness
            .set(observation.oldest_sample_s);
        if !observation.missing.is_empty() {
            return Err(Outcome::missing(observation.missing));
        }
        Ok(Input::Services {
            observation,
            replicas: replicas.to_vec(),
        })
    }

    fn decide(&self, cx: &mut Context<'_>, input: &Input, now_s: f64) -> Result<Vec<Plan>, String> {
        match (input, &self.graph) {
            (Input::Services { .. }, Some(_)) => {
                Err("the policy reads the resource graph, not per-service features".into())
            }
            (
                Input::Services {
                    observation,
                    replicas,
                },
                None,
            ) => {
                let counts: Vec<Replicas> =
                    replicas.iter().map(|r| r.unwrap_or_default()).collect();
                self.plan(
                    cx,
                    &Value::Box(observation.features.clone()),
                    &observation.readings,
                    &counts,
                    now_s,
                )
            }
            (Input::Live(input), Some(graph)) => self.plan(
                cx,
                &Value::Graph(input.graph(graph)),
                &input.services,
                &input.counts,
                now_s,
            ),
            (Input::Live(_), None) => {
                Err("the policy reads per-service features, not the resource graph".into())
            }
        }
    }
}

impl ScalingDecision {
    /// The policy's replica counts for `observation`, one plan per service whose
    /// count changes.
    fn plan(
        &self,
        cx: &mut Context<'_>,
        observation: &Value,
        readings: &[ServiceReading],
        counts: &[Replicas],
        now_s: f64,
    ) -> Result<Vec<Plan>, String> {
        let (choice, scores) = match cx.policy.act_explained(observation, None) {
            Ok((Value::MultiDiscrete(a), scores)) if a.len() == cx.sources.services.len() => {
                (a, scores)
            }
            Ok((other, _)) => return Err(format!("the policy answered {other:?}")),
            Err(e) => return Err(format!("the policy cannot read the observation: {e}")),
        };
        let mut planned = Vec::new();
        for (i, service) in cx.sources.services.iter().enumerate() {
            let r = counts[i];
            let wanted = self.actions.replicas(choice[i], r.desired);
            if wanted == r.desired {
                continue;
            }
            let proposed = Action::Scale {
                namespace: cx.sources.namespace.to_string(),
                service: service.clone(),
                replicas: wanted,
            };
            let verdict = cx.guard.check(&proposed, Some(r.desired), now_s);
            let reading = &readings[i];
            let to = verdict.action().map_or(r.desired, |a| match a {
                Action::Scale { replicas, .. } => *replicas,
                _ => r.desired,
            });
            let explanation = Explanation {
                policy: cx.policy.name().to_string(),
                features: scaling_features(reading, r),
                alternatives: scores
                    .as_ref()
                    .and_then(|s| s.get(i))
                    .map(|head| scaling_alternatives(head, &self.actions, r.desired))
                    .unwrap_or_default(),
                expected_effect: scaling_effect(reading.cpu_utilization, r.desired, to),
            };
            planned.push(Plan {
                service: service.clone(),
                current: Some(r.desired),
                seen: Some(Seen {
                    request_rate: reading.request_rate,
                    p95_ms: reading.p95_ms,
                    cpu_utilization: reading.cpu_utilization,
                    replicas: r,
                }),
                proposed,
                verdict,
                explanation,
            });
        }
        Ok(planned)
    }
}
