//! `Scaling-v0`: the agent sets how many replicas each service runs.
//!
//! Every `control_interval_s` the agent sees what monitoring saw (per service: request
//! rate, latency percentiles relative to the SLO, error rate, CPU, replicas ready,
//! booting and desired) and picks, per service, a change of −2…+2 replicas (`action =
//! "delta"`, the default) or a target count in `min_replicas..=max_replicas`
//! (`action = "target"`). New replicas boot for the service's boot time, and hosts are
//! provisioned when none has room.
//!
//! With `cpu_levels` the agent also sizes each service vertically, as Kubernetes'
//! in-place pod resize (and Autopilot's and the VPA's recommendations) do: the action
//! has a second block of one choice per service, an index into `cpu_levels`, the CPU
//! request per replica as a factor of the scenario's. A replica's local work runs at
//! its cores (fewer cores: slower requests, the same CPU-seconds); the resize takes
//! the service's `resize_time_s`, and a replica whose host has no room for the larger
//! size keeps its old one.
//!
//! With `features = "v2"` each service's row also has the rate's 5-minute trend,
//! pending replicas and the CPU size ([`crate::encoding::lead`]).
//!
//! Reward per step, each term documented in `info`:
//!
//! `− cost_weight × replica_cost / initial_replica_cost
//!  − slo_weight × (SLO-violation seconds in the step / step length)
//!  − drop_weight × (failed + timed-out requests / arrived requests in the step)`
//!
//! where `replica_cost` is the cost rate of the cores the replicas request (each core
//! priced at its host's price per core), so 1.0 means "as expensive as the scenario's
//! initial sizing". With `reward = "dollars"` the reward is the step's cost in one
//! unit instead: `−(host bill of the step + slo_minute_price × SLO-violation minutes)`,
//! the bill following the replicas through the cluster autoscaler (on by default,
//! `cluster_autoscaler`). The episode is a continuing task cut by a time limit: it is only
//! ever `truncated`, never `terminated`. With `auto_heal` (the default) crashed and
//! liveness-failed replicas are restarted at each step, as kubelets would.

use crate::cloud;
use crate::encoding::{
    FeatureSet, LeadReading, ObservationKind, SERVICE_FEATURES, TREND_WINDOW_S, lead,
};
use crate::env::{
    Env, EnvError, Info, ObsSlot, ScalingInfo, Step, StepInto, check_action, write_obs,
};
use crate::space::{Space, Value};
use hale_sim::rng::Stream;
use hale_sim::{Action, Fidelity, Scenario, Simulation};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

/// How actions are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingAction {
    /// Per service, one of −2, −1, 0, +1, +2 replicas (action value 0…4).
    #[default]
    Delta,
    /// Per service, a target count: action value k means `min_replicas + k`.
    Target,
}

/// What the reward counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingReward {
    /// The weighted sum of relative replica cost, SLO-violation share and dropped share
    /// (`cost_weight`, `slo_weight`, `drop_weight`).
    #[default]
    Weighted,
    /// Dollars: −(the host bill of the step + `slo_minute_price` × SLO-violation
    /// minutes in the step, summed over SLOs).
    Dollars,
}

