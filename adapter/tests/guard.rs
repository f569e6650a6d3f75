//! The guardrails hold whatever the policy proposes.

use hale_adapter::action::Action;
use hale_adapter::guard::{Bounds, Guard, GuardConfig, Rule, Verdict};
use hale_adapter::target::ReplicaState;
use proptest::prelude::*;
use std::collections::BTreeMap;

const SERVICES: [&str; 3] = ["web", "api", "db"];

fn config() -> GuardConfig {
    let mut bounds = BTreeMap::new();
    bounds.insert("prod/db".to_string(), Bounds { min: 2, max: 4 });
    GuardConfig {
        min_replicas: 1,
        max_replicas: 8,
        bounds,
        max_step: 2,
        cooldown_s: 30.0,
        max_disruptive: 2,
        window_s: 120.0,
        deny: vec!["prod/api".into(), "node/n3".into()],
        max_isolated: 1,
    }
}

/// Two pods per service, `NAME-0` and `NAME-1`.
fn pod_names(service: &str) -> [String; 2] {
    [format!("{service}-0"), format!("{service}-1")]
}

fn arb_action() -> impl Strategy<Value = Action> {
    let svc = prop::sample::select(SERVICES.to_vec());
    prop_oneof![
        Just(Action::Noop),
        (svc.clone(), 0u32..40).prop_map(|(s, r)| Action::Scale {
            namespace: "prod".into(),
            service: s.into(),
            replicas: r,
        }),
        (svc.clone(), 0usize..2).prop_map(|(s, i)| Action::Restart {
            namespace: "prod".into(),
            service: s.into(),
            replica: pod_names(s)[i].clone(),
        }),
        (svc.clone(), 0usize..2).prop_map(|(s, i)| Action::Isolate {
            namespace: "prod".into(),
            service: s.into(),
            replica: pod_names(s)[i].clone(),
        }),
        (svc.clone(), 0usize..2).prop_map(|(s, i)| Action::Release {
            namespace: "prod".into(),
            service: s.into(),
            replica: pod_names(s)[i].clone(),
        }),
        svc.clone().prop_map(|s| Action::Rotate {
            namespace: "prod".into(),
            service: s.into(),
        }),
        svc.prop_map(|s| Action::Rollback {
            namespace: "prod".into(),
            service: s.into(),
        }),
        (0u32..4).prop_map(|n| Action::Cordon {
            node: format!("n{n}"),
        }),
        (0u32..4).prop_map(|n| Action::Drain {
            node: format!("n{n}"),
        }),
    ]
}

