//! Scenarios: TOML files describing topology, workload, faults, SLOs and prices.
//!
//! A file is parsed into a [`ScenarioSpec`] (serde, `deny_unknown_fields`, so a typo is
//! an error that names it), then validated once into a [`Scenario`] whose names are
//! resolved to indices. Every validation error names the file and the field path, as in
//! `three-tier.toml: field `services[1].calls[0].to`: unknown service "apii"`.

use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// A problem with a scenario file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a scenario (syntax, unknown or missing field, wrong type).
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// A value is out of range or a reference is dangling.
    #[error("{file}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The field path, e.g. `services[1].calls[0].to`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No builtin scenario has this name.
    #[error("unknown builtin scenario `{name}` (known: {known})")]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
        /// The builtin names.
        known: String,
    },
}

/// Which fidelity of the model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fidelity {
    /// Every request is an event chain through the replicas it visits.
    #[default]
    Request,
    /// Per-tick rates and queueing formulas; much faster, approximate.
    Fluid,
}

/// Global settings of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationSpec {
    /// Default episode length in simulated seconds (environments may override it).
    pub duration_s: f64,
    /// How often the monitoring system scrapes metrics.
    pub scrape_interval_s: f64,
    /// How long after a scrape its values become visible to observers.
    pub scrape_delay_s: f64,
    /// Relative standard deviation of multiplicative noise on scraped metrics.
    pub metric_noise: f64,
    /// Period of liveness/readiness probes.
    pub probe_period_s: f64,
    /// Consecutive failed probes before a replica leaves load balancing.
    pub probe_failure_threshold: u32,
    /// Step of the fluid model.
    pub fluid_tick_s: f64,
    /// How long a terminating replica may finish its work before it is killed.
    pub termination_grace_s: f64,
}

impl Default for SimulationSpec {
    fn default() -> Self {
        SimulationSpec {
            duration_s: 3600.0,
            scrape_interval_s: 15.0,
            scrape_delay_s: 0.0,
            metric_noise: 0.0,
            probe_period_s: 10.0,
            probe_failure_threshold: 3,
            fluid_tick_s: 1.0,
            termination_grace_s: 30.0,
        }
    }
}

/// How the scheduler picks a host for a new replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// The host with the lowest CPU allocation (spreads load).
    #[default]
    Spread,
    /// The most allocated host that still fits (packs, frees hosts).
    Binpack,
}

/// Cluster-level settings: host provisioning and placement.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    /// Time for a new host to become ready.
    pub provisioning_time_s: f64,
    /// Most hosts the cluster may have (initial plus provisioned).
    pub max_hosts: u32,
    /// Host type provisioned when a replica fits nowhere; none disables provisioning.
    pub provision_type: Option<String>,
    /// Zone of provisioned hosts (default: the first zone).
    pub provision_zone: Option<String>,
    /// Placement strategy.
    pub placement: Placement,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            provisioning_time_s: 90.0,
            max_hosts: 64,
            provision_type: None,
            provision_zone: None,
            placement: Placement::Spread,
        }
    }
}

/// Whether a host is billed on demand or is a (cheaper) spot instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    /// Billed on demand.
    #[default]
    OnDemand,
    /// Spot capacity.
    Spot,
}

/// A kind of host (a VM size).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTypeSpec {
    /// Name the hosts refer to.
    pub name: String,
    /// Cores.
    pub cpu: f64,
    /// Memory in MiB.
    pub memory_mib: f64,
    /// Price in currency units per hour.
    pub price_per_hour: f64,
    /// On demand or spot.
    #[serde(default)]
    pub lifecycle: Lifecycle,
}

/// A group of identical hosts present at the start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroupSpec {
    /// Zone name.
    pub zone: String,
    /// Host type name.
    #[serde(rename = "type")]
    pub host_type: String,
    /// How many.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// A service-time distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DistSpec {
    /// Exponential with the given mean.
    Exponential {
        /// Mean in milliseconds.
        mean_ms: f64,
    },
    /// Always the same value.
    Deterministic {
        /// Value in milliseconds.
        ms: f64,
    },
    /// Log-normal with the given mean and coefficient of variation.
    Lognormal {
        /// Mean in milliseconds.
        mean_ms: f64,
        /// Standard deviation over mean.
        cv: f64,
    },
}

impl DistSpec {
    /// Mean in seconds.
    pub fn mean_s(&self) -> f64 {
        match *self {
            DistSpec::Exponential { mean_ms } | DistSpec::Lognormal { mean_ms, .. } => {
                mean_ms / 1e3
            }
            DistSpec::Deterministic { ms } => ms / 1e3,
        }
    }

    /// Squared coefficient of variation.
    pub fn scv(&self) -> f64 {
        match *self {
            DistSpec::Exponential { .. } => 1.0,
            DistSpec::Deterministic { .. } => 0.0,
            DistSpec::Lognormal { cv, .. } => cv * cv,
        }
    }

    /// A draw in seconds that is a pure function of `key` (see [`crate::rng`]).
    #[inline]
    pub fn sample_s(&self, key: u64) -> f64 {
        match *self {
            DistSpec::Exponential { mean_ms } => crate::rng::exp_from(key, mean_ms / 1e3),
            DistSpec::Deterministic { ms } => ms / 1e3,
            DistSpec::Lognormal { mean_ms, cv } => {
                let s2 = (1.0 + cv * cv).ln();
                let mu = (mean_ms / 1e3).ln() - s2 / 2.0;
                (mu + s2.sqrt() * crate::rng::normal_from(key)).exp()
            }
        }
    }
}

