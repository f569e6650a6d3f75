//! `hale`: the command-line tool of the hale framework.
//!
//! Scenarios (`sim`), environments (`env`), traces (`data`), training (`train`),
//! evaluation beside the baselines (`eval`) and policy bundles for deployment
//! (`export`).

mod bench;
mod data_cmd;
mod device;
mod env_cmd;
mod eval;
mod export_cmd;
mod plot;
mod report;
mod sweep_cmd;
mod table;
mod timeline;
mod tracking;
mod train;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hale_sim::{BUILTINS, Scenario, SimTime, Simulation};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;

/// Training allocates and frees many tensors of a few megabytes: glibc's malloc maps
/// and unmaps each (a third of a GNN run's time went to the kernel); mimalloc reuses
/// them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hale: simulate, train and deploy self-healing and autoscaling policies.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with simulator scenarios.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Work with environments (Gymnasium-style).
    #[command(subcommand)]
    Env(env_cmd::EnvCommand),
    /// Evaluate policies on the same seeds and compare them, paired.
    Eval(eval::EvalArgs),
    /// Inspect, convert, fit and generate traces (Azure Functions, NASA, Bitbrains,
    /// LANL, hale series, synthetic).
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Train a policy (PPO or DQN) from a TOML config into a run folder; --resume
    /// continues one.
    Train(train::TrainArgs),
    /// Check a training run's policy bundle and copy it out for deployment.
    Export(export_cmd::ExportArgs),
    /// The benchmark suite: named tasks (env, scenario, split, protocol, baselines);
    /// list them, or compare policies on one.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run a sweep: a base config, grid and random axes over its fields, seeds, and
    /// benchmark tasks; trials in parallel (--jobs), resumable, in one table
    /// (trials.csv, .parquet).
    Sweep(sweep_cmd::SweepArgs),
    /// Figures (SVG and PNG) and an index.html for a run, a folder of runs, a sweep or
    /// an evaluation: learning curves with seed bands, comparisons with paired 95 %
    /// CIs, episode timelines.
    Report(report::ReportArgs),
}

#[derive(Subcommand)]
enum SimCommand {
    /// List the builtin scenarios.
    List,
    /// Validate scenario files (or builtin names) and summarise them.
    Check {
        /// Scenario files or builtin names.
        #[arg(required = true)]
        scenarios: Vec<String>,
    },
    /// Run a scenario with no policy acting and report what monitoring saw.
    Run {
        /// Builtin scenario name or path to a scenario TOML file.
        scenario: String,
        /// Simulated seconds (default: the scenario's `simulation.duration_s`).
        #[arg(long)]
        seconds: Option<f64>,
        /// Seed of every random stream of the run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print a progress line every this many simulated seconds (0: none).
        #[arg(long, default_value_t = 300.0)]
        every: f64,
        /// Print the final summary as one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hale_sim::report::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Env(cmd) => env_cmd::run(cmd),
        Command::Eval(args) => eval::run(args),
        Command::Data(cmd) => data_cmd::run(cmd),
        Command::Train(args) => train::run(args),
        Command::Export(args) => export_cmd::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Sweep(args) => sweep_cmd::run(args),
        Command::Report(args) => report::run(args),
        Command::Sim(SimCommand::List) => {
            for name in BUILTINS {
                let s = Scenario::builtin(name)?;
                println!(
                    "{name:<18} {} services, {} hosts, {:?} fidelity — {}",
                    s.spec.services.len(),
                    s.initial_hosts.len(),
                    s.spec.fidelity,
                    s.spec.description
                );
            }
            Ok(())
        }
        Command::Sim(SimCommand::Check { scenarios }) => {
            let mut failed = 0;
            for name in &scenarios {
                match hale_datasets::load_scenario(name) {
                    Ok(s) => println!(
                        "ok    {name}: \"{}\", {} zones, {} hosts, {} services, {} call edges, {} workloads, {} SLOs, {} scheduled faults, {} fault processes",
                        s.spec.name,
                        s.spec.zones.len(),
                        s.initial_hosts.len(),
                        s.spec.services.len(),
                        s.edges.len() - s.spec.workload.len(),
                        s.spec.workload.len(),
                        s.spec.slos.len(),
                        s.spec.faults.schedule.len(),
                        s.spec.faults.mtbf.len()
                    ),
                    Err(e) => {
                        failed += 1;
                        println!("error {e}");
                    }
                }
            }
            anyhow::ensure!(
                failed == 0,
                "{failed} of {} scenarios are invalid",
                scenarios.len()
            );
            Ok(())
        }
        Command::Sim(SimCommand::Run {
            scenario,
            seconds,
            seed,
            every,
            json,
        }) => {
            let sc = Arc::new(hale_datasets::load_scenario(&scenario)?);
            let secs = seconds.unwrap_or(sc.spec.simulation.duration_s);
            anyhow::ensure!(
                secs.is_finite() && secs > 0.0,
                "--seconds must be positive, got {secs}"
            );
            anyhow::ensure!(
                secs <= hale_sim::MAX_DURATION_S,
                "--seconds: {secs} s is longer than the longest run, {} s (a year)",
                hale_sim::MAX_DURATION_S
            );
            let summary = simulate(sc, secs, seed, if json { 0.0 } else { every })
                .with_context(|| format!("running {scenario}"))?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                summary.print();
            }
            Ok(())
        }
    }
}

