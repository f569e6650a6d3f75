//! `Healing-v0`: faults strike; the agent picks a remedy for a replica, a service or a
//! host, or does nothing.
//!
//! Observation (flat): per replica slot (up to `max_replicas`, live replicas ordered by
//! service then id) `[present, state one-hot ×8, probe failures / 3, restarts / 5,
//! memory / limit, service / services, the replica's mean latency over
//! its service's SLO bound and its error rate in the last scrape window]`; per host slot (up to `max_hosts`) `[present,
//! up, cordoned, CPU allocation]`; per service `[error rate, p95 / SLO, request rate
//! share]`. The slot order of the observation is the one actions refer to.
//!
//! Action (`Discrete`): 0 no-op; `1 + k` restart replica slot k; `1 + R + k`
//! reschedule replica slot k; `1 + 2R + s` roll back service s; `1 + 2R + S + h`
//! drain host slot h. `action_mask()` allows only what applies now (an occupied slot,
//! a replica that can be restarted, a service with a previous revision, a host that is
//! up and not cordoned). Rolling back a deploy that was good is refused by the cluster:
//! the step is a no-op that still costs the remedy (`info["refused"]` says why).
//!
//! The encoding, mask and action decoding are [`crate::encoding::HealingObservation`]'s,
//! which the actuation adapter uses on live data.
//!
//! With `observation = "graph"` the observation is the resource graph instead (see
//! Scaling-v0); replica slot k is graph node `zones + hosts + services + k` and host
//! slot h is node `zones + h`, so a GNN can score nodes for the node-level actions.
//!
//! Reward per step: `− unserved_weight × (failed + timed-out) / arrived − remedy
//! cost`, where the remedy cost is `remedy_penalty ×` a fixed cost (restart 0.01,
//! reschedule 0.02, rollback 0.05, drain 0.05) `+ disruption_weight ×` the serving
//! capacity the remedy takes away (each replica it takes out of the load balancer,
//! for its restart or boot time within the step, over the replicas serving its
//! service), so that churn is not free. `info["ttr_s"]`
//! lists the time to recovery of each fault resolved during the step (in fault order), with
//! `info["ttr_kinds"]` their kinds.
//!
//! By default (`fault_mix = true`) the scenario's faults are joined by bad deploys,
//! memory leaks and slow replicas on every service that has downstream calls or is
//! called, so every remedy has a use.

use crate::cloud;
use crate::encoding::{
    HealingAction, HealingObservation, HostReading, ReplicaReading, ServiceReading,
};
use crate::env::{Env, EnvError, HealingInfo, Info, Step, check_action};
use crate::space::{Space, Value};
use hale_sim::rng::Stream;
use hale_sim::{
    Action, FaultProcessSpec, FaultSpec, Fidelity, HostState, IntervalSpec, ReplicaId, Scenario,
    Simulation,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

/// Configuration of `Healing-v0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealingConfig {
    /// Builtin scenario name or scenario file.
    pub scenario: String,
    /// Override the scenario's fidelity.
    pub fidelity: Option<Fidelity>,
    /// Simulated seconds between decisions.
    pub control_interval_s: f64,
    /// Episode length in simulated seconds (default: the scenario's duration).
    pub episode_s: Option<f64>,
    /// Replica slots in the observation and action.
    pub max_replicas: usize,
    /// Host slots in the observation and action.
    pub max_hosts: usize,
    /// Add bad deploys, leaks and slow replicas to the scenario's faults.
    pub fault_mix: bool,
    /// Mean time between each added fault kind, per service, seconds.
    pub fault_mix_mtbf_s: f64,
    /// Weight of the unserved fraction.
    pub unserved_weight: f64,
    /// Multiplies each remedy's fixed cost (restart 0.01, reschedule 0.02, rollback and
    /// drain 0.05): the penalty an operator puts on touching production at all.
    pub remedy_penalty: f64,
    /// Weight of the capacity a remedy takes away: for each replica it takes out of
    /// service, the seconds it is out (restart or boot time, within the step) over the
    /// step, divided by the replicas serving its service: a restart priced as if the
    /// capacity it removes were requests lost, so that a policy cannot win by churn.
    pub disruption_weight: f64,
    /// Flat slots (`matrix`) or the resource graph (`graph`).
    pub observation: crate::encoding::ObservationKind,
    /// Run the cluster autoscaler, as a real cluster does: the scenario's
    /// `[cluster.autoscaler]`, or the Kubernetes Cluster Autoscaler's defaults
    /// (`hale_sim::AutoscalerSpec`), so that unneeded hosts are released and the
    /// bill follows the replicas. False: hosts are never released.
    pub cluster_autoscaler: bool,
    /// Per-episode randomisation of load, fault rates and boot times (ranges; see
    /// [`crate::Randomize`]).
    pub randomize: crate::Randomize,
}

