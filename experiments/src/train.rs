//! `hale train`: a training run from a TOML config into a run folder.
//!
//! ```text
//! runs/{env}__{exp_name}__{seed}__{unix time}/
//!   config.toml       the resolved config (every default written out)
//!   metrics.csv       one row per iteration, CleanRL's names (charts/…, losses/…)
//!   episodes.csv      one row per finished training episode, with wall time
//!   checkpoints/iter-NNNNNN/{state.json, model.bpk, optim.bin or adam.bin}
//!   policy/           the final bundle (policy.json + weights.bpk)
//!   summary.json      the final evaluation on held-out seeds (cloud envs: beside
//!                     the baselines, paired on the same seeds)
//! ```
//!
//! Environments are reset at every checkpoint boundary with seeds derived from the run
//! seed and the iteration, so `--resume` continues exactly as the uninterrupted run
//! would have (tested: identical final weights).

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use clap::Args;
use hale_envs::lockstep::Lockstep;
use hale_envs::{AutoReset, Env, VectorEnv, make};
use hale_experiments::config::TrainConfig;
use hale_policies::bundle::{self, Bundle, BundleSpec, write_atomic};
use hale_policies::learn::dqn::Dqn;
use hale_policies::learn::ippo::Ippo;
use hale_policies::learn::ppo::Ppo;
use hale_policies::learn::{Checkpoint, Learner};
use hale_policies::{Policy, PolicySource, PolicySpec};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct TrainArgs {
    /// The run's config (TOML: env, env_config, seed, algorithm, and a ppo table of hyperparameters).
    #[arg(required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Folder that receives the run folder.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// Stop once this many iterations are done in all, at the first checkpoint at or
    /// after it (checkpoints fall every `checkpoint_every` iterations, where the envs
    /// are reset, so that a resumed run is exactly the uninterrupted one); resume
    /// later with --resume.
    #[arg(long)]
    stop_after: Option<u64>,
    /// Where the network trains: `cpu` (burn's flex backend, always built), or `wgpu`
    /// (a GPU through Vulkan/Metal/DX12) in a build with `--features
    /// hale-experiments/wgpu`. Runs are bit for bit reproducible on the CPU; GPU
    /// kernels may sum in another order.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[command(flatten)]
    mlflow: crate::tracking::MlflowArgs,
    /// The registered model the bundle becomes a version of (default: the config's
    /// exp_name).
    #[arg(long, value_name = "NAME", requires = "mlflow")]
    mlflow_model: Option<String>,
}

