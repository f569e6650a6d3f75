//! `CloudOps-v0`: several operators on one simulated cloud, with PettingZoo's
//! parallel semantics ([`crate::ParallelEnv`]), and a ledger of how they undo each
//! other.
//!
//! Agents (any subset, `agents = [...]`; all by default), each with the observation
//! and actions of its single-agent env:
//!
//! - `scaler`: Scaling-v0's — per service the monitoring row ([`crate::encoding::
//!   SERVICE_FEATURES`] floats) and a change of −2…+2 replicas (`MultiDiscrete`), or
//!   with `scaler_action = "target"` a replica count.
//! - `healer`: Healing-v0's — replica, host and service slots, and a remedy
//!   (restart, reschedule, roll back, drain) or nothing (`Discrete`, masked).
//!   Without a healer the kubelets restart crashed and hung replicas at every step.
//! - `defender`: Security-v0 cloud mode's — alerts, anomaly scores and its own
//!   analyses per replica slot, and analyse, isolate, restore, rotate, decoy, block or
//!   cut (`Discrete`, masked), against the scripted `attacker` (`b_line`, the
//!   default, `meander`, or `none`).
//! - `optimiser`: Cost-v0's — the spot/on-demand mix of new capacity, a host to
//!   consolidate, and each service's memory and CPU request (`MultiDiscrete`). With
//!   an optimiser the cloud is Cost-v0's ([`crate::CostModel`]: spot twins of the
//!   host types, spot reclaims, working sets under the requests); without one it is
//!   the scenario's.
//!
//! With `observation = "graph"`, the scaler, healer and defender observe the resource
//! graph their single-agent env gives with that setting (for a GNN per agent); the
//! optimiser keeps its matrix, and `state()` is the matrix views either way.
//!
//! Slots are each agent's own: the defender's replica slots are fixed at each
//! service's scenario count (slot k is the i-th live replica of its service), so a
//! replica the scaler adds beyond that count is invisible to the defender, and a slot
//! whose replica was scaled away reads "not serving" with its actions masked; the
//! healer sees the first `healer_replicas` replicas by service.
//!
//! The cluster autoscaler manages hosts. All agents act at the same instant, then the
//! cloud runs `step_s`. Their actions apply in a fixed order, which is the
//! coordinator's priority: defender, healer, scaler, optimiser (security first; then
//! repair; the scaler's scale-down picks its victims among what the others left; cost
//! last, on the cluster the others asked for).
//!
//! Reward: the team's, in terms each agent owns, reported in every agent's `info`:
//!
//! - `team_cost` (the optimiser's, or without one the scaler's): −`cost_weight` ×
//!   the step's host bill over the initial cluster's bill for as long;
//! - `team_slo` (scaler's): −`slo_weight` × the step's share of SLO violation, summed
//!   over SLOs;
//! - `team_unserved` (healer's): −`unserved_weight` × the share of requests failed or
//!   timed out;
//! - `team_security` (defender's): −`security_weight` × (0.1 per replica-step with a
//!   user shell + 1 with root + 10 while the data tier suffers impact), CAGE 2's shape;
//! - `team_actions`: each agent's action cost — the healer's remedies
//!   (`remedy_penalty` × 0.01 restart, 0.02 reschedule, 0.05 rollback or drain), the
//!   defender's restarts (−1 per replica, a restore or each replica of a rotation).
//!
//! With `reward = "team"` (the default) every agent gets the sum; with `"own"` each
//! gets its own terms (`agent_reward` in info).
//!
//! The **conflict ledger** (every agent's info has the step's counts; `conflicts_caused`
//! is how many the agent itself caused). Kinds:
//!
//! - `flip_flops`: a service's desired replica count changed in the direction
//!   opposite to its last change within `conflict_window_s` (the HPA's flapping);
//! - `double_restarts`: a replica restarted (a healer's restart or reschedule, a
//!   defender's restore) within the window of another agent restarting it;
//! - `removed_targets`: a replica another agent acted on in the step that the
//!   scaler's scale-down then removed;
//! - `isolations_undone`: a replica the defender isolated that another agent
//!   restarted, rescheduled, drained or scaled away (its isolation ends with it);
//! - `consolidation_fights`: replicas the scaler added within the window that sit on
//!   the host the optimiser then consolidates (Karpenter evicting what the HPA just
//!   asked for);
//! - `size_fights`: a service's CPU request and replica count moved in opposite
//!   directions within the window (the optimiser cut the request and the scaler
//!   added replicas, or the reverse in either order) — the HPA and the VPA acting
//!   on one metric, a limitation the VPA documents;
//! - `evictions`: live replicas deleted to be recreated elsewhere (reschedules,
//!   drains, consolidations, the cluster autoscaler's drains, spot notices) — not a
//!   conflict by itself, but the disruption the anchors count.

use crate::cloud::{self, Before, FaultReporter};
use crate::cost::{CPU_LEVELS, CostModel, MEMORY_LEVELS, Optimiser};
use crate::encoding::{HealingObservation, SERVICE_FEATURES, ScalingActions};
use crate::env::{EnvError, HealingInfo, Info, ScalingInfo, check_action};
use crate::healing::{Healer, disruption_share};
use crate::intrusion::Defender;
use crate::multi::{AgentMap, MultiStep, ParallelEnv, check_keys, unknown_agent};
use crate::space::{GraphValue, Space, Value};
use hale_sim::rng::Stream;
use hale_sim::{
    Action, ActionError, AttackerKind, Defence, Fidelity, ReplicaId, Scenario, SimTime, Simulation,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

const ID: &str = "CloudOps-v0";

/// The scaler's id.
pub const SCALER: &str = "scaler";
/// The healer's id.
pub const HEALER: &str = "healer";
/// The defender's id.
pub const DEFENDER: &str = "defender";
/// The cost optimiser's id.
pub const OPTIMISER: &str = "optimiser";
/// Every agent `CloudOps-v0` knows, in its order.
pub const AGENTS: [&str; 4] = [SCALER, HEALER, DEFENDER, OPTIMISER];

/// The scripted attacker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpsAttacker {
    /// Straight to the data tier.
    #[default]
    BLine,
    /// Zone by zone.
    Meander,
    /// No attacker.
    None,
}

