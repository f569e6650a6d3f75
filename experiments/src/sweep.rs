//! Sweeps: a base training config, axes over any of its fields, and seeds; from them
//! the list of trials, each a complete training config. Everything is checked here,
//! before a trial runs: an axis over a field that does not exist, a value of the
//! wrong type, or a trial config the trainer would refuse is named with its axis.
//! `hale sweep` (the binary) runs the trials this module plans.
//!
//! A sweep file:
//!
//! ```toml
//! base = "cartpole-ppo.toml"          # the base config, relative to this file
//! seeds = [1, 2, 3]                   # every axis point runs once per seed
//!
//! [grid]                              # every combination of these values
//! "ppo.learning_rate" = [1e-4, 3e-4]
//!
//! [random]                            # `samples` points drawn from `seed`
//! samples = 2
//! seed = 0
//! [random.axes]
//! "ppo.ent_coef" = { log_uniform = [1e-4, 1e-1] }
//! "ppo.num_minibatches" = { choice = [2, 4] }
//! "env_config.slo_weight" = { uniform = [0.5, 2.0] }
//! ```
//!
//! Axis points are the grid's combinations (axes in name order), each crossed with
//! each random sample (a grid of none is one empty point; random samples are drawn
//! in order from one stream of the sweep's `random.seed`, so the plan is the same
//! every time the file is read). Trials are points × seeds, point-major.
//!
//! A `[bench]` table makes it a benchmark sweep: every trained policy is also judged
//! on each task (`hale bench run`, against the task's baselines and any `policies`
//! named). Without `base`, a sweep is the benchmark alone: one trial per task, the
//! task's baselines and the `policies` compared on it.
//!
//! ```toml
//! [bench]
//! tasks = ["scaling-ms20-nasa", "scaling-ms20-azure"]
//! policies = ["runs/RUN/policy"]      # besides the tasks' baselines (paths relative to
//!                                     # this file); optional
//! episodes = 5                        # instead of each task's (≥ 2); optional
//! split = "validation"                # instead of each task's; optional
//! ```

use crate::config::TrainConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What is wrong with a sweep file.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a sweep file (TOML syntax, an unknown key, a wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The base config is refused.
    #[error("{path}: base config: {source}")]
    Base {
        /// The sweep file.
        path: PathBuf,
        /// Why.
        source: crate::config::ConfigError,
    },
    /// One axis is wrong: named with its dotted path.
    #[error("{path}: axis `{axis}`: {message}")]
    Axis {
        /// The sweep file.
        path: PathBuf,
        /// The axis (a dotted path into the config).
        axis: String,
        /// What is wrong.
        message: String,
    },
    /// Something else in the sweep file is wrong: named by its key.
    #[error("{path}: `{field}`: {message}")]
    Field {
        /// The sweep file.
        path: PathBuf,
        /// The key.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A sweep file, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The base training config, relative to the sweep file; none for a sweep of
    /// benchmark tasks alone.
    #[serde(default)]
    pub base: Option<PathBuf>,
    /// Seeds: each axis point is trained once per seed (default `[1]`).
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Grid axes: dotted path → the values to try.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Random axes.
    #[serde(default)]
    pub random: Option<RandomAxes>,
    /// Benchmark tasks.
    #[serde(default)]
    pub bench: Option<BenchSweep>,
}

/// The `[bench]` table: benchmark tasks every policy of the sweep is judged on.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BenchSweep {
    /// Task names (`hale bench list`) or task files.
    pub tasks: Vec<String>,
    /// Policies compared besides each task's baselines (and the trial's own): baseline
    /// names or bundle folders, relative to the sweep file.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Episodes instead of each task's.
    #[serde(default)]
    pub episodes: Option<usize>,
    /// The part of the traces instead of each task's.
    #[serde(default)]
    pub split: Option<String>,
}

/// The `[random]` table: points drawn at random.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomAxes {
    /// How many points.
    pub samples: usize,
    /// Seed of the draws.
    #[serde(default)]
    pub seed: u64,
    /// Dotted path → where its values come from.
    pub axes: BTreeMap<String, Distribution>,
}

/// Where a random axis draws its values.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Uniform in `[low, high)`.
    Uniform([f64; 2]),
    /// Log-uniform in `[low, high)`, both positive.
    LogUniform([f64; 2]),
    /// A whole number, uniform in `low..=high`.
    IntUniform([i64; 2]),
    /// One of these values, equally likely.
    Choice(Vec<toml::Value>),
}

