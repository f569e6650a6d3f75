//! A scripted cluster for the adapter's loop tests: a target whose state the test
//! writes and whose actions it reads, three services with two replicas each on two
//! nodes (`api-b` crashed, `db-b` failing readiness), and the stand-in Prometheus's
//! answers for them.
#![allow(dead_code)]

use super::common::{Answers, sample, serve_readings};
use hale_adapter::action::Action;
use hale_adapter::observe::Replicas;
use hale_adapter::target::{NodeState, ReplicaState, Target, TargetError, TargetState};
use std::sync::{Arc, Mutex};

/// The services, in the env's order.
pub const SERVICES: [&str; 3] = ["front", "api", "db"];

/// A target whose state the test writes and whose actions it reads.
#[derive(Clone, Default)]
pub struct Scripted {
    /// What `state` returns.
    pub state: Arc<Mutex<TargetState>>,
    /// What was applied, in order.
    pub applied: Arc<Mutex<Vec<Action>>>,
}

impl Target for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn state(&mut self) -> Result<TargetState, TargetError> {
        Ok(self.state.lock().unwrap().clone())
    }
    fn apply(&mut self, action: &Action) -> Result<(), TargetError> {
        self.applied.lock().unwrap().push(action.clone());
        Ok(())
    }
}

/// A replica on a node.
pub fn replica(name: &str, node: &str, phase: &str, ready: bool) -> ReplicaState {
    ReplicaState {
        name: name.into(),
        node: Some(node.into()),
        phase: phase.into(),
        ready,
        restarts: 0,
        isolated: false,
    }
}

/// Two replicas per service on two nodes; `api-b` has crashed and `db-b` runs but
/// fails readiness.
pub fn cluster() -> TargetState {
    let mut state = TargetState::default();
    for s in SERVICES {
        let key = format!("shop/{s}");
        let b = match s {
            "api" => replica("api-b", "n2", "failed", false),
            "db" => replica(&format!("{s}-b"), "n2", "running", false),
            _ => replica(&format!("{s}-b"), "n2", "running", true),
        };
        let ready = u32::from(s == "front") + 1;
        state.replicas.insert(
            key.clone(),
            vec![replica(&format!("{s}-a"), "n1", "running", true), b],
        );
        state.services.insert(
            key.clone(),
            Replicas {
                ready,
                booting: 0,
                desired: 2,
            },
        );
        state.rollback_possible.insert(key, false);
    }
    state.nodes = ["n1", "n2"]
        .map(|n| NodeState {
            name: n.into(),
            ready: true,
            schedulable: true,
            cpu_allocation: Some(0.25),
            memory_allocation: Some(0.5),
            zone: None,
        })
        .to_vec();
    state
}

/// The per-replica queries the stand-in answers.
pub const REPLICA_QUERIES: &str = r#"[observation.replica_queries]
memory_fraction = "mem($replica)"
mean_latency_ms = "lat($replica)"
error_rate = "err($replica)"
"#;

/// Service readings, and answers for every running replica of [`cluster`] (not for
/// `api-b`, whose process is gone: the adapter must not ask) and its replacement
/// `api-c`, sampled at `ts`.
pub fn serve(answers: &Answers, ts: f64) {
    serve_readings(answers, &SERVICES, 0.3, ts);
    let mut a = answers.lock().unwrap();
    for s in SERVICES {
        for r in [format!("{s}-a"), format!("{s}-b"), format!("{s}-c")] {
            if r == "api-b" || (r.ends_with("-c") && s != "api") {
                continue;
            }
            a.insert(format!("mem({r})"), sample(0.4, ts));
            // A rate over a rate with nothing answered: NaN reads as 0.
            a.insert(format!("lat({r})"), sample(f64::NAN, ts));
            a.insert(format!("err({r})"), sample(0.0, ts));
        }
    }
}
