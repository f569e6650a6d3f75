//! Scaling-v0 and Healing-v0.

use hale_envs::{Env, Value, make};
use serde_json::{Value as Json, json};

/// Total reward and summed info terms of a static Scaling-v0 policy.
fn static_policy(config: &Json, replicas: i64, seed: u64) -> (f64, f64, f64, f64) {
    let mut env = make("Scaling-v0", config).unwrap();
    env.reset(Some(seed), None).unwrap();
    let n = match env.action_space() {
        hale_envs::Space::MultiDiscrete { nvec } => nvec.len(),
        _ => unreachable!(),
    };
    // Target actions: value k means min_replicas (1) + k.
    let action = Value::MultiDiscrete(vec![replicas - 1; n]);
    let (mut total, mut cost, mut slo, mut dropped) = (0.0, 0.0, 0.0, 0.0);
    loop {
        let s = env.step(&action).unwrap();
        total += s.reward;
        let terms = s.info.scaling.as_ref().unwrap();
        cost += terms.relative_replica_cost;
        slo += terms.slo_violation_fraction;
        dropped += terms.dropped_fraction;
        assert!(!s.terminated);
        if s.truncated {
            return (total, cost, slo, dropped);
        }
    }
}

#[test]
fn reward_ranks_too_few_and_far_too_many_replicas_below_enough() {
    // three-tier without faults, 20 minutes: one replica per service cannot carry the
    // diurnal load (api needs ≥ 2 at its trough), twelve per service cost 4× the
    // initial sizing, three per service is about right.
    let config = json!({"scenario": "three-tier", "action": "target", "episode_s": 1200, "faults": false, "max_replicas": 12});
    let few = static_policy(&config, 1, 5);
    let enough = static_policy(&config, 3, 5);
    let many = static_policy(&config, 12, 5);
    eprintln!("reward, cost, slo, dropped: few {few:?}, enough {enough:?}, many {many:?}");
    assert!(
        few.2 > enough.2 + 1.0,
        "too few replicas violate the SLO more"
    );
    assert!(many.1 > 2.0 * enough.1, "far too many cost more");
    assert!(
        enough.0 > few.0 && enough.0 > many.0,
        "the reward ranks them"
    );
}

#[test]
fn scaling_episode_is_bit_identical_for_one_seed() {
    let config = json!({"episode_s": 600});
    let run = || {
        let mut env = make("Scaling-v0", &config).unwrap();
        let mut trace = vec![format!("{:?}", env.reset(Some(9), None).unwrap().0)];
        let mut t = 0i64;
        loop {
            let a = Value::MultiDiscrete((0..20).map(|i| (t + i) % 5).collect());
            let s = env.step(&a).unwrap();
            trace.push(format!(
                "{:?} {} {}",
                s.obs,
                s.reward.to_bits(),
                s.truncated
            ));
            t += 1;
            if s.truncated {
                return trace;
            }
        }
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 21); // reset + 600 s / 30 s
    assert_eq!(a, b);
}

#[test]
fn scaling_graph_observation_is_the_resource_graph() {
    let mut env = make(
        "Scaling-v0",
        &json!({"scenario": "three-tier", "observation": "graph"}),
    )
    .unwrap();
    let (obs, _) = env.reset(Some(1), None).unwrap();
    let Value::Graph(g) = &obs else {
        panic!("{obs:?}")
    };
    // 2 zones + 4 hosts + 3 services + 7 replicas.
    assert_eq!(g.nodes.len() / (g.nodes.len() / 16), 16);
    assert!(env.observation_space().contains(&obs));
    assert_eq!(
        g.links.len(),
        4 + 7 + 7 + 2,
        "contains + runs + owns + calls"
    );
}

#[test]
fn healing_masks_and_reports_time_to_recovery() {
    let mut env = make("Healing-v0", &json!({"fault_mix_mtbf_s": 300})).unwrap();
    env.reset(Some(2), None).unwrap();
    let mask = env.action_mask().unwrap().to_vec();
    assert!(mask[0], "no-op is always allowed");
    let rollback = 1 + 2 * 16; // no previous revision yet: rollbacks are masked
    assert!(!mask[rollback]);
    let err = env
        .step(&Value::Discrete(rollback as i64))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("action {rollback} is masked out")),
        "{err}"
    );
    // A healer that restarts the first visibly unhealthy replica and rolls back bad
    // deploys resolves faults; info reports each time to recovery.
    let mut ttr: Vec<f64> = vec![];
    for _ in 0..360 {
        let mask = env.action_mask().unwrap().to_vec();
        let a = (1 + 2 * 16..1 + 2 * 16 + 3).find(|&i| mask[i]).unwrap_or(0);
        let s = env.step(&Value::Discrete(a as i64)).unwrap();
        ttr.extend(&s.info.cloud.as_ref().unwrap().ttr_s);
        if s.truncated {
            break;
        }
    }
    assert!(!ttr.is_empty(), "rollbacks resolve bad deploys");
}

