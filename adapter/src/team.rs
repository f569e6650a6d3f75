//! Several agents in one adapter: one [`Adapter`] per agent (the config's own and one
//! per `[[also]]`), sharing the target's cluster, the metrics, the endpoint (the
//! first agent's) and the audit log, with a [`Coordinator`] between their plans and
//! the cluster.
//!
//! A cycle: an operator's requests first (each handed to the agent that owns it; the
//! services they act on are then held against the agents, as the coordinator's rules
//! say), then every agent plans through its own guardrails, the coordinator orders the
//! plans and drops those that would fight (each drop counted in
//! `hale_adapter_conflicts_prevented_total{rule}` and audited as a `prevented` event
//! naming the rule and what it would have fought), and each agent carries out (auto)
//! or proposes (manual) what is left.

use crate::ask::{Agent, Request};
use crate::config::AdapterConfig;
use crate::coordinate::{Coordinator, Planned, Source};
use crate::error::AdapterError;
use crate::metrics::{Metrics, RuleLabels};
use crate::operator::Asked;
use crate::report::{Outcome, Plan};
use crate::run::Adapter;
use crate::target::Target;
use std::time::{Duration, Instant};

/// The agents of one adapter and their coordinator.
pub struct Team {
    members: Vec<Adapter>,
    coordinator: Coordinator,
}

impl Team {
    /// Builds every agent the config lists (each checked as `run` checks one).
    pub fn new(cfg: &AdapterConfig) -> Result<Team, AdapterError> {
        let mut members: Vec<Adapter> = Vec::new();
        for member in cfg.members() {
            let prepared = crate::run::prepare(&member)?;
            let joined = members.first().map(Adapter::shared);
            members.push(Adapter::start_with(&member, prepared, joined)?);
        }
        Ok(Team {
            members,
            coordinator: Coordinator::new(cfg.coordination_window_s),
        })
    }