fn bounds(service: &str) -> (u32, u32) {
    if service == "db" { (2, 4) } else { (1, 8) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary actions at arbitrary times, starting from arbitrary replica counts:
    /// whatever is carried out keeps every bound, step, cool-down, rate limit and
    /// deny-list entry.
    #[test]
    fn no_bound_is_ever_broken(
        start in prop::collection::vec(0u32..20, 3),
        steps in prop::collection::vec((arb_action(), 0.0f64..50.0), 1..80),
        down in prop::collection::vec(any::<bool>(), 6),
    ) {
        let cfg = config();
        let mut guard = Guard::new(cfg.clone()).unwrap();
        // Pods as the target reports them; some start not ready.
        let mut pods: BTreeMap<String, Vec<ReplicaState>> = SERVICES
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let list = pod_names(s)
                    .into_iter()
                    .enumerate()
                    .map(|(j, name)| ReplicaState {
                        name,
                        node: Some("n0".into()),
                        phase: "running".into(),
                        ready: !down[2 * i + j],
                        restarts: 0,
                        isolated: false,
                    })
                    .collect();
                (format!("prod/{s}"), list)
            })
            .collect();
        let mut replicas: BTreeMap<&str, u32> = SERVICES.iter().copied().zip(start).collect();
        let mut last: BTreeMap<String, f64> = BTreeMap::new();
        let mut disruptive: Vec<f64> = Vec::new();
        let mut now = 0.0;
        for (proposed, dt) in steps {
            now += dt;
            guard.observe(&pods);
            let current = proposed.service().map(|(_, s)| replicas[s]);
            let verdict = guard.check(&proposed, current, now);
            let Some(action) = verdict.action().cloned() else { continue };
            if let Verdict::Allow { action: a } = &verdict {
                prop_assert_eq!(a, &proposed);
            }
            if action == Action::Noop { continue; }
            // Deny-list.
            prop_assert_ne!(action.node(), Some("n3"), "acted on a denied node");
            prop_assert_ne!(action.service().map(|(_, s)| s), Some("api"));
            // Cool-down per subject.
            let key = match action.node() {
                Some(node) => format!("node/{node}"),
                None => action.service().unwrap().1.to_string(),
            };
            if let Some(&t) = last.get(&key) {
                prop_assert!(now - t >= cfg.cooldown_s, "{key} acted on at {t} and {now}");
            }
            last.insert(key, now);
            // Rate limit over any window.
            if action.is_disruptive(current) {
                let recent = disruptive.iter().filter(|&&t| now - t < cfg.window_s).count();
                prop_assert!(recent < cfg.max_disruptive as usize);
                disruptive.push(now);
            }
            // Bounds, and the step limit unless it took the bounds to get inside.
            if let Action::Scale { service, replicas: r, .. } = &action {
                let (lo, hi) = bounds(service);
                prop_assert!((lo..=hi).contains(r), "{service} scaled to {r}");
                let cur = replicas[service.as_str()];
                let outside = cur < lo || cur > hi;
                prop_assert!(outside || r.abs_diff(cur) <= cfg.max_step, "{cur} → {r}");
                prop_assert_ne!(*r, cur);
                *replicas.get_mut(service.as_str()).unwrap() = *r;
            }
            // Isolation: at most max_isolated per service, never the last serving pod.
            let key = action.service().map(|(_, s)| format!("prod/{s}"));
            match &action {
                Action::Isolate { replica, .. } | Action::Release { replica, .. } => {
                    let on = matches!(action, Action::Isolate { .. });
                    let list = pods.get_mut(key.as_deref().unwrap()).unwrap();
                    list.iter_mut().filter(|p| &p.name == replica).for_each(|p| p.isolated = on);
                    let isolated = list.iter().filter(|p| p.isolated).count();
                    prop_assert!(isolated <= cfg.max_isolated as usize, "{list:?}");
                    let serving = list.iter().filter(|p| p.ready && !p.isolated).count();
                    prop_assert!(!on || serving >= 1, "isolated the last serving pod: {list:?}");
                }
                // A restart replaces the pod: its replacement is neither isolated nor
                // ready yet.
                Action::Restart { replica, .. } => {
                    let list = pods.get_mut(key.as_deref().unwrap()).unwrap();
                    list.iter_mut().filter(|p| &p.name == replica).for_each(|p| {
                        p.isolated = false;
                        p.ready = false;
                    });
                }
                _ => {}
            }
            guard.record(&action, current, now);
        }
    }
}

