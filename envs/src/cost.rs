//! `Cost-v0`: the cost optimiser alone. It picks the spot/on-demand mix of new
//! capacity, consolidates hosts, and right-sizes each service's CPU and memory
//! requests, on a cluster whose replica counts are the scenario's and whose hosts the
//! cluster autoscaler manages (it adds hosts for pending replicas and releases unneeded
//! ones; the optimiser acts on top of it, as Karpenter's consolidation and the VPA do).
//!
//! The cloud ([`CostModel`], applied to any scenario): every on-demand host type gets
//! a spot twin at `spot_price` × its price; spot hosts live an exponential time of mean
//! `spot_lifetime_s` and are reclaimed with `spot_notice_s` of notice (AWS gives 120 s,
//! GCP and Azure 30 s), drained at the notice; a service without a `working_set_mib`
//! uses (1 − `slack`) of its memory request (Autopilot measured 46 % slack in
//! requests before right-sizing).
//!
//! Observation (a flat `Box`, [`CostLayout`]): per service its monitoring row
//! ([`crate::encoding::SERVICE_FEATURES`]) and `[cpu request / scenario's, memory
//! request / scenario's, memory used / request (mean over running replicas), share of
//! its replicas crashed]`; per host slot (live hosts by id) `[present, spot, cpu
//! requested share, memory requested share, replicas / 32, its replicas fit elsewhere,
//! under spot notice, being drained or consolidated, ready, price / on-demand price]`;
//! and `[provisioning spot, live hosts / most hosts, spot share of live hosts, pending
//! replicas / 10, bill rate / initial bill rate, OOM kills in the step / 10]`.
//!
//! Action (`MultiDiscrete`): `[provision (0 on-demand, 1 spot), consolidate (0 none,
//! k: host slot k − 1), memory level per service…, CPU level per service…]`, levels
//! indexing `memory_levels` and `cpu_levels` (factors of the scenario's requests; an
//! empty list drops that block). A refused consolidation (a host not ready, already
//! going) or a resize that does not fit is reported in `info` and changes nothing.
//!
//! Reward: dollars, `−(host bill of the step + slo_minute_price × SLO-violation
//! minutes in the step)`. Only ever truncated.

use crate::cloud::{self, Before, FaultReporter};
use crate::encoding::SERVICE_FEATURES;
use crate::env::{Env, EnvError, Info, ObsSlot, Step, StepInto, check_action, write_obs};
use crate::space::{Space, Value};
use hale_sim::rng::Stream;
use hale_sim::{
    Action, ActionError, Fidelity, HostId, HostState, Lifecycle, ReplicaState, Scenario,
    Simulation, SpotSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

const ID: &str = "Cost-v0";

/// Features per service: the monitoring row and four of sizing.
pub const COST_SERVICE_FEATURES: usize = SERVICE_FEATURES + 4;
/// Features per host slot.
pub const COST_HOST_FEATURES: usize = 10;
/// Cluster-wide features, at the end.
pub const COST_GLOBAL_FEATURES: usize = 6;
/// Host-slot feature offsets.
pub mod host_feature {
    /// 1 when the slot holds a host.
    pub const PRESENT: usize = 0;
    /// 1 for spot capacity.
    pub const SPOT: usize = 1;
    /// Replicas placed / 32.
    pub const REPLICAS: usize = 4;
    /// 1 when its replicas fit on the other hosts by their requests.
    pub const FITS_ELSEWHERE: usize = 5;
    /// 1 under a spot reclaim notice.
    pub const NOTICE: usize = 6;
    /// 1 while drained or consolidated.
    pub const DISRUPTED: usize = 7;
    /// 1 when ready.
    pub const READY: usize = 8;
    /// Price / the on-demand type's price.
    pub const PRICE: usize = 9;
}

/// The memory request factors the optimiser may set by default.
pub(crate) const MEMORY_LEVELS: [f64; 4] = [0.25, 0.5, 0.75, 1.0];
/// The CPU request factors the optimiser may set by default.
pub(crate) const CPU_LEVELS: [f64; 3] = [0.5, 0.75, 1.0];

/// The cloud's cost side, as `Cost-v0` (and `CloudOps-v0`'s optimiser) sets it up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// A spot host's price as a share of its on-demand twin's.
    pub spot_price: f64,
    /// Notice before a spot host is reclaimed, seconds.
    pub spot_notice_s: f64,
    /// Mean lifetime of a spot host, seconds.
    pub spot_lifetime_s: f64,
    /// Share of a memory request a service leaves unused, where the scenario gives no
    /// working set.
    pub slack: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            spot_price: 0.35,
            spot_notice_s: 120.0,
            spot_lifetime_s: 3600.0,
            slack: 0.46,
        }
    }
}

