//! Intrusions: a scripted attacker inside the simulated cloud, the defender's actions
//! against it, and what the monitoring shows of either.
//!
//! A scenario's `[security]` section ([`crate::SecuritySpec`]) says what can be
//! attacked: the entry services reachable from outside, each service's exploitability
//! and the privilege an exploit gives, the data tier. [`Simulation::start_attacker`]
//! lets an attacker loose. It moves at exponential intervals, from its own stream
//! ([`StreamId::Attacker`]), so two defenders on one seed meet the same dice:
//!
//! 1. with no usable foothold, it exploits a replica of an entry service (unless the
//!    defender blocked its address there);
//! 2. it escalates a user shell to root;
//! 3. from root it reads the replica's secrets (credentials of its service and of the
//!    services it calls) and moves on: along a call edge that is not cut, to a replica
//!    of the callee (a login where it holds the callee's credentials, else an
//!    exploit), or out of the container to another replica on the same host.
//!
//! `b_line` heads for the data tier (entry and next hops closest to it) and stays
//! once root there; `meander` takes everything it can reach in one zone before the
//! next. A decoy in a service may be picked instead of a replica: the attempt fails
//! and the decoy reports it.
//!
//! Damage: root on a data replica is impact (the service's error rate rises); any
//! shell on a data replica exfiltrates; root elsewhere mines, stealing CPU (a
//! service-time factor). An isolated replica keeps its intruder (it still counts) but
//! the intruder can do nothing from it.
//!
//! The defender sees [`Signals`]: alerts per replica (a detected move, after a
//! delay, and false alarms), a CPU anomaly score per replica, authentication failures
//! per service (failed exploits and blocked attempts, plus benign noise), decoy hits.
//! Never the truth, except through an analysis, which takes time. Its actions
//! ([`Defence`]) take effect in the cloud model: an isolated replica leaves the load
//! balancer and fails what it held; a cut edge fails every call along it; a restore
//! is a restart (the replica serves nothing meanwhile); a rotation restarts a
//! service's replicas one after another with new credentials.
//!
//! A foothold ends only with its container: a restart (the defender's, or any other)
//! or the replica's end.

use crate::actions::ActionError;
use crate::event::Event;
use crate::model::{ReplicaId, ReplicaState, ServiceId};
use crate::rng::{self, Stream, StreamId};
use crate::scenario::{AttackerKind, Privilege, Scenario, SecurityModel, SecuritySpec};
use crate::sim::Simulation;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};

/// A defender's action against intrusions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Defence {
    /// Inspect a replica: after `analyse_s`, its true state is revealed.
    Analyse {
        /// Replica.
        replica: ReplicaId,
    },
    /// Cut a replica off the network (out of the load balancer; what it holds fails).
    Isolate {
        /// Replica.
        replica: ReplicaId,
    },
    /// Undo an isolation.
    Release {
        /// Replica.
        replica: ReplicaId,
    },
    /// Restart a replica from its image (fresh container; down for its restart time).
    Restore {
        /// Replica.
        replica: ReplicaId,
    },
    /// New credentials for a service: its replicas restart one after another.
    Rotate {
        /// Service.
        service: ServiceId,
    },
    /// Deny traffic along a call edge (every call along it fails).
    Cut {
        /// Edge index (a service's call, not a workload's).
        edge: usize,
    },
    /// Allow traffic along a cut edge again.
    Reconnect {
        /// Edge index.
        edge: usize,
    },
    /// Block, at an entry service, the address the last attempt there came from (the
    /// attacker moves to another address every `source_change_s` on average; a block
    /// of an address it has left, or before any attempt was seen, stops nothing).
    Block {
        /// Entry service.
        service: ServiceId,
    },
    /// Add a decoy to a service.
    Decoy {
        /// Service.
        service: ServiceId,
    },
}

impl Defence {
    /// The action's name, as in errors.
    pub fn name(&self) -> &'static str {
        match self {
            Defence::Analyse { .. } => "analyse",
            Defence::Isolate { .. } => "isolate",
            Defence::Release { .. } => "release",
            Defence::Restore { .. } => "restore",
            Defence::Rotate { .. } => "rotate",
            Defence::Cut { .. } => "cut",
            Defence::Reconnect { .. } => "reconnect",
            Defence::Block { .. } => "block",
            Defence::Decoy { .. } => "decoy",
        }
    }
}

