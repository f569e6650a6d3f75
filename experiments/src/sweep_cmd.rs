//! `hale sweep SWEEP.toml`: runs the trials a sweep plans ([`hale_experiments::sweep`]),
//! `--jobs` at a time, each a `hale train` process of its own with its threads capped,
//! under an overall progress bar and one per running trial; then one table of all
//! trials (`trials.csv`, `trials.parquet`) and a summary per axis point.
//!
//! The sweep folder (`--out`) holds `plan.json` (the trials, so that a re-run can
//! tell it is the same sweep) and `trials/NAME/`: the trial's `config.toml`, its
//! `train.log`, and the run folder `hale train` makes. A trial is finished when its
//! run folder has `summary.json` (written last, atomically, by `hale train`). Run the
//! sweep again after a kill (of the sweep, or of one trial): finished trials are
//! skipped, a trial with a checkpoint resumes from it (`hale train --resume`), and
//! one killed before its first checkpoint starts again. Trials are killed with the
//! sweep (Linux: the parent-death signal), so none runs on unwatched.
//!
//! With a `[bench]` table, each trained policy is then judged on every task by a
//! `hale bench run` process (in `trials/NAME/bench/TASK/`, finished when it has
//! `bench.json`), and a sweep without `base` runs one such process per task
//! (`trials/TASK/`). Tasks, their envs and the named policies are checked first.

