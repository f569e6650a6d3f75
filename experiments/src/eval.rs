//! `hale eval`: run policies on the same seeds and compare them, paired.

use crate::stats;
use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use hale_envs::{Env, make};
use hale_experiments::config::check_episodes;
use hale_policies::bundle::write_atomic;
use hale_policies::{PolicyContext, PolicySpec, load_policy};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

/// Arguments of `hale eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Env id (Scaling-v0, Healing-v0, CartPole-v1).
    #[arg(long)]
    env: String,
    /// Env configuration as a JSON object (Scaling-v0 defaults here to target actions
    /// every 15 s, the HPA's sync period).
    #[arg(long)]
    config: Option<String>,
    /// Scenario file or builtin name (sets the config's `scenario`).
    #[arg(long)]
    scenario: Option<String>,
    /// Policies, comma-separated: baseline names (hpa, kubelet, threshold, static,
    /// random, forecast, noop), or policy bundles: a bundle folder or a training run's
    /// folder, optionally labelled `LABEL=PATH` (default label: the bundle's algorithm).
    /// Differences are reported against the first.
    #[arg(long, value_delimiter = ',', required = true)]
    policy: Vec<String>,
    /// Episodes per policy; episode i of every policy uses seed `seed + i`.
    #[arg(long, default_value_t = 5)]
    episodes: usize,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write episodes.csv, episodes.parquet and summary.json here (and, for the
    /// cloud envs, one episode's timeline.csv and its plots: load, replicas per
    /// service, cores, hosts, p95 against the SLO, the bill, faults and remedies, of
    /// every policy on the same seed). `hale report DIR` draws the comparison.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The episode whose timeline is written (0 = the first).
    #[arg(long, default_value_t = 0)]
    timeline: usize,
}

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
    pub policy: String,
    pub episode: usize,
    pub seed: u64,
    pub episode_return: f64,
    pub steps: u64,
    pub cost: f64,
    pub core_hours: f64,
    pub slo_violation_min: f64,
    pub p95_ms: f64,
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
    pub requests: f64,
    pub unserved: f64,
    pub availability: f64,
    pub mttr_s: f64,
    pub faults_resolved: u64,
    pub faults_open: u64,
    pub actions: u64,
    /// Step by step (cloud envs).
    #[serde(skip)]
    pub timeline: Vec<Point>,
}

/// A column of the per-episode tables: its name, its label in the printed table
/// (`None`: in the files only), whether it is a count, and how to read it.
struct Column {
    name: &'static str,
    label: Option<&'static str>,
    count: bool,
    get: fn(&Episode) -> f64,
}

const fn metric(name: &'static str, label: &'static str, get: fn(&Episode) -> f64) -> Column {
    Column {
        name,
        label: Some(label),
        count: false,
        get,
    }
}

const fn count(
    name: &'static str,
    label: Option<&'static str>,
    get: fn(&Episode) -> f64,
) -> Column {
    Column {
        name,
        label,
        count: true,
        get,
    }
}

/// Every numeric column of episodes.csv and episodes.parquet, in order (after
/// `policy`); those with a label are summarised and compared.
const COLUMNS: &[Column] = &[
    count("episode", None, |e| e.episode as f64),
    count("seed", None, |e| e.seed as f64),
    metric("episode_return", "return", |e| e.episode_return),
    count("steps", None, |e| e.steps as f64),
    metric("cost", "host cost", |e| e.cost),
    metric("core_hours", "core-hours", |e| e.core_hours),
    metric("slo_violation_min", "SLO-viol. min", |e| {
        e.slo_violation_min
    }),
    metric("p95_ms", "p95 ms", |e| e.p95_ms),
    metric("p99_ms", "p99 ms", |e| e.p99_ms),
    metric("cpu_slack", "CPU slack", |e| e.cpu_slack),
    metric("memory_slack", "memory slack", |e| e.memory_slack),
    metric("slot_slack", "slot slack", |e| e.slot_slack),
    Column {
        name: "requests",
        label: None,
        count: false,
        get: |e| e.requests,
    },
    metric("unserved", "unserved req.", |e| e.unserved),
    metric("availability", "availability", |e| e.availability),
    metric("mttr_s", "MTTR s", |e| e.mttr_s),
    count("faults_resolved", None, |e| e.faults_resolved as f64),
    count("faults_open", None, |e| e.faults_open as f64),
    count("actions", Some("actions"), |e| e.actions as f64),
];

