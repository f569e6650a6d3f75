//! `Security-v0` in cloud mode: defend a simulated microservice cloud (a scenario
//! with a `[security]` section, such as `microservices-20`) against a scripted
//! attacker ([`hale_sim::Intrusions`]), while it serves its load.
//!
//! Replica slots are fixed at reset: each service's first `replicas` (its count in
//! the scenario), in scenario order; slot `k` refers to the `i`-th live replica of its
//! service now (a restart keeps it; a replacement takes the slot of the one it
//! replaces). Slots hold `R` replicas, the scenario `S` services, `W` entry services
//! and `E` call edges (workload edges excluded).
//!
//! Observation (`observation = "matrix"`, the default; `Box`): per replica slot 9
//! floats `[alerted this step, recent alerts (decaying), CPU anomaly score, analysis
//! says user, says root, says clean, analysing, isolated, not serving]`; per service 5 `[authentication failures
//! (log-scaled), decoy hit this step, has a decoy, rotating, the last address seen
//! attempting there is blocked (entries)]`; per
//! edge 1 `[cut]`; then the episode's elapsed share. Never the attacker's truth.
//!
//! Action (`Discrete`): 0 no-op; `1 + k` analyse slot k; `1 + R + k` isolate slot k
//! (or release it, if isolated); `1 + 2R + k` restore slot k; `1 + 3R + s` rotate
//! service s's credentials; `1 + 3R + S + s` add a decoy to service s; `1 + 3R + 2S +
//! j` block the attacker at entry j; `1 + 3R + 2S + W + e` cut edge e (or reconnect
//! it). `action_mask()` allows what applies now.
//!
//! Graph observation (`observation = "graph"`, for a GNN): nodes are the services
//! (in order) and then the replica slots; every node has [`GRAPH_NODE_FEATURES`]
//! floats: the kind one-hot of the cloud envs' resource graph (service, replica),
//! the slot's 9 features (replicas), the service's 5 and whether it is an entry
//! (services), and the episode's elapsed share. Edges ([`GRAPH_EDGE_FEATURES`]:
//! `[belongs, calls, cut, shares a host]`) join each replica and its service, each
//! caller and callee (both ways), and replicas on one host.
//!
//! Reward per step: CAGE 2's shape on replicas, averaged over the step: −0.1 per
//! replica with a user shell, −1 per replica with root, −10 while the data tier
//! suffers impact, −`restart_cost` (1, as CAGE 2) per replica restart the defender
//! caused (a restore, each replica of a rotation), and −`slo_weight` × the share of
//! the step each SLO was violated (summed over SLOs). `info` has each part, the attacker's move, and the
//! cloud's figures (requests, SLO seconds, bill) like the other cloud envs.

use crate::cloud::{self, Before, FaultReporter};
use crate::encoding::node_kind;
use crate::env::{EnvError, Info, SecurityInfo};
use crate::space::GraphValue;
use crate::space::Space;
use hale_sim::{
    AttackerKind, Defence, Fidelity, Privilege, ReplicaId, Scenario, SecurityTotals, SimTime,
    Simulation,
};
use std::sync::Arc;

/// Floats per replica slot.
pub const REPLICA_FEATURES: usize = 9;
/// Floats per service.
pub const SERVICE_FEATURES: usize = 5;
/// Floats per node of the graph observation.
pub const GRAPH_NODE_FEATURES: usize = node_kind::COUNT + REPLICA_FEATURES + SERVICE_FEATURES + 2;
/// Floats per edge of the graph observation.
pub const GRAPH_EDGE_FEATURES: usize = 4;

/// Where a graph node's own features start (after the kind one-hot).
const G_REPLICA: usize = node_kind::COUNT;
const G_SERVICE: usize = G_REPLICA + REPLICA_FEATURES;
const G_ENTRY: usize = G_SERVICE + SERVICE_FEATURES;
const G_TIME: usize = G_ENTRY + 1;

const ID: &str = "Security-v0";

/// Where each part of the action and observation starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Replica slots.
    pub replicas: usize,
    /// Services.
    pub services: usize,
    /// Entry services.
    pub entries: usize,
    /// Call edges (workload edges excluded).
    pub edges: usize,
}

impl Layout {
    /// Actions in all.
    pub fn actions(&self) -> usize {
        1 + 3 * self.replicas + 2 * self.services + self.entries + self.edges
    }