/// Configuration of `Scaling-v0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingConfig {
    /// Builtin scenario name or scenario file.
    pub scenario: String,
    /// Override the scenario's fidelity (`request` or `fluid`).
    pub fidelity: Option<Fidelity>,
    /// Simulated seconds between decisions.
    pub control_interval_s: f64,
    /// Override the scenario's fluid tick (e.g. the control interval, for speed).
    pub fluid_tick_s: Option<f64>,
    /// Episode length in simulated seconds (default: the scenario's duration).
    pub episode_s: Option<f64>,
    /// Delta or target actions.
    pub action: ScalingAction,
    /// Fewest replicas per service.
    pub min_replicas: u32,
    /// Most replicas per service.
    pub max_replicas: u32,
    /// Matrix or graph observations.
    pub observation: ObservationKind,
    /// The matrix observation's features per service: `v1` (the default) or `v2`,
    /// which adds the rate's 5-minute trend, pending replicas and the CPU size
    /// ([`crate::encoding::lead`]).
    pub features: crate::encoding::FeatureSet,
    /// What the reward counts: `weighted` terms (the default) or `dollars`.
    pub reward: ScalingReward,
    /// With `reward = "dollars"`: the price of one minute of one SLO in violation, in
    /// the hosts' price unit (dollars). The default, 1.0, prices a minute of one SLO's
    /// violation like 17 minutes of `microservices-20`'s nine initial hosts (9 ×
    /// $0.384/h): set it to what a minute of violation costs you.
    pub slo_minute_price: f64,
    /// Weight of the relative replica cost.
    pub cost_weight: f64,
    /// Weight of the fraction of the step in SLO violation (summed over SLOs).
    pub slo_weight: f64,
    /// Weight of the fraction of requests failed or timed out.
    pub drop_weight: f64,
    /// Keep the scenario's faults (false: a fault-free cloud).
    pub faults: bool,
    /// Restart crashed replicas and replicas failing their liveness probes at every
    /// step, as the cluster's kubelets would (without their back-off), so that a
    /// scaling policy is judged on capacity, not on healing.
    pub auto_heal: bool,
    /// Run the cluster autoscaler, as a real cluster does: the scenario's
    /// `[cluster.autoscaler]`, or the Kubernetes Cluster Autoscaler's defaults
    /// (`hale_sim::AutoscalerSpec`), so that unneeded hosts are released and the
    /// bill follows the replicas. False: hosts are never released.
    pub cluster_autoscaler: bool,
    /// Per-episode randomisation of load, fault rates and boot times (ranges; see
    /// [`crate::Randomize`]).
    pub randomize: crate::Randomize,
    /// Vertical sizing: the CPU requests the agent may give a service's replicas, as
    /// factors of the scenario's request (e.g. `[0.05, 0.1, 0.25, 0.5, 1.0]`). Empty
    /// (the default): replica counts only. When set it must hold 1.0, the scenario's
    /// sizing, where the baselines keep every service.
    pub cpu_levels: Vec<f64>,
}

impl ScalingConfig {
    /// Reads a config (a JSON object, or null for the defaults); an unknown field is
    /// an error that names it.
    pub fn from_json(config: &Json) -> Result<ScalingConfig, EnvError> {
        cloud::parse_config("Scaling-v0", config)
    }

    /// How an env with this config turns action choices into replicas and sizes.
    pub fn actions(&self) -> crate::encoding::ScalingActions {
        crate::encoding::ScalingActions {
            delta: self.action == ScalingAction::Delta,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            cpu_levels: self.cpu_levels.clone(),
        }
    }
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            scenario: "microservices-20".into(),
            fidelity: None,
            control_interval_s: 30.0,
            fluid_tick_s: None,
            episode_s: None,
            action: ScalingAction::Delta,
            min_replicas: 1,
            max_replicas: 20,
            observation: ObservationKind::Matrix,
            features: crate::encoding::FeatureSet::V1,
            reward: ScalingReward::Weighted,
            slo_minute_price: 1.0,
            cost_weight: 1.0,
            slo_weight: 1.0,
            drop_weight: 10.0,
            faults: true,
            auto_heal: true,
            cluster_autoscaler: true,
            randomize: crate::Randomize::default(),
            cpu_levels: Vec::new(),
        }
    }
}

/// The autoscaling environment.
pub struct Scaling {
    cfg: ScalingConfig,
    sc: Arc<Scenario>,
    sim: Option<Simulation>,
    /// A trace workload this build did not read (see [`crate::load_topology`]).
    unread_trace: Option<String>,
    seeds: Stream,
    episode_s: f64,
    refs: Vec<f64>,
    graph: crate::encoding::GraphEncoding,
    obs_space: Space,
    act_space: Space,
    base_cost_rate: f64,
    faults: cloud::FaultReporter,
    /// How action choices become replicas and sizes (from the config).
    actions: crate::encoding::ScalingActions,
    /// With `features = "v2"`: (time, cumulative arrivals per service) after each
    /// step, back to the trend window.
    arrivals: std::collections::VecDeque<(f64, Vec<f64>)>,
}

