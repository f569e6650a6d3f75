//! What the cloud environments share: loading the scenario, features from what the
//! monitoring system saw, the resource graph as a `Graph` observation.

use crate::encoding::SERVICE_FEATURES;
use crate::env::EnvError;
use crate::space::GraphValue;
use hale_sim::{Fidelity, HostState, ReplicaState, Scenario, SimTime, Simulation, Snapshot};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
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

/// A scenario by builtin name or path without reading the trace files it names: it
/// keeps everything else (services, calls, SLOs, faults, hosts), and each trace
/// workload gets a placeholder rate of zero. Enough for what needs a scenario's shape
/// and not its load (a policy's context, a topology check), without the traces' I/O.
pub fn load_topology(env: &str, name: &str) -> Result<Scenario, EnvError> {
    without_traces(name)
        .map(|(sc, _)| sc)
        .map_err(|reason| EnvError::Config {
            env: env.into(),
            field: "scenario".into(),
            reason,
        })
}

/// Loads a scenario by builtin name or path, with an optional fidelity override, as
/// the cloud envs do, and says which trace it did not read, if any.
///
/// With the default `traces` feature, the trace files a scenario names are read
/// (through `hale_datasets::load_scenario`). Without it (the adapter's build, which
/// carries no polars) they are not: the scenario is [`load_topology`]'s, and the envs
/// then refuse to reset.
pub(crate) fn load(
    id: &str,
    name: &str,
    fidelity: Option<Fidelity>,
) -> Result<(Scenario, Option<String>), EnvError> {
    #[cfg(feature = "traces")]
    let loaded = hale_datasets::load_scenario(name)
        .map(|sc| (sc, None))
        .map_err(|e| e.to_string());
    #[cfg(not(feature = "traces"))]
    let loaded = without_traces(name);
    let (sc, unread) = loaded.map_err(|reason| EnvError::Config {
        env: id.into(),
        field: "scenario".into(),
        reason,
    })?;
    match fidelity {
        Some(f) if f != sc.spec.fidelity => {
            let mut spec = sc.spec.clone();
            spec.fidelity = f;
            Scenario::from_spec(spec, &sc.origin)
                .map(|sc| (sc, unread))
                .map_err(|e| EnvError::Config {
                    env: id.into(),
                    field: "fidelity".into(),
                    reason: e.to_string(),
                })
        }
        _ => Ok((sc, unread)),
    }
}

/// A scenario whose trace workloads are not read: each gets a zero rate, and the
/// first one's path comes back.
pub(crate) fn without_traces(name: &str) -> Result<(Scenario, Option<String>), String> {
    if hale_sim::BUILTINS.contains(&name) {
        return Scenario::builtin(name)
            .map(|sc| (sc, None))
            .map_err(|e| e.to_string());
    }
    let text = std::fs::read_to_string(name).map_err(|e| format!("{name}: {e}"))?;
    let mut spec = hale_sim::ScenarioSpec::from_toml_str(&text, name).map_err(|e| e.to_string())?;
    let mut unread = None;
    for w in &mut spec.workload {
        if let hale_sim::RateSpec::Trace(t) = &mut w.rate
            && t.resolved.is_none()
        {
            unread.get_or_insert_with(|| t.path.clone());
            t.resolved = Some(hale_sim::ResolvedSeries {
                step_s: 1.0,
                rps: vec![0.0].into(),
            });
        }
    }
    let sc = Scenario::from_spec(spec, name).map_err(|e| e.to_string())?;
    Ok((sc, unread))
}

/// Per-episode randomisation of a cloud env's scenario (domain randomisation, for
/// policies that generalise across workloads): each factor is drawn uniformly from its
/// range `[low, high]`, from the episode's seed, so policies compared on one seed meet
/// the same draw. Absent ranges leave the scenario as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Randomize {
    /// Multiplies every workload's rate (a trace's whole series, a diurnal's mean, …).
    pub load: Option<[f64; 2]>,
    /// Multiplies the rate of every sampled fault process (its times between faults
    /// are divided by the factor; scheduled faults stay).
    pub fault_rate: Option<[f64; 2]>,
    /// Multiplies every service's boot time.
    pub boot_time: Option<[f64; 2]>,
}

