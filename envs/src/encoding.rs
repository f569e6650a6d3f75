//! The cloud envs' observation encoding, in one place: the feature layouts (service
//! rows, Healing-v0's replica, host and service rows, the resource graph's node and
//! edge features, each offset named), the readings they are built from, and the
//! encoders. The envs encode the simulator's state through it, and the actuation
//! adapter encodes live readings from Prometheus and the target through it, so a
//! policy sees in production exactly the observation it was trained on.

use serde::{Deserialize, Serialize};

/// Which observation a cloud env produces (its config's `observation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationKind {
    /// `[services × SERVICE_FEATURES]` features (Healing-v0: its replica, host and
    /// service rows), flattened.
    #[default]
    Matrix,
    /// The resource graph (zones, hosts, services, replicas) with node and edge features.
    Graph,
}

/// Features per service in matrix observations ([`ServiceReading::encode`]).
pub const SERVICE_FEATURES: usize = 9;

/// Offsets in a service's [`SERVICE_FEATURES`] features ([`ServiceReading::encode`]).
pub mod service {
    /// ln(1 + requests per second) / 10.
    pub const RATE: usize = 0;
    /// p50 latency over the service's reference, capped at 10.
    pub const P50: usize = 1;
    /// p95, likewise.
    pub const P95: usize = 2;
    /// p99, likewise.
    pub const P99: usize = 3;
    /// Error rate.
    pub const ERRORS: usize = 4;
    /// CPU utilisation.
    pub const CPU: usize = 5;
    /// Ready replicas over the env's `max_replicas`.
    pub const READY: usize = 6;
    /// Starting replicas, likewise.
    pub const BOOTING: usize = 7;
    /// Desired replicas, likewise.
    pub const DESIRED: usize = 8;
}

/// Replica states in one-hot form ([`state_index`]).
pub const STATES: usize = 8;