/// The learner `cfg` describes, on `device`.
fn learner(cfg: &TrainConfig, device: Device) -> Result<Box<dyn Learner>> {
    let env_config = cfg.env_config_json();
    let envs = |n: usize| {
        VectorEnv::make(&cfg.env, &env_config, n, AutoReset::SameStep)
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    if matches!(cfg.algorithm.as_str(), "ippo" | "mappo") {
        let c = cfg.ppo.as_ref().context("no [ppo] hyperparameters")?;
        // One set of joint envs, each agent's learner stepping its views of them
        // (MAPPO's views carry the global state for the critics).
        let joint = (0..c.num_envs)
            .map(|_| hale_envs::make_parallel(&cfg.env, &env_config))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let lock = if cfg.algorithm == "mappo" {
            Lockstep::with_state(joint)
        } else {
            Lockstep::new(joint)
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(Box::new(
            Ippo::new(c.clone(), (lock, &env_config), device, cfg.seed)
                .map_err(|e| anyhow::anyhow!("{}: {e}", cfg.algorithm))?,
        ));
    }
    Ok(match (&cfg.ppo, &cfg.dqn) {
        (Some(c), _) => Box::new(
            Ppo::new(c.clone(), envs(c.num_envs)?, device, cfg.seed)
                .map_err(|e| anyhow::anyhow!("ppo: {e}"))?,
        ),
        (None, Some(c)) => Box::new(
            Dqn::new(c.clone(), envs(c.num_envs)?, device, cfg.seed)
                .map_err(|e| anyhow::anyhow!("dqn: {e}"))?,
        ),
        (None, None) => bail!("no hyperparameters"),
    })
}

pub fn run(args: TrainArgs) -> Result<()> {
    // Everything that can be refused (config, device, env, network) is checked before
    // a run folder exists.
    let device = crate::device::parse(&args.device)?.autodiff();
    let (cfg, dir) = match (&args.resume, &args.config) {
        (Some(dir), _) => (TrainConfig::load(&dir.join("config.toml"))?, dir.clone()),
        (None, Some(path)) => {
            let cfg = TrainConfig::load(path)?;
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let name = format!("{}__{}__{}__{}", cfg.env, cfg.exp_name, cfg.seed, time);
            (cfg, args.out.join(name))
        }
        (None, None) => bail!("give a config file or --resume RUN_DIR"),
    };
    // The tracking server, if any, answers before anything is written.
    let tracker = crate::tracking::Tracker::connect(&args.mlflow, &cfg.exp_name)?;
    let cfg_path = args
        .config
        .clone()
        .unwrap_or_else(|| dir.join("config.toml"));
    let mut learner = learner(&cfg, device).with_context(|| cfg_path.display().to_string())?;
    let dir = if args.resume.is_none() {
        let dir = new_run_dir(&dir)?;
        std::fs::create_dir_all(dir.join("checkpoints"))
            .with_context(|| format!("creating {}", dir.display()))?;
        write_atomic(
            &dir.join("config.toml"),
            toml::to_string_pretty(&cfg)?.as_bytes(),
        )?;
        dir
    } else {
        dir
    };
    let metrics_path = dir.join("metrics.csv");
    let episodes_path = dir.join("episodes.csv");
    // A run killed before its first checkpoint starts over in its own folder.
    let resume_from = match &args.resume {
        Some(_) if checkpoints(&dir)?.is_empty() => {
            eprintln!(
                "{}: no checkpoint yet; starting the run over",
                dir.display()
            );
            None
        }
        Some(_) => Some(last_good_checkpoint(&dir)?),
        None => None,
    };
    if let Some((checkpoint, at)) = resume_from {
        learner
            .restore(&checkpoint)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at.display()))?;
        learner
            .reset_envs(cfg.seed)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        truncate_metrics(&metrics_path, learner.iteration())?;
        truncate_metrics(&episodes_path, learner.iteration())?;
        eprintln!(
            "resuming {} at iteration {} ({} steps)",
            dir.display(),
            learner.iteration(),
            learner.global_step()
        );
    } else {
        let mut header = METRICS_HEADER.to_string();
        for name in learner.metric_names() {
            header.push(',');
            header.push_str(name);
        }
        header.push('\n');
        write_atomic(&metrics_path, header.as_bytes())?;
        write_atomic(&episodes_path, EPISODES_HEADER.as_bytes())?;
    }

    let total = learner.num_iterations();
    // A stop falls on a checkpoint: the envs are reset there, so resuming from it
    // is exactly the uninterrupted run.
    let stop = args
        .stop_after
        .map_or(total, |n| {
            n.div_ceil(cfg.checkpoint_every)
                .saturating_mul(cfg.checkpoint_every)
        })
        .min(total);
    let bar = ProgressBar::new(total * learner.steps_per_iteration());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  {msg}")
            .expect("a valid template"),
    );
    bar.set_position(learner.global_step());
    let start = std::time::Instant::now();
    let start_step = learner.global_step();
    let mut recent: std::collections::VecDeque<f64> = Default::default();
    let mut metrics = std::fs::OpenOptions::new()
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("opening {}", metrics_path.display()))?;
    let mut episodes = std::fs::OpenOptions::new()
        .append(true)
        .open(&episodes_path)
        .with_context(|| format!("opening {}", episodes_path.display()))?;
    while learner.iteration() < stop {
        let s = learner.iterate().map_err(|e| anyhow::anyhow!("{e}"))?;
        let wall = start.elapsed().as_secs_f64();
        // Each file gets one write per iteration, so that a kill leaves whole rows
        // (and a torn last row is dropped on resume: it has too few cells).
        let mut rows = String::new();
        for (r, l) in s.episodic_returns.iter().zip(&s.episodic_lengths) {
            rows.push_str(&format!(
                "{},{},{r},{l},{wall:.3}\n",
                s.global_step,
                learner.iteration()
            ));
        }
        episodes.write_all(rows.as_bytes())?;
        for &r in &s.episodic_returns {
            recent.push_back(r);
            if recent.len() > 20 {
                recent.pop_front();
            }
        }
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let lengths: Vec<f64> = s.episodic_lengths.iter().map(|&l| l as f64).collect();
        let sps =
            (learner.global_step() - start_step) as f64 / start.elapsed().as_secs_f64().max(1e-9);
        let opt = |v: Option<f64>| v.map_or_else(String::new, |x| x.to_string());
        let mut row = format!(
            "{},{},{},{},{},{:.0}",
            s.global_step,
            learner.iteration(),
            s.learning_rate,
            opt(mean(&s.episodic_returns)),
            opt(mean(&lengths)),
            sps,
        );
        for (_, v) in &s.metrics {
            row.push_str(&format!(",{v}"));
        }
        row.push('\n');
        metrics.write_all(row.as_bytes())?;
        bar.set_position(learner.global_step());
        if let Some(m) = mean(recent.make_contiguous()) {
            bar.set_message(format!("return(20) {m:.1}"));
        }
        let it = learner.iteration();
        if it.is_multiple_of(cfg.checkpoint_every) || it == total {
            learner
                .reset_envs(cfg.seed)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            metrics.flush()?;
            episodes.flush()?;
            save_checkpoint(&dir, learner.as_ref())?;
            prune_checkpoints(&dir, cfg.keep_checkpoints)?;
        }
    }
    bar.finish_and_clear();
    if learner.iteration() < total {
        let rounded = match args.stop_after {
            Some(n) if n != learner.iteration() => format!(
                " (the first checkpoint at or after --stop-after {n}: checkpoints fall every {} iterations)",
                cfg.checkpoint_every
            ),
            _ => String::new(),
        };
        println!(
            "stopped at iteration {} of {total}{rounded}; continue with: hale train --resume {}",
            learner.iteration(),
            dir.display()
        );
        return Ok(());
    }

    if learner.agents().is_empty() {
        finish_single(&cfg, &dir, learner.as_ref())?;
    } else {
        finish_team(&cfg, &dir, learner.as_ref())?;
    }
    if let Some(t) = tracker {
        crate::report::write(&dir, &dir.join("report"))?;
        let config = serde_json::to_value(&cfg)?;
        let model = args.mlflow_model.as_deref().unwrap_or(&cfg.exp_name);
        let record = crate::tracking::training_record(&dir, &config, model)?;
        let run = t.start(&record.name, "hale train")?;
        t.finish(&run, record, &dir).with_context(|| {
            format!(
                "the run in {} is complete; logging it to MLflow failed",
                dir.display()
            )
        })?;
    }
    Ok(())
}

