//! Manual mode: proposals a person accepts, declines or modifies, on the terminal or
//! through the HTTP endpoint ([`crate::server`]); a proposal nobody answers in time
//! expires and nothing is done.

pub mod manual;

use crate::action::Action;
use crate::explain::Explanation;
use crate::guard::Verdict;
use crate::metrics::Metrics;
use serde::Serialize;
use std::io::BufRead;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// What the HTTP endpoint ([`crate::server`]) shares with manual mode's loop: the
/// proposals waiting, where answers go, the token that guards them, and the metrics.
pub struct Shared {
    /// The adapter's metrics.
    pub metrics: Arc<Metrics>,
    /// Proposals waiting for a decision.
    pub pending: Mutex<Vec<Proposal>>,
    /// Where decisions go (the loop waits on the other end).
    pub replies: Mutex<Sender<Reply>>,
    /// The bearer token of the proposal and request routes; `None` serves neither.
    pub token: Option<String>,
    /// Where an operator's requests go (the loop handles them between steps).
    pub requests: Mutex<Sender<crate::operator::Asked>>,
    /// The audit log, which questions are answered from.
    pub audit_path: std::path::PathBuf,
    /// Whether the loop proposes (manual mode) rather than acts; an operator's
    /// request can switch it.
    pub manual: std::sync::atomic::AtomicBool,
}

/// An action waiting for a person.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Proposal {
    /// Its number (unique in this run).
    pub id: u64,
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