/// What the attacker did last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MoveKind {
    /// Nothing (B_line at its goal, or nothing reachable).
    Wait,
    /// An exploit of a replica.
    Exploit,
    /// A login with stolen credentials.
    Login,
    /// User to root.
    Escalate,
    /// Out of a container to another replica on its host.
    Escape,
    /// An attempt at an entry that blocked it.
    Blocked,
    /// An attempt on a decoy.
    Decoy,
}

impl MoveKind {
    /// The move's name (`exploit`, `login`, …), as in `info`.
    pub fn name(self) -> &'static str {
        match self {
            MoveKind::Wait => "wait",
            MoveKind::Exploit => "exploit",
            MoveKind::Login => "login",
            MoveKind::Escalate => "escalate",
            MoveKind::Escape => "escape",
            MoveKind::Blocked => "blocked",
            MoveKind::Decoy => "decoy",
        }
    }
}

/// One move of the attacker.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Move {
    /// What.
    pub kind: MoveKind,
    /// The replica it targeted, if any.
    pub replica: Option<ReplicaId>,
    /// The service it targeted, if any.
    pub service: Option<ServiceId>,
    /// Whether it worked.
    pub success: bool,
}

/// Running totals of an intrusion (the hidden truth, for rewards and evaluation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SecurityTotals {
    /// Replica-seconds with a user shell of the attacker.
    pub user_replica_s: f64,
    /// Replica-seconds with the attacker root.
    pub root_replica_s: f64,
    /// Data exfiltrated, MB.
    pub exfiltrated_mb: f64,
    /// Seconds of impact on the data tier (root on a data replica, not isolated).
    pub impact_s: f64,
    /// Replicas the defender restarted (restores and rotations).
    pub defender_restarts: u64,
    /// The attacker's moves.
    pub moves: u64,
    /// Of those, the ones that worked.
    pub successes: u64,
    /// Alerts from detected moves, delivered.
    pub true_alerts: u64,
    /// False alerts.
    pub false_alerts: u64,
    /// Attempts that hit a decoy.
    pub decoy_hits: u64,
}

/// What the monitoring shows the defender since the last [`Simulation::take_signals`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signals {
    /// Alerts per replica id (detected moves and false alarms).
    pub alerts: Vec<u32>,
    /// A CPU anomaly score per replica id (about 1 where a miner runs, 0 otherwise,
    /// plus noise); 0 for replicas that are not serving.
    pub anomaly: Vec<f32>,
    /// Authentication failures per service.
    pub auth_failures: Vec<u32>,
    /// Attempts on the service's decoys.
    pub decoy_hits: Vec<u32>,
}

/// The attacker and the security state of the cloud.
#[derive(Clone, Debug)]
pub struct Intrusions {
    kind: AttackerKind,
    stream: Stream,
    noise_key: u64,
    foothold: Vec<Privilege>,
    revealed: Vec<Option<Privilege>>,
    analysing: Vec<bool>,
    alerts: Vec<u32>,
    auth_failures: Vec<u32>,
    decoy_hits: Vec<u32>,
    creds: Vec<bool>,
    decoys: Vec<u32>,
    /// The attacker's address (a counter), and when it moves to the next.
    source: u32,
    source_changes_at: SimTime,
    source_key: u64,
    /// Per entry, the address of the last attempt seen there.
    seen_source: Vec<Option<u32>>,
    /// Per entry, the address the defender blocked there.
    blocked_source: Vec<Option<u32>>,
    /// Per entry, the address the attacker found blocked there.
    found_blocked: Vec<Option<u32>>,
    rotating_until: Vec<SimTime>,
    zone: Option<usize>,
    totals: SecurityTotals,
    accounted: SimTime,
    signals_since: SimTime,
    last_move: Option<Move>,
}

fn slot<T: Clone + Default>(v: &mut Vec<T>, i: usize) -> &mut T {
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    &mut v[i]
}

impl Intrusions {
    /// The attacker playing.
    pub fn kind(&self) -> AttackerKind {
        self.kind
    }

