//! # hale-datasets: real traces, workload series and failure models for the simulator
//!
//! Loaders read public traces in their original formats into typed values and polars
//! frames with documented units ([`frame`]): the Azure Functions 2019 invocation counts
//! and duration percentiles ([`azure`]), per-second request counts in the NASA-HTTP
//! style ([`counts`]), Bitbrains GWA-T-12 per-VM samples ([`bitbrains`]) and the LANL
//! failure records ([`lanl`]). Each error names the file, the line and the column.
//!
//! A workload trace becomes a [`RateSeries`] that can be resampled, rescaled, split by
//! time and windowed, and reaches the simulator as a piecewise-constant rate
//! (a non-homogeneous Poisson process, sampled by thinning). A scenario names a trace
//! with `rate = { kind = "trace", path = …, … }`; [`load_scenario`] reads it.
//! [`fit`] fits per-cause failure models to the LANL records and turns them into the
//! simulator's fault processes; [`synth`] generates seeded synthetic series. Parsed
//! traces are cached as parquet, keyed by the file's SHA-256 ([`Cache`]).
//!
//! ```
//! use hale_datasets::{RateSeries, Split};
//!
//! // One minute at 1 request/s, then one at 3/s, per second.
//! let per_second = RateSeries::new(1.0, [vec![1.0; 60], vec![3.0; 60]].concat());
//! let per_minute = per_second.resample(60.0);
//! assert_eq!(per_minute.rps, vec![1.0, 3.0]);
//! assert_eq!(per_minute.total(), per_second.total()); // requests are conserved
//! let peak_100 = per_minute.scaled(100.0 / per_minute.peak());
//! assert_eq!(peak_100.rps, vec![100.0 / 3.0, 100.0]);
//! let test = per_second.split([0.5, 0.25, 0.25], Split::Test);
//! assert_eq!((test.start_s, test.rps.len()), (90.0, 30));
//! ```
#![warn(missing_docs)]

pub mod azure;
pub mod bitbrains;
mod cache;
pub mod counts;
mod csvread;
mod error;
pub mod fit;
pub mod frame;
pub mod lanl;
mod scenario;
mod series;
pub mod synth;

pub use cache::{Cache, CacheUse};
pub use csvread::format_minutes;
pub use error::DataError;
pub use scenario::{LoadError, load_scenario, resolve_scenario, resolve_trace, transform};
pub use series::{RateSeries, SeriesStats, Split};

use std::path::Path;