/// A replica state's position in its one-hot block.
pub fn state_index(s: ReplicaState) -> usize {
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

/// The kinds of graph nodes, the first four node features (one-hot), in the order
/// nodes come: zones, hosts, services, replicas.
pub mod node_kind {
    /// A zone.
    pub const ZONE: usize = 0;
    /// A host.
    pub const HOST: usize = 1;
    /// A service.
    pub const SERVICE: usize = 2;
    /// A replica.
    pub const REPLICA: usize = 3;
    /// How many kinds.
    pub const COUNT: usize = 4;
}

/// Offsets in a graph node's feature row ([`NODE_FEATURES`] long): the kind one-hot,
/// then the service block, the replica block and the host block (zero where a node
/// is of another kind).
pub mod node {
    use super::{SERVICE_FEATURES, STATES, node_kind};
    /// Kind one-hot ([`node_kind`]).
    pub const KIND: usize = 0;
    /// A service's [`SERVICE_FEATURES`] features.
    pub const SERVICE: usize = KIND + node_kind::COUNT;
    /// A replica's state one-hot ([`super::STATES`]).
    pub const REPLICA_STATE: usize = SERVICE + SERVICE_FEATURES;
    /// Probe failures / 3, capped at 10.
    pub const PROBE_FAILURES: usize = REPLICA_STATE + STATES;
    /// Restarts / 5, capped at 10.
    pub const RESTARTS: usize = PROBE_FAILURES + 1;
    /// Memory over its limit.
    pub const MEMORY: usize = RESTARTS + 1;
    /// Mean latency over the service's reference, capped at 10.
    pub const LATENCY: usize = MEMORY + 1;
    /// Error rate.
    pub const ERRORS: usize = LATENCY + 1;
    /// A host is up.
    pub const HOST_UP: usize = ERRORS + 1;
    /// A host is cordoned.
    pub const HOST_CORDONED: usize = HOST_UP + 1;
    /// A host's CPU allocation.
    pub const HOST_CPU: usize = HOST_CORDONED + 1;
    /// A host's memory allocation.
    pub const HOST_MEMORY: usize = HOST_CPU + 1;
    /// Features per node.
    pub const FEATURES: usize = HOST_MEMORY + 1;
}

/// Node features of the graph observation: kind one-hot (zone, host, service,
/// replica), the service features, replica state one-hot (8) with probe failures,
/// restarts, memory over limit, mean latency over the SLO bound and error rate (last
/// scrape), and host up, cordoned, CPU and memory allocation (offsets in [`node`]).
pub const NODE_FEATURES: usize = node::FEATURES;

/// The relations of graph edges, the first four edge features (one-hot), then the
/// fan-out ([`edge::FANOUT`]).
pub mod edge {
    /// Zone → host.
    pub const CONTAINS: usize = 0;
    /// Host → replica.
    pub const RUNS: usize = 1;
    /// Service → replica.
    pub const OWNS: usize = 2;
    /// Caller → callee.
    pub const CALLS: usize = 3;
    /// Calls per request (for `CALLS`; 0 otherwise).
    pub const FANOUT: usize = 4;
    /// Features per edge.
    pub const FEATURES: usize = FANOUT + 1;
}

/// Edge features: relation one-hot (contains, runs, owns, calls) and fan-out.
pub const EDGE_FEATURES: usize = edge::FEATURES;

/// Offsets in Healing-v0's flat replica row.
pub mod replica_row {
    use super::STATES;
    /// 1 where the slot holds a replica.
    pub const PRESENT: usize = 0;
    /// State one-hot ([`super::STATES`]).
    pub const STATE: usize = 1;
    /// Probe failures / 3, capped at 10.
    pub const PROBE_FAILURES: usize = STATE + STATES;
    /// Restarts / 5, capped at 10.
    pub const RESTARTS: usize = PROBE_FAILURES + 1;
    /// Memory over its limit.
    pub const MEMORY: usize = RESTARTS + 1;
    /// Its service's index over the number of services.
    pub const SERVICE: usize = MEMORY + 1;
    /// Mean latency over the service's reference, capped at 10.
    pub const LATENCY: usize = SERVICE + 1;
    /// Error rate.
    pub const ERRORS: usize = LATENCY + 1;
    /// Features per replica slot.
    pub const FEATURES: usize = ERRORS + 1;
}

/// Offsets in Healing-v0's flat host row.
pub mod host_row {
    /// 1 where the slot holds a host.
    pub const PRESENT: usize = 0;
    /// Up.
    pub const UP: usize = 1;
    /// Cordoned.
    pub const CORDONED: usize = 2;
    /// CPU allocation.
    pub const CPU: usize = 3;
    /// Features per host slot.
    pub const FEATURES: usize = 4;
}

/// Offsets in Healing-v0's flat service row.
pub mod service_row {
    /// Error rate.
    pub const ERRORS: usize = 0;
    /// p95 latency over the service's reference, capped at 10.
    pub const P95: usize = 1;
    /// Its share of all requests.
    pub const RATE_SHARE: usize = 2;
    /// Features per service.
    pub const FEATURES: usize = 3;
}

/// What monitoring says about one service, in the units the env's simulator reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServiceReading {
    /// Requests per second reaching the service.
    pub request_rate: f64,
    /// Latency percentiles of answered requests, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Failed over answered requests, 0..1.
    pub error_rate: f64,
    /// Busy over available CPU of the serving replicas, 0..1.
    pub cpu_utilization: f64,
    /// Replicas ready.
    pub ready: u32,
    /// Replicas starting (pending or booting).
    pub booting: u32,
    /// Desired replicas.
    pub desired: u32,
}

impl From<&hale_sim::ServiceMetrics> for ServiceReading {
    /// What the simulator's monitoring reported.
    fn from(m: &hale_sim::ServiceMetrics) -> ServiceReading {
        ServiceReading {
            request_rate: m.request_rate,
            p50_ms: m.p50_ms,
            p95_ms: m.p95_ms,
            p99_ms: m.p99_ms,
            error_rate: m.error_rate,
            cpu_utilization: m.cpu_utilization,
            ready: m.replicas_ready,
            booting: m.replicas_booting,
            desired: m.replicas_desired,
        }
    }
}

impl ServiceReading {
    /// The service's nine features: `[ln(1 + rate) / 10, p50/ref, p95/ref, p99/ref,
    /// error rate, CPU utilisation, ready/max, booting/max, desired/max]`, latency
    /// ratios capped at 10.
    pub fn encode(&self, latency_ref_ms: f64, max_replicas: f64) -> [f32; SERVICE_FEATURES] {
        let r = latency_ref_ms;
        [
            (1.0 + self.request_rate).ln() / 10.0,
            (self.p50_ms / r).min(10.0),
            (self.p95_ms / r).min(10.0),
            (self.p99_ms / r).min(10.0),
            self.error_rate,
            self.cpu_utilization,
            f64::from(self.ready) / max_replicas,
            f64::from(self.booting) / max_replicas,
            f64::from(self.desired) / max_replicas,
        ]
        .map(|v| v as f32)
    }
}

