//! The scenario file as written: serde types with their defaults, parsed but not yet
//! validated ([`ScenarioSpec::from_toml_str`]), and the bounds validation applies.

use serde::{Deserialize, Serialize};

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
    /// A cluster autoscaler that also releases hosts (absent: hosts are only added,
    /// when a replica fits nowhere, and never released).
    pub autoscaler: Option<AutoscalerSpec>,
    /// The provider reclaiming spot hosts (absent: spot hosts are never reclaimed).
    pub spot: Option<SpotSpec>,
}

/// The provider reclaiming spot capacity. Each spot host, from when it is ready, lives
/// an exponential time of mean `mean_lifetime_s`, drawn for that host id from its own
/// stream (host k lives as long whatever the policy does, so comparisons stay paired).
/// `notice_s` before the end the provider gives notice (AWS: 120 s; GCP and Azure: 30
/// s): with `drain_on_notice` (Kubernetes' node termination handler) the host is
/// cordoned and drained at once, its replicas booting elsewhere; at the end it is
/// gone, billing stops, and whatever still runs there is recreated elsewhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpotSpec {
    /// Mean lifetime of a spot host, seconds.
    pub mean_lifetime_s: f64,
    /// Notice before a host is reclaimed, seconds.
    pub notice_s: f64,
    /// Cordon and drain a host at its notice.
    pub drain_on_notice: bool,
}

impl Default for SpotSpec {
    fn default() -> Self {
        SpotSpec {
            mean_lifetime_s: 6.0 * 3600.0,
            notice_s: 120.0,
            drain_on_notice: true,
        }
    }
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            provisioning_time_s: 90.0,
            max_hosts: 64,
            provision_type: None,
            provision_zone: None,
            placement: Placement::Spread,
            autoscaler: None,
            spot: None,
        }
    }
}

/// The Kubernetes Cluster Autoscaler's scale-down, with its defaults. (Its scale-up,
/// a host of `provision_type` for replicas that fit nowhere, ready after
/// `provisioning_time_s`, is the cluster's with or without it.)
///
/// Every `scan_interval_s`, a ready host whose requested CPU and memory are both under
/// `utilization_threshold` of its capacity is *unneeded*; one unneeded for
/// `unneeded_time_s` in a row whose replicas all fit on the other hosts (by their
/// requests) is drained (its replicas move, each new one booting elsewhere before the
/// old one ends) and released once empty, at most one non-empty host per scan,
/// not within `delay_after_add_s` of a scale-up, and never below `min_hosts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoscalerSpec {
    /// Seconds between scans (`--scan-interval`).
    pub scan_interval_s: f64,
    /// Requested share of a host's CPU and memory under which it is unneeded
    /// (`--scale-down-utilization-threshold`).
    pub utilization_threshold: f64,
    /// How long a host stays unneeded before it is released
    /// (`--scale-down-unneeded-time`).
    pub unneeded_time_s: f64,
    /// No release within this long after a host was added
    /// (`--scale-down-delay-after-add`).
    pub delay_after_add_s: f64,
    /// Fewest hosts the cluster keeps (the node group's minimum).
    pub min_hosts: u32,
}