#[test]
fn each_refusal_names_its_rule() {
    let mut guard = Guard::new(config()).unwrap();
    let scale = |s: &str, r: u32| Action::Scale {
        namespace: "prod".into(),
        service: s.into(),
        replicas: r,
    };
    assert_eq!(
        guard.check(&scale("api", 3), Some(2), 0.0),
        Verdict::Blocked {
            rule: Rule::Deny {
                entry: "prod/api".into()
            }
        }
    );
    assert_eq!(
        guard.check(&scale("web", 9), None, 0.0),
        Verdict::Blocked {
            rule: Rule::UnknownReplicas
        }
    );
    assert_eq!(
        guard.check(&scale("web", 30), Some(7), 0.0),
        Verdict::Adjusted {
            action: scale("web", 8),
            rules: vec![Rule::MaxStep { max_step: 2 }, Rule::MaxReplicas { max: 8 }],
        }
    );
    assert_eq!(
        guard.check(&scale("db", 0), Some(3), 0.0),
        Verdict::Adjusted {
            action: scale("db", 2),
            rules: vec![Rule::MaxStep { max_step: 2 }, Rule::MinReplicas { min: 2 }],
        }
    );
    guard.record(&scale("web", 8), Some(7), 0.0);
    let v = guard.check(&scale("web", 6), Some(8), 10.0);
    assert!(
        matches!(v, Verdict::Blocked { rule: Rule::Cooldown { remaining_s } } if remaining_s == 20.0),
        "{v:?}"
    );
    let restart = |s: &str| Action::Restart {
        namespace: "prod".into(),
        service: s.into(),
        replica: "x".into(),
    };
    guard.record(&restart("db"), None, 40.0);
    guard.record(&Action::Cordon { node: "n1".into() }, None, 50.0);
    let v = guard.check(&restart("web"), None, 60.0);
    assert!(
        matches!(
            v,
            Verdict::Blocked {
                rule: Rule::RateLimit { .. }
            }
        ),
        "{v:?}"
    );
    // The window slides: 120 s after the first disruption there is room again.
    assert!(guard.check(&restart("web"), None, 160.0).action().is_some());
    let bad = GuardConfig {
        min_replicas: 5,
        max_replicas: 2,
        ..GuardConfig::default()
    };
    assert_eq!(
        Guard::new(bad).err().unwrap().field,
        "guardrails.min_replicas"
    );
}

#[test]
fn isolations_keep_a_serving_replica_and_stay_under_the_limit() {
    let mut guard = Guard::new(config()).unwrap();
    let isolate = |pod: &str| Action::Isolate {
        namespace: "prod".into(),
        service: "web".into(),
        replica: pod.into(),
    };
    // Without a report of the service's pods, nothing is isolated.
    assert_eq!(
        guard.check(&isolate("web-0"), Some(2), 0.0),
        Verdict::Blocked {
            rule: Rule::UnknownPods
        }
    );
    let pod = |name: &str, ready: bool| ReplicaState {
        name: name.into(),
        node: None,
        phase: "running".into(),
        ready,
        restarts: 0,
        isolated: false,
    };
    // web-1 is not ready: isolating web-0 would leave no serving replica.
    let mut report = BTreeMap::new();
    report.insert(
        "prod/web".to_string(),
        vec![pod("web-0", true), pod("web-1", false)],
    );
    guard.observe(&report);
    assert_eq!(
        guard.check(&isolate("web-0"), Some(2), 0.0),
        Verdict::Blocked {
            rule: Rule::LastReplica
        }
    );
    assert!(
        guard
            .check(&isolate("web-1"), Some(2), 0.0)
            .action()
            .is_some()
    );
    // Three ready pods; one isolated (recorded before the next report): the limit
    // of one holds for the others.
    report.insert(
        "prod/web".to_string(),
        vec![pod("web-0", true), pod("web-1", true), pod("web-2", true)],
    );
    guard.observe(&report);
    assert!(
        guard
            .check(&isolate("web-0"), Some(3), 0.0)
            .action()
            .is_some()
    );
    guard.record(&isolate("web-0"), Some(3), 0.0);
    assert_eq!(
        guard.check(&isolate("web-1"), Some(3), 100.0),
        Verdict::Blocked {
            rule: Rule::MaxIsolated { max_isolated: 1 }
        }
    );
    // Released, it may isolate another.
    let release = Action::Release {
        namespace: "prod".into(),
        service: "web".into(),
        replica: "web-0".into(),
    };
    guard.record(&release, Some(3), 200.0);
    assert!(
        guard
            .check(&isolate("web-1"), Some(3), 300.0)
            .action()
            .is_some()
    );
}
