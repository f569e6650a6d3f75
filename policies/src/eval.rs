//! Evaluation's bookkeeping: what an episode is scored on, step by step
//! ([`Recorder`]), the per-episode table ([`COLUMNS`]) and the paired comparison of
//! policies run on the same seeds ([`summarise`]). `hale eval`, `hale bench` and the
//! Python package's `hale.evaluate` all use it, so they report the same figures.

use crate::stats;
use crate::{PolicySource, PolicySpec};
use hale_envs::{EnvError, Info, Usage};
use serde::Serialize;
use serde_json::{Value as Json, json};
use std::path::Path;

/// One step of an episode's timeline (cloud envs).
#[derive(Clone, Debug, Default)]
pub struct Point {
    /// End of the step, simulated seconds from the episode's start.
    pub t_s: f64,
    /// External requests per second arriving in the step.
    pub load_rps: f64,
    /// Desired replicas, summed over services.
    pub replicas: u32,
    /// Desired replicas per service (scenario order).
    pub desired: Vec<u32>,
    /// Cores requested by live replicas (mean over the step).
    pub cores: f64,
    /// Hosts billed at the end of the step.
    pub hosts: u32,
    /// The step's host bill.
    pub bill: f64,
    /// The user-facing p95, ms (last scrape).
    pub p95_ms: f64,
    /// SLO-violation seconds in the step, summed over SLOs.
    pub slo_violation_s: f64,
    /// Faults open at the end of the step.
    pub faults_open: u32,
    /// Faults that began in the step.
    pub faults_started: u32,
    /// Faults resolved in the step.
    pub faults_resolved: u32,
    /// Whether the policy changed anything.
    pub acted: bool,
    /// The healer's remedy in the step (`restart`, `rollback`, …), if it acted.
    pub remedy: Option<&'static str>,
}

/// The figures of one episode.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Episode {
    /// The policy's label.
    pub policy: String,
    /// The episode's index (0, 1, …).
    pub episode: usize,
    /// Its seed.
    pub seed: u64,
    /// The undiscounted return.
    pub episode_return: f64,
    /// Steps taken.
    pub steps: u64,
    /// The host bill.
    pub cost: f64,
    /// Cores requested by live replicas × hours.
    pub core_hours: f64,
    /// SLO-violation minutes, summed over SLOs.
    pub slo_violation_min: f64,
    /// The user-facing p95 latency, ms, weighted by requests.
    pub p95_ms: f64,
    /// The user-facing p99 latency, ms, weighted by requests.
    pub p99_ms: f64,
    /// Autopilot's CPU slack: 1 − core-seconds used / core-seconds requested.
    pub cpu_slack: f64,
    /// The same for memory (MiB-seconds).
    pub memory_slack: f64,
    /// 1 − busy slots / ready slots, averaged over steps.
    pub slot_slack: f64,
    /// CPU slack per service (scenario order).
    #[serde(skip)]
    pub cpu_slack_by_service: Vec<f64>,
    /// External requests that arrived.
    pub requests: f64,
    /// Of those, the ones not served.
    pub unserved: f64,
    /// 1 − unserved / requests.
    pub availability: f64,
    /// Mean time to recovery, seconds; a fault still open at the end counts with its
    /// age then (a lower bound). NaN without faults.
    pub mttr_s: f64,
    /// Faults resolved in the episode.
    pub faults_resolved: u64,
    /// Faults still open at its end.
    pub faults_open: u64,
    /// Spot hosts the provider reclaimed.
    pub spot_reclaims: u64,
    /// Live replicas deleted to be recreated elsewhere.
    pub evictions: u64,
    /// Security-v0: the reward's confidentiality term, summed.
    pub reward_confidentiality: f64,
    /// Security-v0: its availability term (the operational server's impact), summed.
    pub reward_availability: f64,
    /// Security-v0 (cloud mode): the reward's SLO term, summed.
    pub reward_slo: f64,
    /// Security-v0 (cloud mode): data exfiltrated, MB.
    pub exfiltrated_mb: f64,
    /// Security-v0: restores (cloud mode: replica restarts the defender caused).
    pub restores: u64,
    /// Security-v0: hosts (cloud mode: replicas) the attacker held (besides CAGE 2's
    /// way in), summed over steps.
    pub compromised_host_steps: u64,
    /// Security-v0: of those, hosts where it was root.
    pub privileged_host_steps: u64,
    /// Security-v0 in cloud mode: replica-minutes the attacker held (0 in CAGE 2
    /// mode, which has no clock).
    pub compromised_replica_min: f64,
    /// CloudOps-v0: the team reward's host-bill term, summed.
    pub team_cost: f64,
    /// CloudOps-v0: its SLO term.
    pub team_slo: f64,
    /// CloudOps-v0: its unserved term.
    pub team_unserved: f64,
    /// CloudOps-v0: its security term.
    pub team_security: f64,
    /// CloudOps-v0: its action costs.
    pub team_actions: f64,
    /// CloudOps-v0's ledger: desired counts reversed within the window.
    pub flip_flops: u64,
    /// Replicas restarted by one agent soon after another.
    pub double_restarts: u64,
    /// Replicas acted on, then scaled away, in one step.
    pub removed_targets: u64,
    /// Isolations another agent undid.
    pub isolations_undone: u64,
    /// The scaler's recent replicas on hosts the optimiser consolidated.
    pub consolidation_fights: u64,
    /// CPU requests and replica counts moved against each other.
    pub size_fights: u64,
    /// Cost-v0 (and CloudOps-v0's optimiser): spot hosts' share of live host-steps.
    pub spot_share: f64,
    /// Hosts the optimiser set to consolidate.
    pub consolidations: u64,
    /// OOM kills (replicas at their memory limit or on a host under memory pressure).
    pub oom_kills: u64,
    /// Steps in which the policy changed something.
    pub actions: u64,
    /// Step by step (cloud envs).
    #[serde(skip)]
    pub timeline: Vec<Point>,
}