/// How a load balancer picks among a service's ready replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LbPolicy {
    /// In turn.
    #[default]
    RoundRobin,
    /// The replica with the fewest requests in service or queued.
    LeastOutstanding,
    /// The less loaded of two random replicas.
    PowerOfTwo,
}

/// Calls a service makes to another for each request it serves.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// Called service.
    pub to: String,
    /// Parallel calls per request.
    #[serde(default = "one")]
    pub fanout: u32,
    /// Client-side timeout of each attempt.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: f64,
    /// Retries after a timeout or error (0: one attempt only).
    #[serde(default)]
    pub retries: u32,
    /// First back-off; doubles each retry, with full jitter.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: f64,
    /// Cap of the back-off.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: f64,
}

fn default_timeout_ms() -> f64 {
    1000.0
}
fn default_backoff_ms() -> f64 {
    25.0
}
fn default_backoff_max_ms() -> f64 {
    1000.0
}

/// A microservice.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique name.
    pub name: String,
    /// Replicas at the start.
    pub replicas: u32,
    /// Cores requested per replica; service times scale with `cpu / reference cpu`.
    pub cpu: f64,
    /// Memory requested per replica, MiB.
    pub memory_mib: f64,
    /// Memory at which a replica is OOM-killed (default: twice the request).
    #[serde(default)]
    pub memory_limit_mib: Option<f64>,
    /// Requests a replica serves at once (its worker threads).
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Requests a replica queues beyond its concurrency before rejecting.
    #[serde(default = "default_queue")]
    pub queue_capacity: u32,
    /// Local processing time per request at `cpu` cores.
    pub service_time: DistSpec,
    /// Probability that a request fails at this service.
    #[serde(default)]
    pub error_rate: f64,
    /// Time for a new replica to become ready.
    #[serde(default = "default_boot_s")]
    pub boot_time_s: f64,
    /// Time for a restarted replica to become ready.
    #[serde(default = "default_restart_s")]
    pub restart_time_s: f64,
    /// Time for a rollback to take effect.
    #[serde(default = "default_rollback_s")]
    pub rollback_time_s: f64,
    /// Time for an in-place resize to take effect.
    #[serde(default = "default_resize_s")]
    pub resize_time_s: f64,
    /// Load-balancing policy in front of the replicas.
    #[serde(default)]
    pub load_balancer: LbPolicy,
    /// Downstream calls, made in parallel after local processing.
    #[serde(default)]
    pub calls: Vec<CallSpec>,
}

fn default_queue() -> u32 {
    1000
}
fn default_boot_s() -> f64 {
    30.0
}
fn default_restart_s() -> f64 {
    10.0
}
fn default_rollback_s() -> f64 {
    60.0
}
fn default_resize_s() -> f64 {
    5.0
}

/// An arrival-rate process (requests per second over time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RateSpec {
    /// A constant rate.
    Constant {
        /// Requests per second.
        rps: f64,
    },
    /// `mean * (1 + amplitude * sin(2π (t + phase) / period))`.
    Diurnal {
        /// Mean requests per second.
        mean_rps: f64,
        /// Relative amplitude in [0, 1].
        amplitude: f64,
        /// Period in seconds.
        #[serde(default = "day_s")]
        period_s: f64,
        /// Phase shift in seconds.
        #[serde(default)]
        phase_s: f64,
    },
    /// A two-state Markov-modulated Poisson process (bursts).
    Mmpp {
        /// Rate in the quiet state.
        low_rps: f64,
        /// Rate in the burst state.
        high_rps: f64,
        /// Mean sojourn in the quiet state.
        mean_low_s: f64,
        /// Mean sojourn in the burst state.
        mean_high_s: f64,
    },
    /// A step from one rate to another.
    Step {
        /// Rate before `at_s`.
        before_rps: f64,
        /// Rate from `at_s` on.
        after_rps: f64,
        /// When the step happens.
        at_s: f64,
    },
    /// A rate series with a fixed step (how traces reach the simulator).
    Series {
        /// Length of one step in seconds.
        step_s: f64,
        /// Requests per second in each step.
        rps: Vec<f64>,
        /// Start again at the end (otherwise the last value holds).
        #[serde(default = "yes")]
        repeat: bool,
    },
    /// A rate series read from a trace file by `hale-datasets` (the simulator does not
    /// read files: a scenario naming a trace is loaded through
    /// `hale_datasets::load_scenario`, which fills in [`TraceSpec::resolved`]).
    Trace(Box<TraceSpec>),
}

impl RateSpec {
    /// The piecewise-constant series behind a `series` or resolved `trace` rate:
    /// (step in seconds, requests per second per step, repeat at the end).
    pub fn as_series(&self) -> Option<(f64, &[f64], bool)> {
        match self {
            RateSpec::Series {
                step_s,
                rps,
                repeat,
            } => Some((*step_s, rps, *repeat)),
            RateSpec::Trace(t) => t
                .resolved
                .as_ref()
                .map(|r| (r.step_s, &r.rps[..], t.repeat)),
            _ => None,
        }
    }
}

