//! Cost-v0: the cloud it sets up (spot twins, reclaims, working sets), what each part
//! of the action does, the dollar reward, and bad configs named.

use hale_envs::cost::{COST_HOST_FEATURES, host_feature};
use hale_envs::{Cost, Env, EnvError, Value, check_env};
use hale_sim::{HostState, Lifecycle};
use serde_json::{Value as Json, json};

fn env(config: Json) -> Cost {
    Cost::new(&config).unwrap()
}

fn obs(v: &Value) -> &[f32] {
    match v {
        Value::Box(x) => x,
        other => panic!("{other:?}"),
    }
}

#[test]
fn it_passes_the_checker_and_replays_a_seed_exactly() {
    let config = json!({"episode_s": 600});
    let failures = check_env(&|| hale_envs::make("Cost-v0", &config), 20);
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn the_cloud_gets_a_spot_twin_reclaims_and_working_sets() {
    let mut e = env(json!({"spot_price": 0.3, "spot_notice_s": 30, "slack": 0.5}));
    e.reset(Some(1), None).unwrap();
    let sim = e.simulation().unwrap();
    let spec = &sim.scenario().spec;
    let twin = spec
        .host_types
        .iter()
        .find(|t| t.name == "m5.2xlarge-spot")
        .unwrap();
    assert_eq!(twin.lifecycle, Lifecycle::Spot);
    assert!((twin.price_per_hour - 0.3 * 0.384).abs() < 1e-12);
    let spot = spec.cluster.spot.as_ref().unwrap();
    assert_eq!(spot.notice_s, 30.0);
    assert!(spot.drain_on_notice);
    for s in &spec.services {
        assert_eq!(s.working_set(), 0.5 * s.memory_mib, "{}", s.name);
    }
    assert!(spec.cluster.autoscaler.is_some(), "the CA manages hosts");
}

#[test]
fn spot_provisioning_and_consolidation_cut_the_bill_and_the_reward_is_dollars() {
    let config = json!({"faults": false, "episode_s": 1800});
    let mut od = env(config.clone());
    let mut sp = env(config);
    let layout = od.layout().clone();
    od.reset(Some(3), None).unwrap();
    let (o, _) = sp.reset(Some(3), None).unwrap();
    let x = obs(&o);
    // Nine on-demand hosts, none spot, each at the on-demand price.
    for k in 0..9 {
        let h = &x[layout.host(k)..layout.host(k) + COST_HOST_FEATURES];
        assert_eq!(h[host_feature::PRESENT], 1.0);
        assert_eq!(h[host_feature::SPOT], 0.0);
        assert_eq!(h[host_feature::PRICE], 1.0);
    }
    assert_eq!(x[layout.host(9) + host_feature::PRESENT], 0.0);
    let (mut od_return, mut sp_return, mut od_bill, mut sp_bill) = (0.0, 0.0, 0.0, 0.0);
    let mut last = x.to_vec();
    loop {
        let a = od
            .step(&Value::MultiDiscrete(layout.action(false, None)))
            .unwrap();
        let c = a.info.cloud.as_ref().unwrap();
        assert!(
            (a.reward + c.cost + c.slo_violation_s / 60.0).abs() < 1e-9,
            "reward = −(bill + SLO minutes × 1.0)"
        );
        od_return += a.reward;
        od_bill += c.cost;
        // Consolidate the first ready on-demand host not yet going, on spot.
        let consolidate = (0..layout.host_slots).find(|&k| {
            let h = &last[layout.host(k)..layout.host(k) + COST_HOST_FEATURES];
            h[host_feature::PRESENT] == 1.0
                && h[host_feature::SPOT] == 0.0
                && h[host_feature::READY] == 1.0
                && h[host_feature::DISRUPTED] == 0.0
        });
        let b = sp
            .step(&Value::MultiDiscrete(layout.action(true, consolidate)))
            .unwrap();
        last = obs(&b.obs).to_vec();
        sp_return += b.reward;
        sp_bill += b.info.cloud.as_ref().unwrap().cost;
        if a.truncated {
            assert!(b.truncated);
            let info = b.info.cost.unwrap();
            assert_eq!(info.on_demand_hosts, 0, "every on-demand host went");
            assert!(info.spot_hosts >= 1);
            break;
        }
    }
    assert!(
        sp_bill < 0.6 * od_bill,
        "spot {sp_bill} vs on-demand {od_bill}"
    );
    assert!(od_return < 0.0 && sp_return < 0.0);
    let sim = sp.simulation().unwrap();
    assert!(sim.evictions() > 0, "consolidation moves replicas");
    assert!(
        sim.hosts()
            .iter()
            .filter(|h| h.state != HostState::Removed)
            .all(|h| h.lifecycle == Lifecycle::Spot)
    );
}

#[test]
fn right_sizing_memory_below_the_working_set_ends_in_oom_kills() {
    let config = json!({"faults": false, "episode_s": 300, "slack": 0.1});
    let mut e = env(config);
    let layout = e.layout().clone();
    e.reset(Some(5), None).unwrap();
    // Memory level 0 (a quarter of the request): the limit, half the request, is
    // under a working set of 90 % of it.
    let mut a = layout.action(false, None);
    for s in 0..layout.services {
        a[2 + s] = 0;
    }
    let mut kills = 0;
    for _ in 0..5 {
        let step = e.step(&Value::MultiDiscrete(a.clone())).unwrap();
        kills += step.info.cost.as_ref().unwrap().oom_kills;
    }
    assert!(kills >= layout.services as u64, "{kills} OOM kills");
    let sim = e.simulation().unwrap();
    assert_eq!(sim.oom_kills(), kills);
    // The observation shows the crashes and the smaller request.
    let o = e.step(&Value::MultiDiscrete(a)).unwrap().obs;
    let x = obs(&o);
    let f = hale_envs::cost::COST_SERVICE_FEATURES;
    assert_eq!(x[hale_envs::encoding::SERVICE_FEATURES + 1], 0.25);
    assert!(
        (0..layout.services).any(|s| x[s * f + hale_envs::encoding::SERVICE_FEATURES + 3] > 0.0)
    );
}

#[test]
fn bad_configs_name_their_field() {
    for (config, field) in [
        (json!({"spot_price": 0.0}), "spot_price"),
        (json!({"spot_price": 1.5}), "spot_price"),
        (json!({"spot_lifetime_s": 0}), "spot_lifetime_s"),
        (json!({"spot_notice_s": -1}), "spot_notice_s"),
        (json!({"slack": 1.0}), "slack"),
        (json!({"memory_levels": [0.5]}), "memory_levels"),
        (json!({"cpu_levels": [1.0, -0.5]}), "cpu_levels"),
        (json!({"host_slots": 0}), "host_slots"),
        (json!({"control_interval_s": 0}), "control_interval_s"),
        (json!({"spot": true}), "config"),
    ] {
        match Cost::new(&config) {
            Err(EnvError::Config {
                field: f, reason, ..
            }) => {
                assert_eq!(f, field, "{config}: {reason}")
            }
            Err(other) => panic!("{config}: {other}"),
            Ok(_) => panic!("{config} was accepted"),
        }
    }
    // A consolidation of an empty slot is refused in info, not an error.
    let mut e = env(json!({"episode_s": 60}));
    let layout = e.layout().clone();
    e.reset(Some(1), None).unwrap();
    let step = e
        .step(&Value::MultiDiscrete(layout.action(false, Some(20))))
        .unwrap();
    let info = step.info.cost.unwrap();
    assert!(info.cost_refused.unwrap().contains("slot 20"));
    assert_eq!(info.consolidations, 0);
}
