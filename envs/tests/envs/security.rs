//! Security-v0 in cloud mode: the layout of actions and observations, what each
//! action does to the simulated cloud, the reward's parts, bad configs.

use hale_envs::intrusion::{Act, REPLICA_FEATURES, SERVICE_FEATURES};
use hale_envs::{Env, Security, Value};
use hale_sim::{Privilege, ReplicaState};
use serde_json::json;

fn env(red: &str) -> Security {
    Security::new(&json!({"scenario": "microservices-20", "red": red})).unwrap()
}

#[test]
fn the_layout_covers_every_replica_service_entry_and_edge() {
    let mut e = env("b_line");
    let l = e.cloud_layout().unwrap();
    // microservices-20: 39 replicas, 20 services, 3 entries; its calls.
    assert_eq!((l.replicas, l.services, l.entries), (39, 20, 3));
    assert_eq!(
        e.observation_space().flat_dim(),
        Some(39 * REPLICA_FEATURES + 20 * SERVICE_FEATURES + l.edges + 1)
    );
    assert_eq!(
        e.action_space(),
        &hale_envs::Space::Discrete {
            n: l.actions() as u64
        }
    );
    assert_eq!(l.decode(0), Some(Act::Noop));
    assert_eq!(l.decode(1 + 39 + 3), Some(Act::Isolate(3)));
    assert_eq!(l.decode(l.actions() - 1), Some(Act::Cut(l.edges - 1)));
    assert_eq!(l.decode(l.actions()), None);
    e.reset(Some(1), None).unwrap();
    let sim = e.simulation().unwrap();
    // Slots follow the scenario's order: the first two are home-timeline's.
    for k in 0..39 {
        let r = e.slot_replica(k).unwrap();
        assert!(sim.replicas()[r].state.is_serving());
    }
    assert_eq!(sim.replicas()[e.slot_replica(1).unwrap()].service, 0);
    assert_eq!(sim.replicas()[e.slot_replica(2).unwrap()].service, 1);
}

#[test]
fn actions_do_what_they_say_and_the_mask_follows() {
    let mut e = env("sleep");
    let l = e.cloud_layout().unwrap();
    e.reset(Some(2), None).unwrap();
    let r5 = e.slot_replica(5).unwrap();
    // Restore slot 5: the replica restarts (a defender restart costs 1).
    let s = e
        .step(&Value::Discrete((1 + 2 * l.replicas + 5) as i64))
        .unwrap();
    let i = s.info.security.unwrap();
    assert_eq!(i.reward_action_cost, -1.0);
    assert_eq!(i.restarts, 1);
    assert_eq!(e.simulation().unwrap().replicas()[r5].restarts, 1);
    // Isolate slot 6, then release it: the same action toggles.
    let r6 = e.slot_replica(6).unwrap();
    let isolate = Value::Discrete((1 + l.replicas + 6) as i64);
    let s = e.step(&isolate).unwrap();
    assert!(e.simulation().unwrap().replicas()[r6].isolated);
    assert_eq!(s.obs.as_box()[6 * REPLICA_FEATURES + 7], 1.0);
    e.step(&isolate).unwrap();
    assert!(!e.simulation().unwrap().replicas()[r6].isolated);
    // A decoy per service at most: the mask closes.
    let decoy = 1 + 3 * l.replicas + l.services + 4;
    assert!(e.action_mask().unwrap()[decoy]);
    let s = e.step(&Value::Discrete(decoy as i64)).unwrap();
    assert!(!e.action_mask().unwrap()[decoy]);
    assert_eq!(
        s.obs.as_box()[l.replicas * REPLICA_FEATURES + 4 * SERVICE_FEATURES + 2],
        1.0
    );
    assert!(e.step(&Value::Discrete(decoy as i64)).is_err(), "masked");
    // Cut the last edge: its bit is set, and calls along it fail.
    let cut = l.actions() - 1;
    let s = e.step(&Value::Discrete(cut as i64)).unwrap();
    let base = l.replicas * REPLICA_FEATURES + l.services * SERVICE_FEATURES;
    assert_eq!(s.obs.as_box()[base + l.edges - 1], 1.0);
}