    /// The attacker's privilege on a replica (the hidden truth).
    pub fn foothold(&self, r: ReplicaId) -> Privilege {
        self.foothold.get(r).copied().unwrap_or_default()
    }

    /// What the last finished analysis of a replica revealed (cleared by a restart).
    pub fn revealed(&self, r: ReplicaId) -> Option<Privilege> {
        self.revealed.get(r).copied().flatten()
    }

    /// Whether an analysis of the replica is under way.
    pub fn analysing(&self, r: ReplicaId) -> bool {
        self.analysing.get(r).copied().unwrap_or(false)
    }

    /// Whether the attacker holds a service's current credentials.
    pub fn has_credentials(&self, s: ServiceId) -> bool {
        self.creds[s]
    }

    /// Decoys in a service.
    pub fn decoys(&self, s: ServiceId) -> u32 {
        self.decoys[s]
    }

    /// Whether the defender blocked, at entry service `s`, the last address it saw
    /// attempting there (what a defender can know; whether the attacker still uses it
    /// is hidden).
    pub fn blocked(&self, s: ServiceId) -> bool {
        self.blocked_source[s].is_some() && self.blocked_source[s] == self.seen_source[s]
    }

    /// Whether an attempt was seen at entry `s` from an address not blocked there.
    pub fn blockable(&self, s: ServiceId) -> bool {
        self.seen_source[s].is_some() && self.blocked_source[s] != self.seen_source[s]
    }

    /// Whether the attacker's current address is blocked at entry `s` (hidden truth).
    fn blocks_attacker(&self, s: ServiceId) -> bool {
        self.blocked_source[s] == Some(self.source)
    }

    /// Whether a rotation of the service's credentials is still restarting replicas.
    pub fn rotating(&self, s: ServiceId, now: SimTime) -> bool {
        self.rotating_until[s] > now
    }

    /// Totals so far.
    pub fn totals(&self) -> &SecurityTotals {
        &self.totals
    }

    /// The attacker's last move.
    pub fn last_move(&self) -> Option<Move> {
        self.last_move
    }
}

/// A scenario's `[security]` section, resolved and as written (intrusions run only
/// in scenarios that have one: [`Simulation::start_attacker`] checks).
fn parts(sc: &Scenario) -> (&SecurityModel, &SecuritySpec) {
    match (&sc.security, &sc.spec.security) {
        (Some(m), Some(s)) => (m, s),
        _ => unreachable!("intrusions run only in scenarios with a [security] section"),
    }
}

/// A draw from Poisson(`mean`) by inversion of one keyed uniform.
fn poisson(mean: f64, key: u64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    let u = rng::unit(key);
    let mut p = (-mean).exp();
    let mut cdf = p;
    let mut k = 0;
    while u > cdf && k < 10_000 {
        k += 1;
        p *= mean / k as f64;
        cdf += p;
    }
    k
}

/// Where an attempt comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Outside,
    Call,
    Host,
}

/// What an attempt aims at.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Aim {
    Replica(ReplicaId),
    Decoy(ServiceId),
}

impl Simulation {
    fn security_spec(&self) -> &SecuritySpec {
        parts(&self.scenario).1
    }

    /// Lets an attacker loose (or, with [`AttackerKind::None`], only the monitoring:
    /// false alarms and noise). Needs the scenario's `[security]` section; once per run.
    pub fn start_attacker(&mut self, kind: AttackerKind) -> Result<(), ActionError> {
        if self.scenario.security.is_none() {
            return Err(ActionError::NoSecurity("start an attacker"));
        }
        if self.security.is_some() {
            return Err(ActionError::Refused {
                action: "start an attacker",
                reason: "one is already playing".into(),
            });
        }
        let key = rng::key(self.seed, StreamId::Attacker as u64);
        let n = self.services.len();
        let now = self.now();
        let mut sec = Intrusions {
            kind,
            stream: Stream::from_key(rng::key(key, 1)),
            noise_key: rng::key(key, 2),
            foothold: Vec::new(),
            revealed: Vec::new(),
            analysing: Vec::new(),
            alerts: Vec::new(),
            auth_failures: vec![0; n],
            decoy_hits: vec![0; n],
            creds: vec![false; n],
            decoys: vec![0; n],
            source: 0,
            source_changes_at: SimTime::ZERO,
            source_key: rng::key(key, 3),
            seen_source: vec![None; n],
            blocked_source: vec![None; n],
            found_blocked: vec![None; n],
            rotating_until: vec![SimTime::ZERO; n],
            zone: None,
            totals: SecurityTotals::default(),
            accounted: now,
            signals_since: now,
            last_move: None,
        };
        if kind != AttackerKind::None {
            let dt = sec.stream.exp(self.security_spec().attack_interval_s);
            self.queue
                .push(now + SimTime::from_secs_f64(dt), Event::Attack);
        }
        self.security = Some(Box::new(sec));
        Ok(())
    }

