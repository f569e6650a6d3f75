//! `hale-adapter`: runs a hale policy against real infrastructure, behind guardrails.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hale_adapter::config::{AdapterConfig, TargetConfig};
use hale_adapter::guard::Guard;
use std::path::PathBuf;
use std::process::ExitCode;

/// hale-adapter: run a trained policy (a bundle from `hale export`) or a baseline
/// against real infrastructure, within guardrails, with every decision audited.
///
/// Start with `hale-adapter check CONFIG.toml`: it reads the config, loads and checks
/// the policy against the env it drives, and prints what would run, touching nothing.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config: TOML fields, guardrails, the policy bundle (format version,
    /// weights checksum, env and spaces) or baseline. Touches no target.
    Check {
        /// The adapter's config file (TOML).
        config: PathBuf,
    },
    /// Run the decision loop: every `interval_s`, observe, decide, pass the guardrails,
    /// act, and audit. This version runs Scaling-v0 policies in auto mode.
    Run {
        /// The adapter's config file (TOML).
        config: PathBuf,
        /// Stop after this many decisions (default: run until stopped).
        #[arg(long)]
        steps: Option<u64>,
    },
}

fn run(path: &std::path::Path, steps: Option<u64>) -> Result<()> {
    let cfg = AdapterConfig::load(path)?;
    let mut adapter =
        hale_adapter::run::Adapter::new(&cfg).with_context(|| path.display().to_string())?;
    let start = std::time::Instant::now();
    let mut n = 0;
    loop {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        adapter.step(unix, start.elapsed().as_secs_f64())?;
        n += 1;
        if steps.is_some_and(|s| n >= s) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(cfg.interval_s));
    }
}

fn check(path: &std::path::Path) -> Result<()> {
    let cfg = AdapterConfig::load(path)?;
    let loaded = hale_adapter::policy::load(&cfg)?;
    let guard = Guard::new(cfg.guardrails.clone()).map_err(anyhow::Error::msg)?;
    let g = guard.config();
    println!("config {}: ok", path.display());
    println!("policy: {}", loaded.description);
    println!(
        "mode: {:?}, a decision every {} s",
        cfg.mode, cfg.interval_s
    );
    match &cfg.target {
        TargetConfig::DryRun {
            namespace,
            services,
            ..
        } => println!(
            "target: dry-run, {} services in {namespace}",
            services.len()
        ),
    }
    println!(
        "guardrails: replicas {}..={}, step {}, cool-down {} s, {} disruptive per {} s, deny {:?}",
        g.min_replicas,
        g.max_replicas,
        g.max_step,
        g.cooldown_s,
        g.max_disruptive,
        g.window_s,
        g.deny
    );
    match &cfg.observation {
        Some(o) => println!(
            "observation: Prometheus at {} (timeout {} s, stale after {} s)",
            o.prometheus, o.timeout_s, o.max_age_s
        ),
        None => println!("observation: none configured"),
    }
    println!("audit log: {}", cfg.audit_log.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config, steps } => run(&config, steps),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