    /// Observation length.
    pub fn obs_len(&self) -> usize {
        self.replicas * REPLICA_FEATURES + self.services * SERVICE_FEATURES + self.edges + 1
    }

    /// What action index `a` does, in terms of slots and indices.
    pub fn decode(&self, a: usize) -> Option<Act> {
        let (r, s, w) = (self.replicas, self.services, self.entries);
        Some(match a {
            0 => Act::Noop,
            a if a < 1 + r => Act::Analyse(a - 1),
            a if a < 1 + 2 * r => Act::Isolate(a - 1 - r),
            a if a < 1 + 3 * r => Act::Restore(a - 1 - 2 * r),
            a if a < 1 + 3 * r + s => Act::Rotate(a - 1 - 3 * r),
            a if a < 1 + 3 * r + 2 * s => Act::Decoy(a - 1 - 3 * r - s),
            a if a < 1 + 3 * r + 2 * s + w => Act::Block(a - 1 - 3 * r - 2 * s),
            a if a < self.actions() => Act::Cut(a - 1 - 3 * r - 2 * s - w),
            _ => return None,
        })
    }
}

/// An action of the cloud-mode defender, by slot and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Nothing.
    Noop,
    /// Analyse replica slot k.
    Analyse(usize),
    /// Isolate (or release) replica slot k.
    Isolate(usize),
    /// Restore replica slot k.
    Restore(usize),
    /// Rotate service s's credentials.
    Rotate(usize),
    /// Add a decoy to service s.
    Decoy(usize),
    /// Block the attacker at entry j.
    Block(usize),
    /// Cut (or reconnect) call edge e.
    Cut(usize),
}

/// The defender's view of a cloud it does not own: its slots, what it remembers of
/// the signals, and how its actions become [`Defence`]s. `Security-v0`'s cloud mode
/// ([`CloudDefence`]) and `CloudOps-v0`'s defender agent both play through one.
pub(crate) struct Defender {
    /// The env errors name.
    env: &'static str,
    scenario: Arc<Scenario>,
    step_s: f64,
    max_steps: u32,
    slo_weight: f64,
    restart_cost: f64,
    layout: Layout,
    /// Per slot, (service, index among the service's live replicas).
    slot_of: Vec<(usize, usize)>,
    /// Edge index of each observed edge.
    edges: Vec<usize>,
    steps: u32,
    alerts: Vec<f32>,
    recent: Vec<f32>,
    anomaly: Vec<f32>,
    auth: Vec<f32>,
    decoy_hits: Vec<f32>,
}

/// What the defender's action was, and the security totals before the step ran.
pub(crate) struct Acted {
    /// Whether it did something (anything but the no-op).
    pub(crate) acted: bool,
    /// The defence it applied.
    pub(crate) defence: Option<Defence>,
    totals: SecurityTotals,
}

/// The security reward's parts of a step.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Terms {
    pub(crate) confidentiality: f64,
    pub(crate) availability: f64,
    pub(crate) action_cost: f64,
    pub(crate) slo: f64,
}

impl Terms {
    pub(crate) fn sum(&self) -> f64 {
        self.confidentiality + self.availability + self.action_cost + self.slo
    }
}

