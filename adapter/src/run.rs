//! The decision loop, for Scaling-v0 in auto mode (this slice): read the target's
//! replicas and Prometheus, build the observation, let the policy decide, pass each
//! change through the guardrails, carry out what they allow, and write every step to
//! the audit log and stdout. Missing or stale data, or a target that does not
//! answer, means no action this step (a `hold` event says why); the next step tries
//! again.

use crate::action::Action;
use crate::audit::AuditLog;
use crate::config::{AdapterConfig, Mode, TargetConfig};
use crate::guard::{Guard, Verdict};
use crate::observe::{Missing, PrometheusSource, Replicas};
use crate::target::{DryRun, Target};
use anyhow::{Context, Result, bail};
use hale_envs::Value;
use hale_envs::live::{ScalingActions, ScalingObservation};
use hale_policies::Policy;
use serde::Serialize;

/// What was seen of a service when deciding about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Seen {
    /// Requests per second.
    pub request_rate: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
    /// CPU utilisation.
    pub cpu_utilization: f64,
    /// Replicas (ready, starting, desired).
    pub replicas: Replicas,
}

/// One change the policy asked for, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The service (target name).
    pub service: String,
    /// What drove it.
    pub seen: Seen,
    /// The policy's proposal.
    pub proposed: Action,
    /// The guardrails' verdict.
    pub verdict: Verdict,
    /// `applied`, `blocked`, or `failed: …` (the target's error).
    pub result: String,
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing was done: the reasons.
    Hold {
        /// Why (missing data, target errors), one line per distinct cause.
        reasons: Vec<String>,
        /// Each missing feature with its query.
        missing: Vec<Missing>,
    },
    /// The policy decided; one entry per service whose replicas it wanted changed.
    Decided {
        /// The decisions.
        decisions: Vec<Decision>,
    },
}

/// A running adapter.
pub struct Adapter {
    policy: Box<dyn Policy>,
    guard: Guard,
    target: Box<dyn Target>,
    source: PrometheusSource,
    encoding: ScalingObservation,
    actions: ScalingActions,
    namespace: String,
    services: Vec<String>,
    audit: AuditLog,
}

