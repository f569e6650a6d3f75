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
    /// nobody answers within `manual.ttl_s` expires and nothing is done. With a
    /// token set, the endpoint also serves a web console: the adapter prints a
    /// one-time login link at start.
    Run {
        /// The adapter's config file (TOML).
        config: PathBuf,
        /// Overrides the config's mode, for every agent it lists: `auto` acts and
        /// then notifies, `manual` proposes and waits.
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// Stop after this many decisions (default: run until stopped).
        #[arg(long)]
        steps: Option<u64>,
    },
    /// Ask a running adapter, in plain words: `scale api to 4`, `restart api-7f9c`,
    /// `roll back checkout`, `drain node-b`, `pause healing`, `switch scaling to
    /// manual`, `why did you restart api-7f9c?`, `what is wrong with checkout?`, `what
    /// happened in the last hour?` (`help` lists them). Actions go to the agent that
    /// owns them and through the guardrails, and are audited; questions are answered
    /// from the audit log. Reads the endpoint and its token from the config.
    Ask {
        /// The running adapter's config file (its `[server]` table).
        config: PathBuf,
        /// The request (quotes optional).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// Who asks, for the audit log (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Print a one-time login link to a running adapter's web console (valid 10
    /// minutes, good once). Reads the endpoint and its token from the config; the
    /// link printed at start may be used or expired.
    Login {
        /// The running adapter's config file (its `[server]` table).
        config: PathBuf,
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
        // Every agent of the adapter, not only the first.
        cfg.mode = match m {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Manual => Mode::Manual,
        };
        for also in &mut cfg.also {
            also.mode = cfg.mode;
        }
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if !cfg.also.is_empty() {
        let mut team =
            hale_adapter::team::Team::new(&cfg).with_context(|| path.display().to_string())?;
        return Ok(hale_adapter::run::run_loop(
            &mut team,
            cfg.interval_s,
            steps,
        )?);
    }
    let prepared = hale_adapter::run::prepare(&cfg).with_context(|| path.display().to_string())?;
    let mut adapter = hale_adapter::run::Adapter::start(&cfg, prepared)
        .with_context(|| path.display().to_string())?;
    Ok(hale_adapter::run::run_loop(
        &mut adapter,
        cfg.interval_s,
        steps,
    )?)
}

/// A running adapter's endpoint (`http://HOST:PORT`, a wildcard host read as
/// loopback) and bearer token, from its config.
fn endpoint(config: &std::path::Path) -> Result<(String, String)> {
    let cfg = AdapterConfig::load(config)?;
    let server = cfg.server.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no [server] table: the adapter serves requests and its console on its endpoint",
            config.display()
        )
    })?;
    let token = server
        .token()
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
    let listen = server
        .listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    Ok((format!("http://{listen}"), token))
}

/// An HTTP client for the adapter's endpoint that reads error statuses as answers.
fn client(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// `hale-adapter login`: a one-time link to the console of a running adapter.
fn login(config: &std::path::Path) -> Result<()> {
    let (base, token) = endpoint(config)?;
    let url = format!("{base}/login/link");
    let agent = client(std::time::Duration::from_secs(10));
    let mut response = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .send_empty()
        .with_context(|| format!("{url}: is the adapter running?"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{url}: answered {status} with no JSON: {text}"))?;
    match body["link"].as_str() {
        Some(link) if status == 200 => {
            println!("{base}{link}");
            Ok(())
        }
        _ => anyhow::bail!(
            "{url}: answered {status}: {}",
            body["error"].as_str().unwrap_or(&text)
        ),
    }
}

/// `hale-adapter ask`: sends a request to a running adapter's endpoint.
fn ask(config: &std::path::Path, text: &[String], by: Option<String>) -> Result<()> {
    let text = text.join(" ");
    // A request that does not parse is refused here, without a round trip.
    if let Err(e) = hale_adapter::ask::parse(&text) {
        anyhow::bail!("{e}");
    }
    let (base, token) = endpoint(config)?;
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into());
    let url = format!("{base}/ask");
    let agent = client(hale_adapter::server::ASK_WAIT + std::time::Duration::from_secs(10));
    let mut response = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"text": text, "by": by}).to_string())
        .with_context(|| format!("{url}: is the adapter running?"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("{url}: answered {status} with no body"))?;
    let body: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{url}: answered {status} with no JSON: {text}"))?;
    match (status, body["answer"].as_str(), body["error"].as_str()) {
        (200 | 202, Some(answer), _) => {
            println!("{answer}");
            Ok(())
        }
        (_, _, Some(error)) => anyhow::bail!("{error}"),
        _ => anyhow::bail!("{url}: answered {status}: {body}"),
    }
}

fn check(path: &std::path::Path) -> Result<()> {
    let cfg = AdapterConfig::load(path)?;
    // The same checks as `run`, short of contacting the target.
    let prepared = hale_adapter::run::prepare(&cfg).with_context(|| path.display().to_string())?;
    let g = &cfg.guardrails;
    println!("config {}: ok", path.display());
    println!("policy: {}", prepared.description());
    for (i, member) in cfg.members().iter().enumerate().skip(1) {
        let p = hale_adapter::run::prepare(member)
            .with_context(|| format!("{}: also[{}]", path.display(), i - 1))?;
        println!(
            "also: {} ({:?} mode), coordinated over {} s windows",
            p.description(),
            member.mode,
            cfg.coordination_window_s
        );
    }
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
                format!(
                    ", /proposals and /ask (bearer token from ${})",
                    server.token_env
                )
            } else {
                format!(
                    ", and /ask when a bearer token is set (${} or server.token_file)",
                    server.token_env
                )
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
        Command::Ask { config, text, by } => ask(&config, &text, by),
        Command::Login { config } => login(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hale_sim::report::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}