impl Distribution {
    /// Why the distribution cannot be drawn from, if it cannot.
    fn check(&self) -> Option<String> {
        match self {
            Distribution::Uniform([lo, hi]) if !(lo.is_finite() && hi.is_finite() && lo < hi) => {
                Some(format!("uniform needs finite low < high, not [{lo}, {hi}]"))
            }
            Distribution::LogUniform([lo, hi])
                if !(lo.is_finite() && hi.is_finite() && *lo > 0.0 && lo < hi) =>
            {
                Some(format!(
                    "log_uniform needs 0 < low < high, not [{lo}, {hi}]"
                ))
            }
            Distribution::IntUniform([lo, hi]) if lo > hi => {
                Some(format!("int_uniform needs low ≤ high, not [{lo}, {hi}]"))
            }
            Distribution::Choice(v) if v.is_empty() => Some("choice of nothing".into()),
            _ => None,
        }
    }

    /// A value, from the uniform number `u` in [0, 1).
    fn draw(&self, u: f64) -> toml::Value {
        match self {
            Distribution::Uniform([lo, hi]) => toml::Value::Float(lo + u * (hi - lo)),
            Distribution::LogUniform([lo, hi]) => {
                toml::Value::Float((lo.ln() + u * (hi.ln() - lo.ln())).exp())
            }
            Distribution::IntUniform([lo, hi]) => {
                let span = (hi - lo) as f64 + 1.0;
                toml::Value::Integer(lo + ((u * span) as i64).min(hi - lo))
            }
            Distribution::Choice(v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)].clone(),
        }
    }
}

/// One axis point: the value of every axis, by dotted path.
pub type Point = BTreeMap<String, toml::Value>;

/// One trial: an axis point, a seed, and the training config they make.
#[derive(Clone, Debug)]
pub struct Trial {
    /// Its name, also its folder's: `p{point}-s{seed}`.
    pub name: String,
    /// Index of its axis point.
    pub point: usize,
    /// The axis values.
    pub axes: Point,
    /// The seed.
    pub seed: u64,
    /// The complete training config (base, axes and seed applied; checked).
    pub config: TrainConfig,
}

/// A checked sweep: its trials, in order.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The sweep file.
    pub path: PathBuf,
    /// The axes' names, grid then random, each in name order.
    pub axes: Vec<String>,
    /// The training trials (none in a sweep of benchmark tasks alone).
    pub trials: Vec<Trial>,
    /// The benchmark tasks, with policy paths made absolute.
    pub bench: Option<BenchSweep>,
}

/// Most trials one sweep may plan.
pub const MAX_TRIALS: usize = 10_000;

impl Plan {
    /// Reads a sweep file and checks every trial it plans.
    pub fn load(path: &Path) -> Result<Plan, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file: SweepFile = toml::from_str(&text).map_err(|e| SweepError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Plan::new(path, &file)
    }