const ID: &str = "Scaling-v0";

impl Scaling {
    /// Makes the env from a JSON config (null for the defaults).
    pub fn new(config: &Json) -> Result<Scaling, EnvError> {
        let cfg: ScalingConfig = cloud::parse_config(ID, config)?;
        cloud::period(ID, "control_interval_s", cfg.control_interval_s)?;
        if let Some(e) = cfg.episode_s {
            cloud::duration(ID, "episode_s", e)?;
        }
        if cfg.min_replicas > cfg.max_replicas || cfg.max_replicas == 0 {
            return Err(EnvError::Config {
                env: ID.into(),
                field: "max_replicas".into(),
                reason: format!(
                    "need 1 ≤ max_replicas and min_replicas ≤ max_replicas, got {}..={}",
                    cfg.min_replicas, cfg.max_replicas
                ),
            });
        }
        cfg.randomize.validate(ID)?;
        for (field, v) in [
            ("cost_weight", cfg.cost_weight),
            ("slo_weight", cfg.slo_weight),
            ("drop_weight", cfg.drop_weight),
            ("slo_minute_price", cfg.slo_minute_price),
        ] {
            cloud::non_negative(ID, field, v)?;
        }
        check_cpu_levels(&cfg.cpu_levels)?;
        let (sc, unread_trace) = cloud::load(ID, &cfg.scenario, cfg.fidelity)?;
        let mut sc = cloud::with_autoscaler(ID, sc, cfg.cluster_autoscaler)?;
        if !cfg.faults || cfg.fluid_tick_s.is_some() {
            let mut spec = sc.spec.clone();
            if !cfg.faults {
                spec.faults = Default::default();
            }
            if let Some(t) = cfg.fluid_tick_s {
                cloud::period(ID, "fluid_tick_s", t)?;
                spec.simulation.fluid_tick_s = t;
            }
            sc = Scenario::from_spec(spec, &sc.origin).map_err(|e| EnvError::Config {
                env: ID.into(),
                field: "faults".into(),
                reason: e.to_string(),
            })?;
        }
        let n = sc.spec.services.len();
        cpu_levels_fit(&sc, &cfg.cpu_levels)?;
        let choices = match cfg.action {
            ScalingAction::Delta => 5,
            ScalingAction::Target => (cfg.max_replicas - cfg.min_replicas + 1) as u64,
        };
        if cfg.features != FeatureSet::V1 && cfg.observation != ObservationKind::Matrix {
            return Err(EnvError::Config {
                env: ID.into(),
                field: "features".into(),
                reason: "the v2 features are in the matrix observation only".into(),
            });
        }
        let f = cfg.features.per_service();
        let obs_space = match cfg.observation {
            ObservationKind::Matrix => Space::Box {
                // The rate trend is a log-ratio: it goes below zero when the load falls.
                low: (0..n * f)
                    .map(|i| {
                        if i % f == lead::RATE_TREND && f > SERVICE_FEATURES {
                            -5.0
                        } else {
                            0.0
                        }
                    })
                    .collect(),
                high: vec![f32::MAX; n * f],
                shape: vec![n, f],
            },
            ObservationKind::Graph => Space::Graph {
                node_features: crate::encoding::NODE_FEATURES,
                edge_features: crate::encoding::EDGE_FEATURES,
            },
        };
        let base_cost_rate = sc
            .spec
            .services
            .iter()
            .map(|s| s.replicas as f64 * s.cpu)
            .sum::<f64>()
            * price_per_core(&sc);
        let refs = cloud::latency_refs_ms(&sc);
        Ok(Scaling {
            episode_s: cfg.episode_s.unwrap_or(sc.spec.simulation.duration_s),
            graph: cloud::graph_encoding(&sc, &refs, cfg.max_replicas as f64),
            refs,
            obs_space,
            act_space: Space::MultiDiscrete {
                nvec: [vec![choices; n], vec![cfg.cpu_levels.len() as u64; n]]
                    .concat()
                    .into_iter()
                    .filter(|&k| k > 0)
                    .collect(),
            },
            sc: Arc::new(sc),
            sim: None,
            unread_trace,
            seeds: Stream::from_key(0x5ca1e),
            base_cost_rate: base_cost_rate.max(1e-9),
            faults: cloud::FaultReporter::default(),
            arrivals: Default::default(),
            actions: cfg.actions(),
            cfg,
        })
    }