/// A workload read from a trace file, and the transforms applied to it, in this order:
/// select/aggregate → resample to `step_s` → split by time → window → rescale.
///
/// The rescale factor is computed on the *train* part of the split (or the whole series
/// when there is no split), so a validation or test episode uses no statistic of its own
/// part: the same factor scales every part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// The trace file, relative to the scenario file (or absolute).
    pub path: String,
    /// The file's format (see `hale data inspect`); detected from the content if absent.
    #[serde(default)]
    pub format: Option<String>,
    /// Which series of a multi-series trace: Azure function hashes (`HashFunction`,
    /// or a unique prefix of at least 8 characters), Bitbrains VM ids (file stems).
    /// Empty: all of them, aggregated.
    #[serde(default)]
    pub select: Vec<String>,
    /// Azure only: keep the functions with this trigger (`http`, `timer`, `queue`, …).
    #[serde(default)]
    pub trigger: Option<String>,
    /// Bitbrains only: the column used as load (default `cpu_usage_mhz`).
    #[serde(default)]
    pub column: Option<String>,
    /// Resample to this step in seconds (default: the trace's own step).
    #[serde(default)]
    pub step_s: Option<f64>,
    /// Which part of a time split to use: `train`, `validation` or `test`.
    #[serde(default)]
    pub split: Option<String>,
    /// Fractions of the span for train, validation and test (in time order).
    #[serde(default = "default_split_fractions")]
    pub split_fractions: [f64; 3],
    /// Skip this many seconds into the (split) series.
    #[serde(default)]
    pub start_s: f64,
    /// Keep this many seconds (default: to the end).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Rescale so that the peak rate is this many requests per second.
    #[serde(default)]
    pub peak_rps: Option<f64>,
    /// Rescale so that the mean rate is this many requests per second.
    #[serde(default)]
    pub mean_rps: Option<f64>,
    /// Start again at the end (otherwise the last value holds).
    #[serde(default = "yes")]
    pub repeat: bool,
    /// The series after the transforms; filled in by `hale-datasets`, never written.
    #[serde(skip)]
    pub resolved: Option<ResolvedSeries>,
}

/// A trace's rate series after its transforms.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedSeries {
    /// Length of one step in seconds.
    pub step_s: f64,
    /// Requests per second in each step.
    pub rps: std::sync::Arc<[f64]>,
}

fn default_split_fractions() -> [f64; 3] {
    [0.7, 0.15, 0.15]
}

fn day_s() -> f64 {
    86_400.0
}
fn yes() -> bool {
    true
}

/// External clients sending requests to an entry service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Entry service.
    pub service: String,
    /// Arrival rate over time.
    pub rate: RateSpec,
    /// Client timeout per attempt.
    #[serde(default = "default_client_timeout_ms")]
    pub timeout_ms: f64,
    /// Client retries.
    #[serde(default)]
    pub retries: u32,
    /// First client back-off.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: f64,
    /// Cap of the client back-off.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: f64,
    /// Stop after this many arrivals (for finite experiments such as M/M/c).
    #[serde(default)]
    pub limit: Option<u64>,
}

fn default_client_timeout_ms() -> f64 {
    10_000.0
}

/// A service-level objective, evaluated per scrape window.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Service it applies to.
    pub service: String,
    /// Latency percentile, e.g. 95.
    #[serde(default = "p95")]
    pub percentile: f64,
    /// Bound on that percentile.
    pub latency_ms: f64,
    /// Bound on the error rate.
    #[serde(default = "one_f")]
    pub max_error_rate: f64,
}

fn p95() -> f64 {
    95.0
}
fn one_f() -> f64 {
    1.0
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultSpec {
    /// A replica of the target service crashes.
    Crash,
    /// A replica hangs: alive, failing probes, serving nothing.
    Hang,
    /// A replica leaks memory until it is OOM-killed.
    MemoryLeak {
        /// Growth in MiB per second.
        mib_per_s: f64,
    },
    /// A replica serves `factor` times slower.
    Slow {
        /// Slow-down factor (≥ 1).
        factor: f64,
    },
    /// A host fails; its replicas crash.
    HostFailure {
        /// Time until the host comes back (never, if absent).
        #[serde(default)]
        repair_s: Option<f64>,
    },
    /// Every host in a zone fails for a while.
    ZoneOutage {
        /// How long.
        duration_s: f64,
    },
    /// A deploy raises the service's error rate until rolled back.
    BadDeploy {
        /// Error rate added.
        error_rate: f64,
    },
    /// The service fails every request for a while; callers' retries cascade.
    DependencyFailure {
        /// How long.
        duration_s: f64,
    },
}

impl FaultSpec {
    /// The kebab-case name of the kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            FaultSpec::Crash => "crash",
            FaultSpec::Hang => "hang",
            FaultSpec::MemoryLeak { .. } => "memory-leak",
            FaultSpec::Slow { .. } => "slow",
            FaultSpec::HostFailure { .. } => "host-failure",
            FaultSpec::ZoneOutage { .. } => "zone-outage",
            FaultSpec::BadDeploy { .. } => "bad-deploy",
            FaultSpec::DependencyFailure { .. } => "dependency-failure",
        }
    }
}

/// A fault at a fixed time (a chaos experiment).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFaultSpec {
    /// When.
    pub at_s: f64,
    /// Service name (replica-level kinds, bad deploy, dependency failure); zone name
    /// (zone outage); `any`, a zone name or `host-N` (host failure).
    pub target: String,
    /// What.
    pub fault: FaultSpec,
}

