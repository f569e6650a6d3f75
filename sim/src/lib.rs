//! # hale-sim: a discrete-event simulator of a cloud running microservices
//!
//! Zones hold hosts; hosts run replicas of services; services call services along a
//! DAG with fan-out, timeouts and retries; load balancers spread requests over ready
//! replicas. Faults (crashes, hangs, leaks, slow replicas, host and zone failures, bad
//! deploys, failing dependencies) come from a schedule or from time-between-failure
//! distributions. Actions (scale, restart, reschedule, roll back, cordon, drain,
//! resize, add or remove hosts) take the time they take in a real cluster. A monitoring
//! system scrapes metrics with delay and noise; costs and SLOs are accounted.
//! A scenario with a `[security]` section can also hold an attacker (intrusions:
//! exploits, escalation, stolen credentials, lateral movement, impact, exfiltration,
//! mining) and take a defender's actions ([`Defence`]), seen through delayed, noisy
//! signals ([`Signals`]).
//!
//! Two fidelities share one cloud model: **request level** (every request is an event
//! chain, validated against Erlang C) and **fluid** (per-tick rates and queueing
//! formulas, validated against the request level).
//!
//! Time is an integer number of microseconds ([`SimTime`]); events are ordered by
//! (time, sequence number), and every random draw comes from a seeded stream or a
//! per-request key, so a run is a pure function of (scenario, seed, actions) and two
//! policies on one seed see the same arrivals, demands and faults.
//!
//! ```
//! use hale_sim::{Action, Scenario, SimTime, Simulation};
//! use std::sync::Arc;
//!
//! let scenario = Arc::new(Scenario::builtin("three-tier").unwrap());
//! let mut sim = Simulation::new(scenario.clone(), 7);
//! sim.run_until(SimTime::from_secs(60));
//! let api = scenario.service_index("api").unwrap();
//! sim.apply(&Action::Scale { service: api, replicas: 4 }).unwrap();
//! sim.run_until(SimTime::from_secs(120));
//! let seen = sim.observe().unwrap();
//! assert_eq!(seen.services[api].replicas_desired, 4);
//! assert!(sim.requests().completed > 0.0);
//! ```
#![warn(missing_docs)]

mod actions;
mod autoscaler;
pub mod cage2;
mod event;
mod faults;
mod fluid;
pub mod fs;
mod graph;
mod intrusion;
mod memory;
mod model;
mod monitor;
mod placement;
mod queue;
pub mod report;
mod request;
pub mod rng;
pub mod scenario;
mod sim;
mod slab;
mod spot;
mod time;
mod workload;

pub use actions::{Action, ActionError, MAX_REPLICAS_PER_SERVICE};
pub use fluid::erlang_c;
pub use graph::{Relation, Resource, ResourceGraph};
pub use intrusion::{Defence, Intrusions, Move, MoveKind, SecurityTotals, Signals};
pub use model::{
    FaultRecord, FaultSubject, Host, HostId, HostState, Replica, ReplicaId, ReplicaState,
    RequestCounters, ServiceCounters, ServiceId, ServiceState,
};
pub use monitor::{HostMetrics, ReplicaMetrics, ServiceMetrics, Snapshot};
pub use queue::EventQueue;
pub use scenario::{
    AttackerKind, AutoscalerSpec, BUILTINS, CallSpec, ClusterSpec, DistSpec, Edge,
    FaultProcessSpec, FaultSpec, FaultTarget, FaultsSpec, Fidelity, HostGroupSpec, HostTypeSpec,
    IntervalSpec, LbPolicy, Lifecycle, MAX_DURATION_S, MIN_PERIOD_S, Placement, Privilege,
    RateSpec, ResolvedSeries, Scenario, ScenarioError, ScenarioSpec, ScheduledFaultSpec,
    SecurityModel, SecuritySpec, ServiceSecuritySpec, ServiceSpec, SimulationSpec, SloSpec,
    SpotSpec, TraceOffset, TraceSpec, WorkloadSpec, builtin_text,
};
pub use sim::{InvariantError, Simulation};
pub use time::SimTime;
pub use workload::rate_at;
