//! `hale train`: a training run from a TOML config into a run folder.
//!
//! ```text
//! runs/{env}__{exp_name}__{seed}__{unix time}/
//!   config.toml       the resolved config (every default written out)
//!   metrics.csv       one row per iteration, CleanRL's names (charts/…, losses/…)
//!   checkpoints/iter-NNNNNN/{state.json, model.bpk, optim.bin}
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
use hale_envs::{AutoReset, Env, VectorEnv, make};
use hale_policies::bundle::{self, Bundle, BundleSpec, write_atomic};
use hale_policies::learn::ppo::{Ppo, PpoConfig, RunState};
use hale_policies::{Policy, PolicySource, PolicySpec};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A training run's config (TOML).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Experiment name, part of the run folder's name.
    #[serde(default = "default_exp")]
    pub exp_name: String,
    /// Registered env id.
    pub env: String,
    /// The env's config.
    #[serde(default = "empty_table")]
    pub env_config: toml::Table,
    /// Seed of the run (envs get seed + i, the network and the sampling streams derive
    /// from it).
    #[serde(default = "one")]
    pub seed: u64,
    /// `ppo`.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Checkpoint (and reset the envs) every this many iterations.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Episodes of the final evaluation.
    #[serde(default = "default_eval_episodes")]
    pub eval_episodes: u64,
    /// First seed of the evaluation episodes (held out: far from the training seeds).
    #[serde(default = "default_eval_seed")]
    pub eval_seed: u64,
    /// PPO hyperparameters.
    #[serde(default)]
    pub ppo: PpoConfig,
}

fn default_exp() -> String {
    "ppo".into()
}
fn empty_table() -> toml::Table {
    toml::Table::new()
}
fn one() -> u64 {
    1
}
fn default_algorithm() -> String {
    "ppo".into()
}
fn default_checkpoint_every() -> u64 {
    25
}
fn default_eval_episodes() -> u64 {
    20
}
fn default_eval_seed() -> u64 {
    1_000_000
}

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
    /// Stop after this many iterations in all (resume later with --resume).
    #[arg(long)]
    stop_after: Option<u64>,
}

fn env_json(cfg: &TrainConfig) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(&cfg.env_config)?)
}

fn read_config(path: &Path) -> Result<TrainConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: TrainConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    if cfg.algorithm != "ppo" {
        bail!(
            "{}: algorithm: unknown algorithm {:?} (known: ppo)",
            path.display(),
            cfg.algorithm
        );
    }
    cfg.ppo
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: ppo: {e}", path.display()))?;
    if cfg.checkpoint_every == 0 {
        bail!("{}: checkpoint_every must be positive", path.display());
    }
    Ok(cfg)
}