impl CostModel {
    fn validate(&self, id: &str) -> Result<(), EnvError> {
        let bad = |field: &str, reason: String| EnvError::Config {
            env: id.into(),
            field: field.into(),
            reason,
        };
        if !(self.spot_price > 0.0 && self.spot_price <= 1.0) {
            return Err(bad(
                "spot_price",
                format!(
                    "a share of the on-demand price in (0, 1], got {}",
                    self.spot_price
                ),
            ));
        }
        cloud::non_negative(id, "spot_notice_s", self.spot_notice_s)?;
        cloud::positive(id, "spot_lifetime_s", self.spot_lifetime_s)?;
        if !(0.0..0.95).contains(&self.slack) {
            return Err(bad(
                "slack",
                format!("a share in [0, 0.95), got {}", self.slack),
            ));
        }
        Ok(())
    }

    /// `sc` with spot twins, spot reclaims and working sets: the host types to
    /// provision on demand and as spot, by index.
    pub(crate) fn apply(&self, id: &str, sc: Scenario) -> Result<(Scenario, [usize; 2]), EnvError> {
        self.validate(id)?;
        let bad = |reason: String| EnvError::Config {
            env: id.into(),
            field: "scenario".into(),
            reason,
        };
        let mut spec = sc.spec.clone();
        let Some(name) = spec.cluster.provision_type.clone() else {
            return Err(bad(format!(
                "{} provisions no hosts ([cluster] provision_type): the optimiser's mix needs one",
                spec.name
            )));
        };
        let on_demand = spec
            .host_types
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| bad(format!("no host type `{name}`")))?;
        if spec.host_types[on_demand].lifecycle != Lifecycle::OnDemand {
            return Err(bad(format!(
                "its provision type `{name}` is spot: the optimiser needs an on-demand one"
            )));
        }
        let mut twin = spec.host_types[on_demand].clone();
        twin.name = format!("{name}-spot");
        twin.price_per_hour *= self.spot_price;
        twin.lifecycle = Lifecycle::Spot;
        let spot = match spec.host_types.iter().position(|t| t.name == twin.name) {
            Some(i) => i,
            None => {
                spec.host_types.push(twin);
                spec.host_types.len() - 1
            }
        };
        spec.cluster.spot = Some(SpotSpec {
            mean_lifetime_s: self.spot_lifetime_s,
            notice_s: self.spot_notice_s,
            drain_on_notice: true,
        });
        for s in &mut spec.services {
            if s.working_set_mib.is_none() {
                s.working_set_mib = Some(s.memory_mib * (1.0 - self.slack));
            }
        }
        let sc = Scenario::from_spec(spec, &sc.origin).map_err(|e| bad(e.to_string()))?;
        Ok((sc, [on_demand, spot]))
    }
}

/// Where things are in `Cost-v0`'s observation and action.
#[derive(Clone, Debug, PartialEq)]
pub struct CostLayout {
    /// Services.
    pub services: usize,
    /// Host slots.
    pub host_slots: usize,
    /// Memory request factors (empty: no memory block in the action).
    pub memory_levels: Vec<f64>,
    /// CPU request factors (empty: no CPU block).
    pub cpu_levels: Vec<f64>,
    /// The spot price share (for what a replacement saves).
    pub spot_price: f64,
}

impl CostLayout {
    /// The layout of `Cost-v0` made with `config`, from the scenario's shape alone
    /// (its traces are not read): what a policy needs to read the observation.
    pub fn from_config(config: &Json) -> Result<CostLayout, EnvError> {
        let cfg = CostConfig::from_json(config)?;
        let sc = cloud::load_topology(ID, &cfg.scenario)?;
        Ok(CostLayout {
            services: sc.spec.services.len(),
            host_slots: cfg.host_slots.unwrap_or(sc.spec.cluster.max_hosts as usize),
            memory_levels: cfg.memory_levels,
            cpu_levels: cfg.cpu_levels,
            spot_price: cfg.model.spot_price,
        })
    }