#[derive(Serialize)]
struct RunSummary {
    scenario: String,
    seed: u64,
    simulated_s: f64,
    wall_s: f64,
    events: u64,
    requests_arrived: f64,
    requests_completed: f64,
    requests_failed: f64,
    requests_timed_out: f64,
    mean_latency_ms: f64,
    cost: f64,
    slo_violation_s: Vec<f64>,
    faults: usize,
    faults_resolved: usize,
}

impl RunSummary {
    fn print(&self) {
        println!(
            "scenario {} (seed {}), {:.0} simulated s in {:.2} s wall, {} events",
            self.scenario, self.seed, self.simulated_s, self.wall_s, self.events
        );
        let ok = 100.0 * self.requests_completed / self.requests_arrived.max(1.0);
        println!(
            "requests: {:.0} arrived, {:.0} completed ({ok:.2} %), {:.0} failed, {:.0} timed out; mean latency {:.2} ms",
            self.requests_arrived,
            self.requests_completed,
            self.requests_failed,
            self.requests_timed_out,
            self.mean_latency_ms
        );
        println!(
            "cost {:.3}; SLO violation seconds {:?}; faults {} ({} resolved)",
            self.cost, self.slo_violation_s, self.faults, self.faults_resolved
        );
    }
}

fn simulate(sc: Arc<Scenario>, secs: f64, seed: u64, every: f64) -> Result<RunSummary> {
    let start = std::time::Instant::now();
    let mut sim = Simulation::new(sc.clone(), seed);
    let bar = ProgressBar::new(secs.ceil() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} simulated s, {per_sec}, eta {eta}")
            .context("progress bar template")?,
    );
    let chunk = if every > 0.0 {
        every
    } else {
        (secs / 100.0).max(1.0)
    };
    let mut t = 0.0;
    while t < secs {
        t = (t + chunk).min(secs);
        sim.run_until(SimTime::from_secs_f64(t));
        bar.set_position(t as u64);
        if every > 0.0 {
            let k = sim.requests();
            let worst = sim.observe().and_then(|snap| {
                snap.services
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.p99_ms.total_cmp(&b.1.p99_ms))
                    .map(|(i, m)| (i, m.p99_ms))
            });
            let worst = worst
                .map(|(i, p)| format!("slowest {} p99 {p:.1} ms", sc.spec.services[i].name))
                .unwrap_or_default();
            let line = format!(
                "t={t:>7.0}s  arrived {:>10.0}  completed {:>10.0}  failed {:>8.0}  timed out {:>8.0}  {worst}  cost {:.3}",
                k.arrived,
                k.completed,
                k.failed,
                k.timed_out,
                sim.cost()
            );
            bar.suspend(|| println!("{line}"));
        }
    }
    bar.finish_and_clear();
    let k = sim.requests();
    Ok(RunSummary {
        scenario: sc.origin.clone(),
        seed,
        simulated_s: secs,
        wall_s: start.elapsed().as_secs_f64(),
        events: sim.events_processed(),
        requests_arrived: k.arrived,
        requests_completed: k.completed,
        requests_failed: k.failed,
        requests_timed_out: k.timed_out,
        mean_latency_ms: k.mean_latency_s() * 1e3,
        cost: sim.cost(),
        slo_violation_s: sim.slo_violation_s().to_vec(),
        faults: sim.faults().len(),
        faults_resolved: sim
            .faults()
            .iter()
            .filter(|f| f.resolved_at.is_some())
            .count(),
    })
}
