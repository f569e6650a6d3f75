//! CloudOps-v0: PettingZoo's parallel rules, the team reward's terms and the conflict
//! ledger, kind by kind, on scripted joint actions.

use hale_envs::{AgentMap, CloudOps, ParallelEnv, Value, check_parallel_env, make_parallel};
use serde_json::{Value as Json, json};

fn env(config: Json) -> CloudOps {
    CloudOps::new(&config).unwrap()
}

/// Everyone does nothing, except what `overrides` says.
fn joint(env: &CloudOps, overrides: &[(&str, Value)]) -> AgentMap<Value> {
    let mut a: AgentMap<Value> = env
        .agents()
        .iter()
        .map(|agent| {
            let v = match env.action_space(agent).unwrap() {
                _ if agent == "optimiser" => {
                    Value::MultiDiscrete(env.optimiser_layout().unwrap().action(false, None))
                }
                hale_envs::Space::MultiDiscrete { nvec } => {
                    Value::MultiDiscrete(vec![2; nvec.len()])
                }
                _ => Value::Discrete(0),
            };
            (agent.clone(), v)
        })
        .collect();
    for (agent, v) in overrides {
        a.insert(agent.to_string(), v.clone());
    }
    a
}

fn ledger(step: &hale_envs::MultiStep, agent: &str) -> hale_envs::CloudOpsInfo {
    step.infos[agent].cloudops.clone().unwrap()
}

/// The healer's slot holding replica `r`.
fn healer_slot(env: &CloudOps, r: usize) -> usize {
    (0..64).find(|&k| env.healer_slot(k) == Some(r)).unwrap()
}

#[test]
fn every_subset_of_agents_passes_the_parallel_checker() {
    for agents in [
        json!(["scaler", "healer", "defender"]),
        json!(["scaler"]),
        json!(["healer"]),
        json!(["defender"]),
        json!(["defender", "scaler"]),
        json!(["scaler", "healer", "defender", "optimiser"]),
        json!(["optimiser"]),
        json!(["optimiser", "scaler"]),
    ] {
        let config = json!({"agents": agents, "max_steps": 12});
        let failures = check_parallel_env(&|| make_parallel("CloudOps-v0", &config), 30);
        assert!(failures.is_empty(), "{agents}: {failures:?}");
    }
    // With graph views (a GNN per agent): the scaler, healer and defender observe
    // graphs in their spaces, the optimiser its matrix; the state stays flat.
    let config = json!({
        "agents": ["scaler", "healer", "defender", "optimiser"], "max_steps": 12,
        "observation": "graph",
    });
    let failures = check_parallel_env(&|| make_parallel("CloudOps-v0", &config), 30);
    assert!(failures.is_empty(), "graph views: {failures:?}");
    let mut e = env(config);
    let (obs, _) = e.reset(Some(4), None).unwrap();
    for (agent, o) in &obs {
        let graph = matches!(o, Value::Graph(_));
        assert_eq!(graph, agent != "optimiser", "{agent}");
        assert!(e.observation_space(agent).unwrap().contains(o), "{agent}");
    }
    assert!(matches!(e.state().unwrap(), Value::Box(_)));
}

#[test]
fn agents_come_in_a_fixed_order_and_leave_together_at_the_time_limit() {
    let mut e = env(json!({"agents": ["defender", "scaler", "healer"], "max_steps": 3}));
    assert_eq!(e.possible_agents(), ["scaler", "healer", "defender"]);
    assert!(e.agents().is_empty(), "no one is alive before reset");
    e.reset(Some(1), None).unwrap();
    assert_eq!(e.agents(), e.possible_agents());
    for i in 0..3 {
        let s = e.step(&joint(&e, &[])).unwrap();
        assert!(s.truncations.values().all(|&t| t == (i == 2)));
        assert!(s.terminations.values().all(|&t| !t));
    }
    assert!(e.agents().is_empty());
    let err = e.step(&AgentMap::new()).unwrap_err().to_string();
    assert!(err.contains("episode ended"), "{err}");
}

