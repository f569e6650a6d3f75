//! What the cloud environments share: loading the scenario, features from what the
//! monitoring system saw, the resource graph as a `Graph` observation.

use crate::env::EnvError;
use crate::space::GraphValue;
use hale_sim::{
    Fidelity, HostState, Relation, ReplicaState, Resource, Scenario, SimTime, Simulation, Snapshot,
};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use std::sync::Arc;

/// Parses an env config (a JSON object, or null for defaults); unknown fields are
/// errors that name them.
pub(crate) fn parse_config<T: DeserializeOwned + Default>(
    id: &str,
    config: &Json,
) -> Result<T, EnvError> {
    match config {
        Json::Null => Ok(T::default()),
        c => serde_json::from_value(c.clone()).map_err(|e| EnvError::Config {
            env: id.into(),
            field: "config".into(),
            reason: e.to_string(),
        }),
    }
}

/// Loads a scenario by builtin name or path, with an optional fidelity override.
pub(crate) fn load_scenario(
    id: &str,
    name: &str,
    fidelity: Option<Fidelity>,
) -> Result<Scenario, EnvError> {
    #[cfg(feature = "traces")]
    let loaded = hale_datasets::load_scenario(name).map_err(|e| e.to_string());
    #[cfg(not(feature = "traces"))]
    let loaded = Scenario::load(name).map_err(|e| e.to_string());
    let sc = loaded.map_err(|reason| EnvError::Config {
        env: id.into(),
        field: "scenario".into(),
        reason,
    })?;
    match fidelity {
        Some(f) if f != sc.spec.fidelity => {
            let mut spec = sc.spec.clone();
            spec.fidelity = f;
            Scenario::from_spec(spec, &sc.origin).map_err(|e| EnvError::Config {
                env: id.into(),
                field: "fidelity".into(),
                reason: e.to_string(),
            })
        }
        _ => Ok(sc),
    }
}

pub(crate) fn positive(id: &str, field: &str, v: f64) -> Result<(), EnvError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(EnvError::Config {
            env: id.into(),
            field: field.into(),
            reason: format!("must be positive, got {v}"),
        })
    }
}

/// Features per service in matrix observations.
pub const SERVICE_FEATURES: usize = 9;

/// Latency a service's percentiles are measured against: its SLO bound, or 100 ms.
pub(crate) fn latency_refs_ms(sc: &Scenario) -> Vec<f64> {
    let mut refs = vec![100.0; sc.spec.services.len()];
    for (i, slo) in sc.spec.slos.iter().enumerate() {
        refs[sc.slo_service[i]] = slo.latency_ms;
    }
    refs
}

/// Writes `[ln(1 + rate) / 10, p50/ref, p95/ref, p99/ref, error rate, cpu utilisation,
/// ready/max, booting/max, desired/max]` for each service (latencies relative to the
/// SLO bound, replica counts relative to `max_replicas`, latency ratios capped at 10).
pub(crate) fn service_features(
    snap: Option<&Snapshot>,
    refs: &[f64],
    max_replicas: f64,
    out: &mut [f32],
) {
    out.fill(0.0);
    let Some(snap) = snap else { return };
    for (s, m) in snap.services.iter().enumerate() {
        out[s * SERVICE_FEATURES..(s + 1) * SERVICE_FEATURES]
            .copy_from_slice(&crate::live::ServiceReading::from(m).encode(refs[s], max_replicas));
    }
}

/// Node features of the graph observation: kind one-hot (zone, host, service,
/// replica), the service features, replica state one-hot (8) with probe failures,
/// restarts, memory over limit, mean latency over the SLO bound and error rate (last
/// scrape), and host up, cordoned, CPU and memory allocation.
pub const NODE_FEATURES: usize = 4 + SERVICE_FEATURES + 8 + 5 + 4;
/// Edge features: relation one-hot (contains, runs, owns, calls) and fan-out.
pub const EDGE_FEATURES: usize = 5;

/// The state a monitoring system can see: a hung replica looks ready until a probe
/// fails, and a degraded one looks ready (its latency and memory give it away).
pub(crate) fn visible_state(s: ReplicaState, probe_failures: u32) -> ReplicaState {
    match s {
        ReplicaState::Hung if probe_failures == 0 => ReplicaState::Ready,
        ReplicaState::Degraded => ReplicaState::Ready,
        other => other,
    }
}

pub(crate) fn state_index(s: ReplicaState) -> usize {
    match s {
        ReplicaState::Pending => 0,
        ReplicaState::Booting => 1,
        ReplicaState::Ready => 2,
        ReplicaState::Degraded => 3,
        ReplicaState::Hung => 4,
        ReplicaState::Crashed => 5,
        ReplicaState::Terminating => 6,
        ReplicaState::Terminated => 7,
    }
}