impl Defender {
    /// The defender of `sc` (which has a `[security]` section), for `env`'s steps of
    /// `step_s` over `max_steps`, weighing the SLO term by `slo_weight` and each
    /// restart it causes by `restart_cost`.
    pub(crate) fn new(
        env: &'static str,
        sc: Arc<Scenario>,
        step_s: f64,
        max_steps: u32,
        slo_weight: f64,
        restart_cost: f64,
    ) -> Result<Defender, EnvError> {
        let bad = |field: &str, reason: String| EnvError::Config {
            env: env.into(),
            field: field.into(),
            reason,
        };
        let Some(model) = &sc.security else {
            return Err(bad(
                "scenario",
                format!(
                    "{} has no [security] section (what an attacker can reach and \
                     exploit): use cage2, microservices-20, or add one",
                    sc.spec.name
                ),
            ));
        };
        if !(step_s.is_finite() && step_s >= hale_sim::MIN_PERIOD_S) {
            return Err(bad("step_s", format!("must be ≥ 0.001 s, got {step_s}")));
        }
        cloud::non_negative(env, "slo_weight", slo_weight)?;
        cloud::non_negative(env, "restart_cost", restart_cost)?;
        let episode_s = step_s * f64::from(max_steps);
        if episode_s > hale_sim::MAX_DURATION_S {
            return Err(bad(
                "max_steps",
                format!("{max_steps} steps of {step_s} s is longer than a year"),
            ));
        }
        let slot_of: Vec<(usize, usize)> = sc
            .spec
            .services
            .iter()
            .enumerate()
            .flat_map(|(s, spec)| (0..spec.replicas as usize).map(move |i| (s, i)))
            .collect();
        let workloads = sc.spec.workload.len();
        let edges: Vec<usize> = (workloads..sc.edges.len()).collect();
        let layout = Layout {
            replicas: slot_of.len(),
            services: sc.spec.services.len(),
            entries: model.entry.len(),
            edges: edges.len(),
        };
        let mut d = Defender {
            env,
            scenario: sc,
            step_s,
            max_steps,
            slo_weight,
            restart_cost,
            layout,
            slot_of,
            edges,
            steps: 0,
            alerts: vec![],
            recent: vec![],
            anomaly: vec![],
            auth: vec![],
            decoy_hits: vec![],
        };
        d.reset();
        Ok(d)
    }

    pub(crate) fn scenario(&self) -> &Arc<Scenario> {
        &self.scenario
    }

    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    pub(crate) fn steps(&self) -> u32 {
        self.steps
    }

    pub(crate) fn spaces(&self) -> (Space, Space) {
        let n = self.layout.obs_len();
        let (mut low, mut high) = (vec![0.0; n], vec![1.0; n]);
        for k in 0..self.layout.replicas {
            // The anomaly score: noise around 0 (clean) or 1 (a miner), clipped.
            low[k * REPLICA_FEATURES + 2] = -1.0;
            high[k * REPLICA_FEATURES + 2] = 2.0;
        }
        (
            Space::Box {
                low,
                high,
                shape: vec![n],
            },
            Space::Discrete {
                n: self.layout.actions() as u64,
            },
        )
    }

    /// Forgets the last episode's signals.
    pub(crate) fn reset(&mut self) {
        self.steps = 0;
        let (r, s) = (self.layout.replicas, self.layout.services);
        self.alerts = vec![0.0; r];
        self.recent = vec![0.0; r];
        self.anomaly = vec![0.0; r];
        self.auth = vec![0.0; s];
        self.decoy_hits = vec![0.0; s];
    }

    /// The replica slot `k` refers to now, if its service has that many live replicas.
    pub(crate) fn replica(&self, sim: &Simulation, k: usize) -> Option<ReplicaId> {
        let (s, i) = *self.slot_of.get(k)?;
        sim.services()[s]
            .replicas
            .iter()
            .copied()
            .filter(|&r| sim.replicas()[r].state.is_live())
            .nth(i)
    }

    fn defence(&self, sim: &Simulation, act: Act) -> Option<Defence> {
        let model = self.scenario.security.as_ref()?;
        Some(match act {
            Act::Noop => return None,
            Act::Analyse(k) => Defence::Analyse {
                replica: self.replica(sim, k)?,
            },
            Act::Isolate(k) => {
                let replica = self.replica(sim, k)?;
                if sim.replicas()[replica].isolated {
                    Defence::Release { replica }
                } else {
                    Defence::Isolate { replica }
                }
            }
            Act::Restore(k) => Defence::Restore {
                replica: self.replica(sim, k)?,
            },
            Act::Rotate(service) => Defence::Rotate { service },
            Act::Decoy(service) => Defence::Decoy { service },
            Act::Block(j) => Defence::Block {
                service: model.entry[j],
            },
            Act::Cut(e) => {
                let edge = self.edges[e];
                if sim.is_cut(edge) {
                    Defence::Reconnect { edge }
                } else {
                    Defence::Cut { edge }
                }
            }
        })
    }

