//! The cloud: zones → hosts → replicas of services, as the simulator holds it.
//!
//! Observers read these types through [`crate::Simulation`]'s accessors; only the
//! simulator changes them.

use crate::scenario::Lifecycle;
use crate::time::SimTime;
use serde::Serialize;
use std::collections::VecDeque;

/// Index of a service in the scenario.
pub type ServiceId = usize;
/// Index of a host; hosts are never renumbered (removed ones stay, marked removed).
pub type HostId = usize;
/// Index of a replica; replicas are never renumbered (terminated ones stay).
pub type ReplicaId = usize;

/// The life of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaState {
    /// Waiting for a host with room.
    Pending,
    /// Starting (after creation or a restart); serves nothing yet.
    Booting,
    /// Serving normally.
    Ready,
    /// Serving, but slow or leaking memory.
    Degraded,
    /// Alive but serving nothing and failing its probes.
    Hung,
    /// Dead until restarted or replaced.
    Crashed,
    /// Finishing its work before it goes.
    Terminating,
    /// Gone.
    Terminated,
}

impl ReplicaState {
    /// Whether the replica still counts towards its service's replicas.
    pub fn is_live(self) -> bool {
        !matches!(self, ReplicaState::Terminating | ReplicaState::Terminated)
    }

    /// Whether the replica serves requests (ready or degraded).
    pub fn is_serving(self) -> bool {
        matches!(self, ReplicaState::Ready | ReplicaState::Degraded)
    }

    /// Whether its container runs and holds its memory (serving, or hung).
    pub fn is_running(self) -> bool {
        self.is_serving() || self == ReplicaState::Hung
    }
}

/// The life of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Being provisioned (billed already).
    Provisioning,
    /// Up.
    Ready,
    /// Down after a failure.
    Failed,
    /// Released.
    Removed,
}

/// A machine.
#[derive(Clone, Debug, Serialize)]
pub struct Host {
    /// Zone index.
    pub zone: usize,
    /// Host-type index.
    pub host_type: usize,
    /// Cores.
    pub cpu: f64,
    /// Memory, MiB.
    pub memory_mib: f64,
    /// Price per hour.
    pub price_per_hour: f64,
    /// On demand or spot.
    pub lifecycle: Lifecycle,
    /// State.
    pub state: HostState,
    /// No new replicas are placed while cordoned.
    pub cordoned: bool,
    /// Cores requested by the replicas placed here.
    pub cpu_allocated: f64,
    /// Memory requested by the replicas placed here.
    pub memory_allocated: f64,
    /// Replicas placed here (live or terminating).
    pub replicas: u32,
    /// Since when the host is billed, if it is.
    pub billed_since: Option<SimTime>,
    /// Being drained by the cluster autoscaler, to be released once empty.
    pub draining: bool,
    /// Since when the cluster autoscaler has found the host unneeded.
    pub unneeded_since: Option<SimTime>,
    /// Being consolidated (`Action::Consolidate`): released once empty.
    pub consolidating: bool,
    /// A spot host under notice: when the provider takes it back.
    pub reclaim_at: Option<SimTime>,
    pub(crate) repair_epoch: u32,
}

impl Host {
    /// Cores not yet requested.
    pub fn cpu_free(&self) -> f64 {
        self.cpu - self.cpu_allocated
    }

    /// Memory not yet requested.
    pub fn memory_free(&self) -> f64 {
        self.memory_mib - self.memory_allocated
    }

    /// Whether new replicas may be placed here.
    pub fn schedulable(&self) -> bool {
        self.state == HostState::Ready && !self.cordoned
    }
}

/// An instance of a service.
#[derive(Clone, Debug, Serialize)]
pub struct Replica {
    /// Its service.
    pub service: ServiceId,
    /// Its host, once placed.
    pub host: Option<HostId>,
    /// State.
    pub state: ReplicaState,
    /// In the load balancer's endpoints.
    pub in_lb: bool,
    /// Consecutive failed probes.
    pub probe_failures: u32,
    /// Times restarted (by an action or an OOM kill).
    pub restarts: u32,
    /// Cores requested (the service's size when placed or resized).
    pub cpu: f64,
    /// Memory requested, MiB (the service's request when placed or resized); its
    /// limit keeps the scenario's ratio of limit to request.
    pub memory_mib: f64,
    /// Requests in service (occupied worker slots).
    pub busy: u32,
    /// Memory growth of a leak, MiB/s (0 when healthy).
    pub leak_mib_per_s: f64,
    /// Service-time multiplier (1 when healthy).
    pub slowdown: f64,
    /// Cut off the network by the defender (out of the load balancer, whatever its
    /// probes say) until released or restarted.
    pub isolated: bool,
    /// Service-time factor of the CPU an attacker's miner steals (1 when none).
    pub(crate) steal: f64,
    /// When it was created.
    pub created: SimTime,
    #[serde(skip)]
    pub(crate) queue: VecDeque<crate::slab::JobId>,
    pub(crate) epoch: u32,
    pub(crate) leak_since: SimTime,
    /// Memory leaked before `leak_since` (by an earlier leak), MiB.
    pub(crate) leaked_mib: f64,
    pub(crate) avoid_host: Option<HostId>,
    /// Requests this replica answered in the current scrape window, how many failed,
    /// and their summed latency (what a per-pod exporter would report).
    #[serde(skip)]
    pub(crate) win_answered: f64,
    #[serde(skip)]
    pub(crate) win_failed: f64,
    #[serde(skip)]
    pub(crate) win_latency_s: f64,
}

