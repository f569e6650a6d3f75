//! `hale data`: inspect, convert, fit and generate traces.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use hale_datasets::fit::{FailureModel, FaultTargets, Scope};
use hale_datasets::lanl::Cause;
use hale_datasets::{Cache, CacheUse, Format, RateSeries, Trace, format_minutes};
use hale_sim::TraceSpec;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Print a trace's format, span, resolution, rows, mean and peak rate and quantiles.
    Inspect {
        /// The trace file (or a directory of Bitbrains VM files).
        file: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a trace's workload as a normalised series (t_s,step_s,rps): CSV, or
    /// parquet when OUT ends in .parquet. The transforms are those a scenario's
    /// `kind = "trace"` rate takes, applied in the same order.
    Convert {
        /// The trace file (or a directory of Bitbrains VM files).
        file: PathBuf,
        /// Output file (.csv or .parquet); written to a temporary name, then renamed.
        #[arg(long, short)]
        out: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        transforms: TransformArgs,
    },
    /// Fit time between failures and repair time per root cause (exponential and
    /// Weibull, maximum likelihood) to LANL failure records, with KS goodness of fit.
    Fit {
        /// The LANL failure CSV.
        file: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        /// Failures of a cause form one renewal process per system or per node.
        #[arg(long, value_enum, default_value_t = ScopeArg::System)]
        scope: ScopeArg,
        /// Keep these systems only (comma-separated numbers; default: all).
        #[arg(long, value_delimiter = ',')]
        systems: Vec<u32>,
        /// Also print `[[faults.mtbf]]` TOML for a scenario, sampling these fits.
        #[arg(long)]
        toml: bool,
        /// Service hit by the crash, bad-deploy and dependency faults (with --toml).
        #[arg(long, default_value = "api")]
        service: String,
        /// Zone hit by facility outages (with --toml; absent: left out).
        #[arg(long)]
        zone: Option<String>,
        /// Multiply every fitted time (e.g. 0.0166667 replays minutes as seconds).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Print the fits as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Generate a seeded synthetic series (daily and weekly seasonality, trend,
    /// bursts, flash crowds, noise) from a TOML spec, as CSV or parquet.
    Synth {
        /// The generator spec (fields: see `hale_datasets::synth::Synthetic`).
        spec: PathBuf,
        /// Output file (.csv or .parquet).
        #[arg(long, short)]
        out: PathBuf,
        /// Override the spec's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Args)]
pub struct ReadArgs {
    /// The format (default: detected from the content). One of: azure-invocations,
    /// azure-durations, counts (alias nasa), bitbrains, lanl, series-csv,
    /// series-parquet, synthetic.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Parse the file even if a cached copy exists, and do not write one.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Args)]
pub struct TransformArgs {
    /// Functions (Azure: hash or ≥ 8-character prefix) or VMs (Bitbrains: file stem) to
    /// aggregate, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    select: Vec<String>,
    /// Azure: keep the functions with this trigger (http, timer, queue, …).
    #[arg(long)]
    trigger: Option<String>,
    /// Bitbrains: the column used as load (default cpu_usage_mhz).
    #[arg(long)]
    column: Option<String>,
    /// Resample to this step, in seconds (conserves requests).
    #[arg(long)]
    step_s: Option<f64>,
    /// Keep one part of a time split: train, validation or test.
    #[arg(long)]
    split: Option<String>,
    /// Fractions of train, validation and test (three numbers that sum to 1, as
    /// `0.7,0.15,0.15` or `0.7 0.15 0.15`).
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_values_t = [0.7, 0.15, 0.15])]
    split_fractions: Vec<f64>,
    /// Skip this many seconds into the (split) series.
    #[arg(long, default_value_t = 0.0)]
    start_s: f64,
    /// Keep this many seconds.
    #[arg(long)]
    duration_s: Option<f64>,
    /// Rescale to this peak rate (factor taken on the train part when split).
    #[arg(long)]
    peak_rps: Option<f64>,
    /// Rescale to this mean rate (factor taken on the train part when split).
    #[arg(long)]
    mean_rps: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// One process per system.
    System,
    /// One process per node.
    Node,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("unknown format {s:?}; one of: {}", Format::names()))
}

impl ReadArgs {
    fn cache(&self) -> Cache {
        if self.no_cache {
            Cache::off()
        } else {
            Cache::default_location()
        }
    }

    fn load(&self, file: &Path) -> Result<(Format, Trace, CacheUse)> {
        Ok(self.cache().load(file, self.format)?)
    }
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Inspect { file, read, json } => inspect(&file, &read, json),
        DataCommand::Convert {
            file,
            out,
            read,
            transforms: t,
        } => {
            let &[train, validation, test] = t.split_fractions.as_slice() else {
                bail!(
                    "--split-fractions needs three fractions (train, validation, test), got {}",
                    t.split_fractions.len()
                );
            };
            let spec = TraceSpec {
                path: file.display().to_string(),
                format: read.format.map(|f| f.name().to_string()),
                select: t.select,
                trigger: t.trigger,
                column: t.column,
                step_s: t.step_s,
                split: t.split,
                split_fractions: [train, validation, test],
                start_s: t.start_s,
                duration_s: t.duration_s,
                peak_rps: t.peak_rps,
                mean_rps: t.mean_rps,
                repeat: true,
                offset: hale_sim::TraceOffset::Start,
                resolved: None,
            };
            let series = hale_datasets::resolve_trace(&spec, Path::new("."), &read.cache())?;
            write_and_report(&out, &series)
        }
        DataCommand::Fit {
            file,
            read,
            scope,
            systems,
            toml,
            service,
            zone,
            time_scale,
            json,
        } => {
            if !(time_scale.is_finite() && time_scale > 0.0) {
                bail!("--time-scale must be positive, got {time_scale}");
            }
            let (format, trace, _) = read.load(&file)?;
            let Trace::Failures(log) = trace else {
                bail!(
                    "{}: {format} holds no failure records (fit reads LANL failure CSVs)",
                    file.display()
                );
            };
            let known = log.systems();
            if let Some(s) = systems.iter().find(|s| !known.contains(s)) {
                bail!(
                    "--systems: no system {s} in {} (there are: {known:?})",
                    file.display()
                );
            }
            let scope = match scope {
                ScopeArg::System => Scope::System,
                ScopeArg::Node => Scope::Node,
            };
            let model = FailureModel::fit(&log, scope, &systems);
            if json {
                println!("{}", serde_json::to_string_pretty(&model)?);
            } else {
                print_fit(&model);
            }
            if toml {
                let zone_given = zone.is_some();
                let processes = model.fault_processes(&FaultTargets {
                    service,
                    zone,
                    time_scale,
                });
                #[derive(serde::Serialize)]
                struct Faults {
                    mtbf: Vec<hale_sim::FaultProcessSpec>,
                }
                #[derive(serde::Serialize)]
                struct Snippet {
                    faults: Faults,
                }
                let causes: Vec<&str> = model
                    .causes
                    .iter()
                    .filter(|c| c.between.is_some())
                    .filter(|c| c.cause != Cause::Facilities || zone_given)
                    .map(|c| c.cause.name())
                    .collect();
                println!(
                    "\n# Fault processes sampled from these fits (the better of exponential and\n# Weibull by AIC; times × {time_scale}), one per cause: {}.\n# Paste into a scenario.\n{}",
                    causes.join(", "),
                    ::toml::to_string(&Snippet {
                        faults: Faults { mtbf: processes }
                    })?
                );
            }
            Ok(())
        }
        DataCommand::Synth { spec, out, seed } => {
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("reading {}", spec.display()))?;
            let mut g: hale_datasets::synth::Synthetic =
                ::toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", spec.display()))?;
            if let Some(s) = seed {
                g.seed = s;
            }
            g.validate()
                .map_err(|(field, msg)| anyhow::anyhow!("{}: {field}: {msg}", spec.display()))?;
            let series = g.generate();
            write_and_report(&out, &series)
        }
    }
}

