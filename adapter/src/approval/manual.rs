//! Manual mode's loop: each change the guardrails allow becomes a proposal; the
//! step waits until every proposal is answered or expires, and carries out what was
//! accepted (or modified, through the guardrails again).

use super::{Answer, Proposal, Reply, Shared};
use crate::action::Action;
use crate::actuate::Actuator;
use crate::error::AdapterError;
use crate::report::{Approval, ApprovalDecision, Decision, Plan, Resolution};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Manual mode's channel to people: replies from the terminal and the endpoint.
pub struct Manual {
    /// Answers, from whichever side.
    pub replies: Receiver<Reply>,
    /// Seconds a proposal waits.
    pub ttl_s: f64,
    /// The agent that proposes.
    pub agent: crate::ask::Agent,
    /// What the endpoint shows (the proposals waiting).
    pub shared: Arc<Shared>,
}

impl Manual {
    /// Manual mode: proposes each allowed change, waits for answers until the
    /// proposals expire, and carries out what was accepted (or modified).
    pub fn ask(
        &mut self,
        act: &mut Actuator,
        planned: Vec<Plan>,
        now_unix: f64,
        now_s: f64,
    ) -> Result<Vec<Decision>, AdapterError> {
        let ttl = self.ttl_s;
        // Answers left over from earlier steps name proposals that are gone.
        while let Ok(stale) = self.replies.try_recv() {
            eprintln!("proposal {}: no longer pending, answer ignored", stale.id);
        }
        let mut decisions = Vec::new();
        let mut waiting: Vec<(Proposal, Plan)> = Vec::new();
        for p in planned {
            let Some(action) = p.verdict.action().cloned() else {
                let verdict = p.verdict.clone();
                decisions.push(act.carry_out(p, verdict, None, now_s));
                continue;
            };
            let proposal = Proposal {
                id: self
                    .shared
                    .next_proposal
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                agent: self.agent,
                action,
                verdict: p.verdict.clone(),
                explanation: p.explanation.clone(),
                created_unix: now_unix,
                expires_unix: now_unix + ttl,
            };
            println!(
                "proposal {}: {} ({}); answer `{0} accept`, `{0} decline` or `{0} modify REPLICAS` within {ttl} s",
                proposal.id,
                proposal.action,
                proposal.explanation.summary()
            );
            act.notify("proposal", &proposal)?;
            waiting.push((proposal, p));
        }
        self.publish(&waiting);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(ttl);
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(reply) = self.replies.recv_timeout(left) else {
                break;
            };
            let Some(at) = waiting.iter().position(|(q, _)| q.id == reply.id) else {
                eprintln!("proposal {}: not pending, answer ignored", reply.id);
                continue;
            };
            let (proposal, p) = waiting.remove(at);
            self.publish(&waiting);
            let now_s = now_s + started.elapsed().as_secs_f64();
            let approval = |decision, replicas| Approval {
                proposal: proposal.id,
                decision,
                by: Some(reply.by.clone()),
                replicas,
            };
            let decision = match reply.answer {
                Answer::Accept => {
                    let approval = approval(ApprovalDecision::Accepted, None);
                    act.carry_out(p, proposal.verdict, Some(approval), now_s)
                }
                Answer::Modify { replicas } => {
                    let approval = approval(ApprovalDecision::Modified, Some(replicas));
                    match &p.proposed {
                        Action::Scale {
                            namespace, service, ..
                        } => {
                            let modified = Action::Scale {
                                namespace: namespace.clone(),
                                service: service.clone(),
                                replicas,
                            };
                            let verdict = act.guard.check(&modified, p.current, now_s);
                            act.carry_out(p, verdict, Some(approval), now_s)
                        }
                        // A replica count means nothing to a restart, a drain or a
                        // roll back: nothing is done rather than guessing.
                        other => {
                            println!(
                                "proposal {}: modify applies to a scale, not to {other}; nothing done",
                                proposal.id
                            );
                            let result =
                                Resolution::Declined(Some("modify applies to a scale only".into()));
                            act.metrics.action(other.kind(), result.label());
                            p.resolve(proposal.verdict, Some(approval), result)
                        }
                    }
                }
                Answer::Decline => {
                    let approval = approval(ApprovalDecision::Declined, None);
                    let result = Resolution::Declined(None);
                    act.metrics.action(p.proposed.kind(), result.label());
                    p.resolve(proposal.verdict, Some(approval), result)
                }
            };
            act.notify("approval", &decision)?;
            decisions.push(decision);
        }
        for (proposal, p) in std::mem::take(&mut waiting) {
            println!("proposal {}: expired, nothing done", proposal.id);
            act.metrics
                .action(p.proposed.kind(), Resolution::Expired.label());
            let approval = Approval {
                proposal: proposal.id,
                decision: ApprovalDecision::Expired,
                by: None,
                replicas: None,
            };
            let decision = p.resolve(proposal.verdict, Some(approval), Resolution::Expired);
            act.notify("approval", &decision)?;
            decisions.push(decision);
        }
        self.publish(&[]);
        Ok(decisions)
    }
}

impl Manual {
    /// Shows the endpoint and the console the proposals still waiting for an answer.
    fn publish(&self, waiting: &[(Proposal, Plan)]) {
        self.shared
            .publish(self.agent, waiting.iter().map(|(q, _)| q.clone()));
    }
}
