//! The adapter's own Prometheus metrics, served at `/metrics` (text exposition
//! format): decisions, holds, actions by kind and result, blocked actions by rule,
//! decision latency, observation staleness, and the fights the coordinator prevented.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of an action's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `scale`, `restart`, `cordon`, `rollback`.
    pub kind: String,
    /// `applied`, `failed`, `blocked`, `declined`, `expired`.
    pub result: String,
}

/// Labels of a blocked action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The guardrail's name (`max_step`, `cooldown`, …).
    pub rule: String,
}

/// Every metric the adapter keeps, registered under `hale_adapter_`.
pub struct Metrics {
    registry: Registry,
    /// Steps in which the policy decided.
    pub decisions: Counter,
    /// Steps held back (missing data, target errors).
    pub holds: Counter,
    /// Actions by kind and result.
    pub actions: Family<ActionLabels, Counter>,
    /// Actions the guardrails refused, by rule.
    pub blocked: Family<RuleLabels, Counter>,
    /// Seconds from a complete observation to the guarded actions (no network).
    pub decision_latency: Histogram,
    /// Age of the oldest sample in the last observation, seconds.
    pub staleness: Gauge<f64, AtomicU64>,
    /// Proposals waiting for a person (manual mode).
    pub pending: Gauge,
    /// Agents' actions the coordinator dropped as fights, by rule.
    pub prevented: Family<RuleLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hale_adapter");
        let decisions = Counter::default();
        let holds = Counter::default();
        let actions = Family::<ActionLabels, Counter>::default();
        let blocked = Family::<RuleLabels, Counter>::default();
        // 10 µs to about 10 s.
        let decision_latency = Histogram::new(exponential_buckets(1e-5, 4.0, 11));
        let staleness = Gauge::<f64, AtomicU64>::default();
        let pending = Gauge::default();
        let prevented = Family::<RuleLabels, Counter>::default();
        registry.register(
            "conflicts_prevented",
            "Agents' actions the coordinator dropped because they would fight another's, by rule",
            prevented.clone(),
        );
        registry.register(
            "decisions",
            "Steps in which the policy decided",
            decisions.clone(),
        );
        registry.register(
            "holds",
            "Steps held back: missing or stale data, or a target that did not answer",
            holds.clone(),
        );
        registry.register(
            "actions",
            "Actions by kind and result (applied, failed, blocked, declined, expired)",
            actions.clone(),
        );
        registry.register(
            "blocked",
            "Actions refused by a guardrail, by rule",
            blocked.clone(),
        );
        registry.register(
            "decision_latency_seconds",
            "Seconds from a complete observation to the guarded actions, network excluded",
            decision_latency.clone(),
        );
        registry.register(
            "observation_staleness_seconds",
            "Age of the oldest sample in the last observation",
            staleness.clone(),
        );
        registry.register(
            "proposals_pending",
            "Proposals waiting for a person's decision (manual mode)",
            pending.clone(),
        );
        Metrics {
            registry,
            decisions,
            holds,
            actions,
            blocked,
            decision_latency,
            staleness,
            pending,
            prevented,
        }
    }

    /// Counts one action's outcome.
    pub fn action(&self, kind: &str, result: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