#[test]
fn bad_configs_and_bad_joint_actions_are_named() {
    let err = |c: Json| CloudOps::new(&c).err().unwrap().to_string();
    let e = err(json!({"agents": ["scaler", "janitor"]}));
    assert!(e.contains("agents") && e.contains("janitor"), "{e}");
    let e = err(json!({"agents": ["scaler", "scaler"]}));
    assert!(e.contains("twice"), "{e}");
    let e = err(json!({"agents": []}));
    assert!(e.contains("at least one"), "{e}");
    let e = err(json!({"scenario": "three-tier"}));
    assert!(e.contains("three-tier") && e.contains("[security]"), "{e}");
    let e = err(json!({"scenario": "three-tier", "agents": ["scaler"]}));
    assert!(
        e.contains("attacker"),
        "an attacker also needs [security]: {e}"
    );
    assert!(
        CloudOps::new(
            &json!({"scenario": "three-tier", "agents": ["scaler", "healer"], "attacker": "none"})
        )
        .is_ok()
    );
    let e = err(json!({"step_s": 0}));
    assert!(e.contains("step_s"), "{e}");

    let mut e = env(json!({}));
    e.reset(Some(2), None).unwrap();
    let mut a = joint(&e, &[]);
    a.remove("healer");
    let msg = e.step(&a).unwrap_err().to_string();
    assert!(msg.contains("healer"), "{msg}");
    let a = joint(&e, &[("scaler", Value::MultiDiscrete(vec![5; 20]))]);
    let msg = e.step(&a).unwrap_err().to_string();
    assert!(msg.contains("scaler"), "{msg}");
    let msg = e.observation_space("janitor").unwrap_err().to_string();
    assert!(msg.contains("janitor") && msg.contains("scaler"), "{msg}");
}

#[test]
fn the_team_reward_is_the_sum_of_the_terms_and_own_rewards_split_it() {
    for (reward, agents) in [
        ("team", json!(["scaler", "healer", "defender"])),
        ("own", json!(["scaler", "healer", "defender"])),
        ("own", json!(["scaler", "healer", "defender", "optimiser"])),
    ] {
        let mut e = env(json!({"reward": reward, "max_steps": 40, "agents": agents}));
        e.reset(Some(3), None).unwrap();
        let mut own_sum = 0.0;
        let mut team = 0.0;
        for _ in 0..40 {
            let s = e.step(&joint(&e, &[])).unwrap();
            let i = ledger(&s, "scaler");
            let sum = i.team_cost + i.team_slo + i.team_unserved + i.team_security + i.team_actions;
            assert!((i.team_reward - sum).abs() < 1e-9);
            let owns: f64 = e
                .possible_agents()
                .iter()
                .map(|a| ledger(&s, a).agent_reward)
                .sum();
            // Doing nothing costs no actions: the own terms add up to the team's.
            assert!(
                (owns - i.team_reward).abs() < 1e-9,
                "{owns} vs {}",
                i.team_reward
            );
            for (agent, r) in &s.rewards {
                let want = if reward == "team" {
                    i.team_reward
                } else {
                    ledger(&s, agent).agent_reward
                };
                assert_eq!(*r, want, "{agent}");
            }
            own_sum += owns;
            team += i.team_reward;
            assert!(i.team_cost < 0.0, "hosts cost money");
        }
        assert!((own_sum - team).abs() < 1e-6);
        assert!(
            team < -40.0,
            "B_line unopposed for 400 s costs the team: {team}"
        );
    }
}

#[test]
fn the_ledger_counts_a_scale_flip_flop_within_the_window_only() {
    let mut e = env(json!({"agents": ["scaler"], "attacker": "none", "conflict_window_s": 25}));
    e.reset(Some(4), None).unwrap();
    let up = Value::MultiDiscrete([vec![3], vec![2; 19]].concat());
    let down = Value::MultiDiscrete([vec![1], vec![2; 19]].concat());
    let s = e.step(&joint(&e, &[("scaler", up.clone())])).unwrap();
    assert_eq!(ledger(&s, "scaler").ledger.flip_flops, 0);
    let s = e.step(&joint(&e, &[("scaler", down.clone())])).unwrap();
    let i = ledger(&s, "scaler");
    assert_eq!((i.ledger.flip_flops, i.conflicts_caused), (1, 1));
    // Down again: the same direction, no flip-flop; then wait out the window.
    let s = e.step(&joint(&e, &[("scaler", down)])).unwrap();
    assert_eq!(ledger(&s, "scaler").ledger.flip_flops, 0);
    for _ in 0..3 {
        e.step(&joint(&e, &[])).unwrap();
    }
    let s = e.step(&joint(&e, &[("scaler", up)])).unwrap();
    assert_eq!(
        ledger(&s, "scaler").ledger.flip_flops,
        0,
        "30 s later: outside the 25 s window"
    );
}