    /// Offset of host slot `k`'s features.
    pub fn host(&self, k: usize) -> usize {
        self.services * COST_SERVICE_FEATURES + k * COST_HOST_FEATURES
    }

    /// Offset of the cluster-wide features.
    pub fn global(&self) -> usize {
        self.host(self.host_slots)
    }

    /// Length of the observation.
    pub fn obs_len(&self) -> usize {
        self.global() + COST_GLOBAL_FEATURES
    }

    /// The action's choices per dimension.
    pub fn nvec(&self) -> Vec<u64> {
        let mut v = vec![2, 1 + self.host_slots as u64];
        v.extend(std::iter::repeat_n(
            self.memory_levels.len() as u64,
            if self.memory_levels.is_empty() {
                0
            } else {
                self.services
            },
        ));
        v.extend(std::iter::repeat_n(
            self.cpu_levels.len() as u64,
            if self.cpu_levels.is_empty() {
                0
            } else {
                self.services
            },
        ));
        v
    }

    /// The action that keeps every request at the scenario's (level 1.0), provisions
    /// `spot` or on demand, and consolidates `consolidate` (a host slot).
    pub fn action(&self, spot: bool, consolidate: Option<usize>) -> Vec<i64> {
        let one = |levels: &[f64]| levels.iter().position(|&x| x == 1.0).unwrap_or(0) as i64;
        let mut a = vec![i64::from(spot), consolidate.map_or(0, |k| k as i64 + 1)];
        if !self.memory_levels.is_empty() {
            a.extend(std::iter::repeat_n(one(&self.memory_levels), self.services));
        }
        if !self.cpu_levels.is_empty() {
            a.extend(std::iter::repeat_n(one(&self.cpu_levels), self.services));
        }
        a
    }
}

/// What the optimiser did in a step.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct OptimiserActed {
    /// Changes applied (mix, consolidation, resizes).
    pub(crate) changes: u32,
    /// The host it set to consolidate.
    pub(crate) consolidated: Option<HostId>,
    /// Why the cloud refused part of it.
    pub(crate) refused: Option<String>,
}

/// The optimiser's view and hands on a simulation it does not own (`Cost-v0` and
/// `CloudOps-v0` drive it).
pub(crate) struct Optimiser {
    pub(crate) layout: CostLayout,
    types: [usize; 2],
    refs: Vec<f64>,
    max_replicas: f64,
    base_cpu: Vec<f64>,
    base_mem: Vec<f64>,
    base_bill_rate: f64,
    od_price: f64,
    /// Host ids behind the slots, as last observed.
    pub(crate) slots: Vec<HostId>,
    oom_before: u64,
    oom_step: u64,
}

impl Optimiser {
    /// `sc` made into `model`'s cloud, and the optimiser of it (its levels and host
    /// slots checked, errors naming env `id`'s fields).
    pub(crate) fn build(
        id: &str,
        sc: Scenario,
        model: &CostModel,
        host_slots: Option<usize>,
        memory_levels: &[f64],
        cpu_levels: &[f64],
    ) -> Result<(Scenario, Optimiser), EnvError> {
        check_levels(id, "memory_levels", memory_levels)?;
        check_levels(id, "cpu_levels", cpu_levels)?;
        let (sc, types) = model.apply(id, sc)?;
        let slots = host_slots.unwrap_or(sc.spec.cluster.max_hosts as usize);
        if slots == 0 {
            return Err(EnvError::Config {
                env: id.into(),
                field: "host_slots".into(),
                reason: "must be ≥ 1".into(),
            });
        }
        let optimiser = Optimiser::new(
            &sc,
            types,
            slots,
            memory_levels.to_vec(),
            cpu_levels.to_vec(),
            model.spot_price,
        );
        Ok((sc, optimiser))
    }