    /// The simulation of the current episode (after `reset`).
    pub fn simulation(&self) -> Option<&Simulation> {
        self.sim.as_ref()
    }

    /// How this env turns action choices into desired replicas.
    pub fn action_encoding(&self) -> crate::encoding::ScalingActions {
        self.actions.clone()
    }

    /// How this env encodes its graph observation, for building it from live data.
    pub fn graph_encoding(&self) -> crate::encoding::GraphEncoding {
        self.graph.clone()
    }

    /// How this env encodes its matrix observation, for building it from live data.
    pub fn observation_encoding(&self) -> crate::encoding::ScalingObservation {
        crate::encoding::ScalingObservation {
            services: self
                .sc
                .spec
                .services
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            latency_refs_ms: self.refs.clone(),
            max_replicas: self.cfg.max_replicas as f64,
        }
    }

    fn observation(&self, sim: &Simulation) -> Value {
        match self.cfg.observation {
            ObservationKind::Matrix => {
                let n = self.sc.spec.services.len();
                let mut out = vec![0.0; n * SERVICE_FEATURES];
                let max = self.cfg.max_replicas as f64;
                cloud::service_features(sim.observe(), &self.refs, max, &mut out);
                if self.cfg.features == FeatureSet::V2 {
                    let snap = sim.observe();
                    out = out
                        .chunks(SERVICE_FEATURES)
                        .zip(self.lead_readings(sim))
                        .enumerate()
                        .flat_map(|(s, (base, lead))| {
                            let now = snap.map_or(0.0, |m| m.services[s].request_rate);
                            base.iter().copied().chain(lead.encode(now, max))
                        })
                        .collect();
                }
                Value::Box(out)
            }
            ObservationKind::Graph => Value::Graph(cloud::graph_observation(sim, &self.graph)),
        }
    }

    /// The `v2` readings of every service now.
    pub fn lead_readings(&self, sim: &Simulation) -> Vec<LeadReading> {
        let now = sim.now().as_secs_f64();
        let base = self
            .arrivals
            .iter()
            .rev()
            .find(|(t, _)| *t <= now - TREND_WINDOW_S + 1e-9)
            .or(self.arrivals.front());
        (0..self.sc.spec.services.len())
            .map(|s| {
                let total = sim.service_totals(s).arrivals;
                let rate_5m = match base {
                    Some((t, cum)) if now - t > 0.0 => (total - cum[s]) / (now - t),
                    _ => sim.observe().map_or(0.0, |m| m.services[s].request_rate),
                };
                let service = &sim.services()[s];
                LeadReading {
                    rate_5m,
                    pending: service
                        .replicas
                        .iter()
                        .filter(|&&r| sim.replicas()[r].state == hale_sim::ReplicaState::Pending)
                        .count() as u32,
                    cpu_size: service.cpu / self.sc.spec.services[s].cpu,
                }
            })
            .collect()
    }