#[test]
fn the_ledger_counts_double_restarts_and_undone_isolations() {
    let mut e = env(json!({"agents": ["healer", "defender"]}));
    e.reset(Some(5), None).unwrap();
    let rd = e.defender_layout().unwrap().replicas;
    // The defender restores its slot 0; the healer restarts the same replica next.
    let r = e.defender_slot(0).unwrap();
    let s = e
        .step(&joint(
            &e,
            &[("defender", Value::Discrete((1 + 2 * rd) as i64))],
        ))
        .unwrap();
    assert_eq!(ledger(&s, "defender").ledger.double_restarts, 0);
    assert_eq!(
        s.infos["defender"]
            .security
            .as_ref()
            .unwrap()
            .reward_action_cost,
        -1.0
    );
    let k = healer_slot(&e, r);
    let s = e
        .step(&joint(&e, &[("healer", Value::Discrete(1 + k as i64))]))
        .unwrap();
    let (h, d) = (ledger(&s, "healer"), ledger(&s, "defender"));
    assert_eq!(h.ledger.double_restarts, 1);
    assert_eq!(
        (h.conflicts_caused, d.conflicts_caused),
        (1, 0),
        "the healer came second"
    );

    // The defender isolates its slot 3; the healer restarts that replica: undone.
    let r = e.defender_slot(3).unwrap();
    let s = e
        .step(&joint(
            &e,
            &[("defender", Value::Discrete((1 + rd + 3) as i64))],
        ))
        .unwrap();
    assert!(e.simulation().unwrap().replicas()[r].isolated);
    assert_eq!(ledger(&s, "healer").ledger.isolations_undone, 0);
    let k = healer_slot(&e, r);
    let s = e
        .step(&joint(&e, &[("healer", Value::Discrete(1 + k as i64))]))
        .unwrap();
    assert_eq!(ledger(&s, "healer").ledger.isolations_undone, 1);
    assert!(!e.simulation().unwrap().replicas()[r].isolated);
}

#[test]
fn the_ledger_counts_a_replica_scaled_away_right_after_a_restart_and_evictions() {
    let mut e = env(json!({"agents": ["scaler", "healer"], "attacker": "none"}));
    e.reset(Some(6), None).unwrap();
    let sim = e.simulation().unwrap();
    // A service with two replicas: the healer restarts one, the scaler removes one;
    // the restarting replica (booting) is the one a scale-down removes first.
    let s = (0..sim.services().len())
        .find(|&s| sim.services()[s].desired == 2)
        .unwrap();
    let r = sim.services()[s].replicas[0];
    let k = healer_slot(&e, r);
    let mut down = vec![2; 20];
    down[s] = 1;
    let step = e
        .step(&joint(
            &e,
            &[
                ("healer", Value::Discrete(1 + k as i64)),
                ("scaler", Value::MultiDiscrete(down)),
            ],
        ))
        .unwrap();
    let i = ledger(&step, "scaler");
    assert_eq!((i.ledger.removed_targets, i.conflicts_caused), (1, 1));
    assert!(!e.simulation().unwrap().replicas()[r].state.is_live());

    // A reschedule is an eviction; the evicted replica's slot moves to its successor.
    let r = e.healer_slot(0).unwrap();
    let step = e
        .step(&joint(&e, &[("healer", Value::Discrete(1 + 64))]))
        .unwrap();
    assert_eq!(ledger(&step, "healer").ledger.evictions, 1);
    assert!(!e.simulation().unwrap().replicas()[r].state.is_live());
}

#[test]
fn without_a_healer_the_kubelets_restart_crashed_replicas() {
    let mut e = env(json!({"agents": ["scaler"], "attacker": "none", "max_steps": 200}));
    e.reset(Some(7), None).unwrap();
    for _ in 0..200 {
        e.step(&joint(&e, &[])).unwrap();
        let sim = e.simulation().unwrap();
        // A crash is never left standing for a whole step.
        assert!(sim.replicas().iter().all(|r| {
            r.state != hale_sim::ReplicaState::Crashed
                || r.host
                    .is_none_or(|h| sim.hosts()[h].state != hale_sim::HostState::Ready)
        }));
    }
}