    fn new(
        sc: &Scenario,
        types: [usize; 2],
        host_slots: usize,
        memory_levels: Vec<f64>,
        cpu_levels: Vec<f64>,
        spot_price: f64,
    ) -> Optimiser {
        let spec = &sc.spec;
        let base_bill_rate = spec
            .hosts
            .iter()
            .map(|g| {
                let t = spec.host_types.iter().find(|t| t.name == g.host_type);
                f64::from(g.count) * t.map_or(0.0, |t| t.price_per_hour)
            })
            .sum::<f64>();
        Optimiser {
            layout: CostLayout {
                services: spec.services.len(),
                host_slots,
                memory_levels,
                cpu_levels,
                spot_price,
            },
            types,
            refs: cloud::latency_refs_ms(sc),
            max_replicas: 20.0,
            base_cpu: spec.services.iter().map(|s| s.cpu).collect(),
            base_mem: spec.services.iter().map(|s| s.memory_mib).collect(),
            base_bill_rate: base_bill_rate.max(1e-9),
            od_price: spec.host_types[types[0]].price_per_hour,
            slots: vec![],
            oom_before: 0,
            oom_step: 0,
        }
    }

    pub(crate) fn spaces(&self) -> (Space, Space) {
        let n = self.layout.obs_len();
        (
            Space::Box {
                low: vec![0.0; n],
                high: vec![f32::MAX; n],
                shape: vec![n],
            },
            Space::MultiDiscrete {
                nvec: self.layout.nvec(),
            },
        )
    }

    /// Starts an episode on `sim`.
    pub(crate) fn reset(&mut self, sim: &Simulation) {
        self.oom_before = sim.oom_kills();
        self.oom_step = 0;
        self.refresh_slots(sim);
    }

    fn refresh_slots(&mut self, sim: &Simulation) {
        self.slots.clear();
        self.slots.extend(
            sim.hosts()
                .iter()
                .enumerate()
                .filter(|(_, h)| h.state != HostState::Removed)
                .map(|(i, _)| i)
                .take(self.layout.host_slots),
        );
    }

    /// The step's info: the host mix now and what `acted` did.
    pub(crate) fn info(&self, sim: &Simulation, acted: OptimiserActed) -> CostInfo {
        let (mut spot, mut on_demand) = (0, 0);
        for h in sim.hosts().iter().filter(|h| h.state != HostState::Removed) {
            match h.lifecycle {
                Lifecycle::Spot => spot += 1,
                Lifecycle::OnDemand => on_demand += 1,
            }
        }
        CostInfo {
            spot_hosts: spot,
            on_demand_hosts: on_demand,
            consolidations: u32::from(acted.consolidated.is_some()),
            oom_kills: self.oom_step,
            cost_changes: acted.changes,
            cost_refused: acted.refused,
        }
    }

    /// After the cloud ran a step: what it counts over the step.
    pub(crate) fn after_step(&mut self, sim: &Simulation) {
        self.oom_step = sim.oom_kills() - self.oom_before;
        self.oom_before = sim.oom_kills();
        self.refresh_slots(sim);
    }