/// Which per-service features `Scaling-v0`'s matrix observation has: `v1` (the
/// default, what bundles trained before issue 16 read) or `v2`, which adds
/// [`LEAD_FEATURES`] that let a policy lead the load rather than follow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureSet {
    /// The [`SERVICE_FEATURES`] of a [`ServiceReading`].
    #[default]
    V1,
    /// Those, then the [`LeadReading`] features.
    V2,
}

impl FeatureSet {
    /// Features per service.
    pub fn per_service(self) -> usize {
        match self {
            FeatureSet::V1 => SERVICE_FEATURES,
            FeatureSet::V2 => SERVICE_FEATURES + LEAD_FEATURES,
        }
    }
}

/// Features per service that `features = "v2"` appends ([`LeadReading::encode`]).
pub const LEAD_FEATURES: usize = 3;

/// Offsets of the `v2` features after the [`SERVICE_FEATURES`].
pub mod lead {
    /// The rate's recent trend: ln((1 + last scrape's rate) / (1 + mean rate over the
    /// last 5 minutes)), clamped to ±5: positive while the load rises.
    pub const RATE_TREND: usize = super::SERVICE_FEATURES;
    /// Replicas pending (no host has room for them yet) over the env's `max_replicas`
    /// (`booting` counts them too).
    pub const PENDING: usize = RATE_TREND + 1;
    /// CPU request per replica over the scenario's (1 unless the policy resized it).
    pub const CPU_SIZE: usize = PENDING + 1;
}

/// The trend window of [`lead::RATE_TREND`], seconds.
pub const TREND_WINDOW_S: f64 = 300.0;

/// What a monitoring system also shows, for the `v2` features: a 5-minute rate (in
/// PromQL, `rate(requests_total[5m])`), pending replicas, and the CPU request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LeadReading {
    /// Mean requests per second over the last [`TREND_WINDOW_S`] (or since the start).
    pub rate_5m: f64,
    /// Replicas waiting for a host.
    pub pending: u32,
    /// CPU request per replica over the scenario's.
    pub cpu_size: f64,
}

impl LeadReading {
    /// The [`LEAD_FEATURES`], given the service's last-scrape rate.
    pub fn encode(&self, rate_now: f64, max_replicas: f64) -> [f32; LEAD_FEATURES] {
        [
            ((1.0 + rate_now.max(0.0)) / (1.0 + self.rate_5m.max(0.0)))
                .ln()
                .clamp(-5.0, 5.0),
            f64::from(self.pending) / max_replicas,
            self.cpu_size,
        ]
        .map(|v| v as f32)
    }
}

/// How `Scaling-v0` with a given config encodes its (matrix) observation.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingObservation {
    /// Service names, in observation (and action) order.
    pub services: Vec<String>,
    /// Latency each service's percentiles are divided by: its SLO bound, or 100 ms.
    pub latency_refs_ms: Vec<f64>,
    /// Replica counts are divided by this (the env's `max_replicas`).
    pub max_replicas: f64,
}

impl ScalingObservation {
    /// Features per service.
    pub const FEATURES: usize = SERVICE_FEATURES;

    /// The flat observation from one reading per service, in `services` order.
    pub fn encode(&self, readings: &[ServiceReading]) -> Result<Vec<f32>, String> {
        if readings.len() != self.services.len() {
            return Err(format!(
                "{} readings for {} services",
                readings.len(),
                self.services.len()
            ));
        }
        Ok(readings
            .iter()
            .zip(&self.latency_refs_ms)
            .flat_map(|(m, &r)| m.encode(r, self.max_replicas))
            .collect())
    }
}

/// How `Scaling-v0` turns an action's choice for one service into desired replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingActions {
    /// Choices are changes −2…+2 (`action = "delta"`) rather than target counts.
    pub delta: bool,
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// CPU request levels (factors of the scenario's request) of the second action
    /// block, one choice per service; empty when the env sizes replica counts only.
    pub cpu_levels: Vec<f64>,
}