    /// The intrusion state, once an attacker was started.
    pub fn security(&self) -> Option<&Intrusions> {
        self.security.as_deref()
    }

    /// Whether the defender cut an edge.
    pub fn is_cut(&self, edge: usize) -> bool {
        self.cut.get(edge).copied().unwrap_or(false)
    }

    /// Adds the time since the last accounting to the totals, at the current state.
    pub(crate) fn account_security(&mut self) {
        let now = self.now();
        let Some(sec) = self.security.as_deref_mut() else {
            return;
        };
        let dt = now.saturating_sub(sec.accounted).as_secs_f64();
        sec.accounted = now;
        if dt <= 0.0 {
            return;
        }
        let (model, spec) = parts(&self.scenario);
        let mut impact = false;
        for (r, &p) in sec.foothold.iter().enumerate() {
            if p == Privilege::None || !self.replicas[r].state.is_live() {
                continue;
            }
            let rep = &self.replicas[r];
            let data = model.data[rep.service];
            match p {
                Privilege::User => sec.totals.user_replica_s += dt,
                _ => sec.totals.root_replica_s += dt,
            }
            if data && !rep.isolated {
                let rate = if p == Privilege::Root { 10.0 } else { 1.0 };
                sec.totals.exfiltrated_mb += rate * spec.exfil_mb_per_s * dt;
                impact |= p == Privilege::Root;
            }
        }
        if impact {
            sec.totals.impact_s += dt;
        }
    }

    /// Sets what footholds do to the cloud: impact on the data tier's error rate, and
    /// the CPU miners steal.
    fn refresh_intrusion_effects(&mut self) {
        let Some(sec) = self.security.as_deref() else {
            return;
        };
        let (model, spec) = parts(&self.scenario);
        let mut impact = vec![false; self.services.len()];
        let mut changed = false;
        for r in 0..self.replicas.len() {
            let rep = &self.replicas[r];
            let p = sec.foothold(r);
            let root = p == Privilege::Root && rep.state.is_live();
            let data = model.data[rep.service];
            if root && data && !rep.isolated {
                impact[rep.service] = true;
            }
            let steal = if root && !data {
                spec.mining_slowdown
            } else {
                1.0
            };
            if self.replicas[r].steal != steal {
                self.replicas[r].steal = steal;
                changed = true;
            }
        }
        for (s, &hit) in impact.iter().enumerate() {
            let rate = if hit { spec.impact_error_rate } else { 0.0 };
            if self.services[s].attack_error_rate != rate {
                self.services[s].attack_error_rate = rate;
                changed = true;
            }
        }
        if changed {
            self.version += 1;
        }
    }

    /// A replica's container is gone (restart or end): so is whatever the attacker,
    /// an isolation or an analysis had there.
    pub(crate) fn clean_replica(&mut self, r: ReplicaId) {
        self.replicas[r].isolated = false;
        self.replicas[r].steal = 1.0;
        if self.security.is_none() {
            return;
        }
        self.account_security();
        let sec = self.security.as_deref_mut().expect("checked above");
        let had = sec.foothold(r) != Privilege::None;
        if let Some(p) = sec.foothold.get_mut(r) {
            *p = Privilege::None;
        }
        if let Some(x) = sec.revealed.get_mut(r) {
            *x = None;
        }
        if let Some(a) = sec.analysing.get_mut(r) {
            *a = false;
        }
        if had {
            self.refresh_intrusion_effects();
        }
    }