#[test]
fn healing_graph_nodes_line_up_with_action_slots() {
    let mut env = make("Healing-v0", &json!({"observation": "graph"})).unwrap();
    let (obs, _) = env.reset(Some(4), None).unwrap();
    let Value::Graph(g) = &obs else {
        panic!("{obs:?}")
    };
    assert!(env.observation_space().contains(&obs));
    // three-tier: 2 zones, 4 hosts, 3 services, then the 7 replicas in slot order;
    // node features start with the kind one-hot (zone, host, service, replica).
    let f = g.nodes.len() / 16;
    for k in 0..7 {
        assert_eq!(
            g.nodes[(2 + 4 + 3 + k) * f + 3],
            1.0,
            "node of replica slot {k} is a replica"
        );
    }
    for h in 0..4 {
        assert_eq!(
            g.nodes[(2 + h) * f + 1],
            1.0,
            "node of host slot {h} is a host"
        );
    }
}

/// Random and extreme target actions on the fluid model: every observation stays
/// finite and inside the observation space, every reward finite.
#[test]
fn scaling_observations_stay_finite_under_random_actions() {
    let config = json!({
        "fidelity": "fluid", "fluid_tick_s": 15.0, "control_interval_s": 15.0,
        "action": "target", "episode_s": 3600.0
    });
    let mut rng = hale_sim::rng::Stream::from_key(7);
    for seed in 0..40 {
        let mut env = make("Scaling-v0", &config).unwrap();
        let (mut obs, _) = env.reset(Some(seed), None).unwrap();
        for t in 0.. {
            let bad = obs.as_box().iter().position(|x| !x.is_finite());
            assert_eq!(bad, None, "seed {seed}, step {t}: {:?}", &obs.as_box());
            assert!(
                env.observation_space().contains(&obs),
                "seed {seed}, step {t}"
            );
            let a = match seed % 5 {
                0 => env.action_space().sample(&mut rng, env.action_mask()),
                1 => hale_envs::Value::MultiDiscrete(vec![19; 20]),
                2 => hale_envs::Value::MultiDiscrete(vec![0; 20]),
                3 => hale_envs::Value::MultiDiscrete(vec![if t % 2 == 0 { 19 } else { 0 }; 20]),
                // Overloaded at two replicas, then cut to one: the queued backlog
                // exceeds the smaller queue capacity.
                _ => hale_envs::Value::MultiDiscrete(vec![i64::from((t / 10) % 2 == 0); 20]),
            };
            let s = env.step(&a).unwrap();
            assert!(s.reward.is_finite(), "seed {seed}, step {t}");
            obs = s.obs;
            if s.truncated {
                break;
            }
        }
    }
}

/// The live encoding (what the adapter builds from Prometheus) is the env's own
/// observation when fed the simulator's readings.
#[test]
fn live_encoding_reproduces_the_scaling_observation() {
    let config = json!({"scenario": "three-tier", "fidelity": "fluid", "max_replicas": 12});
    let mut env = hale_envs::Scaling::new(&config).unwrap();
    env.reset(Some(3), None).unwrap();
    let mut obs = Value::Box(vec![]);
    for _ in 0..5 {
        obs = env.step(&Value::MultiDiscrete(vec![3, 2, 2])).unwrap().obs;
    }
    let live = env.observation_encoding();
    assert_eq!(live.services.len(), 3);
    assert_eq!(live.max_replicas, 12.0);
    let snap = env.simulation().unwrap().observe().unwrap();
    let readings: Vec<hale_envs::encoding::ServiceReading> =
        snap.services.iter().map(Into::into).collect();
    assert!(readings.iter().any(|r| r.request_rate > 0.0));
    assert_eq!(Value::Box(live.encode(&readings).unwrap()), obs);
    assert!(live.encode(&readings[..2]).is_err());
}

