//! Carrying out: what the guardrails let through goes to the target, and every
//! outcome is counted and reported (audit log, webhook). Auto mode carries out each
//! plan at once; manual mode ([`crate::approval::manual`]) what a person accepted.

use crate::audit::AuditLog;
use crate::error::AdapterError;
use crate::guard::{Guard, Verdict};
use crate::metrics::Metrics;
use crate::report::{Approval, Decision, Plan, Resolution};
use crate::target::Target;
use serde::Serialize;
use std::sync::Arc;

/// The acting half of the adapter: guardrails, target, audit log, metrics and the
/// webhook.
pub struct Actuator {
    /// The guardrails (checked again before acting, and told what was done).
    pub guard: Guard,
    /// Where actions go.
    pub target: Box<dyn Target>,
    /// The audit log.
    pub audit: AuditLog,
    /// The adapter's metrics.
    pub metrics: Arc<Metrics>,
    /// Where events are posted, if anywhere.
    pub webhook: Option<(String, ureq::Agent)>,
    /// The agent whose events these are (each event names it: `"agent"`).
    pub agent: crate::ask::Agent,
}

impl Actuator {
    /// Appends to the audit log and posts to the webhook (whose failure is reported
    /// on stderr and does not stop the loop).
    pub fn notify(&mut self, event: &str, fields: impl Serialize) -> Result<(), AdapterError> {
        let mut value = serde_json::to_value(fields)?;
        if let serde_json::Value::Object(m) = &mut value {
            m.entry("agent")
                .or_insert_with(|| serde_json::json!(self.agent));
        }
        self.audit
            .append(event, &value)
            .map_err(|source| AdapterError::Audit {
                path: self.audit.path().to_path_buf(),
                source,
            })?;
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

    /// Checks `asked` against the guardrails again (an earlier action of this step, or
    /// the wait for a person, may have changed what they allow) and carries out what
    /// they let through.
    pub fn carry_out(
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
                Resolution::Blocked
            }
            Some(a) => match self.target.apply(a) {
                Ok(()) => {
                    self.guard.record(a, p.current, now_s);
                    Resolution::Applied
                }
                Err(e) => Resolution::Failed(e.to_string()),
            },
        };
        self.metrics.action(p.proposed.kind(), result.label());
        p.resolve(verdict, approval, result)
    }
}
