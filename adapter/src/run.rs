//! The decision loop, for Scaling-v0 and Healing-v0: read the target's state and
//! Prometheus, build the observation the policy was trained on, let the policy
//! decide, pass each change through the guardrails, and then either carry it out (auto mode) or propose it and wait for a
//! person (manual mode). Every step goes to stdout, the audit log and the optional
//! webhook, with its explanation. Missing or stale data, or a target that does not
//! answer, means no action this step (a `hold` event says why); the next step tries
//! again.

use crate::action::Action;
use crate::approval::{Answer, Proposal, Reply};
use crate::audit::AuditLog;
use crate::config::{AdapterConfig, EnvKind, Mode};
use crate::explain::Explanation;
use crate::guard::{Guard, Verdict};
use crate::metrics::Metrics;
use crate::observe::{Missing, Observation, PrometheusSource, Replicas};
use crate::server::{Server, Shared};
use crate::target::{Target, TargetState};
use anyhow::{Context, Result, bail};
use hale_envs::Value;
use hale_envs::live::{
    GraphEncoding, GraphHost, GraphReplica, HealingAction, HealingObservation, HostReading,
    ReplicaReading, ScalingActions, ScalingObservation, ServiceReading,
};
use hale_policies::Policy;
use serde::Serialize;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// What became of a proposal in manual mode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Approval {
    /// The proposal's number.
    pub proposal: u64,
    /// `accepted`, `declined`, `modified` or `expired`.
    pub decision: String,
    /// Who decided (absent when it expired).
    pub by: Option<String>,
    /// The replicas a person asked for instead (`modified`).
    pub replicas: Option<u32>,
}

/// One change the policy asked for, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The service (target name), or the node of a node action.
    pub service: String,
    /// What was seen of the service (none for a node action).
    pub seen: Option<Seen>,
    /// The policy's proposal.
    pub proposed: Action,
    /// The guardrails' verdict on what was finally asked for.
    pub verdict: Verdict,
    /// Why the policy wanted it, and what it should do.
    pub explanation: Explanation,
    /// In manual mode, the person's decision.
    pub approval: Option<Approval>,
    /// `applied`, `blocked`, `declined`, `expired`, or `failed: …` (the target's
    /// error).
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

/// A change the policy wants, before anything is done about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The service (target name), or the node of a node action.
    pub service: String,
    /// The service's desired replicas now (none for a node action).
    pub current: Option<u32>,
    /// What was seen of the service.
    pub seen: Option<Seen>,
    /// The policy's proposal.
    pub proposed: Action,
    /// The guardrails' verdict on it, as of now.
    pub verdict: Verdict,
    /// Why.
    pub explanation: Explanation,
}

/// Manual mode's channel to people: replies from the terminal and the endpoint.
struct Manual {
    replies: Receiver<Reply>,
    ttl_s: f64,
    next_id: u64,
}

/// How the env the policy was trained on reads and acts.
enum Driver {
    /// Scaling-v0: service readings in, replica counts out.
    Scaling {
        encoding: ScalingObservation,
        actions: ScalingActions,
    },
    /// Healing-v0: replicas, hosts and services in, one remedy out.
    Healing { encoding: HealingObservation },
}

/// What Healing-v0's observation and the resource graph (of either env) are built
/// from: the target's replicas and nodes with what Prometheus says about them.
#[derive(Clone, Debug, Default)]
pub struct LiveInput {
    /// The replicas in slot order (by service, then the target's order).
    pub replicas: Vec<LiveReplica>,
    /// The nodes in slot order.
    pub hosts: Vec<LiveHost>,
    /// Distinct zones of the nodes (at least one).
    pub zones: usize,
    /// One reading per service, in the env's order.
    pub services: Vec<ServiceReading>,
    /// Replica counts per service.
    pub counts: Vec<Replicas>,
    /// Whether each service has a previous revision.
    pub rollback_possible: Vec<bool>,
}