/// The columns that are summarised, with their labels.
fn metrics() -> impl Iterator<Item = (&'static str, &'static str, fn(&Episode) -> f64)> {
    COLUMNS
        .iter()
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

/// Runs one episode of `policy` on a fresh env with `seed`.
fn run_episode(
    env_id: &str,
    config: &Json,
    spec: &PolicySpec,
    episode: usize,
    seed: u64,
) -> Result<Episode> {
    let mut env = make(env_id, config)?;
    let ctx = PolicyContext::new(env_id, config, env.as_ref())?;
    let mut pi = load_policy(spec, &ctx, &Device::flex())?;
    let policy = spec.label.as_str();
    pi.reset();
    let (mut obs, _) = env.reset(Some(seed), None)?;
    let mut e = Episode {
        policy: policy.into(),
        episode,
        seed,
        ..Default::default()
    };
    let (mut p95_w, mut ttr_sum, mut open_age) = (0.0, 0.0, 0.0);
    let mut usage = hale_envs::Usage::default();
    let add = |total: &mut Vec<f64>, step: &[f64]| {
        total.resize(step.len().max(total.len()), 0.0);
        for (t, s) in total.iter_mut().zip(step) {
            *t += s;
        }
    };
    loop {
        let action = pi
            .act(&obs, env.action_mask())
            .with_context(|| format!("{policy} on {env_id}, seed {seed}, step {}", e.steps))?;
        let s = env
            .step(&action)
            .with_context(|| format!("{policy} on {env_id}, seed {seed}, step {}", e.steps))?;
        e.steps += 1;
        e.episode_return += s.reward;
        if let Some(c) = &s.info.cloud {
            e.cost += c.cost;
            e.core_hours += c.core_hours;
            e.slo_violation_min += c.slo_violation_s / 60.0;
            e.requests += c.requests;
            e.unserved += c.unserved;
            // Before the first scrape there is no percentile: it weighs nothing.
            e.p95_ms += c.p95_ms.unwrap_or(0.0) * c.requests;
            e.p99_ms += c.p99_ms.unwrap_or(0.0) * c.requests;
            p95_w += c.requests;
            e.slot_slack += c.slot_slack.unwrap_or(0.0);
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
                ttr_sum += t;
                e.faults_resolved += 1;
            }
            // The last step's open faults are those the episode ends with.
            (e.faults_open, open_age) = (u64::from(c.faults_open), c.open_fault_age_s);
        }
        let acted = s
            .info
            .scaling
            .as_ref()
            .is_some_and(|t| t.scaling_changes > 0)
            || s.info.healing.as_ref().is_some_and(|h| h.acted());
        e.actions += u64::from(acted);
        if let Some(c) = &s.info.cloud {
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
                remedy: s
                    .info
                    .healing
                    .as_ref()
                    .filter(|h| h.acted() && h.refused.is_none())
                    .map(|h| h.remedy),
            });
        }
        obs = s.obs;
        if s.terminated || s.truncated {
            break;
        }
    }
    if p95_w > 0.0 {
        e.p95_ms /= p95_w;
        e.p99_ms /= p95_w;
    }
    e.slot_slack /= e.steps.max(1) as f64;
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
    // time to recovery: leaving faults unresolved does not shorten the mean. No fault
    // at all: no MTTR (left out of means rather than counted as 0).
    let faults = e.faults_resolved + e.faults_open;
    e.mttr_s = if faults > 0 {
        (ttr_sum + open_age) / faults as f64
    } else {
        f64::NAN
    };
    env.close();
    Ok(e)
}

