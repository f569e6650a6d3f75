//! The decision loop: read the target's state, let the env's decision ([`crate::decide`])
//! observe and decide, pass each change through the guardrails, and then either carry
//! it out (auto mode) or propose it and wait for a person (manual mode,
//! [`crate::approval::manual`]). Every step goes to stdout, the audit log and the
//! optional webhook, with its explanation ([`crate::report`]). Missing or stale data,
//! or a target that does not answer, means no action this step (a `hold` event says
//! why); the next step tries again.

use crate::actuate::Actuator;
use crate::approval::Shared;
use crate::approval::manual::Manual;
use crate::audit::AuditLog;
use crate::config::{AdapterConfig, EnvKind, Mode, TargetConfig};
use crate::decide::{Context as DecisionContext, Decide, Input};
use crate::error::{AdapterError, PolicyLoadError};
use crate::field::FieldError;
use crate::guard::Guard;
use crate::live::Sources;
use crate::metrics::Metrics;
use crate::observe::{PrometheusSource, Replicas};
use crate::report::{Outcome, Plan, describe};
use crate::server::Server;
use crate::target::Target;
use hale_policies::Policy;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running adapter.
pub struct Adapter {
    policy: Box<dyn Policy>,
    source: PrometheusSource,
    decision: Box<dyn Decide>,
    namespace: String,
    services: Vec<String>,
    act: Actuator,
    server: Option<Server>,
    manual: Option<Manual>,
}

/// Everything a config resolves to before anything outside is touched: the policy
/// loaded and checked against its env, the env's encoding, the service list checked
/// against it, the token, the Prometheus source and the guardrails. `hale-adapter
/// check` builds this, so that it refuses exactly what `run` would refuse.
pub struct Prepared {
    loaded: crate::policy::Loaded,
    decision: Box<dyn Decide>,
    namespace: String,
    services: Vec<String>,
    token: Option<String>,
    source: PrometheusSource,
    guard: Guard,
}

impl Prepared {
    /// What the policy is, for people.
    pub fn description(&self) -> &str {
        &self.loaded.description
    }
}

/// Resolves and checks a config without touching a target, a port or a file.
pub fn prepare(cfg: &AdapterConfig) -> Result<Prepared, AdapterError> {
    let observation = cfg
        .observation
        .clone()
        .ok_or_else(|| FieldError::new("observation", "an [observation] table is needed to run"))?;
    let loaded = crate::policy::load(cfg)?;
    let decision = crate::decide::for_env(cfg.env, &loaded.env_config).map_err(|source| {
        PolicyLoadError::Env {
            env: cfg.env.to_string(),
            config: loaded.env_config.to_string(),
            source: Box::new(source),
        }
    })?;
    if observation.replica_queries.is_none() {
        let reads = if decision.reads_graphs() {
            Some("the policy reads the resource graph, whose replica nodes need")
        } else if cfg.env == EnvKind::Healing {
            Some("Healing-v0 reads each replica: the config needs")
        } else {
            None
        };
        if let Some(reads) = reads {
            return Err(AdapterError::Mismatch {
                policy: loaded.description,
                message: format!(
                    "{reads} an [observation.replica_queries] table (memory_fraction, \
                     mean_latency_ms, error_rate)"
                ),
            });
        }
    }
    let env_services = decision.env_services();
    let namespace = cfg.target.namespace().to_string();
    let services = cfg.target.services().to_vec();
    if services.len() != env_services.len() {
        return Err(AdapterError::Mismatch {
            policy: loaded.description,
            message: format!(
                "target lists {} services, the policy's env has {} ({})",
                services.len(),
                env_services.len(),
                env_services.join(", ")
            ),
        });
    }
    let token = match (&cfg.server, cfg.mode) {
        (Some(server), Mode::Manual) => Some(server.token()?),
        _ => None,
    };
    Ok(Prepared {
        source: PrometheusSource::new(observation)?,
        guard: Guard::new(cfg.guardrails.clone())?,
        loaded,
        decision,
        namespace,
        services,
        token,
    })
}

impl Adapter {
    /// Builds the adapter a config describes (policy, guardrails, observation,
    /// target, audit log, endpoint); refuses what it cannot run.
    pub fn new(cfg: &AdapterConfig) -> Result<Adapter, AdapterError> {
        Adapter::start(cfg, prepare(cfg)?)
    }