/// The end of a single-agent run: the policy bundle, then its evaluation on held-out
/// seeds (beside the env's baselines, paired, where it has any) and `summary.json`.
fn finish_single(cfg: &TrainConfig, dir: &Path, learner: &dyn Learner) -> Result<()> {
    let env_config = cfg.env_config_json();
    // The final policy bundle, then its evaluation on held-out seeds.
    let probe = make(&cfg.env, &env_config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = BundleSpec {
        format_version: bundle::FORMAT_VERSION,
        env_id: cfg.env.clone(),
        env_config: env_config.clone(),
        observation_space: probe.observation_space().clone(),
        action_space: probe.action_space().clone(),
        obs_dim: probe.observation_space().flat_dim().unwrap_or(0),
        heads: learner.heads().sizes.clone(),
        hidden: cfg.hidden(),
        algorithm: cfg.algorithm.clone(),
        encoder: Default::default(),
        hyperparameters: cfg.hyperparameters(),
        obs_normalization: None,
        git_revision: git_revision(),
        seed: cfg.seed,
        weights_sha256: String::new(),
    };
    let policy_dir = dir.join("policy");
    bundle::save(&policy_dir, &learner.network(), spec)?;
    let label = cfg.algorithm.clone();
    // Cloud and security envs: the trained policy beside the baselines, paired on the
    // same seeds.
    let baselines: &[&str] = match cfg.env.as_str() {
        "Scaling-v0" => &["hpa", "static"],
        "Healing-v0" => &["kubelet", "noop"],
        "Security-v0" => &["react-restore", "decoy-first", "noop"],
        "Cost-v0" => &["on-demand", "karpenter"],
        _ => &[],
    };
    let (returns, comparison) = if baselines.is_empty() {
        let loaded = Bundle::load(&policy_dir, &Device::flex())?;
        loaded.check_fits(&cfg.env, probe.observation_space(), probe.action_space())?;
        let mut policy = loaded.into_policy(&label);
        let mut returns = Vec::new();
        for k in 0..cfg.eval_episodes {
            let mut env = make(&cfg.env, &env_config).map_err(|e| anyhow::anyhow!("{e}"))?;
            returns.push(episode(env.as_mut(), &mut policy, cfg.eval_seed + k)?);
        }
        (returns, serde_json::Value::Null)
    } else {
        let mut specs: Vec<PolicySpec> = baselines.iter().map(|b| PolicySpec::parse(b)).collect();
        // `compare` loads the bundle and checks it fits before running anything.
        specs.push(PolicySpec {
            label: label.clone(),
            source: PolicySource::Bundle(policy_dir.clone()),
        });
        let (episodes, comparison) = crate::eval::compare(
            &cfg.env,
            &env_config,
            &specs,
            cfg.eval_episodes as usize,
            cfg.eval_seed,
        )?;
        let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
        println!(
            "\n{} on {} ({}), held-out seeds {}..{}:",
            label,
            cfg.env,
            env_config,
            cfg.eval_seed,
            cfg.eval_seed + cfg.eval_episodes
        );
        crate::eval::print_table(&cfg.env, &labels, cfg.eval_episodes as usize, &comparison);
        let returns = episodes
            .iter()
            .filter(|e| e.policy == label)
            .map(|e| e.episode_return)
            .collect();
        (returns, comparison)
    };
    let mean = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
    let summary = serde_json::json!({
        "env": cfg.env,
        "exp_name": cfg.exp_name,
        "seed": cfg.seed,
        "algorithm": cfg.algorithm,
        "global_step": learner.global_step(),
        "iterations": learner.iteration(),
        "eval_episodes": cfg.eval_episodes,
        "eval_seeds": [cfg.eval_seed, cfg.eval_seed + cfg.eval_episodes.saturating_sub(1)],
        "eval_mean_return": mean,
        "eval_returns": returns,
        "policy": "policy/",
        "comparison": comparison,
    });
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "{}: {} steps; greedy evaluation over {} held-out seeds: mean return {mean:.2}",
        dir.display(),
        learner.global_step(),
        cfg.eval_episodes
    );
    Ok(())
}