/// The env config the user asked for: `--config` with `--scenario` set in it.
fn requested_config(args: &EvalArgs) -> Result<Json> {
    let mut config = match &args.config {
        None => json!({}),
        Some(text) => {
            serde_json::from_str(text).with_context(|| format!("--config is not JSON: {text}"))?
        }
    };
    let Some(map) = config.as_object_mut() else {
        bail!("--config must be a JSON object")
    };
    if let Some(s) = &args.scenario {
        map.insert("scenario".into(), json!(s));
    }
    Ok(config)
}

/// The env config every policy is evaluated under: what the user asked for, then
/// what the bundles were trained with (a bundle's task is its env config: scenario,
/// intervals, action kind), then eval's defaults. A bundle trained under a value the
/// user's config contradicts, or two bundles that contradict each other, are refused,
/// naming the field, as the adapter and `hale export` refuse them; the observation
/// view is each policy's own ([`config_for`]).
fn resolve_config(env_id: &str, requested: Json, specs: &[PolicySpec]) -> Result<Json> {
    let mut config = requested;
    let mut set_by: std::collections::BTreeMap<String, String> = config
        .as_object()
        .map(|m| {
            m.keys()
                .map(|k| (k.clone(), "--config/--scenario".to_string()))
                .collect()
        })
        .unwrap_or_default();
    for spec in specs {
        let hale_policies::PolicySource::Bundle(dir) = &spec.source else {
            continue;
        };
        // A bundle that cannot be read, or was trained on another env, is reported by
        // `load_policy`, naming the file or the env.
        let Some(theirs) = bundle_env(dir)
            .filter(|(id, _)| id == env_id)
            .map(|(_, c)| c)
        else {
            continue;
        };
        let Some(map) = config.as_object_mut() else {
            bail!("--config must be a JSON object")
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
                    check_topology(env_id, ours, trained, dir)?;
                    eprintln!(
                        "note: bundle {} was trained on scenario {trained}; evaluating it on \
                         {ours}, which has the same services and calls",
                        dir.display()
                    );
                }
                Some(mine) if !same_value(mine, &v) => bail!(
                    "bundle {} was trained with env_config.{k} = {v}, but {} sets {mine}: \
                     evaluate it on the env it was trained for (leave {k} out to take the bundle's)",
                    dir.display(),
                    set_by[&k]
                ),
                Some(_) => {}
                None => {
                    map.insert(k.clone(), v);
                    set_by.insert(k, format!("bundle {}", dir.display()));
                }
            }
        }
    }
    let Some(map) = config.as_object_mut() else {
        bail!("--config must be a JSON object")
    };
    if env_id == "Scaling-v0" {
        map.entry("action").or_insert(json!("target"));
        map.entry("control_interval_s").or_insert(json!(15.0));
    }
    if env_id == "CartPole-v1" && map.is_empty() {
        config = Json::Null;
    }
    Ok(config)
}

/// Services (in order) and the calls between them (caller, callee).
type Topology = (Vec<String>, Vec<(usize, usize)>);

/// A scenario's [`Topology`]: what a policy trained on one scenario needs of another
/// to drive it.
fn topology(env_id: &str, scenario: &str) -> Result<Topology> {
    let sc = hale_envs::load_topology(env_id, scenario)?;
    let services = sc.spec.services.iter().map(|s| s.name.clone()).collect();
    let calls = sc
        .edges
        .iter()
        .filter_map(|e| e.from.map(|f| (f, e.to)))
        .collect();
    Ok((services, calls))
}