    /// Applies a defender's action now. An invalid one changes nothing and says why.
    pub fn defend(&mut self, d: &Defence) -> Result<(), ActionError> {
        if self.security.is_none() {
            return Err(ActionError::NoSecurity(d.name()));
        }
        let refused = |reason: String| ActionError::Refused {
            action: d.name(),
            reason,
        };
        self.account_security();
        self.version += 1;
        let now = self.now();
        match *d {
            Defence::Analyse { replica: r } => {
                self.check_replica(r, "analyse")?;
                let sec = self.security.as_deref_mut().expect("checked above");
                if sec.analysing(r) {
                    return Err(refused(format!("replica {r} is being analysed")));
                }
                *slot(&mut sec.analysing, r) = true;
                let at = now + SimTime::from_secs_f64(self.security_spec().analyse_s);
                let token = self.replicas[r].restarts;
                self.queue.push(
                    at,
                    Event::AnalyseDone {
                        replica: r as u32,
                        token,
                    },
                );
            }
            Defence::Isolate { replica: r } => {
                self.check_replica(r, "isolate")?;
                if self.replicas[r].isolated {
                    return Err(refused(format!("replica {r} is isolated already")));
                }
                self.replicas[r].isolated = true;
                self.remove_endpoint(r);
                if self.replicas[r].state != ReplicaState::Booting {
                    // Connections to it reset: its callers see the failure now.
                    self.drop_work(r);
                }
            }
            Defence::Release { replica: r } => {
                self.check_replica(r, "release")?;
                if !self.replicas[r].isolated {
                    return Err(refused(format!("replica {r} is not isolated")));
                }
                self.replicas[r].isolated = false;
                if self.replicas[r].state.is_serving() {
                    self.add_endpoint(r);
                }
            }
            Defence::Restore { replica: r } => {
                self.restart(r)?;
                let sec = self.security.as_deref_mut().expect("checked above");
                sec.totals.defender_restarts += 1;
            }
            Defence::Rotate { service: s } => {
                self.check_service(s)?;
                let sec = self.security.as_deref().expect("checked above");
                if sec.rotating(s, now) {
                    return Err(refused(format!("service {s} is still rotating")));
                }
                let live = self.live_replicas(s);
                let gap = self.scenario.spec.services[s].restart_time_s;
                for (i, &r) in live.iter().enumerate() {
                    let token = self.replicas[r].restarts;
                    self.queue.push(
                        now + SimTime::from_secs_f64(gap * i as f64),
                        Event::RollingRestart {
                            replica: r as u32,
                            token,
                        },
                    );
                }
                let sec = self.security.as_deref_mut().expect("checked above");
                sec.creds[s] = false;
                sec.rotating_until[s] = now + SimTime::from_secs_f64(gap * live.len() as f64);
            }
            Defence::Cut { edge } | Defence::Reconnect { edge } => {
                let workloads = self.scenario.spec.workload.len();
                if edge >= self.cut.len() {
                    return Err(refused(format!(
                        "no edge {edge} (the scenario has {})",
                        self.cut.len()
                    )));
                }
                if edge < workloads {
                    return Err(refused(format!(
                        "edge {edge} is a workload's way in: block the attacker at its entry instead"
                    )));
                }
                let cut = matches!(d, Defence::Cut { .. });
                if self.cut[edge] == cut {
                    let state = if cut { "cut already" } else { "not cut" };
                    return Err(refused(format!("edge {edge} is {state}")));
                }
                self.cut[edge] = cut;
            }
            Defence::Block { service: s } => {
                self.check_service(s)?;
                let model = parts(&self.scenario).0;
                if !model.entry.contains(&s) {
                    return Err(refused(format!(
                        "service {s} is not an entry (reachable from outside)"
                    )));
                }
                let sec = self.security.as_deref_mut().expect("checked above");
                if !sec.blockable(s) {
                    return Err(refused(format!(
                        "no attempt at service {s} from an address not blocked yet"
                    )));
                }
                sec.blocked_source[s] = sec.seen_source[s];
            }
            Defence::Decoy { service: s } => {
                self.check_service(s)?;
                let max = self.security_spec().max_decoys;
                let sec = self.security.as_deref_mut().expect("checked above");
                if sec.decoys[s] >= max {
                    return Err(refused(format!("service {s} has its {max} decoys already")));
                }
                sec.decoys[s] += 1;
            }
        }
        self.refresh_intrusion_effects();
        Ok(())
    }