/// A column of the per-episode tables: its name, its label in the printed table
/// (`None`: in the files only), whether it is a count, and how to read it.
pub struct Column {
    /// The column's name in episodes.csv and in summaries.
    pub name: &'static str,
    /// Its label in printed tables; `None`: in the files only, not summarised.
    pub label: Option<&'static str>,
    /// Whether it counts things (an integer column).
    pub count: bool,
    /// The envs it describes (files keep every column; summaries and tables show
    /// the ones that describe the env).
    pub scope: Scope,
    /// How to read it off an episode.
    pub get: fn(&Episode) -> f64,
}

/// Which envs a [`Column`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every env (return, actions).
    Any,
    /// The cloud envs (Scaling-v0, Healing-v0): bill, SLOs, latency, faults.
    Cloud,
    /// Security-v0: the defence reward's parts, the attacker's hold.
    Security,
    /// The cloud envs and Security-v0 (whose cloud mode serves a load): SLOs and
    /// unserved requests.
    Ops,
    /// Multi-agent CloudOps-v0: the team reward's terms and the conflict ledger (it
    /// also has every cloud and security column).
    Team,
    /// Cost-v0: the host mix, consolidations and OOM kills (it also has every cloud
    /// column).
    Cost,
}

impl Scope {
    /// The kind of env `env_id` is.
    pub fn of(env_id: &str) -> Scope {
        match env_id {
            "Scaling-v0" | "Healing-v0" => Scope::Cloud,
            "Security-v0" => Scope::Security,
            "CloudOps-v0" => Scope::Team,
            "Cost-v0" => Scope::Cost,
            _ => Scope::Any,
        }
    }

    /// Whether a column of this scope describes an env of kind `env`.
    pub fn covers(self, env: Scope) -> bool {
        self == Scope::Any
            || self == env
            || (self == Scope::Ops && matches!(env, Scope::Cloud | Scope::Security))
            || (env == Scope::Cost && matches!(self, Scope::Cloud | Scope::Ops))
            || env == Scope::Team
    }
}

const fn metric(
    name: &'static str,
    label: &'static str,
    scope: Scope,
    get: fn(&Episode) -> f64,
) -> Column {
    Column {
        name,
        label: Some(label),
        count: false,
        scope,
        get,
    }
}

const fn count(
    name: &'static str,
    label: Option<&'static str>,
    scope: Scope,
    get: fn(&Episode) -> f64,
) -> Column {
    Column {
        name,
        label,
        count: true,
        scope,
        get,
    }
}

use Scope::{Any, Cloud, Cost, Ops, Security, Team};