/// CPU used is the work done: on three-tier without faults, the frontend's core-seconds
/// are its requests × their mean demand (2 ms) × a slot's share of the replica's cores
/// (0.5 cores over 32 slots); requested core-seconds are the replicas' cores × time.
#[test]
fn cpu_usage_is_the_work_done_and_requested_is_cores_times_time() {
    let config =
        json!({"scenario": "three-tier", "action": "target", "episode_s": 1200, "faults": false});
    let mut env = make("Scaling-v0", &config).unwrap();
    env.reset(Some(3), None).unwrap();
    let action = Value::MultiDiscrete(vec![2; 3]); // three replicas each
    let (mut requests, mut used, mut requested, mut mem_used, mut mem_requested) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    loop {
        let s = env.step(&action).unwrap();
        let c = s.info.cloud.as_ref().unwrap();
        assert_eq!(c.usage.cpu_used_core_s.len(), 3);
        requests += c.requests;
        used += c.usage.cpu_used_core_s[0];
        requested += c.usage.cpu_requested_core_s[0];
        mem_used += c.usage.memory_used_mib_s.iter().sum::<f64>();
        mem_requested += c.usage.memory_requested_mib_s.iter().sum::<f64>();
        if s.truncated {
            break;
        }
    }
    let expected = requests * 0.002 * 0.5 / 32.0;
    assert!(
        (used / expected - 1.0).abs() < 0.01,
        "used {used} core-s, expected {expected}"
    );
    assert!((requested - 3.0 * 0.5 * 1200.0).abs() < 1e-6, "{requested}");
    // No leaks: memory in use is exactly what is requested.
    assert!((mem_used - mem_requested).abs() < 1e-6 * mem_requested);
    let slack = 1.0 - used / requested;
    assert!(slack > 0.5 && slack < 1.0, "{slack}");
}

/// With `reward = "dollars"`, the return is minus the episode's bill and its priced
/// SLO minutes, to the last rounding error.
#[test]
fn the_dollar_reward_is_the_bill_plus_priced_slo_minutes() {
    let config = json!({"scenario": "three-tier", "action": "target", "episode_s": 1800, "reward": "dollars", "slo_minute_price": 2.5});
    let mut env = make("Scaling-v0", &config).unwrap();
    env.reset(Some(4), None).unwrap();
    let (mut ret, mut bill, mut slo_min) = (0.0, 0.0, 0.0);
    for t in 0.. {
        // One replica each, then three: SLO minutes and a bill that moves.
        let k = if t < 40 { 0 } else { 2 };
        let s = env.step(&Value::MultiDiscrete(vec![k; 3])).unwrap();
        let c = s.info.cloud.as_ref().unwrap();
        ret += s.reward;
        bill += c.cost;
        slo_min += c.slo_violation_s / 60.0;
        if s.truncated {
            break;
        }
    }
    assert!(
        bill > 0.0 && slo_min > 0.0,
        "bill {bill}, SLO minutes {slo_min}"
    );
    let want = -(bill + 2.5 * slo_min);
    assert!((ret - want).abs() < 1e-9 * want.abs(), "{ret} vs {want}");
}

/// Per-episode randomisation: the load factor is drawn from the episode's seed, within
/// its range; the same seed gives the same episode; a bad range names its field.
#[test]
fn randomised_load_is_drawn_per_episode_from_the_seed() {
    let arrivals = |randomize: Json, seed: u64| {
        let config = json!({"scenario": "three-tier", "action": "target", "episode_s": 600, "faults": false, "randomize": randomize});
        let mut env = make("Scaling-v0", &config).unwrap();
        env.reset(Some(seed), None).unwrap();
        let mut n = 0.0;
        loop {
            let s = env.step(&Value::MultiDiscrete(vec![4; 3])).unwrap();
            n += s.info.cloud.as_ref().unwrap().requests;
            if s.truncated {
                return n;
            }
        }
    };
    let ranged = json!({"load": [0.5, 2.0]});
    let ratios: Vec<f64> = (0..4)
        .map(|seed| arrivals(ranged.clone(), seed) / arrivals(json!({}), seed))
        .collect();
    for r in &ratios {
        assert!((0.49..=2.01).contains(r), "{ratios:?}");
    }
    let spread = ratios.iter().cloned().fold(f64::MIN, f64::max)
        - ratios.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 0.1, "the factor moves with the seed: {ratios:?}");
    assert_eq!(arrivals(ranged.clone(), 2), arrivals(ranged, 2));

    let e = make(
        "Scaling-v0",
        &json!({"randomize": {"boot_time": [2.0, 1.0]}}),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("randomize.boot_time"), "{e}");
}