pub fn run(args: TrainArgs) -> Result<()> {
    let (cfg, dir) = match (&args.resume, &args.config) {
        (Some(dir), _) => (read_config(&dir.join("config.toml"))?, dir.clone()),
        (None, Some(path)) => {
            let cfg = read_config(path)?;
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let dir = args.out.join(format!(
                "{}__{}__{}__{}",
                cfg.env, cfg.exp_name, cfg.seed, time
            ));
            if dir.exists() {
                bail!("{} exists already", dir.display());
            }
            std::fs::create_dir_all(dir.join("checkpoints"))
                .with_context(|| format!("creating {}", dir.display()))?;
            write_atomic(
                &dir.join("config.toml"),
                toml::to_string_pretty(&cfg)?.as_bytes(),
            )?;
            (cfg, dir)
        }
        (None, None) => bail!("give a config file or --resume RUN_DIR"),
    };
    let env_config = env_json(&cfg)?;
    let envs = VectorEnv::make(&cfg.env, &env_config, cfg.ppo.num_envs, AutoReset::SameStep)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let device = Device::flex().autodiff();
    let mut ppo = Ppo::new(cfg.ppo.clone(), envs, device, cfg.seed)
        .map_err(|e| anyhow::anyhow!("ppo: {e}"))?;
    let metrics_path = dir.join("metrics.csv");
    if args.resume.is_some() {
        let (state, at) = last_checkpoint(&dir)?;
        let model = std::fs::read(at.join("model.bpk"))
            .with_context(|| format!("reading {}", at.join("model.bpk").display()))?;
        let optim = std::fs::read(at.join("optim.bin"))
            .with_context(|| format!("reading {}", at.join("optim.bin").display()))?;
        ppo.restore(&state, model, optim)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at.display()))?;
        ppo.reset_envs(cfg.seed)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        truncate_metrics(&metrics_path, state.iteration)?;
        eprintln!(
            "resuming {} at iteration {} ({} steps)",
            dir.display(),
            state.iteration,
            state.global_step
        );
    } else {
        write_atomic(&metrics_path, METRICS_HEADER.as_bytes())?;
    }

    let total = cfg.ppo.num_iterations();
    let stop = args.stop_after.unwrap_or(total).min(total);
    let bar = ProgressBar::new(cfg.ppo.num_iterations() * cfg.ppo.batch_size() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  {msg}")
            .expect("a valid template"),
    );
    bar.set_position(ppo.global_step);
    let start = std::time::Instant::now();
    let start_step = ppo.global_step;
    let mut recent: std::collections::VecDeque<f64> = Default::default();
    let mut metrics = std::fs::OpenOptions::new()
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("opening {}", metrics_path.display()))?;
    while ppo.iteration < stop {
        let s = ppo.iterate().map_err(|e| anyhow::anyhow!("{e}"))?;
        for &r in &s.episodic_returns {
            recent.push_back(r);
            if recent.len() > 20 {
                recent.pop_front();
            }
        }
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let lengths: Vec<f64> = s.episodic_lengths.iter().map(|&l| l as f64).collect();
        let sps = (ppo.global_step - start_step) as f64 / start.elapsed().as_secs_f64().max(1e-9);
        let opt = |v: Option<f64>| v.map_or_else(String::new, |x| x.to_string());
        writeln!(
            metrics,
            "{},{},{},{},{},{:.0},{},{},{},{},{},{}",
            s.global_step,
            ppo.iteration,
            s.learning_rate,
            opt(mean(&s.episodic_returns)),
            opt(mean(&lengths)),
            sps,
            s.value_loss,
            s.policy_loss,
            s.entropy,
            s.approx_kl,
            s.clipfrac,
            s.explained_variance
        )?;
        bar.set_position(ppo.global_step);
        if let Some(m) = mean(recent.make_contiguous()) {
            bar.set_message(format!("return(20) {m:.1}"));
        }
        if ppo.iteration.is_multiple_of(cfg.checkpoint_every) || ppo.iteration == total {
            ppo.reset_envs(cfg.seed)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            metrics.flush()?;
            save_checkpoint(&dir, &ppo)?;
        }
    }
    bar.finish_and_clear();
    if ppo.iteration < total {
        println!(
            "stopped at iteration {} of {total}; continue with: hale train --resume {}",
            ppo.iteration,
            dir.display()
        );
        return Ok(());
    }

    // The final policy bundle, then its evaluation on held-out seeds.
    let probe = make(&cfg.env, &env_config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = BundleSpec {
        format_version: bundle::FORMAT_VERSION,
        env_id: cfg.env.clone(),
        env_config: env_config.clone(),
        observation_space: probe.observation_space().clone(),
        action_space: probe.action_space().clone(),
        obs_dim: probe.observation_space().flat_dim().unwrap_or(0),
        heads: ppo.heads().sizes.clone(),
        hidden: cfg.ppo.hidden.clone(),
        algorithm: "ppo".into(),
        hyperparameters: serde_json::to_value(&cfg.ppo)?,
        obs_normalization: None,
        git_revision: git_revision(),
        seed: cfg.seed,
        weights_sha256: String::new(),
    };
    let policy_dir = dir.join("policy");
    bundle::save(&policy_dir, ppo.model(), spec)?;
    let loaded = Bundle::load(&policy_dir, &Device::flex())?;
    loaded.check_fits(&cfg.env, probe.observation_space(), probe.action_space())?;
    let label = cfg.algorithm.clone();
    let mut policy = loaded.into_policy(&label);
    // Cloud envs: the trained policy beside the baselines, paired on the same seeds.
    let baselines: &[&str] = match cfg.env.as_str() {
        "Scaling-v0" => &["hpa", "static"],
        "Healing-v0" => &["kubelet", "noop"],
        _ => &[],
    };
    let (returns, comparison) = if baselines.is_empty() {
        let mut returns = Vec::new();
        for k in 0..cfg.eval_episodes {
            let mut env = make(&cfg.env, &env_config).map_err(|e| anyhow::anyhow!("{e}"))?;
            returns.push(episode(env.as_mut(), &mut policy, cfg.eval_seed + k)?);
        }
        (returns, serde_json::Value::Null)
    } else {
        let mut specs: Vec<PolicySpec> = baselines.iter().map(|b| PolicySpec::parse(b)).collect();
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
        crate::eval::print_table(&labels, cfg.eval_episodes as usize, &comparison);
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
        "global_step": ppo.global_step,
        "iterations": ppo.iteration,
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
        ppo.global_step,
        cfg.eval_episodes
    );
    Ok(())
}