/// Every numeric column of episodes.csv and episodes.parquet, in order (after
/// `policy`); those with a label are summarised and compared.
pub const COLUMNS: &[Column] = &[
    count("episode", None, Any, |e| e.episode as f64),
    count("seed", None, Any, |e| e.seed as f64),
    metric("episode_return", "return", Any, |e| e.episode_return),
    count("steps", None, Any, |e| e.steps as f64),
    metric("cost", "host cost", Cloud, |e| e.cost),
    metric("core_hours", "core-hours", Cloud, |e| e.core_hours),
    metric("slo_violation_min", "SLO-viol. min", Ops, |e| {
        e.slo_violation_min
    }),
    metric("p95_ms", "p95 ms", Cloud, |e| e.p95_ms),
    metric("p99_ms", "p99 ms", Cloud, |e| e.p99_ms),
    metric("cpu_slack", "CPU slack", Cloud, |e| e.cpu_slack),
    metric("memory_slack", "memory slack", Cloud, |e| e.memory_slack),
    metric("slot_slack", "slot slack", Cloud, |e| e.slot_slack),
    Column {
        name: "requests",
        label: None,
        count: false,
        scope: Cloud,
        get: |e| e.requests,
    },
    metric("unserved", "unserved req.", Ops, |e| e.unserved),
    metric("availability", "availability", Cloud, |e| e.availability),
    metric("mttr_s", "MTTR s", Cloud, |e| e.mttr_s),
    count("faults_resolved", None, Cloud, |e| e.faults_resolved as f64),
    count("faults_open", None, Cloud, |e| e.faults_open as f64),
    // The defence reward: CAGE 2's (confidentiality, impact, −1 per restore), without
    // cloud mode's SLO term; in CAGE 2 mode it is the return.
    metric("reward_defence", "defence reward", Security, |e| {
        e.reward_confidentiality + e.reward_availability - e.restores as f64
    }),
    metric("reward_confidentiality", "confidentiality", Security, |e| {
        e.reward_confidentiality
    }),
    metric("reward_availability", "impact", Security, |e| {
        e.reward_availability
    }),
    metric("reward_slo", "SLO term", Security, |e| e.reward_slo),
    metric("exfiltrated_mb", "exfiltrated MB", Security, |e| {
        e.exfiltrated_mb
    }),
    count("restores", Some("restores"), Security, |e| {
        e.restores as f64
    }),
    // A node is a CAGE 2 host, or a replica in cloud mode.
    count(
        "compromised_host_steps",
        Some("held node·steps"),
        Security,
        |e| e.compromised_host_steps as f64,
    ),
    count(
        "privileged_host_steps",
        Some("root node·steps"),
        Security,
        |e| e.privileged_host_steps as f64,
    ),
    metric(
        "compromised_replica_min",
        "held replica·min",
        Security,
        |e| e.compromised_replica_min,
    ),
    metric("team_cost", "team: bill term", Team, |e| e.team_cost),
    metric("team_slo", "team: SLO term", Team, |e| e.team_slo),
    metric("team_unserved", "team: unserved term", Team, |e| {
        e.team_unserved
    }),
    metric("team_security", "team: security term", Team, |e| {
        e.team_security
    }),
    metric("team_actions", "team: action costs", Team, |e| {
        e.team_actions
    }),
    count("conflicts", Some("conflicts"), Team, |e| {
        (e.flip_flops
            + e.double_restarts
            + e.removed_targets
            + e.isolations_undone
            + e.consolidation_fights
            + e.size_fights) as f64
    }),
    count("flip_flops", Some("  flip-flops"), Team, |e| {
        e.flip_flops as f64
    }),
    count("double_restarts", Some("  double restarts"), Team, |e| {
        e.double_restarts as f64
    }),
    count("removed_targets", Some("  removed targets"), Team, |e| {
        e.removed_targets as f64
    }),
    count(
        "isolations_undone",
        Some("  isolations undone"),
        Team,
        |e| e.isolations_undone as f64,
    ),
    count(
        "consolidation_fights",
        Some("  consolidation fights"),
        Team,
        |e| e.consolidation_fights as f64,
    ),
    count("size_fights", Some("  size fights"), Team, |e| {
        e.size_fights as f64
    }),
    count("evictions", Some("evictions"), Cloud, |e| {
        e.evictions as f64
    }),
    count("spot_reclaims", Some("spot reclaims"), Cloud, |e| {
        e.spot_reclaims as f64
    }),
    metric("spot_share", "spot share", Cost, |e| e.spot_share),
    count("consolidations", Some("consolidations"), Cost, |e| {
        e.consolidations as f64
    }),
    count("oom_kills", Some("OOM kills"), Cost, |e| e.oom_kills as f64),
    count("actions", Some("actions"), Any, |e| e.actions as f64),
];

/// The columns that are summarised for env `env_id` (those with a label that describe
/// it), with their labels.
pub fn metrics_for(
    env_id: &str,
) -> impl Iterator<Item = (&'static str, &'static str, fn(&Episode) -> f64)> {
    let env = Scope::of(env_id);
    COLUMNS
        .iter()
        .filter(move |c| c.scope.covers(env))
        .filter_map(|c| c.label.map(|l| (c.name, l, c.get)))
}