/// A restart costs its fixed price times `remedy_penalty`, plus `disruption_weight` ×
/// the capacity it takes: three-tier's first replica (a frontend, one of two serving,
/// restart 5 s) out for 5 s of a 10 s step is a quarter of the service's capacity.
#[test]
fn a_remedy_pays_its_penalty_and_the_capacity_it_takes() {
    let config = json!({"fault_mix": false, "episode_s": 60, "remedy_penalty": 2.0, "disruption_weight": 0.5});
    let mut env = make("Healing-v0", &config).unwrap();
    env.reset(Some(1), None).unwrap();
    let s = env.step(&Value::Discrete(1)).unwrap();
    let h = s.info.healing.as_ref().unwrap();
    assert_eq!(h.remedy, "restart");
    let want = 2.0 * 0.01 + 0.5 * (5.0 / 10.0) / 2.0;
    assert!(
        (h.remedy_cost - want).abs() < 1e-12,
        "{} vs {want}",
        h.remedy_cost
    );
    let e = make("Healing-v0", &json!({"disruption_weight": -1.0}))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("disruption_weight"), "{e}");
}

/// Vertical sizing: half the CPU request per replica halves the cores requested,
/// leaves the CPU-seconds the same work uses unchanged (the work runs slower on fewer
/// cores), and raises latency; the baselines' level (1.0) changes
/// nothing. Bad levels name their field.
#[test]
fn cpu_levels_resize_requests_without_changing_the_work() {
    let run = |level: i64| {
        let config = json!({"scenario": "three-tier", "action": "target", "episode_s": 900,
            "faults": false, "cpu_levels": [0.5, 1.0]});
        let mut env = make("Scaling-v0", &config).unwrap();
        assert_eq!(
            env.action_space(),
            &hale_envs::Space::MultiDiscrete {
                nvec: [vec![20; 3], vec![2; 3]].concat()
            }
        );
        env.reset(Some(3), None).unwrap();
        let action = Value::MultiDiscrete([vec![2; 3], vec![level; 3]].concat());
        let (mut requests, mut used, mut requested, mut changes, mut p95) = (0.0, 0.0, 0.0, 0, 0.0);
        for t in 0.. {
            let s = env.step(&action).unwrap();
            let c = s.info.cloud.as_ref().unwrap();
            changes += s.info.scaling.as_ref().unwrap().scaling_changes;
            // Past the resize time (the scenario's default), the new size holds.
            if t >= 4 {
                requests += c.requests - c.unserved;
                used += c.usage.cpu_used_core_s.iter().sum::<f64>();
                requested += c.usage.cpu_requested_core_s.iter().sum::<f64>();
                p95 += c.p95_ms.unwrap_or(0.0);
            }
            if s.truncated {
                break;
            }
        }
        (used / requests, requested, changes, p95)
    };
    let (work_full, requested_full, changes_full, p95_full) = run(1);
    let (work_half, requested_half, changes_half, p95_half) = run(0);
    assert!(
        (requested_half / requested_full - 0.5).abs() < 1e-9,
        "{requested_half} vs {requested_full}"
    );
    assert!(
        (work_half / work_full - 1.0).abs() < 0.02,
        "CPU-seconds per served request {work_half} vs {work_full}"
    );
    assert!(p95_half > p95_full, "p95 {p95_half} vs {p95_full}");
    // Two services start with two replicas (the third with three): two changes at the
    // first step; the half size adds three resizes.
    assert_eq!((changes_full, changes_half), (2, 5));

    for (levels, says) in [
        (json!([0.5]), "must include 1.0"),
        (json!([0.0, 1.0]), "positive factor"),
        (json!([1.0, 100.0]), "more than the largest host type"),
    ] {
        let err = make(
            "Scaling-v0",
            &json!({"scenario": "three-tier", "cpu_levels": levels}),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("cpu_levels") && err.contains(says), "{err}");
    }
}