const METRICS_HEADER: &str = "global_step,iteration,charts/learning_rate,charts/episodic_return,charts/episodic_length,charts/SPS,losses/value_loss,losses/policy_loss,losses/entropy,losses/approx_kl,losses/clipfrac,losses/explained_variance\n";

fn episode(env: &mut dyn Env, policy: &mut dyn Policy, seed: u64) -> Result<f64> {
    let (mut obs, _) = env
        .reset(Some(seed), None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    policy.reset();
    let mut total = 0.0;
    loop {
        let a = policy.act(&obs, env.action_mask());
        let s = env.step(&a).map_err(|e| anyhow::anyhow!("{e}"))?;
        total += s.reward;
        obs = s.obs;
        if s.terminated || s.truncated {
            return Ok(total);
        }
    }
}

fn save_checkpoint(dir: &Path, ppo: &Ppo) -> Result<()> {
    let (state, model, optim) = ppo
        .checkpoint()
        .map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
    let name = format!("iter-{:06}", state.iteration);
    let tmp = dir.join("checkpoints").join(format!(".{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    std::fs::write(tmp.join("model.bpk"), &model)?;
    std::fs::write(tmp.join("optim.bin"), &optim)?;
    let meta = serde_json::json!({
        "state": state,
        "model_sha256": bundle::sha256_hex(&model),
        "optim_sha256": bundle::sha256_hex(&optim),
    });
    std::fs::write(tmp.join("state.json"), serde_json::to_vec_pretty(&meta)?)?;
    let final_dir = dir.join("checkpoints").join(name);
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir)
        .with_context(|| format!("writing {}", final_dir.display()))?;
    Ok(())
}

/// The newest checkpoint whose files match their checksums.
fn last_checkpoint(dir: &Path) -> Result<(RunState, PathBuf)> {
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
    let Some(at) = names.pop() else {
        bail!("{}: no checkpoint to resume from", ckpts.display());
    };
    let meta_path = at.join("state.json");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?,
    )
    .with_context(|| format!("{}: not JSON", meta_path.display()))?;
    for (file, key) in [("model.bpk", "model_sha256"), ("optim.bin", "optim_sha256")] {
        let p = at.join(file);
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        if meta[key].as_str() != Some(bundle::sha256_hex(&bytes).as_str()) {
            bail!(
                "{}: checksum does not match {} (truncated or altered?)",
                p.display(),
                meta_path.display()
            );
        }
    }
    let state: RunState = serde_json::from_value(meta["state"].clone())
        .with_context(|| format!("{}: field state", meta_path.display()))?;
    Ok((state, at))
}

/// Keeps the header and the rows of iterations ≤ `iteration` (rows written after the
/// checkpoint are written again by the resumed run).
fn truncate_metrics(path: &Path, iteration: u64) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let keep = i == 0
            || line
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

fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
