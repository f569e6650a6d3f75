//! `hale bench`: the benchmark suite. A task is an env, a scenario, the part of its
//! traces to judge on, an evaluation protocol (episodes, seeds, windows) and the
//! baselines, in one TOML file under `experiments/bench/`; `hale bench run` compares
//! policies on it, paired, exactly as `hale eval` does.

use crate::eval;
use anyhow::{Context, Result, bail};
use hale_policies::bundle::write_atomic;
use hale_sim::{FaultsSpec, RateSpec, ScenarioSpec, TraceOffset};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

/// `hale bench` subcommands.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// List the tasks, with their env, protocol and baselines.
    List {
        /// The folder of task files.
        #[arg(long, default_value_os_t = default_dir())]
        tasks: PathBuf,
    },
    /// Compare policies on a task, paired (episodes.csv, episodes.parquet and
    /// summary.json in --out, beside the exact scenario evaluated).
    Run(RunArgs),
}

/// Arguments of `hale bench run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// A task name (`hale bench list`) or a task file.
    task: String,
    /// Policies, comma-separated, as `hale eval --policy` takes them (baseline names,
    /// bundle folders, training runs, `LABEL=PATH`); differences are reported against
    /// the first. Default: the task's baselines.
    #[arg(long, value_delimiter = ',')]
    policy: Vec<String>,
    /// Judge on this part of the traces instead of the task's (`validation` to pick
    /// a model, `test` to report it).
    #[arg(long)]
    split: Option<String>,
    /// Episodes instead of the task's (fewer for a quick look; reported results use
    /// the task's).
    #[arg(long)]
    episodes: Option<usize>,
    /// Write the results and the scenario evaluated here (default: a folder under
    /// the system's temporary folder, printed).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The episode whose timeline (timeline.csv and its figures) is written.
    #[arg(long, default_value_t = 0)]
    timeline: usize,
    /// The folder of task files.
    #[arg(long, default_value_os_t = default_dir())]
    tasks: PathBuf,
    /// Log the comparison (metrics `eval/POLICY/METRIC` and `diff/A - B/METRIC`, the
    /// folder and its report as artifacts) as a run named after the task (experiment
    /// hale-bench by default).
    #[command(flatten)]
    mlflow: crate::tracking::MlflowArgs,
}

/// The task folder of this source tree, or `experiments/bench` under the working
/// folder when the binary runs elsewhere.
pub(crate) fn default_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("experiments/bench")
    }
}

/// A benchmark task as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// One line for humans.
    pub description: String,
    /// Env id.
    pub env: String,
    /// Builtin scenario name, or a scenario file relative to the task file.
    pub scenario: String,
    /// Replace every workload's rate with this trace.
    #[serde(default)]
    pub trace: Option<TraceSwap>,
    /// Replace the scenario's faults.
    #[serde(default)]
    pub faults: Option<FaultsSpec>,
    /// The part of every trace the task is judged on (`test`).
    #[serde(default = "default_split")]
    pub split: String,
    /// Episodes per policy.
    pub episodes: usize,
    /// First seed: episode i runs on seed `seed + i`, so with `offset = "tiled"`
    /// traces' windows i of the split.
    pub seed: u64,
    /// Baseline policies, the first being the reference of the paired differences.
    pub baselines: Vec<String>,
    /// Experiment configs that train policies for this task (relative to the task
    /// file), for the record.
    #[serde(default)]
    pub train: Vec<String>,
    /// The env config (the scenario is set by the task).
    #[serde(default)]
    pub env_config: toml::Table,
}

fn default_split() -> String {
    "test".into()
}

/// One trace driving every workload, each rescaled to its own mean rate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSwap {
    /// The trace file, relative to the task file.
    pub path: String,
    /// Resample to this step, seconds.
    #[serde(default)]
    pub step_s: Option<f64>,
    /// Window length, seconds.
    pub duration_s: f64,
    /// Mean rate per workload, in the scenario's workload order.
    pub mean_rps: Vec<f64>,
}

/// A task: its name (the file stem), where it is, and what it says.
pub struct Task {
    pub name: String,
    pub file: PathBuf,
    pub spec: TaskSpec,
}