impl Randomize {
    /// Checks the ranges; the error names the field.
    pub(crate) fn validate(&self, id: &str) -> Result<(), EnvError> {
        for (name, range) in [
            ("load", self.load),
            ("fault_rate", self.fault_rate),
            ("boot_time", self.boot_time),
        ] {
            if let Some([lo, hi]) = range
                && !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi)
            {
                return Err(EnvError::Config {
                    env: id.into(),
                    field: format!("randomize.{name}"),
                    reason: format!("must be [low, high] with 0 < low ≤ high, got [{lo}, {hi}]"),
                });
            }
        }
        Ok(())
    }

    /// The factors (load, fault rate, boot time) of the episode with `seed`.
    pub(crate) fn factors(&self, seed: u64) -> [f64; 3] {
        let mut s = hale_sim::rng::Stream::from_key(hale_sim::rng::key(seed, 0x7a4d));
        // Every factor is drawn, set or not, so that one range does not move another.
        [self.load, self.fault_rate, self.boot_time].map(|r| {
            let u = s.unit();
            r.map_or(1.0, |[lo, hi]| lo + u * (hi - lo))
        })
    }

    /// The scenario of the episode with `seed`: `sc` itself when nothing is randomised.
    pub(crate) fn episode(&self, sc: &Arc<Scenario>, seed: u64) -> Arc<Scenario> {
        if *self == Randomize::default() {
            return sc.clone();
        }
        let [load, faults, boot] = self.factors(seed);
        let mut spec = sc.spec.clone();
        for w in &mut spec.workload {
            w.rate = w.rate.scaled(load);
        }
        for p in &mut spec.faults.mtbf {
            p.every = p.every.stretched(1.0 / faults);
        }
        for s in &mut spec.services {
            s.boot_time_s *= boot;
        }
        // Positive factors of a valid scenario keep it valid.
        Arc::new(Scenario::from_spec(spec, &sc.origin).unwrap_or_else(|_| (**sc).clone()))
    }
}

/// `sc` with the cluster autoscaler on (the scenario's settings, or the defaults) or
/// off.
pub(crate) fn with_autoscaler(id: &str, sc: Scenario, on: bool) -> Result<Scenario, EnvError> {
    if on == sc.spec.cluster.autoscaler.is_some() {
        return Ok(sc);
    }
    let mut spec = sc.spec.clone();
    spec.cluster.autoscaler = on.then(hale_sim::AutoscalerSpec::default);
    Scenario::from_spec(spec, &sc.origin).map_err(|e| EnvError::Config {
        env: id.into(),
        field: "cluster_autoscaler".into(),
        reason: e.to_string(),
    })
}

/// The error of an env asked to reset on a scenario whose trace it did not read.
pub(crate) fn unread_trace(id: &str, unread: &Option<String>) -> Result<(), EnvError> {
    match unread {
        None => Ok(()),
        Some(path) => Err(EnvError::Config {
            env: id.into(),
            field: "scenario".into(),
            reason: format!(
                "its workload is the trace {path:?}, and this build of hale-envs reads no \
                 traces (its `traces` feature is off): it knows the scenario's spaces, not \
                 its load"
            ),
        }),
    }
}

pub(crate) fn positive(id: &str, field: &str, v: f64) -> Result<(), EnvError> {
    number(id, field, v, v > 0.0, "positive")
}

/// A weight or a price in an env config: finite and not negative.
pub(crate) fn non_negative(id: &str, field: &str, v: f64) -> Result<(), EnvError> {
    number(id, field, v, v >= 0.0, "≥ 0")
}

/// `Ok` when `v` is finite and `ok`, else a config error saying it must be `what`.
fn number(id: &str, field: &str, v: f64, ok: bool, what: &str) -> Result<(), EnvError> {
    if v.is_finite() && ok {
        Ok(())
    } else {
        Err(EnvError::Config {
            env: id.into(),
            field: field.into(),
            reason: format!("must be {what}, got {v}"),
        })
    }
}