    /// Writes the observation of `sim` now into `out` (`layout.obs_len()` floats).
    pub(crate) fn write_obs(&self, sim: &Simulation, out: &mut [f32]) {
        out.fill(0.0);
        let l = &self.layout;
        let n = l.services;
        let mut row = vec![0.0; SERVICE_FEATURES];
        let snap = sim.observe();
        for s in 0..n {
            let o = s * COST_SERVICE_FEATURES;
            if let Some(m) = snap.map(|m| &m.services[s]) {
                row.copy_from_slice(
                    &crate::encoding::ServiceReading::from(m)
                        .encode(self.refs[s], self.max_replicas),
                );
                out[o..o + SERVICE_FEATURES].copy_from_slice(&row);
            }
            let st = &sim.services()[s];
            let (mut used, mut running, mut crashed, mut live) = (0.0, 0, 0, 0);
            for &r in &st.replicas {
                let rep = &sim.replicas()[r];
                if rep.state.is_live() {
                    live += 1;
                }
                if rep.state.is_running() {
                    used += sim.memory_used_mib(r) / rep.memory_mib;
                    running += 1;
                } else if rep.state == ReplicaState::Crashed {
                    crashed += 1;
                }
            }
            out[o + SERVICE_FEATURES] = (st.target_cpu() / self.base_cpu[s]) as f32;
            out[o + SERVICE_FEATURES + 1] = (st.target_memory() / self.base_mem[s]) as f32;
            if running > 0 {
                out[o + SERVICE_FEATURES + 2] = (used / f64::from(running)) as f32;
            }
            if live > 0 {
                out[o + SERVICE_FEATURES + 3] = crashed as f32 / live as f32;
            }
        }
        let (mut live, mut spot) = (0usize, 0usize);
        for h in sim.hosts().iter().filter(|h| h.state != HostState::Removed) {
            live += 1;
            spot += usize::from(h.lifecycle == Lifecycle::Spot);
        }
        for (k, &h) in self.slots.iter().enumerate() {
            use host_feature as f;
            let host = &sim.hosts()[h];
            let o = l.host(k);
            let x = &mut out[o..o + COST_HOST_FEATURES];
            x[f::PRESENT] = 1.0;
            x[f::SPOT] = f32::from(host.lifecycle == Lifecycle::Spot);
            x[2] = (host.cpu_allocated / host.cpu) as f32;
            x[3] = (host.memory_allocated / host.memory_mib) as f32;
            x[f::REPLICAS] = host.replicas as f32 / 32.0;
            x[f::FITS_ELSEWHERE] =
                f32::from(host.state == HostState::Ready && sim.fits_elsewhere(h));
            x[f::NOTICE] = f32::from(host.reclaim_at.is_some());
            x[f::DISRUPTED] = f32::from(host.draining || host.consolidating);
            x[f::READY] = f32::from(host.state == HostState::Ready);
            x[f::PRICE] = (host.price_per_hour / self.od_price) as f32;
        }
        let g = &mut out[l.global()..l.obs_len()];
        g[0] = f32::from(sim.provision_type() == Some(self.types[1]));
        g[1] = live as f32 / sim.scenario().spec.cluster.max_hosts.max(1) as f32;
        g[2] = if live > 0 {
            spot as f32 / live as f32
        } else {
            0.0
        };
        let pending = sim
            .replicas()
            .iter()
            .filter(|r| r.state == ReplicaState::Pending)
            .count();
        g[3] = pending as f32 / 10.0;
        let rate: f64 = sim
            .hosts()
            .iter()
            .filter(|h| h.billed_since.is_some())
            .map(|h| h.price_per_hour)
            .sum();
        g[4] = (rate / self.base_bill_rate) as f32;
        g[5] = self.oom_step as f32 / 10.0;
    }

    /// Applies action `a` (checked against the space by the caller) to `sim`.
    pub(crate) fn act(&mut self, sim: &mut Simulation, a: &[i64]) -> OptimiserActed {
        let mut acted = OptimiserActed::default();
        let refuse = |acted: &mut OptimiserActed, e: ActionError| {
            acted.refused.get_or_insert_with(|| e.to_string());
        };
        let want = self.types[a[0] as usize];
        if sim.provision_type() != Some(want) {
            match sim.apply(&Action::Provision { host_type: want }) {
                Ok(()) => acted.changes += 1,
                Err(e) => refuse(&mut acted, e),
            }
        }
        let n = self.layout.services;
        let mut rest = &a[2..];
        if !self.layout.memory_levels.is_empty() {
            for (s, &k) in rest[..n].iter().enumerate() {
                let mib = self.layout.memory_levels[k as usize] * self.base_mem[s];
                if (sim.services()[s].target_memory() - mib).abs() > 1e-9 {
                    match sim.apply(&Action::ResizeMemory {
                        service: s,
                        memory_mib: mib,
                    }) {
                        Ok(()) => acted.changes += 1,
                        Err(e) => refuse(&mut acted, e),
                    }
                }
            }
            rest = &rest[n..];
        }
        if !self.layout.cpu_levels.is_empty() {
            for (s, &k) in rest[..n].iter().enumerate() {
                let cpu = self.layout.cpu_levels[k as usize] * self.base_cpu[s];
                if (sim.services()[s].target_cpu() - cpu).abs() > 1e-12 {
                    match sim.apply(&Action::Resize { service: s, cpu }) {
                        Ok(()) => acted.changes += 1,
                        Err(e) => refuse(&mut acted, e),
                    }
                }
            }
        }
        if a[1] > 0 {
            match self.slots.get(a[1] as usize - 1) {
                Some(&host) => match sim.apply(&Action::Consolidate { host }) {
                    Ok(()) => {
                        acted.changes += 1;
                        acted.consolidated = Some(host);
                    }
                    Err(e) => refuse(&mut acted, e),
                },
                None => {
                    acted
                        .refused
                        .get_or_insert_with(|| format!("host slot {} is empty", a[1] - 1));
                }
            }
        }
        acted
    }
}

