//! Intrusions on microservices-20: what each attacker does undefended, what the
//! defender's actions do to it and to the traffic, pairing, and refusals.

use crate::builtin_with;
use hale_sim::*;
use std::sync::Arc;

fn ms20(fidelity: &str) -> Arc<Scenario> {
    Arc::new(builtin_with(
        "microservices-20",
        &[(
            r#"fidelity = "request""#,
            &format!(r#"fidelity = "{fidelity}""#),
        )],
    ))
}

fn started(sc: &Arc<Scenario>, seed: u64, kind: AttackerKind) -> Simulation {
    let mut sim = Simulation::new(sc.clone(), seed);
    sim.start_attacker(kind).unwrap();
    sim
}

fn data_services(sc: &Scenario) -> Vec<usize> {
    let m = sc.security.as_ref().unwrap();
    (0..m.data.len()).filter(|&s| m.data[s]).collect()
}

#[test]
fn b_line_undefended_reaches_the_data_tier_and_does_damage() {
    let sc = ms20("fluid");
    let data = data_services(&sc);
    let mut reached = 0;
    for seed in 0..10 {
        let mut sim = started(&sc, seed, AttackerKind::BLine);
        sim.run_until(SimTime::from_secs(1000));
        let sec = sim.security().unwrap();
        let t = *sec.totals();
        assert!(t.moves > 50, "seed {seed}: {t:?}");
        if t.impact_s > 0.0 {
            reached += 1;
            assert!(t.exfiltrated_mb > 0.0);
            // Impact shows in the cloud: a data service fails requests.
            assert!(
                data.iter()
                    .any(|&s| sim.services()[s].attack_error_rate > 0.0),
                "seed {seed}: impact without an error rate"
            );
            // B_line stays once root on the data tier: it does not wander.
            let held: Vec<usize> = (0..sim.replicas().len())
                .filter(|&r| sec.foothold(r) != Privilege::None)
                .collect();
            assert!(held.len() <= 6, "seed {seed}: B_line holds {held:?}");
        }
    }
    assert!(
        reached >= 8,
        "B_line reached the data tier in {reached} of 10 runs"
    );
}

#[test]
fn meander_spreads_wider_than_b_line() {
    let sc = ms20("fluid");
    let held = |kind| {
        (0..8)
            .map(|seed| {
                let mut sim = started(&sc, seed, kind);
                sim.run_until(SimTime::from_secs(1000));
                let sec = sim.security().unwrap();
                (0..sim.replicas().len())
                    .filter(|&r| sec.foothold(r) != Privilege::None)
                    .count()
            })
            .sum::<usize>()
    };
    let (b, m) = (held(AttackerKind::BLine), held(AttackerKind::Meander));
    assert!(m > 2 * b, "Meander holds {m} replica-runs, B_line {b}");
}

#[test]
fn mining_steals_cpu_and_shows_as_an_anomaly() {
    let sc = ms20("fluid");
    let mut sim = started(&sc, 3, AttackerKind::Meander);
    sim.run_until(SimTime::from_secs(600));
    let sec = sim.security().unwrap();
    let m = sc.security.as_ref().unwrap();
    let miners: Vec<usize> = (0..sim.replicas().len())
        .filter(|&r| {
            sec.foothold(r) == Privilege::Root
                && !m.data[sim.replicas()[r].service]
                && sim.replicas()[r].state.is_serving()
        })
        .collect();
    assert!(!miners.is_empty(), "Meander roots something in 10 minutes");
    let mut hits = 0;
    let mut clean = 0;
    for _ in 0..10 {
        sim.run_for(SimTime::from_secs(10));
        let s = sim.take_signals().unwrap();
        for r in 0..sim.replicas().len() {
            if !sim.replicas()[r].state.is_serving() {
                continue;
            }
            if miners.contains(&r) && sim.security().unwrap().foothold(r) == Privilege::Root {
                hits += (s.anomaly[r] > 0.5) as u32;
            } else if sim.security().unwrap().foothold(r) == Privilege::None {
                clean += (s.anomaly[r] > 0.5) as u32;
            }
        }
    }
    assert!(hits > 0, "a miner's anomaly is seen");
    // Noise (σ 0.35) crosses 0.5 on about 8 % of clean replica-reads.
    assert!(clean < 60, "{clean} clean replica-reads looked anomalous");
}

#[test]
fn a_restore_cleans_and_an_analysis_reveals() {
    let sc = ms20("fluid");
    let mut sim = started(&sc, 1, AttackerKind::BLine);
    let mut owned = None;
    for _ in 0..100 {
        sim.run_for(SimTime::from_secs(10));
        let sec = sim.security().unwrap();
        if let Some(r) = (0..sim.replicas().len()).find(|&r| sec.foothold(r) != Privilege::None) {
            owned = Some(r);
            break;
        }
    }
    let r = owned.expect("B_line gets in within 1000 s");
    let p = sim.security().unwrap().foothold(r);
    sim.defend(&Defence::Analyse { replica: r }).unwrap();
    assert_eq!(
        sim.security().unwrap().revealed(r),
        None,
        "not before it is done"
    );
    // The attacker may escalate meanwhile; what is revealed is the state when done.
    sim.run_for(SimTime::from_secs(20));
    let revealed = sim
        .security()
        .unwrap()
        .revealed(r)
        .expect("analysed after 20 s");
    assert!(revealed >= p, "revealed {revealed:?}, was {p:?}");
    sim.defend(&Defence::Restore { replica: r }).unwrap();
    let sec = sim.security().unwrap();
    assert_eq!(sec.foothold(r), Privilege::None);
    assert_eq!(sec.revealed(r), None, "a fresh container is unknown again");
    assert_eq!(sec.totals().defender_restarts, 1);
    assert_eq!(sim.replicas()[r].state, ReplicaState::Booting);
}

#[test]
fn isolation_fails_what_the_replica_held_and_takes_it_out_of_service() {
    let sc = ms20("request");
    let mut sim = started(&sc, 2, AttackerKind::None);
    sim.run_until(SimTime::from_secs(30));
    let s = sc.service_index("post-storage").unwrap();
    let r = sim.services()[s].endpoints[0];
    sim.defend(&Defence::Isolate { replica: r }).unwrap();
    assert!(!sim.services()[s].endpoints.contains(&r));
    sim.check_invariants().unwrap();
    sim.run_for(SimTime::from_secs(30));
    // Probes pass, but an isolated replica stays out of the load balancer.
    assert!(!sim.replicas()[r].in_lb);
    sim.check_invariants().unwrap();
    sim.defend(&Defence::Release { replica: r }).unwrap();
    assert!(sim.services()[s].endpoints.contains(&r));
    assert!(matches!(
        sim.defend(&Defence::Release { replica: r }),
        Err(ActionError::Refused { .. })
    ));
}

#[test]
fn a_cut_edge_fails_the_calls_along_it_until_reconnected() {
    let sc = ms20("request");
    let from = sc.service_index("user-timeline").unwrap();
    let to = sc.service_index("user-timeline-mongodb").unwrap();
    let edge = (0..sc.edges.len())
        .find(|&e| sc.edges[e].from == Some(from) && sc.edges[e].to == to)
        .unwrap();
    let failed = |cut: bool| {
        let mut sim = started(&sc, 4, AttackerKind::None);
        if cut {
            sim.defend(&Defence::Cut { edge }).unwrap();
        }
        sim.run_until(SimTime::from_secs(60));
        sim.check_invariants().unwrap();
        let c = sim.requests();
        (c.failed + c.timed_out) / c.arrived
    };
    let (open, cut) = (failed(false), failed(true));
    assert!(open < 0.01, "{open}");
    // user-timeline is one of three request types (300 of about 1080 rps).
    assert!(cut > 0.15, "{cut}");
}

#[test]
fn a_rotation_restarts_one_replica_after_another_and_voids_stolen_credentials() {
    let sc = ms20("fluid");
    let mut sim = started(&sc, 5, AttackerKind::None);
    let s = sc.service_index("post-storage").unwrap();
    sim.run_until(SimTime::from_secs(10));
    sim.defend(&Defence::Rotate { service: s }).unwrap();
    assert!(matches!(
        sim.defend(&Defence::Rotate { service: s }),
        Err(ActionError::Refused { .. })
    ));
    sim.run_for(SimTime::from_millis_f64(1.0));
    let booting = |sim: &Simulation| {
        sim.services()[s]
            .replicas
            .iter()
            .filter(|&&r| sim.replicas()[r].state == ReplicaState::Booting)
            .count()
    };
    assert_eq!(booting(&sim), 1, "one at a time");
    sim.run_for(SimTime::from_secs(60));
    assert_eq!(booting(&sim), 0);
    assert_eq!(sim.security().unwrap().totals().defender_restarts, 3);
    assert!(
        sim.services()[s]
            .replicas
            .iter()
            .all(|&r| sim.replicas()[r].restarts == 1)
    );
}

#[test]
fn two_defenders_on_one_seed_meet_the_same_attacker_until_they_differ() {
    // Common random numbers: the attacker's dice are its own stream, so its moves
    // agree until a defence changes what it can do.
    let sc = ms20("fluid");
    let moves = |defend: bool| {
        let mut sim = started(&sc, 8, AttackerKind::BLine);
        let mut seen = Vec::new();
        for step in 0..30 {
            if defend && step == 20 {
                let s = sc.service_index("home-timeline").unwrap();
                sim.defend(&Defence::Decoy { service: s }).unwrap();
            }
            sim.run_for(SimTime::from_secs(10));
            seen.push(sim.security().unwrap().last_move());
        }
        seen
    };
    let (a, b) = (moves(false), moves(true));
    assert_eq!(a[..20], b[..20]);
    assert_eq!(a, moves(false), "same seed, same attacker");
}

#[test]
fn security_actions_are_refused_with_reasons() {
    let sc = Arc::new(Scenario::builtin("three-tier").unwrap());
    let mut sim = Simulation::new(sc, 1);
    assert!(matches!(
        sim.start_attacker(AttackerKind::BLine),
        Err(ActionError::NoSecurity(_))
    ));
    assert!(matches!(
        sim.defend(&Defence::Isolate { replica: 0 }),
        Err(ActionError::NoSecurity("isolate"))
    ));

    let sc = ms20("fluid");
    let mut sim = started(&sc, 1, AttackerKind::BLine);
    assert!(matches!(
        sim.start_attacker(AttackerKind::BLine),
        Err(ActionError::Refused { .. })
    ));
    let e = sim.defend(&Defence::Cut { edge: 0 }).unwrap_err();
    assert!(e.to_string().contains("workload's way in"), "{e}");
    let e = sim.defend(&Defence::Cut { edge: 999 }).unwrap_err();
    assert!(e.to_string().contains("no edge 999"), "{e}");
    let db = sc.service_index("user-mongodb").unwrap();
    let e = sim.defend(&Defence::Block { service: db }).unwrap_err();
    assert!(e.to_string().contains("not an entry"), "{e}");
    let entry = sc.service_index("user-timeline").unwrap();
    let e = sim.defend(&Defence::Block { service: entry }).unwrap_err();
    assert!(e.to_string().contains("no attempt"), "{e}");
    sim.defend(&Defence::Decoy { service: db }).unwrap();
    let e = sim.defend(&Defence::Decoy { service: db }).unwrap_err();
    assert!(e.to_string().contains("decoys already"), "{e}");
    assert!(matches!(
        sim.defend(&Defence::Restore { replica: 10_000 }),
        Err(ActionError::NoReplica(..))
    ));
}

#[test]
fn a_bad_security_section_names_its_field() {
    for (edit, field) in [
        (r#"data = ["post-storage-mongodb","#, "security.data[0]"),
        (
            "exploitability = 0.3\nescalation",
            "security.exploitability",
        ),
        ("attack_interval_s = 10", "security.attack_interval_s"),
    ] {
        let bad = match field {
            "security.data[0]" => r#"data = ["post-storage-mongo","#,
            "security.exploitability" => "exploitability = 1.3\nescalation",
            _ => "attack_interval_s = -1",
        };
        let path = format!(
            "{}/scenarios/microservices-20.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen(edit, bad, 1);
        let spec = ScenarioSpec::from_toml_str(&text, "ms20.toml").unwrap();
        let e = Scenario::from_spec(spec, "ms20.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(field) && e.contains("ms20.toml"), "{e}");
    }
}

#[test]
fn a_block_stops_the_address_seen_until_the_attacker_moves_to_another() {
    let sc = ms20("fluid");
    let ut = sc.service_index("user-timeline").unwrap();
    let mut sim = started(&sc, 6, AttackerKind::BLine);
    // B_line tries user-timeline (one call from the data tier) first.
    while sim.security().unwrap().last_move().is_none() {
        sim.run_for(SimTime::from_secs(1));
    }
    assert_eq!(
        sim.security().unwrap().last_move().unwrap().service,
        Some(ut)
    );
    // Clean whatever it got, and block the address it came from.
    for r in sim.services()[ut].replicas.clone() {
        if sim.security().unwrap().foothold(r) != Privilege::None {
            sim.defend(&Defence::Restore { replica: r }).unwrap();
        }
    }
    sim.defend(&Defence::Block { service: ut }).unwrap();
    assert!(sim.security().unwrap().blocked(ut));
    assert!(matches!(
        sim.defend(&Defence::Block { service: ut }),
        Err(ActionError::Refused { .. })
    ));
    // Its next attempt there is blocked; then it goes elsewhere.
    let mut kinds = Vec::new();
    for _ in 0..40 {
        sim.run_for(SimTime::from_secs(2));
        let m = sim.security().unwrap().last_move().unwrap();
        if kinds.last() != Some(&(m.kind, m.service)) {
            kinds.push((m.kind, m.service));
        }
    }
    let blocked = kinds.iter().position(|k| k.0 == MoveKind::Blocked);
    let elsewhere = kinds
        .iter()
        .position(|k| matches!(k.0, MoveKind::Exploit) && k.1 != Some(ut));
    assert!(
        matches!((blocked, elsewhere), (Some(b), Some(e)) if b < e),
        "{kinds:?}"
    );
}