/// A span of simulated time in an env config (`episode_s`): positive and at most
/// [`hale_sim::MAX_DURATION_S`], so that an episode ends.
pub(crate) fn duration(id: &str, field: &str, v: f64) -> Result<(), EnvError> {
    positive(id, field, v)?;
    if v > hale_sim::MAX_DURATION_S {
        return Err(EnvError::Config {
            env: id.into(),
            field: field.into(),
            reason: format!(
                "{v} s is longer than the longest run, {} s (a year)",
                hale_sim::MAX_DURATION_S
            ),
        });
    }
    Ok(())
}

/// A period in an env config (`control_interval_s`, `fluid_tick_s`): at least
/// [`hale_sim::MIN_PERIOD_S`] and at most [`hale_sim::MAX_DURATION_S`].
pub(crate) fn period(id: &str, field: &str, v: f64) -> Result<(), EnvError> {
    duration(id, field, v)?;
    if v < hale_sim::MIN_PERIOD_S {
        return Err(EnvError::Config {
            env: id.into(),
            field: field.into(),
            reason: format!(
                "{v} s is shorter than the shortest period, {} s",
                hale_sim::MIN_PERIOD_S
            ),
        });
    }
    Ok(())
}

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
        out[s * SERVICE_FEATURES..(s + 1) * SERVICE_FEATURES].copy_from_slice(
            &crate::encoding::ServiceReading::from(m).encode(refs[s], max_replicas),
        );
    }
}

/// The state a monitoring system can see: a hung replica looks ready until a probe
/// fails, and a degraded one looks ready (its latency and memory give it away).
pub(crate) fn visible_state(s: ReplicaState, probe_failures: u32) -> ReplicaState {
    match s {
        ReplicaState::Hung if probe_failures == 0 => ReplicaState::Ready,
        ReplicaState::Degraded => ReplicaState::Ready,
        other => other,
    }
}

/// What monitoring shows of replica `id`, with its last scrape window's metrics (if
/// it had one) — the reading both cloud envs encode.
pub(crate) fn replica_reading(
    sim: &Simulation,
    id: usize,
    window: Option<&hale_sim::ReplicaMetrics>,
) -> crate::encoding::ReplicaReading {
    let rep = &sim.replicas()[id];
    let spec = &sim.scenario().spec.services[rep.service];
    let limit = rep.memory_mib * spec.limit_ratio();
    crate::encoding::ReplicaReading {
        service: rep.service,
        state: visible_state(rep.state, rep.probe_failures),
        probe_failures: rep.probe_failures,
        restarts: rep.restarts,
        memory_fraction: rep.memory_used_mib(spec.working_set(), sim.now()) / limit,
        mean_latency_ms: window.map_or(0.0, |m| m.mean_latency_ms),
        error_rate: window.map_or(0.0, |m| m.error_rate),
        host_up: rep
            .host
            .is_some_and(|h| sim.hosts()[h].state == HostState::Ready),
    }
}

/// Host `id` as the cloud envs encode it.
pub(crate) fn host_reading(sim: &Simulation, id: usize) -> crate::encoding::HostReading {
    let host = &sim.hosts()[id];
    crate::encoding::HostReading {
        up: host.state == HostState::Ready,
        cordoned: host.cordoned,
        cpu_allocation: host.cpu_allocated / host.cpu,
    }
}