/// Configuration of `Cost-v0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// Builtin scenario name or scenario file (it must provision on-demand hosts).
    pub scenario: String,
    /// Override the scenario's fidelity (default: `fluid`, for speed).
    pub fidelity: Option<Fidelity>,
    /// Simulated seconds between decisions.
    pub control_interval_s: f64,
    /// Episode length in simulated seconds (default: the scenario's duration).
    pub episode_s: Option<f64>,
    /// The spot side of the cloud and the requests' slack.
    #[serde(flatten)]
    pub model: CostModel,
    /// Memory request factors the optimiser may set (must hold 1.0; empty: none).
    pub memory_levels: Vec<f64>,
    /// CPU request factors the optimiser may set (must hold 1.0; empty: none).
    pub cpu_levels: Vec<f64>,
    /// Host slots in the observation and the consolidation choice (default: the
    /// scenario's `max_hosts`).
    pub host_slots: Option<usize>,
    /// Price of one minute of one SLO in violation, in the hosts' price unit.
    pub slo_minute_price: f64,
    /// Keep the scenario's faults (false: a fault-free cloud; spot reclaims remain).
    pub faults: bool,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            scenario: "microservices-20".into(),
            fidelity: Some(Fidelity::Fluid),
            control_interval_s: 30.0,
            episode_s: None,
            model: CostModel::default(),
            memory_levels: MEMORY_LEVELS.to_vec(),
            cpu_levels: CPU_LEVELS.to_vec(),
            host_slots: None,
            slo_minute_price: 1.0,
            faults: true,
        }
    }
}

impl CostConfig {
    /// Reads a config (a JSON object, or null for the defaults); an unknown field is
    /// an error that names it.
    pub fn from_json(config: &Json) -> Result<CostConfig, EnvError> {
        cloud::parse_config(ID, config)
    }
}

/// `Cost-v0`'s part of the info.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CostInfo {
    /// Spot hosts alive at the end of the step.
    pub spot_hosts: u32,
    /// On-demand hosts alive at the end of the step.
    pub on_demand_hosts: u32,
    /// Hosts set to consolidate in the step.
    pub consolidations: u32,
    /// OOM kills in the step.
    pub oom_kills: u64,
    /// Changes the optimiser made (mix, consolidation, resizes).
    pub cost_changes: u32,
    /// Why the cloud refused part of the action, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_refused: Option<String>,
}

/// Checks a level list: empty, or positive factors holding 1.0.
pub(crate) fn check_levels(id: &str, field: &str, levels: &[f64]) -> Result<(), EnvError> {
    let bad = |reason: String| EnvError::Config {
        env: id.into(),
        field: field.into(),
        reason,
    };
    if let Some(x) = levels.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        return Err(bad(format!(
            "every level must be a positive factor, got {x}"
        )));
    }
    if !levels.is_empty() && !levels.contains(&1.0) {
        return Err(bad(format!(
            "the levels must include 1.0 (the scenario's request, where the baselines keep it), got {levels:?}"
        )));
    }
    Ok(())
}

/// The cost optimiser's env.
pub struct Cost {
    cfg: CostConfig,
    sc: Arc<Scenario>,
    sim: Option<Simulation>,
    seeds: Stream,
    episode_s: f64,
    optimiser: Optimiser,
    obs_space: Space,
    act_space: Space,
    faults: FaultReporter,
}