impl HealingConfig {
    /// Reads a config (a JSON object, or null for the defaults); an unknown field is
    /// an error that names it.
    pub fn from_json(config: &Json) -> Result<HealingConfig, EnvError> {
        cloud::parse_config("Healing-v0", config)
    }
}

impl Default for HealingConfig {
    fn default() -> Self {
        HealingConfig {
            scenario: "three-tier".into(),
            fidelity: None,
            control_interval_s: 10.0,
            episode_s: None,
            max_replicas: 16,
            max_hosts: 8,
            fault_mix: true,
            fault_mix_mtbf_s: 1800.0,
            unserved_weight: 1.0,
            remedy_penalty: 1.0,
            disruption_weight: 1.0,
            observation: crate::encoding::ObservationKind::Matrix,
            cluster_autoscaler: true,
            randomize: crate::Randomize::default(),
        }
    }
}

const ID: &str = "Healing-v0";

/// The self-healing environment.
pub struct Healing {
    cfg: HealingConfig,
    sc: Arc<Scenario>,
    sim: Option<Simulation>,
    /// A trace workload this build did not read (see [`crate::load_topology`]).
    unread_trace: Option<String>,
    seeds: Stream,
    episode_s: f64,
    obs_space: Space,
    act_space: Space,
    healer: Healer,
    graph: crate::encoding::GraphEncoding,
    faults: cloud::FaultReporter,
}

impl Healing {
    /// Makes the env from a JSON config (null for the defaults).
    pub fn new(config: &Json) -> Result<Healing, EnvError> {
        let cfg: HealingConfig = cloud::parse_config(ID, config)?;
        cloud::period(ID, "control_interval_s", cfg.control_interval_s)?;
        if let Some(e) = cfg.episode_s {
            cloud::duration(ID, "episode_s", e)?;
        }
        cloud::positive(ID, "fault_mix_mtbf_s", cfg.fault_mix_mtbf_s)?;
        for (field, v) in [
            ("remedy_penalty", cfg.remedy_penalty),
            ("disruption_weight", cfg.disruption_weight),
        ] {
            cloud::non_negative(ID, field, v)?;
        }
        if cfg.max_replicas == 0 || cfg.max_hosts == 0 {
            return Err(EnvError::Config {
                env: ID.into(),
                field: "max_replicas".into(),
                reason: "slots must be ≥ 1".into(),
            });
        }
        cfg.randomize.validate(ID)?;
        let (sc, unread_trace) = cloud::load(ID, &cfg.scenario, cfg.fidelity)?;
        let mut sc = cloud::with_autoscaler(ID, sc, cfg.cluster_autoscaler)?;
        if cfg.fault_mix {
            let mut spec = sc.spec.clone();
            let every = IntervalSpec::Exponential {
                mean_s: cfg.fault_mix_mtbf_s,
            };
            for s in &sc.spec.services {
                for fault in [
                    FaultSpec::BadDeploy { error_rate: 0.3 },
                    FaultSpec::MemoryLeak { mib_per_s: 4.0 },
                    FaultSpec::Slow { factor: 5.0 },
                ] {
                    spec.faults.mtbf.push(FaultProcessSpec {
                        target: s.name.clone(),
                        fault,
                        every: every.clone(),
                    });
                }
            }
            sc = Scenario::from_spec(spec, &sc.origin).map_err(|e| EnvError::Config {
                env: ID.into(),
                field: "fault_mix".into(),
                reason: e.to_string(),
            })?;
        }
        let (r, h, s) = (cfg.max_replicas, cfg.max_hosts, sc.spec.services.len());
        let refs = cloud::latency_refs_ms(&sc);
        let encoding = HealingObservation {
            services: sc.spec.services.iter().map(|s| s.name.clone()).collect(),
            latency_refs_ms: refs.clone(),
            max_replicas: r,
            max_hosts: h,
        };
        let (dim, actions) = (encoding.dim(), encoding.actions());
        debug_assert_eq!(actions, 1 + 2 * r + s + h);
        let graph = cloud::graph_encoding(&sc, &refs, r as f64);
        Ok(Healing {
            episode_s: cfg.episode_s.unwrap_or(sc.spec.simulation.duration_s),
            obs_space: match cfg.observation {
                crate::encoding::ObservationKind::Matrix => Space::Box {
                    low: vec![0.0; dim],
                    high: vec![f32::MAX; dim],
                    shape: vec![dim],
                },
                crate::encoding::ObservationKind::Graph => Space::Graph {
                    node_features: crate::encoding::NODE_FEATURES,
                    edge_features: crate::encoding::EDGE_FEATURES,
                },
            },
            act_space: Space::Discrete { n: actions as u64 },
            sc: Arc::new(sc),
            sim: None,
            unread_trace,
            seeds: Stream::from_key(0x4ea1),
            healer: Healer::new(encoding),
            graph,
            faults: cloud::FaultReporter::default(),
            cfg,
        })
    }