/// What each agent is paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpsReward {
    /// Every agent gets the team's reward (a cooperative game).
    #[default]
    Team,
    /// Each agent gets its own terms.
    Own,
}

/// Configuration of `CloudOps-v0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudOpsConfig {
    /// Builtin scenario name or scenario file (it needs a `[security]` section for a
    /// defender or an attacker).
    pub scenario: String,
    /// Override the scenario's fidelity (default: `fluid`, for speed).
    pub fidelity: Option<Fidelity>,
    /// The agents, among `scaler`, `healer`, `defender`, `optimiser` (default: the
    /// first three, as the optimiser brings Cost-v0's cloud with it).
    pub agents: Vec<String>,
    /// The scripted attacker: `b_line`, `meander` or `none`.
    pub attacker: OpsAttacker,
    /// Simulated seconds per step.
    pub step_s: f64,
    /// Steps per episode.
    pub max_steps: u32,
    /// The scaler's actions: `delta` (−2…+2 replicas per service, the default) or
    /// `target` (a count in `min_replicas..=max_replicas`, what the HPA sets).
    pub scaler_action: crate::ScalingAction,
    /// The scaler's fewest replicas per service.
    pub min_replicas: u32,
    /// The scaler's most replicas per service.
    pub max_replicas: u32,
    /// The healer's replica slots.
    pub healer_replicas: usize,
    /// The healer's host slots.
    pub healer_hosts: usize,
    /// Keep the scenario's faults.
    pub faults: bool,
    /// `team` (every agent gets the team reward) or `own`.
    pub reward: OpsReward,
    /// Weight of the relative host bill.
    pub cost_weight: f64,
    /// Weight of the SLO-violation share.
    pub slo_weight: f64,
    /// Weight of the unserved share.
    pub unserved_weight: f64,
    /// Weight of the CAGE-2-shaped security penalty.
    pub security_weight: f64,
    /// Multiplies the healer's remedy costs.
    pub remedy_penalty: f64,
    /// How far back the ledger looks for an action another undoes, seconds.
    pub conflict_window_s: f64,
    /// With an optimiser: the spot side of the cloud and the requests' slack
    /// (Cost-v0's; applied only when the optimiser plays).
    #[serde(flatten)]
    pub cost: CostModel,
    /// The optimiser's memory request factors (Cost-v0's `memory_levels`).
    pub memory_levels: Vec<f64>,
    /// The optimiser's CPU request factors (Cost-v0's `cpu_levels`).
    pub cpu_levels: Vec<f64>,
    /// The optimiser's host slots (default: the scenario's `max_hosts`).
    pub host_slots: Option<usize>,
    /// `matrix` (flat features, the default) or `graph`: the scaler, healer and
    /// defender then observe the resource graph their mirror env gives with
    /// `observation = "graph"` (Scaling-v0's, Healing-v0's, Security-v0's cloud one),
    /// for a GNN per agent. The optimiser observes its matrix either way (Cost-v0 has
    /// no graph view), and `state()` is the matrix views whichever is set.
    pub observation: crate::encoding::ObservationKind,
}

impl Default for CloudOpsConfig {
    fn default() -> Self {
        CloudOpsConfig {
            scenario: "microservices-20".into(),
            fidelity: Some(Fidelity::Fluid),
            // The optimiser changes the cloud (spot, working sets): it is asked for.
            agents: AGENTS[..3].iter().map(|a| a.to_string()).collect(),
            attacker: OpsAttacker::BLine,
            step_s: 10.0,
            max_steps: 360,
            scaler_action: crate::ScalingAction::Delta,
            observation: crate::encoding::ObservationKind::Matrix,
            min_replicas: 1,
            max_replicas: 20,
            healer_replicas: 64,
            healer_hosts: 32,
            faults: true,
            reward: OpsReward::Team,
            cost_weight: 1.0,
            slo_weight: 1.0,
            unserved_weight: 10.0,
            security_weight: 1.0,
            remedy_penalty: 1.0,
            conflict_window_s: 300.0,
            cost: CostModel::default(),
            memory_levels: MEMORY_LEVELS.to_vec(),
            cpu_levels: CPU_LEVELS.to_vec(),
            host_slots: None,
        }
    }
}

impl CloudOpsConfig {
    /// Reads a config (a JSON object, or null for the defaults); an unknown field is
    /// an error that names it.
    pub fn from_json(config: &Json) -> Result<CloudOpsConfig, EnvError> {
        cloud::parse_config(ID, config)
    }
}

/// A step's conflicts, by kind (see the module's documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Desired counts reversed within the window.
    pub flip_flops: u32,
    /// Replicas restarted by one agent within the window of another's restart.
    pub double_restarts: u32,
    /// Replicas acted on, then scaled away, in one step.
    pub removed_targets: u32,
    /// Isolated replicas another agent restarted, moved or removed.
    pub isolations_undone: u32,
    /// Live replicas deleted to be recreated elsewhere.
    pub evictions: u32,
    /// Replicas the scaler added within the window on a host the optimiser then
    /// consolidated.
    pub consolidation_fights: u32,
    /// A service's size moved against its count within the window: CPU request cut
    /// by the optimiser, then replicas added by the scaler (or replicas removed, then
    /// the request raised) — the HPA and the VPA on one metric.
    pub size_fights: u32,
}

