//! Manual mode's loop: each change the guardrails allow becomes a proposal; the
//! step waits until every proposal is answered or expires, and carries out what was
//! accepted (or modified, through the guardrails again). An operator's request does
//! not wait behind them: when one comes, the step ends, the proposals still open stay
//! pending (answerable, with their own expiry), and the next step takes them up again
//! before proposing anything new for their services.

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
    /// Proposals still open when a step ended for an operator's request, with the
    /// instant each expires.
    pub carried: Vec<(Proposal, Plan, Instant)>,
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
        let mut decisions = Vec::new();
        // Proposals carried over from a step that ended for an operator's request
        // come first; a new plan for a service that has one waits for its answer.
        let mut waiting = std::mem::take(&mut self.carried);
        for p in planned {
            let Some(action) = p.verdict.action().cloned() else {
                let verdict = p.verdict.clone();
                decisions.push(act.carry_out(p, verdict, None, now_s));
                continue;
            };
            if waiting.iter().any(|(_, q, _)| q.service == p.service) {
                continue;
            }
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
            waiting.push((proposal, p, Instant::now() + Duration::from_secs_f64(ttl)));
        }
        self.publish(&waiting);
        let started = Instant::now();
        loop {
            // Expired ones first, then an answer if one came.
            let now = Instant::now();
            let (expired, open): (Vec<_>, Vec<_>) =
                waiting.into_iter().partition(|(_, _, until)| *until <= now);
            waiting = open;
            for (proposal, p, _) in expired {
                decisions.push(self.expire(act, proposal, p)?);
            }
            if waiting.is_empty() {
                break;
            }
            if self
                .shared
                .requests_waiting
                .load(std::sync::atomic::Ordering::SeqCst)
                > 0
            {
                // An operator is waiting: end the step; these stay pending.
                self.carried = waiting;
                self.publish(&self.carried);
                return Ok(decisions);
            }
            let next_expiry = waiting
                .iter()
                .map(|(_, _, until)| *until)
                .min()
                .unwrap_or(now);
            let slice = next_expiry.saturating_duration_since(now).min(REQUEST_POLL);
            let reply = match self.replies.recv_timeout(slice) {
                Ok(reply) => reply,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(slice);
                    continue;
                }
            };
            let Some(at) = waiting.iter().position(|(q, _, _)| q.id == reply.id) else {
                eprintln!("proposal {}: not pending, answer ignored", reply.id);
                continue;
            };
            let (proposal, p, _) = waiting.remove(at);
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
        self.publish(&[]);
        Ok(decisions)
    }

    /// Resolves a proposal nobody answered in time: nothing is done.
    fn expire(
        &self,
        act: &mut Actuator,
        proposal: Proposal,
        p: Plan,
    ) -> Result<Decision, AdapterError> {
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
        Ok(decision)
    }

    /// Withdraws the proposals carried over (the agent leaves manual mode): each is
    /// declined, saying why, and audited.
    pub fn withdraw(mut self, act: &mut Actuator) -> Result<Receiver<Reply>, AdapterError> {
        for (proposal, p, _) in std::mem::take(&mut self.carried) {
            let result = Resolution::Declined(Some(
                "withdrawn: the agent left manual mode; it decides again at its next step".into(),
            ));
            act.metrics.action(p.proposed.kind(), result.label());
            let approval = Approval {
                proposal: proposal.id,
                decision: ApprovalDecision::Declined,
                by: None,
                replicas: None,
            };
            let decision = p.resolve(proposal.verdict, Some(approval), result);
            act.notify("approval", &decision)?;
        }
        self.publish(&[]);
        Ok(self.replies)
    }
}

/// How often a waiting step looks for an operator's request.
const REQUEST_POLL: Duration = Duration::from_millis(50);

impl Manual {
    /// Shows the endpoint and the console the proposals still waiting for an answer.
    fn publish(&self, waiting: &[(Proposal, Plan, Instant)]) {
        self.shared
            .publish(self.agent, waiting.iter().map(|(q, _, _)| q.clone()));
    }
}