    /// The simulation of the current episode (after `reset`).
    pub fn simulation(&self) -> Option<&Simulation> {
        self.sim.as_ref()
    }

    /// The replica each replica slot refers to now.
    pub fn replica_slots(&self) -> &[ReplicaId] {
        &self.healer.replica_slots
    }

    /// How this env encodes its matrix observation, mask and actions, for building
    /// the same observation from live data.
    pub fn observation_encoding(&self) -> HealingObservation {
        self.healer.encoding.clone()
    }

    /// How this env encodes its graph observation, for building it from live data.
    pub fn graph_encoding(&self) -> crate::encoding::GraphEncoding {
        self.graph.clone()
    }

    /// Observation, slots and mask for the current state.
    fn observe(&mut self) -> Value {
        let Some(sim) = self.sim.as_ref() else {
            return Value::Box(vec![]);
        };
        let flat = self.healer.observe(sim);
        match self.cfg.observation {
            crate::encoding::ObservationKind::Matrix => Value::Box(flat),
            crate::encoding::ObservationKind::Graph => {
                Value::Graph(cloud::graph_observation(sim, &self.graph))
            }
        }
    }
}

/// The healer's view of a cloud it does not own: its replica and host slots, the
/// mask, and how its actions become remedies. `Healing-v0` and `CloudOps-v0`'s healer
/// agent both play through one.
pub(crate) struct Healer {
    pub(crate) encoding: HealingObservation,
    pub(crate) replica_slots: Vec<ReplicaId>,
    pub(crate) host_slots: Vec<usize>,
    pub(crate) mask: Vec<bool>,
}

impl Healer {
    pub(crate) fn new(encoding: HealingObservation) -> Healer {
        Healer {
            mask: vec![true; encoding.actions()],
            encoding,
            replica_slots: vec![],
            host_slots: vec![],
        }
    }

    /// Reads `sim` into the slots and the mask; the flat observation.
    pub(crate) fn observe(&mut self, sim: &Simulation) -> Vec<f32> {
        let (r, h) = (self.encoding.max_replicas, self.encoding.max_hosts);
        let n_services = sim.services().len();
        self.replica_slots = sim
            .services()
            .iter()
            .flat_map(|s| s.replicas.iter().copied())
            .take(r)
            .collect();
        self.host_slots = (0..sim.hosts().len())
            .filter(|&i| sim.hosts()[i].state != HostState::Removed)
            .take(h)
            .collect();
        let per_replica: &[hale_sim::ReplicaMetrics] = sim
            .observe()
            .map(|snap| snap.replicas.as_slice())
            .unwrap_or(&[]);
        let replicas: Vec<ReplicaReading> = self
            .replica_slots
            .iter()
            .map(|&id| {
                cloud::replica_reading(sim, id, per_replica.iter().find(|m| m.replica == id))
            })
            .collect();
        let hosts: Vec<HostReading> = self
            .host_slots
            .iter()
            .map(|&id| cloud::host_reading(sim, id))
            .collect();
        let services: Vec<ServiceReading> = sim
            .observe()
            .map(|snap| snap.services.iter().map(ServiceReading::from).collect())
            .unwrap_or_default();
        // A rollback needs a previous revision; whether the current one is bad is for
        // the agent to infer from error rates.
        let rollback: Vec<bool> = (0..n_services)
            .map(|s| sim.services()[s].deploys > 0)
            .collect();
        self.mask = self.encoding.mask(&replicas, &hosts, &rollback);
        self.encoding.encode(&replicas, &hosts, &services)
    }

    /// Action `a`'s remedy (none for a no-op), its fixed cost and its kind.
    pub(crate) fn remedy(&self, a: usize) -> (Option<Action>, f64, &'static str) {
        match self.encoding.action(a) {
            None | Some(HealingAction::Noop) => (None, 0.0, "no-op"),
            Some(HealingAction::Restart(k)) => (
                Some(Action::Restart {
                    replica: self.replica_slots[k],
                }),
                0.01,
                "restart",
            ),
            Some(HealingAction::Reschedule(k)) => (
                Some(Action::Reschedule {
                    replica: self.replica_slots[k],
                }),
                0.02,
                "reschedule",
            ),
            Some(HealingAction::Rollback(service)) => {
                (Some(Action::Rollback { service }), 0.05, "rollback")
            }
            Some(HealingAction::Drain(h)) => (
                Some(Action::Drain {
                    host: self.host_slots[h],
                }),
                0.05,
                "drain",
            ),
        }
    }
}