impl Cost {
    /// Makes the env from a JSON config (null for the defaults).
    pub fn new(config: &Json) -> Result<Cost, EnvError> {
        let cfg = CostConfig::from_json(config)?;
        cloud::period(ID, "control_interval_s", cfg.control_interval_s)?;
        if let Some(e) = cfg.episode_s {
            cloud::duration(ID, "episode_s", e)?;
        }
        cloud::non_negative(ID, "slo_minute_price", cfg.slo_minute_price)?;
        let (sc, unread) = cloud::load(ID, &cfg.scenario, cfg.fidelity)?;
        if let Some(trace) = unread {
            return Err(EnvError::Config {
                env: ID.into(),
                field: "scenario".into(),
                reason: format!("this build cannot read the trace {trace}"),
            });
        }
        let mut sc = cloud::with_autoscaler(ID, sc, true)?;
        if !cfg.faults {
            let mut spec = sc.spec.clone();
            spec.faults = Default::default();
            sc = Scenario::from_spec(spec, &sc.origin).map_err(|e| EnvError::Config {
                env: ID.into(),
                field: "faults".into(),
                reason: e.to_string(),
            })?;
        }
        let (sc, optimiser) = Optimiser::build(
            ID,
            sc,
            &cfg.model,
            cfg.host_slots,
            &cfg.memory_levels,
            &cfg.cpu_levels,
        )?;
        let (obs_space, act_space) = optimiser.spaces();
        Ok(Cost {
            episode_s: cfg.episode_s.unwrap_or(sc.spec.simulation.duration_s),
            sc: Arc::new(sc),
            sim: None,
            seeds: Stream::from_key(0xc057),
            optimiser,
            obs_space,
            act_space,
            faults: FaultReporter::default(),
            cfg,
        })
    }

    /// Where things are in the observation and action.
    pub fn layout(&self) -> &CostLayout {
        &self.optimiser.layout
    }

    /// The host behind slot `k` now.
    pub fn host_slot(&self, k: usize) -> Option<HostId> {
        self.optimiser.slots.get(k).copied()
    }

    /// The simulation of the current episode (after `reset`).
    pub fn simulation(&self) -> Option<&Simulation> {
        self.sim.as_ref()
    }

    fn observation(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.optimiser.layout.obs_len()];
        if let Some(sim) = &self.sim {
            self.optimiser.write_obs(sim, &mut out);
        }
        out
    }

    fn advance(&mut self, action: &Value) -> Result<(f64, bool, Info), EnvError> {
        check_action(ID, &self.act_space, None, action)?;
        let Value::MultiDiscrete(a) = action else {
            unreachable!("checked above")
        };
        let sim = self
            .sim
            .as_mut()
            .ok_or_else(|| EnvError::NeedsReset(ID.into()))?;
        if sim.now().as_secs_f64() >= self.episode_s - 1e-9 {
            return Err(EnvError::EpisodeOver(ID.into()));
        }
        let acted = self.optimiser.act(sim, a);
        cloud::heal_like_kubelet(sim);
        let before = Before::read(sim);
        let dt = self
            .cfg
            .control_interval_s
            .min(self.episode_s - sim.now().as_secs_f64())
            .max(0.0);
        sim.run_for(cloud::secs(dt));
        let truncated = sim.now().as_secs_f64() >= self.episode_s - 1e-9;
        self.optimiser.after_step(sim);
        let cloud = cloud::common_info(sim, &before, &mut self.faults);
        let reward = -(cloud.cost + self.cfg.slo_minute_price * cloud.slo_violation_s / 60.0);
        let info = Info {
            cloud: Some(cloud),
            cost: Some(self.optimiser.info(sim, acted)),
            ..Info::default()
        };
        Ok((reward, truncated, info))
    }
}

impl Env for Cost {
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
        let sim_seed = cloud::episode_seed(ID, &mut self.seeds, 0xc057, seed, options)?;
        let sim = cloud::new_sim(&self.sc, sim_seed);
        self.faults.clear();
        self.optimiser.reset(&sim);
        self.sim = Some(sim);
        Ok((Value::Box(self.observation()), Info::default()))
    }

    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let (reward, truncated, info) = self.advance(action)?;
        Ok(Step {
            obs: Value::Box(self.observation()),
            reward,
            terminated: false,
            truncated,
            info,
        })
    }

    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let (reward, truncated, info) = self.advance(action)?;
        match (obs, self.sim.as_ref()) {
            (ObsSlot::Flat(row), Some(sim)) if row.len() == self.optimiser.layout.obs_len() => {
                self.optimiser.write_obs(sim, row)
            }
            (slot, _) => write_obs(ID, Value::Box(self.observation()), slot)?,
        }
        Ok(StepInto {
            reward,
            terminated: false,
            truncated,
            info,
        })
    }
}