/// The end of a multi-agent run: a team folder (`policy/team.json` and one bundle per
/// agent, each for the single-agent env its agent mirrors, so that `hale eval` loads
/// them as a team), then the team against the team of baselines on held-out seeds,
/// paired, and `summary.json`.
fn finish_team(cfg: &TrainConfig, dir: &Path, learner: &dyn Learner) -> Result<()> {
    let probe = hale_envs::make_parallel(&cfg.env, &cfg.env_config_json())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Every default written out: evaluation's own defaults must not change the task.
    let resolved = serde_json::to_value(
        hale_envs::CloudOpsConfig::from_json(&cfg.env_config_json())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    )?;
    let policy_dir = dir.join("policy");
    for (agent, member) in learner.agents() {
        let (env_id, env_config) = hale_policies::team::mirror(&cfg.env, &resolved, agent)?;
        let obs = probe
            .observation_space(agent)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let spec = BundleSpec {
            format_version: bundle::FORMAT_VERSION,
            env_id: env_id.to_string(),
            env_config,
            observation_space: obs.clone(),
            action_space: probe
                .action_space(agent)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .clone(),
            obs_dim: obs.flat_dim().unwrap_or(0),
            heads: member.heads().sizes.clone(),
            hidden: cfg.hidden(),
            algorithm: cfg.algorithm.clone(),
            encoder: Default::default(),
            hyperparameters: cfg.hyperparameters(),
            obs_normalization: None,
            git_revision: git_revision(),
            seed: cfg.seed,
            weights_sha256: String::new(),
        };
        bundle::save(&policy_dir.join(agent), &member.network(), spec)?;
    }
    let agents: Vec<&str> = learner.agents().iter().map(|(a, _)| *a).collect();
    let team = serde_json::json!({
        "format_version": bundle::FORMAT_VERSION,
        "env_id": cfg.env,
        "env_config": resolved,
        "agents": agents,
        "algorithm": cfg.algorithm,
        "seed": cfg.seed,
        "git_revision": git_revision(),
    });
    write_atomic(
        &policy_dir.join(hale_policies::team::TEAM_FILE),
        serde_json::to_string_pretty(&team)?.as_bytes(),
    )?;
    let baselines: Vec<&str> = agents
        .iter()
        .map(|a| hale_policies::team::baseline_member(a).context("an agent without a baseline"))
        .collect::<Result<_>>()?;
    let label = cfg.algorithm.clone();
    let specs = vec![
        PolicySpec {
            label: "baselines".into(),
            source: PolicySource::Baseline(baselines.join("+")),
        },
        PolicySpec {
            label: label.clone(),
            source: PolicySource::Bundle(policy_dir.clone()),
        },
    ];
    let (episodes, comparison) = crate::eval::compare(
        &cfg.env,
        &resolved,
        &specs,
        cfg.eval_episodes as usize,
        cfg.eval_seed,
    )?;
    println!(
        "\n{label} team on {} ({}), held-out seeds {}..{}:",
        cfg.env,
        cfg.env_config_json(),
        cfg.eval_seed,
        cfg.eval_seed + cfg.eval_episodes
    );
    let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
    crate::eval::print_table(&cfg.env, &labels, cfg.eval_episodes as usize, &comparison);
    let returns: Vec<f64> = episodes
        .iter()
        .filter(|e| e.policy == label)
        .map(|e| e.episode_return)
        .collect();
    let mean = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
    let summary = serde_json::json!({
        "env": cfg.env,
        "exp_name": cfg.exp_name,
        "seed": cfg.seed,
        "algorithm": cfg.algorithm,
        "agents": agents,
        "global_step": learner.global_step(),
        "iterations": learner.iteration(),
        "eval_episodes": cfg.eval_episodes,
        "eval_seeds": [cfg.eval_seed, cfg.eval_seed + cfg.eval_episodes.saturating_sub(1)],
        "eval_mean_return": mean,
        "eval_returns": returns,
        "policy": "policy/",
        "comparison": comparison,
    });
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "{}: {} joint steps; the team's greedy evaluation over {} held-out seeds: mean team return {mean:.2}",
        dir.display(),
        learner.global_step(),
        cfg.eval_episodes
    );
    Ok(())
}