impl Ledger {
    /// Conflicts in all (evictions are disruption, not a conflict, and not counted).
    pub fn conflicts(&self) -> u32 {
        self.flip_flops
            + self.double_restarts
            + self.removed_targets
            + self.isolations_undone
            + self.consolidation_fights
            + self.size_fights
    }
}

/// `CloudOps-v0`'s part of an agent's info.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CloudOpsInfo {
    /// The agent's own terms of the reward.
    pub agent_reward: f64,
    /// The team's reward (the sum of the terms below).
    pub team_reward: f64,
    /// The host-bill term.
    pub team_cost: f64,
    /// The SLO term.
    pub team_slo: f64,
    /// The unserved term.
    pub team_unserved: f64,
    /// The security term.
    pub team_security: f64,
    /// The action costs.
    pub team_actions: f64,
    /// Whether the agent did something this step.
    pub agent_acted: bool,
    /// Why the cloud refused the agent's action, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_refused: Option<String>,
    /// Conflicts of the step the agent caused (it was the one undoing).
    pub conflicts_caused: u32,
    /// The step's conflict ledger, for the whole team.
    #[serde(flatten)]
    pub ledger: Ledger,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Scaler = 0,
    Healer = 1,
    Defender = 2,
    Optimiser = 3,
}

impl Role {
    fn of(name: &str) -> Option<Role> {
        match name {
            SCALER => Some(Role::Scaler),
            HEALER => Some(Role::Healer),
            DEFENDER => Some(Role::Defender),
            OPTIMISER => Some(Role::Optimiser),
            _ => None,
        }
    }
}

/// What the ledger remembers between steps.
#[derive(Default)]
struct Memory {
    /// Per service, the last change of its desired count: (time, +1 or −1).
    last_scale: Vec<Option<(SimTime, i8)>>,
    /// Per replica id, its last restart by an agent: (time, who).
    last_restart: Vec<Option<(SimTime, Role)>>,
    /// Per replica id, when the scaler's scale-up created it.
    scaled_up: Vec<Option<SimTime>>,
    /// Per service, the optimiser's last CPU request change: (time, +1 or −1).
    last_size: Vec<Option<(SimTime, i8)>>,
}

impl Memory {
    fn restart(&mut self, r: ReplicaId, at: SimTime, by: Role) -> Option<(SimTime, Role)> {
        if self.last_restart.len() <= r {
            self.last_restart.resize(r + 1, None);
        }
        self.last_restart[r].replace((at, by))
    }
}

/// The multi-agent operations env.
pub struct CloudOps {
    cfg: CloudOpsConfig,
    sc: Arc<Scenario>,
    sim: Option<Simulation>,
    seeds: Stream,
    possible: Vec<String>,
    alive: Vec<String>,
    roles: Vec<Role>,
    obs_spaces: Vec<Space>,
    act_spaces: Vec<Space>,
    state_space: Space,
    refs: Vec<f64>,
    scaling: ScalingActions,
    healer: Healer,
    defender: Option<Defender>,
    defender_mask: Vec<bool>,
    optimiser: Option<Optimiser>,
    faults: FaultReporter,
    steps: u32,
    base_bill_rate: f64,
    memory: Memory,
    /// The healer's last flat observation (its slots and mask match it).
    healer_obs: Vec<f32>,
    /// The scaler's and the healer's graph encodings (Scaling-v0's and Healing-v0's).
    graphs: (
        crate::encoding::GraphEncoding,
        crate::encoding::GraphEncoding,
    ),
}

