//! Manual mode: proposals a person accepts, declines or modifies, on the terminal or
//! through the HTTP endpoint ([`crate::server`]); a proposal nobody answers in time
//! expires and nothing is done.

pub mod manual;

use crate::action::Action;
use crate::ask::Agent;
use crate::explain::Explanation;
use crate::guard::Verdict;
use crate::metrics::Metrics;
use crate::observe::{ObservationConfig, Replicas};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// What the HTTP endpoint ([`crate::server`]) and the console ([`crate::console`])
/// share with the decision loop: the proposals waiting (every agent's), where answers
/// and requests go, the token that guards them, the agents' modes, what the target
/// said last, the metrics and the console's sessions.
pub struct Shared {
    /// The adapter's metrics.
    pub metrics: Arc<Metrics>,
    /// Proposals waiting for a decision, every agent's.
    pub pending: Mutex<Vec<Proposal>>,
    /// Where decisions go, per agent (its loop waits on the other end).
    pub replies: Mutex<Vec<(Agent, Sender<Reply>)>>,
    /// The bearer token of the proposal, request and console routes; `None` serves
    /// none of them.
    pub token: Option<String>,
    /// Where an operator's requests go (the loop handles them between steps).
    pub requests: Mutex<Sender<crate::operator::Asked>>,
    /// Requests sent and not yet taken by the loop: an agent waiting on its
    /// proposals stops waiting for them (they stay pending) so the request is not
    /// held behind them.
    pub requests_waiting: AtomicUsize,
    /// The audit log, which questions are answered from.
    pub audit_path: std::path::PathBuf,
    /// The agents, their modes and pauses, in the config's order.
    pub agents: Mutex<Vec<AgentView>>,
    /// The next proposal's number (unique across the agents of one adapter).
    pub next_proposal: AtomicU64,
    /// Each service's replicas (`NS/NAME`) as the target said at the last step, and
    /// when (Unix seconds).
    pub live: Mutex<(f64, BTreeMap<String, Replicas>)>,
    /// Where the console's health charts are read from (the first agent's
    /// observation).
    pub observation: Option<ObservationConfig>,
    /// The services (target names) the console shows.
    pub services: Vec<String>,
    /// The console's login links and sessions.
    pub sessions: crate::console::Sessions,
}

impl Shared {
    /// An empty board for an adapter whose first agent is `view`.
    pub fn new(
        metrics: Arc<Metrics>,
        token: Option<String>,
        requests: Sender<crate::operator::Asked>,
        audit_path: std::path::PathBuf,
        observation: Option<ObservationConfig>,
        services: Vec<String>,
    ) -> Shared {
        Shared {
            metrics,
            pending: Mutex::new(Vec::new()),
            replies: Mutex::new(Vec::new()),
            token,
            requests: Mutex::new(requests),
            requests_waiting: AtomicUsize::new(0),
            audit_path,
            agents: Mutex::new(Vec::new()),
            next_proposal: AtomicU64::new(1),
            live: Mutex::new((0.0, BTreeMap::new())),
            observation,
            services,
            sessions: crate::console::Sessions::default(),
        }
    }

    /// Adds an agent: its view and where its proposals' answers go.
    pub fn join(&self, view: AgentView, replies: Sender<Reply>) {
        if let Ok(mut r) = self.replies.lock() {
            r.push((view.agent, replies));
        }
        if let Ok(mut a) = self.agents.lock() {
            a.push(view);
        }
    }

    /// Changes what the console shows of `agent`.
    pub fn update_agent(&self, agent: Agent, f: impl FnOnce(&mut AgentView)) {
        if let Ok(mut a) = self.agents.lock()
            && let Some(v) = a.iter_mut().find(|v| v.agent == agent)
        {
            f(v);
        }
    }

    /// Sends a decision to the agent whose proposal it answers; `Err` says why not
    /// (no such pending proposal, or the adapter is stopping).
    pub fn answer(&self, reply: Reply) -> Result<(), String> {
        let agent = self
            .pending
            .lock()
            .ok()
            .and_then(|p| p.iter().find(|p| p.id == reply.id).map(|p| p.agent))
            .ok_or_else(|| format!("no pending proposal {} (decided or expired?)", reply.id))?;
        let replies = self.replies.lock().map_err(|_| "the adapter is stopping")?;
        replies
            .iter()
            .find(|(a, _)| *a == agent)
            .is_some_and(|(_, tx)| tx.send(reply).is_ok())
            .then_some(())
            .ok_or_else(|| "the adapter is stopping".to_string())
    }