use crate::bench::Task;
use anyhow::{Context, Result, bail};
use hale_experiments::sweep::{Plan, Trial, describe};
use hale_policies::bundle::write_atomic;
use hale_policies::stats;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Arguments of `hale sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// The sweep file (TOML: `base` config, `seeds`, `[grid]` and `[random]` axes over
    /// dotted config paths such as `ppo.learning_rate` or `env_config.slo_weight`, and
    /// `[bench]` tasks every trained policy is judged on; examples in
    /// experiments/sweeps/).
    sweep: PathBuf,
    /// The sweep's folder (default: `runs/sweeps/NAME`, NAME the file's stem). Run
    /// the same command again to finish an interrupted sweep.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Trials run at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Threads each trial may use (default: the machine's cores over --jobs, at
    /// least one).
    #[arg(long)]
    threads: Option<usize>,
    /// Check the sweep and list its trials; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Check the sweep, write its folder (plan.json, each trial's config.toml) and
    /// stop: for another runner of the trials (experiments/ray/hale_tune.py runs them
    /// as Ray Tune trials; running this command again afterwards writes the table).
    #[arg(long, conflicts_with = "dry_run")]
    prepare: bool,
    /// Each trial logs its run (and registers its bundle) into the experiment (the
    /// sweep's name by default), nested under a run of the sweep that gets the trial
    /// table and the report.
    #[command(flatten)]
    mlflow: crate::tracking::MlflowArgs,
}

/// Where a trial stands.
#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Finished: its run folder has summary.json.
    Done(PathBuf),
    /// Started before: its run folder has a checkpoint to resume from.
    Resume(PathBuf),
    /// Not started, or killed before its first checkpoint.
    Fresh,
}

/// A trial's run folder (the newest, if a trial was started over).
pub(crate) fn run_folder(trial_dir: &Path) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(trial_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.toml").is_file())
        .collect();
    runs.sort();
    runs.pop()
}

fn state(trial_dir: &Path) -> State {
    match run_folder(trial_dir) {
        Some(run) if run.join("summary.json").is_file() => State::Done(run),
        Some(run)
            if std::fs::read_dir(run.join("checkpoints")).is_ok_and(|mut d| d.next().is_some()) =>
        {
            State::Resume(run)
        }
        // Killed (or failed) before its first checkpoint: it starts over.
        Some(_) | None => State::Fresh,
    }
}

/// Makes room for a trial that starts over: a run folder with no checkpoint holds
/// nothing to keep (its train.log, outside it, stays).
fn clear_unfinished(trial_dir: &Path) -> Result<()> {
    if let Some(run) = run_folder(trial_dir) {
        std::fs::remove_dir_all(&run)
            .with_context(|| format!("cannot remove {}", run.display()))?;
    }
    Ok(())
}

/// The plan as recorded in the sweep folder: trial names, points, seeds, configs.
fn plan_record(plan: &Plan) -> Json {
    json!({
        "sweep": plan.path.display().to_string(),
        "axes": plan.axes,
        "bench": plan.bench,
        "trials": plan.trials.iter().map(|t| json!({
            "name": t.name,
            "point": t.point,
            "axes": describe(&t.axes),
            "seed": t.seed,
            "config": toml::to_string(&t.config).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })
}

/// Runs `hale sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let plan = Plan::load(&args.sweep)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .sweep
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        Path::new("runs/sweeps").join(stem)
    });
    let points = plan
        .trials
        .iter()
        .map(|t| t.point)
        .max()
        .map_or(0, |p| p + 1);
    let tasks = check_bench(&plan)?;
    let judged = if tasks.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        format!(", judged on {}", names.join(", "))
    };
    if plan.trials.is_empty() {
        println!(
            "{}: {} benchmark tasks in {}",
            args.sweep.display(),
            tasks.len(),
            out.display()
        );
    } else {
        println!(
            "{}: {} trials ({} axis points × {} seeds){judged} in {}",
            args.sweep.display(),
            plan.trials.len(),
            points,
            plan.trials.len() / points.max(1),
            out.display()
        );
    }
    if args.dry_run {
        for t in &plan.trials {
            println!("  {}  seed {}  {}", t.name, t.seed, describe(&t.axes));
        }
        return Ok(());
    }
    let sweep_name = out
        .file_name()
        .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    // The tracking server answers before anything is written or started.
    let tracker = crate::tracking::Tracker::connect(&args.mlflow, &sweep_name)?;
    std::fs::create_dir_all(out.join("trials"))
        .with_context(|| format!("cannot create {}", out.join("trials").display()))?;
    let record = plan_record(&plan);
    let record_path = out.join("plan.json");
    match std::fs::read_to_string(&record_path) {
        Ok(old) => {
            let old: Json = serde_json::from_str(&old)
                .with_context(|| format!("{} is not a sweep plan", record_path.display()))?;
            if old["trials"] != record["trials"] || old["bench"] != record["bench"] {
                bail!(
                    "{} holds another sweep's trials (its plan.json differs from what {} \
                     plans now): give another --out, or remove it",
                    out.display(),
                    args.sweep.display()
                );
            }
        }
        Err(_) => write_atomic(
            &record_path,
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?,
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) / args.jobs);
    let threads = threads.max(1);

    let mut queue = VecDeque::new();
    let mut skipped = 0;
    for task in tasks.iter().filter(|_| plan.trials.is_empty()) {
        let dir = out.join("trials").join(&task.name);
        if dir.join("result/bench.json").is_file() {
            skipped += 1;
        } else {
            queue.push_back(Job::Bench(task, dir));
        }
    }
    for t in &plan.trials {
        let dir = out.join("trials").join(&t.name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let config = dir.join("config.toml");
        if !config.is_file() {
            write_atomic(&config, toml::to_string(&t.config)?.as_bytes())?;
        }
        match state(&dir) {
            State::Done(run) if benched(&dir, &tasks) => {
                let _ = run;
                skipped += 1;
            }
            State::Fresh => {
                clear_unfinished(&dir)?;
                queue.push_back(Job::Train(t, dir, State::Fresh));
            }
            s => queue.push_back(Job::Train(t, dir, s)),
        }
    }
    if args.prepare {
        println!(
            "prepared {}: {} trials to run ({skipped} finished)",
            out.display(),
            queue.len()
        );
        return Ok(());
    }
    if skipped > 0 {
        println!("{skipped} trials finished earlier: skipped");
    }
    let bars = MultiProgress::new();
    let total = if plan.trials.is_empty() {
        tasks.len()
    } else {
        plan.trials.len()
    };
    let overall = bars.add(ProgressBar::new(total as u64));
    overall.set_style(
        ProgressStyle::with_template("sweep {bar:30} {pos}/{len} trials  elapsed {elapsed}  {msg}")
            .expect("a valid template"),
    );
    overall.set_position(skipped as u64);
    let parent = match &tracker {
        Some(t) => Some(t.start(&format!("sweep {sweep_name}"), "hale sweep")?),
        None => None,
    };
    let extra = match (&tracker, &parent) {
        (Some(t), Some(p)) => args.mlflow.to_args(&t.experiment, Some(&p.id)),
        _ => Vec::new(),
    };
    let queue = Mutex::new(queue);
    let failures = Mutex::new(Vec::new());
    let exe = std::env::current_exe().context("cannot find the hale executable")?;
    std::thread::scope(|scope| {
        for _ in 0..args.jobs {
            scope.spawn(|| {
                let cx = BenchRun {
                    exe: &exe,
                    plan: &plan,
                    threads,
                    bars: &bars,
                    extra: &extra,
                };
                loop {
                    let Some(job) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
                    else {
                        return;
                    };
                    let (name, result) = match job {
                        Job::Train(trial, dir, state) => (
                            trial.name.clone(),
                            run_trial(&exe, trial, &dir, state, (threads, &extra), &bars).and_then(
                                |run| {
                                    let own = format!("trial={}", run.join("policy").display());
                                    for task in &tasks {
                                        let at = dir.join("bench").join(&task.name);
                                        cx.run(task, Some(&own), &at, &dir)?;
                                    }
                                    Ok(())
                                },
                            ),
                        ),
                        Job::Bench(task, dir) => (
                            task.name.clone(),
                            cx.run(task, None, &dir.join("result"), &dir),
                        ),
                    };
                    if let Err(e) = result {
                        let line = format!("{name}: {e:#}");
                        overall.println(format!("failed: {line}"));
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(line);
                    }
                    overall.inc(1);
                }
            });
        }
    });
    overall.finish_with_message("done");

    let rows = table(&plan, &tasks, &out)?;
    write_tables(&out, &plan, &rows)?;
    print_summary(&plan, &rows);
    println!(
        "wrote {} and {}",
        out.join("trials.csv").display(),
        out.join("trials.parquet").display()
    );
    if let (Some(t), Some(run)) = (&tracker, &parent) {
        crate::report::write(&out, &out.join("report"))?;
        let record = crate::tracking::Record {
            name: format!("sweep {sweep_name}"),
            params: vec![
                ("sweep".into(), args.sweep.display().to_string()),
                ("axes".into(), plan.axes.join(", ")),
                ("trials".into(), plan.trials.len().to_string()),
            ],
            files: vec![
                ("trials.csv", out.join("trials.csv")),
                ("trials.parquet", out.join("trials.parquet")),
                ("plan.json", out.join("plan.json")),
                ("report", out.join("report")),
            ],
            ..Default::default()
        };
        t.finish(run, record, &out)?;
    }
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    if !failures.is_empty() {
        bail!(
            "{} of {} trials failed (each line names the log that says why; run the \
             sweep again to retry them, from their last checkpoint):\n  {}",
            failures.len(),
            total,
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// One unit of work of a sweep's workers.
enum Job<'a> {
    /// Train a trial (then judge it on the tasks).
    Train(&'a Trial, PathBuf, State),
    /// Judge the named policies on a task (a sweep without `base`).
    Bench(&'a Task, PathBuf),
}

/// The sweep's tasks, loaded and checked, with its named policies: every task must
/// judge the env the sweep trains, and every policy must be a baseline or a folder
/// that is there.
fn check_bench(plan: &Plan) -> Result<Vec<Task>> {
    let Some(b) = &plan.bench else {
        return Ok(Vec::new());
    };
    let at = plan.path.display();
    let tasks = b
        .tasks
        .iter()
        .map(|t| Task::load(t, &crate::bench::default_dir()))
        .collect::<Result<Vec<Task>>>()
        .with_context(|| format!("{at}: `bench.tasks`"))?;
    if let Some(trial) = plan.trials.first() {
        for t in &tasks {
            if t.spec.env != trial.config.env {
                bail!(
                    "{at}: `bench.tasks`: task {} judges {} policies, and the sweep trains {}",
                    t.name,
                    t.spec.env,
                    trial.config.env
                );
            }
        }
    }
    for p in &b.policies {
        let source = p.split_once('=').map_or(p.as_str(), |(_, s)| s);
        if !hale_policies::BASELINES.contains(&source) && !Path::new(source).exists() {
            bail!(
                "{at}: `bench.policies`: {p:?} is neither a baseline ({}) nor a folder that \
                 is there",
                hale_policies::BASELINES.join(", ")
            );
        }
    }
    Ok(tasks)
}

/// Whether a trained trial has been judged on every task.
fn benched(dir: &Path, tasks: &[Task]) -> bool {
    tasks
        .iter()
        .all(|t| dir.join("bench").join(&t.name).join("bench.json").is_file())
}

/// What a `hale bench run` of a sweep needs.
struct BenchRun<'a> {
    exe: &'a Path,
    plan: &'a Plan,
    threads: usize,
    bars: &'a MultiProgress,
    /// The trials' `--mlflow` arguments, if the sweep logs.
    extra: &'a [String],
}

impl BenchRun<'_> {
    /// Judges the task's baselines, the sweep's policies and `own` (a trial's
    /// `trial=RUN/policy`) on `task`, into `at` (skipped when `at` has bench.json; a
    /// half-written `at` is cleared first). Attempts are recorded in `dir`.
    fn run(&self, task: &Task, own: Option<&str>, at: &Path, dir: &Path) -> Result<()> {
        if at.join("bench.json").is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if at.exists() {
            std::fs::remove_dir_all(at)
                .with_context(|| format!("cannot clear {}", at.display()))?;
        }
        let b = self
            .plan
            .bench
            .as_ref()
            .expect("a sweep with tasks has a [bench] table");
        let mut policies = task.spec.baselines.clone();
        policies.extend(b.policies.iter().cloned());
        policies.extend(own.map(String::from));
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix:12} {msg} {elapsed}")
                .expect("a valid template"),
        );
        bar.set_prefix(task.name.clone());
        bar.set_message(format!("judging {}", policies.join(", ")));
        bar.enable_steady_tick(Duration::from_millis(250));
        let log_path = dir.join(format!("bench-{}.log", task.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut cmd = std::process::Command::new(self.exe);
        cmd.args(["bench", "run"])
            .arg(&task.file)
            .arg("--policy")
            .arg(policies.join(","))
            .arg("--out")
            .arg(at);
        if let Some(e) = b.episodes {
            cmd.arg("--episodes").arg(e.to_string());
        }
        if let Some(s) = &b.split {
            cmd.arg("--split").arg(s);
        }
        cmd.args(self.extra);
        cmd.env("RAYON_NUM_THREADS", self.threads.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut cmd);
        if own.is_none() {
            append_attempt(dir, &json!({"event": "start", "unix_s": unix_now()}))?;
        }
        let started = Instant::now();
        let status = cmd
            .status()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        let wall_s = started.elapsed().as_secs_f64();
        if own.is_none() {
            append_attempt(
                dir,
                &json!({"event": "end", "wall_s": wall_s, "exit": status.code()}),
            )?;
        }
        bar.finish_and_clear();
        self.bars.remove(&bar);
        if status.success() && at.join("bench.json").is_file() {
            Ok(())
        } else {
            bail!(
                "hale bench run {} {} after {wall_s:.0} s (see {})",
                task.name,
                match status.code() {
                    Some(c) => format!("exited with {c}"),
                    None => "was killed".into(),
                },
                log_path.display()
            )
        }
    }
}

/// Total environment steps of a trial's config.
fn total_steps(t: &Trial) -> u64 {
    match (&t.config.ppo, &t.config.dqn) {
        (Some(p), _) => p.total_timesteps,
        (None, Some(d)) => d.total_timesteps,
        (None, None) => 0,
    }
}

/// The last `global_step` in a run's metrics.csv, if any.
fn last_step(run: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.split(',').next()?.parse().ok())
}

/// Runs one trial as a `hale train` process to its end; a bar shows its steps.
fn run_trial(
    exe: &Path,
    trial: &Trial,
    dir: &Path,
    state: State,
    (threads, extra): (usize, &[String]),
    bars: &MultiProgress,
) -> Result<PathBuf> {
    if let State::Done(run) = state {
        // Trained earlier; only its benchmark runs were left.
        return Ok(run);
    }
    let bar = bars.add(ProgressBar::new(total_steps(trial)));
    bar.set_style(
        ProgressStyle::with_template("  {prefix:12} {bar:30} {pos}/{len} steps  {msg}")
            .expect("a valid template"),
    );
    bar.set_prefix(trial.name.clone());
    bar.set_message(describe(&trial.axes));
    let log_path = dir.join("train.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(exe);
    match &state {
        State::Resume(run) => {
            cmd.arg("train").arg("--resume").arg(run);
        }
        _ => {
            cmd.arg("train")
                .arg(dir.join("config.toml"))
                .arg("--out")
                .arg(dir);
        }
    }
    cmd.args(extra);
    cmd.env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    die_with_parent(&mut cmd);
    append_attempt(
        dir,
        &json!({"event": "start", "unix_s": unix_now(), "resume": matches!(state, State::Resume(_))}),
    )?;
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(step) = run_folder(dir).and_then(|r| last_step(&r)) {
            bar.set_position(step);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    bar.finish_and_clear();
    bars.remove(&bar);
    let wall_s = started.elapsed().as_secs_f64();
    let run = run_folder(dir);
    append_attempt(
        dir,
        &json!({"event": "end", "wall_s": wall_s, "exit": status.code()}),
    )?;
    match run {
        Some(run) if status.success() && run.join("summary.json").is_file() => Ok(run),
        _ => bail!(
            "hale train {} after {wall_s:.0} s (see {})",
            match status.code() {
                Some(c) => format!("exited with {c}"),
                None => "was killed".into(),
            },
            log_path.display()
        ),
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Records the start or the end of an attempt at a trial (JSON lines in
/// `attempts.jsonl`).
fn append_attempt(dir: &Path, attempt: &Json) -> Result<()> {
    use std::io::Write;
    let path = dir.join("attempts.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{attempt}").with_context(|| format!("cannot write {}", path.display()))
}

/// Has the child killed when the sweep dies, however it dies (Linux).
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut std::process::Command) {}

/// One row of the trial table.
struct Row {
    trial: String,
    point: usize,
    seed: u64,
    axes: Vec<String>,
    status: &'static str,
    attempts: usize,
    wall_s: f64,
    /// Named numbers: training and evaluation metrics.
    metrics: BTreeMap<String, f64>,
}

/// The mean of the last `n` values of column `name` in a metrics.csv (empty cells
/// skipped), if the column has any.
fn tail_mean(csv: &str, name: &str, n: usize) -> Option<f64> {
    let mut lines = csv.lines();
    let col = lines.next()?.split(',').position(|c| c == name)?;
    let values: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(col)?.parse().ok())
        .collect();
    let tail = &values[values.len().saturating_sub(n)..];
    (!tail.is_empty()).then(|| tail.iter().sum::<f64>() / tail.len() as f64)
}

/// The `summary` of a finished `hale bench run` folder, if it is there.
fn bench_summary(at: &Path) -> Result<Option<Json>> {
    let path = at.join("bench.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: Json =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    Ok(Some(v["summary"].clone()))
}

fn table(plan: &Plan, tasks: &[Task], out: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    if plan.trials.is_empty() {
        for (i, task) in tasks.iter().enumerate() {
            let dir = out.join("trials").join(&task.name);
            let (attempts, wall_s) = attempts_and_wall(&dir);
            let mut metrics = BTreeMap::new();
            let summary = bench_summary(&dir.join("result"))?;
            if let Some(s) = &summary {
                flatten_comparison(s, "", &mut metrics);
            }
            rows.push(Row {
                trial: task.name.clone(),
                point: i,
                seed: task.spec.seed,
                axes: Vec::new(),
                status: match (&summary, attempts) {
                    (Some(_), _) => "done",
                    (None, 0) => "pending",
                    (None, _) => "failed",
                },
                attempts,
                wall_s,
                metrics,
            });
        }
        return Ok(rows);
    }
    for t in &plan.trials {
        let dir = out.join("trials").join(&t.name);
        let (attempts, wall_s) = attempts_and_wall(&dir);
        let mut metrics = BTreeMap::new();
        let st = state(&dir);
        if let Some(run) = run_folder(&dir) {
            if let Ok(csv) = std::fs::read_to_string(run.join("metrics.csv")) {
                for (name, col, n) in [
                    ("train/episodic_return", "charts/episodic_return", 10),
                    ("train/sps", "charts/SPS", 1),
                    ("train/global_step", "global_step", 1),
                ] {
                    if let Some(v) = tail_mean(&csv, col, n) {
                        metrics.insert(name.to_string(), v);
                    }
                }
            }
            if let Ok(text) = std::fs::read_to_string(run.join("summary.json")) {
                let s: Json = serde_json::from_str(&text)
                    .with_context(|| format!("{}: not JSON", run.join("summary.json").display()))?;
                if let Some(v) = s["eval_mean_return"].as_f64() {
                    metrics.insert("eval/mean_return".into(), v);
                }
                flatten_comparison(&s["comparison"], "", &mut metrics);
            }
        }
        for task in tasks {
            if let Some(s) = bench_summary(&dir.join("bench").join(&task.name))? {
                flatten_comparison(&s, &format!("bench/{}/", task.name), &mut metrics);
            }
        }
        rows.push(Row {
            trial: t.name.clone(),
            point: t.point,
            seed: t.seed,
            axes: plan
                .axes
                .iter()
                .map(|a| t.axes.get(a).map_or(String::new(), |v| v.to_string()))
                .collect(),
            status: match st {
                State::Done(_) => "done",
                _ if attempts == 0 => "pending",
                _ => "failed",
            },
            attempts,
            wall_s,
            metrics,
        });
    }
    Ok(rows)
}

/// A trial's attempts and their wall time in all. An attempt that ended has its own
/// figure; one that never did (the sweep was killed) counts from its start to the
/// last write of its run's metrics.csv or its train.log (or the next attempt's
/// start, if that is earlier: the files are written again by the next attempt).
fn attempts_and_wall(dir: &Path) -> (usize, f64) {
    let events: Vec<Json> = std::fs::read_to_string(dir.join("attempts.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last_write = [
        run_folder(dir).map(|r| r.join("metrics.csv")),
        Some(dir.join("train.log")),
    ]
    .into_iter()
    .flatten()
    .filter_map(|p| std::fs::metadata(p).ok()?.modified().ok())
    .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    .map(|d| d.as_secs_f64())
    .fold(0.0, f64::max);
    let (mut attempts, mut wall) = (0, 0.0);
    let mut open: Option<f64> = None;
    for e in &events {
        match e["event"].as_str() {
            Some("start") => {
                let now = e["unix_s"].as_f64().unwrap_or(last_write);
                if let Some(t) = open.take() {
                    // Killed: it ran until its last write, before this start.
                    wall += (last_write.min(now) - t).max(0.0);
                }
                attempts += 1;
                open = e["unix_s"].as_f64();
            }
            Some("end") => {
                open = None;
                wall += e["wall_s"].as_f64().unwrap_or(0.0);
            }
            _ => {}
        }
    }
    if let Some(t) = open {
        wall += (last_write - t).max(0.0);
    }
    (attempts, wall)
}

/// `PREFIXeval/POLICY/METRIC` (means) and `PREFIXdiff/A - B/METRIC` (paired
/// differences) from a comparison of policies (a training run's against the
/// baselines, or a benchmark run's).
pub(crate) fn flatten_comparison(c: &Json, prefix: &str, into: &mut BTreeMap<String, f64>) {
    if let Some(policies) = c["policies"].as_object() {
        for (p, m) in policies {
            for (k, v) in m.as_object().into_iter().flatten() {
                if let Some(x) = v["mean"].as_f64().or(v.as_f64()) {
                    into.insert(format!("{prefix}eval/{p}/{k}"), x);
                }
            }
        }
    }
    if let Some(diffs) = c["paired_differences"].as_object() {
        for (pair, m) in diffs {
            for (k, v) in m.as_object().into_iter().flatten() {
                if let Some(x) = v["diff"].as_f64() {
                    into.insert(format!("{prefix}diff/{pair}/{k}"), x);
                }
            }
        }
    }
}

fn write_tables(out: &Path, plan: &Plan, rows: &[Row]) -> Result<()> {
    use polars::prelude::{Column, DataFrame, ParquetWriter};
    let names: Vec<String> = rows
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut header = vec!["trial", "point", "seed", "status", "attempts", "wall_s"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    header.extend(plan.axes.iter().cloned());
    header.extend(names.iter().cloned());
    let mut csv = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(",");
    csv.push('\n');
    for r in rows {
        let mut cells = vec![
            r.trial.clone(),
            r.point.to_string(),
            r.seed.to_string(),
            r.status.to_string(),
            r.attempts.to_string(),
            format!("{:.3}", r.wall_s),
        ];
        cells.extend(r.axes.iter().map(|a| quote(a)));
        cells.extend(
            names
                .iter()
                .map(|n| r.metrics.get(n).map_or(String::new(), |v| v.to_string())),
        );
        csv.push_str(&cells.join(","));
        csv.push('\n');
    }
    write_atomic(&out.join("trials.csv"), csv.as_bytes())?;

    let mut columns = vec![
        Column::new(
            "trial".into(),
            rows.iter().map(|r| r.trial.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "point".into(),
            rows.iter().map(|r| r.point as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.seed).collect::<Vec<_>>(),
        ),
        Column::new(
            "status".into(),
            rows.iter()
                .map(|r| r.status.to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "attempts".into(),
            rows.iter().map(|r| r.attempts as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "wall_s".into(),
            rows.iter().map(|r| r.wall_s).collect::<Vec<_>>(),
        ),
    ];
    for (i, a) in plan.axes.iter().enumerate() {
        columns.push(Column::new(
            a.as_str().into(),
            rows.iter().map(|r| r.axes[i].clone()).collect::<Vec<_>>(),
        ));
    }
    for n in &names {
        columns.push(Column::new(
            n.as_str().into(),
            rows.iter()
                .map(|r| r.metrics.get(n).copied())
                .collect::<Vec<Option<f64>>>(),
        ));
    }
    let mut df = DataFrame::new(rows.len(), columns)
        .map_err(|e| anyhow::anyhow!("building the trial table: {e}"))?;
    let path = out.join("trials.parquet");
    hale_sim::fs::write_atomic_with(&path, |file| {
        ParquetWriter::new(file).finish(&mut df).map(|_| ())
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

/// Per axis point: the evaluation return and the paired differences against the
/// baselines, each a mean over the point's finished seeds with its 95 % CI.
fn print_summary(plan: &Plan, rows: &[Row]) {
    let mut by_point: BTreeMap<usize, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_point.entry(r.point).or_default().push(r);
    }
    println!("\nper axis point (mean ± 95 % CI over finished seeds):");
    for (p, rows) in by_point {
        let done: Vec<&&Row> = rows.iter().filter(|r| r.status == "done").collect();
        match plan.trials.iter().find(|t| t.point == p) {
            Some(t) => println!(
                "  point {p} ({}): {} of {} seeds done",
                describe(&t.axes),
                done.len(),
                rows.len()
            ),
            // A sweep of benchmark tasks: a point is a task.
            None => println!("  task {}: {}", rows[0].trial, rows[0].status),
        }
        let mut keys: Vec<&String> = done
            .iter()
            .flat_map(|r| r.metrics.keys())
            .filter(|k| {
                *k == "eval/mean_return"
                    || (k.contains("diff/")
                        && [
                            "episode_return",
                            "cost",
                            "slo_violation_min",
                            "cpu_slack",
                            "mttr_s",
                        ]
                        .iter()
                        .any(|m| k.ends_with(&format!("/{m}"))))
            })
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let xs: Vec<f64> = done
                .iter()
                .filter_map(|r| r.metrics.get(k).copied())
                .collect();
            if let [x] = xs[..] {
                println!("    {k:<40} {x:>12.4}");
            } else {
                let (m, ci) = stats::mean_ci(&xs);
                println!("    {k:<40} {m:>12.4} ± {ci:.4}  (n = {})", xs.len());
            }
        }
    }
}