impl Replica {
    /// Requests queued, waiting for a slot.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Memory in use at `now`, MiB: the service's working set, plus whatever a leak
    /// added.
    pub fn memory_used_mib(&self, working_set_mib: f64, now: SimTime) -> f64 {
        working_set_mib
            + self.leaked_mib
            + self.leak_mib_per_s * now.saturating_sub(self.leak_since).as_secs_f64()
    }
}

/// The run-time state of a service.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceState {
    /// Replicas the service should have (its ReplicaSet's count).
    pub desired: u32,
    /// Cores per replica now (vertical size).
    pub cpu: f64,
    /// Memory requested per replica now, MiB.
    pub memory_mib: f64,
    /// Error rate added by a bad deploy.
    pub extra_error_rate: f64,
    /// Deploys so far (a bad deploy and a rollback each count).
    pub deploys: u32,
    /// Whether the current deploy is bad.
    pub bad_deploy: bool,
    /// Whether the service fails every request (dependency failure).
    pub down: bool,
    /// Error rate added by an attacker's impact on the data (0 when none).
    pub attack_error_rate: f64,
    /// Live and terminating replicas, oldest first.
    pub replicas: Vec<ReplicaId>,
    /// Replicas behind the load balancer.
    pub endpoints: Vec<ReplicaId>,
    #[serde(skip)]
    pub(crate) next_endpoint: usize,
    #[serde(skip)]
    pub(crate) pending_resize: Option<f64>,
    #[serde(skip)]
    pub(crate) resizes: u32,
    #[serde(skip)]
    pub(crate) pending_memory: Option<f64>,
    #[serde(skip)]
    pub(crate) memory_resizes: u32,
}

impl ServiceState {
    /// Cores per replica once the resize in flight (if any) has taken effect.
    pub fn target_cpu(&self) -> f64 {
        self.pending_resize.unwrap_or(self.cpu)
    }

    /// Memory request per replica once the memory resize in flight (if any) has
    /// taken effect, MiB.
    pub fn target_memory(&self) -> f64 {
        self.pending_memory.unwrap_or(self.memory_mib)
    }
}

/// Counters of one service, over a window or a whole run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ServiceCounters {
    /// Requests (attempts) that reached the service.
    pub arrivals: f64,
    /// Requests that found every slot busy (request level).
    pub waited: f64,
    /// Requests that started service.
    pub started: f64,
    /// Seconds spent waiting in queues by requests that started service.
    pub wait_s: f64,
    /// Requests answered successfully.
    pub completed: f64,
    /// Requests answered with an error (including rejections).
    pub failed: f64,
    /// Requests turned away: no endpoint, or a full queue.
    pub rejected: f64,
    /// Slot-seconds of local processing.
    pub busy_s: f64,
    /// Sum of latencies of answered requests, seconds.
    pub latency_s: f64,
}

/// Outcomes of external requests (end to end, after client retries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RequestCounters {
    /// Requests that arrived.
    pub arrived: f64,
    /// Requests answered successfully.
    pub completed: f64,
    /// Requests answered with an error.
    pub failed: f64,
    /// Requests whose last attempt timed out.
    pub timed_out: f64,
    /// Sum of end-to-end latencies of completed requests, seconds.
    pub latency_s: f64,
}

impl RequestCounters {
    /// Mean end-to-end latency of completed requests, seconds.
    pub fn mean_latency_s(&self) -> f64 {
        if self.completed > 0.0 {
            self.latency_s / self.completed
        } else {
            0.0
        }
    }
}

/// What a fault hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultSubject {
    /// One replica (crash, hang, leak, slow).
    Replica(ReplicaId),
    /// One host (host failure).
    Host(HostId),
    /// A zone (outage).
    Zone(usize),
    /// A service's deploy (bad deploy).
    Service(ServiceId),
    /// A service failing as a dependency of others.
    Dependency(ServiceId),
}

/// One injected fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    /// Kind, as in the scenario (`crash`, `hang`, …).
    pub kind: &'static str,
    /// When it was injected.
    pub at: SimTime,
    /// What it hit.
    pub subject: FaultSubject,
    /// When it stopped hurting: the replica was restarted and ready again or removed,
    /// the host repaired or removed, the deploy rolled back, the outage over.
    pub resolved_at: Option<SimTime>,
    /// Hosts it took down (host failure, zone outage).
    pub hosts: Vec<HostId>,
}

impl FaultRecord {
    /// Time to recovery, if resolved.
    pub fn time_to_recovery(&self) -> Option<SimTime> {
        self.resolved_at.map(|t| t.saturating_sub(self.at))
    }
}