/// Time between faults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum IntervalSpec {
    /// Exponential (memoryless).
    Exponential {
        /// Mean time between faults.
        mean_s: f64,
    },
    /// Weibull (shape < 1: infant mortality; > 1: wear-out).
    Weibull {
        /// Shape k.
        shape: f64,
        /// Scale λ in seconds.
        scale_s: f64,
    },
}

impl IntervalSpec {
    /// A draw in seconds from a uniform `u` in `[0, 1)` (inverse CDF).
    pub fn sample_s(&self, u: f64) -> f64 {
        let e = -(1.0 - u).ln();
        match *self {
            IntervalSpec::Exponential { mean_s } => mean_s * e,
            IntervalSpec::Weibull { shape, scale_s } => scale_s * e.powf(1.0 / shape),
        }
    }
}

/// A fault sampled again and again, with the time between faults drawn from a
/// distribution. It is a fleet-level process: the times are exogenous (the fault
/// stream), and each fault hits one target chosen among those present at the time.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultProcessSpec {
    /// As in [`ScheduledFaultSpec::target`].
    pub target: String,
    /// What.
    pub fault: FaultSpec,
    /// Time between faults.
    pub every: IntervalSpec,
}

/// Faults of a scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsSpec {
    /// Faults at fixed times.
    #[serde(default)]
    pub schedule: Vec<ScheduledFaultSpec>,
    /// Faults sampled from time-between-failure distributions.
    #[serde(default)]
    pub mtbf: Vec<FaultProcessSpec>,
}

impl ScenarioSpec {
    /// Parses TOML text without validating it (a spec naming traces is completed by
    /// `hale-datasets` before [`Scenario::from_spec`]); `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<ScenarioSpec, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse {
            file: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }
}

/// The longest span of simulated time hale runs: a year (365 days). A duration past
/// it (a typo such as `duration_s = 1e30`) would make a run, an episode or an
/// evaluation go on for ever; scenarios, env configs (`episode_s`) and `hale sim run
/// --seconds` are refused past it.
pub const MAX_DURATION_S: f64 = 365.0 * 86_400.0;

/// The shortest period of anything that repeats (fluid ticks, scrapes, probes, an
/// env's control interval): 1 ms. Shorter periods multiply the work without a useful
/// bound, and below the clock's microsecond one would never advance.
pub const MIN_PERIOD_S: f64 = 1e-3;

/// A scenario file as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Short name.
    pub name: String,
    /// One paragraph for humans.
    #[serde(default)]
    pub description: String,
    /// Request-level or fluid.
    #[serde(default)]
    pub fidelity: Fidelity,
    /// Run settings.
    #[serde(default)]
    pub simulation: SimulationSpec,
    /// Provisioning and placement.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Zone names.
    pub zones: Vec<String>,
    /// Host types.
    pub host_types: Vec<HostTypeSpec>,
    /// Hosts at the start.
    #[serde(default)]
    pub hosts: Vec<HostGroupSpec>,
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// External workloads.
    pub workload: Vec<WorkloadSpec>,
    /// SLOs.
    #[serde(default)]
    pub slos: Vec<SloSpec>,
    /// Faults.
    #[serde(default)]
    pub faults: FaultsSpec,
}

/// Who a fault hits, resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultTarget {
    /// A random replica of, or the whole of, a service.
    Service(usize),
    /// One host.
    Host(usize),
    /// A random host of a zone, or the whole zone for an outage.
    Zone(usize),
    /// A random host anywhere.
    AnyHost,
}

/// A resolved call edge: from a service (or an external client) to a service.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Caller service; `None` for an external client.
    pub from: Option<usize>,
    /// Called service.
    pub to: usize,
    /// Parallel calls per request.
    pub fanout: u32,
    /// Timeout per attempt.
    pub timeout: SimTime,
    /// Retries.
    pub retries: u32,
    /// First back-off, seconds.
    pub backoff_s: f64,
    /// Back-off cap, seconds.
    pub backoff_max_s: f64,
}

/// A validated scenario with names resolved to indices.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file or builtin it came from, for messages.
    pub origin: String,
    /// The spec as written (serialisable, e.g. into a run folder).
    pub spec: ScenarioSpec,
    /// (zone, host type) of each initial host.
    pub initial_hosts: Vec<(usize, usize)>,
    /// Edges: one per workload first (index = workload index), then service calls.
    pub edges: Vec<Edge>,
    /// For each service, the indices of its outgoing edges.
    pub out_edges: Vec<Vec<usize>>,
    /// Services, callers before callees.
    pub topo_order: Vec<usize>,
    /// Entry service of each workload.
    pub workload_service: Vec<usize>,
    /// Service of each SLO.
    pub slo_service: Vec<usize>,
    /// Resolved targets of scheduled faults.
    pub scheduled_targets: Vec<FaultTarget>,
    /// Resolved targets of fault processes.
    pub process_targets: Vec<FaultTarget>,
    /// Host type provisioned on demand, and its zone.
    pub provision: Option<(usize, usize)>,
}

/// Names of the scenarios shipped with the crate.
pub const BUILTINS: &[&str] = &["three-tier", "microservices-20", "demo"];

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "three-tier" => Some(include_str!("../scenarios/three-tier.toml")),
        "microservices-20" => Some(include_str!("../scenarios/microservices-20.toml")),
        "demo" => Some(include_str!("../scenarios/demo.toml")),
        _ => None,
    }
}