/// 1 − used / requested, or NaN where nothing was requested.
fn slack(used: f64, requested: f64) -> f64 {
    if requested > 0.0 {
        1.0 - used / requested
    } else {
        f64::NAN
    }
}

/// Scores one episode as it is played: [`Recorder::record`] each step's reward and
/// info, then [`Recorder::finish`].
#[derive(Clone, Debug)]
pub struct Recorder {
    e: Episode,
    p95_weight: f64,
    ttr_sum: f64,
    open_age: f64,
    usage: Usage,
}

impl Recorder {
    /// Starts episode `episode` of policy `policy`, played on `seed`.
    pub fn new(policy: &str, episode: usize, seed: u64) -> Recorder {
        Recorder {
            e: Episode {
                policy: policy.into(),
                episode,
                seed,
                ..Default::default()
            },
            p95_weight: 0.0,
            ttr_sum: 0.0,
            open_age: 0.0,
            usage: Usage::default(),
        }
    }

    /// Steps recorded so far.
    pub fn steps(&self) -> u64 {
        self.e.steps
    }

    /// Adds a step: its reward and its info.
    pub fn record(&mut self, reward: f64, info: &Info) {
        let e = &mut self.e;
        let add = |total: &mut Vec<f64>, step: &[f64]| {
            total.resize(step.len().max(total.len()), 0.0);
            for (t, s) in total.iter_mut().zip(step) {
                *t += s;
            }
        };
        e.steps += 1;
        e.episode_return += reward;
        if let Some(c) = &info.cloud {
            e.cost += c.cost;
            e.core_hours += c.core_hours;
            e.slo_violation_min += c.slo_violation_s / 60.0;
            e.requests += c.requests;
            e.unserved += c.unserved;
            e.spot_reclaims += u64::from(c.spot_reclaims);
            e.evictions += u64::from(c.evictions);
            // Before the first scrape there is no percentile: it weighs nothing.
            e.p95_ms += c.p95_ms.unwrap_or(0.0) * c.requests;
            e.p99_ms += c.p99_ms.unwrap_or(0.0) * c.requests;
            self.p95_weight += c.requests;
            e.slot_slack += c.slot_slack.unwrap_or(0.0);
            let usage = &mut self.usage;
            add(&mut usage.cpu_used_core_s, &c.usage.cpu_used_core_s);
            add(
                &mut usage.cpu_requested_core_s,
                &c.usage.cpu_requested_core_s,
            );
            add(&mut usage.memory_used_mib_s, &c.usage.memory_used_mib_s);
            add(
                &mut usage.memory_requested_mib_s,
                &c.usage.memory_requested_mib_s,
            );
            for t in &c.ttr_s {
                self.ttr_sum += t;
                e.faults_resolved += 1;
            }
            // The last step's open faults are those the episode ends with.
            (e.faults_open, self.open_age) = (u64::from(c.faults_open), c.open_fault_age_s);
        }
        if let Some(d) = &info.security {
            e.reward_confidentiality += d.reward_confidentiality;
            e.reward_availability += d.reward_availability;
            e.reward_slo += d.reward_slo;
            e.exfiltrated_mb += d.exfiltrated_mb;
            e.restores += u64::from(d.restarts);
            e.compromised_host_steps += u64::from(d.footholds);
            if let Some(c) = &info.cloud {
                e.compromised_replica_min += f64::from(d.footholds) * c.step_s / 60.0;
            }
            e.privileged_host_steps += u64::from(d.privileged);
        }
        if let Some(t) = &info.cloudops {
            e.team_cost += t.team_cost;
            e.team_slo += t.team_slo;
            e.team_unserved += t.team_unserved;
            e.team_security += t.team_security;
            e.team_actions += t.team_actions;
            let l = &t.ledger;
            e.flip_flops += u64::from(l.flip_flops);
            e.double_restarts += u64::from(l.double_restarts);
            e.removed_targets += u64::from(l.removed_targets);
            e.isolations_undone += u64::from(l.isolations_undone);
            e.consolidation_fights += u64::from(l.consolidation_fights);
            e.size_fights += u64::from(l.size_fights);
        }
        if let Some(c) = &info.cost {
            let live = f64::from(c.spot_hosts + c.on_demand_hosts);
            // A running sum here; divided by the steps when the episode ends.
            e.spot_share += if live > 0.0 {
                f64::from(c.spot_hosts) / live
            } else {
                0.0
            };
            e.consolidations += u64::from(c.consolidations);
            e.oom_kills += c.oom_kills;
        }
        let acted = info.scaling.as_ref().is_some_and(|t| t.scaling_changes > 0)
            || info.cost.as_ref().is_some_and(|c| c.cost_changes > 0)
            || info.healing.as_ref().is_some_and(|h| h.acted())
            || info.security.as_ref().is_some_and(|d| d.acted)
            || info.cloudops.as_ref().is_some_and(|t| t.agent_acted);
        e.actions += u64::from(acted);
        if let Some(c) = &info.cloud {
            let last = e.timeline.last();
            let t_s = last.map_or(0.0, |p| p.t_s) + c.step_s;
            let was_open = last.map_or(0, |p| p.faults_open);
            let resolved = c.ttr_s.len() as u32;
            let per_s = |x: f64| if c.step_s > 0.0 { x / c.step_s } else { 0.0 };
            e.timeline.push(Point {
                t_s,
                load_rps: per_s(c.requests),
                replicas: c.desired.iter().sum(),
                desired: c.desired.clone(),
                cores: per_s(c.core_hours * 3600.0),
                hosts: c.hosts,
                bill: c.cost,
                p95_ms: c.p95_ms.unwrap_or(0.0),
                slo_violation_s: c.slo_violation_s,
                faults_open: c.faults_open,
                faults_started: (c.faults_open + resolved).saturating_sub(was_open),
                faults_resolved: resolved,
                acted,
                remedy: info
                    .healing
                    .as_ref()
                    .filter(|h| h.acted() && h.refused.is_none())
                    .map(|h| h.remedy),
            });
        }
    }