#[test]
fn the_same_seed_gives_the_same_joint_episode() {
    let run = || {
        let mut e = env(json!({"max_steps": 50}));
        e.reset(Some(8), None).unwrap();
        let mut rng = hale_sim::rng::Stream::from_key(1);
        let mut out = vec![];
        for _ in 0..50 {
            let a: AgentMap<Value> = e
                .agents()
                .iter()
                .map(|ag| {
                    (
                        ag.clone(),
                        e.action_space(ag)
                            .unwrap()
                            .sample(&mut rng, e.action_mask(ag)),
                    )
                })
                .collect();
            let s = e.step(&a).unwrap();
            out.push((
                s.obs,
                s.rewards.values().map(|r| r.to_bits()).collect::<Vec<_>>(),
                e.state().unwrap(),
            ));
        }
        out
    };
    assert!(run() == run());
}

/// A fixed joint action pattern: each agent's (t + 7i)-th allowed action (the scaler
/// holds, but for one service in turn).
fn pattern(v: &hale_envs::ParallelVectorEnv, t: usize) -> Vec<AgentMap<Value>> {
    let env = v.single_env();
    (0..v.num_envs())
        .map(|i| {
            v.possible_agents()
                .iter()
                .map(|agent| {
                    let a = match env.action_space(agent).unwrap() {
                        hale_envs::Space::MultiDiscrete { nvec } if agent == "optimiser" => {
                            // Keep on demand, consolidate nothing, requests at 1.0 (the
                            // last level); then one dimension at a time moves.
                            let mut a: Vec<i64> = (0..nvec.len())
                                .map(|j| if j < 2 { 0 } else { nvec[j] as i64 - 1 })
                                .collect();
                            let j = (t + i) % nvec.len();
                            a[j] = ((t / 2 + i) as u64 % nvec[j]) as i64;
                            Value::MultiDiscrete(a)
                        }
                        hale_envs::Space::MultiDiscrete { nvec } => {
                            let mut a = vec![2; nvec.len()];
                            a[(t + i) % nvec.len()] = ((t / 2 + i) % 5) as i64;
                            Value::MultiDiscrete(a)
                        }
                        hale_envs::Space::Discrete { n } => {
                            let allowed: Vec<usize> = match v.masks.get(agent) {
                                Some(m) => {
                                    let n = *n as usize;
                                    (0..n).filter(|&a| m[i * n + a]).collect()
                                }
                                None => (0..*n as usize).collect(),
                            };
                            // Mostly the no-op, now and then an allowed action.
                            let k = if (t + i).is_multiple_of(4) {
                                (t + 7 * i) % allowed.len()
                            } else {
                                0
                            };
                            Value::Discrete(allowed[k] as i64)
                        }
                        other => panic!("{other}"),
                    };
                    (agent.clone(), a)
                })
                .collect()
        })
        .collect()
}

type VecRun = (Vec<Vec<f32>>, Vec<u64>, Vec<bool>, Vec<f32>);

fn vector_run(threads: usize, config: &Json) -> VecRun {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut v = hale_envs::ParallelVectorEnv::make("CloudOps-v0", config, 3).unwrap();
        v.reset(Some(40)).unwrap();
        let mut out: VecRun = Default::default();
        for t in 0..20 {
            let a = pattern(&v, t);
            v.step(&a).unwrap();
            out.0.extend(v.obs.values().cloned());
            out.1
                .extend(v.rewards.values().flatten().map(|r| r.to_bits()));
            out.2.extend(v.truncated.values().flatten());
            out.3.extend_from_slice(&v.state);
        }
        out
    })
}

#[test]
fn the_vector_env_gives_the_same_joint_trajectories_on_one_and_two_threads() {
    for config in [
        json!({"max_steps": 8}),
        json!({"max_steps": 8, "agents": ["scaler", "healer", "defender", "optimiser"]}),
    ] {
        assert!(vector_run(1, &config) == vector_run(2, &config), "{config}");
    }
}

