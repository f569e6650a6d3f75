//! The coordinator of several agents on one cluster: each cycle it takes every
//! agent's planned actions (already through that agent's guardrails), orders them and
//! drops the ones that would fight, by documented rules, and remembers what was done
//! for the next cycles. Kubernetes' controllers avoid fights by giving each field one
//! owner; the coordinator does the same across agents, and counts the fights it
//! prevented.
//!
//! Order: an operator's request first, then the agents by priority — security, then
//! healing, then scaling (contain first, then repair, then size what is left; the
//! order CloudOps-v0 applies its agents' actions in).
//!
//! Rules, each with the name its prevented count and audit entries carry:
//!
//! | rule | drops |
//! |---|---|
//! | `remediation_first` | a scale-down of a service under remediation: one that a healing or security action touched within `window_s`, or that one plans this cycle |
//! | `one_disruption` | a disruptive remediation (restart, roll back, resize, isolate, rotate, a node's cordon or drain) of a service that another agent's disruptive remediation touched within `window_s`, or that an earlier one plans this cycle |
//! | `one_owner` | a second action on the same service (or node) in one cycle, whatever it is: the first in order wins |
//!
//! A scale-down is disruptive too (the guardrails pace it), but it does not hold a
//! service against the others: a repair of a crashed replica must not wait out a
//! window because the scaler removed another one; the scale-down is what
//! `remediation_first` holds back instead.
//!
//! An operator's request is subject to `one_owner` only: it is carried out where an
//! agent's action would be dropped (and then holds the service against the agents).
//!
//! Node actions (cordon, drain) are disruptive to every service with a replica on the
//! node; the caller says which those are ([`Planned::touches`]).

use crate::action::Action;
use crate::ask::Agent;
use std::collections::BTreeMap;

/// Who planned an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An operator's request (beats every agent).
    Operator,
    /// An agent.
    Agent(Agent),
}

impl Source {
    /// The coordinator's order: operator, security, healing, scaling.
    fn rank(self) -> u8 {
        match self {
            Source::Operator => 0,
            Source::Agent(Agent::Security) => 1,
            Source::Agent(Agent::Healing) => 2,
            Source::Agent(Agent::Scaling) => 3,
        }
    }
}

/// One planned action.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// The caller's handle for it (returned as given).
    pub id: usize,
    /// Who wants it.
    pub source: Source,
    /// What (after the agent's guardrails).
    pub action: Action,
    /// The service's desired replicas now (to tell a scale-down).
    pub current: Option<u32>,
    /// The services (`NS/NAME`) it touches: its own, or for a node action those with
    /// a replica on the node.
    pub touches: Vec<String>,
}

/// A planned action the coordinator dropped, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prevented {
    /// Who wanted it.
    pub source: Source,
    /// What.
    pub action: Action,
    /// The rule (`remediation_first`, `one_disruption`, `one_owner`).
    pub rule: &'static str,
    /// What it would have fought with, in words.
    pub because: String,
}

/// What the coordinator remembers of what was done.
#[derive(Clone, Debug, Default)]
pub struct Coordinator {
    /// Seconds over which a remediation or a disruption holds a service.
    pub window_s: f64,
    /// Per service: the last remediation (healing or security action) and who did it.
    remediated: BTreeMap<String, (f64, Source)>,
    /// Per service: the last disruptive action and who did it.
    disrupted: BTreeMap<String, (f64, Source)>,
    /// Fights prevented so far, per rule.
    pub prevented: BTreeMap<&'static str, u64>,
}

fn is_remediation(source: Source, action: &Action) -> bool {
    matches!(
        source,
        Source::Agent(Agent::Healing | Agent::Security) | Source::Operator
    ) && !matches!(action, Action::Scale { .. } | Action::Noop)
}

/// A disruptive action other than a scale-down (what `one_disruption` counts).
fn is_disruptive_remediation(action: &Action, current: Option<u32>) -> bool {
    action.is_disruptive(current) && !matches!(action, Action::Scale { .. })
}

fn is_scale_down(action: &Action, current: Option<u32>) -> bool {
    matches!(action, Action::Scale { replicas, .. } if current.is_some_and(|c| *replicas < c))
}

impl Coordinator {
    /// A coordinator whose remediations and disruptions hold a service `window_s`.
    pub fn new(window_s: f64) -> Coordinator {
        Coordinator {
            window_s,
            ..Coordinator::default()
        }
    }