impl Scenario {
    /// A builtin scenario by name.
    pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
        let text = builtin_text(name).ok_or_else(|| ScenarioError::UnknownBuiltin {
            name: name.to_string(),
            known: BUILTINS.join(", "),
        })?;
        Scenario::from_toml_str(text, &format!("builtin:{name}"))
    }

    /// A scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: file.clone(),
            source,
        })?;
        Scenario::from_toml_str(&text, &file)
    }

    /// A builtin name, or else a file path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if builtin_text(name_or_path).is_some() {
            Scenario::builtin(name_or_path)
        } else {
            Scenario::from_file(Path::new(name_or_path))
        }
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_spec(ScenarioSpec::from_toml_str(text, origin)?, origin)
    }

    /// Validates a spec built in code.
    pub fn from_spec(spec: ScenarioSpec, origin: &str) -> Result<Scenario, ScenarioError> {
        Validator {
            file: origin.to_string(),
        }
        .resolve(spec)
    }

    /// Index of a service by name.
    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.spec.services.iter().position(|s| s.name == name)
    }

    /// A single-service M/M/c queue: `servers` slots sharing one FIFO queue, Poisson
    /// arrivals at `lam` per second, exponential service at `mu` per second, `customers`
    /// arrivals in all. Used to validate the engine against Erlang C.
    pub fn mmc(servers: u32, lam: f64, mu: f64, customers: u64) -> Result<Scenario, ScenarioError> {
        let spec = ScenarioSpec {
            name: "mmc".into(),
            description: format!("M/M/{servers} queue, lambda {lam}, mu {mu}"),
            fidelity: Fidelity::Request,
            simulation: SimulationSpec {
                scrape_interval_s: 1e6,
                probe_period_s: 1e6,
                ..SimulationSpec::default()
            },
            cluster: ClusterSpec::default(),
            zones: vec!["z".into()],
            host_types: vec![HostTypeSpec {
                name: "h".into(),
                cpu: 1.0,
                memory_mib: 1024.0,
                price_per_hour: 0.0,
                lifecycle: Lifecycle::OnDemand,
            }],
            hosts: vec![HostGroupSpec {
                zone: "z".into(),
                host_type: "h".into(),
                count: 1,
            }],
            services: vec![ServiceSpec {
                name: "queue".into(),
                replicas: 1,
                cpu: 1.0,
                memory_mib: 1.0,
                memory_limit_mib: None,
                concurrency: servers,
                queue_capacity: u32::MAX,
                service_time: DistSpec::Exponential { mean_ms: 1e3 / mu },
                error_rate: 0.0,
                boot_time_s: 0.0,
                restart_time_s: 0.0,
                rollback_time_s: 0.0,
                resize_time_s: 0.0,
                load_balancer: LbPolicy::RoundRobin,
                calls: vec![],
            }],
            workload: vec![WorkloadSpec {
                service: "queue".into(),
                rate: RateSpec::Constant { rps: lam },
                timeout_ms: 1e15,
                retries: 0,
                backoff_ms: 0.0,
                backoff_max_ms: 0.0,
                limit: Some(customers),
            }],
            slos: vec![],
            faults: FaultsSpec::default(),
        };
        Scenario::from_spec(spec, "builtin:mmc")
    }
}

struct Validator {
    file: String,
}