/// The formats hale reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Azure Functions 2019 invocations per function per minute.
    AzureInvocations,
    /// Azure Functions 2019 duration percentiles per function.
    AzureDurations,
    /// Whitespace-separated per-second request counts (NASA-HTTP style).
    Counts,
    /// Bitbrains GWA-T-12 per-VM CSV (one file, or a directory of them).
    Bitbrains,
    /// LANL failure records (LA-UR-05-7318).
    Lanl,
    /// hale's normalised series as CSV: `t_s,step_s,rps`.
    SeriesCsv,
    /// hale's normalised series as parquet (same columns).
    SeriesParquet,
    /// A synthetic generator's TOML spec ([`synth::Synthetic`]).
    Synthetic,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 8] = [
        Format::AzureInvocations,
        Format::AzureDurations,
        Format::Counts,
        Format::Bitbrains,
        Format::Lanl,
        Format::SeriesCsv,
        Format::SeriesParquet,
        Format::Synthetic,
    ];

    /// The name used on the command line and in scenarios.
    pub fn name(self) -> &'static str {
        match self {
            Format::AzureInvocations => "azure-invocations",
            Format::AzureDurations => "azure-durations",
            Format::Counts => "counts",
            Format::Bitbrains => "bitbrains",
            Format::Lanl => "lanl",
            Format::SeriesCsv => "series-csv",
            Format::SeriesParquet => "series-parquet",
            Format::Synthetic => "synthetic",
        }
    }

    /// Parses a name (`nasa` is accepted for `counts`).
    pub fn parse(s: &str) -> Option<Format> {
        if s == "nasa" {
            return Some(Format::Counts);
        }
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The list of names, for messages.
    pub fn names() -> String {
        Format::ALL.map(Format::name).join(", ")
    }

    /// Whether the format is a workload (a rate over time) rather than failure records
    /// or durations.
    pub fn is_workload(self) -> bool {
        !matches!(self, Format::AzureDurations | Format::Lanl)
    }

    /// Detects the format of `path` from its content (a directory: Bitbrains).
    pub fn detect(path: &Path) -> Result<Format, DataError> {
        if path.is_dir() {
            return Ok(Format::Bitbrains);
        }
        let mut head = [0u8; 64];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
            let mut n = 0;
            while n < head.len() {
                match f.read(&mut head[n..]).map_err(|e| DataError::io(path, e))? {
                    0 => break,
                    k => n += k,
                }
            }
            n
        };
        let head = &head[..n];
        let starts = |p: &str| head.starts_with(p.as_bytes());
        let first_token = head
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map(|i| &head[i..]);
        Ok(if head.starts_with(b"PAR1") {
            Format::SeriesParquet
        } else if starts("HashOwner,HashApp,HashFunction,Trigger") {
            Format::AzureInvocations
        } else if starts("HashOwner,HashApp,HashFunction,Average") {
            Format::AzureDurations
        } else if starts("Timestamp [ms];") {
            Format::Bitbrains
        } else if starts("System,machine type") {
            Format::Lanl
        } else if starts("t_s,step_s,rps") {
            Format::SeriesCsv
        } else if path.extension().is_some_and(|e| e == "toml") {
            Format::Synthetic
        } else if first_token.is_some_and(|t| t[0].is_ascii_digit()) {
            Format::Counts
        } else if n == 0 || first_token.is_none() {
            return Err(DataError::Parse {
                file: path.display().to_string(),
                line: 1,
                column: 1,
                message: "empty file".into(),
            });
        } else {
            return Err(DataError::invalid(
                path,
                format!(
                    "unknown format (the first bytes are {:?}); give one of: {}",
                    String::from_utf8_lossy(&head[..n.min(40)]),
                    Format::names()
                ),
            ));
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A loaded trace.
#[derive(Clone, Debug, PartialEq)]
pub enum Trace {
    /// Azure Functions invocation counts.
    Invocations(azure::Invocations),
    /// Azure Functions duration percentiles.
    Durations(azure::Durations),
    /// Per-second request counts.
    Counts(counts::Counts),
    /// Bitbrains VMs.
    Bitbrains(bitbrains::Bitbrains),
    /// LANL failure records.
    Failures(lanl::FailureLog),
    /// A normalised or generated series.
    Series(RateSeries),
}

/// Reads `path` (a file, or for Bitbrains a directory of `*.csv`) in `format`
/// (detected if `None`), without the cache.
pub fn load(path: &Path, format: Option<Format>) -> Result<(Format, Trace), DataError> {
    let format = match format {
        Some(f) => f,
        None => Format::detect(path)?,
    };
    if format == Format::Bitbrains && path.is_dir() {
        let files = bitbrains_files(path)?;
        let mut vms = Vec::with_capacity(files.len());
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| DataError::io(&f, e))?;
            vms.push(bitbrains::Vm::parse(&f, &bytes)?);
        }
        bitbrains::sort_vms(&mut vms);
        return Ok((format, Trace::Bitbrains(bitbrains::Bitbrains { vms })));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    Ok((format, parse(path, &bytes, format)?))
}

/// Parses the content `bytes` of `path` in `format`.
pub fn parse(path: &Path, bytes: &[u8], format: Format) -> Result<Trace, DataError> {
    Ok(match format {
        Format::AzureInvocations => Trace::Invocations(azure::Invocations::parse(path, bytes)?),
        Format::AzureDurations => Trace::Durations(azure::Durations::parse(path, bytes)?),
        Format::Counts => Trace::Counts(counts::Counts::parse(path, bytes)?),
        Format::Bitbrains => Trace::Bitbrains(bitbrains::Bitbrains {
            vms: vec![bitbrains::Vm::parse(path, bytes)?],
        }),
        Format::Lanl => Trace::Failures(lanl::FailureLog::parse(path, bytes)?),
        Format::SeriesCsv => Trace::Series(parse_series_csv(path, bytes)?),
        Format::SeriesParquet => {
            let df = frame::read_parquet(bytes).map_err(|e| DataError::frame(path, e))?;
            Trace::Series(frame::series_from_frame(&df).map_err(|e| DataError::frame(path, e))?)
        }
        Format::Synthetic => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| DataError::invalid(path, "a synthetic spec must be UTF-8 TOML"))?;
            let spec: synth::Synthetic = toml::from_str(text).map_err(|e| {
                let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
                DataError::Parse {
                    file: path.display().to_string(),
                    line,
                    column,
                    message: e.message().to_string(),
                }
            })?;
            spec.validate()
                .map_err(|(field, message)| DataError::option(path, field, message))?;
            Trace::Series(spec.generate())
        }
    })
}

fn line_col(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, column)
}