    /// Starts what [`prepare`] resolved: connects the target, opens the audit log,
    /// starts the endpoint and the terminal prompt.
    pub fn start(cfg: &AdapterConfig, prepared: Prepared) -> Result<Adapter, AdapterError> {
        let Prepared {
            loaded,
            decision,
            namespace,
            services,
            token,
            source,
            guard,
        } = prepared;
        let metrics = Arc::new(Metrics::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            metrics: metrics.clone(),
            pending: Mutex::new(Vec::new()),
            replies: Mutex::new(tx.clone()),
            token,
        });
        let target = connect(&cfg.target)?;
        let server = match &cfg.server {
            Some(s) => Some(Server::start(&s.listen, shared.clone())?),
            None => None,
        };
        let manual = (cfg.mode == Mode::Manual).then(|| {
            if cfg.manual.prompt {
                crate::approval::read_terminal(tx.clone());
            }
            Manual {
                replies: rx,
                ttl_s: cfg.manual.ttl_s,
                next_id: 1,
                shared: shared.clone(),
            }
        });
        let webhook = cfg.notify.webhook.clone().map(|url| {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .into();
            (url, agent)
        });
        let audit = AuditLog::open(&cfg.audit_log).map_err(|source| AdapterError::Audit {
            path: cfg.audit_log.clone(),
            source,
        })?;
        Ok(Adapter {
            policy: loaded.policy,
            source,
            decision,
            namespace,
            services,
            act: Actuator {
                guard,
                target,
                audit,
                metrics,
                webhook,
            },
            server,
            manual,
        })
    }

    /// Replaces the target (tests and other targets than the config's).
    pub fn with_target(mut self, target: Box<dyn Target>) -> Adapter {
        self.act.target = target;
        self
    }

    /// The address of the HTTP endpoint, if the config has one.
    pub fn server_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// The adapter's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.act.metrics
    }

    /// One decision: `now_unix` for sample ages, `now_s` (monotonic seconds) for the
    /// guardrails' clocks. In manual mode this waits for the proposals' answers (or
    /// their expiry). Errors only when the audit log cannot be written.
    pub fn step(&mut self, now_unix: f64, now_s: f64) -> Result<Outcome, AdapterError> {
        let outcome = match self.plan(now_unix, now_s) {
            Err(hold) => hold,
            Ok(planned) => {
                let decisions = match &mut self.manual {
                    Some(manual) => manual.ask(&mut self.act, planned, now_unix, now_s)?,
                    None => planned
                        .into_iter()
                        .map(|p| {
                            let verdict = p.verdict.clone();
                            self.act.carry_out(p, verdict, None, now_s)
                        })
                        .collect(),
                };
                Outcome::Decided { decisions }
            }
        };
        match &outcome {
            Outcome::Hold { reasons, .. } => {
                self.act.metrics.holds.inc();
                println!("hold: {}", reasons.join("; "));
                self.act.notify("hold", &outcome)?;
            }
            Outcome::Decided { decisions } => {
                self.act.metrics.decisions.inc();
                for d in decisions {
                    let seen = d.seen.as_ref().map_or(String::new(), |s| {
                        format!(
                            "{} req/s, CPU {:.0} %, p95 {:.0} ms, {}/{} ready; ",
                            s.request_rate,
                            100.0 * s.cpu_utilization,
                            s.p95_ms,
                            s.replicas.ready,
                            s.replicas.desired,
                        )
                    });
                    println!(
                        "{}: {} → {} ({seen}{})",
                        d.service,
                        describe(&d.proposed, &d.verdict),
                        d.result,
                        d.explanation.summary()
                    );
                    self.act.notify("decision", d)?;
                }
                if decisions.is_empty() {
                    self.act
                        .notify("decision", serde_json::json!({"changes": 0}))?;
                }
            }
        }
        Ok(outcome)
    }

    /// The env's decision and what it reads besides its input.
    fn decision(&mut self) -> (&dyn Decide, DecisionContext<'_>) {
        let cx = DecisionContext {
            policy: self.policy.as_mut(),
            guard: &self.act.guard,
            sources: Sources {
                source: &self.source,
                metrics: &self.act.metrics,
                namespace: &self.namespace,
                services: &self.services,
            },
        };
        (self.decision.as_ref(), cx)
    }

    /// Observes and lets the policy decide; a hold when anything is missing.
    fn plan(&mut self, now_unix: f64, now_s: f64) -> Result<Vec<Plan>, Outcome> {
        let state = self
            .act
            .target
            .state()
            .map_err(|e| Outcome::hold(e.to_string()))?;
        self.act.guard.observe(&state.replicas);
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
        let (decision, cx) = self.decision();
        let input = decision.observe(&cx, &state, &replicas, now_unix)?;
        self.decide(&input, now_s).map_err(Outcome::hold)
    }

    /// The part of a step with no network in it: from what was observed to the
    /// policy's changes with their guardrail verdicts and explanations (nothing is
    /// carried out). Its time is the decision latency.
    pub fn decide(&mut self, input: &Input, now_s: f64) -> Result<Vec<Plan>, String> {
        let started = Instant::now();
        let (decision, mut cx) = self.decision();
        let planned = decision.decide(&mut cx, input, now_s);
        self.act
            .metrics
            .decision_latency
            .observe(started.elapsed().as_secs_f64());
        planned
    }
}

/// Connects to the target a config's `[target]` table describes (nothing is
/// changed). The config module only describes targets, and the target modules know
/// nothing of configs: the clients are built here.
fn connect(config: &TargetConfig) -> Result<Box<dyn Target>, crate::target::TargetError> {
    match config {
        TargetConfig::DryRun {
            namespace,
            services,
            initial_replicas,
            cpu_millicores,
        } => {
            let target = crate::target::DryRun::new(
                services
                    .iter()
                    .map(|s| (format!("{namespace}/{s}"), *initial_replicas))
                    .collect(),
            );
            Ok(Box::new(match cpu_millicores {
                Some(m) => target.with_cpu(*m),
                None => target,
            }))
        }
        TargetConfig::Docker {
            socket,
            services,
            timeout_s,
        } => Ok(Box::new(crate::docker::DockerSwarm::connect(
            socket,
            services,
            std::time::Duration::from_secs_f64(*timeout_s),
        )?)),
        TargetConfig::Kubernetes {
            kubeconfig,
            context,
            namespace,
            deployments,
            timeout_s,
        } => {
            let path = kubeconfig
                .clone()
                .unwrap_or_else(crate::config::default_kubeconfig);
            Ok(Box::new(crate::kubernetes::Kubernetes::connect(
                &path,
                context.as_deref(),
                namespace,
                deployments,
                std::time::Duration::from_secs_f64(*timeout_s),
            )?))
        }
    }
}