/// The resource graph as a `Graph` observation. Nodes come in the order zones, hosts
/// (not removed, by id), services, replicas (by service, then id); replica states are
/// what monitoring can see ([`visible_state`]).
pub(crate) fn graph_observation(sim: &Simulation, refs: &[f64], max_replicas: f64) -> GraphValue {
    let g = sim.resource_graph();
    let snap = sim.observe();
    let n_services = sim.services().len();
    let mut svc = vec![0.0f32; n_services * SERVICE_FEATURES];
    service_features(snap, refs, max_replicas, &mut svc);
    let spec = &sim.scenario().spec;
    let now = sim.now();
    let mut nodes = vec![0.0f32; g.graph.node_count() * NODE_FEATURES];
    let per_replica: std::collections::HashMap<usize, &hale_sim::ReplicaMetrics> = snap
        .map(|s| s.replicas.iter().map(|m| (m.replica, m)).collect())
        .unwrap_or_default();
    for (i, r) in g.graph.node_weights().enumerate() {
        let row = &mut nodes[i * NODE_FEATURES..(i + 1) * NODE_FEATURES];
        match *r {
            Resource::Zone(_) => row[0] = 1.0,
            Resource::Host(h) => {
                row[1] = 1.0;
                let host = &sim.hosts()[h];
                let base = 4 + SERVICE_FEATURES + 13;
                row[base] = (host.state == HostState::Ready) as u8 as f32;
                row[base + 1] = host.cordoned as u8 as f32;
                row[base + 2] = (host.cpu_allocated / host.cpu) as f32;
                row[base + 3] = (host.memory_allocated / host.memory_mib) as f32;
            }
            Resource::Service(s) => {
                row[2] = 1.0;
                row[4..4 + SERVICE_FEATURES]
                    .copy_from_slice(&svc[s * SERVICE_FEATURES..(s + 1) * SERVICE_FEATURES]);
            }
            Resource::Replica(x) => {
                row[3] = 1.0;
                let rep = &sim.replicas()[x];
                let base = 4 + SERVICE_FEATURES;
                row[base + state_index(visible_state(rep.state, rep.probe_failures))] = 1.0;
                let sspec = &spec.services[rep.service];
                let limit = sspec.memory_limit_mib.unwrap_or(2.0 * sspec.memory_mib);
                row[base + 8] = (rep.probe_failures as f32 / 3.0).min(10.0);
                row[base + 9] = (rep.restarts as f32 / 5.0).min(10.0);
                row[base + 10] = (rep.memory_mib(sspec.memory_mib, now) / limit) as f32;
                if let Some(m) = per_replica.get(&x) {
                    row[base + 11] = (m.mean_latency_ms / refs[rep.service]).min(10.0) as f32;
                    row[base + 12] = m.error_rate as f32;
                }
            }
        }
    }
    let mut edges = Vec::with_capacity(g.graph.edge_count() * EDGE_FEATURES);
    let mut links = Vec::with_capacity(g.graph.edge_count());
    for e in g.graph.raw_edges() {
        let (kind, fanout) = match e.weight {
            Relation::Contains => (0, 0.0),
            Relation::Runs => (1, 0.0),
            Relation::Owns => (2, 0.0),
            Relation::Calls { fanout } => (3, fanout as f32),
        };
        let mut f = [0.0f32; EDGE_FEATURES];
        f[kind] = 1.0;
        f[4] = fanout;
        edges.extend_from_slice(&f);
        links.push([e.source().index() as u32, e.target().index() as u32]);
    }
    GraphValue {
        nodes,
        edges,
        links,
    }
}

/// Requests that arrived, and that failed or timed out, between two counter readings.
pub(crate) fn interval_requests(
    before: hale_sim::RequestCounters,
    after: hale_sim::RequestCounters,
) -> (f64, f64) {
    let arrived = after.arrived - before.arrived;
    let unserved = (after.failed + after.timed_out) - (before.failed + before.timed_out);
    (arrived, unserved)
}

/// A fresh simulation for an episode.
pub(crate) fn new_sim(sc: &Arc<Scenario>, seed: u64) -> Simulation {
    Simulation::new(sc.clone(), seed)
}

/// Seconds of SLO violation summed over SLOs.
pub(crate) fn slo_seconds(sim: &Simulation) -> f64 {
    sim.slo_violation_s().iter().sum()
}

/// `t` seconds as simulated time.
pub(crate) fn secs(t: f64) -> SimTime {
    SimTime::from_secs_f64(t)
}

/// Reports each fault's time to recovery once, in the step in which it resolved.
#[derive(Default)]
pub(crate) struct FaultReporter {
    reported: Vec<bool>,
}

impl FaultReporter {
    pub(crate) fn clear(&mut self) {
        self.reported.clear();
    }