    /// Replaces every agent's target (tests; each agent gets its own client of the
    /// same cluster, as `new` connects them).
    pub fn with_target<T: Target + Clone + 'static>(mut self, target: T) -> Team {
        self.members = self
            .members
            .into_iter()
            .map(|m| m.with_target(Box::new(target.clone())))
            .collect();
        self
    }

    /// The first agent's (the endpoint's) address.
    pub fn server_addr(&self) -> Option<std::net::SocketAddr> {
        self.members[0].server_addr()
    }

    /// The shared metrics.
    pub fn metrics(&self) -> &Metrics {
        self.members[0].metrics()
    }

    /// The agents, in the config's order.
    pub fn agents(&self) -> Vec<Agent> {
        self.members.iter().map(Adapter::agent).collect()
    }

    /// One cycle; each agent's outcome, in the config's order.
    pub fn step(&mut self, now_unix: f64, now_s: f64) -> Result<Vec<Outcome>, AdapterError> {
        while let Ok(asked) = self.members[0].next_request(Duration::ZERO) {
            self.route(asked, now_unix, now_s)?;
        }
        let planned: Vec<Result<Vec<Plan>, Outcome>> = self
            .members
            .iter_mut()
            .map(|m| m.plan_step(now_unix, now_s))
            .collect();
        // Plans the guardrails let through go to the coordinator (`id` = agent ×
        // place); blocked ones stay with their agent, to be reported as blocked.
        const PER_AGENT: usize = 1 << 16;
        let mut kept: Vec<Vec<usize>> = vec![Vec::new(); self.members.len()];
        let mut asked = Vec::new();
        for (i, plans) in planned.iter().enumerate() {
            let Ok(plans) = plans else { continue };
            for (k, p) in plans.iter().enumerate() {
                match p.verdict.action() {
                    None => kept[i].push(k),
                    Some(action) => asked.push(Planned {
                        id: i * PER_AGENT + k,
                        source: Source::Agent(self.members[i].agent()),
                        action: action.clone(),
                        current: p.current,
                        touches: self.touches(i, action),
                    }),
                }
            }
        }
        let (keep, dropped) = self.coordinator.arbitrate(asked, now_s);
        for d in &dropped {
            self.metrics()
                .prevented
                .get_or_create(&RuleLabels {
                    rule: d.rule.to_string(),
                })
                .inc();
            println!(
                "prevented ({}): {:?} {} — {}",
                d.rule, d.source, d.action, d.because
            );
            self.members[0].notify("prevented", d)?;
        }
        for p in &keep {
            kept[p.id / PER_AGENT].push(p.id % PER_AGENT);
        }
        let mut outcomes = Vec::new();
        for (i, plans) in planned.into_iter().enumerate() {
            let plans = plans.map(|plans| {
                let mut slots: Vec<Option<Plan>> = plans.into_iter().map(Some).collect();
                kept[i]
                    .iter()
                    .filter_map(|&k| slots.get_mut(k).and_then(Option::take))
                    .collect::<Vec<_>>()
            });
            let outcome = self.members[i].finish_step(plans, now_unix, now_s)?;
            if let Outcome::Decided { decisions } = &outcome {
                for d in decisions
                    .iter()
                    .filter(|d| d.result == crate::report::Resolution::Applied)
                {
                    if let Some(action) = d.verdict.action() {
                        // The plan as arbitrated (its touches read once); a person's
                        // modified scale has the same service.
                        let p = match keep
                            .iter()
                            .find(|p| p.id / PER_AGENT == i && &p.action == action)
                        {
                            Some(p) => p.clone(),
                            None => Planned {
                                id: 0,
                                source: Source::Agent(self.members[i].agent()),
                                action: action.clone(),
                                current: d.seen.as_ref().map(|s| s.replicas.desired),
                                touches: self.touches(i, action),
                            },
                        };
                        self.coordinator.done(&p, now_s);
                    }
                }
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Waits `seconds`, handling an operator's requests as they come.
    pub fn wait(&mut self, seconds: f64, start: Instant) -> Result<(), AdapterError> {
        crate::run::wait_serving(self, seconds, start)
    }

    /// Hands a request to the agent that owns it (questions to the first), and holds
    /// what an operator's action touched against the agents.
    fn route(&mut self, asked: Asked, now_unix: f64, now_s: f64) -> Result<(), AdapterError> {
        let wanted = match &asked.request {
            Request::Pause { agent }
            | Request::Resume { agent }
            | Request::SetMode { agent, .. } => Some(*agent),
            other => crate::operator::owner(other),
        };
        let i = wanted
            .and_then(|a| self.members.iter().position(|m| m.agent() == a))
            .unwrap_or(0);
        self.members[i].handle(asked, now_unix, now_s)?;
        for d in self.members[i].take_operator_actions() {
            if let Some(action) = d.verdict.action() {
                let p = Planned {
                    id: 0,
                    source: Source::Operator,
                    action: action.clone(),
                    current: None,
                    touches: self.touches(i, action),
                };
                self.coordinator.done(&p, now_s);
            }
        }
        Ok(())
    }

    /// The services (`NS/NAME`) an action of agent `i` touches: its own, or those with
    /// a replica on a node it cordons or drains.
    fn touches(&mut self, i: usize, action: &crate::action::Action) -> Vec<String> {
        match action {
            crate::action::Action::Cordon { node } | crate::action::Action::Drain { node } => {
                self.members[i].services_on(node)
            }
            a => a
                .service()
                .map(|(ns, s)| vec![format!("{ns}/{s}")])
                .unwrap_or_default(),
        }
    }
}

impl crate::run::Operated for Team {
    fn cycle(&mut self, now_unix: f64, now_s: f64) -> Result<(), AdapterError> {
        self.step(now_unix, now_s).map(drop)
    }
    fn next_request(&self, timeout: Duration) -> Result<Asked, std::sync::mpsc::RecvTimeoutError> {
        self.members[0].next_request(timeout)
    }
    fn handle(&mut self, asked: Asked, now_unix: f64, now_s: f64) -> Result<(), AdapterError> {
        self.route(asked, now_unix, now_s)
    }
}
