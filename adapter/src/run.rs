//! The decision loop: read the target's state, let the env's decision ([`crate::decide`])
//! observe and decide, pass each change through the guardrails, and then either carry
//! it out (auto mode) or propose it and wait for a person (manual mode,
//! [`crate::approval::manual`]). Every step goes to stdout, the audit log and the
//! optional webhook, with its explanation ([`crate::report`]). Missing or stale data,
//! or a target that does not answer, means no action this step (a `hold` event says
//! why); the next step tries again.

use crate::action::Action;
use crate::actuate::Actuator;
use crate::approval::Shared;
use crate::approval::manual::Manual;
use crate::ask::{Agent, Request};
use crate::audit::AuditLog;
use crate::config::{AdapterConfig, EnvKind, Mode, TargetConfig};
use crate::decide::{Context as DecisionContext, Decide, Input};
use crate::error::{AdapterError, PolicyLoadError};
use crate::field::FieldError;
use crate::guard::Guard;
use crate::live::Sources;
use crate::metrics::Metrics;
use crate::observe::{PrometheusSource, Replicas};
use crate::operator::{Asked, Reply as RequestReply};
use crate::report::{Outcome, Plan, describe};
use crate::server::Server;
use crate::target::{Target, TargetState};
use hale_policies::Policy;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
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
    /// The agent this adapter runs (from its env).
    agent: Agent,
    /// Who paused the agent, while it is paused.
    paused: Option<String>,
    /// An operator's requests, from the endpoint.
    requests: Receiver<Asked>,
    /// Manual mode's answers while the adapter runs in auto mode (kept for a switch).
    idle_replies: Option<Receiver<crate::approval::Reply>>,
    /// Seconds a proposal waits (for a switch to manual mode).
    ttl_s: f64,
    /// What the endpoint shares with the loop.
    shared: Arc<Shared>,
    /// Operator actions carried out, not yet taken by a coordinator.
    operator_done: Vec<crate::report::Decision>,
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
    // Manual mode needs the token; in auto mode it opens the request route when set.
    let token = match (&cfg.server, cfg.mode) {
        (Some(server), Mode::Manual) => Some(server.token()?),
        (Some(server), Mode::Auto) => server.token().ok(),
        (None, _) => None,
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
        Adapter::start_with(cfg, prepared, None)
    }

    /// [`Adapter::start`], or, with `joined`, an agent that joins another's adapter:
    /// it shares that one's metrics, endpoint, console and operator requests (the
    /// first agent's loop takes those and hands them on), and shows its proposals
    /// and mode beside the others'.
    pub fn start_with(
        cfg: &AdapterConfig,
        prepared: Prepared,
        joined: Option<Arc<Shared>>,
    ) -> Result<Adapter, AdapterError> {
        let Prepared {
            loaded,
            decision,
            namespace,
            services,
            token,
            source,
            guard,
        } = prepared;
        let agent = match cfg.env {
            EnvKind::Scaling => Agent::Scaling,
            EnvKind::Healing => Agent::Healing,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // A joining agent's own request channel stays empty: the first one's loop
        // takes the requests and routes them.
        let (ask_tx, ask_rx) = std::sync::mpsc::channel();
        let first = joined.is_none();
        let shared = joined.unwrap_or_else(|| {
            Arc::new(Shared::new(
                Arc::new(Metrics::new()),
                token,
                ask_tx,
                cfg.audit_log.clone(),
                cfg.observation.clone(),
                services.clone(),
            ))
        });
        shared.join(
            crate::approval::AgentView {
                agent,
                manual: cfg.mode == Mode::Manual,
                paused_by: None,
                policy: loaded.description.clone(),
                env: cfg.env.to_string(),
            },
            tx.clone(),
        );
        let metrics = shared.metrics.clone();
        let target = connect(&cfg.target)?;
        let server = match (&cfg.server, first) {
            (Some(s), true) => Some(Server::start(&s.listen, shared.clone())?),
            _ => None,
        };
        if cfg.manual.prompt && cfg.mode == Mode::Manual {
            crate::approval::read_terminal(tx.clone());
        }
        let (manual, idle_replies) = if cfg.mode == Mode::Manual {
            (
                Some(Manual {
                    replies: rx,
                    ttl_s: cfg.manual.ttl_s,
                    agent,
                    shared: shared.clone(),
                    carried: Vec::new(),
                }),
                None,
            )
        } else {
            (None, Some(rx))
        };
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
                agent,
            },
            server,
            manual,
            agent,
            paused: None,
            requests: ask_rx,
            idle_replies,
            ttl_s: cfg.manual.ttl_s,
            shared,
            operator_done: Vec::new(),
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

    /// What it shares with the endpoint and the console.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The agent it runs.
    pub fn agent(&self) -> Agent {
        self.agent
    }

    /// The next operator request from the endpoint, waiting at most `timeout`.
    pub fn next_request(
        &self,
        timeout: Duration,
    ) -> Result<Asked, std::sync::mpsc::RecvTimeoutError> {
        let asked = self.requests.recv_timeout(timeout)?;
        self.shared
            .requests_waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        Ok(asked)
    }

    /// The operator actions carried out since the last call (the coordinator holds
    /// their services against the agents).
    pub fn take_operator_actions(&mut self) -> Vec<crate::report::Decision> {
        std::mem::take(&mut self.operator_done)
    }

    /// The services (`NS/NAME`) with a replica on `node`, as the target says now
    /// (empty when it does not answer).
    pub fn services_on(&mut self, node: &str) -> Vec<String> {
        self.act.target.state().map_or_else(
            |_| vec![],
            |state| {
                state
                    .replicas
                    .iter()
                    .filter(|(_, rs)| rs.iter().any(|r| r.node.as_deref() == Some(node)))
                    .map(|(k, _)| k.clone())
                    .collect()
            },
        )
    }

    /// The namespace of its services.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Appends an event to the audit log (and the webhook).
    pub fn notify(
        &mut self,
        event: &str,
        fields: impl serde::Serialize,
    ) -> Result<(), AdapterError> {
        self.act.notify(event, fields)
    }

    /// One decision: `now_unix` for sample ages, `now_s` (monotonic seconds) for the
    /// guardrails' clocks. In manual mode this waits for the proposals' answers (or
    /// their expiry). Errors only when the audit log cannot be written.
    pub fn step(&mut self, now_unix: f64, now_s: f64) -> Result<Outcome, AdapterError> {
        // An operator's requests come before the agent's own actions.
        while let Ok(asked) = self.next_request(Duration::ZERO) {
            self.handle(asked, now_unix, now_s)?;
        }
        let planned = self.plan_step(now_unix, now_s);
        self.finish_step(planned, now_unix, now_s)
    }

    /// The first half of a step: what the agent plans (through its guardrails), or
    /// why it holds (paused, missing data, a target that did not answer).
    pub fn plan_step(&mut self, now_unix: f64, now_s: f64) -> Result<Vec<Plan>, Outcome> {
        match &self.paused {
            Some(by) => Err(Outcome::hold(format!(
                "{} is paused (by {by}); `resume {}` lets it act",
                self.agent.word(),
                self.agent.word()
            ))),
            None => self.plan(now_unix, now_s),
        }
    }

    /// The second half: carries out `planned` (auto) or proposes it (manual), and
    /// reports the step (stdout, metrics, audit log, webhook).
    pub fn finish_step(
        &mut self,
        planned: Result<Vec<Plan>, Outcome>,
        now_unix: f64,
        now_s: f64,
    ) -> Result<Outcome, AdapterError> {
        let outcome = match planned {
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

    /// Waits `seconds` for the next step, handling an operator's requests as they
    /// come (so a request is carried out within moments, not at the next step).
    /// `start` is the loop's clock (the guardrails' `now_s`).
    pub fn wait(&mut self, seconds: f64, start: Instant) -> Result<(), AdapterError> {
        wait_serving(self, seconds, start)
    }

    /// Carries out one operator request and sends the answer back. Errors only when
    /// the audit log cannot be written.
    pub fn handle(&mut self, asked: Asked, now_unix: f64, now_s: f64) -> Result<(), AdapterError> {
        let Asked { request, by, reply } = asked;
        let answer = self.carry_request(&request, &by, now_unix, now_s)?;
        if let Err(refused) = &answer {
            self.act.notify(
                "request",
                serde_json::json!({"by": by, "text": request.to_string(), "refused": refused}),
            )?;
        }
        println!(
            "request from {by}: {request} → {}",
            match &answer {
                Ok(r) => r.answer.clone(),
                Err(e) => format!("refused: {e}"),
            }
        );
        // The asker may have given up waiting: the audit log has the answer.
        let _ = reply.send(answer);
        Ok(())
    }

    fn carry_request(
        &mut self,
        request: &Request,
        by: &str,
        now_unix: f64,
        now_s: f64,
    ) -> Result<Result<RequestReply, String>, AdapterError> {
        if let Some(answer) = crate::operator::answer(request, self.act.audit.path(), now_unix) {
            return Ok(Ok(RequestReply {
                result: "answered".into(),
                answer,
            }));
        }
        let here = self.agent;
        let not_here = |agent: Agent, what: &str| {
            format!(
                "{what} is the {} agent's, and this adapter runs the {} agent only",
                agent.word(),
                here.word()
            )
        };
        let (result, answer) = match request {
            Request::Pause { agent }
            | Request::Resume { agent }
            | Request::SetMode { agent, .. }
                if *agent != here =>
            {
                return Ok(Err(not_here(*agent, &request.to_string())));
            }
            Request::Pause { .. } => {
                self.paused = Some(by.to_string());
                self.shared
                    .update_agent(here, |v| v.paused_by = Some(by.to_string()));
                (
                    "paused",
                    format!(
                        "{} is paused: it keeps watching and does nothing until `resume {}`",
                        here.word(),
                        here.word()
                    ),
                )
            }
            Request::Resume { .. } => match self.paused.take().inspect(|_| {
                self.shared.update_agent(here, |v| v.paused_by = None);
            }) {
                Some(who) => (
                    "resumed",
                    format!("{} acts again (paused by {who})", here.word()),
                ),
                None => ("resumed", format!("{} was not paused", here.word())),
            },
            Request::SetMode { mode, .. } => {
                let answer = self.set_mode(*mode)?;
                ("switched", answer)
            }
            action => {
                let owner = crate::operator::owner(action).unwrap_or(here);
                if owner != here {
                    return Ok(Err(not_here(owner, &action.to_string())));
                }
                let state = match self.act.target.state() {
                    Ok(state) => state,
                    Err(e) => return Ok(Err(format!("the target did not answer: {e}"))),
                };
                self.act.guard.observe(&state.replicas);
                let (service, proposed, current) = match self.operator_action(action, &state) {
                    Ok(found) => found,
                    Err(e) => return Ok(Err(e)),
                };
                let verdict = self.act.guard.check(&proposed, current, now_s);
                let plan = Plan {
                    service,
                    current,
                    seen: None,
                    proposed,
                    verdict: verdict.clone(),
                    explanation: crate::explain::Explanation {
                        policy: format!("operator {by}"),
                        features: vec![],
                        alternatives: vec![],
                        expected_effect: format!("as {by} asked: {action}"),
                    },
                };
                let decision = self.act.carry_out(plan, verdict, None, now_s);
                let answer = format!(
                    "{} → {}",
                    describe(&decision.proposed, &decision.verdict),
                    decision.result
                );
                let result = decision.result.to_string();
                if decision.result == crate::report::Resolution::Applied {
                    self.operator_done.push(decision.clone());
                }
                self.act.notify(
                    "request",
                    serde_json::json!({"by": by, "text": action.to_string(), "decision": decision}),
                )?;
                return Ok(Ok(RequestReply { result, answer }));
            }
        };
        self.act.notify(
            "request",
            serde_json::json!({"by": by, "text": request.to_string(), "result": result}),
        )?;
        Ok(Ok(RequestReply {
            result: result.into(),
            answer,
        }))
    }

    /// The action an operator's request names, on this target: the service (or
    /// node) it is about, the action, and the service's desired replicas; or why there
    /// is none (an unknown service, replica or node, named with the known ones).
    fn operator_action(
        &self,
        request: &Request,
        state: &TargetState,
    ) -> Result<(String, Action, Option<u32>), String> {
        let ns = self.namespace.clone();
        let desired = |service: &str| {
            state
                .services
                .get(&format!("{ns}/{service}"))
                .map(|r| r.desired)
        };
        let known_service = |service: &str| {
            if self.services.iter().any(|s| s == service) {
                Ok(())
            } else {
                Err(format!(
                    "no service {service:?} here (this adapter runs {})",
                    self.services.join(", ")
                ))
            }
        };
        let known_node = |node: &str| {
            if state.nodes.is_empty() || state.nodes.iter().any(|n| n.name == node) {
                Ok(())
            } else {
                let names: Vec<&str> = state.nodes.iter().map(|n| n.name.as_str()).collect();
                Err(format!("no node {node:?} (nodes: {})", names.join(", ")))
            }
        };
        Ok(match request {
            Request::Scale { service, replicas } => {
                known_service(service)?;
                let action = Action::Scale {
                    namespace: ns.clone(),
                    service: service.clone(),
                    replicas: *replicas,
                };
                (service.clone(), action, desired(service))
            }
            Request::Rollback { service } => {
                known_service(service)?;
                let action = Action::Rollback {
                    namespace: ns.clone(),
                    service: service.clone(),
                };
                (service.clone(), action, desired(service))
            }
            Request::Restart { replica } => {
                let owner = state.replicas.iter().find_map(|(key, rs)| {
                    rs.iter()
                        .any(|r| &r.name == replica)
                        .then(|| key.rsplit('/').next().unwrap_or(key).to_string())
                });
                let service = owner
                    .filter(|s| self.services.contains(s))
                    .ok_or_else(|| {
                        format!(
                            "no replica {replica:?} among {}'s (a pod or task name, as `what is wrong with SERVICE?` lists them)",
                            self.services.join(", ")
                        )
                    })?;
                let action = Action::Restart {
                    namespace: ns.clone(),
                    service: service.clone(),
                    replica: replica.clone(),
                };
                let current = desired(&service);
                (service, action, current)
            }
            Request::Drain { node } => {
                known_node(node)?;
                (node.clone(), Action::Drain { node: node.clone() }, None)
            }
            Request::Cordon { node } => {
                known_node(node)?;
                (node.clone(), Action::Cordon { node: node.clone() }, None)
            }
            other => return Err(format!("{other} is not an action")),
        })
    }

    /// Switches between auto and manual mode (manual needs the endpoint's token, which
    /// the asker holds, so it is there).
    fn set_mode(&mut self, mode: crate::ask::Mode) -> Result<String, AdapterError> {
        Ok(match (mode, self.manual.take()) {
            (crate::ask::Mode::Manual, Some(m)) => {
                self.manual = Some(m);
                format!("{} is in manual mode already", self.agent.word())
            }
            (crate::ask::Mode::Manual, None) => match self.idle_replies.take() {
                Some(replies) => {
                    self.manual = Some(Manual {
                        replies,
                        ttl_s: self.ttl_s,
                        agent: self.agent,
                        shared: self.shared.clone(),
                        carried: Vec::new(),
                    });
                    self.shared.update_agent(self.agent, |v| v.manual = true);
                    format!(
                        "{} proposes from now on: answer on the endpoint's /proposals",
                        self.agent.word()
                    )
                }
                None => format!("{} cannot switch to manual mode", self.agent.word()),
            },
            (crate::ask::Mode::Auto, Some(m)) => {
                let open = m.carried.len();
                self.idle_replies = Some(m.withdraw(&mut self.act)?);
                self.shared.update_agent(self.agent, |v| v.manual = false);
                let withdrawn = if open > 0 {
                    format!(" ({open} open proposals withdrawn)")
                } else {
                    String::new()
                };
                format!(
                    "{} acts on its own from now on{withdrawn}",
                    self.agent.word()
                )
            }
            (crate::ask::Mode::Auto, None) => {
                format!("{} is in auto mode already", self.agent.word())
            }
        })
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
        if let Ok(mut live) = self.shared.live.lock() {
            live.0 = now_unix;
            live.1
                .extend(state.services.iter().map(|(k, r)| (k.clone(), *r)));
        }
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

/// A decision loop an operator can talk to: one agent ([`Adapter`]) or several
/// ([`crate::team::Team`]).
pub trait Operated {
    /// One cycle at `now_unix` (sample ages) and `now_s` (the loop's clock).
    fn cycle(&mut self, now_unix: f64, now_s: f64) -> Result<(), AdapterError>;
    /// The next operator request, waiting at most `timeout`.
    fn next_request(&self, timeout: Duration) -> Result<Asked, std::sync::mpsc::RecvTimeoutError>;
    /// Carries out (or answers) one request.
    fn handle(&mut self, asked: Asked, now_unix: f64, now_s: f64) -> Result<(), AdapterError>;
}

impl Operated for Adapter {
    fn cycle(&mut self, now_unix: f64, now_s: f64) -> Result<(), AdapterError> {
        self.step(now_unix, now_s).map(drop)
    }
    fn next_request(&self, timeout: Duration) -> Result<Asked, std::sync::mpsc::RecvTimeoutError> {
        Adapter::next_request(self, timeout)
    }
    fn handle(&mut self, asked: Asked, now_unix: f64, now_s: f64) -> Result<(), AdapterError> {
        Adapter::handle(self, asked, now_unix, now_s)
    }
}

/// Seconds since the Unix epoch now (sample ages and audit times are wall-clock).
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Waits `seconds`, handling an operator's requests as they come; `start` is the
/// loop's clock.
pub fn wait_serving<T: Operated + ?Sized>(
    loop_: &mut T,
    seconds: f64,
    start: Instant,
) -> Result<(), AdapterError> {
    let until = Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        match loop_.next_request(left) {
            Ok(asked) => loop_.handle(asked, unix_now(), start.elapsed().as_secs_f64())?,
            // Nothing asked, or the endpoint is gone: sleep out the interval.
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Ok(()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left);
                return Ok(());
            }
        }
    }
}

/// Runs `loop_` every `interval_s` (serving requests in between) until `steps`
/// cycles are done, or for ever.
pub fn run_loop<T: Operated + ?Sized>(
    loop_: &mut T,
    interval_s: f64,
    steps: Option<u64>,
) -> Result<(), AdapterError> {
    let start = Instant::now();
    let mut n = 0;
    loop {
        loop_.cycle(unix_now(), start.elapsed().as_secs_f64())?;
        n += 1;
        if steps.is_some_and(|s| n >= s) {
            return Ok(());
        }
        wait_serving(loop_, interval_s, start)?;
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
            let timeout = std::time::Duration::from_secs_f64(*timeout_s);
            // In a pod with no kubeconfig named: the pod's service account.
            let in_pod = kubeconfig.is_none()
                && std::env::var_os("KUBECONFIG").is_none()
                && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
            if in_pod {
                return Ok(Box::new(crate::kubernetes::Kubernetes::in_cluster(
                    namespace,
                    deployments,
                    timeout,
                )?));
            }
            let path = kubeconfig
                .clone()
                .unwrap_or_else(crate::config::default_kubeconfig);
            Ok(Box::new(crate::kubernetes::Kubernetes::connect(
                &path,
                context.as_deref(),
                namespace,
                deployments,
                timeout,
            )?))
        }
    }
}
