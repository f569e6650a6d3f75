//! Guardrails: limits that hold whatever the policy says. Every action passes
//! [`Guard::check`] before it reaches a target; what is changed or refused names the
//! rule that did it, and the adapter logs it.
//!
//! - `max_step`: a scale moves at most this many replicas from the current count.
//! - Replica bounds (`min_replicas`..=`max_replicas`, per service overrides): a scale
//!   outside them is clamped. Bounds win over `max_step`: a service found outside
//!   its bounds is brought inside in one action.
//! - `cooldown_s`: no two actions on one service (or node) closer than this.
//! - `max_disruptive` per `window_s`: restarts, cordons, drains, roll-backs, resizes
//!   and scale-downs over all services.
//! - `deny`: services, whole namespaces (`NS/*`) or nodes (`node/NAME`) never touched.
//! - `max_isolated`: replicas of one service isolated at once; and an isolation never
//!   takes a service's last serving replica (ready and not isolated). Both read the
//!   replicas the target last reported ([`Guard::observe`]) and the isolations the
//!   adapter carried out since; a service whose replicas are unknown is not isolated.
//!
//! A scale whose current replica count is unknown is refused: without it neither the
//! step limit nor the disruption count can be enforced.

use crate::action::Action;
use crate::field::FieldError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Replica bounds of one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Fewest replicas.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
}

/// The `[guardrails]` table of the adapter's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Fewest replicas of any service.
    pub min_replicas: u32,
    /// Most replicas of any service.
    pub max_replicas: u32,
    /// Per-service bounds (`"NS/NAME"` or `"NAME"`), overriding the two above.
    pub bounds: BTreeMap<String, Bounds>,
    /// Largest change of a service's replicas in one action.
    pub max_step: u32,
    /// Seconds between two actions on the same service or node.
    pub cooldown_s: f64,
    /// Disruptive actions (restart, cordon, roll back, scale down) allowed per window.
    pub max_disruptive: u32,
    /// The window of `max_disruptive`, seconds.
    pub window_s: f64,
    /// Never touched: `NS/NAME` or `NAME` (a service), `NS/*` (a namespace),
    /// `node/NAME` (a node).
    pub deny: Vec<String>,
    /// Most replicas of one service isolated at once.
    pub max_isolated: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            min_replicas: 1,
            max_replicas: 10,
            bounds: BTreeMap::new(),
            max_step: 2,
            cooldown_s: 60.0,
            max_disruptive: 3,
            window_s: 300.0,
            deny: vec!["kube-system/*".into()],
            max_isolated: 1,
        }
    }
}

impl GuardConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.min_replicas > self.max_replicas {
            return Err(FieldError::new(
                "guardrails.min_replicas",
                format!(
                    "guardrails.min_replicas ({}) is above max_replicas ({})",
                    self.min_replicas, self.max_replicas
                ),
            ));
        }
        for (name, b) in &self.bounds {
            if b.min > b.max {
                return Err(FieldError::new(
                    format!("guardrails.bounds.{name}"),
                    format!(
                        "guardrails.bounds.{name}: min ({}) is above max ({})",
                        b.min, b.max
                    ),
                ));
            }
        }
        if self.max_step == 0 {
            return Err(FieldError::new(
                "guardrails.max_step",
                "guardrails.max_step must be positive",
            ));
        }
        crate::field::check_seconds("guardrails.cooldown_s", self.cooldown_s, true)?;
        crate::field::check_seconds("guardrails.window_s", self.window_s, true)?;
        Ok(())
    }

    fn bounds_of(&self, namespace: &str, service: &str) -> Bounds {
        self.bounds
            .get(&format!("{namespace}/{service}"))
            .or_else(|| self.bounds.get(service))
            .copied()
            .unwrap_or(Bounds {
                min: self.min_replicas,
                max: self.max_replicas,
            })
    }

    fn denied(&self, action: &Action) -> Option<&str> {
        self.deny
            .iter()
            .find(|d| match action {
                Action::Cordon { node } | Action::Drain { node } => {
                    d.strip_prefix("node/") == Some(node.as_str())
                }
                _ => action.service().is_some_and(|(ns, svc)| {
                    d.as_str() == format!("{ns}/{svc}")
                        || (d.as_str() == svc && !d.contains('/'))
                        || d.strip_suffix("/*") == Some(ns)
                }),
            })
            .map(String::as_str)
    }
}