    /// Orders `planned` (operator, security, healing, scaling; each source's own order
    /// kept) and keeps what the rules allow at `now_s`; returns what to carry out, in
    /// order, and what was dropped. Call [`Coordinator::done`] for each action carried
    /// out.
    pub fn arbitrate(
        &mut self,
        mut planned: Vec<Planned>,
        now_s: f64,
    ) -> (Vec<Planned>, Vec<Prevented>) {
        planned.sort_by_key(|p| p.source.rank());
        let recent = |map: &BTreeMap<String, (f64, Source)>, service: &str| {
            map.get(service)
                .filter(|(t, _)| now_s - t < self.window_s)
                .map(|(_, who)| *who)
        };
        // This cycle's claims: who owns each service, who remediates, who disrupts.
        let mut owner: BTreeMap<String, Source> = BTreeMap::new();
        let mut remediating: BTreeMap<String, Source> = BTreeMap::new();
        let mut disrupting: BTreeMap<String, Source> = BTreeMap::new();
        for p in planned
            .iter()
            .filter(|p| is_remediation(p.source, &p.action))
        {
            for s in &p.touches {
                remediating.entry(s.clone()).or_insert(p.source);
            }
        }
        let (mut keep, mut dropped) = (Vec::new(), Vec::new());
        for p in planned {
            let disruptive = is_disruptive_remediation(&p.action, p.current);
            let verdict = p.touches.iter().find_map(|s| {
                // An operator's request is carried out (within the guardrails) even
                // where an agent's would fight: only one action per service holds it.
                if p.source != Source::Operator {
                    if is_scale_down(&p.action, p.current) {
                        let by = recent(&self.remediated, s)
                            .or_else(|| remediating.get(s).copied().filter(|w| *w != p.source));
                        if let Some(by) = by {
                            return Some((
                                "remediation_first",
                                format!("{s} is under remediation by {by:?}"),
                            ));
                        }
                    }
                    if disruptive {
                        let by = recent(&self.disrupted, s)
                            .filter(|w| *w != p.source)
                            .or_else(|| disrupting.get(s).copied());
                        if let Some(by) = by {
                            return Some((
                                "one_disruption",
                                format!("{s} was disrupted within {} s by {by:?}", self.window_s),
                            ));
                        }
                    }
                }
                owner.get(s).map(|first| {
                    (
                        "one_owner",
                        format!("{s} already has an action this cycle, from {first:?}"),
                    )
                })
            });
            match verdict {
                Some((rule, because)) => {
                    *self.prevented.entry(rule).or_default() += 1;
                    dropped.push(Prevented {
                        source: p.source,
                        action: p.action,
                        rule,
                        because,
                    });
                }
                None => {
                    for s in &p.touches {
                        owner.insert(s.clone(), p.source);
                        if disruptive {
                            disrupting.insert(s.clone(), p.source);
                        }
                    }
                    keep.push(p);
                }
            }
        }
        (keep, dropped)
    }