/// One row per finished training episode: the global step and iteration at the end of
/// the iteration it ended in, and the wall-clock seconds since this process started
/// training (a resumed run counts from its own start).
const EPISODES_HEADER: &str = "global_step,iteration,episodic_return,episodic_length,wall_s\n";

/// The columns every algorithm logs; its own follow.
const METRICS_HEADER: &str = "global_step,iteration,charts/learning_rate,charts/episodic_return,charts/episodic_length,charts/SPS";

fn episode(env: &mut dyn Env, policy: &mut dyn Policy, seed: u64) -> Result<f64> {
    let (mut obs, _) = env
        .reset(Some(seed), None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    policy.reset();
    let mut total = 0.0;
    loop {
        let a = policy.act(&obs, env.action_mask())?;
        let s = env.step(&a).map_err(|e| anyhow::anyhow!("{e}"))?;
        total += s.reward;
        obs = s.obs;
        if s.terminated || s.truncated {
            return Ok(total);
        }
    }
}

fn save_checkpoint(dir: &Path, learner: &dyn Learner) -> Result<()> {
    let ckpt = learner
        .checkpoint()
        .map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
    let name = format!("iter-{:06}", learner.iteration());
    let final_dir = dir.join("checkpoints").join(name);
    // The folder gets its name only when every file and the checksums are in it: a
    // kill halfway leaves a hidden temporary folder, which resuming ignores.
    hale_sim::fs::create_dir_atomic(&final_dir, |tmp| -> Result<()> {
        let mut sums = serde_json::Map::new();
        for (file, bytes) in &ckpt.files {
            std::fs::write(tmp.join(file), bytes)?;
            sums.insert(file.clone(), bundle::sha256_hex(bytes).into());
            kill_here_if_asked(learner.iteration());
        }
        let meta = serde_json::json!({
            "algorithm": learner.algorithm(),
            "state": ckpt.state,
            "sha256": sums,
        });
        std::fs::write(tmp.join("state.json"), serde_json::to_vec_pretty(&meta)?)?;
        Ok(())
    })
    .with_context(|| format!("writing {}", final_dir.display()))
}

/// A new run folder at `wanted`, or, if that name is taken (two runs of one config
/// started in the same second), at `wanted.2`, `wanted.3`, …: made with
/// `create_dir`, which fails if the folder exists, so two runs never share one.
fn new_run_dir(wanted: &Path) -> Result<PathBuf> {
    if let Some(parent) = wanted.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    for k in 1..1000 {
        let dir = if k == 1 {
            wanted.to_path_buf()
        } else {
            let mut name = wanted.as_os_str().to_owned();
            name.push(format!(".{k}"));
            PathBuf::from(name)
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("{}: 999 run folders of this name exist", wanted.display())
}

/// The crash-safety test's seam: with `HALE_TEST_KILL_IN_CHECKPOINT=N` set, the
/// process kills itself with SIGKILL halfway through writing checkpoint N (after
/// its first file), as a power cut or the OOM killer would. Unset, it does nothing.
fn kill_here_if_asked(iteration: u64) {
    let asked = std::env::var("HALE_TEST_KILL_IN_CHECKPOINT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    if asked == Some(iteration) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// The run's checkpoint folders (`iter-NNNNNN`), oldest first; unfinished writes
/// (`.iter-NNNNNN.tmp`, left by a kill) are not among them.
fn checkpoints(dir: &Path) -> Result<Vec<PathBuf>> {
    let ckpts = dir.join("checkpoints");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&ckpts)
        .with_context(|| format!("reading {}", ckpts.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("iter-"))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Deletes all but the newest `keep` checkpoints, and the temporary folders of
/// checkpoints whose writing a kill interrupted.
fn prune_checkpoints(dir: &Path, keep: u64) -> Result<()> {
    let ckpts = dir.join("checkpoints");
    for entry in std::fs::read_dir(&ckpts)
        .with_context(|| format!("reading {}", ckpts.display()))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(".iter-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let all = checkpoints(dir)?;
    let old = all
        .len()
        .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
    for path in &all[..old] {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The newest checkpoint whose files match their checksums. A corrupt one (a disk
/// that lost a write, a file altered by hand) is reported on stderr and the one
/// before it is read instead; an error only if none is whole.
fn last_good_checkpoint(dir: &Path) -> Result<(Checkpoint, PathBuf)> {
    let all = checkpoints(dir)?;
    let mut last_error: Option<anyhow::Error> = None;
    for at in all.iter().rev() {
        match read_checkpoint(at) {
            Ok(checkpoint) => {
                if let Some(e) = &last_error {
                    let e = hale_sim::report::error_chain(e.as_ref());
                    eprintln!("warning: {e}; resuming from {} instead", at.display());
                }
                return Ok((checkpoint, at.clone()));
            }
            Err(e) => {
                if let Some(previous) = last_error.replace(e) {
                    eprintln!(
                        "warning: {}",
                        hale_sim::report::error_chain(previous.as_ref())
                    );
                }
            }
        }
    }
    match last_error {
        Some(e) => Err(e.context("no whole checkpoint to resume from")),
        None => bail!(
            "{}: no checkpoint to resume from",
            dir.join("checkpoints").display()
        ),
    }
}

/// One checkpoint, its files checked against their checksums.
fn read_checkpoint(at: &Path) -> Result<Checkpoint> {
    let meta_path = at.join("state.json");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?,
    )
    .with_context(|| format!("{}: not JSON", meta_path.display()))?;
    let Some(sums) = meta["sha256"].as_object() else {
        bail!("{}: field sha256 missing", meta_path.display());
    };
    let mut files = Vec::new();
    for (file, sum) in sums {
        let p = at.join(file);
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        if sum.as_str() != Some(bundle::sha256_hex(&bytes).as_str()) {
            bail!(
                "{}: checksum does not match {} (truncated or altered?)",
                p.display(),
                meta_path.display()
            );
        }
        files.push((file.clone(), bytes));
    }
    let state = meta["state"].clone();
    Ok(Checkpoint { state, files })
}

/// Keeps the header and the rows of iterations ≤ `iteration` (rows written after the
/// checkpoint are written again by the resumed run).
fn truncate_metrics(path: &Path, iteration: u64) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = String::new();
    let cells = text.lines().next().map_or(0, |h| h.split(',').count());
    for (i, line) in text.lines().enumerate() {
        let keep = i == 0
            || line.split(',').count() == cells
                && line
                    .split(',')
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|it| it <= iteration);
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    write_atomic(path, out.as_bytes())?;
    Ok(())
}

pub(crate) fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