    /// The episode's figures.
    pub fn finish(self) -> Episode {
        let Recorder {
            mut e,
            p95_weight,
            ttr_sum,
            open_age,
            usage,
        } = self;
        if p95_weight > 0.0 {
            e.p95_ms /= p95_weight;
            e.p99_ms /= p95_weight;
        }
        e.slot_slack /= e.steps.max(1) as f64;
        e.spot_share /= e.steps.max(1) as f64;
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        e.cpu_slack = slack(
            sum(&usage.cpu_used_core_s),
            sum(&usage.cpu_requested_core_s),
        );
        e.memory_slack = slack(
            sum(&usage.memory_used_mib_s),
            sum(&usage.memory_requested_mib_s),
        );
        e.cpu_slack_by_service = usage
            .cpu_used_core_s
            .iter()
            .zip(&usage.cpu_requested_core_s)
            .map(|(&u, &r)| slack(u, r))
            .collect();
        e.availability = if e.requests > 0.0 {
            1.0 - e.unserved / e.requests
        } else {
            1.0
        };
        // A fault still open at the end counts with its age then, a lower bound of its
        // time to recovery: leaving faults unresolved does not shorten the mean. No
        // fault at all: no MTTR (left out of means rather than counted as 0).
        let faults = e.faults_resolved + e.faults_open;
        e.mttr_s = if faults > 0 {
            (ttr_sum + open_age) / faults as f64
        } else {
            f64::NAN
        };
        e
    }
}

/// The paired comparison of policies run on env `env_id` on the same seeds: per
/// policy (`policies`, in order; `by[p]` its episodes, in seed order) the mean and
/// 95 % CI of every summarised metric that describes the env (and CPU slack per
/// service, named by `services`), and each policy's paired difference against the
/// first, with the unpaired (Welch) interval beside it for comparison.
pub fn summarise(
    env_id: &str,
    policies: &[String],
    by: &[Vec<&Episode>],
    services: &[String],
) -> Json {
    let col =
        |p: usize, get: fn(&Episode) -> f64| -> Vec<f64> { by[p].iter().map(|e| get(e)).collect() };
    let mut per_policy = serde_json::Map::new();
    for (p, name) in policies.iter().enumerate() {
        let mut m = serde_json::Map::new();
        for (k, _, get) in metrics_for(env_id) {
            let (mean, hw) = stats::mean_ci(&col(p, get));
            m.insert(k.into(), json!({"mean": mean, "ci95": hw}));
        }
        // Per service, where the env has services.
        let mut per_service = serde_json::Map::new();
        for (s, service) in services.iter().enumerate() {
            let v: Vec<f64> = by[p]
                .iter()
                .map(|e| e.cpu_slack_by_service.get(s).copied().unwrap_or(f64::NAN))
                .collect();
            let (mean, hw) = stats::mean_ci(&v);
            per_service.insert(service.clone(), json!({"mean": mean, "ci95": hw}));
        }
        if !per_service.is_empty() {
            m.insert("cpu_slack_by_service".into(), Json::Object(per_service));
        }
        per_policy.insert(name.clone(), Json::Object(m));
    }
    let mut diffs = serde_json::Map::new();
    for (p, name) in policies.iter().enumerate().skip(1) {
        let mut m = serde_json::Map::new();
        for (k, _, get) in metrics_for(env_id) {
            let (d, hw) = stats::paired(&col(0, get), &col(p, get));
            let (_, hw_unpaired) = stats::welch(&col(0, get), &col(p, get));
            m.insert(
                k.into(),
                json!({"diff": d, "ci95_paired": hw, "ci95_unpaired": hw_unpaired}),
            );
        }
        diffs.insert(format!("{name} - {}", policies[0]), Json::Object(m));
    }
    json!({"policies": per_policy, "paired_differences": diffs})
}