impl Default for AutoscalerSpec {
    fn default() -> Self {
        AutoscalerSpec {
            scan_interval_s: 10.0,
            utilization_threshold: 0.5,
            unneeded_time_s: 600.0,
            delay_after_add_s: 600.0,
            min_hosts: 1,
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
    /// Memory at which a replica is OOM-killed (default: twice the request). A
    /// right-sized request (`Action::ResizeMemory`) keeps this ratio of limit to
    /// request, as the VPA keeps it.
    #[serde(default)]
    pub memory_limit_mib: Option<f64>,
    /// Memory a replica of this service uses (its working set), MiB (default: the
    /// request). Below the request, the request is over-provisioned and right-sizing
    /// saves hosts; a limit below it OOM-kills the replica as soon as it is ready, and
    /// hosts whose replicas' working sets exceed their memory OOM-kill the replica most
    /// over its request (the kubelet's node-pressure ranking).
    #[serde(default)]
    pub working_set_mib: Option<f64>,
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

impl ServiceSpec {
    /// Memory a replica uses, MiB: `working_set_mib`, or the request.
    pub fn working_set(&self) -> f64 {
        self.working_set_mib.unwrap_or(self.memory_mib)
    }

    /// The memory limit at the scenario's request, MiB: `memory_limit_mib`, or twice
    /// the request.
    pub fn memory_limit(&self) -> f64 {
        self.memory_limit_mib.unwrap_or(2.0 * self.memory_mib)
    }

    /// The memory limit as a multiple of the request.
    pub fn limit_ratio(&self) -> f64 {
        self.memory_limit() / self.memory_mib
    }
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
    /// The same process with every rate multiplied by `f` (times unchanged).
    pub fn scaled(&self, f: f64) -> RateSpec {
        let mut r = self.clone();
        match &mut r {
            RateSpec::Constant { rps } => *rps *= f,
            RateSpec::Diurnal { mean_rps, .. } => *mean_rps *= f,
            RateSpec::Step {
                before_rps,
                after_rps,
                ..
            } => {
                *before_rps *= f;
                *after_rps *= f;
            }
            RateSpec::Mmpp {
                low_rps, high_rps, ..
            } => {
                *low_rps *= f;
                *high_rps *= f;
            }
            RateSpec::Series { rps, .. } => rps.iter_mut().for_each(|x| *x *= f),
            RateSpec::Trace(t) => {
                if let Some(res) = &mut t.resolved {
                    res.rps = res.rps.iter().map(|x| x * f).collect::<Vec<_>>().into();
                }
            }
        }
        r
    }

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
    /// Where each run's window of `duration_s` starts: at `start_s` (`start`, the
    /// default), at a random whole step of the split drawn from the run's seed
    /// (`random`: each training episode sees another stretch of the trace), or at
    /// the (seed mod K)-th of the split's K whole windows (`tiled`: runs on seeds s,
    /// s + 1, … cover consecutive windows; for evaluation).
    #[serde(default)]
    pub offset: TraceOffset,
    /// The series after the transforms; filled in by `hale-datasets`, never written.
    #[serde(skip)]
    pub resolved: Option<ResolvedSeries>,
}

/// Where a run's window of a trace starts (see [`TraceSpec::offset`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceOffset {
    /// At `start_s`: every run sees the same window.
    #[default]
    Start,
    /// At a random whole step, from the run's seed.
    Random,
    /// At window (seed mod K) of the K whole windows.
    Tiled,
}

impl TraceSpec {
    /// The window of a run with `seed` of this trace's resolved series (the whole
    /// split when `offset` is not `start`): (offset in steps, the window's rates).
    /// `None` for an unresolved trace, or one whose window is the whole series.
    pub fn episode_window(&self, seed: u64, workload: usize) -> Option<(usize, Vec<f64>)> {
        let r = self.resolved.as_ref()?;
        if self.offset == TraceOffset::Start || r.rps.is_empty() {
            return None;
        }
        let n = r.rps.len();
        let w = ((self.duration_s? / r.step_s).ceil() as usize).clamp(1, n);
        let offset = match self.offset {
            TraceOffset::Start => unreachable!("returned above"),
            TraceOffset::Random => {
                let key = crate::rng::key(
                    crate::rng::key(seed, crate::rng::StreamId::Window as u64),
                    workload as u64,
                );
                let u = crate::rng::Stream::from_key(key).unit();
                ((u * (n - w + 1) as f64) as usize).min(n - w)
            }
            TraceOffset::Tiled => (seed % (n / w) as u64) as usize * w,
        };
        Some((offset, r.rps[offset..offset + w].to_vec()))
    }
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
    /// The same distribution with its times multiplied by `f`.
    pub fn stretched(&self, f: f64) -> IntervalSpec {
        match *self {
            IntervalSpec::Exponential { mean_s } => {
                IntervalSpec::Exponential { mean_s: mean_s * f }
            }
            IntervalSpec::Weibull { shape, scale_s } => IntervalSpec::Weibull {
                shape,
                scale_s: scale_s * f,
            },
        }
    }

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

/// Which scripted attacker plays in a scenario with a `[security]` section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackerKind {
    /// No attacker (the scenario only describes what could be attacked).
    #[default]
    None,
    /// Straight for the data tier: in at the entry closest to it, then one hop at a
    /// time along the calls that lead there (CAGE 2's B_line on a service graph).
    BLine,
    /// Zone by zone: in at a random entry, then everything reachable in the zone it
    /// holds before the next zone (CAGE 2's Meander on a service graph).
    Meander,
}

/// The privilege an exploit gives.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// Not compromised.
    #[default]
    None,
    /// A shell as the service's user.
    User,
    /// Root in the container (reads its secrets, can escape to the host).
    Root,
}

/// What an attacker can do to one service (the `[[security.services]]` entries;
/// the others take the section's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSecuritySpec {
    /// The service.
    pub name: String,
    /// Probability that one exploit attempt against a replica works.
    pub exploitability: Option<f64>,
    /// Privilege a working exploit gives.
    pub privilege: Option<Privilege>,
    /// Probability that one attempt to escalate from user to root works.
    pub escalation: Option<f64>,
}

