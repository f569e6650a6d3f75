//! `hale env …`: list, check, replay and benchmark environments.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use hale_envs::{AutoReset, Value, VectorEnv, check_registered, make, registry};
use hale_sim::rng::Stream;
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum EnvCommand {
    /// List the registered environments with their spaces.
    List,
    /// Run the environment checker on one env, or on every registered env.
    Check {
        /// Env id (default: all).
        id: Option<String>,
        /// Env configuration as a JSON object, e.g. '{"scenario": "three-tier"}'.
        #[arg(long)]
        config: Option<String>,
        /// Steps per checked trajectory.
        #[arg(long, default_value_t = 100)]
        steps: usize,
    },
    /// Replay episodes from a JSON-lines file and print what the env returned.
    ///
    /// Each input line is {"seed": optional, "options": optional object, "actions":
    /// [...]}; each output line is {"steps": [{"obs", "reward", "terminated",
    /// "truncated"}, ...]}, stopping at the end of the episode. Nothing is printed
    /// unless every line replays.
    Replay {
        /// Env id.
        #[arg(long)]
        env: String,
        /// Env configuration as a JSON object.
        #[arg(long)]
        config: Option<String>,
        /// The episodes file.
        episodes: PathBuf,
    },
    /// Measure steps per second of a vector env with random (masked) actions.
    Bench {
        /// Env id.
        #[arg(long)]
        env: String,
        /// Env configuration as a JSON object.
        #[arg(long)]
        config: Option<String>,
        /// Sub-envs stepped together.
        #[arg(long, default_value_t = 64)]
        num_envs: usize,
        /// Vector steps (each steps every sub-env once).
        #[arg(long, default_value_t = 10_000)]
        steps: usize,
        /// Seed of the envs and of the random actions.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn parse_config(config: Option<&str>) -> Result<Json> {
    match config {
        None => Ok(Json::Null),
        Some(text) => {
            let v: Json = serde_json::from_str(text)
                .with_context(|| format!("--config is not JSON: {text}"))?;
            anyhow::ensure!(v.is_object(), "--config must be a JSON object, got {v}");
            Ok(v)
        }
    }
}

pub fn run(cmd: EnvCommand) -> Result<()> {
    match cmd {
        EnvCommand::List => {
            for spec in registry() {
                let env = make(spec.id, &Json::Null)?;
                println!("{:<12} {}", spec.id, spec.description);
                println!(
                    "{:<12}   observation: {}",
                    "",
                    describe(env.observation_space())
                );
                println!("{:<12}   action:      {}", "", describe(env.action_space()));
            }
            for spec in hale_envs::parallel_registry() {
                let env = hale_envs::make_parallel(spec.id, &Json::Null)?;
                println!("{:<12} {} (multi-agent)", spec.id, spec.description);
                for agent in env.possible_agents() {
                    println!(
                        "{:<12}   {agent}: observation {}, action {}",
                        "",
                        describe(env.observation_space(agent)?),
                        describe(env.action_space(agent)?)
                    );
                }
                println!("{:<12}   state:      {}", "", describe(env.state_space()));
            }
            Ok(())
        }
        EnvCommand::Check { id, config, steps } => {
            let config = parse_config(config.as_deref())?;
            let ids: Vec<String> = match id {
                Some(id) => vec![id],
                None => registry()
                    .iter()
                    .map(|s| s.id)
                    .chain(hale_envs::parallel_registry().iter().map(|s| s.id))
                    .map(String::from)
                    .collect(),
            };
            let mut failed = 0;
            for id in &ids {
                let failures = if hale_envs::parallel_registry().iter().any(|s| s.id == id) {
                    hale_envs::check_parallel_env(&|| hale_envs::make_parallel(id, &config), steps)
                } else {
                    check_registered(id, &config, steps)
                };
                if failures.is_empty() {
                    println!("ok    {id}");
                } else {
                    failed += 1;
                    for f in failures {
                        println!("FAIL  {f}");
                    }
                }
            }
            anyhow::ensure!(
                failed == 0,
                "{failed} of {} environments failed the checker",
                ids.len()
            );
            Ok(())
        }
        EnvCommand::Replay {
            env,
            config,
            episodes,
        } => {
            let mut e = make(&env, &parse_config(config.as_deref())?)?;
            let file = std::fs::File::open(&episodes)
                .with_context(|| format!("cannot open {}", episodes.display()))?;
            let mut out = Vec::new();
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let line = line.with_context(|| {
                    format!("{}: line {}: cannot read", episodes.display(), i + 1)
                })?;
                if line.trim().is_empty() {
                    continue;
                }
                let result = hale_envs::replay::replay_line(e.as_mut(), &line, i + 1)
                    .with_context(|| format!("{}", episodes.display()))?;
                out.push(result.to_string());
            }
            let mut stdout = std::io::stdout().lock();
            for line in out {
                writeln!(stdout, "{line}")?;
            }
            Ok(())
        }
        EnvCommand::Bench {
            env,
            config,
            num_envs,
            steps,
            seed,
        } => {
            anyhow::ensure!(
                num_envs > 0 && steps > 0,
                "--num-envs and --steps must be positive"
            );
            let config = parse_config(config.as_deref())?;
            let mut v = VectorEnv::make(&env, &config, num_envs, AutoReset::NextStep)?;
            v.reset(Some(seed))?;
            let space = v.single_env().action_space().clone();
            let mask_len = space.mask_len().unwrap_or(0);
            let mut rng = Stream::from_key(seed);
            let mut actions: Vec<Value> = vec![space.sample(&mut rng, None); num_envs];
            // The loop runs on a rayon worker (inside `rayon::scope`), so each vector
            // step's parallel section starts without waking a thread from outside.
            let (start, sampling) = rayon::scope(|_| -> Result<(Instant, f64)> {
                let start = Instant::now();
                let mut sampling = 0.0;
                for _ in 0..steps {
                    let t = Instant::now();
                    for (i, a) in actions.iter_mut().enumerate() {
                        let mask = (mask_len > 0 && !v.masks.is_empty())
                            .then(|| &v.masks[i * mask_len..(i + 1) * mask_len]);
                        *a = space.sample(&mut rng, mask);
                    }
                    sampling += t.elapsed().as_secs_f64();
                    if let Err(e) = v.step(&actions) {
                        bail!("step failed: {e}");
                    }
                }
                Ok((start, sampling))
            })?;
            let wall = start.elapsed().as_secs_f64();
            let total = (num_envs * steps) as f64;
            println!(
                "{}",
                json!({
                    "env": env, "num_envs": num_envs, "steps": steps, "env_steps": total,
                    "threads": rayon::current_num_threads(), "wall_s": wall,
                    "steps_per_s": total / wall,
                    "steps_per_s_excluding_action_sampling": total / (wall - sampling).max(1e-12),
                })
            );
            Ok(())
        }
    }
}

fn describe(space: &hale_envs::Space) -> String {
    use hale_envs::Space::*;
    match space {
        Discrete { n } => format!("Discrete({n})"),
        MultiDiscrete { nvec } if nvec.iter().all(|&n| n == nvec[0]) => {
            format!("MultiDiscrete([{}] × {})", nvec[0], nvec.len())
        }
        MultiDiscrete { nvec } => format!("MultiDiscrete({nvec:?})"),
        Box { shape, .. } => format!("Box(shape {shape:?})"),
        Graph {
            node_features,
            edge_features,
        } => format!("Graph(node features {node_features}, edge features {edge_features})"),
    }
}
