//! `hale report PATH`: figures (SVG and PNG) and an `index.html` that gathers them
//! with their tables, for a training run, a folder of runs, a sweep or an evaluation
//! folder:
//!
//! - runs: learning curves (CleanRL's metric names), runs of one experiment that
//!   differ only by seed drawn as their mean with a band from the lowest to the
//!   highest seed; the end-of-training comparison against the baselines, if any;
//! - a sweep: the learning curves of each axis point over its seeds, and per point
//!   the mean and 95 % CI over seeds of the evaluation and the paired differences
//!   (`trials.csv`), and of each benchmark task it judged;
//! - an evaluation (`hale eval --out`, `hale bench run`): each policy's mean with its
//!   95 % CI, the paired differences against the first policy with their paired
//!   95 % CI, and the episode timeline that `hale eval` recorded.

use crate::plot::{Bars, Figure, Lines, Panel, Series, color};
use crate::table::Csv;
use anyhow::{Context, Result, bail};
use hale_policies::bundle::write_atomic;
use hale_policies::stats;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `hale report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A training run's folder, a folder of runs (runs of one experiment with other
    /// seeds are drawn as one curve with a seed band), a sweep's folder, or an
    /// evaluation folder (`hale eval --out`, `hale bench run --out`).
    path: PathBuf,
    /// Where the figures and index.html go (default: PATH/report).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The metrics compared in bars, in this order, where the files have them.
const KEY: &[(&str, &str)] = &[
    ("episode_return", "return"),
    ("cost", "host bill, $"),
    ("slo_violation_min", "SLO-violation minutes"),
    ("p95_ms", "p95, ms"),
    ("cpu_slack", "CPU slack"),
    ("availability", "availability"),
    ("mttr_s", "MTTR, s"),
    ("actions", "actions"),
    ("evictions", "evictions"),
    ("oom_kills", "OOM kills"),
    ("conflicts", "ledger conflicts"),
];

/// What a report is made of: figures (file stems in the output folder, with a
/// caption) and HTML tables, in sections.
#[derive(Default)]
struct Page {
    title: String,
    sections: Vec<(String, Vec<Item>)>,
}

enum Item {
    Figure { stem: String, caption: String },
    Table(String),
    Note(String),
}

pub fn run(args: ReportArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.path.join("report"));
    write(&args.path, &out)
}

/// Writes the report of `path` (a run, runs, a sweep or an evaluation) into `out`.
pub fn write(path: &Path, out: &Path) -> Result<()> {
    anyhow::ensure!(path.is_dir(), "{}: no such folder", path.display());
    let out = out.to_path_buf();
    crate::eval::check_out_dir(&out)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut page = Page {
        title: format!("hale report: {}", path.display()),
        ..Page::default()
    };
    let kind = if path.join("plan.json").is_file() {
        sweep(path, &out, &mut page)?;
        "a sweep"
    } else if path.join("metrics.csv").is_file() {
        runs(&[path.to_path_buf()], &out, &mut page)?;
        run_comparison(path, &out, &mut page)?;
        "a training run"
    } else if path.join("summary.json").is_file() && path.join("episodes.csv").is_file() {
        evaluation(path, &out, "", &mut page)?;
        "an evaluation"
    } else {
        let children = subfolders(path);
        let run_dirs: Vec<PathBuf> = children
            .iter()
            .filter(|c| c.join("metrics.csv").is_file())
            .cloned()
            .collect();
        let eval_dirs: Vec<PathBuf> = children
            .iter()
            .filter(|c| c.join("summary.json").is_file() && c.join("episodes.csv").is_file())
            .cloned()
            .collect();
        if !run_dirs.is_empty() {
            runs(&run_dirs, &out, &mut page)?;
            "a folder of runs"
        } else if !eval_dirs.is_empty() {
            for d in &eval_dirs {
                let name = d
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                evaluation(d, &out, &name, &mut page)?;
            }
            "a folder of evaluations"
        } else {
            bail!(
                "{}: not a run, sweep or evaluation folder (it has no metrics.csv, no \
                 plan.json, no episodes.csv with summary.json, and no subfolder with them)",
                path.display()
            )
        }
    };
    let figures: usize = page
        .sections
        .iter()
        .flat_map(|s| &s.1)
        .filter(|i| matches!(i, Item::Figure { .. }))
        .count();
    write_atomic(&out.join("index.html"), html(&page).as_bytes())?;
    eprintln!(
        "report of {kind}: {figures} figures (SVG and PNG) and {}",
        out.join("index.html").display()
    );
    Ok(())
}

fn subfolders(path: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// A run folder's experiment, without its seed and start time: hale train names a
/// run `ENV__NAME__SEED__UNIXTIME`.
fn experiment_of(run: &Path) -> String {
    let name = run
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let parts: Vec<&str> = name.split("__").collect();
    if parts.len() == 4 && parts[2].parse::<u64>().is_ok() && parts[3].parse::<u64>().is_ok() {
        format!("{}__{}", parts[0], parts[1])
    } else {
        name
    }
}

/// One curve: (step, value) of a run's metric column, rows without a value dropped.
fn curve(csv: &Csv, metric: &str) -> Result<Vec<(f64, f64)>> {
    let x = csv.numbers("global_step")?;
    let y = csv.numbers(metric)?;
    Ok(x.into_iter()
        .zip(y)
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect())
}

/// The value of a curve at `x` by linear interpolation (`x` within its range).
fn at(c: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = c.partition_point(|p| p.0 < x);
    if i < c.len() && c[i].0 == x {
        return Some(c[i].1);
    }
    if i == 0 || i >= c.len() {
        return None;
    }
    let (a, b) = (c[i - 1], c[i]);
    Some(a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0))
}

/// Several seeds' curves as one: on the steps of the longest, where every seed has
/// a value, the mean, and the band from the lowest to the highest seed.
/// A curve's mean (x, y) and its band (x, low, high).
type Banded = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

fn band(curves: &[Vec<(f64, f64)>]) -> Banded {
    let grid = curves
        .iter()
        .max_by_key(|c| c.len())
        .cloned()
        .unwrap_or_default();
    let (mut mean, mut band) = (Vec::new(), Vec::new());
    for (x, _) in grid {
        let ys: Option<Vec<f64>> = curves.iter().map(|c| at(c, x)).collect();
        let Some(ys) = ys else { continue };
        let m = ys.iter().sum::<f64>() / ys.len() as f64;
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        mean.push((x, m));
        band.push((x, lo, hi));
    }
    (mean, band)
}

/// The metric columns of metrics.csv files, return first, losses next.
fn metric_columns(csvs: &[&Csv]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in csvs {
        for h in &c.header {
            if h != "global_step" && h != "iteration" && !names.contains(h) {
                names.push(h.clone());
            }
        }
    }
    let rank = |n: &str| match n {
        "charts/episodic_return" => 0,
        "charts/episodic_length" => 1,
        n if n.starts_with("losses/") => 2,
        _ => 3,
    };
    names.sort_by_key(|n| rank(n));
    names
}

/// Learning curves of groups of runs (a group: one label, its seeds' folders).
fn learning(
    groups: &[(String, Vec<PathBuf>)],
    out: &Path,
    page: &mut Page,
    section: &str,
) -> Result<()> {
    let mut csvs: Vec<Vec<Csv>> = Vec::new();
    for (_, dirs) in groups {
        csvs.push(
            dirs.iter()
                .map(|d| Csv::read(&d.join("metrics.csv")))
                .collect::<Result<_>>()?,
        );
    }
    let all: Vec<&Csv> = csvs.iter().flatten().collect();
    let columns = metric_columns(&all);
    let seeds: Vec<usize> = groups.iter().map(|g| g.1.len()).collect();
    let banded = seeds.iter().any(|&n| n > 1);
    let panel = |metric: &str| -> Result<Panel> {
        let mut series = Vec::new();
        for (i, ((label, _), group)) in groups.iter().zip(&csvs).enumerate() {
            let curves: Vec<Vec<(f64, f64)>> = group
                .iter()
                .filter(|c| c.has(metric))
                .map(|c| curve(c, metric))
                .collect::<Result<_>>()?;
            if curves.iter().all(Vec::is_empty) {
                continue;
            }
            let (mean, band) = band(&curves);
            let mut s = Series::new(
                if groups.len() > 1 || banded {
                    format!(
                        "{label} ({} seed{})",
                        curves.len(),
                        if curves.len() == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                },
                color(i),
                mean,
            );
            if curves.len() > 1 {
                s.band = band;
            }
            series.push(s);
        }
        Ok(Panel::Lines(Lines {
            title: metric.into(),
            x_desc: "environment steps".into(),
            series,
            ..Lines::default()
        }))
    };
    let tag = if section.is_empty() {
        String::new()
    } else {
        format!("-{section}")
    };
    let mut items = Vec::new();
    if columns.iter().any(|c| c == "charts/episodic_return") {
        let stem = format!("learning{tag}");
        Figure {
            panels: vec![panel("charts/episodic_return")?],
            columns: 1,
            panel: (900, 420),
        }
        .save(&out.join(&stem))?;
        items.push(Item::Figure {
            stem,
            caption: if banded {
                "Episodic return while training: the mean over seeds, the band from the lowest \
                 to the highest seed."
                    .into()
            } else {
                "Episodic return while training.".into()
            },
        });
    }
    let stem = format!("learning-all{tag}");
    Figure {
        panels: columns.iter().map(|c| panel(c)).collect::<Result<_>>()?,
        columns: 2,
        panel: (560, 300),
    }
    .save(&out.join(&stem))?;
    items.push(Item::Figure {
        stem,
        caption: "Every training metric (CleanRL's names).".into(),
    });
    let mut table = String::from("<table><tr><th>curve</th><th>seeds</th><th>runs</th></tr>");
    for (label, dirs) in groups {
        let names: Vec<String> = dirs
            .iter()
            .map(|d| {
                d.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(label),
            dirs.len(),
            esc(&names.join(", "))
        );
    }
    table += "</table>";
    items.push(Item::Table(table));
    page.sections.push(("Learning curves".into(), items));
    Ok(())
}

/// Run folders grouped by experiment (seeds of one experiment together).
fn runs(dirs: &[PathBuf], out: &Path, page: &mut Page) -> Result<()> {
    let mut groups: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for d in dirs {
        groups.entry(experiment_of(d)).or_default().push(d.clone());
    }
    learning(&groups.into_iter().collect::<Vec<_>>(), out, page, "")
}

/// A run's comparison with the baselines at the end of training (summary.json).
fn run_comparison(run: &Path, out: &Path, page: &mut Page) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(run.join("summary.json")) else {
        page.sections.push((
            "Comparison".into(),
            vec![Item::Note(
                "The run has no summary.json yet (not finished).".into(),
            )],
        ));
        return Ok(());
    };
    let s: Json = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", run.join("summary.json").display()))?;
    if s["comparison"].is_object() {
        let order = policy_order(&s["comparison"], None);
        comparison(
            &s["comparison"],
            &order,
            out,
            "",
            page,
            "Against the baselines after training",
        )?;
    } else if let Some(mean) = s["eval_mean_return"].as_f64() {
        let n = s["eval_episodes"].as_u64().unwrap_or(0);
        page.sections.push((
            "After training".into(),
            vec![Item::Note(format!(
                "Evaluation after training: mean return {} over {n} episodes (the env has no \
                 baselines to compare with).",
                num(mean)
            ))],
        ));
    }
    Ok(())
}

/// The policies of a comparison, the first (the reference of the differences)
/// first: from `episodes.csv` where given, else from the pairs' names.
fn policy_order(summary: &Json, episodes: Option<&Csv>) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    if let Some(p) = episodes.and_then(|c| c.text("policy").ok()) {
        for name in p {
            if !order.contains(&name) {
                order.push(name);
            }
        }
        return order;
    }
    let pairs: Vec<&String> = summary["paired_differences"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    if let Some(first) = pairs.first().and_then(|p| p.split(" - ").nth(1)) {
        order.push(first.to_string());
    }
    for p in pairs {
        if let Some(b) = p.split(" - ").next()
            && !order.iter().any(|o| o == b)
        {
            order.push(b.to_string());
        }
    }
    for p in summary["policies"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if !order.contains(p) {
            order.push(p.clone());
        }
    }
    order
}

/// Bars of each policy's means and of the paired differences, and their table.
fn comparison(
    summary: &Json,
    order: &[String],
    out: &Path,
    tag: &str,
    page: &mut Page,
    title: &str,
) -> Result<()> {
    let policies = &summary["policies"];
    let diffs = &summary["paired_differences"];
    let first = order.first().cloned().unwrap_or_default();
    let present: Vec<(&str, &str)> = KEY
        .iter()
        .copied()
        .filter(|(k, _)| {
            order
                .iter()
                .any(|p| policies[p][k]["mean"].as_f64().is_some())
        })
        .collect();
    let mut items = Vec::new();
    let means: Vec<Panel> = present
        .iter()
        .map(|(k, label)| {
            Panel::Bars(Bars {
                title: (*label).into(),
                bars: order
                    .iter()
                    .map(|p| {
                        let m = &policies[p][*k];
                        (
                            p.clone(),
                            m["mean"].as_f64().unwrap_or(f64::NAN),
                            m["ci95"].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .collect(),
                offset: 0,
            })
        })
        .collect();
    if !means.is_empty() {
        let stem = format!("comparison{tag}");
        let columns = means.len().clamp(1, 4);
        Figure {
            panels: means,
            columns,
            panel: (330, 280),
        }
        .save(&out.join(&stem))?;
        items.push(Item::Figure {
            stem,
            caption: "Each policy's mean per episode, whiskers its 95 % CI.".into(),
        });
    }
    let pairs: Vec<String> = order[1.min(order.len())..]
        .iter()
        .map(|p| format!("{p} - {first}"))
        .filter(|pair| diffs[pair].is_object())
        .collect();
    let paired: Vec<Panel> = present
        .iter()
        .map(|(k, label)| {
            Panel::Bars(Bars {
                title: format!("{label}: − {first}"),
                bars: pairs
                    .iter()
                    .map(|pair| {
                        let d = &diffs[pair][*k];
                        (
                            pair.split(" - ").next().unwrap_or_default().to_string(),
                            d["diff"].as_f64().unwrap_or(f64::NAN),
                            d["ci95_paired"].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .collect(),
                offset: 1,
            })
        })
        .collect();
    if !pairs.is_empty() && !paired.is_empty() {
        let stem = format!("paired{tag}");
        let columns = paired.len().clamp(1, 4);
        Figure {
            panels: paired,
            columns,
            panel: (330, 280),
        }
        .save(&out.join(&stem))?;
        items.push(Item::Figure {
            stem,
            caption: format!(
                "Paired differences against {first} on the same seeds (policy − {first}), \
                 whiskers their paired 95 % CI: a whisker clear of 0 is a difference the \
                 seeds agree on."
            ),
        });
    }
    let mut table = String::from("<table><tr><th>policy</th>");
    for (_, label) in &present {
        let _ = write!(table, "<th>{}</th>", esc(label));
    }
    table += "</tr>";
    for p in order {
        let _ = write!(table, "<tr><td>{}</td>", esc(p));
        for (k, _) in &present {
            let m = &policies[p][*k];
            let _ = write!(
                table,
                "<td>{}</td>",
                pm(m["mean"].as_f64(), m["ci95"].as_f64())
            );
        }
        table += "</tr>";
    }
    for pair in &pairs {
        let _ = write!(table, "<tr class=diff><td>{}</td>", esc(pair));
        for (k, _) in &present {
            let d = &diffs[pair][*k];
            let _ = write!(
                table,
                "<td>{}</td>",
                pm(d["diff"].as_f64(), d["ci95_paired"].as_f64())
            );
        }
        table += "</tr>";
    }
    table += "</table>";
    items.push(Item::Table(table));
    page.sections.push((title.into(), items));
    Ok(())
}

/// An evaluation folder: its comparison and its timeline.
fn evaluation(dir: &Path, out: &Path, name: &str, page: &mut Page) -> Result<()> {
    let path = dir.join("summary.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let s: Json =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let summary = &s["summary"];
    anyhow::ensure!(
        summary["policies"].is_object(),
        "{}: no summary.policies (not written by hale eval?)",
        path.display()
    );
    let episodes = Csv::read(&dir.join("episodes.csv"))?;
    let order = policy_order(summary, Some(&episodes));
    let tag = if name.is_empty() {
        String::new()
    } else {
        format!("-{}", crate::timeline::file_safe(name))
    };
    let n = episodes.rows.len() / order.len().max(1);
    let env = s["env"].as_str().unwrap_or("?");
    let title = if name.is_empty() {
        format!("{env}: {} policies × {n} episodes", order.len())
    } else {
        format!("{name} ({env}): {} policies × {n} episodes", order.len())
    };
    comparison(summary, &order, out, &tag, page, &title)?;
    let timeline = dir.join("timeline.csv");
    if timeline.is_file() {
        let folder = out.join(format!("timeline{tag}"));
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let stems = crate::timeline::figures(&timeline, &folder)?;
        let items = stems
            .iter()
            .map(|st| {
                let file = st
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let caption = match file.strip_prefix("timeline-") {
                    Some(p) => format!(
                        "{p} alone: load, the replicas of each service, the p95 against the \
                         SLO, the bill, faults (red), their resolution (green) and remedies \
                         (purple)."
                    ),
                    None => "The policies side by side on one episode: load, replicas, cores, \
                             hosts, p95 against the SLO, the bill, SLO-violation minutes."
                        .into(),
                };
                Item::Figure {
                    stem: format!("timeline{tag}/{file}"),
                    caption,
                }
            })
            .collect();
        page.sections.push((
            format!(
                "Episode timeline{}",
                if name.is_empty() {
                    String::new()
                } else {
                    format!(": {name}")
                }
            ),
            items,
        ));
    }
    Ok(())
}

/// A sweep: learning curves per point, and per point the table's metrics.
fn sweep(dir: &Path, out: &Path, page: &mut Page) -> Result<()> {
    let path = dir.join("plan.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let plan: Json =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let trials = plan["trials"].as_array().cloned().unwrap_or_default();
    // Point → (its axes, its seeds' run folders).
    let mut points: BTreeMap<u64, (String, Vec<PathBuf>)> = BTreeMap::new();
    for t in &trials {
        let (Some(name), Some(point)) = (t["name"].as_str(), t["point"].as_u64()) else {
            bail!("{}: a trial without a name or point", path.display())
        };
        let entry = points
            .entry(point)
            .or_insert_with(|| (t["axes"].as_str().unwrap_or("").to_string(), Vec::new()));
        if let Some(run) = crate::sweep_cmd::run_folder(&dir.join("trials").join(name))
            && run.join("metrics.csv").is_file()
        {
            entry.1.push(run);
        }
    }
    // Axis values every point shares say nothing in a legend: left out.
    let parts = |axes: &str| axes.split(", ").map(str::to_string).collect::<Vec<_>>();
    let shared: Vec<String> = points
        .values()
        .map(|(a, _)| parts(a))
        .reduce(|acc, p| acc.into_iter().filter(|x| p.contains(x)).collect())
        .unwrap_or_default();
    for (axes, _) in points.values_mut() {
        let own: Vec<String> = parts(axes)
            .into_iter()
            .filter(|x| !shared.contains(x))
            .collect();
        *axes = own.join(", ");
    }
    let groups: Vec<(String, Vec<PathBuf>)> = points
        .iter()
        .filter(|(_, (_, runs))| !runs.is_empty())
        .map(|(p, (axes, runs))| (format!("p{p} {axes}"), runs.clone()))
        .collect();
    if !groups.is_empty() {
        learning(&groups, out, page, "")?;
    }
    let table = dir.join("trials.csv");
    if !table.is_file() {
        page.sections.push((
            "Trials".into(),
            vec![Item::Note(format!(
                "{} is not there yet: run the sweep to its end (hale sweep writes it last).",
                table.display()
            ))],
        ));
        return Ok(());
    }
    let csv = Csv::read(&table)?;
    let status = csv.text("status")?;
    let point = csv.numbers("point")?;
    if trials.is_empty() {
        // A sweep of benchmark tasks: each task's result is an evaluation.
        for task in subfolders(&dir.join("trials")) {
            let result = task.join("result");
            if result.join("summary.json").is_file() {
                let name = task
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                evaluation(&result, out, &name, page)?;
            }
        }
        return Ok(());
    }
    // Per point, mean and CI over done seeds of each key column.
    let wanted = |c: &str| {
        c == "eval/mean_return"
            || c == "train/episodic_return"
            || (c.contains("diff/") && KEY.iter().any(|(k, _)| c.ends_with(&format!("/{k}"))))
    };
    let columns: Vec<&String> = csv.header.iter().filter(|c| wanted(c)).collect();
    let labels: BTreeMap<u64, String> = points.iter().map(|(p, (a, _))| (*p, a.clone())).collect();
    // Columns grouped by figure: the training trials', then each benchmark task's.
    let mut figures: BTreeMap<String, Vec<Panel>> = BTreeMap::new();
    let mut rows = String::from(
        "<table><tr><th>point</th><th>axes</th><th>metric</th><th>mean ± 95 % CI</th><th>seeds done</th></tr>",
    );
    for c in &columns {
        let values = csv.numbers(c)?;
        let mut bars = Vec::new();
        for (p, axes) in &labels {
            let xs: Vec<f64> = values
                .iter()
                .zip(&point)
                .zip(&status)
                .filter(|((_, q), s)| **q as u64 == *p && s.as_str() == "done")
                .map(|((v, _), _)| *v)
                .collect();
            let (m, ci) = stats::mean_ci(&xs);
            bars.push((format!("p{p}"), m, ci));
            let done = xs.iter().filter(|x| x.is_finite()).count();
            let _ = write!(
                rows,
                "<tr><td>p{p}</td><td>{}</td><td>{}</td><td>{}</td><td>{done}</td></tr>",
                esc(axes),
                esc(c),
                pm(Some(m), Some(ci))
            );
        }
        let group = c
            .strip_prefix("bench/")
            .and_then(|r| r.split('/').next())
            .map_or_else(
                || "points".to_string(),
                |task| format!("points-{}", crate::timeline::file_safe(task)),
            );
        let title = c
            .strip_prefix("bench/")
            .map_or(c.as_str(), |r| r.split_once('/').map_or(r, |x| x.1));
        figures.entry(group).or_default().push(Panel::Bars(Bars {
            title: title.to_string(),
            bars,
            offset: 0,
        }));
    }
    rows += "</table>";
    let mut items = Vec::new();
    let legend: Vec<String> = labels.iter().map(|(p, a)| format!("p{p}: {a}")).collect();
    for (stem, panels) in figures {
        let columns = panels.len().clamp(1, 3);
        Figure {
            panels,
            columns,
            panel: (420, 280),
        }
        .save(&out.join(&stem))?;
        let what = stem
            .strip_prefix("points-")
            .map_or("the trials' own evaluation".to_string(), |t| {
                format!("benchmark task {t}")
            });
        items.push(Item::Figure {
            stem,
            caption: format!(
                "Per axis point, {what}: the mean over its finished seeds, whiskers the 95 % \
                 CI over seeds (differences are paired per seed against the baseline named). \
                 {}",
                legend.join("; ")
            ),
        });
    }
    items.push(Item::Table(rows));
    page.sections.push(("Per axis point".into(), items));
    Ok(())
}

fn pm(mean: Option<f64>, ci: Option<f64>) -> String {
    match (mean, ci) {
        (Some(m), Some(c)) if m.is_finite() && c.is_finite() => format!("{} ± {}", num(m), num(c)),
        (Some(m), _) if m.is_finite() => num(m),
        _ => "–".into(),
    }
}

fn num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.001..1e6).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(page: &Page) -> String {
    let mut h = format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{t}</title>\n<style>\
         body{{font-family:system-ui,sans-serif;max-width:1280px;margin:2em auto;padding:0 1em;color:#222}}\
         img{{max-width:100%;border:1px solid #ddd}}figure{{margin:1.5em 0}}figcaption{{color:#555;font-size:.9em}}\
         table{{border-collapse:collapse;font-size:.85em;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .5em;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}tr.diff{{background:#f4f4fb}}nav a{{margin-right:1em}}\
         </style></head><body>\n<h1>{t}</h1>\n<nav>",
        t = esc(&page.title)
    );
    for (i, (title, _)) in page.sections.iter().enumerate() {
        let _ = write!(h, "<a href=\"#s{i}\">{}</a>", esc(title));
    }
    h += "</nav>\n";
    for (i, (title, items)) in page.sections.iter().enumerate() {
        let _ = writeln!(h, "<h2 id=s{i}>{}</h2>", esc(title));
        for item in items {
            match item {
                Item::Figure { stem, caption } => {
                    let _ = writeln!(
                        h,
                        "<figure><img src=\"{stem}.svg\" alt=\"{c}\"><figcaption>{c} \
                         (<a href=\"{stem}.png\">PNG</a>, <a href=\"{stem}.svg\">SVG</a>)</figcaption></figure>",
                        c = esc(caption)
                    );
                }
                Item::Table(t) => {
                    h += t;
                    h.push('\n');
                }
                Item::Note(n) => {
                    let _ = writeln!(h, "<p>{}</p>", esc(n));
                }
            }
        }
    }
    h += "</body></html>\n";
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_band_between_their_lowest_and_highest() {
        let a = vec![(0.0, 0.0), (10.0, 10.0), (20.0, 20.0)];
        let b = vec![(0.0, 2.0), (20.0, 22.0)];
        let (mean, low_high) = band(&[a, b]);
        assert_eq!(mean, vec![(0.0, 1.0), (10.0, 11.0), (20.0, 21.0)]);
        assert_eq!(low_high[1], (10.0, 10.0, 12.0));
        // A seed that stopped early: the curve ends where it ends.
        let (mean, _) = band(&[vec![(0.0, 1.0), (5.0, 1.0)], vec![(0.0, 3.0), (9.0, 3.0)]]);
        assert_eq!(mean, vec![(0.0, 2.0)]);
    }

    #[test]
    fn a_run_folder_names_its_experiment() {
        assert_eq!(
            experiment_of(Path::new("runs/CartPole-v1__ppo__3__1796290634")),
            "CartPole-v1__ppo"
        );
        assert_eq!(experiment_of(Path::new("runs/mine")), "mine");
    }
}