    /// What the monitoring reported since the last call (alerts, anomalies,
    /// authentication failures, decoy hits); `None` without an attacker started.
    pub fn take_signals(&mut self) -> Option<Signals> {
        self.security.as_ref()?;
        self.account_security();
        let now = self.now();
        let sc = self.scenario.clone();
        let spec = parts(&sc).1;
        let (n, n_services) = (self.replicas.len(), self.services.len());
        let sec = self.security.as_deref_mut().expect("checked above");
        let dt = now.saturating_sub(sec.signals_since).as_secs_f64();
        sec.signals_since = now;
        let step_key = rng::key(sec.noise_key, now.as_micros());
        let mut alerts = std::mem::take(&mut sec.alerts);
        alerts.resize(n, 0);
        let mut anomaly = vec![0.0f32; n];
        for r in 0..n {
            let rep = &self.replicas[r];
            if !rep.state.is_serving() {
                continue;
            }
            let k = rng::key(step_key, r as u64);
            let false_alerts = poisson(spec.false_alerts_per_hour / 3600.0 * dt, k);
            alerts[r] += false_alerts;
            sec.totals.false_alerts += false_alerts as u64;
            let miner = if rep.steal > 1.0 { 1.0 } else { 0.0 };
            anomaly[r] = (miner + 0.35 * rng::normal_from(rng::key(k, 1))) as f32;
        }
        let mut auth_failures = std::mem::replace(&mut sec.auth_failures, vec![0; n_services]);
        for (s, a) in auth_failures.iter_mut().enumerate() {
            let k = rng::key(step_key, (1 << 32) | s as u64);
            *a += poisson(spec.auth_noise_per_min / 60.0 * dt, k);
        }
        let decoy_hits = std::mem::replace(&mut sec.decoy_hits, vec![0; n_services]);
        Some(Signals {
            alerts,
            anomaly,
            auth_failures,
            decoy_hits,
        })
    }

    pub(crate) fn on_alert(&mut self, r: ReplicaId) {
        if let Some(sec) = self.security.as_deref_mut() {
            *slot(&mut sec.alerts, r) += 1;
            sec.totals.true_alerts += 1;
        }
    }

    pub(crate) fn on_analyse_done(&mut self, r: ReplicaId, token: u32) {
        let live = self.replicas[r].state.is_live() && self.replicas[r].restarts == token;
        if let Some(sec) = self.security.as_deref_mut()
            && sec.analysing(r)
        {
            sec.analysing[r] = false;
            if live {
                let p = sec.foothold(r);
                *slot(&mut sec.revealed, r) = Some(p);
            }
        }
    }

    pub(crate) fn on_rolling_restart(&mut self, r: ReplicaId, token: u32) {
        if self.replicas[r].restarts != token || !self.replicas[r].state.is_live() {
            return;
        }
        if self.restart(r).is_ok()
            && let Some(sec) = self.security.as_deref_mut()
        {
            sec.totals.defender_restarts += 1;
        }
    }