/// An episode that could not be played to its end: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{policy} on {env}, seed {seed}, step {step}: {reason}")]
pub struct PlayError {
    /// The policy's label.
    pub policy: String,
    /// The env's id.
    pub env: String,
    /// The episode's seed.
    pub seed: u64,
    /// The step that failed (0: the reset).
    pub step: u64,
    /// What went wrong: the policy's or the env's error.
    pub reason: String,
}

/// Plays one episode on `env` from `seed` (episode `episode` of policy `label`),
/// choosing each action with `act(obs, mask)`, and scores it; the env is closed at
/// the end. `act` is a [`Policy`](crate::Policy)'s `act`, or anything else that
/// chooses (a Python callable, in the Python package).
pub fn play(
    env: &mut dyn hale_envs::Env,
    label: &str,
    (episode, seed): (usize, u64),
    mut act: impl FnMut(&hale_envs::Value, Option<&[bool]>) -> Result<hale_envs::Value, String>,
) -> Result<Episode, PlayError> {
    let mut rec = Recorder::new(label, episode, seed);
    let id = env.id().to_string();
    let fail = |step: u64, reason: String| PlayError {
        policy: label.into(),
        env: id.clone(),
        seed,
        step,
        reason,
    };
    let (mut obs, _) = env
        .reset(Some(seed), None)
        .map_err(|e| fail(0, e.to_string()))?;
    loop {
        let action = act(&obs, env.action_mask()).map_err(|e| fail(rec.steps(), e))?;
        let s = env
            .step(&action)
            .map_err(|e| fail(rec.steps(), e.to_string()))?;
        rec.record(s.reward, &s.info);
        obs = s.obs;
        if s.terminated || s.truncated {
            break;
        }
    }
    env.close();
    Ok(rec.finish())
}

/// Why policies cannot be evaluated together on an env config. Each variant names the
/// bundle and the field or scenario at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The env config is not a JSON object.
    #[error("the env config must be a JSON object, got {0}")]
    NotAnObject(Json),
    /// A bundle was trained under a value the config (or another bundle) contradicts.
    #[error(
        "bundle {dir} was trained with env_config.{field} = {trained}, but {set_by} sets \
         {given}: evaluate it on the env it was trained for (leave {field} out to take the \
         bundle's)"
    )]
    Contradicts {
        /// The bundle's folder.
        dir: String,
        /// The config field.
        field: String,
        /// The bundle's value, as JSON.
        trained: String,
        /// The value given, as JSON.
        given: String,
        /// Who gave it (the caller's config, or another bundle).
        set_by: String,
    },
    /// A bundle was trained on a scenario with other services.
    #[error(
        "bundle {dir} was trained on scenario {trained}, whose services are [{theirs}]; \
         {ours} has [{mine}]: a policy drives the services it was trained on (pass \
         --scenario {trained}, or leave --scenario out to take the bundle's)"
    )]
    Services {
        /// The bundle's folder.
        dir: String,
        /// Its training scenario.
        trained: String,
        /// The scenario asked for.
        ours: String,
        /// The training scenario's services, comma-separated.
        theirs: String,
        /// The asked scenario's services.
        mine: String,
    },
    /// A bundle was trained on a scenario whose services call each other otherwise.
    #[error(
        "bundle {dir} was trained on scenario {trained}; {ours} has the same services but \
         other calls between them"
    )]
    Calls {
        /// The bundle's folder.
        dir: String,
        /// Its training scenario.
        trained: String,
        /// The scenario asked for.
        ours: String,
    },
    /// The env (or its scenario) could not be made.
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// Services (in order) and the calls between them (caller, callee).
pub type Topology = (Vec<String>, Vec<(usize, usize)>);