    /// Applies an action, runs one control interval and computes the reward terms.
    fn advance(&mut self, action: &Value) -> Result<Terms, EnvError> {
        check_action(ID, &self.act_space, None, action)?;
        let Value::MultiDiscrete(a) = action else {
            unreachable!("checked above")
        };
        let cfg = &self.cfg;
        let sim = self
            .sim
            .as_mut()
            .ok_or_else(|| EnvError::NeedsReset(ID.into()))?;
        if sim.now().as_secs_f64() >= self.episode_s - 1e-9 {
            return Err(EnvError::EpisodeOver(ID.into()));
        }
        let mut changes = 0;
        let actions = &self.actions;
        let n = sim.services().len();
        let (counts, sizes) = a.split_at(n);
        for (s, &k) in sizes.iter().enumerate() {
            let cpu = cfg.cpu_levels[k as usize] * self.sc.spec.services[s].cpu;
            let service = &sim.services()[s];
            if (service.target_cpu() - cpu).abs() > 1e-12 {
                match sim.apply(&Action::Resize { service: s, cpu }) {
                    Ok(()) => changes += 1,
                    // A host without room for the larger size: the resize is deferred
                    // (asked again at the next step), as Kubernetes defers one.
                    Err(hale_sim::ActionError::NoRoom { .. }) => {}
                    Err(e) => {
                        return Err(EnvError::InvalidAction {
                            env: ID.into(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        for (s, &k) in counts.iter().enumerate() {
            let current = sim.services()[s].desired;
            let target = actions.replicas(k, current);
            if target != current {
                changes += 1;
                sim.apply(&Action::Scale {
                    service: s,
                    replicas: target,
                })
                .map_err(|e| EnvError::InvalidAction {
                    env: ID.into(),
                    reason: e.to_string(),
                })?;
            }
        }
        if cfg.auto_heal {
            cloud::heal_like_kubelet(sim);
        }
        let before = cloud::Before::read(sim);
        let (k0, slo0) = (before.requests, cloud::slo_seconds(sim));
        let dt = cfg
            .control_interval_s
            .min(self.episode_s - sim.now().as_secs_f64())
            .max(0.0);
        sim.run_for(cloud::secs(dt));
        let (arrived, unserved) = cloud::interval_requests(k0, sim.requests());
        let slo_s = cloud::slo_seconds(sim) - slo0;
        let truncated = sim.now().as_secs_f64() >= self.episode_s - 1e-9;
        let replica_cost = self
            .replica_cost_rate(self.sim.as_ref().unwrap_or_else(|| unreachable!()))
            / self.base_cost_rate;
        let slo_frac = if dt > 0.0 { slo_s / dt } else { 0.0 };
        let drop_frac = if arrived > 0.0 {
            unserved / arrived
        } else {
            0.0
        };
        let cfg = &self.cfg;
        let reward = match cfg.reward {
            ScalingReward::Weighted => {
                -cfg.cost_weight * replica_cost
                    - cfg.slo_weight * slo_frac
                    - cfg.drop_weight * drop_frac
            }
            ScalingReward::Dollars => {
                let bill = self.sim.as_ref().map_or(0.0, |s| s.cost()) - before.cost;
                -(bill + cfg.slo_minute_price * slo_s / 60.0)
            }
        };
        if let (FeatureSet::V2, Some(sim)) = (cfg.features, self.sim.as_ref()) {
            record_arrivals(&mut self.arrivals, sim);
        }
        Ok(Terms {
            reward,
            replica_cost,
            slo_frac,
            drop_frac,
            changes,
            truncated,
            before,
        })
    }

    /// Cost rate (per hour) of the cores the live replicas request.
    fn replica_cost_rate(&self, sim: &Simulation) -> f64 {
        let cores: f64 = sim
            .services()
            .iter()
            .flat_map(|s| s.replicas.iter())
            .map(|&r| &sim.replicas()[r])
            .filter(|r| r.state.is_live())
            .map(|r| r.cpu)
            .sum();
        cores * price_per_core(&self.sc)
    }
}

impl Scaling {
    /// The step's info: what it served and cost, and the reward's terms.
    fn info(&mut self, t: &Terms) -> Result<Info, EnvError> {
        let sim = self
            .sim
            .as_ref()
            .ok_or_else(|| EnvError::NeedsReset(ID.into()))?;
        Ok(Info {
            cloud: Some(cloud::common_info(sim, &t.before, &mut self.faults)),
            scaling: Some(ScalingInfo {
                relative_replica_cost: t.replica_cost,
                slo_violation_fraction: t.slo_frac,
                dropped_fraction: t.drop_frac,
                scaling_changes: t.changes,
            }),
            ..Info::default()
        })
    }

    /// Length of a matrix observation.
    fn obs_dim(&self) -> usize {
        self.obs_space.flat_dim().unwrap_or(0)
    }
}

/// The outcome of one step, before it is dressed as `Step` or written in place.
struct Terms {
    reward: f64,
    replica_cost: f64,
    slo_frac: f64,
    drop_frac: f64,
    changes: u32,
    truncated: bool,
    before: cloud::Before,
}

/// Records `sim`'s cumulative arrivals per service now, for the `v2` rate trend,
/// keeping the newest sample at least a trend window old and everything after it.
fn record_arrivals(arrivals: &mut std::collections::VecDeque<(f64, Vec<f64>)>, sim: &Simulation) {
    let now = sim.now().as_secs_f64();
    let totals = (0..sim.services().len())
        .map(|s| sim.service_totals(s).arrivals)
        .collect();
    arrivals.push_back((now, totals));
    while arrivals
        .get(1)
        .is_some_and(|(t, _)| *t <= now - TREND_WINDOW_S + 1e-9)
    {
        arrivals.pop_front();
    }
}

/// `cpu_levels` is empty, or finite positive factors that include 1.0.
fn check_cpu_levels(levels: &[f64]) -> Result<(), EnvError> {
    let bad = |reason: String| EnvError::Config {
        env: ID.into(),
        field: "cpu_levels".into(),
        reason,
    };
    if let Some(x) = levels.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        return Err(bad(format!(
            "every level must be a positive factor, got {x}"
        )));
    }
    if !levels.is_empty() && !levels.contains(&1.0) {
        return Err(bad(format!(
            "the levels must include 1.0 (the scenario's sizing, kept by the baselines), got {levels:?}"
        )));
    }
    Ok(())
}

/// Every level of every service fits the largest host type.
fn cpu_levels_fit(sc: &Scenario, levels: &[f64]) -> Result<(), EnvError> {
    let max = sc.spec.host_types.iter().map(|t| t.cpu).fold(0.0, f64::max);
    let top = levels.iter().copied().fold(0.0, f64::max);
    for s in &sc.spec.services {
        if top * s.cpu > max {
            return Err(EnvError::Config {
                env: ID.into(),
                field: "cpu_levels".into(),
                reason: format!(
                    "level {top} gives service `{}` {} cores per replica, more than the largest host type's {max}",
                    s.name,
                    top * s.cpu
                ),
            });
        }
    }
    Ok(())
}

/// Mean price of one core-hour over the scenario's host types.
fn price_per_core(sc: &Scenario) -> f64 {
    let t = &sc.spec.host_types;
    t.iter().map(|h| h.price_per_hour / h.cpu).sum::<f64>() / t.len() as f64
}

impl Env for Scaling {
    fn id(&self) -> &str {
        ID
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        cloud::unread_trace(ID, &self.unread_trace)?;
        let sim_seed = cloud::episode_seed(ID, &mut self.seeds, 0x5ca1e, seed, options)?;
        let sc = self.cfg.randomize.episode(&self.sc, sim_seed);
        let sim = cloud::new_sim(&sc, sim_seed);
        self.faults.clear();
        self.arrivals.clear();
        if self.cfg.features == FeatureSet::V2 {
            record_arrivals(&mut self.arrivals, &sim);
        }
        let obs = self.observation(&sim);
        self.sim = Some(sim);
        Ok((obs, Info::default()))
    }

    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let t = self.advance(action)?;
        let info = self.info(&t)?;
        let sim = self
            .sim
            .as_ref()
            .ok_or_else(|| EnvError::NeedsReset(ID.into()))?;
        Ok(Step {
            obs: self.observation(sim),
            reward: t.reward,
            terminated: false,
            truncated: t.truncated,
            info,
        })
    }

    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let t = self.advance(action)?;
        let info = self.info(&t)?;
        let sim = self
            .sim
            .as_ref()
            .ok_or_else(|| EnvError::NeedsReset(ID.into()))?;
        match (self.cfg.observation, obs) {
            // The matrix straight into the row, without a Value in between.
            (ObservationKind::Matrix, ObsSlot::Flat(row))
                if row.len() == self.obs_dim() && self.cfg.features == FeatureSet::V1 =>
            {
                cloud::service_features(
                    sim.observe(),
                    &self.refs,
                    self.cfg.max_replicas as f64,
                    row,
                )
            }
            (_, slot) => write_obs(ID, self.observation(sim), slot)?,
        }
        Ok(StepInto {
            reward: t.reward,
            terminated: false,
            truncated: t.truncated,
            info,
        })
    }
}