    /// The trials `file` (read from `path`) plans, every one checked.
    pub fn new(path: &Path, file: &SweepFile) -> Result<Plan, SweepError> {
        let field = |field: &str, message: String| SweepError::Field {
            path: path.to_path_buf(),
            field: field.into(),
            message,
        };
        let axis = |axis: &str, message: String| SweepError::Axis {
            path: path.to_path_buf(),
            axis: axis.into(),
            message,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let bench = file.bench.clone().map(|mut b| {
            // A policy that names a folder next to the sweep file is that folder.
            for p in &mut b.policies {
                let (label, source) = match p.split_once('=') {
                    Some((l, s)) => (Some(l.to_string()), s.to_string()),
                    None => (None, p.clone()),
                };
                let at = dir.join(&source);
                if !Path::new(&source).is_absolute() && at.exists() {
                    let abs = at.canonicalize().unwrap_or(at).display().to_string();
                    *p = label.map_or(abs.clone(), |l| format!("{l}={abs}"));
                }
            }
            b
        });
        if let Some(b) = &bench {
            if b.tasks.is_empty() {
                return Err(field("bench.tasks", "no tasks".into()));
            }
            if let Some(split) = &b.split
                && !matches!(split.as_str(), "train" | "validation" | "test")
            {
                return Err(field(
                    "bench.split",
                    format!("`{split}` is not a split (train, validation, test)"),
                ));
            }
            if b.episodes.is_some_and(|e| e < 2) {
                return Err(field(
                    "bench.episodes",
                    "must be at least 2 (paired confidence intervals need two)".into(),
                ));
            }
        }
        let Some(base_file) = &file.base else {
            if bench.is_none() {
                return Err(field(
                    "base",
                    "a sweep needs a base config to train, or a [bench] table of tasks".into(),
                ));
            }
            let axes = file
                .grid
                .keys()
                .chain(file.random.iter().flat_map(|r| r.axes.keys()));
            if let Some(a) = axes.into_iter().next() {
                return Err(axis(
                    a,
                    "axes vary a base config, and this sweep has none".into(),
                ));
            }
            if file.seeds.is_some() {
                return Err(field(
                    "seeds",
                    "seeds are training seeds, and this sweep trains nothing (a task has \
                     its own episode seeds)"
                        .into(),
                ));
            }
            return Ok(Plan {
                path: path.to_path_buf(),
                axes: Vec::new(),
                trials: Vec::new(),
                bench,
            });
        };
        let seeds = file.seeds.clone().unwrap_or_else(|| vec![1]);
        let base_path = dir.join(base_file);
        let base = TrainConfig::load(&base_path).map_err(|source| SweepError::Base {
            path: path.to_path_buf(),
            source,
        })?;
        // The base with every default filled in: what an axis may set.
        let base_table = toml::Table::try_from(&base).map_err(|e| {
            field(
                "base",
                format!("{}: cannot be written back: {e}", base_path.display()),
            )
        })?;
        if seeds.is_empty() {
            return Err(field("seeds", "no seeds: give at least one".into()));
        }
        if let Some(big) = seeds.iter().find(|&&s| s > i64::MAX as u64) {
            return Err(field("seeds", format!("seed {big} is past {}", i64::MAX)));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(field("seeds", format!("seed {dup} is listed twice")));
        }
        let random = file.random.as_ref();
        for (name, values) in &file.grid {
            if values.is_empty() {
                return Err(axis(name, "no values".into()));
            }
            if random.is_some_and(|r| r.axes.contains_key(name)) {
                return Err(axis(name, "is both a grid and a random axis".into()));
            }
            for v in values {
                settable(&base_table, name, v).map_err(|m| axis(name, m))?;
            }
        }
        if let Some(r) = random {
            if r.samples == 0 {
                return Err(field("random.samples", "must be positive".into()));
            }
            if r.axes.is_empty() {
                return Err(field("random.axes", "no axes".into()));
            }
            for (name, d) in &r.axes {
                if let Some(m) = d.check() {
                    return Err(axis(name, m));
                }
                // A value of the kind the distribution draws.
                settable(&base_table, name, &d.draw(0.5)).map_err(|m| axis(name, m))?;
            }
        }
        let points = points(&file.grid, random);
        let count = points.len().saturating_mul(seeds.len());
        if count > MAX_TRIALS {
            return Err(field(
                "grid",
                format!("{count} trials is more than {MAX_TRIALS}"),
            ));
        }
        let mut trials = Vec::with_capacity(count);
        for (p, point) in points.iter().enumerate() {
            for &seed in &seeds {
                let mut table = base_table.clone();
                for (name, value) in point {
                    set(&mut table, name, value.clone());
                }
                table.insert("seed".into(), toml::Value::Integer(seed_value(seed)));
                let text = toml::to_string(&table).map_err(|e| {
                    field("grid", format!("point {p} cannot be written as TOML: {e}"))
                })?;
                let config = TrainConfig::from_toml_str(&text, path).map_err(|e| {
                    // Name the axes of the point: the message names the field.
                    axis(
                        &describe(point),
                        format!("the trial config is refused: {e}"),
                    )
                })?;
                // The env checks its config once per point that changes it.
                let first_seed = seed == seeds[0];
                if first_seed && (p == 0 || point.keys().any(|k| k.starts_with("env_config."))) {
                    hale_envs::check_config(&config.env, &config.env_config_json()).map_err(
                        |e| axis(&describe(point), format!("the env refuses its config: {e}")),
                    )?;
                }
                trials.push(Trial {
                    name: format!("p{p:03}-s{seed}"),
                    point: p,
                    axes: point.clone(),
                    seed,
                    config,
                });
            }
        }
        let mut axes: Vec<String> = file.grid.keys().cloned().collect();
        axes.extend(random.iter().flat_map(|r| r.axes.keys().cloned()));
        Ok(Plan {
            path: path.to_path_buf(),
            axes,
            trials,
            bench,
        })
    }
}

/// A seed as TOML writes it (seeds past `i64::MAX` are refused when the file is read).
fn seed_value(seed: u64) -> i64 {
    i64::try_from(seed).unwrap_or(i64::MAX)
}

/// `a=1, b=2`: a point in words (or `base` for the empty point).
pub fn describe(point: &Point) -> String {
    if point.is_empty() {
        return "base".into();
    }
    point
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The axis points: the grid's combinations, each crossed with the random samples.
fn points(grid: &BTreeMap<String, Vec<toml::Value>>, random: Option<&RandomAxes>) -> Vec<Point> {
    let mut points = vec![Point::new()];
    for (name, values) in grid {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(name.clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    let Some(r) = random else {
        return points;
    };
    let mut stream = hale_sim::rng::Stream::from_key(r.seed ^ 0x5eed_5eed_5eed_5eed);
    let samples: Vec<Point> = (0..r.samples)
        .map(|_| {
            r.axes
                .iter()
                .map(|(name, d)| (name.clone(), d.draw(stream.unit())))
                .collect()
        })
        .collect();
    points
        .into_iter()
        .flat_map(|p| {
            samples.iter().map(move |s| {
                let mut q = p.clone();
                q.extend(s.clone());
                q
            })
        })
        .collect()
}

/// Whether `value` may be set at the dotted `path` of the (defaults-filled) config
/// `table`: the path must exist there, except under `env_config` (the env checks its
/// own keys), and the value must have the kind of what is there (a whole number
/// where a number is expected is fine). The error says what is wrong.
fn settable(table: &toml::Table, path: &str, value: &toml::Value) -> Result<(), String> {
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err("an empty key in the dotted path".into());
    }
    if keys == ["seed"] {
        return Err("seeds are the sweep's `seeds` list, not an axis".into());
    }
    let free = keys[0] == "env_config" && keys.len() > 1;
    let mut here = table;
    for (i, key) in keys.iter().enumerate() {
        let last = i + 1 == keys.len();
        match here.get(*key) {
            Some(toml::Value::Table(t)) if !last => here = t,
            Some(existing) if last => {
                return same_kind(existing, value).then_some(()).ok_or_else(|| {
                    format!(
                        "{} is a {} in the config, not a {}",
                        value,
                        existing.type_str(),
                        value.type_str()
                    )
                });
            }
            Some(other) => {
                return Err(format!(
                    "`{}` is a {}, not a table",
                    keys[..=i].join("."),
                    other.type_str()
                ));
            }
            None if free => return Ok(()),
            // A field the defaults leave out (an option such as `ppo.target_kl`):
            // settable if the config takes it.
            None if last && parses_with(table, path, value) => return Ok(()),
            None => {
                let known: Vec<&str> = here.keys().map(String::as_str).collect();
                return Err(format!(
                    "the config has no `{}` (known here: {})",
                    keys[..=i].join("."),
                    known.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Whether the config `table` with `value` at `path` is one the trainer takes.
fn parses_with(table: &toml::Table, path: &str, value: &toml::Value) -> bool {
    let mut t = table.clone();
    set(&mut t, path, value.clone());
    toml::to_string(&t)
        .ok()
        .is_some_and(|text| TrainConfig::from_toml_str(&text, Path::new("sweep")).is_ok())
}

fn same_kind(existing: &toml::Value, value: &toml::Value) -> bool {
    use toml::Value as V;
    matches!(
        (existing, value),
        (V::Float(_), V::Float(_) | V::Integer(_))
            | (V::Integer(_), V::Integer(_))
            | (V::String(_), V::String(_))
            | (V::Boolean(_), V::Boolean(_))
            | (V::Array(_), V::Array(_))
            | (V::Table(_), V::Table(_))
    )
}

/// Sets the dotted `path` of `table` to `value`, making tables on the way. A whole
/// number set where the config has a float becomes a float.
fn set(table: &mut toml::Table, path: &str, value: toml::Value) {
    let keys: Vec<&str> = path.split('.').collect();
    let mut here = table;
    for key in &keys[..keys.len() - 1] {
        let next = here
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !next.is_table() {
            *next = toml::Value::Table(toml::Table::new());
        }
        here = next.as_table_mut().expect("a table was just put here");
    }
    let last = keys[keys.len() - 1].to_string();
    let value = match (here.get(&last), value) {
        (Some(toml::Value::Float(_)), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (_, v) => v,
    };
    here.insert(last, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, SweepError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let file: SweepFile = toml::from_str(text).unwrap();
        Plan::new(&dir.join("test-sweep.toml"), &file)
    }

    #[test]
    fn a_grid_times_seeds_makes_every_trial_in_order() {
        let p = plan(
            r#"base = "cartpole-ppo.toml"
seeds = [1, 2, 3]
[grid]
"ppo.learning_rate" = [1e-4, 3e-4]
"ppo.num_minibatches" = [2, 4]"#,
        )
        .unwrap();
        assert_eq!(p.trials.len(), 12);
        assert_eq!(p.axes, ["ppo.learning_rate", "ppo.num_minibatches"]);
        let t = &p.trials[4];
        assert_eq!(t.name, "p001-s2");
        assert_eq!(t.seed, 2);
        assert_eq!(t.config.seed, 2);
        let ppo = t.config.ppo.as_ref().unwrap();
        assert_eq!((ppo.learning_rate, ppo.num_minibatches), (1e-4, 4));
    }

    #[test]
    fn random_points_are_drawn_the_same_way_every_time_and_within_their_ranges() {
        let text = r#"base = "cartpole-ppo.toml"
[random]
samples = 5
seed = 7
[random.axes]
"ppo.ent_coef" = { log_uniform = [1e-4, 1e-1] }
"ppo.update_epochs" = { int_uniform = [2, 6] }
"ppo.clip_coef" = { choice = [0.1, 0.2] }"#;
        let (a, b) = (plan(text).unwrap(), plan(text).unwrap());
        assert_eq!(a.trials.len(), 5);
        for (x, y) in a.trials.iter().zip(&b.trials) {
            assert_eq!(x.axes, y.axes);
            let ppo = x.config.ppo.as_ref().unwrap();
            assert!((1e-4..1e-1).contains(&ppo.ent_coef), "{}", ppo.ent_coef);
            assert!((2..=6).contains(&ppo.update_epochs));
            assert!([0.1, 0.2].contains(&ppo.clip_coef));
        }
        let distinct: std::collections::BTreeSet<String> =
            a.trials.iter().map(|t| describe(&t.axes)).collect();
        assert_eq!(distinct.len(), 5);
    }

    #[test]
    fn bad_axes_are_named_by_their_path_before_anything_runs() {
        let refused = |grid: &str| {
            plan(&format!("base = \"cartpole-ppo.toml\"\n[grid]\n{grid}"))
                .unwrap_err()
                .to_string()
        };
        let e = refused(r#""ppo.learnin_rate" = [0.1]"#);
        assert!(
            e.contains("axis `ppo.learnin_rate`") && e.contains("no `ppo.learnin_rate`"),
            "{e}"
        );
        assert!(e.contains("learning_rate"), "lists what is there: {e}");
        let e = refused(r#""ppo.learning_rate" = ["fast"]"#);
        assert!(e.contains("is a float in the config, not a string"), "{e}");
        let e = refused(r#""ppo.num_minibatches" = [0]"#);
        assert!(
            e.contains("axis `ppo.num_minibatches=0`") && e.contains("num_minibatches"),
            "{e}"
        );
        let e = refused(r#""dqn.learning_rate" = [0.1]"#);
        assert!(e.contains("no `dqn`"), "{e}");
        let e = refused(r#""seed" = [1, 2]"#);
        assert!(e.contains("sweep's `seeds`"), "{e}");
        let e = refused(r#""ppo.learning_rate.x" = [1]"#);
        assert!(e.contains("is a float, not a table"), "{e}");
        // An option the defaults leave out is settable.
        assert!(plan("base = \"cartpole-ppo.toml\"\n[grid]\n\"ppo.target_kl\" = [0.02]").is_ok());
    }

    /// Every sweep shipped in `experiments/sweeps/` plans (its base configs' traces
    /// permitting).
    #[test]
    fn the_shipped_sweeps_plan() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
        let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file: SweepFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let base = file.base.as_ref().map_or(String::new(), |b| {
                std::fs::read_to_string(dir.join(b)).unwrap_or_default()
            });
            if base.contains("traces") && !traces.exists() {
                continue;
            }
            let plan = Plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !plan.trials.is_empty() || plan.bench.is_some(),
                "{}",
                path.display()
            );
            seen += 1;
        }
        assert!(seen >= 1);
    }

    #[test]
    fn env_config_axes_are_checked_by_the_env() {
        let e = plan(
            r#"base = "scaling-ppo.toml"
[grid]
"env_config.slo_weigth" = [1.0]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("env_config.slo_weigth") && e.contains("the env refuses"),
            "{e}"
        );
    }
}