    pub(crate) fn write_mask(&self, sim: Option<&Simulation>, mask: &mut Vec<bool>) {
        let l = self.layout;
        mask.clear();
        mask.resize(l.actions(), false);
        let Some(sim) = sim else { return };
        let sec = sim.security().expect("started at reset");
        let spec = self
            .scenario
            .spec
            .security
            .as_ref()
            .expect("checked in new");
        let now = sim.now();
        mask[0] = true;
        for k in 0..l.replicas {
            let Some(r) = self.replica(sim, k) else {
                continue;
            };
            let rep = &sim.replicas()[r];
            let placed = rep.state != hale_sim::ReplicaState::Pending;
            let host_up = rep
                .host
                .is_some_and(|h| sim.hosts()[h].state == hale_sim::HostState::Ready);
            mask[1 + k] = placed && !sec.analysing(r);
            mask[1 + l.replicas + k] = placed;
            mask[1 + 2 * l.replicas + k] = placed && host_up;
        }
        for s in 0..l.services {
            mask[1 + 3 * l.replicas + s] = !sec.rotating(s, now);
            mask[1 + 3 * l.replicas + l.services + s] = sec.decoys(s) < spec.max_decoys;
        }
        let model = self.scenario.security.as_ref().expect("checked in new");
        for (j, &s) in model.entry.iter().enumerate() {
            mask[1 + 3 * l.replicas + 2 * l.services + j] = sec.blockable(s);
        }
        let base = 1 + 3 * l.replicas + 2 * l.services + l.entries;
        for e in 0..l.edges {
            mask[base + e] = true;
        }
    }

    pub(crate) fn write_obs(&self, sim: Option<&Simulation>, out: &mut [f32]) {
        out.fill(0.0);
        let Some(sim) = sim else { return };
        let sec = sim.security().expect("started at reset");
        let l = self.layout;
        let now = sim.now();
        for k in 0..l.replicas {
            let o = &mut out[k * REPLICA_FEATURES..(k + 1) * REPLICA_FEATURES];
            let Some(r) = self.replica(sim, k) else {
                o[8] = 1.0;
                continue;
            };
            let rep = &sim.replicas()[r];
            o[0] = self.alerts[k].min(1.0);
            o[1] = self.recent[k].min(1.0);
            o[2] = self.anomaly[k].clamp(-1.0, 2.0);
            match sec.revealed(r) {
                Some(Privilege::User) => o[3] = 1.0,
                Some(Privilege::Root) => o[4] = 1.0,
                Some(Privilege::None) => o[5] = 1.0,
                None => {}
            }
            o[6] = f32::from(u8::from(sec.analysing(r)));
            o[7] = f32::from(u8::from(rep.isolated));
            o[8] = f32::from(u8::from(!rep.state.is_serving()));
        }
        let base = l.replicas * REPLICA_FEATURES;
        let model = self.scenario.security.as_ref().expect("checked in new");
        for s in 0..l.services {
            let o = &mut out[base + s * SERVICE_FEATURES..base + (s + 1) * SERVICE_FEATURES];
            o[0] = ((1.0 + self.auth[s]).ln() / 3.0).min(1.0);
            o[1] = self.decoy_hits[s].min(1.0);
            o[2] = f32::from(u8::from(sec.decoys(s) > 0));
            o[3] = f32::from(u8::from(sec.rotating(s, now)));
            o[4] = f32::from(u8::from(model.entry.contains(&s) && sec.blocked(s)));
        }
        let base = base + l.services * SERVICE_FEATURES;
        for (e, &edge) in self.edges.iter().enumerate() {
            out[base + e] = f32::from(u8::from(sim.is_cut(edge)));
        }
        out[base + l.edges] = self.steps as f32 / self.max_steps as f32;
    }