    /// Shows the proposals of `agent` still waiting (the others' are kept).
    pub fn publish(&self, agent: Agent, waiting: impl Iterator<Item = Proposal>) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|p| p.agent != agent);
            pending.extend(waiting);
            self.metrics.pending.set(pending.len() as i64);
        }
    }
}

/// One agent as the console shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentView {
    /// The agent.
    pub agent: Agent,
    /// Whether it proposes (manual) or acts (auto).
    pub manual: bool,
    /// Who paused it, while it is paused.
    pub paused_by: Option<String>,
    /// Its policy, for people.
    pub policy: String,
    /// Its env.
    pub env: String,
}

/// An action waiting for a person.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Proposal {
    /// Its number (unique in this run).
    pub id: u64,
    /// The agent that proposes it.
    pub agent: Agent,
    /// What would be done (already through the guardrails).
    pub action: Action,
    /// What the policy asked for and what the guardrails made of it.
    pub verdict: Verdict,
    /// Why.
    pub explanation: Explanation,
    /// Unix seconds when it was made.
    pub created_unix: f64,
    /// Unix seconds after which it expires.
    pub expires_unix: f64,
}

/// A person's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Answer {
    /// Do it.
    Accept,
    /// Do nothing.
    Decline,
    /// Scale to this many replicas instead (guardrails apply again).
    Modify {
        /// Desired replicas.
        replicas: u32,
    },
}

/// A decision about one proposal, and who gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The proposal.
    pub id: u64,
    /// The decision.
    pub answer: Answer,
    /// Who decided (`terminal`, `http`, or the name given).
    pub by: String,
}

/// Parses a terminal answer: `ID accept`, `ID decline`, `ID modify N` (or `a`, `d`,
/// `m N`).
pub fn parse_line(line: &str) -> Result<Reply, AnswerError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let usage = || AnswerError::Usage(line.to_string());
    let id: u64 = words
        .first()
        .and_then(|w| w.parse().ok())
        .ok_or_else(usage)?;
    let answer = match (words.get(1).copied(), words.get(2)) {
        (Some("a" | "accept"), None) => Answer::Accept,
        (Some("d" | "decline"), None) => Answer::Decline,
        (Some("m" | "modify"), Some(n)) => Answer::Modify {
            replicas: n
                .parse()
                .map_err(|_| AnswerError::Replicas(n.to_string()))?,
        },
        _ => return Err(usage()),
    };
    Ok(Reply {
        id,
        answer,
        by: "terminal".into(),
    })
}

/// A terminal answer that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not `ID accept`, `ID decline` or `ID modify N` (the line).
    #[error("{0:?}: answer `ID accept`, `ID decline` or `ID modify REPLICAS` (a, d, m for short)")]
    Usage(String),
    /// The replica count of a modify (the word).
    #[error("{0:?} is not a replica count")]
    Replicas(String),
}

/// Reads answers from standard input on a thread of its own and sends them to the
/// loop; a line that does not parse is explained on stderr and skipped.
pub fn read_terminal(replies: Sender<Reply>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if line.trim().is_empty() {
                continue;
            }
            match parse_line(&line) {
                Ok(reply) => {
                    if replies.send(reply).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("{e}"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_answers_parse_or_say_how() {
        assert_eq!(parse_line("3 a").unwrap().answer, Answer::Accept);
        assert_eq!(parse_line(" 3 decline ").unwrap().answer, Answer::Decline);
        assert_eq!(
            parse_line("12 modify 4").unwrap(),
            Reply {
                id: 12,
                answer: Answer::Modify { replicas: 4 },
                by: "terminal".into()
            }
        );
        let said = |line: &str| parse_line(line).unwrap_err().to_string();
        assert!(said("accept").contains("ID accept"));
        assert!(said("3 m").contains("ID modify REPLICAS"));
        assert!(said("3 m -1").contains("not a replica count"));
    }
}