/// A scenario's [`Topology`]: what a policy trained on one scenario needs of another
/// to drive it.
pub fn topology(env_id: &str, scenario: &str) -> Result<Topology, EnvError> {
    let sc = hale_envs::load_topology(env_id, scenario)?;
    let services = sc.spec.services.iter().map(|s| s.name.clone()).collect();
    let calls = sc
        .edges
        .iter()
        .filter_map(|e| e.from.map(|f| (f, e.to)))
        .collect();
    Ok((services, calls))
}

/// The services of a cloud env's scenario, in order (none for other envs).
pub fn service_names(env_id: &str, config: &Json) -> Result<Vec<String>, EnvError> {
    let scenario = match env_id {
        "Scaling-v0" => hale_envs::ScalingConfig::from_json(config)?.scenario,
        "Healing-v0" => hale_envs::HealingConfig::from_json(config)?.scenario,
        _ => return Ok(vec![]),
    };
    Ok(topology(env_id, &scenario)?.0)
}

/// Refuses to evaluate the bundle in `dir`, trained on scenario `trained`, on scenario
/// `ours` unless both have the same services, in the same order, calling each other
/// the same way. A training scenario that cannot be read any more is only noted (in
/// `notes`), and then only the spaces are checked.
fn check_topology(
    env_id: &str,
    (ours, trained): (&str, &str),
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<(), EvalError> {
    let theirs = match topology(env_id, trained) {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!(
                "warning: cannot read scenario {trained}, which bundle {} was trained on, to \
                 compare it with {ours} ({e}); only the spaces are checked",
                dir.display()
            ));
            return Ok(());
        }
    };
    let mine = topology(env_id, ours)?;
    if mine.0 != theirs.0 {
        return Err(EvalError::Services {
            dir: dir.display().to_string(),
            trained: trained.into(),
            ours: ours.into(),
            theirs: theirs.0.join(", "),
            mine: mine.0.join(", "),
        });
    }
    if mine.1 != theirs.1 {
        return Err(EvalError::Calls {
            dir: dir.display().to_string(),
            trained: trained.into(),
            ours: ours.into(),
        });
    }
    Ok(())
}

/// A bundle's `env_id` and `env_config`, if its policy.json (a team folder's
/// [`crate::team::TEAM_FILE`]) can be read.
pub fn bundle_env(dir: &Path) -> Option<(String, serde_json::Map<String, Json>)> {
    let text = std::fs::read(dir.join("policy.json"))
        .or_else(|_| std::fs::read(dir.join(crate::team::TEAM_FILE)))
        .ok()?;
    let spec: Json = serde_json::from_slice(&text).ok()?;
    let id = spec.get("env_id")?.as_str()?.to_string();
    Some((id, spec.get("env_config")?.as_object()?.clone()))
}

