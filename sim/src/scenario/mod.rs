//! Scenarios: TOML files describing topology, workload, faults, SLOs and prices.
//!
//! A file is parsed into a [`ScenarioSpec`] (serde, `deny_unknown_fields`, so a typo is
//! an error that names it), then validated once into a [`Scenario`] whose names are
//! resolved to indices. Every validation error names the file and the field path, as in
//! ``three-tier.toml: field `services[1].calls[0].to`: unknown service "apii"``.
//!
//! [`spec`] holds the types as written and `validate` the checks; this module holds
//! the validated [`Scenario`] and where scenarios come from (builtins, files, code).

pub mod spec;
mod validate;

pub use spec::{
    AttackerKind, AutoscalerSpec, CallSpec, ClusterSpec, DistSpec, FaultProcessSpec, FaultSpec,
    FaultsSpec, Fidelity, HostGroupSpec, HostTypeSpec, IntervalSpec, LbPolicy, Lifecycle,
    MAX_DURATION_S, MIN_PERIOD_S, Placement, Privilege, RateSpec, ResolvedSeries, ScenarioError,
    ScenarioSpec, ScheduledFaultSpec, SecuritySpec, ServiceSecuritySpec, ServiceSpec,
    SimulationSpec, SloSpec, SpotSpec, TraceOffset, TraceSpec, WorkloadSpec,
};

use crate::time::SimTime;
use std::path::Path;
use validate::Validator;

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

/// A scenario's `[security]` section resolved: per service, what an attacker can do
/// there, and the way to the data tier.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityModel {
    /// Services reachable from outside.
    pub entry: Vec<usize>,
    /// Whether each service is in the data tier.
    pub data: Vec<bool>,
    /// Per service, the probability that an exploit works.
    pub exploitability: Vec<f64>,
    /// Per service, the privilege an exploit gives.
    pub privilege: Vec<Privilege>,
    /// Per service, the probability that an escalation works.
    pub escalation: Vec<f64>,
    /// Per service, the calls from it to the nearest data service (`u32::MAX` where
    /// none is reachable).
    pub hops_to_data: Vec<u32>,
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
    /// The `[security]` section, resolved.
    pub security: Option<SecurityModel>,
}

/// Names of the scenarios shipped with the crate.
pub const BUILTINS: &[&str] = &["three-tier", "microservices-20", "demo"];

/// The TOML text of a builtin scenario, to start another scenario from.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "three-tier" => Some(include_str!("../../scenarios/three-tier.toml")),
        "microservices-20" => Some(include_str!("../../scenarios/microservices-20.toml")),
        "demo" => Some(include_str!("../../scenarios/demo.toml")),
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
                working_set_mib: None,
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
            security: None,
        };
        Scenario::from_spec(spec, "builtin:mmc")
    }
}