impl Adapter {
    /// Builds the adapter a config describes (policy, guardrails, observation,
    /// target, audit log); refuses what this slice cannot run yet.
    pub fn new(cfg: &AdapterConfig) -> Result<Adapter> {
        if cfg.env != "Scaling-v0" {
            bail!(
                "env {}: this version of the adapter runs Scaling-v0 policies",
                cfg.env
            );
        }
        if cfg.mode != Mode::Auto {
            bail!(
                "mode = \"manual\" is not built yet: set mode = \"auto\" (with a dry-run target to watch first)"
            );
        }
        let observation = cfg
            .observation
            .clone()
            .context("an [observation] table is needed to run")?;
        let loaded = crate::policy::load(cfg)?;
        let env =
            hale_envs::Scaling::new(&loaded.env_config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let encoding = env.live_observation();
        let (namespace, services, target): (String, Vec<String>, Box<dyn Target>) =
            match &cfg.target {
                TargetConfig::DryRun {
                    namespace,
                    services,
                    initial_replicas,
                } => (
                    namespace.clone(),
                    services.clone(),
                    Box::new(DryRun::new(
                        services
                            .iter()
                            .map(|s| (format!("{namespace}/{s}"), *initial_replicas))
                            .collect(),
                    )),
                ),
            };
        if services.len() != encoding.services.len() {
            bail!(
                "target.services lists {} services, the policy's env has {} ({})",
                services.len(),
                encoding.services.len(),
                encoding.services.join(", ")
            );
        }
        Ok(Adapter {
            policy: loaded.policy,
            guard: Guard::new(cfg.guardrails.clone()).map_err(anyhow::Error::msg)?,
            target,
            source: PrometheusSource::new(observation).map_err(anyhow::Error::msg)?,
            encoding,
            actions: env.live_actions(),
            namespace,
            services,
            audit: AuditLog::open(&cfg.audit_log)
                .with_context(|| format!("audit log {}", cfg.audit_log.display()))?,
        })
    }

    /// Replaces the target (tests and other targets than the config's).
    pub fn with_target(mut self, target: Box<dyn Target>) -> Adapter {
        self.target = target;
        self
    }

    /// One decision: `now_unix` for sample ages, `now_s` (monotonic seconds) for the
    /// guardrails' clocks. Errors only when the audit log cannot be written.
    pub fn step(&mut self, now_unix: f64, now_s: f64) -> Result<Outcome> {
        let outcome = self.decide(now_unix, now_s);
        match &outcome {
            Outcome::Hold { reasons, .. } => {
                println!("hold: {}", reasons.join("; "));
                self.audit.append("hold", &outcome)?;
            }
            Outcome::Decided { decisions } => {
                for d in decisions {
                    println!(
                        "{}: {} → {} ({} req/s, CPU {:.0} %, p95 {:.0} ms, {}/{} ready)",
                        d.service,
                        d.proposed,
                        d.result,
                        d.seen.request_rate,
                        100.0 * d.seen.cpu_utilization,
                        d.seen.p95_ms,
                        d.seen.replicas.ready,
                        d.seen.replicas.desired
                    );
                    self.audit.append("decision", d)?;
                }
                if decisions.is_empty() {
                    self.audit
                        .append("decision", serde_json::json!({"changes": 0}))?;
                }
            }
        }
        Ok(outcome)
    }

    fn decide(&mut self, now_unix: f64, now_s: f64) -> Outcome {
        let state = match self.target.state() {
            Ok(s) => s,
            Err(e) => {
                return Outcome::Hold {
                    reasons: vec![e.to_string()],
                    missing: vec![],
                };
            }
        };
        let replicas: Vec<Option<Replicas>> = self
            .services
            .iter()
            .map(|s| {
                state
                    .services
                    .get(&format!("{}/{s}", self.namespace))
                    .copied()
            })
            .collect();
        let obs = self
            .source
            .observe(&self.encoding, &self.services, &replicas, now_unix);
        if !obs.missing.is_empty() {
            return Outcome::Hold {
                reasons: summarise(&obs.missing),
                missing: obs.missing,
            };
        }
        let choice = match self.policy.act(&Value::Box(obs.features.clone()), None) {
            Value::MultiDiscrete(a) if a.len() == self.services.len() => a,
            other => {
                return Outcome::Hold {
                    reasons: vec![format!("the policy answered {other:?}")],
                    missing: vec![],
                };
            }
        };
        let mut decisions = Vec::new();
        for (i, service) in self.services.iter().enumerate() {
            let r = replicas[i].unwrap_or_default();
            let wanted = self.actions.replicas(choice[i], r.desired);
            if wanted == r.desired {
                continue;
            }
            let proposed = Action::Scale {
                namespace: self.namespace.clone(),
                service: service.clone(),
                replicas: wanted,
            };
            let verdict = self.guard.check(&proposed, Some(r.desired), now_s);
            let result = match verdict.action() {
                None => "blocked".to_string(),
                Some(a) => match self.target.apply(a) {
                    Ok(()) => {
                        self.guard.record(a, Some(r.desired), now_s);
                        "applied".to_string()
                    }
                    Err(e) => format!("failed: {e}"),
                },
            };
            let reading = &obs.readings[i];
            decisions.push(Decision {
                service: service.clone(),
                seen: Seen {
                    request_rate: reading.request_rate,
                    p95_ms: reading.p95_ms,
                    cpu_utilization: reading.cpu_utilization,
                    replicas: r,
                },
                proposed,
                verdict,
                result,
            });
        }
        Outcome::Decided { decisions }
    }
}

/// One line per distinct cause (the query left out), naming the features it hit:
/// an unreachable Prometheus is one line, not one per feature.
fn summarise(missing: &[Missing]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for m in missing {
        let cause = m.reason.split(" (query ").next().unwrap_or(&m.reason);
        let what = format!("{} {}", m.service, m.feature);
        match groups.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, w)) => w.push(what),
            None => groups.push((cause, vec![what])),
        }
    }
    groups
        .into_iter()
        .map(|(cause, what)| format!("{cause} ({})", what.join(", ")))
        .collect()
}