impl ScalingActions {
    /// The choice that keeps the scenario's CPU request (level 1.0), if the env sizes
    /// CPU.
    pub fn base_cpu_choice(&self) -> Option<i64> {
        self.cpu_levels
            .iter()
            .position(|&l| l == 1.0)
            .map(|i| i as i64)
    }

    /// Desired replicas for `choice` when the service wants `current` now.
    pub fn replicas(&self, choice: i64, current: u32) -> u32 {
        let target = if self.delta {
            i64::from(current) + choice - 2
        } else {
            i64::from(self.min_replicas) + choice
        };
        target.clamp(i64::from(self.min_replicas), i64::from(self.max_replicas)) as u32
    }
}

pub use hale_sim::ReplicaState;

/// One replica as the orchestrator and monitoring show it, for `Healing-v0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplicaReading {
    /// Its service's index in the env's order.
    pub service: usize,
    /// Its state as monitoring sees it (a hung replica whose probes still pass looks
    /// ready).
    pub state: ReplicaState,
    /// Consecutive failed probes.
    pub probe_failures: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// Memory in use over its limit.
    pub memory_fraction: f64,
    /// Mean latency of what it answered in the last scrape window, ms (0 if nothing).
    pub mean_latency_ms: f64,
    /// Failed over answered in that window (0 if nothing).
    pub error_rate: f64,
    /// Whether the node it runs on is up (a restart needs one).
    pub host_up: bool,
}

/// One host (node) for `Healing-v0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostReading {
    /// Up (ready).
    pub up: bool,
    /// Cordoned (no new work placed on it).
    pub cordoned: bool,
    /// Requested over available cores.
    pub cpu_allocation: f64,
}

/// A `Healing-v0` action, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealingAction {
    /// Nothing.
    Noop,
    /// Restart the replica in this slot.
    Restart(usize),
    /// Replace the replica in this slot by one placed elsewhere.
    Reschedule(usize),
    /// Roll this service back to its previous revision.
    Rollback(usize),
    /// Drain the host in this slot.
    Drain(usize),
}

/// How `Healing-v0` with a given config encodes its (matrix) observation, its mask
/// and its actions; the env itself uses this encoding, so live data encoded here is
/// what a policy was trained on.
#[derive(Clone, Debug, PartialEq)]
pub struct HealingObservation {
    /// Service names, in the env's order.
    pub services: Vec<String>,
    /// Latency each service's percentiles are divided by: its SLO bound, or 100 ms.
    pub latency_refs_ms: Vec<f64>,
    /// Replica slots.
    pub max_replicas: usize,
    /// Host slots.
    pub max_hosts: usize,
}

impl HealingObservation {
    /// Features per replica slot.
    pub const REPLICA_FEATURES: usize = replica_row::FEATURES;
    /// Features per host slot.
    pub const HOST_FEATURES: usize = host_row::FEATURES;
    /// Features per service.
    pub const SERVICE_FEATURES: usize = service_row::FEATURES;

    /// Length of the flat observation.
    pub fn dim(&self) -> usize {
        self.max_replicas * Self::REPLICA_FEATURES
            + self.max_hosts * Self::HOST_FEATURES
            + self.services.len() * Self::SERVICE_FEATURES
    }

    /// Number of discrete actions.
    pub fn actions(&self) -> usize {
        1 + 2 * self.max_replicas + self.services.len() + self.max_hosts
    }