    /// Records that `p` was carried out at `now_s`.
    pub fn done(&mut self, p: &Planned, now_s: f64) {
        for s in &p.touches {
            if is_remediation(p.source, &p.action) {
                self.remediated.insert(s.clone(), (now_s, p.source));
            }
            if is_disruptive_remediation(&p.action, p.current) {
                self.disrupted.insert(s.clone(), (now_s, p.source));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEAL: Source = Source::Agent(Agent::Healing);
    const SCALE: Source = Source::Agent(Agent::Scaling);
    const DEFEND: Source = Source::Agent(Agent::Security);

    fn scale(source: Source, service: &str, from: u32, to: u32) -> Planned {
        Planned {
            id: 0,
            source,
            action: Action::Scale {
                namespace: "shop".into(),
                service: service.into(),
                replicas: to,
            },
            current: Some(from),
            touches: vec![format!("shop/{service}")],
        }
    }

    fn restart(source: Source, service: &str) -> Planned {
        Planned {
            id: 0,
            source,
            action: Action::Restart {
                namespace: "shop".into(),
                service: service.into(),
                replica: format!("{service}-1"),
            },
            current: Some(3),
            touches: vec![format!("shop/{service}")],
        }
    }

    #[test]
    fn a_service_under_remediation_is_not_scaled_down() {
        let mut c = Coordinator::new(300.0);
        // The scaler's plan comes first in the list; the order puts healing first.
        let (keep, dropped) =
            c.arbitrate(vec![scale(SCALE, "api", 3, 2), restart(HEAL, "api")], 0.0);
        assert_eq!(keep, vec![restart(HEAL, "api")]);
        assert_eq!(dropped[0].rule, "remediation_first");
        c.done(&keep[0], 0.0);
        // Within the window: still held; a scale-up is not a fight.
        let (keep, dropped) = c.arbitrate(
            vec![scale(SCALE, "api", 3, 2), scale(SCALE, "db", 2, 3)],
            100.0,
        );
        assert_eq!(keep, vec![scale(SCALE, "db", 2, 3)]);
        assert_eq!(dropped[0].rule, "remediation_first");
        let (keep, _) = c.arbitrate(vec![scale(SCALE, "api", 3, 4)], 100.0);
        assert_eq!(
            keep.len(),
            1,
            "scaling up a service under repair is allowed"
        );
        // After it: allowed.
        let (keep, dropped) = c.arbitrate(vec![scale(SCALE, "api", 3, 2)], 400.0);
        assert_eq!((keep.len(), dropped.len()), (1, 0));
        assert_eq!(c.prevented.get("remediation_first"), Some(&2));
    }

    #[test]
    fn one_disruption_per_service_per_window_across_agents() {
        let mut c = Coordinator::new(300.0);
        let isolate = Planned {
            id: 0,
            source: DEFEND,
            action: Action::Isolate {
                namespace: "shop".into(),
                service: "api".into(),
                replica: "api-2".into(),
            },
            current: Some(3),
            touches: vec!["shop/api".into()],
        };
        let (keep, dropped) = c.arbitrate(vec![restart(HEAL, "api"), isolate.clone()], 0.0);
        assert_eq!(keep, vec![isolate.clone()], "security first");
        assert_eq!(dropped[0].rule, "one_disruption");
        c.done(&keep[0], 0.0);
        let (keep, dropped) = c.arbitrate(vec![restart(HEAL, "api")], 60.0);
        assert!(keep.is_empty());
        assert_eq!(dropped[0].rule, "one_disruption");
        // The same agent may go on (its own guardrails pace it); another service is free.
        let (keep, _) = c.arbitrate(vec![restart(HEAL, "db")], 60.0);
        assert_eq!(keep.len(), 1);
        // An operator's request beats the agents in the same cycle.
        let mut op = scale(Source::Operator, "db", 2, 5);
        op.touches = vec!["shop/db".into()];
        let (keep, dropped) = c.arbitrate(vec![scale(SCALE, "db", 2, 3), op.clone()], 61.0);
        assert_eq!(keep, vec![op]);
        assert_eq!(dropped[0].rule, "one_owner");
    }

    #[test]
    fn a_drain_holds_every_service_on_its_node() {
        let mut c = Coordinator::new(300.0);
        let drain = Planned {
            id: 0,
            source: HEAL,
            action: Action::Drain {
                node: "node-b".into(),
            },
            current: None,
            touches: vec!["shop/api".into(), "shop/db".into()],
        };
        let (keep, dropped) = c.arbitrate(
            vec![
                drain.clone(),
                scale(SCALE, "db", 3, 2),
                scale(SCALE, "front", 3, 2),
            ],
            0.0,
        );
        assert_eq!(keep, vec![drain, scale(SCALE, "front", 3, 2)]);
        assert_eq!(dropped.len(), 1);
    }

    fn planned() -> impl Strategy<Value = Planned> {
        let source = prop_oneof![
            Just(Source::Operator),
            Just(DEFEND),
            Just(HEAL),
            Just(SCALE)
        ];
        let service = prop::sample::select(vec!["front", "api", "db"]);
        (source, service, any::<bool>(), 1u32..5, 1u32..5).prop_map(|(src, s, r, from, to)| {
            if r {
                restart(src, s)
            } else {
                scale(src, s, from, to)
            }
        })
    }

    proptest! {
        /// Whatever is planned, over many cycles: at most one action per service per
        /// cycle; no scale-down of a service remediated within the window; no two
        /// agents' disruptions of a service within the window; every plan is either
        /// kept or dropped with a rule.
        #[test]
        fn no_fight_passes(cycles in prop::collection::vec(prop::collection::vec(planned(), 0..6), 1..12)) {
            let mut c = Coordinator::new(300.0);
            let mut remediated: BTreeMap<String, f64> = BTreeMap::new();
            let mut disrupted: BTreeMap<String, (f64, Source)> = BTreeMap::new();
            for (k, plans) in cycles.into_iter().enumerate() {
                let now = k as f64 * 100.0;
                let n = plans.len();
                let (keep, dropped) = c.arbitrate(plans, now);
                prop_assert_eq!(keep.len() + dropped.len(), n);
                let mut seen = std::collections::BTreeSet::new();
                for p in &keep {
                    for s in &p.touches {
                        prop_assert!(seen.insert(s.clone()), "two actions on {}", s);
                        if is_scale_down(&p.action, p.current) && p.source != Source::Operator {
                            prop_assert!(remediated.get(s).is_none_or(|t| now - t >= 300.0));
                        }
                        if is_disruptive_remediation(&p.action, p.current)
                            && p.source != Source::Operator
                            && let Some((t, who)) = disrupted.get(s)
                        {
                            prop_assert!(now - t >= 300.0 || *who == p.source);
                        }
                    }
                    c.done(p, now);
                    for s in &p.touches {
                        if is_remediation(p.source, &p.action) {
                            remediated.insert(s.clone(), now);
                        }
                        if is_disruptive_remediation(&p.action, p.current) {
                            disrupted.insert(s.clone(), (now, p.source));
                        }
                    }
                }
            }
        }
    }
}