/// The serving capacity `act` takes away, as a share of a step of `step_s`: for each
/// replica it takes out of the load balancer, the seconds it will be out (its restart
/// or boot time, at most the step) over the step and over the replicas serving its
/// service. A replica not serving (crashed, hung and failing probes) costs nothing.
pub(crate) fn disruption_share(sim: &Simulation, act: &Action, step_s: f64) -> f64 {
    let spec = &sim.scenario().spec;
    let serving = |s: usize| {
        sim.services()[s]
            .replicas
            .iter()
            .filter(|&&r| sim.replicas()[r].in_lb)
            .count()
            .max(1) as f64
    };
    let share = |r: usize, out_s: f64| {
        let rep = &sim.replicas()[r];
        if !rep.in_lb || step_s <= 0.0 {
            return 0.0;
        }
        out_s.min(step_s) / step_s / serving(rep.service)
    };
    match *act {
        Action::Restart { replica } => share(
            replica,
            spec.services[sim.replicas()[replica].service].restart_time_s,
        ),
        Action::Reschedule { replica } => share(
            replica,
            spec.services[sim.replicas()[replica].service].boot_time_s,
        ),
        Action::Drain { host } => (0..sim.replicas().len())
            .filter(|&r| sim.replicas()[r].host == Some(host))
            .map(|r| share(r, spec.services[sim.replicas()[r].service].boot_time_s))
            .sum(),
        _ => 0.0,
    }
}

impl Env for Healing {
    fn id(&self) -> &str {
        ID
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn action_mask(&self) -> Option<&[bool]> {
        Some(&self.healer.mask)
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        cloud::unread_trace(ID, &self.unread_trace)?;
        let sim_seed = cloud::episode_seed(ID, &mut self.seeds, 0x4ea1, seed, options)?;
        let sc = self.cfg.randomize.episode(&self.sc, sim_seed);
        self.sim = Some(cloud::new_sim(&sc, sim_seed));
        self.faults.clear();
        Ok((self.observe(), Info::default()))
    }

    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        match &self.sim {
            None => return Err(EnvError::NeedsReset(ID.into())),
            Some(sim) if sim.now().as_secs_f64() >= self.episode_s - 1e-9 => {
                return Err(EnvError::EpisodeOver(ID.into()));
            }
            Some(_) => {}
        }
        check_action(ID, &self.act_space, Some(&self.healer.mask), action)?;
        let Value::Discrete(a) = action else {
            unreachable!("checked above")
        };
        let (remedy, fixed_cost, kind) = self.healer.remedy(*a as usize);
        let sim = self
            .sim
            .as_mut()
            .ok_or_else(|| EnvError::NeedsReset(ID.into()))?;
        let mut refused = None;
        let disruption = remedy.as_ref().map_or(0.0, |act| {
            disruption_share(sim, act, self.cfg.control_interval_s)
        });
        if let Some(act) = &remedy
            && let Err(e) = sim.apply(act)
        {
            // Rolling back a good deploy: the cluster refuses, the action is wasted.
            match act {
                Action::Rollback { .. } => refused = Some(e.to_string()),
                _ => {
                    return Err(EnvError::MaskedAction {
                        env: ID.into(),
                        action: a.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        let before = cloud::Before::read(sim);
        let dt = self
            .cfg
            .control_interval_s
            .min(self.episode_s - sim.now().as_secs_f64())
            .max(0.0);
        sim.run_for(cloud::secs(dt));
        let (arrived, unserved) = cloud::interval_requests(before.requests, sim.requests());
        let unserved_frac = if arrived > 0.0 {
            unserved / arrived
        } else {
            0.0
        };
        let remedy_cost = self.cfg.remedy_penalty * fixed_cost
            + if refused.is_none() {
                self.cfg.disruption_weight * disruption
            } else {
                0.0
            };
        let reward = -self.cfg.unserved_weight * unserved_frac - remedy_cost;
        let truncated = sim.now().as_secs_f64() >= self.episode_s - 1e-9;
        let info = Info {
            cloud: Some(cloud::common_info(sim, &before, &mut self.faults)),
            healing: Some(HealingInfo {
                remedy: kind,
                refused,
                unserved_fraction: unserved_frac,
                remedy_cost,
            }),
            ..Info::default()
        };
        let obs = self.observe();
        Ok(Step {
            obs,
            reward,
            terminated: false,
            truncated,
            info,
        })
    }
}
