//! What a step reports: the outcome of each step, each change the policy asked for
//! and what became of it. These go to stdout, the audit log, the webhook and the
//! metrics; they serialise to the audit log's JSON.

use crate::action::Action;
use crate::explain::Explanation;
use crate::guard::Verdict;
use crate::observe::{Missing, Replicas};
use serde::{Serialize, Serializer};

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

impl Seen {
    /// What a service's reading and replica counts show.
    pub fn of(reading: &hale_envs::encoding::ServiceReading, replicas: Replicas) -> Seen {
        Seen {
            request_rate: reading.request_rate,
            p95_ms: reading.p95_ms,
            cpu_utilization: reading.cpu_utilization,
            replicas,
        }
    }
}

/// A person's decision about a proposal, or its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Do it as proposed.
    Accepted,
    /// Do nothing.
    Declined,
    /// Do it with another replica count.
    Modified,
    /// Nobody answered in time: nothing is done.
    Expired,
}

/// What became of a proposal in manual mode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Approval {
    /// The proposal's number.
    pub proposal: u64,
    /// What was decided.
    pub decision: ApprovalDecision,
    /// Who decided (absent when it expired).
    pub by: Option<String>,
    /// The replicas a person asked for instead (`modified`).
    pub replicas: Option<u32>,
}

/// What became of a change. In the audit log: `applied`, `blocked`, `declined`,
/// `declined: …`, `expired` or `failed: …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The target carried it out.
    Applied,
    /// The guardrails refused it.
    Blocked,
    /// A person declined it, or asked for what cannot be done (the reason).
    Declined(Option<String>),
    /// Nobody answered the proposal in time.
    Expired,
    /// The target refused or failed (its error).
    Failed(String),
}

impl Resolution {
    /// One word, the `result` label of the actions metric.
    pub fn label(&self) -> &'static str {
        match self {
            Resolution::Applied => "applied",
            Resolution::Blocked => "blocked",
            Resolution::Declined(_) => "declined",
            Resolution::Expired => "expired",
            Resolution::Failed(_) => "failed",
        }
    }
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolution::Declined(Some(why)) => write!(f, "declined: {why}"),
            Resolution::Failed(error) => write!(f, "failed: {error}"),
            other => f.write_str(other.label()),
        }
    }
}

impl Serialize for Resolution {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
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
    /// What became of it.
    pub result: Resolution,
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

impl Outcome {
    /// A hold for one reason, with no missing feature.
    pub fn hold(reason: impl Into<String>) -> Outcome {
        Outcome::Hold {
            reasons: vec![reason.into()],
            missing: vec![],
        }
    }

    /// A hold for missing features: one reason per distinct cause.
    pub fn missing(missing: Vec<Missing>) -> Outcome {
        Outcome::Hold {
            reasons: summarise(&missing),
            missing,
        }
    }
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

impl Plan {
    /// The decision this plan came to, with this verdict, approval and result.
    pub fn resolve(
        self,
        verdict: Verdict,
        approval: Option<Approval>,
        result: Resolution,
    ) -> Decision {
        Decision {
            service: self.service,
            seen: self.seen,
            proposed: self.proposed,
            verdict,
            explanation: self.explanation,
            approval,
            result,
        }
    }
}

/// What was done about a proposal, in words: the action the guardrails let through,
/// with what the policy asked for when they changed it.
pub fn describe(proposed: &Action, verdict: &Verdict) -> String {
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