/// Which rule changed or refused an action.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// On the deny-list (the matching entry).
    Deny {
        /// The entry.
        entry: String,
    },
    /// Raised to the service's minimum.
    MinReplicas {
        /// The bound.
        min: u32,
    },
    /// Lowered to the service's maximum.
    MaxReplicas {
        /// The bound.
        max: u32,
    },
    /// Moved by at most `max_step` from the current count.
    MaxStep {
        /// The limit.
        max_step: u32,
    },
    /// The service or node was acted on too recently.
    Cooldown {
        /// Seconds left.
        remaining_s: f64,
    },
    /// Too many disruptive actions in the window.
    RateLimit {
        /// The limit.
        max_disruptive: u32,
        /// Its window, seconds.
        window_s: f64,
    },
    /// The current replica count is unknown (observation missing or stale).
    UnknownReplicas,
    /// A resize of a service whose CPU request the target does not report (its
    /// template requests none).
    UnknownCpu,
    /// After the limits, the scale would change nothing.
    NoChange,
    /// The service has `max_isolated` replicas isolated already.
    MaxIsolated {
        /// The limit.
        max_isolated: u32,
    },
    /// The isolation would leave the service no serving replica.
    LastReplica,
    /// The service's replicas are unknown (the target does not list them).
    UnknownPods,
}

impl Rule {
    /// The rule's name (`max_step`, `cooldown`, …), as a metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Deny { .. } => "deny",
            Rule::MinReplicas { .. } => "min_replicas",
            Rule::MaxReplicas { .. } => "max_replicas",
            Rule::MaxStep { .. } => "max_step",
            Rule::Cooldown { .. } => "cooldown",
            Rule::RateLimit { .. } => "rate_limit",
            Rule::UnknownReplicas => "unknown_replicas",
            Rule::UnknownCpu => "unknown_cpu",
            Rule::NoChange => "no_change",
            Rule::MaxIsolated { .. } => "max_isolated",
            Rule::LastReplica => "last_replica",
            Rule::UnknownPods => "unknown_pods",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Deny { entry } => write!(f, "deny-list entry {entry:?}"),
            Rule::MinReplicas { min } => write!(f, "min_replicas {min}"),
            Rule::MaxReplicas { max } => write!(f, "max_replicas {max}"),
            Rule::MaxStep { max_step } => write!(f, "max_step {max_step}"),
            Rule::Cooldown { remaining_s } => write!(f, "cooldown ({remaining_s:.0} s left)"),
            Rule::RateLimit {
                max_disruptive,
                window_s,
            } => write!(
                f,
                "at most {max_disruptive} disruptive actions per {window_s} s"
            ),
            Rule::UnknownReplicas => write!(f, "current replicas unknown"),
            Rule::UnknownCpu => write!(f, "the service requests no CPU to size"),
            Rule::NoChange => write!(f, "nothing left to change"),
            Rule::MaxIsolated { max_isolated } => {
                write!(f, "at most {max_isolated} isolated replicas per service")
            }
            Rule::LastReplica => write!(f, "never isolate a service's last serving replica"),
            Rule::UnknownPods => write!(f, "the service's replicas are unknown"),
        }
    }
}

/// What the guard made of an action.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Allowed as proposed.
    Allow {
        /// The action.
        action: Action,
    },
    /// Allowed after the rules changed it.
    Adjusted {
        /// What will be done.
        action: Action,
        /// The rules applied, in order.
        rules: Vec<Rule>,
    },
    /// Refused.
    Blocked {
        /// The rule that refused it.
        rule: Rule,
    },
}

impl Verdict {
    /// The action to carry out, if any.
    pub fn action(&self) -> Option<&Action> {
        match self {
            Verdict::Allow { action } | Verdict::Adjusted { action, .. } => Some(action),
            Verdict::Blocked { .. } => None,
        }
    }
}

/// The guardrails and the history they need (recent actions, replicas).
pub struct Guard {
    config: GuardConfig,
    last_action: BTreeMap<String, f64>,
    disruptive: VecDeque<f64>,
    /// Per service (`NS/NAME`), its replicas as last reported: (name, serving,
    /// isolated); updated by the isolations and releases carried out since.
    pods: BTreeMap<String, Vec<(String, bool, bool)>>,
}

fn subject(action: &Action) -> Option<String> {
    match action {
        Action::Cordon { node } | Action::Drain { node } => Some(format!("node/{node}")),
        a => a.service().map(|(ns, s)| format!("{ns}/{s}")),
    }
}

impl Guard {
    /// Guardrails from a validated config.
    pub fn new(config: GuardConfig) -> Result<Guard, FieldError> {
        config.validate()?;
        Ok(Guard {
            config,
            last_action: BTreeMap::new(),
            disruptive: VecDeque::new(),
            pods: BTreeMap::new(),
        })
    }

    /// Takes in the replicas the target reports (`NS/NAME` → its pods or tasks), for
    /// the isolation rules.
    pub fn observe(&mut self, replicas: &BTreeMap<String, Vec<crate::target::ReplicaState>>) {
        self.pods = replicas
            .iter()
            .map(|(k, pods)| {
                let seen = pods
                    .iter()
                    .map(|p| (p.name.clone(), p.running() && p.ready, p.isolated))
                    .collect();
                (k.clone(), seen)
            })
            .collect();
    }