/// One node of the live input.
#[derive(Clone, Debug)]
pub struct LiveHost {
    /// Its target name.
    pub name: String,
    /// Its zone's index.
    pub zone: usize,
    /// Up, cordoned, CPU allocation.
    pub reading: HostReading,
    /// Requested over available memory (0 where unknown; only the graph reads it).
    pub memory_allocation: f64,
}

impl LiveInput {
    /// The resource graph of this state, encoded as the env does.
    pub fn graph(&self, encoding: &GraphEncoding) -> hale_envs::GraphValue {
        let hosts: Vec<GraphHost> = self
            .hosts
            .iter()
            .map(|h| GraphHost {
                zone: h.zone,
                reading: h.reading,
                memory_allocation: h.memory_allocation,
            })
            .collect();
        let replicas: Vec<GraphReplica> = self
            .replicas
            .iter()
            .map(|r| GraphReplica {
                reading: r.reading,
                host: r
                    .node
                    .as_ref()
                    .and_then(|n| self.hosts.iter().position(|h| &h.name == n)),
            })
            .collect();
        encoding.encode(self.zones, &hosts, &self.services, &replicas)
    }
}

/// One replica of the live input.
#[derive(Clone, Debug)]
pub struct LiveReplica {
    /// Its target name (pod, task id).
    pub name: String,
    /// The node it is placed on.
    pub node: Option<String>,
    /// What the env's encoding reads.
    pub reading: ReplicaReading,
}

/// A running adapter.
pub struct Adapter {
    policy: Box<dyn Policy>,
    guard: Guard,
    target: Box<dyn Target>,
    source: PrometheusSource,
    driver: Driver,
    /// The resource-graph encoding, for a policy that reads graphs.
    graph: Option<GraphEncoding>,
    namespace: String,
    services: Vec<String>,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    server: Option<Server>,
    manual: Option<Manual>,
    webhook: Option<(String, ureq::Agent)>,
}

/// Everything a config resolves to before anything outside is touched: the policy
/// loaded and checked against its env, the env's encoding, the service list checked
/// against it, the token, the Prometheus source and the guardrails. `hale-adapter
/// check` builds this, so that it refuses exactly what `run` would refuse.
pub struct Prepared {
    loaded: crate::policy::Loaded,
    driver: Driver,
    graph: Option<GraphEncoding>,
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
pub fn prepare(cfg: &AdapterConfig) -> Result<Prepared> {
    let observation = cfg
        .observation
        .clone()
        .context("an [observation] table is needed to run")?;
    let loaded = crate::policy::load(cfg)?;
    let reads_graphs = loaded
        .env_config
        .get("observation")
        .and_then(|v| v.as_str())
        == Some("graph");
    if reads_graphs && observation.replica_queries.is_none() {
        bail!(
            "{}: the policy reads the resource graph, whose replica nodes need an \
             [observation.replica_queries] table (memory_fraction, mean_latency_ms, \
             error_rate)",
            loaded.description
        );
    }
    let (driver, graph) = if cfg.env == EnvKind::Healing {
        if observation.replica_queries.is_none() {
            bail!(
                "Healing-v0 reads each replica: the config needs an \
                 [observation.replica_queries] table (memory_fraction, mean_latency_ms, \
                 error_rate)"
            );
        }
        let env =
            hale_envs::Healing::new(&loaded.env_config).map_err(|e| anyhow::anyhow!("{e}"))?;
        (
            Driver::Healing {
                encoding: env.live_observation(),
            },
            env.live_graph(),
        )
    } else {
        let env =
            hale_envs::Scaling::new(&loaded.env_config).map_err(|e| anyhow::anyhow!("{e}"))?;
        (
            Driver::Scaling {
                encoding: env.live_observation(),
                actions: env.live_actions(),
            },
            env.live_graph(),
        )
    };
    let graph = reads_graphs.then_some(graph);
    let env_services = match &driver {
        Driver::Scaling { encoding, .. } => &encoding.services,
        Driver::Healing { encoding } => &encoding.services,
    };
    let namespace = cfg.target.namespace().to_string();
    let services = cfg.target.services().to_vec();
    if services.len() != env_services.len() {
        bail!(
            "target lists {} services, the policy's env has {} ({})",
            services.len(),
            env_services.len(),
            env_services.join(", ")
        );
    }
    let token = match (&cfg.server, cfg.mode) {
        (Some(server), Mode::Manual) => Some(server.token().map_err(anyhow::Error::msg)?),
        _ => None,
    };
    Ok(Prepared {
        source: PrometheusSource::new(observation).map_err(anyhow::Error::msg)?,
        guard: Guard::new(cfg.guardrails.clone()).map_err(anyhow::Error::msg)?,
        loaded,
        driver,
        graph,
        namespace,
        services,
        token,
    })
}

impl Adapter {
    /// Builds the adapter a config describes (policy, guardrails, observation,
    /// target, audit log, endpoint); refuses what it cannot run.
    pub fn new(cfg: &AdapterConfig) -> Result<Adapter> {
        Adapter::start(cfg, prepare(cfg)?)
    }

