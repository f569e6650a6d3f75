//! `hale-adapter`: runs a hale policy against real infrastructure, behind guardrails.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hale_adapter::config::{AdapterConfig, Mode, TargetConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// hale-adapter: run a trained policy (a bundle from `hale export`) or a baseline
/// against real infrastructure, within guardrails, with every decision audited.
///
/// Start with `hale-adapter check CONFIG.toml`: it reads the config, loads and checks
/// the policy against the env it drives, and prints what would run, touching nothing.
/// Example configs (scaling on Kubernetes in manual mode, scaling and healing on
/// Docker Swarm in auto mode) are in `adapter/configs/`; adapter/README.md describes
/// every field.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config: TOML fields, guardrails, the policy bundle (format version,
    /// weights checksum, env and spaces) or baseline, the services against the
    /// policy's env, the observation queries and, in manual mode, the endpoint's
    /// token: everything `run` checks before it starts. Touches no target.
    Check {
        /// The adapter's config file (TOML).
        config: PathBuf,
    },
    /// Run the decision loop: every `interval_s`, observe, decide, pass the guardrails,
    /// then act (auto) or propose and wait for a person (manual), and audit every
    /// step. Runs Scaling-v0 policies (replica counts) and Healing-v0 policies
    /// (restart, reschedule, roll back, drain; modify does not apply to them).
    ///
    /// In manual mode each proposal is printed with its explanation; answer on the
    /// terminal with `ID accept`, `ID decline` or `ID modify REPLICAS`, or POST
    /// `{"decision": "accept"}` (or decline, or modify with "replicas") to
    /// `/proposals/ID` on the `[server]` endpoint with the bearer token. A proposal
    /// nobody answers within `manual.ttl_s` expires and nothing is done.
    Run {
        /// The adapter's config file (TOML).
        config: PathBuf,
        /// Overrides the config's mode: `auto` acts and then notifies, `manual`
        /// proposes and waits.
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// Stop after this many decisions (default: run until stopped).
        #[arg(long)]
        steps: Option<u64>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Auto,
    Manual,
}

fn run(path: &std::path::Path, mode: Option<ModeArg>, steps: Option<u64>) -> Result<()> {
    let mut cfg = AdapterConfig::load(path)?;
    if let Some(m) = mode {
        cfg.mode = match m {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Manual => Mode::Manual,
        };
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let prepared = hale_adapter::run::prepare(&cfg).with_context(|| path.display().to_string())?;
    let mut adapter = hale_adapter::run::Adapter::start(&cfg, prepared)
        .with_context(|| path.display().to_string())?;
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
    // The same checks as `run`, short of contacting the target.
    let prepared = hale_adapter::run::prepare(&cfg).with_context(|| path.display().to_string())?;
    let g = &cfg.guardrails;
    println!("config {}: ok", path.display());
    println!("policy: {}", prepared.description());
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
        TargetConfig::Docker {
            socket, services, ..
        } => println!(
            "target: Docker Swarm at {socket}, services {} (not contacted by check)",
            services.join(", ")
        ),
        TargetConfig::Kubernetes {
            namespace,
            deployments,
            ..
        } => println!(
            "target: Kubernetes, deployments {} in namespace {namespace} (not contacted by check)",
            deployments.join(", ")
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
    match &cfg.server {
        Some(server) => println!(
            "endpoint: http://{}/metrics{}",
            server.listen,
            if cfg.mode == Mode::Manual {
                format!(" and /proposals (bearer token from ${})", server.token_env)
            } else {
                String::new()
            }
        ),
        None => println!("endpoint: none (add a [server] table for /metrics)"),
    }
    if cfg.mode == Mode::Manual {
        println!(
            "manual: proposals expire after {} s{}",
            cfg.manual.ttl_s,
            if cfg.manual.prompt {
                ", answered on this terminal or the endpoint"
            } else {
                ""
            }
        );
    }
    if let Some(url) = &cfg.notify.webhook {
        println!("webhook: {url}");
    }
    println!("audit log: {}", cfg.audit_log.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Run {
            config,
            mode,
            steps,
        } => run(&config, mode, steps),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hale_sim::report::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}