    /// The graph observation: the flat one's figures on the service graph.
    pub(crate) fn write_graph(&self, sim: Option<&Simulation>, out: &mut GraphValue) {
        let l = self.layout;
        let mut flat = vec![0.0; l.obs_len()];
        self.write_obs(sim, &mut flat);
        let d = GRAPH_NODE_FEATURES;
        let n = l.services + l.replicas;
        out.nodes.clear();
        out.nodes.resize(n * d, 0.0);
        out.edges.clear();
        out.links.clear();
        let time = flat[l.obs_len() - 1];
        let services = l.replicas * REPLICA_FEATURES;
        let model = self.scenario.security.as_ref().expect("checked in new");
        for s in 0..l.services {
            let x = &mut out.nodes[s * d..(s + 1) * d];
            x[node_kind::SERVICE] = 1.0;
            x[G_SERVICE..G_ENTRY].copy_from_slice(
                &flat[services + s * SERVICE_FEATURES..services + (s + 1) * SERVICE_FEATURES],
            );
            x[G_ENTRY] = f32::from(u8::from(model.entry.contains(&s)));
            x[G_TIME] = time;
        }
        let edge = |out: &mut GraphValue, a: usize, b: usize, f: [f32; 4]| {
            out.links.push([a as u32, b as u32]);
            out.edges.extend_from_slice(&f);
        };
        let mut hosts = Vec::with_capacity(l.replicas);
        for k in 0..l.replicas {
            let i = l.services + k;
            let x = &mut out.nodes[i * d..(i + 1) * d];
            x[node_kind::REPLICA] = 1.0;
            x[G_REPLICA..G_SERVICE]
                .copy_from_slice(&flat[k * REPLICA_FEATURES..(k + 1) * REPLICA_FEATURES]);
            x[G_TIME] = time;
            let s = self.slot_of[k].0;
            edge(out, i, s, [1.0, 0.0, 0.0, 0.0]);
            edge(out, s, i, [1.0, 0.0, 0.0, 0.0]);
            let host =
                sim.and_then(|sim| self.replica(sim, k).and_then(|r| sim.replicas()[r].host));
            hosts.push(host);
        }
        let cut_base = services + l.services * SERVICE_FEATURES;
        for (e, &edge_id) in self.edges.iter().enumerate() {
            let call = &self.scenario.edges[edge_id];
            let from = call.from.expect("service calls only");
            let cut = flat[cut_base + e];
            edge(out, from, call.to, [0.0, 1.0, cut, 0.0]);
            edge(out, call.to, from, [0.0, 1.0, cut, 0.0]);
        }
        for a in 0..l.replicas {
            for b in 0..l.replicas {
                if a != b && hosts[a].is_some() && hosts[a] == hosts[b] {
                    edge(out, l.services + a, l.services + b, [0.0, 0.0, 0.0, 1.0]);
                }
            }
        }
    }

    /// Plays action `a` (allowed by the mask) on `sim`, now.
    pub(crate) fn act(&self, sim: &mut Simulation, a: usize) -> Result<Acted, EnvError> {
        let act = self.layout.decode(a).ok_or_else(|| EnvError::Config {
            env: self.env.into(),
            field: "action".into(),
            reason: format!("{a} is not an action (0..{})", self.layout.actions()),
        })?;
        let defence = self.defence(sim, act);
        let totals = *sim.security().expect("started at reset").totals();
        if let Some(d) = &defence {
            // The mask allowed it, so the simulator accepts it: a refusal here is a
            // mask bug, reported as such rather than skipped.
            sim.defend(d).map_err(|e| EnvError::Config {
                env: self.env.into(),
                field: "action".into(),
                reason: format!("action {a} ({act:?}) was allowed, yet refused: {e}"),
            })?;
        }
        Ok(Acted {
            acted: defence.is_some(),
            defence,
            totals,
        })
    }

    /// After the step ran: takes the step's signals into the defender's memory and
    /// gives the reward's parts (`slo_violation_s`: the step's SLO-violation seconds)
    /// and the step's security info.
    pub(crate) fn observe(
        &mut self,
        sim: &mut Simulation,
        acted: &Acted,
        slo_violation_s: f64,
    ) -> (Terms, SecurityInfo) {
        let signals = sim.take_signals().expect("started at reset");
        self.steps += 1;
        for k in 0..self.layout.replicas {
            let (alerts, anomaly) = match self.replica(sim, k) {
                Some(r) => (signals.alerts[r] as f32, signals.anomaly[r]),
                None => (0.0, 0.0),
            };
            self.alerts[k] = alerts;
            self.recent[k] = 0.7 * self.recent[k] + alerts;
            self.anomaly[k] = anomaly;
        }
        for s in 0..self.layout.services {
            self.auth[s] = signals.auth_failures[s] as f32;
            self.decoy_hits[s] = signals.decoy_hits[s] as f32;
        }
        let sec = sim.security().expect("started at reset");
        let totals = *sec.totals();
        let d = |f: fn(&SecurityTotals) -> f64| f(&totals) - f(&acted.totals);
        let restarts = totals.defender_restarts - acted.totals.defender_restarts;
        let terms = Terms {
            confidentiality: -(0.1 * d(|t| t.user_replica_s) + d(|t| t.root_replica_s))
                / self.step_s,
            availability: -10.0 * d(|t| t.impact_s) / self.step_s,
            action_cost: -self.restart_cost * restarts as f64,
            slo: -self.slo_weight * slo_violation_s / self.step_s,
        };
        let (mut footholds, mut privileged) = (0, 0);
        for (r, rep) in sim.replicas().iter().enumerate() {
            let p = sec.foothold(r);
            if p != Privilege::None && rep.state.is_live() {
                footholds += 1;
                privileged += u32::from(p == Privilege::Root);
            }
        }
        let mv = sec.last_move();
        let info = SecurityInfo {
            reward_confidentiality: terms.confidentiality,
            reward_availability: terms.availability,
            reward_action_cost: terms.action_cost,
            restarts: restarts as u32,
            reward_slo: terms.slo,
            exfiltrated_mb: d(|t| t.exfiltrated_mb),
            red_action: mv.map_or("none", |m| m.kind.name()),
            red_success: mv.is_some_and(|m| m.success),
            footholds,
            privileged,
            acted: acted.acted,
        };
        (terms, info)
    }
}

