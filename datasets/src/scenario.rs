//! Scenarios that name trace files: reading the traces and filling in their series.

use crate::{Cache, DataError, Format, RateSeries, Split};
use hale_sim::{RateSpec, ResolvedSeries, Scenario, ScenarioError, ScenarioSpec, TraceSpec};
use std::path::{Path, PathBuf};

/// Why a scenario with traces could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The scenario itself (parse or validation).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A trace it names.
    #[error("{scenario}: {field}: {source}")]
    Trace {
        /// The scenario file.
        scenario: String,
        /// Where the trace is named (`workload[0].rate`).
        field: String,
        /// What went wrong with the trace.
        source: DataError,
    },
}

/// A builtin scenario name, or a scenario file whose trace workloads are read (through
/// the default [`Cache`]) relative to the file's directory.
pub fn load_scenario(name_or_path: &str) -> Result<Scenario, LoadError> {
    if hale_sim::BUILTINS.contains(&name_or_path) {
        return Ok(Scenario::builtin(name_or_path)?);
    }
    let path = Path::new(name_or_path);
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        file: origin.clone(),
        source,
    })?;
    let mut spec = ScenarioSpec::from_toml_str(&text, &origin)?;
    let base = path.parent().unwrap_or(Path::new("."));
    resolve_scenario(&mut spec, &origin, base, &Cache::default_location())?;
    Ok(Scenario::from_spec(spec, &origin)?)
}

/// Fills in the series of every `trace` rate of `spec` (paths relative to `base`).
pub fn resolve_scenario(
    spec: &mut ScenarioSpec,
    origin: &str,
    base: &Path,
    cache: &Cache,
) -> Result<(), LoadError> {
    for (i, w) in spec.workload.iter_mut().enumerate() {
        if let RateSpec::Trace(t) = &mut w.rate {
            let series = resolve_trace(&*t, base, cache).map_err(|source| LoadError::Trace {
                scenario: origin.to_string(),
                field: format!("workload[{i}].rate"),
                source,
            })?;
            t.resolved = Some(ResolvedSeries {
                step_s: series.step_s,
                rps: series.rps.into(),
            });
        }
    }
    Ok(())
}

/// Reads the trace a [`TraceSpec`] names and applies its transforms, in order:
/// select/aggregate → resample → split → window → rescale (factor from the train part).
pub fn resolve_trace(t: &TraceSpec, base: &Path, cache: &Cache) -> Result<RateSeries, DataError> {
    let path: PathBuf = if Path::new(&t.path).is_absolute() {
        PathBuf::from(&t.path)
    } else {
        base.join(&t.path)
    };
    let format = match &t.format {
        Some(name) => Some(Format::parse(name).ok_or_else(|| {
            DataError::option(
                &path,
                "format",
                format!("unknown format {name:?}; one of: {}", Format::names()),
            )
        })?),
        None => None,
    };
    let (format, trace, _) = cache.load(&path, format)?;
    let Some(series) =
        trace.workload(&path, &t.select, t.trigger.as_deref(), t.column.as_deref())?
    else {
        return Err(DataError::option(
            &path,
            "format",
            format!("{format} is not a workload (use it with `hale data fit` or `inspect`)"),
        ));
    };
    transform(&path, series, t)
}

/// The transforms of a [`TraceSpec`] on a series already read.
pub fn transform(
    path: &Path,
    mut series: RateSeries,
    t: &TraceSpec,
) -> Result<RateSeries, DataError> {
    let opt = |field: &str, msg: String| DataError::option(path, field, msg);
    if let Some(step) = t.step_s {
        if !(step.is_finite() && step > 0.0) {
            return Err(opt("step_s", format!("must be positive, got {step}")));
        }
        series = series.resample(step);
    }
    let fr = t.split_fractions;
    if fr.iter().any(|f| !(f.is_finite() && *f >= 0.0))
        || (fr.iter().sum::<f64>() - 1.0).abs() > 1e-9
    {
        return Err(opt(
            "split_fractions",
            format!("must be three non-negative fractions summing to 1, got {fr:?}"),
        ));
    }
    let reference = match &t.split {
        Some(name) => {
            let part = Split::parse(name).ok_or_else(|| {
                opt(
                    "split",
                    format!("{name:?} is not train, validation or test"),
                )
            })?;
            let train = series.split(fr, Split::Train);
            series = series.split(fr, part);
            if series.rps.is_empty() {
                return Err(opt(
                    "split",
                    format!(
                        "the {name} part is empty ({} steps in all)",
                        train.rps.len()
                    ),
                ));
            }
            train
        }
        None => series.clone(),
    };
    if !(t.start_s.is_finite() && t.start_s >= 0.0) {
        return Err(opt("start_s", format!("must be ≥ 0, got {}", t.start_s)));
    }
    if let Some(d) = t.duration_s
        && !(d.is_finite() && d > 0.0)
    {
        return Err(opt("duration_s", format!("must be positive, got {d}")));
    }
    let span = series.span_s();
    // A window that moves from run to run is cut by the simulator (each run's from
    // its seed): the whole part goes through, after start_s.
    let moving = t.offset != hale_sim::TraceOffset::Start;
    series = series.window(t.start_s, if moving { None } else { t.duration_s });
    if moving
        && let Some(d) = t.duration_s
        && d > series.span_s() + 1e-9
    {
        return Err(opt(
            "duration_s",
            format!(
                "a {d} s window is longer than the series it moves in ({} s)",
                series.span_s()
            ),
        ));
    }
    if series.rps.is_empty() {
        return Err(opt(
            "start_s",
            format!("{} s is past the end of the series ({span} s)", t.start_s),
        ));
    }
    let factor = match (t.peak_rps, t.mean_rps) {
        (Some(_), Some(_)) => {
            return Err(opt(
                "peak_rps",
                "give peak_rps or mean_rps, not both".into(),
            ));
        }
        (Some(p), None) => target_factor("peak_rps", p, reference.peak(), path)?,
        (None, Some(m)) => target_factor("mean_rps", m, reference.mean(), path)?,
        (None, None) => 1.0,
    };
    Ok(if factor == 1.0 {
        series
    } else {
        series.scaled(factor)
    })
}

fn target_factor(field: &str, target: f64, of: f64, path: &Path) -> Result<f64, DataError> {
    if !(target.is_finite() && target >= 0.0) {
        return Err(DataError::option(
            path,
            field,
            format!("must be ≥ 0, got {target}"),
        ));
    }
    if of <= 0.0 {
        return Err(DataError::option(
            path,
            field,
            "the series (its train part, when split) is all zeros: nothing to rescale",
        ));
    }
    Ok(target / of)
}