impl CloudOps {
    /// Makes the env from a JSON config (null for the defaults).
    pub fn new(config: &Json) -> Result<CloudOps, EnvError> {
        let cfg: CloudOpsConfig = cloud::parse_config(ID, config)?;
        let bad = |field: &str, reason: String| EnvError::Config {
            env: ID.into(),
            field: field.into(),
            reason,
        };
        let mut roles = Vec::new();
        for a in &cfg.agents {
            let role = Role::of(a).ok_or_else(|| {
                bad(
                    "agents",
                    format!("no agent `{a}` (CloudOps-v0 has {})", AGENTS.join(", ")),
                )
            })?;
            if roles.contains(&role) {
                return Err(bad("agents", format!("`{a}` is listed twice")));
            }
            roles.push(role);
        }
        if roles.is_empty() {
            return Err(bad("agents", "at least one agent".into()));
        }
        // The canonical order, whatever the config's.
        roles.sort_by_key(|r| AGENTS.iter().position(|a| Role::of(a) == Some(*r)));
        cloud::period(ID, "step_s", cfg.step_s)?;
        if cfg.max_steps == 0 {
            return Err(bad("max_steps", "must be ≥ 1".into()));
        }
        cloud::duration(ID, "max_steps", cfg.step_s * f64::from(cfg.max_steps))?;
        if cfg.min_replicas > cfg.max_replicas || cfg.max_replicas == 0 {
            return Err(bad(
                "max_replicas",
                format!(
                    "need 1 ≤ max_replicas and min_replicas ≤ max_replicas, got {}..={}",
                    cfg.min_replicas, cfg.max_replicas
                ),
            ));
        }
        if cfg.healer_replicas == 0 || cfg.healer_hosts == 0 {
            return Err(bad("healer_replicas", "slots must be ≥ 1".into()));
        }
        for (field, v) in [
            ("cost_weight", cfg.cost_weight),
            ("slo_weight", cfg.slo_weight),
            ("unserved_weight", cfg.unserved_weight),
            ("security_weight", cfg.security_weight),
            ("remedy_penalty", cfg.remedy_penalty),
            ("conflict_window_s", cfg.conflict_window_s),
        ] {
            cloud::non_negative(ID, field, v)?;
        }
        let (sc, unread) = cloud::load(ID, &cfg.scenario, cfg.fidelity)?;
        if let Some(trace) = unread {
            return Err(bad(
                "scenario",
                format!("this build cannot read the trace {trace}"),
            ));
        }
        let mut sc = cloud::with_autoscaler(ID, sc, true)?;
        if !cfg.faults {
            let mut spec = sc.spec.clone();
            spec.faults = Default::default();
            sc = Scenario::from_spec(spec, &sc.origin).map_err(|e| bad("faults", e.to_string()))?;
        }
        let optimiser = if roles.contains(&Role::Optimiser) {
            let (with_spot, o) = Optimiser::build(
                ID,
                sc,
                &cfg.cost,
                cfg.host_slots,
                &cfg.memory_levels,
                &cfg.cpu_levels,
            )?;
            sc = with_spot;
            Some(o)
        } else {
            None
        };
        let sc = Arc::new(sc);
        let wants_security = roles.contains(&Role::Defender) || cfg.attacker != OpsAttacker::None;
        if wants_security && sc.security.is_none() {
            return Err(bad(
                if roles.contains(&Role::Defender) {
                    "agents"
                } else {
                    "attacker"
                },
                format!(
                    "{} has no [security] section: a defender or an attacker needs one \
                     (use microservices-20, or set attacker = \"none\" without a defender)",
                    cfg.scenario
                ),
            ));
        }
        let defender = if roles.contains(&Role::Defender) {
            Some(Defender::new(
                ID,
                sc.clone(),
                cfg.step_s,
                cfg.max_steps,
                0.0,
                1.0,
            )?)
        } else {
            None
        };
        let n = sc.spec.services.len();
        let refs = cloud::latency_refs_ms(&sc);
        let healing = HealingObservation {
            services: sc.spec.services.iter().map(|s| s.name.clone()).collect(),
            latency_refs_ms: refs.clone(),
            max_replicas: cfg.healer_replicas,
            max_hosts: cfg.healer_hosts,
        };
        let (mut obs_spaces, mut act_spaces) = (vec![], vec![]);
        for role in &roles {
            let (o, a) = match role {
                Role::Scaler => (
                    Space::Box {
                        low: vec![0.0; n * SERVICE_FEATURES],
                        high: vec![f32::MAX; n * SERVICE_FEATURES],
                        shape: vec![n, SERVICE_FEATURES],
                    },
                    Space::MultiDiscrete {
                        nvec: vec![
                            match cfg.scaler_action {
                                crate::ScalingAction::Delta => 5,
                                crate::ScalingAction::Target =>
                                    u64::from(cfg.max_replicas - cfg.min_replicas + 1),
                            };
                            n
                        ],
                    },
                ),
                Role::Healer => (
                    Space::Box {
                        low: vec![0.0; healing.dim()],
                        high: vec![f32::MAX; healing.dim()],
                        shape: vec![healing.dim()],
                    },
                    Space::Discrete {
                        n: healing.actions() as u64,
                    },
                ),
                Role::Defender => defender.as_ref().expect("made above").spaces(),
                Role::Optimiser => optimiser.as_ref().expect("made above").spaces(),
            };
            obs_spaces.push(o);
            act_spaces.push(a);
        }
        let (mut low, mut high) = (vec![], vec![]);
        for o in &obs_spaces {
            if let Space::Box {
                low: l, high: h, ..
            } = o
            {
                low.extend_from_slice(l);
                high.extend_from_slice(h);
            }
        }
        low.push(0.0);
        high.push(1.0);
        let state_space = Space::Box {
            shape: vec![low.len()],
            low,
            high,
        };
        // Graph views replace the flat ones after the state is laid out: the state
        // stays the matrix views.
        if cfg.observation == crate::encoding::ObservationKind::Graph {
            for (role, space) in roles.iter().zip(&mut obs_spaces) {
                match role {
                    Role::Scaler | Role::Healer => {
                        *space = Space::Graph {
                            node_features: crate::encoding::NODE_FEATURES,
                            edge_features: crate::encoding::EDGE_FEATURES,
                        }
                    }
                    Role::Defender => {
                        *space = Space::Graph {
                            node_features: crate::intrusion::GRAPH_NODE_FEATURES,
                            edge_features: crate::intrusion::GRAPH_EDGE_FEATURES,
                        }
                    }
                    Role::Optimiser => {}
                }
            }
        }
        let graphs = (
            cloud::graph_encoding(&sc, &refs, f64::from(cfg.max_replicas)),
            cloud::graph_encoding(&sc, &refs, cfg.healer_replicas as f64),
        );
        let possible: Vec<String> = roles
            .iter()
            .map(|r| {
                match r {
                    Role::Scaler => SCALER,
                    Role::Healer => HEALER,
                    Role::Defender => DEFENDER,
                    Role::Optimiser => OPTIMISER,
                }
                .to_string()
            })
            .collect();
        Ok(CloudOps {
            scaling: ScalingActions {
                delta: cfg.scaler_action == crate::ScalingAction::Delta,
                min_replicas: cfg.min_replicas,
                max_replicas: cfg.max_replicas,
                cpu_levels: vec![],
            },
            healer: Healer::new(healing),
            defender_mask: vec![],
            defender,
            optimiser,
            sc,
            sim: None,
            seeds: Stream::from_key(0xc10d),
            alive: vec![],
            possible,
            roles,
            obs_spaces,
            act_spaces,
            state_space,
            refs,
            faults: FaultReporter::default(),
            steps: 0,
            base_bill_rate: 0.0,
            memory: Memory::default(),
            healer_obs: vec![],
            graphs,
            cfg,
        })
    }