impl Task {
    /// Reads the task `name_or_file` from `dir` (or the file itself).
    pub fn load(name_or_file: &str, dir: &Path) -> Result<Task> {
        let as_file = Path::new(name_or_file);
        let file = if as_file.extension().is_some_and(|e| e == "toml") || as_file.is_file() {
            as_file.to_path_buf()
        } else {
            let file = dir.join(format!("{name_or_file}.toml"));
            if !file.is_file() {
                let known = list(dir)
                    .map(|t| {
                        t.iter()
                            .map(|t| t.name.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                bail!(
                    "no benchmark task `{name_or_file}` in {} (known: {known})",
                    dir.display()
                );
            }
            file
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read task {}", file.display()))?;
        let spec: TaskSpec = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end()))?;
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let task = Task { name, file, spec };
        task.validate()?;
        Ok(task)
    }

    fn validate(&self) -> Result<()> {
        let at = |field: &str| format!("{}: field `{field}`", self.file.display());
        let s = &self.spec;
        if !matches!(s.split.as_str(), "train" | "validation" | "test") {
            bail!(
                "{}: `{}` is not a split (train, validation, test)",
                at("split"),
                s.split
            );
        }
        hale_experiments::config::check_episodes(s.seed, s.episodes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at("episodes")))?;
        if s.episodes < 2 {
            bail!("{}: at least 2 for confidence intervals", at("episodes"));
        }
        if s.baselines.is_empty() {
            bail!("{}: name at least one baseline", at("baselines"));
        }
        if let Some(t) = &s.trace
            && t.mean_rps.iter().any(|r| !(r.is_finite() && *r > 0.0))
        {
            bail!(
                "{}: every mean rate must be positive, got {:?}",
                at("trace.mean_rps"),
                t.mean_rps
            );
        }
        Ok(())
    }

    fn relative(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// The scenario this task is judged on, as a self-contained file: the task's
    /// scenario with its trace swapped in, its faults replaced, every trace rate on
    /// `split` at the fixed windows (`offset = "tiled"`), every path absolute.
    pub fn scenario(&self, split: &str) -> Result<ScenarioSpec> {
        let s = &self.spec;
        let (text, origin, base) = match hale_sim::builtin_text(&s.scenario) {
            Some(text) => (text.to_string(), format!("builtin:{}", s.scenario), None),
            None => {
                let file = self.relative(&s.scenario);
                let text = std::fs::read_to_string(&file).with_context(|| {
                    format!(
                        "{}: field `scenario`: cannot read {}",
                        self.file.display(),
                        file.display()
                    )
                })?;
                let dir = file.parent().map(Path::to_path_buf);
                (text, file.display().to_string(), dir)
            }
        };
        let mut spec = ScenarioSpec::from_toml_str(&text, &origin)?;
        if let Some(t) = &s.trace {
            if t.mean_rps.len() != spec.workload.len() {
                bail!(
                    "{}: field `trace.mean_rps`: {} rates for the scenario's {} workloads",
                    self.file.display(),
                    t.mean_rps.len(),
                    spec.workload.len()
                );
            }
            let path = absolute(&self.relative(&t.path));
            for (w, &mean) in spec.workload.iter_mut().zip(&t.mean_rps) {
                let trace = json!({"path": path, "step_s": t.step_s,
                    "duration_s": t.duration_s, "mean_rps": mean});
                w.rate = RateSpec::Trace(serde_json::from_value(trace)?);
            }
        }
        for w in &mut spec.workload {
            if let RateSpec::Trace(tr) = &mut w.rate {
                tr.split = Some(split.to_string());
                tr.offset = TraceOffset::Tiled;
                if let Some(dir) = &base
                    && Path::new(&tr.path).is_relative()
                {
                    tr.path = absolute(&dir.join(&tr.path));
                }
            }
        }
        if let Some(f) = &s.faults {
            spec.faults = f.clone();
        }
        spec.name = format!("{} ({}, {split} split)", spec.name, self.name);
        spec.description = s.description.clone();
        Ok(spec)
    }

    /// The env config of the task, with `scenario` pointing at `scenario_file`.
    fn env_config(&self, scenario_file: &Path) -> Result<Json> {
        let mut config = serde_json::to_value(&self.spec.env_config)?;
        let Some(map) = config.as_object_mut() else {
            bail!("{}: `env_config` is not a table", self.file.display());
        };
        if map.contains_key("scenario") {
            bail!(
                "{}: field `env_config.scenario`: the task's `scenario` sets it",
                self.file.display()
            );
        }
        map.insert(
            "scenario".into(),
            json!(scenario_file.display().to_string()),
        );
        Ok(config)
    }
}

/// `p` without `..` where it exists, else made absolute as written.
fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Every task in `dir`, by name.
pub fn list(dir: &Path) -> Result<Vec<Task>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the task folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| Task::load(&f.display().to_string(), dir))
        .collect()
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::List { tasks } => {
            let mut text = String::new();
            for t in list(&tasks)? {
                let s = &t.spec;
                let shipped = results_file(&t).is_file();
                let traced = t
                    .scenario(&s.split)?
                    .workload
                    .iter()
                    .any(|w| matches!(w.rate, RateSpec::Trace(_)));
                let part = if traced {
                    format!(" on the traces' {} part", s.split)
                } else {
                    String::new()
                };
                text += &format!(
                    "{:<24} {:<10} {} episodes from seed {}{}; baselines {}{}\n{:<24} {}\n",
                    t.name,
                    s.env,
                    s.episodes,
                    s.seed,
                    part,
                    s.baselines.join(","),
                    if shipped { " (results shipped)" } else { "" },
                    "",
                    s.description
                );
                if !s.train.is_empty() {
                    text += &format!("{:<24} trained by {}\n", "", s.train.join(", "));
                }
            }
            // A reader that stops early (`| head`) is not an error.
            match std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        BenchCommand::Run(args) => run_task(args),
    }
}