/// Equal JSON values, numbers compared as numbers (15 and 15.0 agree).
fn same_value(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The env config every policy is evaluated under: `requested` (set by
/// `requested_by`, e.g. `--config/--scenario`), then what the bundles were trained with
/// (a bundle's task is its env config: scenario, intervals, action kind), then
/// evaluation's defaults (Scaling-v0: target actions every 15 s, the HPA's sync
/// period). A bundle trained under a value the requested config contradicts, or two
/// bundles that contradict each other, are refused, naming the field, as the adapter
/// and `hale export` refuse them, except a reward weight
/// ([`hale_envs::reward_weights`]) that `requested` sets; the observation view is each
/// policy's own ([`config_for`]). Returns the config and notes for the user.
pub fn resolve_config(
    env_id: &str,
    requested: Json,
    requested_by: &str,
    specs: &[PolicySpec],
) -> Result<(Json, Vec<String>), EvalError> {
    let mut notes = vec![];
    let mut map = match requested {
        Json::Null => serde_json::Map::new(),
        Json::Object(m) => m,
        other => return Err(EvalError::NotAnObject(other)),
    };
    let mut set_by: std::collections::BTreeMap<String, String> = map
        .keys()
        .map(|k| (k.clone(), requested_by.to_string()))
        .collect();
    for spec in specs {
        let PolicySource::Bundle(dir) = &spec.source else {
            continue;
        };
        // A bundle that cannot be read, or was trained on another env, is reported when
        // it is loaded, naming the file or the env.
        let Some(theirs) = bundle_env(dir)
            .filter(|(id, _)| id == env_id)
            .map(|(_, c)| c)
        else {
            continue;
        };
        for (k, v) in theirs {
            if k == "observation" {
                continue;
            }
            match map.get(&k) {
                // Another scenario with the same services and calls: workloads and
                // faults may differ (the spaces are checked when the policy loads).
                Some(mine) if k == "scenario" && !same_value(mine, &v) => {
                    let (ours, trained) = (mine.as_str().unwrap_or(""), v.as_str().unwrap_or(""));
                    check_topology(env_id, (ours, trained), dir, &mut notes)?;
                    notes.push(format!(
                        "note: bundle {} was trained on scenario {trained}; evaluating it on \
                         {ours}, which has the same services and calls",
                        dir.display()
                    ));
                }
                // A reward weight the caller set: every policy is scored on one reward,
                // whatever each was trained to maximise.
                Some(mine)
                    if set_by[&k] == requested_by
                        && hale_envs::reward_weights(env_id).contains(&k.as_str()) =>
                {
                    if !same_value(mine, &v) {
                        notes.push(format!(
                            "note: bundle {} was trained with {k} = {v}; every policy is \
                             scored with {mine} ({requested_by}), a weight of the reward only",
                            dir.display()
                        ));
                    }
                }
                Some(mine) if !same_value(mine, &v) => {
                    return Err(EvalError::Contradicts {
                        dir: dir.display().to_string(),
                        field: k.clone(),
                        trained: v.to_string(),
                        given: mine.to_string(),
                        set_by: set_by[&k].clone(),
                    });
                }
                Some(_) => {}
                None => {
                    map.insert(k.clone(), v);
                    set_by.insert(k, format!("bundle {}", dir.display()));
                }
            }
        }
    }
    if env_id == "Scaling-v0" {
        map.entry("action").or_insert(json!("target"));
        map.entry("control_interval_s").or_insert(json!(15.0));
    }
    // The HPA sets counts: the scaler of a team takes target actions by default.
    if env_id == "CloudOps-v0" {
        map.entry("scaler_action").or_insert(json!("target"));
    }
    let config = if env_id == "CartPole-v1" && map.is_empty() {
        Json::Null
    } else {
        Json::Object(map)
    };
    Ok((config, notes))
}

/// The env config policy `spec` runs under: `config` with the observation the policy
/// reads. The cloud envs' `observation` (flat `matrix` or resource `graph`) is a view of
/// the same simulation, so policies that read different views still meet the same
/// episodes: a bundle gets the view it was trained on, a baseline the matrix.
pub fn config_for(config: &Json, spec: &PolicySpec) -> Json {
    let mut config = config.clone();
    let wanted = match &spec.source {
        // A bundle that cannot be read is reported when it is loaded, naming the file.
        PolicySource::Bundle(dir) => {
            bundle_env(dir).and_then(|(_, c)| c.get("observation").cloned())
        }
        PolicySource::Baseline(_) => config
            .get("observation")
            .filter(|v| v.as_str() == Some("graph"))
            .map(|_| json!("matrix")),
    };
    if let (Some(v), Some(obj)) = (wanted, config.as_object_mut()) {
        obj.insert("observation".into(), v);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle folder whose policy.json says it was trained on Security-v0 with
    /// `env_config`.
    fn bundle(dir: &Path, name: &str, env_config: Json) -> PolicySpec {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        let spec = json!({"env_id": "Security-v0", "env_config": env_config});
        std::fs::write(path.join("policy.json"), spec.to_string()).unwrap();
        PolicySpec {
            label: name.into(),
            source: PolicySource::Bundle(path),
        }
    }

    /// A reward weight the caller sets overrides a bundle's, with a note; one the caller
    /// leaves out is the bundle's; a field of the task itself is still refused.
    #[test]
    fn the_caller_sets_the_reward_weights_a_bundle_was_trained_with() {
        let tmp = tempfile::tempdir().unwrap();
        let cloud = json!({"scenario": "microservices-20", "restart_cost": 2.0});
        let specs = [bundle(tmp.path(), "shaped", cloud)];
        let by = "--config";
        let (config, notes) = resolve_config(
            "Security-v0",
            json!({"scenario": "microservices-20", "restart_cost": 1.0}),
            by,
            &specs,
        )
        .unwrap();
        assert_eq!(config["restart_cost"], 1.0);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("restart_cost = 2.0"), "{}", notes[0]);
        let (config, notes) = resolve_config("Security-v0", Json::Null, by, &specs).unwrap();
        assert_eq!(config["restart_cost"], 2.0);
        assert!(notes.is_empty());
        let err = resolve_config(
            "Security-v0",
            json!({"scenario": "microservices-20", "max_steps": 50}),
            by,
            &[bundle(tmp.path(), "long", json!({"max_steps": 100}))],
        )
        .unwrap_err();
        assert!(matches!(err, EvalError::Contradicts { ref field, .. } if field == "max_steps"));
    }
}