    /// The attacker's move.
    pub(crate) fn on_attack(&mut self) {
        self.account_security();
        let Some(mut sec) = self.security.take() else {
            return;
        };
        let sc = self.scenario.clone();
        let (model, spec) = parts(&sc);
        let usable = |sec: &Intrusions, r: ReplicaId, p: Privilege| {
            sec.foothold(r) == p && {
                let rep = &self.replicas[r];
                rep.state.is_live() && !rep.isolated
            }
        };
        let owned: Vec<ReplicaId> = (0..sec.foothold.len())
            .filter(|&r| sec.foothold[r] != Privilege::None)
            .collect();
        // Root reads the container's secrets: its service's and its callees'.
        for &r in &owned {
            if usable(&sec, r, Privilege::Root) {
                let s = self.replicas[r].service;
                sec.creds[s] = true;
                for &e in &sc.out_edges[s] {
                    sec.creds[sc.edges[e].to] = true;
                }
            }
        }
        let users: Vec<ReplicaId> = owned
            .iter()
            .copied()
            .filter(|&r| usable(&sec, r, Privilege::User))
            .collect();
        let roots: Vec<ReplicaId> = owned
            .iter()
            .copied()
            .filter(|&r| usable(&sec, r, Privilege::Root))
            .collect();
        let hops = |r: ReplicaId| model.hops_to_data[self.replicas[r].service];
        let mv = if !users.is_empty() {
            // Escalate: B_line the shell nearest the data, Meander any.
            let r = match sec.kind {
                AttackerKind::BLine => *users.iter().min_by_key(|&&r| (hops(r), r)).expect("some"),
                _ => users[sec.stream.below(users.len())],
            };
            let s = self.replicas[r].service;
            let success = sec.stream.unit() < model.escalation[s];
            if success {
                sec.foothold[r] = Privilege::Root;
                self.detect(&mut sec, r, spec.detect_escalation, spec.detect_delay_s);
            }
            Move {
                kind: MoveKind::Escalate,
                replica: Some(r),
                service: Some(s),
                success,
            }
        } else {
            let at_goal = sec.kind == AttackerKind::BLine
                && roots.iter().any(|&r| model.data[self.replicas[r].service]);
            let mut targets = if at_goal {
                Vec::new()
            } else {
                self.reachable(&sec, &roots)
            };
            if sec.kind == AttackerKind::BLine && !targets.is_empty() {
                let aim_hops = |(a, _): &(Aim, Via)| match *a {
                    Aim::Replica(q) => model.hops_to_data[self.replicas[q].service],
                    Aim::Decoy(s) => model.hops_to_data[s],
                };
                let best = targets.iter().map(aim_hops).min().expect("some");
                targets.retain(|t| aim_hops(t) == best);
            }
            if sec.kind == AttackerKind::Meander && !targets.is_empty() {
                let zone_of = |(a, _): &(Aim, Via)| match *a {
                    Aim::Replica(q) => self.replicas[q].host.map(|h| self.hosts[h].zone),
                    Aim::Decoy(_) => None,
                };
                let here: Vec<(Aim, Via)> = targets
                    .iter()
                    .copied()
                    .filter(|t| sec.zone.is_some() && zone_of(t) == sec.zone)
                    .collect();
                if here.is_empty() {
                    let pick = targets[sec.stream.below(targets.len())];
                    if let Some(z) = zone_of(&pick) {
                        sec.zone = Some(z);
                    }
                } else {
                    targets = here;
                }
            }
            if at_goal {
                Move {
                    kind: MoveKind::Wait,
                    replica: None,
                    service: None,
                    success: false,
                }
            } else if !targets.is_empty() {
                let (aim, via) = targets[sec.stream.below(targets.len())];
                self.attempt(&mut sec, aim, via)
            } else if roots.is_empty() {
                self.enter(&mut sec)
            } else {
                Move {
                    kind: MoveKind::Wait,
                    replica: None,
                    service: None,
                    success: false,
                }
            }
        };
        sec.totals.moves += 1;
        sec.totals.successes += mv.success as u64;
        sec.last_move = Some(mv);
        let dt = sec.stream.exp(spec.attack_interval_s);
        self.security = Some(sec);
        self.refresh_intrusion_effects();
        let at = self.now() + SimTime::from_secs_f64(dt);
        self.queue.push(at, Event::Attack);
    }

    /// Replicas (and decoys) the attacker can try from its root shells.
    fn reachable(&self, sec: &Intrusions, roots: &[ReplicaId]) -> Vec<(Aim, Via)> {
        let sc = &self.scenario;
        let fresh = |q: ReplicaId| {
            let rep = &self.replicas[q];
            sec.foothold(q) == Privilege::None && rep.state.is_serving() && !rep.isolated
        };
        let mut out = Vec::new();
        for &r in roots {
            let s = self.replicas[r].service;
            for &e in &sc.out_edges[s] {
                if self.cut[e] {
                    continue;
                }
                let t = sc.edges[e].to;
                for &q in &self.services[t].endpoints {
                    if fresh(q) && !out.contains(&(Aim::Replica(q), Via::Call)) {
                        out.push((Aim::Replica(q), Via::Call));
                    }
                }
                if sec.decoys[t] > 0 && !out.contains(&(Aim::Decoy(t), Via::Call)) {
                    out.push((Aim::Decoy(t), Via::Call));
                }
            }
            if let Some(h) = self.replicas[r].host {
                for q in 0..self.replicas.len() {
                    if q != r
                        && self.replicas[q].host == Some(h)
                        && fresh(q)
                        && !out.iter().any(|&(a, _)| a == Aim::Replica(q))
                    {
                        out.push((Aim::Replica(q), Via::Host));
                    }
                }
            }
        }
        out
    }