/// The resource graph as a `Graph` observation. Nodes come in the order zones, hosts
/// (not removed, by id), services, replicas (by service, then id); replica states are
/// what monitoring can see ([`visible_state`]).
pub(crate) fn graph_observation(
    sim: &Simulation,
    encoding: &crate::encoding::GraphEncoding,
) -> GraphValue {
    use crate::encoding::{GraphHost, GraphReplica, ServiceReading};
    let snap = sim.observe();
    let per_replica: std::collections::HashMap<usize, &hale_sim::ReplicaMetrics> = snap
        .map(|s| s.replicas.iter().map(|m| (m.replica, m)).collect())
        .unwrap_or_default();
    // Hosts not removed, by id; each replica's host by its place in that list.
    let live_hosts: Vec<usize> = (0..sim.hosts().len())
        .filter(|&h| sim.hosts()[h].state != HostState::Removed)
        .collect();
    let hosts: Vec<GraphHost> = live_hosts
        .iter()
        .map(|&h| {
            let host = &sim.hosts()[h];
            GraphHost {
                zone: host.zone,
                reading: host_reading(sim, h),
                memory_allocation: host.memory_allocated / host.memory_mib,
            }
        })
        .collect();
    let replicas: Vec<GraphReplica> = sim
        .services()
        .iter()
        .flat_map(|st| st.replicas.iter().copied())
        .map(|x| GraphReplica {
            reading: replica_reading(sim, x, per_replica.get(&x).copied()),
            host: sim.replicas()[x]
                .host
                .and_then(|h| live_hosts.iter().position(|&l| l == h)),
        })
        .collect();
    let services: Vec<ServiceReading> = snap
        .map(|s| s.services.iter().map(ServiceReading::from).collect())
        .unwrap_or_default();
    encoding.encode(
        sim.scenario().spec.zones.len(),
        &hosts,
        &services,
        &replicas,
    )
}