#[test]
fn vector_sub_env_i_is_the_env_seeded_seed_plus_i_with_next_step_autoreset() {
    let config = json!({"max_steps": 4, "agents": ["scaler", "defender"]});
    let mut v = hale_envs::ParallelVectorEnv::make("CloudOps-v0", &config, 2).unwrap();
    v.reset(Some(70)).unwrap();
    let mut single = env(config.clone());
    let (obs, _) = single.reset(Some(71), None).unwrap();
    let Value::Box(o) = &obs["defender"] else {
        panic!()
    };
    let d = o.len();
    assert_eq!(&v.obs["defender"][d..2 * d], &o[..]);
    for t in 0..5 {
        let a = pattern(&v, t);
        v.step(&a).unwrap();
        if t < 4 {
            let s = single.step(&a[1]).unwrap();
            assert_eq!(v.rewards["scaler"][1], s.rewards["scaler"]);
            assert_eq!(v.truncated["defender"][1], t == 3);
            let Value::Box(o) = &s.obs["defender"] else {
                panic!()
            };
            assert_eq!(&v.obs["defender"][d..2 * d], &o[..]);
        } else {
            // The step after the end resets: reward 0, no flags, a fresh episode
            // continuing sub-env 1's seed stream.
            assert_eq!(
                (v.rewards["scaler"][1], v.truncated["scaler"][1]),
                (0.0, false)
            );
            let (obs, _) = single.reset(None, None).unwrap();
            let Value::Box(o) = &obs["defender"] else {
                panic!()
            };
            assert_eq!(&v.obs["defender"][d..2 * d], &o[..]);
        }
    }
}

#[test]
fn the_ledger_counts_consolidating_the_scalers_new_replicas_and_size_fights() {
    let mut e = env(json!({
        "agents": ["scaler", "optimiser"], "attacker": "none", "faults": false,
        "scaler_action": "delta", "conflict_window_s": 120,
    }));
    e.reset(Some(6), None).unwrap();
    let layout = e.optimiser_layout().unwrap().clone();
    // The scaler adds two replicas of service 0; they land on some host.
    let up = Value::MultiDiscrete([vec![4], vec![2; 19]].concat());
    let s = e.step(&joint(&e, &[("scaler", up)])).unwrap();
    assert_eq!(ledger(&s, "scaler").ledger.conflicts(), 0);
    let sim = e.simulation().unwrap();
    let newest = *sim.services()[0].replicas.last().unwrap();
    let host = sim.replicas()[newest].host.expect("placed");
    let k = (0..layout.host_slots)
        .find(|&k| e.optimiser_slot(k) == Some(host))
        .unwrap();
    // The optimiser consolidates that host and cuts service 0's CPU request.
    let mut a = layout.action(false, Some(k));
    a[2 + layout.services] = 0;
    let s = e
        .step(&joint(&e, &[("optimiser", Value::MultiDiscrete(a))]))
        .unwrap();
    let (o, sc) = (ledger(&s, "optimiser"), ledger(&s, "scaler"));
    assert!(o.ledger.consolidation_fights >= 1, "{:?}", o.ledger);
    assert_eq!(o.ledger.size_fights, 1);
    assert_eq!(
        o.conflicts_caused,
        o.ledger.conflicts(),
        "the optimiser came second"
    );
    assert_eq!(sc.conflicts_caused, 0);
    let cost = s.infos["optimiser"].cost.as_ref().unwrap();
    assert_eq!(cost.consolidations, 1);
    assert!(
        s.infos["scaler"].cost.is_none(),
        "the optimiser's info only"
    );
    // The scaler now removes replicas of a service the optimiser just raised: the
    // other order of the same fight.
    let mut a = layout.action(false, None);
    a[2 + layout.services + 1] = 0;
    e.step(&joint(&e, &[("optimiser", Value::MultiDiscrete(a))]))
        .unwrap();
    let mut raise = layout.action(false, None);
    raise[2 + layout.services + 1] = (layout.cpu_levels.len() - 1) as i64;
    e.step(&joint(&e, &[("optimiser", Value::MultiDiscrete(raise))]))
        .unwrap();
    let down = Value::MultiDiscrete([vec![2], vec![1], vec![2; 18]].concat());
    let s = e.step(&joint(&e, &[("scaler", down)])).unwrap();
    let sc = ledger(&s, "scaler");
    assert_eq!((sc.ledger.size_fights, sc.conflicts_caused), (1, 1));
}