/// Intrusions: what an attacker can reach and exploit, what it does once in, and
/// what the monitoring shows the defender. Without an `attacker` (the default), the
/// section only describes the attack surface and nothing attacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySpec {
    /// The attacker.
    pub attacker: AttackerKind,
    /// Mean time between the attacker's moves (exponential), seconds.
    pub attack_interval_s: f64,
    /// Services reachable from outside (default: the workloads' entry services).
    pub entry: Vec<String>,
    /// The data tier: where a root shell is impact and any shell exfiltrates.
    pub data: Vec<String>,
    /// Default probability that an exploit attempt works.
    pub exploitability: f64,
    /// Default probability that an escalation attempt works.
    pub escalation: f64,
    /// Per-service overrides.
    pub services: Vec<ServiceSecuritySpec>,
    /// Probability that a login with stolen credentials works.
    pub login_success: f64,
    /// Probability that a working exploit raises an alert.
    pub detect_exploit: f64,
    /// Probability that an escalation raises an alert.
    pub detect_escalation: f64,
    /// Probability that a login with stolen credentials raises an alert.
    pub detect_login: f64,
    /// Mean delay from an attacker's move to its alert (exponential), seconds.
    pub detect_delay_s: f64,
    /// False alerts per replica per hour (Poisson).
    pub false_alerts_per_hour: f64,
    /// Benign authentication failures per service per minute (Poisson).
    pub auth_noise_per_min: f64,
    /// Exfiltration through a user shell on a data replica, MB/s (root: ten times).
    pub exfil_mb_per_s: f64,
    /// Error rate a data service gets while the attacker is root on one of its
    /// replicas (impact: tampered or encrypted data).
    pub impact_error_rate: f64,
    /// Service-time factor of a replica mining crypto-currency (root, outside the
    /// data tier): the CPU it steals.
    pub mining_slowdown: f64,
    /// Probability that root on a replica reaches another replica on its host
    /// (container escape), per attempt.
    pub host_escape: f64,
    /// Time an analysis of a replica takes, seconds.
    pub analyse_s: f64,
    /// Mean time the attacker keeps one address (then it moves to another, and a
    /// block of the old one stops nothing), seconds.
    pub source_change_s: f64,
    /// Decoys a service can have.
    pub max_decoys: u32,
}

impl Default for SecuritySpec {
    fn default() -> Self {
        SecuritySpec {
            attacker: AttackerKind::None,
            attack_interval_s: 10.0,
            entry: Vec::new(),
            data: Vec::new(),
            exploitability: 0.3,
            escalation: 0.5,
            services: Vec::new(),
            login_success: 0.9,
            detect_exploit: 0.8,
            detect_escalation: 0.5,
            detect_login: 0.2,
            detect_delay_s: 15.0,
            false_alerts_per_hour: 1.0,
            auth_noise_per_min: 1.0,
            exfil_mb_per_s: 0.1,
            impact_error_rate: 0.3,
            mining_slowdown: 2.0,
            host_escape: 0.1,
            analyse_s: 20.0,
            source_change_s: 300.0,
            max_decoys: 1,
        }
    }
}

impl ScenarioSpec {
    /// Parses TOML text without validating it (a spec naming traces is completed by
    /// `hale-datasets` before [`super::Scenario::from_spec`]); `origin` names it in errors.
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
    /// Intrusions (attack surface, attacker, monitoring), if the scenario has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,
}