/// `Security-v0`'s cloud game: a simulation of its own and the defender playing it.
pub(crate) struct CloudDefence {
    defender: Defender,
    sim: Option<Simulation>,
    faults: FaultReporter,
}

impl CloudDefence {
    /// The scenario `name` (builtin or path) with `fidelity` (its own if `None`).
    pub(crate) fn new(
        name: &str,
        fidelity: Option<Fidelity>,
        step_s: f64,
        max_steps: u32,
        slo_weight: f64,
        restart_cost: f64,
    ) -> Result<CloudDefence, EnvError> {
        let (sc, _) = cloud::load(ID, name, fidelity)?;
        Ok(CloudDefence {
            defender: Defender::new(
                ID,
                Arc::new(sc),
                step_s,
                max_steps,
                slo_weight,
                restart_cost,
            )?,
            sim: None,
            faults: FaultReporter::default(),
        })
    }

    pub(crate) fn scenario(&self) -> &Arc<Scenario> {
        self.defender.scenario()
    }

    pub(crate) fn layout(&self) -> Layout {
        self.defender.layout()
    }

    pub(crate) fn spaces(&self) -> (Space, Space) {
        self.defender.spaces()
    }

    /// The simulation under way (for baselines and tests that need the truth).
    pub(crate) fn sim(&self) -> Option<&Simulation> {
        self.sim.as_ref()
    }

    pub(crate) fn steps(&self) -> u32 {
        self.defender.steps()
    }

    pub(crate) fn reset(&mut self, seed: u64, attacker: AttackerKind) {
        let mut sim = cloud::new_sim(self.defender.scenario(), seed);
        sim.start_attacker(attacker)
            .expect("the scenario has a [security] section (checked in new)");
        self.sim = Some(sim);
        self.defender.reset();
        self.faults.clear();
    }

    /// The replica slot `k` refers to now.
    pub(crate) fn replica(&self, k: usize) -> Option<ReplicaId> {
        self.defender.replica(self.sim.as_ref()?, k)
    }

    pub(crate) fn write_mask(&self, mask: &mut Vec<bool>) {
        self.defender.write_mask(self.sim.as_ref(), mask)
    }

    pub(crate) fn write_obs(&self, out: &mut [f32]) {
        self.defender.write_obs(self.sim.as_ref(), out)
    }

    pub(crate) fn write_graph(&self, out: &mut GraphValue) {
        self.defender.write_graph(self.sim.as_ref(), out)
    }

    /// Plays one step: the defender's action, then `step_s` of the cloud.
    pub(crate) fn step(&mut self, a: usize) -> Result<(f64, bool, Info), EnvError> {
        let sim = self.sim.as_mut().ok_or(EnvError::NeedsReset(ID.into()))?;
        let before = Before::read(sim);
        let acted = self.defender.act(sim, a)?;
        sim.run_for(SimTime::from_secs_f64(self.defender.step_s));
        cloud::heal_like_kubelet(sim);
        let cloud_info = cloud::common_info(sim, &before, &mut self.faults);
        let (terms, security) = self
            .defender
            .observe(sim, &acted, cloud_info.slo_violation_s);
        let info = Info {
            security: Some(security),
            cloud: Some(cloud_info),
            ..Info::default()
        };
        Ok((
            terms.sum(),
            self.defender.steps() >= self.defender.max_steps,
            info,
        ))
    }
}