/// Writes a series (atomically) and says what was written.
fn write_and_report(out: &Path, series: &RateSeries) -> Result<()> {
    hale_datasets::write_series(out, series)?;
    let st = series.stats();
    println!(
        "wrote {}: {} steps of {} s, mean {:.4}/s, peak {:.4}/s",
        out.display(),
        st.steps,
        st.step_s,
        st.mean,
        st.peak
    );
    Ok(())
}

fn duration(s: f64) -> String {
    let s = s.round() as i64;
    match s {
        s if s >= 86_400 => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
        s if s >= 3600 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

fn inspect(file: &Path, read: &ReadArgs, json: bool) -> Result<()> {
    let (format, trace, used) = read.load(file)?;
    let detected = if read.format.is_some() {
        "given"
    } else {
        "detected"
    };
    let cache = match (used, read.cache().dir()) {
        (CacheUse::Hit, Some(d)) => format!("read from the cache in {}", d.display()),
        (CacheUse::Stored, Some(d)) => format!("parsed; cached in {}", d.display()),
        (CacheUse::Unwritable, Some(d)) => {
            format!("parsed; could not write the cache in {}", d.display())
        }
        _ => "parsed (no cache)".into(),
    };
    let mut facts: Vec<(String, String)> = vec![
        ("file".into(), file.display().to_string()),
        ("format".into(), format!("{format} ({detected})")),
        ("cache".into(), cache),
    ];
    // The workload series, its unit, and a factor from per-second to that unit.
    let mut series: Option<(RateSeries, &str, f64)> = None;
    match &trace {
        Trace::Invocations(t) => {
            let mut triggers: std::collections::BTreeMap<&str, usize> = Default::default();
            for f in &t.functions {
                *triggers.entry(f.trigger.as_str()).or_default() += 1;
            }
            facts.push((
                "rows".into(),
                format!("{} functions × {} minutes", t.functions.len(), t.minutes),
            ));
            facts.push((
                "minutes".into(),
                format!(
                    "{}–{} of the day",
                    t.first_minute,
                    t.first_minute as usize + t.minutes - 1
                ),
            ));
            facts.push((
                "triggers".into(),
                triggers
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
            facts.push(("invocations".into(), t.total().to_string()));
            series = Some((
                t.series(&(0..t.functions.len()).collect::<Vec<_>>()),
                "invocations/s, all functions",
                1.0,
            ));
        }
        Trace::Durations(d) => {
            facts.push(("rows".into(), format!("{} functions", d.ids.len())));
            for name in ["average_ms", "p50_ms", "p99_ms"] {
                let mut v = d.column(name).expect("known").to_vec();
                v.sort_by(f64::total_cmp);
                let q = |p: f64| v[((p * v.len() as f64) as usize).min(v.len() - 1)];
                facts.push((
                    name.into(),
                    format!(
                        "across functions: median {:.1}, p90 {:.1}, max {:.1}",
                        q(0.5),
                        q(0.9),
                        v[v.len() - 1]
                    ),
                ));
            }
        }
        Trace::Counts(c) => {
            facts.push(("rows".into(), format!("{} values", c.counts.len())));
            series = Some((c.series(), "requests/s", 1.0));
        }
        Trace::Bitbrains(b) => {
            let first = b.vms.iter().map(|v| v.timestamp_s[0]).min().unwrap_or(0);
            let last = b
                .vms
                .iter()
                .map(|v| *v.timestamp_s.last().expect("non-empty"))
                .max()
                .unwrap_or(0);
            facts.push((
                "rows".into(),
                format!("{} samples of {} VMs", b.rows(), b.vms.len()),
            ));
            facts.push((
                "time".into(),
                format!(
                    "{} to {} UTC",
                    format_minutes(first.div_euclid(60)),
                    format_minutes(last.div_euclid(60))
                ),
            ));
            series = Some((
                b.series(&(0..b.vms.len()).collect::<Vec<_>>(), 2),
                "CPU MHz used, all VMs (a load proxy)",
                1.0,
            ));
        }
        Trace::Failures(log) => {
            let first = log
                .failures
                .iter()
                .map(|f| f.started_min)
                .min()
                .unwrap_or(0);
            let last = log
                .failures
                .iter()
                .map(|f| f.started_min)
                .max()
                .unwrap_or(0);
            facts.push((
                "rows".into(),
                format!(
                    "{} failure records on {} systems",
                    log.failures.len(),
                    log.systems().len()
                ),
            ));
            facts.push((
                "time".into(),
                format!(
                    "{} to {} (local clock)",
                    format_minutes(first),
                    format_minutes(last)
                ),
            ));
            facts.push((
                "causes".into(),
                log.cause_counts()
                    .iter()
                    .map(|(c, n)| format!("{} {n}", c.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
            // Failures per day, as a series.
            let days = ((last - first) / 1440 + 1) as usize;
            let mut per_day = vec![0.0; days];
            for f in &log.failures {
                per_day[((f.started_min - first) / 1440) as usize] += 1.0 / 86_400.0;
            }
            series = Some((RateSeries::new(86_400.0, per_day), "failures/day", 86_400.0));
        }
        Trace::Series(s) => {
            facts.push(("rows".into(), format!("{} steps", s.rps.len())));
            series = Some((s.clone(), "requests/s", 1.0));
        }
    }
    let stats = series.as_ref().map(|(s, unit, k)| {
        let mut st = s.stats();
        st.mean *= k;
        st.peak *= k;
        for q in &mut st.quantiles {
            q.1 *= k;
        }
        (st, s.start_s, *unit)
    });
    if let Some((st, start, unit)) = &stats {
        facts.push((
            "span".into(),
            format!("{} ({} s) from {start} s", duration(st.span_s), st.span_s),
        ));
        facts.push(("resolution".into(), format!("{} s", st.step_s)));
        facts.push(("unit".into(), unit.to_string()));
        facts.push((
            "rate".into(),
            format!(
                "mean {:.4}, peak {:.4}, total {:.0}",
                st.mean, st.peak, st.total
            ),
        ));
        facts.push((
            "quantiles".into(),
            st.quantiles
                .iter()
                .map(|(p, v)| format!("p{} {v:.4}", (p * 100.0).round()))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        facts.push(("zero steps".into(), st.zero_steps.to_string()));
    }
    if json {
        let mut obj = serde_json::Map::new();
        for (k, v) in &facts {
            obj.insert(k.replace(' ', "_"), serde_json::Value::String(v.clone()));
        }
        if let Some((st, _, _)) = &stats {
            obj.insert("stats".into(), serde_json::to_value(st)?);
        }
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        for (k, v) in &facts {
            println!("{k:<11} {v}");
        }
    }
    Ok(())
}

fn print_fit(m: &FailureModel) {
    println!(
        "Scope: per {}; systems {:?}. Times in hours (between failures) and minutes (repair).",
        match m.scope {
            Scope::System => "system",
            Scope::Node => "node",
        },
        m.systems
    );
    println!(
        "{:<13} {:>7} {:>7} | {:>9} {:>6} | {:>7} {:>9} {:>6} | {:>9} {:>7} {:>9} {:>6}",
        "cause",
        "records",
        "events",
        "exp mean",
        "KS",
        "wb k",
        "wb λ",
        "KS",
        "rep mean",
        "rep k",
        "rep λ",
        "KS"
    );
    for c in &m.causes {
        let (tbf, rep) = (c.between.as_ref(), c.repair.as_ref());
        let cell = |v: Option<f64>, w: usize, p: usize| {
            v.map_or_else(|| format!("{:>w$}", "–"), |v| format!("{v:>w$.p$}"))
        };
        println!(
            "{:<13} {:>7} {:>7} | {} {} | {} {} {} | {} {} {} {}",
            c.cause.name(),
            c.records,
            c.events,
            cell(tbf.map(|f| f.exponential.mean_s / 3600.0), 9, 2),
            cell(tbf.map(|f| f.exponential.ks), 6, 3),
            cell(tbf.map(|f| f.weibull.shape), 7, 3),
            cell(tbf.map(|f| f.weibull.scale_s / 3600.0), 9, 2),
            cell(tbf.map(|f| f.weibull.ks), 6, 3),
            cell(rep.map(|f| f.sample_mean_s / 60.0), 9, 1),
            cell(rep.map(|f| f.weibull.shape), 7, 3),
            cell(rep.map(|f| f.weibull.scale_s / 60.0), 9, 1),
            cell(rep.map(|f| f.weibull.ks), 6, 3),
        );
    }
    println!("KS: largest gap between the empirical and the fitted CDF (smaller is better).");
}