#[test]
fn the_reward_is_its_parts_and_an_analysis_tells_the_truth() {
    let mut e = env("b_line");
    let l = e.cloud_layout().unwrap();
    e.reset(Some(3), None).unwrap();
    let mut analysed = None;
    for _ in 0..100 {
        // Analyse the first slot the attacker holds, once.
        let sim = e.simulation().unwrap();
        let sec = sim.security().unwrap();
        let held =
            (0..l.replicas).find(|&k| sec.foothold(e.slot_replica(k).unwrap()) != Privilege::None);
        let a = match (analysed, held) {
            (None, Some(k)) => {
                analysed = Some(k);
                1 + k
            }
            _ => 0,
        };
        let s = e.step(&Value::Discrete(a as i64)).unwrap();
        let i = s.info.security.as_ref().unwrap();
        let sum =
            i.reward_confidentiality + i.reward_availability + i.reward_action_cost + i.reward_slo;
        assert!((sum - s.reward).abs() < 1e-9);
        assert!(s.info.cloud.is_some(), "the cloud's figures are there too");
        if s.truncated {
            break;
        }
    }
    let k = analysed.expect("B_line gets in");
    let r = e.slot_replica(k).unwrap();
    let sim = e.simulation().unwrap();
    let sec = sim.security().unwrap();
    // Unless the replica restarted since, the analysis said user or root.
    if sim.replicas()[r].restarts == 0 {
        assert!(matches!(
            sec.revealed(r),
            Some(Privilege::User | Privilege::Root)
        ));
    }
}

#[test]
fn bad_cloud_configs_are_named() {
    for (config, field) in [
        (
            json!({"scenario": "microservices-20", "step_s": -1.0}),
            "step_s",
        ),
        (
            json!({"scenario": "microservices-20", "slo_weight": -1.0}),
            "slo_weight",
        ),
        (json!({"scenario": "three-tier"}), "scenario"),
        (json!({"scenario": "no/such.toml"}), "scenario"),
        (
            json!({"scenario": "microservices-20", "fidelity": "exact"}),
            "config",
        ),
        (json!({"observation": "matrix"}), "observation"),
        (
            json!({"scenario": "microservices-20", "restart_cost": -0.5}),
            "restart_cost",
        ),
        (json!({"restart_cost": 2.0}), "restart_cost"),
    ] {
        let e = Security::new(&config).err().unwrap().to_string();
        assert!(e.contains(field), "{config}: {e}");
    }
}

#[test]
fn replicas_down_show_in_the_observation() {
    let mut e = env("sleep");
    let l = e.cloud_layout().unwrap();
    e.reset(Some(4), None).unwrap();
    let restore = |k: usize| Value::Discrete((1 + 2 * l.replicas + k) as i64);
    // A restart takes longer than no time: right after the action the slot is down.
    let s = e.step(&restore(0)).unwrap();
    let r = e.slot_replica(0).unwrap();
    let down = s.obs.as_box()[REPLICA_FEATURES - 1];
    let booting = e.simulation().unwrap().replicas()[r].state == ReplicaState::Booting;
    assert_eq!(down == 1.0, booting);
}

/// `restart_cost` weighs the restarts the defender causes and nothing else: the same
/// restores on the same seed play the same episode, with the action-cost term scaled.
#[test]
fn restart_cost_scales_the_restart_term_only() {
    let play = |cost: f64| {
        let mut e = Security::new(
            &json!({"scenario": "microservices-20", "red": "b_line", "restart_cost": cost}),
        )
        .unwrap();
        let l = e.cloud_layout().unwrap();
        e.reset(Some(9), None).unwrap();
        let mut terms = vec![];
        for t in 0..40 {
            let a = if t % 3 == 0 {
                1 + 2 * l.replicas + t % l.replicas
            } else {
                0
            };
            let s = e.step(&Value::Discrete(a as i64)).unwrap();
            let i = s.info.security.unwrap();
            terms.push([
                i.reward_confidentiality,
                i.reward_availability,
                i.reward_action_cost,
                i.reward_slo,
                s.reward,
                f64::from(i.restarts),
            ]);
        }
        terms
    };
    let (one, three) = (play(1.0), play(3.0));
    let restarts: f64 = one.iter().map(|t| -t[2]).sum();
    assert!(restarts >= 10.0, "the restores cost: {restarts}");
    for (a, b) in one.iter().zip(&three) {
        assert_eq!(a[..2], b[..2]);
        assert_eq!(a[3], b[3]);
        assert_eq!(3.0 * a[2], b[2]);
        assert_eq!(a[5], b[5], "the same restarts");
        assert_eq!(a[5], -a[2]);
        assert!((b[4] - (a[4] + 2.0 * a[2])).abs() < 1e-9);
    }
}