    /// Starts what [`prepare`] resolved: connects the target, opens the audit log,
    /// starts the endpoint and the terminal prompt.
    pub fn start(cfg: &AdapterConfig, prepared: Prepared) -> Result<Adapter> {
        let Prepared {
            loaded,
            driver,
            graph,
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
        let target =
            crate::target::connect(&cfg.target).map_err(|e| anyhow::anyhow!("target: {e}"))?;
        let server = match &cfg.server {
            Some(s) => Some(Server::start(&s.listen, shared.clone()).map_err(anyhow::Error::msg)?),
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
            }
        });
        let webhook = cfg.notify.webhook.clone().map(|url| {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .into();
            (url, agent)
        });
        Ok(Adapter {
            policy: loaded.policy,
            guard,
            target,
            source,
            driver,
            graph,
            namespace,
            services,
            audit: AuditLog::open(&cfg.audit_log)
                .with_context(|| format!("audit log {}", cfg.audit_log.display()))?,
            metrics,
            shared,
            server,
            manual,
            webhook,
        })
    }

    /// Replaces the target (tests and other targets than the config's).
    pub fn with_target(mut self, target: Box<dyn Target>) -> Adapter {
        self.target = target;
        self
    }

    /// The address of the HTTP endpoint, if the config has one.
    pub fn server_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// The adapter's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// One decision: `now_unix` for sample ages, `now_s` (monotonic seconds) for the
    /// guardrails' clocks. In manual mode this waits for the proposals' answers (or
    /// their expiry). Errors only when the audit log cannot be written.
    pub fn step(&mut self, now_unix: f64, now_s: f64) -> Result<Outcome> {
        let outcome = match self.plan(now_unix, now_s) {
            Err(hold) => hold,
            Ok(planned) => {
                let decisions = if let Some(mut manual) = self.manual.take() {
                    let asked = self.ask(&mut manual, planned, now_unix, now_s);
                    self.manual = Some(manual);
                    asked?
                } else {
                    planned
                        .into_iter()
                        .map(|p| {
                            let verdict = p.verdict.clone();
                            self.carry_out(p, verdict, None, now_s)
                        })
                        .collect()
                };
                Outcome::Decided { decisions }
            }
        };
        match &outcome {
            Outcome::Hold { reasons, .. } => {
                self.metrics.holds.inc();
                println!("hold: {}", reasons.join("; "));
                self.notify("hold", &outcome)?;
            }
            Outcome::Decided { decisions } => {
                self.metrics.decisions.inc();
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
                    self.notify("decision", d)?;
                }
                if decisions.is_empty() {
                    self.notify("decision", serde_json::json!({"changes": 0}))?;
                }
            }
        }
        Ok(outcome)
    }

    /// Appends to the audit log and posts to the webhook (whose failure is reported
    /// on stderr and does not stop the loop).
    fn notify(&mut self, event: &str, fields: impl Serialize) -> Result<()> {
        let value = serde_json::to_value(fields)?;
        self.audit.append(event, &value)?;
        if let Some((url, agent)) = &self.webhook {
            let mut body = serde_json::json!({ "event": event });
            if let (Some(b), serde_json::Value::Object(m)) = (body.as_object_mut(), value) {
                b.extend(m);
            }
            if let Err(e) = agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(body.to_string())
            {
                eprintln!("webhook {url}: {e}");
            }
        }
        Ok(())
    }

    /// Observes and lets the policy decide; a hold when anything is missing.
    fn plan(&mut self, now_unix: f64, now_s: f64) -> Result<Vec<Plan>, Outcome> {
        let hold = |reasons: Vec<String>| Outcome::Hold {
            reasons,
            missing: vec![],
        };
        let state = self.target.state().map_err(|e| hold(vec![e.to_string()]))?;
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
        if let Driver::Healing { .. } = self.driver {
            let input = self.live_input(&state, &replicas, now_unix)?;
            return self
                .decide_healing(&input, now_s)
                .map_err(|reason| hold(vec![reason]));
        }
        if let Some(encoding) = &self.graph {
            let input = self.live_input(&state, &replicas, now_unix)?;
            let graph = input.graph(encoding);
            return self
                .decide_scaling(Value::Graph(graph), &input.services, &replicas, now_s)
                .map_err(|reason| hold(vec![reason]));
        }
        let Driver::Scaling { encoding, .. } = &self.driver else {
            unreachable!("Healing-v0 returned above")
        };
        let obs = self
            .source
            .observe(encoding, &self.services, &replicas, now_unix);
        self.metrics.staleness.set(obs.oldest_sample_s);
        if !obs.missing.is_empty() {
            return Err(Outcome::Hold {
                reasons: summarise(&obs.missing),
                missing: obs.missing,
            });
        }
        self.decide(&obs, &replicas, now_s)
            .map_err(|reason| hold(vec![reason]))
    }

    /// The live input (Healing-v0, or a graph) from the target's state and
    /// Prometheus; a hold when anything is missing.
    fn live_input(
        &self,
        state: &TargetState,
        replicas: &[Option<Replicas>],
        now_unix: f64,
    ) -> Result<LiveInput, Outcome> {
        let obs = self.source.readings(&self.services, replicas, now_unix);
        let mut missing = obs.missing;
        let mut oldest = obs.oldest_sample_s;
        // Zones in name order; nodes without one share a zone.
        let mut zones: Vec<Option<&str>> = state.nodes.iter().map(|n| n.zone.as_deref()).collect();
        zones.sort_unstable();
        zones.dedup();
        let hosts: Vec<LiveHost> = state
            .nodes
            .iter()
            .map(|n| {
                if n.cpu_allocation.is_none() {
                    missing.push(Missing {
                        service: format!("node/{}", n.name),
                        feature: "cpu_allocation".into(),
                        reason: "the target does not report the node's cores".into(),
                    });
                }
                if self.graph.is_some() && n.memory_allocation.is_none() {
                    missing.push(Missing {
                        service: format!("node/{}", n.name),
                        feature: "memory_allocation".into(),
                        reason: "the target does not report the node's memory".into(),
                    });
                }
                LiveHost {
                    name: n.name.clone(),
                    zone: zones
                        .iter()
                        .position(|z| *z == n.zone.as_deref())
                        .unwrap_or(0),
                    reading: HostReading {
                        up: n.ready,
                        cordoned: !n.schedulable,
                        cpu_allocation: n.cpu_allocation.unwrap_or(0.0),
                    },
                    memory_allocation: n.memory_allocation.unwrap_or(0.0),
                }
            })
            .collect();
        let mut listed: Vec<(usize, &crate::target::ReplicaState)> = Vec::new();
        for (i, service) in self.services.iter().enumerate() {
            match state.replicas.get(&format!("{}/{service}", self.namespace)) {
                Some(list) => listed.extend(list.iter().map(|r| (i, r))),
                None => missing.push(Missing {
                    service: service.clone(),
                    feature: "replicas".into(),
                    reason: "the target did not list the service's replicas".into(),
                }),
            }
        }
        // Only a running replica can be asked about itself.
        let running: Vec<(String, String)> = listed
            .iter()
            .filter(|(_, r)| r.running())
            .map(|(i, r)| (self.services[*i].clone(), r.name.clone()))
            .collect();
        let (samples, replica_missing, replica_oldest) = self.source.replicas(&running, now_unix);
        missing.extend(replica_missing);
        oldest = oldest.max(replica_oldest);
        self.metrics.staleness.set(oldest);
        if !missing.is_empty() {
            return Err(Outcome::Hold {
                reasons: summarise(&missing),
                missing,
            });
        }
        let mut samples = samples.into_iter();
        let readings = listed
            .iter()
            .map(|(i, r)| {
                let (state, probe_failures) = r.live_state();
                let sample = if r.running() {
                    samples.next().unwrap_or_default()
                } else {
                    Default::default()
                };
                let host_up = r
                    .node
                    .as_ref()
                    .is_some_and(|n| hosts.iter().any(|h| &h.name == n && h.reading.up));
                LiveReplica {
                    name: r.name.clone(),
                    node: r.node.clone(),
                    reading: ReplicaReading {
                        service: *i,
                        state,
                        probe_failures,
                        restarts: r.restarts,
                        memory_fraction: sample.memory_fraction,
                        mean_latency_ms: sample.mean_latency_ms,
                        error_rate: sample.error_rate,
                        host_up,
                    },
                }
            })
            .collect();
        Ok(LiveInput {
            replicas: readings,
            hosts,
            zones: zones.len().max(1),
            services: obs.readings,
            counts: replicas.iter().map(|r| r.unwrap_or_default()).collect(),
            rollback_possible: self
                .services
                .iter()
                .map(|s| {
                    state
                        .rollback_possible
                        .get(&format!("{}/{s}", self.namespace))
                        .copied()
                        .unwrap_or(false)
                })
                .collect(),
        })
    }

    /// Healing-v0's decision, with no network in it: from the readings to at most one
    /// remedy with its guardrail verdict and explanation. Its time is the decision
    /// latency.
    pub fn decide_healing(&mut self, input: &LiveInput, now_s: f64) -> Result<Vec<Plan>, String> {
        let started = Instant::now();
        let Driver::Healing { encoding } = &self.driver else {
            return Err("the policy is not a Healing-v0 policy".into());
        };
        let replicas: Vec<ReplicaReading> = input.replicas.iter().map(|r| r.reading).collect();
        let hosts: Vec<HostReading> = input.hosts.iter().map(|h| h.reading).collect();
        let obs = match &self.graph {
            Some(g) => Value::Graph(input.graph(g)),
            None => Value::Box(encoding.encode(&replicas, &hosts, &input.services)),
        };
        let mask = encoding.mask(&replicas, &hosts, &input.rollback_possible);
        let (a, scores) = match self.policy.act_explained(&obs, Some(&mask)) {
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
                Some(HealingAction::Rollback(s)) => format!("roll back {}", self.services[s]),
                Some(HealingAction::Drain(h)) => format!("drain {}", input.hosts[h].name),
            }
        };
        let alternatives = scores
            .as_ref()
            .and_then(|s| s.first())
            .map(|head| crate::explain::discrete_alternatives(head, &mask, 5, name))
            .unwrap_or_default();
        let ns = self.namespace.clone();
        let seen = |s: usize| Seen {
            request_rate: input.services[s].request_rate,
            p95_ms: input.services[s].p95_ms,
            cpu_utilization: input.services[s].cpu_utilization,
            replicas: input.counts[s],
        };
        let (subject, service, proposed, features, effect) = match chosen {
            HealingAction::Noop => {
                self.metrics
                    .decision_latency
                    .observe(started.elapsed().as_secs_f64());
                return Ok(vec![]);
            }
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
                    self.services[s].clone(),
                    Some(s),
                    Action::Restart {
                        namespace: ns,
                        service: self.services[s].clone(),
                        replica: replica.clone(),
                    },
                    crate::explain::healing_features(r, &input.services[s], counts),
                    format!(
                        "replica {replica} ({}, {} restarts) gets {verb}; {} keeps {} of {} \
                         ready meanwhile",
                        state_name(r.state),
                        r.restarts,
                        self.services[s],
                        counts.ready.saturating_sub(u32::from(
                            r.state == hale_envs::live::ReplicaState::Ready
                        )),
                        counts.desired
                    ),
                )
            }
            HealingAction::Rollback(s) => (
                self.services[s].clone(),
                Some(s),
                Action::Rollback {
                    namespace: ns,
                    service: self.services[s].clone(),
                },
                crate::explain::scaling_features(&input.services[s], input.counts[s]),
                format!(
                    "{} goes back to its previous template (error rate now {:.1} %)",
                    self.services[s],
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
                    crate::explain::host_features(host, on_it),
                    format!(
                        "node {node} takes no new work and its replicas move to the {open} \
                         other schedulable node{}",
                        if open == 1 { "" } else { "s" }
                    ),
                )
            }
        };
        let current = service.map(|s| input.counts[s].desired);
        let verdict = self.guard.check(&proposed, current, now_s);
        let plan = Plan {
            service: subject,
            current,
            seen: service.map(seen),
            proposed,
            verdict,
            explanation: Explanation {
                policy: self.policy.name().to_string(),
                features,
                alternatives,
                expected_effect: effect,
            },
        };
        self.metrics
            .decision_latency
            .observe(started.elapsed().as_secs_f64());
        Ok(vec![plan])
    }

    /// Scaling-v0's part of a step with no network in it: from a whole observation
    /// and the replica counts to the policy's changes with their guardrail verdicts
    /// and explanations (nothing is carried out). Its time is the decision latency.
    pub fn decide(
        &mut self,
        obs: &Observation,
        replicas: &[Option<Replicas>],
        now_s: f64,
    ) -> Result<Vec<Plan>, String> {
        self.decide_scaling(
            Value::Box(obs.features.clone()),
            &obs.readings,
            replicas,
            now_s,
        )
    }

    /// Scaling-v0's decision from an observation (flat or graph) and the readings
    /// behind it.
    fn decide_scaling(
        &mut self,
        observation: Value,
        readings: &[ServiceReading],
        replicas: &[Option<Replicas>],
        now_s: f64,
    ) -> Result<Vec<Plan>, String> {
        let started = Instant::now();
        let Driver::Scaling { actions, .. } = &self.driver else {
            return Err("the policy is not a Scaling-v0 policy".into());
        };
        let actions = *actions;
        let (choice, scores) = match self.policy.act_explained(&observation, None) {
            Ok((Value::MultiDiscrete(a), scores)) if a.len() == self.services.len() => (a, scores),
            Ok((other, _)) => return Err(format!("the policy answered {other:?}")),
            Err(e) => return Err(format!("the policy cannot read the observation: {e}")),
        };
        let mut planned = Vec::new();
        for (i, service) in self.services.iter().enumerate() {
            let r = replicas[i].unwrap_or_default();
            let wanted = actions.replicas(choice[i], r.desired);
            if wanted == r.desired {
                continue;
            }
            let proposed = Action::Scale {
                namespace: self.namespace.clone(),
                service: service.clone(),
                replicas: wanted,
            };
            let verdict = self.guard.check(&proposed, Some(r.desired), now_s);
            let reading = &readings[i];
            let to = verdict.action().map_or(r.desired, |a| match a {
                Action::Scale { replicas, .. } => *replicas,
                _ => r.desired,
            });
            let explanation = Explanation {
                policy: self.policy.name().to_string(),
                features: crate::explain::scaling_features(reading, r),
                alternatives: scores
                    .as_ref()
                    .and_then(|s| s.get(i))
                    .map(|head| crate::explain::scaling_alternatives(head, &actions, r.desired))
                    .unwrap_or_default(),
                expected_effect: crate::explain::scaling_effect(
                    reading.cpu_utilization,
                    r.desired,
                    to,
                ),
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
        self.metrics
            .decision_latency
            .observe(started.elapsed().as_secs_f64());
        Ok(planned)
    }

    /// Checks `asked` against the guardrails again (an earlier action of this step, or
    /// the wait for a person, may have changed what they allow) and carries out what
    /// they let through.
    fn carry_out(
        &mut self,
        p: Plan,
        asked: Verdict,
        approval: Option<Approval>,
        now_s: f64,
    ) -> Decision {
        let verdict = match asked.action() {
            Some(a) => {
                let again = self.guard.check(a, p.current, now_s);
                match (&asked, again) {
                    // Keep the rules of the first check when the second changes nothing.
                    (_, Verdict::Allow { action }) if Some(&action) == asked.action() => asked,
                    (_, v) => v,
                }
            }
            None => asked,
        };
        let result = match verdict.action() {
            None => {
                if let Verdict::Blocked { rule } = &verdict {
                    self.metrics
                        .blocked
                        .get_or_create(&crate::metrics::RuleLabels {
                            rule: rule.name().to_string(),
                        })
                        .inc();
                }
                "blocked".to_string()
            }
            Some(a) => match self.target.apply(a) {
                Ok(()) => {
                    self.guard.record(a, p.current, now_s);
                    "applied".to_string()
                }
                Err(e) => format!("failed: {e}"),
            },
        };
        self.metrics.action(
            p.proposed.kind(),
            result.split(':').next().unwrap_or("failed"),
        );
        Decision {
            service: p.service,
            seen: p.seen,
            proposed: p.proposed,
            verdict,
            explanation: p.explanation,
            approval,
            result,
        }
    }

    /// Manual mode: proposes each allowed change, waits for answers until the
    /// proposals expire, and carries out what was accepted (or modified).
    fn ask(
        &mut self,
        manual: &mut Manual,
        planned: Vec<Plan>,
        now_unix: f64,
        now_s: f64,
    ) -> Result<Vec<Decision>> {
        let ttl = manual.ttl_s;
        // Answers left over from earlier steps name proposals that are gone.
        while let Ok(stale) = manual.replies.try_recv() {
            eprintln!("proposal {}: no longer pending, answer ignored", stale.id);
        }
        let mut decisions = Vec::new();
        let mut waiting: Vec<(Proposal, Plan)> = Vec::new();
        for p in planned {
            let Some(action) = p.verdict.action().cloned() else {
                let verdict = p.verdict.clone();
                decisions.push(self.carry_out(p, verdict, None, now_s));
                continue;
            };
            let proposal = Proposal {
                id: manual.next_id,
                action,
                verdict: p.verdict.clone(),
                explanation: p.explanation.clone(),
                created_unix: now_unix,
                expires_unix: now_unix + ttl,
            };
            manual.next_id += 1;
            println!(
                "proposal {}: {} ({}); answer `{0} accept`, `{0} decline` or `{0} modify REPLICAS` within {ttl} s",
                proposal.id,
                proposal.action,
                proposal.explanation.summary()
            );
            self.notify("proposal", &proposal)?;
            waiting.push((proposal, p));
        }
        self.publish(&waiting);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(ttl);
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(reply) = manual.replies.recv_timeout(left) else {
                break;
            };
            let Some(at) = waiting.iter().position(|(q, _)| q.id == reply.id) else {
                eprintln!("proposal {}: not pending, answer ignored", reply.id);
                continue;
            };
            let (proposal, p) = waiting.remove(at);
            self.publish(&waiting);
            let now_s = now_s + started.elapsed().as_secs_f64();
            let mut approval = Approval {
                proposal: proposal.id,
                decision: String::new(),
                by: Some(reply.by.clone()),
                replicas: None,
            };
            let decision = match reply.answer {
                Answer::Accept => {
                    approval.decision = "accepted".into();
                    self.carry_out(p, proposal.verdict, Some(approval), now_s)
                }
                Answer::Modify { replicas } => {
                    approval.decision = "modified".into();
                    approval.replicas = Some(replicas);
                    match &p.proposed {
                        Action::Scale {
                            namespace, service, ..
                        } => {
                            let modified = Action::Scale {
                                namespace: namespace.clone(),
                                service: service.clone(),
                                replicas,
                            };
                            let verdict = self.guard.check(&modified, p.current, now_s);
                            self.carry_out(p, verdict, Some(approval), now_s)
                        }
                        // A replica count means nothing to a restart, a drain or a
                        // roll back: nothing is done rather than guessing.
                        other => {
                            println!(
                                "proposal {}: modify applies to a scale, not to {other}; nothing done",
                                proposal.id
                            );
                            self.metrics.action(other.kind(), "declined");
                            self.closed(
                                p,
                                proposal.verdict,
                                approval,
                                "declined: modify applies to a scale only",
                            )
                        }
                    }
                }
                Answer::Decline => {
                    approval.decision = "declined".into();
                    self.metrics.action(p.proposed.kind(), "declined");
                    self.closed(p, proposal.verdict, approval, "declined")
                }
            };
            self.notify("approval", &decision)?;
            decisions.push(decision);
        }
        for (proposal, p) in std::mem::take(&mut waiting) {
            println!("proposal {}: expired, nothing done", proposal.id);
            self.metrics.action(p.proposed.kind(), "expired");
            let approval = Approval {
                proposal: proposal.id,
                decision: "expired".into(),
                by: None,
                replicas: None,
            };
            let decision = self.closed(p, proposal.verdict, approval, "expired");
            self.notify("approval", &decision)?;
            decisions.push(decision);
        }
        self.publish(&[]);
        Ok(decisions)
    }

    fn closed(&self, p: Plan, verdict: Verdict, approval: Approval, result: &str) -> Decision {
        Decision {
            service: p.service,
            seen: p.seen,
            proposed: p.proposed,
            verdict,
            explanation: p.explanation,
            approval: Some(approval),
            result: result.to_string(),
        }
    }

    /// Shows the endpoint what is pending now.
    fn publish(&self, waiting: &[(Proposal, Plan)]) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            *pending = waiting.iter().map(|(q, _)| q.clone()).collect();
        }
        self.metrics.pending.set(waiting.len() as i64);
    }
}

/// A replica state in words.
fn state_name(state: hale_envs::live::ReplicaState) -> &'static str {
    use hale_envs::live::ReplicaState as S;
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

/// What was done about a proposal, in words: the action the guardrails let through,
/// with what the policy asked for when they changed it.
fn describe(proposed: &Action, verdict: &Verdict) -> String {
    match verdict {
        Verdict::Allow { action } => action.to_string(),
        Verdict::Adjusted { action, rules } => format!(
            "{action} (asked: {proposed}; {})",
            rules
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Verdict::Blocked { rule } => format!("{proposed} (blocked: {rule})"),
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
