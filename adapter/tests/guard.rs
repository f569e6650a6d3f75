//! The guardrails hold whatever the policy proposes.

use hale_adapter::action::Action;
use hale_adapter::guard::{Bounds, Guard, GuardConfig, Rule, Verdict};
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
    }
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
        svc.clone().prop_map(|s| Action::Restart {
            namespace: "prod".into(),
            service: s.into(),
            replica: format!("{s}-0"),
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
    ) {
        let cfg = config();
        let mut guard = Guard::new(cfg.clone()).unwrap();
        let mut replicas: BTreeMap<&str, u32> = SERVICES.iter().copied().zip(start).collect();
        let mut last: BTreeMap<String, f64> = BTreeMap::new();
        let mut disruptive: Vec<f64> = Vec::new();
        let mut now = 0.0;
        for (proposed, dt) in steps {
            now += dt;
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