/// Where a task's baseline results are shipped: `results/NAME.json` beside it.
pub fn results_file(t: &Task) -> PathBuf {
    t.file
        .parent()
        .unwrap_or(Path::new("."))
        .join("results")
        .join(format!("{}.json", t.name))
}

fn run_task(args: RunArgs) -> Result<()> {
    let task = Task::load(&args.task, &args.tasks)?;
    let tracker = crate::tracking::Tracker::connect(&args.mlflow, "hale-bench")?;
    let split = args.split.as_deref().unwrap_or(&task.spec.split);
    if !matches!(split, "train" | "validation" | "test") {
        bail!("--split: `{split}` is not a split (train, validation, test)");
    }
    let out = match &args.out {
        Some(dir) => {
            eval::check_out_dir(dir)?;
            dir.clone()
        }
        None => {
            std::env::temp_dir().join(format!("hale-bench-{}-{}", task.name, std::process::id()))
        }
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let result = run_into(&args, &task, split, &out, tracker);
    if result.is_err() && args.out.is_none() {
        // The default folder was made for this run: a failed run leaves nothing behind.
        let _ = std::fs::remove_dir_all(&out);
    }
    result
}

/// Evaluates the task's policies into `out` (created) and writes `bench.json` there.
fn run_into(
    args: &RunArgs,
    task: &Task,
    split: &str,
    out: &Path,
    tracker: Option<crate::tracking::Tracker>,
) -> Result<()> {
    let scenario = task.scenario(split)?;
    let scenario_file = out.join("scenario.toml");
    let text = toml::to_string(&scenario)
        .with_context(|| format!("cannot write the scenario of task {}", task.name))?;
    write_atomic(&scenario_file, text.as_bytes())?;
    // The swapped scenario is checked (traces read, windows fit) before any episode.
    hale_datasets::load_scenario(&scenario_file.display().to_string())
        .with_context(|| format!("task {} ({})", task.name, task.file.display()))?;
    let policies = if args.policy.is_empty() {
        task.spec.baselines.clone()
    } else {
        args.policy.clone()
    };
    let episodes = args.episodes.unwrap_or(task.spec.episodes);
    let traced = scenario
        .workload
        .iter()
        .any(|w| matches!(w.rate, RateSpec::Trace(_)));
    eprintln!(
        "task {}: {}{}, {episodes} episodes from seed {}",
        task.name,
        task.spec.env,
        if traced {
            format!(" on the traces' {split} part")
        } else {
            String::new()
        },
        task.spec.seed
    );
    let summary = eval::evaluate(
        &task.spec.env,
        task.env_config(&scenario_file)?,
        &policies,
        (episodes, task.spec.seed),
        Some(out),
        args.timeline,
    )?;
    let record = json!({
        "task": task.name,
        "split": split,
        "episodes": episodes,
        "seed": task.spec.seed,
        "policies": policies,
        "summary": summary,
    });
    write_atomic(
        &out.join("bench.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    eprintln!("wrote {}", out.display());
    if let Some(t) = tracker {
        crate::report::write(out, &out.join("report"))?;
        let params = vec![
            ("task".to_string(), task.name.clone()),
            ("env".into(), task.spec.env.clone()),
            ("split".into(), split.to_string()),
            ("episodes".into(), episodes.to_string()),
            ("seed".into(), task.spec.seed.to_string()),
            ("policies".into(), policies.join(",")),
        ];
        let record = crate::tracking::comparison_record(&task.name, params, &summary, out);
        let run = t.start(&task.name, "hale bench run")?;
        t.finish(&run, record, out)?;
    }
    Ok(())
}