    /// The config the env was made with.
    pub fn config(&self) -> &CloudOpsConfig {
        &self.cfg
    }

    /// The simulation of the current episode (after `reset`): for baselines and
    /// tests that need the truth.
    pub fn simulation(&self) -> Option<&Simulation> {
        self.sim.as_ref()
    }

    /// The replica the healer's slot `k` refers to now.
    pub fn healer_slot(&self, k: usize) -> Option<ReplicaId> {
        self.healer.replica_slots.get(k).copied()
    }

    /// The defender's layout of actions and observations (with a defender).
    pub fn defender_layout(&self) -> Option<crate::intrusion::Layout> {
        self.defender.as_ref().map(Defender::layout)
    }

    /// The optimiser's layout of observations and actions (with an optimiser).
    pub fn optimiser_layout(&self) -> Option<&crate::CostLayout> {
        self.optimiser.as_ref().map(|o| &o.layout)
    }

    /// The host the optimiser's slot `k` refers to now.
    pub fn optimiser_slot(&self, k: usize) -> Option<hale_sim::HostId> {
        self.optimiser.as_ref()?.slots.get(k).copied()
    }

    /// The replica the defender's slot `k` refers to now.
    pub fn defender_slot(&self, k: usize) -> Option<ReplicaId> {
        self.defender.as_ref()?.replica(self.sim.as_ref()?, k)
    }

    fn index(&self, agent: &str) -> Result<usize, EnvError> {
        self.possible
            .iter()
            .position(|a| a == agent)
            .ok_or_else(|| unknown_agent(ID, agent, &self.possible))
    }

    /// Reads every agent's view of the cloud now (slots and masks too).
    fn refresh(&mut self) {
        let Some(sim) = self.sim.as_ref() else { return };
        if self.roles.contains(&Role::Healer) {
            self.healer_obs = self.healer.observe(sim);
        }
        if let Some(d) = &self.defender {
            d.write_mask(Some(sim), &mut self.defender_mask);
        }
    }

    fn write_agent_obs(&self, role: Role, out: &mut Vec<f32>) {
        let Some(sim) = self.sim.as_ref() else { return };
        match role {
            Role::Scaler => {
                let start = out.len();
                out.resize(start + self.refs.len() * SERVICE_FEATURES, 0.0);
                cloud::service_features(
                    sim.observe(),
                    &self.refs,
                    f64::from(self.cfg.max_replicas),
                    &mut out[start..],
                );
            }
            Role::Healer => out.extend_from_slice(&self.healer_obs),
            Role::Defender => {
                let d = self.defender.as_ref().expect("made with the role");
                let start = out.len();
                out.resize(start + d.layout().obs_len(), 0.0);
                d.write_obs(Some(sim), &mut out[start..]);
            }
            Role::Optimiser => {
                let o = self.optimiser.as_ref().expect("made with the role");
                let start = out.len();
                out.resize(start + o.layout.obs_len(), 0.0);
                o.write_obs(sim, &mut out[start..]);
            }
        }
    }

    fn observations(&self) -> AgentMap<Value> {
        self.alive
            .iter()
            .map(|a| {
                let role = Role::of(a).expect("an agent of ours");
                if let Some(g) = self.agent_graph(role) {
                    return (a.clone(), Value::Graph(g));
                }
                let mut v = vec![];
                self.write_agent_obs(role, &mut v);
                (a.clone(), Value::Box(v))
            })
            .collect()
    }

    /// `role`'s graph observation, when it observes the graph (`observation =
    /// "graph"`, not the optimiser): its mirror env's.
    fn agent_graph(&self, role: Role) -> Option<GraphValue> {
        if self.cfg.observation != crate::encoding::ObservationKind::Graph {
            return None;
        }
        let sim = self.sim.as_ref()?;
        match role {
            Role::Scaler => Some(cloud::graph_observation(sim, &self.graphs.0)),
            Role::Healer => Some(cloud::graph_observation(sim, &self.graphs.1)),
            Role::Defender => {
                let mut g = GraphValue::default();
                self.defender.as_ref()?.write_graph(Some(sim), &mut g);
                Some(g)
            }
            Role::Optimiser => None,
        }
    }

    fn role_action<'a>(&self, actions: &'a AgentMap<Value>, role: Role) -> Option<&'a Value> {
        self.roles
            .iter()
            .position(|r| *r == role)
            .and_then(|i| actions.get(&self.possible[i]))
    }
}

/// What one step did, agent by agent, for the ledger and the infos.
#[derive(Default)]
struct StepLog {
    ledger: Ledger,
    /// Per role (scaler, healer, defender, optimiser): conflicts in which its action
    /// came second (it undid another's, or was refused because of one).
    caused: [u32; 4],
    acted: [bool; 4],
    healer_refused: Option<String>,
    optimiser: Option<crate::cost::OptimiserActed>,
    /// Replicas an agent restarted, moved or isolated in this step, with who.
    touched: Vec<(ReplicaId, Role)>,
    healer_cost: f64,
    healer_kind: &'static str,
    scaler_changes: u32,
}

impl StepLog {
    fn conflict(&mut self, by: Role, kind: fn(&mut Ledger) -> &mut u32) {
        *kind(&mut self.ledger) += 1;
        self.caused[by as usize] += 1;
    }
}