/// Refuses to evaluate the bundle in `dir`, trained on scenario `trained`, on scenario
/// `ours` unless both have the same services, in the same order, calling each other
/// the same way. A training scenario that cannot be read any more is only warned of.
fn check_topology(env_id: &str, ours: &str, trained: &str, dir: &Path) -> Result<()> {
    let theirs = match topology(env_id, trained) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "warning: cannot read scenario {trained}, which bundle {} was trained on, to \
                 compare it with {ours} ({e:#}); only the spaces are checked",
                dir.display()
            );
            return Ok(());
        }
    };
    let mine = topology(env_id, ours)?;
    if mine.0 != theirs.0 {
        bail!(
            "bundle {} was trained on scenario {trained}, whose services are [{}]; {ours} has \
             [{}]: a policy drives the services it was trained on (pass --scenario {trained}, \
             or leave --scenario out to take the bundle's)",
            dir.display(),
            theirs.0.join(", "),
            mine.0.join(", ")
        );
    }
    if mine.1 != theirs.1 {
        bail!(
            "bundle {} was trained on scenario {trained}; {ours} has the same services but \
             other calls between them",
            dir.display()
        );
    }
    Ok(())
}

/// A bundle's `env_id` and `env_config`, if its policy.json can be read (read once).
fn bundle_env(dir: &Path) -> Option<(String, serde_json::Map<String, Json>)> {
    let text = std::fs::read(dir.join("policy.json")).ok()?;
    let spec: Json = serde_json::from_slice(&text).ok()?;
    let id = spec.get("env_id")?.as_str()?.to_string();
    Some((id, spec.get("env_config")?.as_object()?.clone()))
}

/// Refuses an `--out` that cannot become a folder (a file there, or a file where a
/// folder above it should be) before any episode runs; nothing is created yet.
pub fn check_out_dir(dir: &Path) -> Result<()> {
    let mut at = Some(dir);
    while let Some(p) = at {
        if p.exists() {
            anyhow::ensure!(
                p.is_dir(),
                "--out {}: {} is a file, not a folder",
                dir.display(),
                p.display()
            );
            return Ok(());
        }
        at = p.parent().filter(|p| !p.as_os_str().is_empty());
    }
    Ok(())
}

/// Equal JSON values, numbers compared as numbers (15 and 15.0 agree).
fn same_value(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    let requested = requested_config(&args)?;
    evaluate(
        &args.env,
        requested,
        &args.policy,
        (args.episodes, args.seed),
        args.out.as_deref(),
        args.timeline,
    )
    .map(|_| ())
}

/// What `hale eval` and `hale bench run` do: resolve the env config (`requested`, then
/// the bundles', then eval's defaults), compare the policies on seeds `seed`,
/// `seed + 1`, …, print the table and write the outputs to `out`. Returns the summary.
pub fn evaluate(
    env: &str,
    requested: Json,
    policy: &[String],
    (episodes, seed): (usize, u64),
    out: Option<&Path>,
    timeline: usize,
) -> Result<Json> {
    anyhow::ensure!(
        timeline < episodes,
        "--timeline {timeline}: the episodes are numbered 0 to {}",
        episodes.saturating_sub(1)
    );
    anyhow::ensure!(
        episodes >= 2,
        "--episodes must be at least 2 for confidence intervals"
    );
    check_episodes(seed, episodes).map_err(|e| anyhow::anyhow!("--episodes: {e}"))?;
    let specs: Vec<PolicySpec> = policy.iter().map(|p| PolicySpec::parse(p)).collect();
    let config = resolve_config(env, requested, &specs)?;
    // A path that cannot be a folder is refused at once rather than after the work.
    if let Some(dir) = out {
        check_out_dir(dir)?;
    }
    eprintln!("env {env} with config {config}");
    let (all, summary) = compare(env, &config, &specs, episodes, seed)?;
    let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
    print_table(&labels, episodes, &summary);
    if let Some(dir) = out {
        write_outputs(dir, &all, &summary, env, &config)?;
        let cloud = crate::timeline::Cloud::of(env, &config);
        let plotted = crate::timeline::write(dir, &all, timeline, &cloud)?;
        eprintln!(
            "wrote {}/episodes.csv and summary.json{}",
            dir.display(),
            if plotted {
                format!(
                    ", and episode {timeline}'s timeline.csv with its plots (timeline*.svg, \
                     .png; hale report {} gathers them)",
                    dir.display()
                )
            } else {
                String::new()
            }
        );
    }
    Ok(summary)
}