/// The graph encoding of an env over `sc` whose replica counts are divided by
/// `max_replicas`.
pub(crate) fn graph_encoding(
    sc: &Scenario,
    refs: &[f64],
    max_replicas: f64,
) -> crate::encoding::GraphEncoding {
    crate::encoding::GraphEncoding {
        services: sc.spec.services.iter().map(|s| s.name.clone()).collect(),
        latency_refs_ms: refs.to_vec(),
        max_replicas,
        calls: sc
            .edges
            .iter()
            .filter_map(|e| e.from.map(|from| (from, e.to, e.fanout)))
            .collect(),
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
    pub(crate) cost: f64,
    slo_s: f64,
    spot_reclaims: u64,
    evictions: u64,
    time_s: f64,
    /// Per service, slot-seconds of processing so far.
    busy_s: Vec<f64>,
}

impl Before {
    pub(crate) fn read(sim: &Simulation) -> Before {
        Before {
            requests: sim.requests(),
            cost: sim.cost(),
            slo_s: slo_seconds(sim),
            spot_reclaims: sim.spot_reclaims(),
            evictions: sim.evictions(),
            time_s: sim.now().as_secs_f64(),
            busy_s: (0..sim.services().len())
                .map(|s| sim.service_totals(s).busy_s)
                .collect(),
        }
    }
}

/// What evaluation tables need from a step of a cloud env, shared by Scaling-v0 and
/// Healing-v0: requests and unserved requests, SLO-violation seconds, the host bill,
/// the cores requested by live replicas times the step (core-hours, a chargeback
/// cost), CPU and memory used and requested per service (for Autopilot's slack), the
/// user-facing p95 and p99 (the first workload's entry service, last scrape), the
/// slot slack (1 − busy slots / ready slots, last scrape), and the time to recovery
/// of faults resolved in the step.
pub(crate) fn common_info(
    sim: &Simulation,
    before: &Before,
    faults: &mut FaultReporter,
) -> crate::env::CloudInfo {
    let (requests, unserved) = interval_requests(before.requests, sim.requests());
    let now = sim.now();
    let dt = (now.as_secs_f64() - before.time_s).max(0.0);
    let sc = sim.scenario();
    let n = sc.spec.services.len();
    let mut usage = crate::env::Usage {
        cpu_used_core_s: vec![0.0; n],
        cpu_requested_core_s: vec![0.0; n],
        memory_used_mib_s: vec![0.0; n],
        memory_requested_mib_s: vec![0.0; n],
    };
    let mut cores = 0.0;
    for r in sim.replicas().iter().filter(|r| r.state.is_live()) {
        cores += r.cpu;
        let working_set = sc.spec.services[r.service].working_set();
        usage.cpu_requested_core_s[r.service] += r.cpu * dt;
        usage.memory_requested_mib_s[r.service] += r.memory_mib * dt;
        usage.memory_used_mib_s[r.service] += r.memory_used_mib(working_set, now) * dt;
    }
    for (s, spec) in sc.spec.services.iter().enumerate() {
        // A busy slot uses a replica's cores over its slots.
        let busy = sim.service_totals(s).busy_s - before.busy_s.get(s).copied().unwrap_or(0.0);
        usage.cpu_used_core_s[s] =
            busy.max(0.0) * sim.services()[s].cpu / spec.concurrency.max(1) as f64;
    }
    let (mut p95_ms, mut p99_ms, mut slot_slack) = (None, None, None);
    if let Some(snap) = sim.observe() {
        let entry = &snap.services[sc.workload_service[0]];
        p95_ms = Some(entry.p95_ms);
        p99_ms = Some(entry.p99_ms);
        let (mut busy, mut slots) = (0.0, 0.0);
        for (s, m) in snap.services.iter().enumerate() {
            let c = m.replicas_ready as f64 * sc.spec.services[s].concurrency as f64;
            busy += m.cpu_utilization * c;
            slots += c;
        }
        slot_slack = Some(if slots > 0.0 { 1.0 - busy / slots } else { 0.0 });
    }
    let (ttr_s, ttr_kinds) = faults.newly_resolved(sim);
    let (mut faults_open, mut open_fault_age_s) = (0, 0.0);
    for f in sim.faults().iter().filter(|f| f.resolved_at.is_none()) {
        faults_open += 1;
        open_fault_age_s += now.saturating_sub(f.at).as_secs_f64();
    }
    crate::env::CloudInfo {
        step_s: dt,
        requests,
        unserved,
        slo_violation_s: slo_seconds(sim) - before.slo_s,
        cost: sim.cost() - before.cost,
        core_hours: cores * dt / 3600.0,
        usage,
        p95_ms,
        p99_ms,
        slot_slack,
        ttr_s,
        ttr_kinds,
        desired: sim.services().iter().map(|s| s.desired).collect(),
        hosts: sim
            .hosts()
            .iter()
            .filter(|h| h.state != hale_sim::HostState::Removed)
            .count() as u32,
        spot_reclaims: (sim.spot_reclaims() - before.spot_reclaims) as u32,
        evictions: (sim.evictions() - before.evictions) as u32,
        faults_open,
        open_fault_age_s,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The adapter's build reads no traces: it still knows the scenario, and an env
    /// on it refuses to run.
    #[test]
    fn a_scenario_without_its_traces_keeps_its_topology() {
        let text = include_str!("../../sim/scenarios/microservices-20.toml").replace(
            r#"rate = { kind = "diurnal", mean_rps = 600, amplitude = 0.5, period_s = 3600 }"#,
            r#"rate = { kind = "trace", path = "nowhere/workload.txt", mean_rps = 600.0 }"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traced.toml");
        std::fs::write(&path, text).unwrap();
        let name = path.to_str().unwrap();
        assert!(
            Scenario::load(name).is_err(),
            "the simulator alone cannot load it"
        );
        let (sc, unread) = without_traces(name).unwrap();
        assert_eq!(unread.as_deref(), Some("nowhere/workload.txt"));
        let builtin = Scenario::builtin("microservices-20").unwrap();
        let names = |sc: &Scenario| -> Vec<String> {
            sc.spec.services.iter().map(|s| s.name.clone()).collect()
        };
        assert_eq!(names(&sc), names(&builtin));
        assert_eq!(sc.edges.len(), builtin.edges.len());
        assert_eq!(sc.spec.slos.len(), builtin.spec.slos.len());
        let e = unread_trace("Scaling-v0", &unread).unwrap_err().to_string();
        assert!(
            e.contains("nowhere/workload.txt") && e.contains("traces"),
            "{e}"
        );
        assert!(unread_trace("Scaling-v0", &None).is_ok());
        let (_, none) = without_traces("three-tier").unwrap();
        assert_eq!(none, None);
    }
}