impl CloudOps {
    /// Records a restart of `r` by `by`; a double restart when another agent
    /// restarted it within the window.
    fn note_restart(&mut self, log: &mut StepLog, r: ReplicaId, by: Role, now: SimTime) {
        let window = SimTime::from_secs_f64(self.cfg.conflict_window_s);
        if let Some((t, who)) = self.memory.restart(r, now, by)
            && who != by
            && now.saturating_sub(t) <= window
        {
            log.conflict(by, |l| &mut l.double_restarts);
        }
        log.touched.push((r, by));
    }

    /// Plays one step on `sim` (taken out of `self` meanwhile).
    fn play(
        &mut self,
        sim: &mut Simulation,
        actions: &AgentMap<Value>,
    ) -> Result<MultiStep, EnvError> {
        let mut log = StepLog {
            healer_kind: "no-op",
            ..StepLog::default()
        };
        let before = Before::read(sim);
        let security = sim.security().map(|s| *s.totals());
        let now = sim.now();

        // 1. The defender.
        let mut defended = None;
        if let Some(Value::Discrete(a)) = self.role_action(actions, Role::Defender) {
            let d = self.defender.as_ref().expect("made with the role");
            let acted = d.act(sim, *a as usize)?;
            log.acted[Role::Defender as usize] = acted.acted;
            match acted.defence {
                Some(Defence::Restore { replica }) => {
                    self.note_restart(&mut log, replica, Role::Defender, now)
                }
                Some(Defence::Isolate { replica } | Defence::Analyse { replica }) => {
                    log.touched.push((replica, Role::Defender))
                }
                _ => {}
            }
            defended = Some(acted);
        }

        // 2. The healer.
        if let Some(Value::Discrete(a)) = self.role_action(actions, Role::Healer) {
            let (remedy, fixed, kind) = self.healer.remedy(*a as usize);
            log.healer_kind = kind;
            if let Some(act) = remedy {
                let targets: Vec<ReplicaId> = match act {
                    Action::Restart { replica } | Action::Reschedule { replica } => {
                        vec![replica]
                    }
                    Action::Drain { host } => (0..sim.replicas().len())
                        .filter(|&r| {
                            sim.replicas()[r].host == Some(host)
                                && sim.replicas()[r].state.is_live()
                        })
                        .collect(),
                    _ => vec![],
                };
                let isolated = targets
                    .iter()
                    .filter(|&&r| sim.replicas()[r].isolated)
                    .count();
                let disruption = disruption_share(sim, &act, self.cfg.step_s);
                match sim.apply(&act) {
                    Ok(()) => {
                        log.acted[Role::Healer as usize] = true;
                        log.healer_cost = self.cfg.remedy_penalty * fixed + disruption;
                        for _ in 0..isolated {
                            log.conflict(Role::Healer, |l| &mut l.isolations_undone);
                        }
                        for r in targets {
                            if matches!(act, Action::Drain { .. }) {
                                log.touched.push((r, Role::Healer));
                            } else {
                                self.note_restart(&mut log, r, Role::Healer, now);
                            }
                        }
                    }
                    // Rolling back a good deploy: refused, the action wasted.
                    Err(e @ ActionError::NothingToRollBack(_)) => {
                        log.healer_cost = self.cfg.remedy_penalty * fixed;
                        log.healer_refused = Some(e.to_string());
                    }
                    // The mask allowed it, and the defender's actions leave every
                    // replica and host the healer may target as it was: a refusal is
                    // a mask bug, reported as such.
                    Err(e) => {
                        return Err(EnvError::MaskedAction {
                            env: ID.into(),
                            action: format!("{HEALER}: {a}"),
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }

        // 3. The scaler.
        if let Some(Value::MultiDiscrete(a)) = self.role_action(actions, Role::Scaler) {
            let window = SimTime::from_secs_f64(self.cfg.conflict_window_s);
            for (s, &k) in a.iter().enumerate() {
                let current = sim.services()[s].desired;
                let target = self.scaling.replicas(k, current);
                if target == current {
                    continue;
                }
                let dir: i8 = if target > current { 1 } else { -1 };
                if let Some((t, d)) = self.memory.last_scale[s]
                    && d != dir
                    && now.saturating_sub(t) <= window
                {
                    log.conflict(Role::Scaler, |l| &mut l.flip_flops);
                }
                self.memory.last_scale[s] = Some((now, dir));
                if let Some((t, d)) = self.memory.last_size[s]
                    && d == dir
                    && now.saturating_sub(t) <= window
                {
                    // Opposite capacity moves: fewer cores each, more replicas (or
                    // the reverse).
                    log.conflict(Role::Scaler, |l| &mut l.size_fights);
                }
                let first_new = sim.replicas().len();
                let live: Vec<(ReplicaId, bool)> = if dir < 0 {
                    sim.services()[s]
                        .replicas
                        .iter()
                        .filter(|&&r| sim.replicas()[r].state.is_live())
                        .map(|&r| (r, sim.replicas()[r].isolated))
                        .collect()
                } else {
                    vec![]
                };
                sim.apply(&Action::Scale {
                    service: s,
                    replicas: target,
                })
                .map_err(|e| EnvError::InvalidAction {
                    env: ID.into(),
                    reason: format!("{SCALER}: {e}"),
                })?;
                log.scaler_changes += 1;
                log.acted[Role::Scaler as usize] = true;
                let created = sim.replicas().len();
                if created > first_new {
                    self.memory.scaled_up.resize(created, None);
                    for slot in &mut self.memory.scaled_up[first_new..created] {
                        *slot = Some(now);
                    }
                }
                for (r, isolated) in live {
                    if sim.replicas()[r].state.is_live() {
                        continue;
                    }
                    if isolated {
                        log.conflict(Role::Scaler, |l| &mut l.isolations_undone);
                    }
                    if log
                        .touched
                        .iter()
                        .any(|&(t, who)| t == r && who != Role::Scaler)
                    {
                        log.conflict(Role::Scaler, |l| &mut l.removed_targets);
                    }
                }
            }
        }

        // 4. The optimiser.
        if let (Some(Value::MultiDiscrete(a)), Some(o)) = (
            self.role_action(actions, Role::Optimiser),
            self.optimiser.as_mut(),
        ) {
            let window = SimTime::from_secs_f64(self.cfg.conflict_window_s);
            let cpu_before: Vec<f64> = sim.services().iter().map(|st| st.target_cpu()).collect();
            // The scaler's recent replicas on the host it may consolidate.
            let target = usize::try_from(a[1] - 1)
                .ok()
                .and_then(|k| o.slots.get(k).copied());
            let recent = target.map_or(0, |h| {
                sim.replicas()
                    .iter()
                    .enumerate()
                    .filter(|(r, rep)| {
                        rep.host == Some(h)
                            && rep.state.is_live()
                            && self
                                .memory
                                .scaled_up
                                .get(*r)
                                .copied()
                                .flatten()
                                .is_some_and(|t| now.saturating_sub(t) <= window)
                    })
                    .count() as u32
            });
            let acted = o.act(sim, a);
            if acted.consolidated.is_some() {
                for _ in 0..recent {
                    log.conflict(Role::Optimiser, |l| &mut l.consolidation_fights);
                }
            }
            for (s, before) in cpu_before.into_iter().enumerate() {
                let after = sim.services()[s].target_cpu();
                if (after - before).abs() <= 1e-12 {
                    continue;
                }
                let d: i8 = if after > before { 1 } else { -1 };
                // Replicas added, then fewer cores each (or the reverse).
                if let Some((t, dir)) = self.memory.last_scale[s]
                    && dir == -d
                    && now.saturating_sub(t) <= window
                {
                    log.conflict(Role::Optimiser, |l| &mut l.size_fights);
                }
                // Kept as the count move it fights: a cut fights a scale-up.
                self.memory.last_size[s] = Some((now, -d));
            }
            log.acted[Role::Optimiser as usize] = acted.changes > 0;
            log.optimiser = Some(acted);
        }

        // 5. The cloud runs the step.
        sim.run_for(cloud::secs(self.cfg.step_s));
        if let Some(o) = self.optimiser.as_mut() {
            o.after_step(sim);
        }
        if !self.roles.contains(&Role::Healer) {
            cloud::heal_like_kubelet(sim);
        }
        let cloud_info = cloud::common_info(sim, &before, &mut self.faults);
        log.ledger.evictions = cloud_info.evictions;
        let security_info = match (&mut self.defender, &defended) {
            (Some(d), Some(acted)) => Some(d.observe(sim, acted, 0.0).1),
            // Nobody reads the alerts: drop them.
            _ => {
                let _ = sim.take_signals();
                None
            }
        };
        let (mut attack, mut restores) = (0.0, 0.0);
        if let (Some(b), Some(sec)) = (security, sim.security()) {
            let t = sec.totals();
            attack = 0.1 * (t.user_replica_s - b.user_replica_s)
                + (t.root_replica_s - b.root_replica_s)
                + 10.0 * (t.impact_s - b.impact_s);
            restores = (t.defender_restarts - b.defender_restarts) as f64;
        }
        let step_s = self.cfg.step_s;
        let cfg = &self.cfg;
        let base_bill = self.base_bill_rate * step_s / 3600.0;
        let team_cost = -cfg.cost_weight * cloud_info.cost / base_bill;
        let team_slo = -cfg.slo_weight * cloud_info.slo_violation_s / step_s;
        let unserved_share = if cloud_info.requests > 0.0 {
            cloud_info.unserved / cloud_info.requests
        } else {
            0.0
        };
        let team_unserved = -cfg.unserved_weight * unserved_share;
        let team_security = -cfg.security_weight * attack / step_s;
        let team_actions = -log.healer_cost - restores;
        let team_reward = team_cost + team_slo + team_unserved + team_security + team_actions;

        self.steps += 1;
        let truncated = self.steps >= cfg.max_steps;
        let mut out = MultiStep {
            obs: AgentMap::new(),
            rewards: AgentMap::new(),
            terminations: AgentMap::new(),
            truncations: AgentMap::new(),
            infos: AgentMap::new(),
        };
        for agent in &self.alive {
            let role = Role::of(agent).expect("an agent of ours");
            let optimised = self.optimiser.is_some();
            let own = match role {
                // With an optimiser the bill is its term, and the SLO the scaler's.
                Role::Scaler if optimised => team_slo,
                Role::Scaler => team_cost + team_slo,
                Role::Healer => team_unserved - log.healer_cost,
                Role::Defender => team_security - restores,
                Role::Optimiser => team_cost,
            };
            let mut info = Info {
                cloud: Some(cloud_info.clone()),
                cloudops: Some(CloudOpsInfo {
                    agent_reward: own,
                    team_reward,
                    team_cost,
                    team_slo,
                    team_unserved,
                    team_security,
                    team_actions,
                    agent_acted: log.acted[role as usize],
                    agent_refused: (role == Role::Healer)
                        .then(|| log.healer_refused.clone())
                        .flatten(),
                    conflicts_caused: log.caused[role as usize],
                    ledger: log.ledger,
                }),
                ..Info::default()
            };
            match role {
                Role::Scaler => {
                    info.scaling = Some(ScalingInfo {
                        relative_replica_cost: -team_cost / cfg.cost_weight.max(1e-12),
                        slo_violation_fraction: cloud_info.slo_violation_s / step_s,
                        dropped_fraction: unserved_share,
                        scaling_changes: log.scaler_changes,
                    })
                }
                Role::Healer => {
                    info.healing = Some(HealingInfo {
                        remedy: log.healer_kind,
                        refused: log.healer_refused.clone(),
                        unserved_fraction: unserved_share,
                        remedy_cost: log.healer_cost,
                    })
                }
                Role::Defender => info.security = security_info.clone(),
                Role::Optimiser => {
                    let (o, acted) = (self.optimiser.as_ref(), log.optimiser.clone());
                    info.cost = o.map(|o| o.info(sim, acted.unwrap_or_default()));
                }
            }
            let reward = match cfg.reward {
                OpsReward::Team => team_reward,
                OpsReward::Own => own,
            };
            out.rewards.insert(agent.clone(), reward);
            out.terminations.insert(agent.clone(), false);
            out.truncations.insert(agent.clone(), truncated);
            out.infos.insert(agent.clone(), info);
        }
        Ok(out)
    }
}

impl ParallelEnv for CloudOps {
    fn id(&self) -> &str {
        ID
    }

    fn possible_agents(&self) -> &[String] {
        &self.possible
    }

    fn agents(&self) -> &[String] {
        &self.alive
    }

    fn observation_space(&self, agent: &str) -> Result<&Space, EnvError> {
        Ok(&self.obs_spaces[self.index(agent)?])
    }

    fn action_space(&self, agent: &str) -> Result<&Space, EnvError> {
        Ok(&self.act_spaces[self.index(agent)?])
    }

    fn state_space(&self) -> &Space {
        &self.state_space
    }

    fn state(&self) -> Result<Value, EnvError> {
        if self.sim.is_none() {
            return Err(EnvError::NeedsReset(ID.into()));
        }
        let mut v = Vec::with_capacity(self.state_space.flat_dim().unwrap_or(0));
        for &role in &self.roles {
            self.write_agent_obs(role, &mut v);
        }
        v.push(self.steps as f32 / self.cfg.max_steps as f32);
        Ok(Value::Box(v))
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(AgentMap<Value>, AgentMap<Info>), EnvError> {
        let s = cloud::episode_seed(ID, &mut self.seeds, 0xc10d, seed, options)?;
        let mut sim = cloud::new_sim(&self.sc, s);
        let attacker = match self.cfg.attacker {
            OpsAttacker::BLine => AttackerKind::BLine,
            OpsAttacker::Meander => AttackerKind::Meander,
            OpsAttacker::None => AttackerKind::None,
        };
        if self.sc.security.is_some() {
            sim.start_attacker(attacker)
                .expect("the scenario has a [security] section");
        }
        self.base_bill_rate = sim
            .hosts()
            .iter()
            .filter(|h| h.billed_since.is_some())
            .map(|h| h.price_per_hour)
            .sum::<f64>()
            .max(1e-9);
        self.sim = Some(sim);
        self.steps = 0;
        self.memory = Memory {
            last_scale: vec![None; self.sc.spec.services.len()],
            last_restart: vec![],
            scaled_up: vec![],
            last_size: vec![None; self.sc.spec.services.len()],
        };
        if let (Some(o), Some(sim)) = (&mut self.optimiser, &self.sim) {
            o.reset(sim);
        }
        if let Some(d) = &mut self.defender {
            d.reset();
        }
        self.faults.clear();
        self.alive = self.possible.clone();
        self.refresh();
        let infos = self
            .alive
            .iter()
            .map(|a| (a.clone(), Info::default()))
            .collect();
        Ok((self.observations(), infos))
    }

    fn step(&mut self, actions: &AgentMap<Value>) -> Result<MultiStep, EnvError> {
        if self.sim.is_none() {
            return Err(EnvError::NeedsReset(ID.into()));
        }
        if self.alive.is_empty() {
            return Err(EnvError::EpisodeOver(ID.into()));
        }
        check_keys(ID, &self.alive, actions)?;
        for (i, agent) in self.possible.iter().enumerate() {
            let Some(a) = actions.get(agent) else {
                continue;
            };
            let mask = match self.roles[i] {
                Role::Scaler => None,
                Role::Healer => Some(&self.healer.mask[..]),
                Role::Defender => Some(&self.defender_mask[..]),
                Role::Optimiser => None,
            };
            check_action(ID, &self.act_spaces[i], mask, a).map_err(|e| match e {
                EnvError::InvalidAction { env, reason } => EnvError::InvalidAction {
                    env,
                    reason: format!("{agent}: {reason}"),
                },
                EnvError::MaskedAction {
                    env,
                    action,
                    reason: _,
                } => EnvError::MaskedAction {
                    env,
                    action: format!("{agent}: {action}"),
                    reason: format!("see action_mask(\"{agent}\")"),
                },
                other => other,
            })?;
        }
        let mut sim = self.sim.take().expect("checked above");
        let result = self.play(&mut sim, actions);
        self.sim = Some(sim);
        let mut out = result?;
        self.refresh();
        let obs = self.observations();
        out.obs = obs;
        if self.steps >= self.cfg.max_steps {
            self.alive.clear();
        }
        Ok(out)
    }

    fn action_mask(&self, agent: &str) -> Option<&[bool]> {
        match Role::of(agent) {
            Some(Role::Healer) if self.roles.contains(&Role::Healer) => Some(&self.healer.mask),
            Some(Role::Defender) if self.defender.is_some() => Some(&self.defender_mask),
            _ => None,
        }
    }
}