impl Validator {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn positive(&self, field: impl Into<String>, v: f64) -> Result<(), ScenarioError> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(self.err(field, format!("must be a positive number, got {v}")))
        }
    }

    /// A span of simulated time: positive and at most [`MAX_DURATION_S`].
    fn duration(&self, field: &str, v: f64) -> Result<(), ScenarioError> {
        self.positive(field, v)?;
        if v > MAX_DURATION_S {
            return Err(self.err(
                field,
                format!("{v} s is longer than the longest run, {MAX_DURATION_S} s (a year)"),
            ));
        }
        Ok(())
    }

    /// The period of something that repeats: at least [`MIN_PERIOD_S`], at most
    /// [`MAX_DURATION_S`].
    fn period(&self, field: &str, v: f64) -> Result<(), ScenarioError> {
        self.duration(field, v)?;
        if v < MIN_PERIOD_S {
            return Err(self.err(
                field,
                format!("{v} s is shorter than the shortest period, {MIN_PERIOD_S} s"),
            ));
        }
        Ok(())
    }

    fn non_negative(&self, field: impl Into<String>, v: f64) -> Result<(), ScenarioError> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(self.err(field, format!("must be ≥ 0, got {v}")))
        }
    }

    fn probability(&self, field: impl Into<String>, v: f64) -> Result<(), ScenarioError> {
        if (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(self.err(field, format!("must be in [0, 1], got {v}")))
        }
    }

    fn lookup(
        &self,
        names: &HashMap<&str, usize>,
        field: String,
        what: &str,
        name: &str,
    ) -> Result<usize, ScenarioError> {
        names.get(name).copied().ok_or_else(|| {
            let mut known: Vec<&&str> = names.keys().collect();
            known.sort();
            let known: Vec<&str> = known.into_iter().copied().collect();
            self.err(
                field,
                format!("unknown {what} \"{name}\" (known: {})", known.join(", ")),
            )
        })
    }

    fn index<'a>(
        &self,
        field: &str,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<&'a str, usize>, ScenarioError> {
        let mut map = HashMap::new();
        for (i, n) in names.enumerate() {
            if n.is_empty() {
                return Err(self.err(format!("{field}[{i}]"), "name must not be empty"));
            }
            if map.insert(n, i).is_some() {
                return Err(self.err(format!("{field}[{i}]"), format!("duplicate name \"{n}\"")));
            }
        }
        Ok(map)
    }

    fn dist(&self, field: String, d: &DistSpec) -> Result<(), ScenarioError> {
        match *d {
            DistSpec::Exponential { mean_ms } => self.positive(format!("{field}.mean_ms"), mean_ms),
            DistSpec::Deterministic { ms } => self.positive(format!("{field}.ms"), ms),
            DistSpec::Lognormal { mean_ms, cv } => {
                self.positive(format!("{field}.mean_ms"), mean_ms)?;
                self.positive(format!("{field}.cv"), cv)
            }
        }
    }

    fn rate(&self, field: String, r: &RateSpec) -> Result<(), ScenarioError> {
        match r {
            RateSpec::Constant { rps } => self.non_negative(format!("{field}.rps"), *rps),
            RateSpec::Diurnal {
                mean_rps,
                amplitude,
                period_s,
                phase_s,
            } => {
                self.non_negative(format!("{field}.mean_rps"), *mean_rps)?;
                self.probability(format!("{field}.amplitude"), *amplitude)?;
                self.positive(format!("{field}.period_s"), *period_s)?;
                self.non_negative(format!("{field}.phase_s"), *phase_s)
            }
            RateSpec::Mmpp {
                low_rps,
                high_rps,
                mean_low_s,
                mean_high_s,
            } => {
                self.non_negative(format!("{field}.low_rps"), *low_rps)?;
                self.non_negative(format!("{field}.high_rps"), *high_rps)?;
                self.positive(format!("{field}.mean_low_s"), *mean_low_s)?;
                self.positive(format!("{field}.mean_high_s"), *mean_high_s)
            }
            RateSpec::Step {
                before_rps,
                after_rps,
                at_s,
            } => {
                self.non_negative(format!("{field}.before_rps"), *before_rps)?;
                self.non_negative(format!("{field}.after_rps"), *after_rps)?;
                self.non_negative(format!("{field}.at_s"), *at_s)
            }
            RateSpec::Trace(t) => {
                if t.resolved.is_none() {
                    return Err(self.err(
                        field,
                        format!(
                            "the trace {:?} is read by hale-datasets: load this scenario \
                             with hale_datasets::load_scenario (the hale binary and the \
                             environments do)",
                            t.path
                        ),
                    ));
                }
                let (step_s, rps, _) = r.as_series().expect("resolved");
                self.series(&field, step_s, rps)
            }
            RateSpec::Series { step_s, rps, .. } => self.series(&field, *step_s, rps),
        }
    }

    fn series(&self, field: &str, step_s: f64, rps: &[f64]) -> Result<(), ScenarioError> {
        self.positive(format!("{field}.step_s"), step_s)?;
        if rps.is_empty() {
            return Err(self.err(format!("{field}.rps"), "must not be empty"));
        }
        for (i, v) in rps.iter().enumerate() {
            self.non_negative(format!("{field}.rps[{i}]"), *v)?;
        }
        Ok(())
    }

    fn fault(&self, field: &str, f: &FaultSpec) -> Result<(), ScenarioError> {
        match f {
            FaultSpec::Crash | FaultSpec::Hang => Ok(()),
            FaultSpec::MemoryLeak { mib_per_s } => {
                self.positive(format!("{field}.mib_per_s"), *mib_per_s)
            }
            FaultSpec::Slow { factor } => {
                if factor.is_finite() && *factor >= 1.0 {
                    Ok(())
                } else {
                    Err(self.err(
                        format!("{field}.factor"),
                        format!("must be ≥ 1, got {factor}"),
                    ))
                }
            }
            FaultSpec::HostFailure { repair_s } => match repair_s {
                Some(r) => self.positive(format!("{field}.repair_s"), *r),
                None => Ok(()),
            },
            FaultSpec::ZoneOutage { duration_s } | FaultSpec::DependencyFailure { duration_s } => {
                self.positive(format!("{field}.duration_s"), *duration_s)
            }
            FaultSpec::BadDeploy { error_rate } => {
                self.probability(format!("{field}.error_rate"), *error_rate)
            }
        }
    }

    fn target(
        &self,
        field: String,
        fault: &FaultSpec,
        target: &str,
        services: &HashMap<&str, usize>,
        zones: &HashMap<&str, usize>,
        n_hosts: usize,
    ) -> Result<FaultTarget, ScenarioError> {
        match fault {
            FaultSpec::HostFailure { .. } => {
                if target == "any" {
                    Ok(FaultTarget::AnyHost)
                } else if let Some(&z) = zones.get(target) {
                    Ok(FaultTarget::Zone(z))
                } else if let Some(n) = target.strip_prefix("host-") {
                    match n.parse::<usize>() {
                        Ok(i) if i < n_hosts => Ok(FaultTarget::Host(i)),
                        _ => Err(self.err(
                            field,
                            format!(
                                "no initial host \"{target}\" (hosts are host-0 … host-{})",
                                n_hosts.saturating_sub(1)
                            ),
                        )),
                    }
                } else {
                    Err(self.err(
                        field,
                        format!(
                            "host failure target \"{target}\" is not `any`, a zone or `host-N`"
                        ),
                    ))
                }
            }
            FaultSpec::ZoneOutage { .. } => Ok(FaultTarget::Zone(
                self.lookup(zones, field, "zone", target)?,
            )),
            _ => Ok(FaultTarget::Service(
                self.lookup(services, field, "service", target)?,
            )),
        }
    }

    fn resolve(&self, spec: ScenarioSpec) -> Result<Scenario, ScenarioError> {
        if spec.name.is_empty() {
            return Err(self.err("name", "must not be empty"));
        }
        let s = &spec.simulation;
        self.duration("simulation.duration_s", s.duration_s)?;
        self.period("simulation.scrape_interval_s", s.scrape_interval_s)?;
        self.non_negative("simulation.scrape_delay_s", s.scrape_delay_s)?;
        self.non_negative("simulation.metric_noise", s.metric_noise)?;
        self.period("simulation.probe_period_s", s.probe_period_s)?;
        self.period("simulation.fluid_tick_s", s.fluid_tick_s)?;
        self.non_negative("simulation.termination_grace_s", s.termination_grace_s)?;
        if s.probe_failure_threshold == 0 {
            return Err(self.err("simulation.probe_failure_threshold", "must be ≥ 1"));
        }
        self.non_negative(
            "cluster.provisioning_time_s",
            spec.cluster.provisioning_time_s,
        )?;

        if spec.zones.is_empty() {
            return Err(self.err("zones", "at least one zone is needed"));
        }
        let zones = self.index("zones", spec.zones.iter().map(String::as_str))?;
        if spec.host_types.is_empty() {
            return Err(self.err("host_types", "at least one host type is needed"));
        }
        let types = self.index(
            "host_types",
            spec.host_types.iter().map(|t| t.name.as_str()),
        )?;
        for (i, t) in spec.host_types.iter().enumerate() {
            self.positive(format!("host_types[{i}].cpu"), t.cpu)?;
            self.positive(format!("host_types[{i}].memory_mib"), t.memory_mib)?;
            self.non_negative(format!("host_types[{i}].price_per_hour"), t.price_per_hour)?;
        }
        let mut initial_hosts = Vec::new();
        for (i, g) in spec.hosts.iter().enumerate() {
            let z = self.lookup(&zones, format!("hosts[{i}].zone"), "zone", &g.zone)?;
            let t = self.lookup(
                &types,
                format!("hosts[{i}].type"),
                "host type",
                &g.host_type,
            )?;
            initial_hosts.extend(std::iter::repeat_n((z, t), g.count as usize));
        }
        if initial_hosts.len() > spec.cluster.max_hosts as usize {
            return Err(self.err(
                "cluster.max_hosts",
                format!(
                    "{} is fewer than the {} initial hosts",
                    spec.cluster.max_hosts,
                    initial_hosts.len()
                ),
            ));
        }
        let provision = match &spec.cluster.provision_type {
            None => None,
            Some(t) => {
                let t = self.lookup(&types, "cluster.provision_type".into(), "host type", t)?;
                let z = match &spec.cluster.provision_zone {
                    Some(z) => self.lookup(&zones, "cluster.provision_zone".into(), "zone", z)?,
                    None => 0,
                };
                Some((t, z))
            }
        };

        if spec.services.is_empty() {
            return Err(self.err("services", "at least one service is needed"));
        }
        if spec.services.len() > u16::MAX as usize {
            return Err(self.err("services", "too many services"));
        }
        let services = self.index("services", spec.services.iter().map(|s| s.name.as_str()))?;
        let workloads_n = spec.workload.len();
        let mut edges = Vec::new();
        let mut workload_service = Vec::new();
        if workloads_n == 0 {
            return Err(self.err("workload", "at least one workload is needed"));
        }
        for (i, w) in spec.workload.iter().enumerate() {
            let f = format!("workload[{i}]");
            let to = self.lookup(&services, format!("{f}.service"), "service", &w.service)?;
            self.rate(format!("{f}.rate"), &w.rate)?;
            self.positive(format!("{f}.timeout_ms"), w.timeout_ms)?;
            self.non_negative(format!("{f}.backoff_ms"), w.backoff_ms)?;
            self.non_negative(format!("{f}.backoff_max_ms"), w.backoff_max_ms)?;
            workload_service.push(to);
            edges.push(Edge {
                from: None,
                to,
                fanout: 1,
                timeout: SimTime::from_millis_f64(w.timeout_ms),
                retries: w.retries,
                backoff_s: w.backoff_ms / 1e3,
                backoff_max_s: w.backoff_max_ms / 1e3,
            });
        }
        let mut out_edges = vec![Vec::new(); spec.services.len()];
        for (i, sv) in spec.services.iter().enumerate() {
            let f = format!("services[{i}]");
            self.positive(format!("{f}.cpu"), sv.cpu)?;
            self.positive(format!("{f}.memory_mib"), sv.memory_mib)?;
            if let Some(l) = sv.memory_limit_mib
                && !(l.is_finite() && l >= sv.memory_mib)
            {
                return Err(self.err(
                    format!("{f}.memory_limit_mib"),
                    format!("must be ≥ memory_mib ({}), got {l}", sv.memory_mib),
                ));
            }
            if sv.concurrency == 0 {
                return Err(self.err(format!("{f}.concurrency"), "must be ≥ 1"));
            }
            self.dist(format!("{f}.service_time"), &sv.service_time)?;
            self.probability(format!("{f}.error_rate"), sv.error_rate)?;
            self.non_negative(format!("{f}.boot_time_s"), sv.boot_time_s)?;
            self.non_negative(format!("{f}.restart_time_s"), sv.restart_time_s)?;
            self.non_negative(format!("{f}.rollback_time_s"), sv.rollback_time_s)?;
            self.non_negative(format!("{f}.resize_time_s"), sv.resize_time_s)?;
            for (j, c) in sv.calls.iter().enumerate() {
                let cf = format!("{f}.calls[{j}]");
                let to = self.lookup(&services, format!("{cf}.to"), "service", &c.to)?;
                if c.fanout == 0 {
                    return Err(self.err(format!("{cf}.fanout"), "must be ≥ 1"));
                }
                self.positive(format!("{cf}.timeout_ms"), c.timeout_ms)?;
                self.non_negative(format!("{cf}.backoff_ms"), c.backoff_ms)?;
                self.non_negative(format!("{cf}.backoff_max_ms"), c.backoff_max_ms)?;
                out_edges[i].push(edges.len());
                edges.push(Edge {
                    from: Some(i),
                    to,
                    fanout: c.fanout,
                    timeout: SimTime::from_millis_f64(c.timeout_ms),
                    retries: c.retries,
                    backoff_s: c.backoff_ms / 1e3,
                    backoff_max_s: c.backoff_max_ms / 1e3,
                });
            }
        }
        let topo_order = self.topological_order(&spec, &services)?;

        let mut slo_service = Vec::new();
        for (i, slo) in spec.slos.iter().enumerate() {
            let f = format!("slos[{i}]");
            slo_service.push(self.lookup(
                &services,
                format!("{f}.service"),
                "service",
                &slo.service,
            )?);
            if !(slo.percentile > 0.0 && slo.percentile < 100.0) {
                return Err(self.err(
                    format!("{f}.percentile"),
                    format!("must be in (0, 100), got {}", slo.percentile),
                ));
            }
            self.positive(format!("{f}.latency_ms"), slo.latency_ms)?;
            self.probability(format!("{f}.max_error_rate"), slo.max_error_rate)?;
        }

        let mut scheduled_targets = Vec::new();
        for (i, sf) in spec.faults.schedule.iter().enumerate() {
            let f = format!("faults.schedule[{i}]");
            self.non_negative(format!("{f}.at_s"), sf.at_s)?;
            self.fault(&format!("{f}.fault"), &sf.fault)?;
            scheduled_targets.push(self.target(
                format!("{f}.target"),
                &sf.fault,
                &sf.target,
                &services,
                &zones,
                initial_hosts.len(),
            )?);
        }
        let mut process_targets = Vec::new();
        for (i, p) in spec.faults.mtbf.iter().enumerate() {
            let f = format!("faults.mtbf[{i}]");
            self.fault(&format!("{f}.fault"), &p.fault)?;
            match p.every {
                IntervalSpec::Exponential { mean_s } => {
                    self.positive(format!("{f}.every.mean_s"), mean_s)?
                }
                IntervalSpec::Weibull { shape, scale_s } => {
                    self.positive(format!("{f}.every.shape"), shape)?;
                    self.positive(format!("{f}.every.scale_s"), scale_s)?;
                }
            }
            process_targets.push(self.target(
                format!("{f}.target"),
                &p.fault,
                &p.target,
                &services,
                &zones,
                initial_hosts.len(),
            )?);
        }

        Ok(Scenario {
            origin: self.file.clone(),
            initial_hosts,
            edges,
            out_edges,
            topo_order,
            workload_service,
            slo_service,
            scheduled_targets,
            process_targets,
            provision,
            spec,
        })
    }

    /// Callers before callees; a cycle is an error that names the call closing it.
    fn topological_order(
        &self,
        spec: &ScenarioSpec,
        services: &HashMap<&str, usize>,
    ) -> Result<Vec<usize>, ScenarioError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = spec.services.len();
        let mut mark = vec![Mark::New; n];
        let mut post = Vec::with_capacity(n);
        // Iterative depth-first search; the stack holds (service, next call index).
        for root in 0..n {
            if mark[root] != Mark::New {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::Open;
            while let Some(&mut (s, ref mut next)) = stack.last_mut() {
                if let Some(call) = spec.services[s].calls.get(*next) {
                    let j = *next;
                    *next += 1;
                    let t = services[call.to.as_str()];
                    match mark[t] {
                        Mark::New => {
                            mark[t] = Mark::Open;
                            stack.push((t, 0));
                        }
                        Mark::Open => {
                            let start = stack.iter().position(|&(x, _)| x == t).unwrap_or(0);
                            let mut path: Vec<&str> = stack[start..]
                                .iter()
                                .map(|&(x, _)| spec.services[x].name.as_str())
                                .collect();
                            path.push(&spec.services[t].name);
                            return Err(self.err(
                                format!("services[{s}].calls[{j}].to"),
                                format!("dependency cycle: {}", path.join(" → ")),
                            ));
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[s] = Mark::Done;
                    post.push(s);
                    stack.pop();
                }
            }
        }
        post.reverse();
        Ok(post)
    }
}