    /// (time to recovery in seconds, kind) of the faults resolved since the last call.
    pub(crate) fn newly_resolved(&mut self, sim: &Simulation) -> (Vec<f64>, Vec<&'static str>) {
        let (mut ttr, mut kinds) = (vec![], vec![]);
        self.reported.resize(sim.faults().len(), false);
        for (f, reported) in sim.faults().iter().zip(self.reported.iter_mut()) {
            if let (Some(t), false) = (f.time_to_recovery(), *reported) {
                ttr.push(t.as_secs_f64());
                kinds.push(f.kind);
                *reported = true;
            }
        }
        (ttr, kinds)
    }
}

/// Counters read before a step, to report what the step did.
pub(crate) struct Before {
    pub(crate) requests: hale_sim::RequestCounters,
    cost: f64,
    slo_s: f64,
    time_s: f64,
}

impl Before {
    pub(crate) fn read(sim: &Simulation) -> Before {
        Before {
            requests: sim.requests(),
            cost: sim.cost(),
            slo_s: slo_seconds(sim),
            time_s: sim.now().as_secs_f64(),
        }
    }
}

/// What evaluation tables need from a step of a cloud env, shared by Scaling-v0 and
/// Healing-v0: requests and unserved requests, SLO-violation seconds, the host bill,
/// the cores requested by live replicas times the step (core-hours, a chargeback
/// cost), the user-facing p95 and p99 (the first workload's entry service, last scrape), the
/// over-provisioning slack (1 − busy slots / ready slots, last scrape), and the time
/// to recovery of faults resolved in the step.
pub(crate) fn common_info(
    sim: &Simulation,
    before: &Before,
    faults: &mut FaultReporter,
    info: &mut crate::env::Info,
) -> (f64, f64) {
    use serde_json::json;
    let (arrived, unserved) = interval_requests(before.requests, sim.requests());
    info.insert("requests".into(), json!(arrived));
    info.insert("unserved".into(), json!(unserved));
    info.insert(
        "slo_violation_s".into(),
        json!(slo_seconds(sim) - before.slo_s),
    );
    info.insert("cost".into(), json!(sim.cost() - before.cost));
    let dt = (sim.now().as_secs_f64() - before.time_s).max(0.0);
    let cores: f64 = sim
        .replicas()
        .iter()
        .filter(|r| r.state.is_live())
        .map(|r| r.cpu)
        .sum();
    info.insert("core_hours".into(), json!(cores * dt / 3600.0));
    let sc = sim.scenario();
    if let Some(snap) = sim.observe() {
        let entry = &snap.services[sc.workload_service[0]];
        info.insert("p95_ms".into(), json!(entry.p95_ms));
        info.insert("p99_ms".into(), json!(entry.p99_ms));
        let (mut busy, mut slots) = (0.0, 0.0);
        for (s, m) in snap.services.iter().enumerate() {
            let c = m.replicas_ready as f64 * sc.spec.services[s].concurrency as f64;
            busy += m.cpu_utilization * c;
            slots += c;
        }
        info.insert(
            "slack".into(),
            json!(if slots > 0.0 { 1.0 - busy / slots } else { 0.0 }),
        );
    }
    let (ttr, kinds) = faults.newly_resolved(sim);
    info.insert("ttr_s".into(), json!(ttr));
    info.insert("ttr_kinds".into(), json!(kinds));
    (arrived, unserved)
}

/// Restarts every crashed replica and every replica failing its liveness probe
/// (`probe_failure_threshold` failures in a row) whose host is up: what the cluster's
/// kubelets do, without their back-off.
pub(crate) fn heal_like_kubelet(sim: &mut Simulation) {
    let threshold = sim.scenario().spec.simulation.probe_failure_threshold;
    let due: Vec<usize> = sim
        .services()
        .iter()
        .flat_map(|s| s.replicas.iter().copied())
        .filter(|&r| {
            let rep = &sim.replicas()[r];
            let host_up = rep
                .host
                .is_some_and(|h| sim.hosts()[h].state == HostState::Ready);
            host_up
                && (rep.state == ReplicaState::Crashed
                    || (rep.state == ReplicaState::Hung && rep.probe_failures >= threshold))
        })
        .collect();
    for r in due {
        // The filter above is exactly what Restart accepts; a refusal changes nothing.
        let _ = sim.apply(&hale_sim::Action::Restart { replica: r });
    }
}

/// The seed of a new episode's simulation: `reset(Some(seed))` restarts the env's seed
/// stream, `reset(None)` continues it. Cloud envs take no reset options.
pub(crate) fn episode_seed(
    id: &str,
    seeds: &mut hale_sim::rng::Stream,
    salt: u64,
    seed: Option<u64>,
    options: Option<&Json>,
) -> Result<u64, EnvError> {
    if let Some(o) = options
        && o.as_object().is_some_and(|m| !m.is_empty())
    {
        return Err(EnvError::Config {
            env: id.into(),
            field: "options".into(),
            reason: format!("{id} takes no reset options"),
        });
    }
    if let Some(s) = seed {
        *seeds = hale_sim::rng::Stream::from_key(hale_sim::rng::key(s, salt));
    }
    Ok(seeds.next_u64())
}
