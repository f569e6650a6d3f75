//! `hale eval`: run policies on the same seeds and compare them, paired.

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use hale_envs::make;
use hale_experiments::config::check_episodes;
use hale_policies::bundle::write_atomic;
use hale_policies::eval::{
    COLUMNS, Episode, config_for, metrics_for, play, resolve_config, service_names, summarise,
};
use hale_policies::{PolicyContext, PolicySource, PolicySpec, load_policy, team};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

/// Arguments of `hale eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Env id (Scaling-v0, Healing-v0, Security-v0, CartPole-v1, or the multi-agent
    /// CloudOps-v0, whose policies are teams).
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
    /// random, forecast, noop, react-restore, react-remove, decoy-first), or policy bundles: a bundle folder or a training run's
    /// folder, optionally labelled `LABEL=PATH` (default label: the bundle's algorithm).
    /// On a multi-agent env each policy is a team, one member per agent in order,
    /// joined by `+` (CloudOps-v0: `hpa+kubelet+react-restore` for scaler, healer,
    /// defender). Differences are reported against the first.
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

/// Whether `env_id` is a multi-agent env (its policies are teams).
fn multi_agent(env_id: &str) -> bool {
    hale_envs::parallel_registry()
        .iter()
        .any(|s| s.id == env_id)
}

/// Team `spec` (members joined by `+`) on a fresh multi-agent env.
fn team(
    env_id: &str,
    config: &Json,
    spec: &PolicySpec,
) -> Result<(Box<dyn hale_envs::ParallelEnv>, team::Team)> {
    let env = hale_envs::make_parallel(env_id, config)?;
    let text = match &spec.source {
        PolicySource::Baseline(name) => name.clone(),
        PolicySource::Bundle(dir) => dir.display().to_string(),
    };
    let members = team::members(&text, env.possible_agents())?;
    let t = team::Team::new(env.as_ref(), config, &members, |m, ctx| {
        load_policy(m, ctx, &Device::flex())
    })?;
    Ok((env, t))
}

/// Runs one episode of `policy` on a fresh env with `seed`.
fn run_episode(
    env_id: &str,
    config: &Json,
    spec: &PolicySpec,
    episode: usize,
    seed: u64,
) -> Result<Episode> {
    if multi_agent(env_id) {
        let (mut env, mut t) = team(env_id, config, spec)?;
        return Ok(team::play_team(
            env.as_mut(),
            &mut t,
            &spec.label,
            (episode, seed),
        )?);
    }
    let mut env = make(env_id, config)?;
    let ctx = PolicyContext::new(env_id, config, env.as_ref())?;
    let mut pi = load_policy(spec, &ctx, &Device::flex())?;
    pi.reset();
    let episode = play(env.as_mut(), &spec.label, (episode, seed), |obs, mask| {
        pi.act(obs, mask).map_err(|e| e.to_string())
    })?;
    Ok(episode)
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
    let (config, notes) = resolve_config(env, requested, "--config/--scenario", &specs)?;
    for note in notes {
        eprintln!("{note}");
    }
    // A path that cannot be a folder is refused at once rather than after the work.
    if let Some(dir) = out {
        check_out_dir(dir)?;
    }
    eprintln!("env {env} with config {config}");
    let (all, summary) = compare(env, &config, &specs, episodes, seed)?;
    let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
    print_table(env, &labels, episodes, &summary);
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

/// `work(0..n)` on as many plain threads as rayon has, results in order. Not rayon
/// tasks: a network's kernels use rayon inside an episode, and a rayon worker waiting
/// on them would steal another whole episode onto its stack, and another, until the
/// stack overflowed (it did, evaluating seven CloudOps-v0 teams at once).
fn on_threads<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = rayon::current_num_threads().clamp(1, n.max(1));
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if j >= n {
                            return done;
                        }
                        done.push((j, work(j)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    out.sort_by_key(|(j, _)| *j);
    out.into_iter().map(|(_, t)| t).collect()
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
        if multi_agent(env_id) {
            team(env_id, &configs[i], s)?;
        } else {
            let probe = make(env_id, &configs[i])?;
            let ctx = PolicyContext::new(env_id, &configs[i], probe.as_ref())?;
            load_policy(s, &ctx, &Device::flex())?;
        }
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
    let all: Vec<Episode> = on_threads(jobs.len(), |j| {
        let (p, e) = jobs[j];
        let r = run_episode(env_id, &configs[p], &specs[p], e, seed + e as u64);
        bar.inc(1);
        r
    })
    .into_iter()
    .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
    let by_policy: Vec<Vec<&Episode>> = labels
        .iter()
        .map(|p| all.iter().filter(|e| &e.policy == p).collect())
        .collect();
    let summary = summarise(env_id, &labels, &by_policy, &service_names(env_id, config)?);
    Ok((all, summary))
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

/// Prints the summary of [`compare`] on env `env` as a table, then the paired
/// differences.
pub fn print_table(env: &str, policies: &[String], n: usize, summary: &Json) {
    println!(
        "{} episodes per policy, same seeds for every policy; mean ± 95 % CI",
        n
    );
    // Columns as wide as their longest cell, with two spaces between: long team
    // labels and metric names never run into each other.
    let rows: Vec<(&str, Vec<String>)> = metrics_for(env)
        .map(|(k, label, _)| {
            let cells = policies
                .iter()
                .map(|p| {
                    let v = &summary["policies"][p][k];
                    fmt(
                        v["mean"].as_f64().unwrap_or(f64::NAN),
                        v["ci95"].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect();
            (label, cells)
        })
        .collect();
    let first = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0).max(14) + 2;
    let widths: Vec<usize> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cells = rows.iter().map(|(_, c)| c[i].chars().count());
            cells.chain([p.chars().count(), 22]).max().unwrap_or(22) + 2
        })
        .collect();
    print!("{:<first$}", "metric");
    for (p, w) in policies.iter().zip(&widths) {
        print!("{p:>w$}");
    }
    println!();
    for (label, cells) in &rows {
        print!("{label:<first$}");
        for (c, w) in cells.iter().zip(&widths) {
            print!("{c:>w$}");
        }
        println!();
    }
    for p in policies.iter().skip(1) {
        let key = format!("{p} - {}", policies[0]);
        println!("\npaired difference {key} (95 % CI paired | unpaired):");
        for (k, label, _) in metrics_for(env) {
            let v = &summary["paired_differences"][&key][k];
            let (d, hp, hu) = (
                v["diff"].as_f64().unwrap_or(f64::NAN),
                v["ci95_paired"].as_f64().unwrap_or(f64::NAN),
                v["ci95_unpaired"].as_f64().unwrap_or(f64::NAN),
            );
            let width = first - 2;
            println!(
                "  {label:<width$}{:>24}   | ± {}",
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