/// `features = "v2"`: the v1 features first, unchanged, then the rate's 5-minute
/// trend (rising with three-tier's diurnal load, falling after its peak), pending
/// replicas and the CPU size.
#[test]
fn v2_features_extend_v1_with_trend_pending_and_size() {
    let base = json!({"scenario": "three-tier", "action": "target", "episode_s": 2400,
        "control_interval_s": 15, "faults": false, "fidelity": "fluid", "cpu_levels": [0.5, 1.0]});
    let mut v2_config = base.clone();
    v2_config["features"] = json!("v2");
    let mut v1 = make("Scaling-v0", &base).unwrap();
    let mut v2 = make("Scaling-v0", &v2_config).unwrap();
    let (n, f) = (3, hale_envs::encoding::SERVICE_FEATURES);
    let lead = hale_envs::encoding::LEAD_FEATURES;
    match v2.observation_space() {
        hale_envs::Space::Box { shape, .. } => assert_eq!(shape, &vec![n, f + lead]),
        other => panic!("{other:?}"),
    }
    v1.reset(Some(9), None).unwrap();
    v2.reset(Some(9), None).unwrap();
    use hale_envs::encoding::lead::{CPU_SIZE, PENDING, RATE_TREND};
    let (mut rising, mut falling) = (vec![], vec![]);
    for t in 0..160 {
        // Twenty api replicas at first (more than the hosts hold: some wait), the
        // frontend at half its CPU; then three of each at full size.
        let action = if t < 8 {
            vec![1, 19, 1, 0, 1, 1]
        } else {
            vec![2, 2, 2, 1, 1, 1]
        };
        let a = v1.step(&Value::MultiDiscrete(action.clone())).unwrap();
        let b = v2.step(&Value::MultiDiscrete(action)).unwrap();
        let (Value::Box(x), Value::Box(y)) = (&a.obs, &b.obs) else {
            panic!()
        };
        for s in 0..n {
            assert_eq!(
                &x[s * f..(s + 1) * f],
                &y[s * (f + lead)..s * (f + lead) + f]
            );
        }
        let row = |s: usize| &y[s * (f + lead)..(s + 1) * (f + lead)];
        if t == 1 {
            assert!(
                row(1)[PENDING] > 0.0,
                "api replicas wait for hosts: {:?}",
                row(1)
            );
        }
        if (4..8).contains(&t) {
            assert_eq!(row(0)[CPU_SIZE], 0.5, "{:?}", row(0));
            assert_eq!(row(1)[CPU_SIZE], 1.0);
        }
        let minute = (t + 1) as f64 * 15.0 / 60.0;
        if (6.0..14.0).contains(&minute) {
            rising.push(row(0)[RATE_TREND]);
        }
        if (22.0..36.0).contains(&minute) {
            falling.push(row(0)[RATE_TREND]);
        }
        assert!(y.iter().all(|v| v.is_finite()));
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(
        mean(&rising) > 0.02 && mean(&falling) < -0.02,
        "trend while the load rises {} and falls {}",
        mean(&rising),
        mean(&falling)
    );
    let err = make(
        "Scaling-v0",
        &json!({"features": "v2", "observation": "graph"}),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("features"), "{err}");
}

/// Reward weights and the SLO-minute price are checked up front, naming the field.
#[test]
fn negative_or_nan_weights_and_prices_are_refused() {
    for (field, bad) in [
        ("slo_minute_price", json!(-1.0)),
        ("cost_weight", json!(-0.5)),
        ("drop_weight", json!(-10.0)),
    ] {
        let mut config = json!({"scenario": "three-tier"});
        config[field] = bad;
        let err = make("Scaling-v0", &config).err().unwrap().to_string();
        assert!(err.contains(field) && err.contains("≥ 0"), "{err}");
    }
}

/// A step after the episode's last one is refused until `reset`, as Gymnasium
/// requires, for both cloud envs.
#[test]
fn stepping_past_the_end_needs_a_reset() {
    for (id, action) in [
        ("Scaling-v0", Value::MultiDiscrete(vec![0; 3])),
        ("Healing-v0", Value::Discrete(0)),
    ] {
        let config = json!({"scenario": "three-tier", "episode_s": 120, "fidelity": "fluid"});
        let mut env = make(id, &config).unwrap();
        env.reset(Some(1), None).unwrap();
        let mut ended = false;
        for _ in 0..100 {
            let s = env.step(&action).unwrap();
            if s.truncated || s.terminated {
                ended = true;
                break;
            }
        }
        assert!(ended, "{id}");
        let err = env.step(&action).err().unwrap().to_string();
        assert!(
            err.contains("ended") && err.contains("reset"),
            "{id}: {err}"
        );
        env.reset(Some(2), None).unwrap();
        env.step(&action).unwrap();
    }
}