    /// The flat observation: the first `max_replicas` replicas (ordered by service,
    /// then the orchestrator's order), the first `max_hosts` hosts, and one reading
    /// per service (or none, which leaves the service rows at zero).
    pub fn encode(
        &self,
        replicas: &[ReplicaReading],
        hosts: &[HostReading],
        services: &[ServiceReading],
    ) -> Vec<f32> {
        let (r, h) = (self.max_replicas, self.max_hosts);
        let n_services = self.services.len();
        let mut obs = vec![0.0f32; self.dim()];
        for (k, rep) in replicas.iter().take(r).enumerate() {
            let row = &mut obs[k * Self::REPLICA_FEATURES..(k + 1) * Self::REPLICA_FEATURES];
            use replica_row as f;
            row[f::PRESENT] = 1.0;
            row[f::STATE + state_index(rep.state)] = 1.0;
            row[f::PROBE_FAILURES] = (rep.probe_failures as f32 / 3.0).min(10.0);
            row[f::RESTARTS] = (rep.restarts as f32 / 5.0).min(10.0);
            row[f::MEMORY] = rep.memory_fraction as f32;
            row[f::SERVICE] = rep.service as f32 / n_services as f32;
            row[f::LATENCY] =
                (rep.mean_latency_ms / self.latency_refs_ms[rep.service]).min(10.0) as f32;
            row[f::ERRORS] = rep.error_rate as f32;
        }
        let base = r * Self::REPLICA_FEATURES;
        for (k, host) in hosts.iter().take(h).enumerate() {
            let row =
                &mut obs[base + k * Self::HOST_FEATURES..base + (k + 1) * Self::HOST_FEATURES];
            row[host_row::PRESENT] = 1.0;
            row[host_row::UP] = host.up as u8 as f32;
            row[host_row::CORDONED] = host.cordoned as u8 as f32;
            row[host_row::CPU] = host.cpu_allocation as f32;
        }
        let base = base + h * Self::HOST_FEATURES;
        let total: f64 = services
            .iter()
            .map(|m| m.request_rate)
            .sum::<f64>()
            .max(1e-9);
        for (s, m) in services.iter().take(n_services).enumerate() {
            let row = &mut obs
                [base + s * Self::SERVICE_FEATURES..base + (s + 1) * Self::SERVICE_FEATURES];
            row[service_row::ERRORS] = m.error_rate as f32;
            row[service_row::P95] = (m.p95_ms / self.latency_refs_ms[s]).min(10.0) as f32;
            row[service_row::RATE_SHARE] = (m.request_rate / total) as f32;
        }
        obs
    }

    /// What applies now: no-op always; a restart of a replica that has a process (or
    /// had one) on an up host; a reschedule of a placed, live replica; a roll back of
    /// a service with a previous revision (`rollback_possible`, per service); a drain
    /// of an up host not yet cordoned.
    pub fn mask(
        &self,
        replicas: &[ReplicaReading],
        hosts: &[HostReading],
        rollback_possible: &[bool],
    ) -> Vec<bool> {
        let (r, n_services) = (self.max_replicas, self.services.len());
        let mut mask = vec![false; self.actions()];
        mask[0] = true;
        for (k, rep) in replicas.iter().take(r).enumerate() {
            let restartable = matches!(
                rep.state,
                ReplicaState::Ready
                    | ReplicaState::Degraded
                    | ReplicaState::Hung
                    | ReplicaState::Crashed
                    | ReplicaState::Booting
            );
            mask[1 + k] = restartable && rep.host_up;
            mask[1 + r + k] = rep.state.is_live() && rep.state != ReplicaState::Pending;
        }
        for (s, &possible) in rollback_possible.iter().take(n_services).enumerate() {
            mask[1 + 2 * r + s] = possible;
        }
        for (k, host) in hosts.iter().take(self.max_hosts).enumerate() {
            mask[1 + 2 * r + n_services + k] = host.up && !host.cordoned;
        }
        mask
    }

    /// The action with index `a` (`None` past the last).
    pub fn action(&self, a: usize) -> Option<HealingAction> {
        let (r, s) = (self.max_replicas, self.services.len());
        Some(match a {
            0 => HealingAction::Noop,
            a if a <= r => HealingAction::Restart(a - 1),
            a if a <= 2 * r => HealingAction::Reschedule(a - 1 - r),
            a if a <= 2 * r + s => HealingAction::Rollback(a - 1 - 2 * r),
            a if a < self.actions() => HealingAction::Drain(a - 1 - 2 * r - s),
            _ => return None,
        })
    }
}

/// One host (node) of the resource graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraphHost {
    /// Its zone's index (zones are numbered from 0 in order).
    pub zone: usize,
    /// Up, cordoned, CPU allocation.
    pub reading: HostReading,
    /// Requested over available memory.
    pub memory_allocation: f64,
}

/// One replica of the resource graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraphReplica {
    /// What the flat observation reads of it (its service among them).
    pub reading: ReplicaReading,
    /// The index of its host in the graph's host list, if placed.
    pub host: Option<usize>,
}

