//! Scaling-v0: service readings (or the resource graph) in, replica counts out, one
//! proposal per service whose count the policy wants changed; for a policy trained
//! with `cpu_levels`, also one resize per service whose CPU request per replica it
//! wants changed (the level times the service's base request, [`CpuRequest`]).

use super::{Context, Decide, Input};
use crate::action::Action;
use crate::config::EnvKind;
use crate::explain::{
    Explanation, Feature, discrete_alternatives, resize_effect, scaling_alternatives,
    scaling_effect, scaling_features,
};
use crate::guard::{Rule, Verdict};
use crate::observe::Replicas;
use crate::report::{Outcome, Plan, Seen};
use crate::target::{CpuRequest, TargetState};
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
        let cpu = cx
            .sources
            .services
            .iter()
            .map(|s| {
                state
                    .cpu
                    .get(&format!("{}/{s}", cx.sources.namespace))
                    .copied()
            })
            .collect();
        Ok(Input::Services {
            observation,
            replicas: replicas.to_vec(),
            cpu,
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
                    cpu,
                },
                None,
            ) => {
                let counts: Vec<Replicas> =
                    replicas.iter().map(|r| r.unwrap_or_default()).collect();
                self.plan(
                    cx,
                    &Value::Box(observation.features.clone()),
                    &observation.readings,
                    (&counts, cpu),
                    now_s,
                )
            }
            // Graph policies size replica counts only (the GNN refuses `cpu_levels`).
            (Input::Live(input), Some(graph)) => self.plan(
                cx,
                &Value::Graph(input.graph(graph)),
                &input.services,
                (&input.counts, &[]),
                now_s,
            ),
            (Input::Live(_), None) => {
                Err("the policy reads per-service features, not the resource graph".into())
            }
        }
    }
}

impl ScalingDecision {
    /// The policy's replica counts (and CPU requests) for `observation`, one plan
    /// per service whose count changes, then one per service whose request does.
    fn plan(
        &self,
        cx: &mut Context<'_>,
        observation: &Value,
        readings: &[ServiceReading],
        (counts, cpu): (&[Replicas], &[Option<CpuRequest>]),
        now_s: f64,
    ) -> Result<Vec<Plan>, String> {
        let n = cx.sources.services.len();
        let sizes = !self.actions.cpu_levels.is_empty();
        let width = if sizes { 2 * n } else { n };
        let (choice, scores) = match cx.policy.act_explained(observation, None) {
            Ok((Value::MultiDiscrete(a), scores)) if a.len() == width => (a, scores),
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
                seen: Some(Seen::of(reading, r)),
                proposed,
                verdict,
                explanation,
            });
        }
        if sizes {
            for (i, service) in cx.sources.services.iter().enumerate() {
                let head = scores.as_ref().and_then(|s| s.get(n + i));
                let seen = (&readings[i], counts[i], cpu.get(i).copied().flatten());
                if let Some(plan) = self.resize(cx, service, (choice[n + i], head), seen, now_s) {
                    planned.push(plan);
                }
            }
        }
        Ok(planned)
    }

    /// The resize of `service` to the level the policy chose (with the scores of
    /// its head, for the alternatives), if its request changes by more than 1 % (at
    /// least 1m); blocked ([`Rule::UnknownCpu`]) where the target reports no request
    /// for it.
    fn resize(
        &self,
        cx: &Context<'_>,
        service: &str,
        (choice, head): (i64, Option<&Vec<f32>>),
        (reading, r, request): (&ServiceReading, Replicas, Option<CpuRequest>),
        now_s: f64,
    ) -> Option<Plan> {
        let levels = &self.actions.cpu_levels;
        let level = levels[usize::try_from(choice).ok()?.min(levels.len() - 1)];
        let (from, to) = match request {
            Some(c) => (
                c.millicores,
                ((f64::from(c.base_millicores) * level).round() as u32).max(1),
            ),
            // Unknown: proposed as the level itself, and blocked.
            None => (0, 0),
        };
        if request.is_some() && from.abs_diff(to) <= (from / 100).max(1) {
            return None;
        }
        let proposed = Action::Resize {
            namespace: cx.sources.namespace.to_string(),
            service: service.to_string(),
            millicores: to,
        };
        let verdict = if request.is_none() {
            Verdict::Blocked {
                rule: Rule::UnknownCpu,
            }
        } else {
            cx.guard.check(&proposed, Some(r.desired), now_s)
        };
        let base = request.map_or(0, |c| c.base_millicores);
        let mut features = scaling_features(reading, r);
        features.push(Feature {
            name: "cpu_request_millicores",
            value: f64::from(from),
        });
        features.push(Feature {
            name: "base_cpu_millicores",
            value: f64::from(base),
        });
        let explanation = Explanation {
            policy: cx.policy.name().to_string(),
            features,
            alternatives: head
                .map(|h| {
                    discrete_alternatives(h, &vec![true; h.len()], 3, |a| {
                        let l = levels.get(a).copied().unwrap_or(f64::NAN);
                        format!("CPU request {:.0}m (× {l})", (f64::from(base) * l).round())
                    })
                })
                .unwrap_or_default(),
            expected_effect: if request.is_some() {
                resize_effect(reading.cpu_utilization, from, to)
            } else {
                format!("CPU request × {level} of a base the target does not report")
            },
        };
        Some(Plan {
            service: service.to_string(),
            current: Some(r.desired),
            seen: Some(Seen::of(reading, r)),
            proposed,
            verdict,
            explanation,
        })
    }
}