    /// The isolation rules for an isolation of `replica` of `key` (`NS/NAME`).
    fn isolation_rule(&self, key: &str, replica: &str) -> Option<Rule> {
        let Some(pods) = self.pods.get(key) else {
            return Some(Rule::UnknownPods);
        };
        let isolated = pods.iter().filter(|p| p.2).count();
        if isolated >= self.config.max_isolated as usize {
            return Some(Rule::MaxIsolated {
                max_isolated: self.config.max_isolated,
            });
        }
        let serving_others = pods
            .iter()
            .filter(|p| p.1 && !p.2 && p.0 != replica)
            .count();
        (serving_others == 0).then_some(Rule::LastReplica)
    }

    /// The config.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// What may be done of `action` at time `now_s` (seconds, monotonic), the service
    /// having `current` replicas (None: unknown). Does not record anything: call
    /// [`Guard::record`] once the action was carried out.
    pub fn check(&self, action: &Action, current: Option<u32>, now_s: f64) -> Verdict {
        if matches!(action, Action::Noop) {
            return Verdict::Allow {
                action: action.clone(),
            };
        }
        if let Some(entry) = self.config.denied(action) {
            return Verdict::Blocked {
                rule: Rule::Deny {
                    entry: entry.to_string(),
                },
            };
        }
        if let Some(key) = subject(action)
            && let Some(&t) = self.last_action.get(&key)
            && now_s - t < self.config.cooldown_s
        {
            return Verdict::Blocked {
                rule: Rule::Cooldown {
                    remaining_s: self.config.cooldown_s - (now_s - t),
                },
            };
        }
        if let Action::Isolate {
            namespace,
            service,
            replica,
        } = action
            && let Some(rule) = self.isolation_rule(&format!("{namespace}/{service}"), replica)
        {
            return Verdict::Blocked { rule };
        }
        let mut rules = Vec::new();
        let mut action = action.clone();
        if let Action::Scale {
            namespace,
            service,
            replicas,
        } = &mut action
        {
            let Some(cur) = current else {
                return Verdict::Blocked {
                    rule: Rule::UnknownReplicas,
                };
            };
            // The step limit first, then the bounds: a service found outside its
            // bounds is brought inside in one action, however far that is.
            let step = self.config.max_step;
            let lo = cur.saturating_sub(step);
            let hi = cur.saturating_add(step);
            if *replicas < lo || *replicas > hi {
                *replicas = (*replicas).clamp(lo, hi);
                rules.push(Rule::MaxStep { max_step: step });
            }
            let b = self.config.bounds_of(namespace, service);
            if *replicas < b.min {
                *replicas = b.min;
                rules.push(Rule::MinReplicas { min: b.min });
            }
            if *replicas > b.max {
                *replicas = b.max;
                rules.push(Rule::MaxReplicas { max: b.max });
            }
            if *replicas == cur {
                return Verdict::Blocked {
                    rule: rules.pop().unwrap_or(Rule::NoChange),
                };
            }
        }
        if action.is_disruptive(current) {
            let recent = self
                .disruptive
                .iter()
                .filter(|&&t| now_s - t < self.config.window_s)
                .count();
            if recent >= self.config.max_disruptive as usize {
                return Verdict::Blocked {
                    rule: Rule::RateLimit {
                        max_disruptive: self.config.max_disruptive,
                        window_s: self.config.window_s,
                    },
                };
            }
        }
        if rules.is_empty() {
            Verdict::Allow { action }
        } else {
            Verdict::Adjusted { action, rules }
        }
    }

    /// Records that `action` was carried out at `now_s` (`current`: the replicas
    /// before it), for cool-downs and the rate limit.
    pub fn record(&mut self, action: &Action, current: Option<u32>, now_s: f64) {
        if let Some(key) = subject(action) {
            self.last_action.insert(key, now_s);
        }
        // An isolation or a release holds until the target's next report; a restart
        // replaces the pod (its replacement is not isolated).
        let change = match action {
            Action::Restart {
                namespace,
                service,
                replica,
            } => Some((
                namespace.as_str(),
                service.as_str(),
                replica.as_str(),
                false,
            )),
            a => a.isolation(),
        };
        if let Some((namespace, service, replica, on)) = change
            && let Some(pods) = self.pods.get_mut(&format!("{namespace}/{service}"))
        {
            for p in pods.iter_mut().filter(|p| p.0 == replica) {
                p.2 = on;
                if matches!(action, Action::Restart { .. }) {
                    p.1 = false;
                }
            }
        }
        if action.is_disruptive(current) {
            self.disruptive.push_back(now_s);
            while self
                .disruptive
                .front()
                .is_some_and(|&t| now_s - t >= self.config.window_s)
            {
                self.disruptive.pop_front();
            }
        }
    }
}