/// Runs `episodes` episodes of every policy on seeds `seed`, `seed + 1`, … (the same
/// for every policy) and summarises them: per policy the mean and 95 % CI of each
/// metric, and the paired differences against the first policy.
pub fn compare(
    env_id: &str,
    config: &Json,
    specs: &[PolicySpec],
    episodes: usize,
    seed: u64,
) -> Result<(Vec<Episode>, Json)> {
    check_episodes(seed, episodes).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Check every policy fits, and that labels are distinct, before running anything.
    let configs: Vec<Json> = specs.iter().map(|s| config_for(config, s)).collect();
    for (i, s) in specs.iter().enumerate() {
        let probe = make(env_id, &configs[i])?;
        let ctx = PolicyContext::new(env_id, &configs[i], probe.as_ref())?;
        load_policy(s, &ctx, &Device::flex())?;
        if specs[..i].iter().any(|o| o.label == s.label) {
            bail!(
                "two policies are labelled {:?}: name them with LABEL=PATH",
                s.label
            );
        }
    }
    let jobs: Vec<(usize, usize)> = (0..specs.len())
        .flat_map(|p| (0..episodes).map(move |e| (p, e)))
        .collect();
    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    let all: Vec<Episode> = jobs
        .par_iter()
        .map(|&(p, e)| {
            let r = run_episode(env_id, &configs[p], &specs[p], e, seed + e as u64);
            bar.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
    let by_policy: Vec<Vec<&Episode>> = labels
        .iter()
        .map(|p| all.iter().filter(|e| &e.policy == p).collect())
        .collect();
    let summary = summarise(&labels, &by_policy, &service_names(env_id, config)?);
    Ok((all, summary))
}

/// The services of a cloud env's scenario, in order (none for other envs).
fn service_names(env_id: &str, config: &Json) -> Result<Vec<String>> {
    let scenario = match env_id {
        "Scaling-v0" => hale_envs::ScalingConfig::from_json(config)?.scenario,
        "Healing-v0" => hale_envs::HealingConfig::from_json(config)?.scenario,
        _ => return Ok(vec![]),
    };
    Ok(topology(env_id, &scenario)?.0)
}

/// The env config policy `spec` runs under: `config` with the observation the policy
/// reads. The cloud envs' `observation` (flat `matrix` or resource `graph`) is a view of
/// the same simulation, so policies that read different views still meet the same
/// episodes: a bundle gets the view it was trained on, a baseline the matrix.
fn config_for(config: &Json, spec: &PolicySpec) -> Json {
    let mut config = config.clone();
    let wanted = match &spec.source {
        // A bundle that cannot be read is reported by `load_policy`, naming the file.
        hale_policies::PolicySource::Bundle(dir) => {
            bundle_env(dir).and_then(|(_, c)| c.get("observation").cloned())
        }
        hale_policies::PolicySource::Baseline(_) => config
            .get("observation")
            .filter(|v| v.as_str() == Some("graph"))
            .map(|_| json!("matrix")),
    };
    if let (Some(v), Some(obj)) = (wanted, config.as_object_mut()) {
        obj.insert("observation".into(), v);
    }
    config
}

fn summarise(policies: &[String], by: &[Vec<&Episode>], services: &[String]) -> Json {
    let col =
        |p: usize, get: fn(&Episode) -> f64| -> Vec<f64> { by[p].iter().map(|e| get(e)).collect() };
    let mut per_policy = serde_json::Map::new();
    for (p, name) in policies.iter().enumerate() {
        let mut m = serde_json::Map::new();
        for (k, _, get) in metrics() {
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
        for (k, _, get) in metrics() {
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

fn fmt(mean: f64, hw: f64) -> String {
    if !mean.is_finite() {
        return "—".into();
    }
    let digits = if mean.abs() >= 100.0 {
        1
    } else if mean.abs() >= 1.0 {
        3
    } else {
        4
    };
    if hw.is_finite() {
        format!("{mean:.digits$} ± {hw:.digits$}")
    } else {
        format!("{mean:.digits$}")
    }
}

/// Prints the summary of [`compare`] as a table, then the paired differences.
pub fn print_table(policies: &[String], n: usize, summary: &Json) {
    println!(
        "{} episodes per policy, same seeds for every policy; mean ± 95 % CI",
        n
    );
    print!("{:<16}", "metric");
    for p in policies {
        print!("{p:>24}");
    }
    println!();
    for (k, label, _) in metrics() {
        print!("{label:<16}");
        for p in policies {
            let v = &summary["policies"][p][k];
            print!(
                "{:>24}",
                fmt(
                    v["mean"].as_f64().unwrap_or(f64::NAN),
                    v["ci95"].as_f64().unwrap_or(f64::NAN)
                )
            );
        }
        println!();
    }
    for p in policies.iter().skip(1) {
        let key = format!("{p} - {}", policies[0]);
        println!("\npaired difference {key} (95 % CI paired | unpaired):");
        for (k, label, _) in metrics() {
            let v = &summary["paired_differences"][&key][k];
            let (d, hp, hu) = (
                v["diff"].as_f64().unwrap_or(f64::NAN),
                v["ci95_paired"].as_f64().unwrap_or(f64::NAN),
                v["ci95_unpaired"].as_f64().unwrap_or(f64::NAN),
            );
            println!(
                "  {label:<16}{:>24}   | ± {}",
                fmt(d, hp),
                fmt(hu, f64::NAN)
            );
        }
    }
}

fn write_outputs(
    dir: &Path,
    episodes: &[Episode],
    summary: &Json,
    env: &str,
    config: &Json,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut csv = std::iter::once("policy")
        .chain(COLUMNS.iter().map(|c| c.name))
        .collect::<Vec<_>>()
        .join(",");
    csv.push('\n');
    for e in episodes {
        csv.push_str(&e.policy);
        for c in COLUMNS {
            csv.push_str(&format!(",{}", (c.get)(e)));
        }
        csv.push('\n');
    }
    write_atomic(&dir.join("episodes.csv"), csv.as_bytes())?;
    write_parquet(&dir.join("episodes.parquet"), episodes)?;
    let full = json!({"env": env, "config": config, "summary": summary});
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&full)?.as_bytes(),
    )?;
    Ok(())
}

/// The per-episode rows as parquet (polars), written to a temporary file and renamed.
fn write_parquet(path: &Path, episodes: &[Episode]) -> Result<()> {
    use polars::prelude::{Column as PolarsColumn, DataFrame, ParquetWriter};
    let mut columns = vec![PolarsColumn::new(
        "policy".into(),
        episodes
            .iter()
            .map(|e| e.policy.clone())
            .collect::<Vec<String>>(),
    )];
    for c in COLUMNS {
        let values = episodes.iter().map(c.get);
        columns.push(if c.count {
            PolarsColumn::new(
                c.name.into(),
                values.map(|v| v as u64).collect::<Vec<u64>>(),
            )
        } else {
            PolarsColumn::new(c.name.into(), values.collect::<Vec<f64>>())
        });
    }
    let mut df = DataFrame::new(episodes.len(), columns)
        .map_err(|e| anyhow::anyhow!("building the episodes table: {e}"))?;
    hale_sim::fs::write_atomic_with(path, |file| {
        ParquetWriter::new(file).finish(&mut df).map(|_| ())
    })
    .with_context(|| format!("cannot write {}", path.display()))
}