    /// An attempt from outside, at an entry service (one where the attacker has not
    /// found its address blocked, if there is one).
    fn enter(&mut self, sec: &mut Intrusions) -> Move {
        let model = parts(&self.scenario).0;
        // The attacker's address moves on at exponential times of its own.
        let now = self.now();
        let spec = self.security_spec();
        while sec.source_changes_at <= now {
            let k = rng::key(sec.source_key, u64::from(sec.source));
            sec.source += 1;
            sec.source_changes_at += SimTime::from_secs_f64(rng::exp_from(k, spec.source_change_s));
        }
        let open: Vec<usize> = model
            .entry
            .iter()
            .copied()
            .filter(|&s| sec.found_blocked[s] != Some(sec.source))
            .collect();
        let entries = if open.is_empty() { &model.entry } else { &open };
        let s = match sec.kind {
            AttackerKind::BLine => *entries
                .iter()
                .min_by_key(|&&s| (model.hops_to_data[s], s))
                .expect("validated: at least one entry"),
            _ => entries[sec.stream.below(entries.len())],
        };
        sec.seen_source[s] = Some(sec.source);
        if sec.blocks_attacker(s) {
            sec.found_blocked[s] = Some(sec.source);
            sec.auth_failures[s] += 1;
            return Move {
                kind: MoveKind::Blocked,
                replica: None,
                service: Some(s),
                success: false,
            };
        }
        let mut aims: Vec<Aim> = self.services[s]
            .endpoints
            .iter()
            .copied()
            .filter(|&q| sec.foothold(q) == Privilege::None && !self.replicas[q].isolated)
            .map(Aim::Replica)
            .collect();
        if sec.decoys[s] > 0 {
            aims.push(Aim::Decoy(s));
        }
        if aims.is_empty() {
            return Move {
                kind: MoveKind::Wait,
                replica: None,
                service: Some(s),
                success: false,
            };
        }
        let aim = aims[sec.stream.below(aims.len())];
        self.attempt(sec, aim, Via::Outside)
    }

    /// One attempt on a replica or decoy.
    fn attempt(&mut self, sec: &mut Intrusions, aim: Aim, via: Via) -> Move {
        let sc = self.scenario.clone();
        let (model, spec) = parts(&sc);
        let q = match aim {
            Aim::Decoy(s) => {
                sec.decoy_hits[s] += 1;
                sec.totals.decoy_hits += 1;
                return Move {
                    kind: MoveKind::Decoy,
                    replica: None,
                    service: Some(s),
                    success: false,
                };
            }
            Aim::Replica(q) => q,
        };
        let t = self.replicas[q].service;
        let (kind, p, gives, detect) = match via {
            Via::Host => (
                MoveKind::Escape,
                spec.host_escape,
                Privilege::Root,
                spec.detect_exploit,
            ),
            _ if sec.creds[t] => (
                MoveKind::Login,
                spec.login_success,
                Privilege::User,
                spec.detect_login,
            ),
            _ => (
                MoveKind::Exploit,
                model.exploitability[t],
                model.privilege[t],
                spec.detect_exploit,
            ),
        };
        let success = sec.stream.unit() < p;
        if success {
            *slot(&mut sec.foothold, q) = gives;
            self.detect(sec, q, detect, spec.detect_delay_s);
        } else {
            sec.auth_failures[t] += 1;
        }
        Move {
            kind,
            replica: Some(q),
            service: Some(t),
            success,
        }
    }

    /// With probability `p`, an alert about replica `r` after an exponential delay.
    fn detect(&mut self, sec: &mut Intrusions, r: ReplicaId, p: f64, mean_delay_s: f64) {
        let (u, delay) = (sec.stream.unit(), sec.stream.exp(mean_delay_s));
        if u < p {
            let at = self.now() + SimTime::from_secs_f64(delay);
            self.queue.push(at, Event::Alert { replica: r as u32 });
        }
    }
}