/// How the cloud envs build their resource-graph observation (`observation =
/// "graph"`): nodes are zones, hosts, services, then replicas (by service, then the
/// orchestrator's order); edges are zone → host (contains), caller → callee (calls,
/// with fan-out, in the scenario's order), then per replica service → replica (owns)
/// and host → replica (runs). The envs build theirs through this, so live data
/// encoded here is the graph a GNN policy was trained on.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphEncoding {
    /// Service names, in the env's order.
    pub services: Vec<String>,
    /// Latency each service's percentiles are divided by.
    pub latency_refs_ms: Vec<f64>,
    /// Replica counts in the service features are divided by this.
    pub max_replicas: f64,
    /// Service calls `(caller, callee, fan-out)`, in the scenario's order.
    pub calls: Vec<(usize, usize, u32)>,
}

impl GraphEncoding {
    /// The graph of `zones` zones, `hosts`, one reading per service (or none, which
    /// leaves the service features at zero) and `replicas`.
    pub fn encode(
        &self,
        zones: usize,
        hosts: &[GraphHost],
        services: &[ServiceReading],
        replicas: &[GraphReplica],
    ) -> crate::GraphValue {
        let n_services = self.services.len();
        let n = zones + hosts.len() + n_services + replicas.len();
        let mut nodes = vec![0.0f32; n * NODE_FEATURES];
        let row = |i: usize| i * NODE_FEATURES..(i + 1) * NODE_FEATURES;
        for z in 0..zones {
            nodes[row(z)][node::KIND + node_kind::ZONE] = 1.0;
        }
        for (k, h) in hosts.iter().enumerate() {
            let r = &mut nodes[row(zones + k)];
            r[node::KIND + node_kind::HOST] = 1.0;
            r[node::HOST_UP] = h.reading.up as u8 as f32;
            r[node::HOST_CORDONED] = h.reading.cordoned as u8 as f32;
            r[node::HOST_CPU] = h.reading.cpu_allocation as f32;
            r[node::HOST_MEMORY] = h.memory_allocation as f32;
        }
        let first_service = zones + hosts.len();
        for s in 0..n_services {
            let r = &mut nodes[row(first_service + s)];
            r[node::KIND + node_kind::SERVICE] = 1.0;
            if let Some(m) = services.get(s) {
                r[node::SERVICE..node::SERVICE + SERVICE_FEATURES]
                    .copy_from_slice(&m.encode(self.latency_refs_ms[s], self.max_replicas));
            }
        }
        let first_replica = first_service + n_services;
        for (k, x) in replicas.iter().enumerate() {
            let rep = &x.reading;
            let r = &mut nodes[row(first_replica + k)];
            r[node::KIND + node_kind::REPLICA] = 1.0;
            r[node::REPLICA_STATE + state_index(rep.state)] = 1.0;
            r[node::PROBE_FAILURES] = (rep.probe_failures as f32 / 3.0).min(10.0);
            r[node::RESTARTS] = (rep.restarts as f32 / 5.0).min(10.0);
            r[node::MEMORY] = rep.memory_fraction as f32;
            r[node::LATENCY] =
                (rep.mean_latency_ms / self.latency_refs_ms[rep.service]).min(10.0) as f32;
            r[node::ERRORS] = rep.error_rate as f32;
        }
        let mut edges = Vec::new();
        let mut links = Vec::new();
        let mut add_edge = |relation: usize, fanout: f32, from: usize, to: usize| {
            let mut f = [0.0f32; EDGE_FEATURES];
            f[relation] = 1.0;
            f[edge::FANOUT] = fanout;
            edges.extend_from_slice(&f);
            links.push([from as u32, to as u32]);
        };
        for (k, h) in hosts.iter().enumerate() {
            add_edge(edge::CONTAINS, 0.0, h.zone, zones + k);
        }
        for &(from, to, fanout) in &self.calls {
            add_edge(
                edge::CALLS,
                fanout as f32,
                first_service + from,
                first_service + to,
            );
        }
        for (k, x) in replicas.iter().enumerate() {
            add_edge(
                edge::OWNS,
                0.0,
                first_service + x.reading.service,
                first_replica + k,
            );
            if let Some(h) = x.host {
                add_edge(edge::RUNS, 0.0, zones + h, first_replica + k);
            }
        }
        crate::GraphValue {
            nodes,
            edges,
            links,
        }
    }
}