/// The `*.csv` files of a Bitbrains directory.
fn bitbrains_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, DataError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::invalid(dir, "a directory with no *.csv files"));
    }
    Ok(files)
}

fn parse_series_csv(path: &Path, bytes: &[u8]) -> Result<RateSeries, DataError> {
    let mut t = csvread::Table::new(path, bytes, b',', "a hale series (t_s,step_s,rps)")?;
    t.expect_header(&["t_s", "step_s", "rps"], "a hale series")?;
    let mut series: Option<RateSeries> = None;
    while let Some(row) = t.next_row()? {
        let (ts, step, rps) = (row.f64(0)?, row.f64(1)?, row.non_negative(2)?);
        match &mut series {
            None => {
                if step <= 0.0 {
                    return Err(row.bad(1, format!("must be positive, found {step}")));
                }
                series = Some(RateSeries {
                    start_s: ts,
                    step_s: step,
                    rps: vec![rps],
                });
            }
            Some(s) => {
                if step != s.step_s {
                    return Err(row.bad(
                        1,
                        format!("{step} differs from the first row's {}", s.step_s),
                    ));
                }
                let want = s.start_s + s.rps.len() as f64 * s.step_s;
                if (ts - want).abs() > 1e-6 * s.step_s.max(want.abs()) {
                    return Err(row.bad(
                        0,
                        format!("{ts}: expected {want} (rows are one step apart)"),
                    ));
                }
                s.rps.push(rps);
            }
        }
    }
    series.ok_or_else(|| DataError::invalid(path, "a header and no rows"))
}

/// Writes a series to `path` as CSV or parquet (by the extension: `.parquet`, else
/// CSV), through a temporary file renamed into place: a failed write leaves nothing.
pub fn write_series(path: &Path, s: &RateSeries) -> Result<(), DataError> {
    let parquet = path.extension().is_some_and(|e| e == "parquet");
    let bytes = if parquet {
        let mut df = frame::series_frame(s).map_err(|e| DataError::frame(path, e))?;
        let mut buf = Vec::new();
        polars::prelude::ParquetWriter::new(&mut buf)
            .finish(&mut df)
            .map_err(|e| DataError::frame(path, e))?;
        buf
    } else {
        use std::fmt::Write;
        let mut out = String::from("t_s,step_s,rps\n");
        for (i, v) in s.rps.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},{},{}",
                s.start_s + i as f64 * s.step_s,
                s.step_s,
                v
            );
        }
        out.into_bytes()
    };
    cache::write_atomic(path, &bytes)
}

impl Trace {
    /// The workload series at the trace's own step (Azure: per minute, counts: per
    /// second, Bitbrains: per 300 s), aggregated over the functions or VMs picked by
    /// `select` and `trigger`, with Bitbrains' `column`. `None` for traces that are not
    /// workloads (durations, failure records).
    pub fn workload(
        &self,
        path: &Path,
        select: &[String],
        trigger: Option<&str>,
        column: Option<&str>,
    ) -> Result<Option<RateSeries>, DataError> {
        let no = |field: &str, what: &str| {
            Err(DataError::option(
                path,
                field,
                format!("does not apply to {what}"),
            ))
        };
        match self {
            Trace::Invocations(t) => {
                if column.is_some() {
                    return no("column", "Azure invocations (only to Bitbrains)");
                }
                let picked = t.pick(path, select, trigger)?;
                Ok(Some(t.series(&picked)))
            }
            Trace::Bitbrains(b) => {
                if trigger.is_some() {
                    return no("trigger", "Bitbrains (only to Azure invocations)");
                }
                let name = column.unwrap_or("cpu_usage_mhz");
                let c = bitbrains::column_index(name).ok_or_else(|| {
                    DataError::option(
                        path,
                        "column",
                        format!(
                            "unknown column {name:?}; Bitbrains has {}",
                            bitbrains::COLUMNS.map(|c| c.1).join(", ")
                        ),
                    )
                })?;
                let picked = b.pick(path, select)?;
                Ok(Some(b.series(&picked, c)))
            }
            Trace::Counts(_) | Trace::Series(_)
                if !select.is_empty() || trigger.is_some() || column.is_some() =>
            {
                let field = if !select.is_empty() {
                    "select"
                } else if trigger.is_some() {
                    "trigger"
                } else {
                    "column"
                };
                no(field, "a single series")
            }
            Trace::Counts(c) => Ok(Some(c.series())),
            Trace::Series(s) => Ok(Some(s.clone())),
            Trace::Durations(_) | Trace::Failures(_) => Ok(None),
        }
    }
}
