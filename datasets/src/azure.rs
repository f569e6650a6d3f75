//! Azure Functions Trace 2019 (Shahrad et al., ATC 2020), in its original schemas.
//!
//! - `invocations_per_function_md.anon.dXX.csv`: `HashOwner,HashApp,HashFunction,Trigger`
//!   then one column per minute of the day, named by its minute index. The full files
//!   have columns `1…1440`; samples keep a slice (the In-Vitro 500-function sample keeps
//!   `480…959`, 08:00–15:59), so the first minute is read from the header, never assumed.
//!   Each cell is the number of invocations of that function in that minute.
//! - `function_durations_percentiles.anon.dXX.csv`: per function, the day's average,
//!   count, minimum, maximum and percentiles 0, 1, 25, 50, 75, 99, 100 of the execution
//!   time, in milliseconds.
//!
//! Minute *m* is taken to cover `[m·60, (m+1)·60)` seconds after midnight, so that the
//! sample's minute 480 is 08:00 as its README states.

use crate::csvread::Table;
use crate::{DataError, RateSeries};
use std::path::Path;

/// The four id columns of an invocation row.
pub const INVOCATION_IDS: [&str; 4] = ["HashOwner", "HashApp", "HashFunction", "Trigger"];

/// One function of the invocation trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// HMAC of the owner.
    pub owner: String,
    /// HMAC of the application.
    pub app: String,
    /// HMAC of the function.
    pub function: String,
    /// `http`, `timer`, `queue`, `event`, `storage`, `orchestration` or `others`.
    pub trigger: String,
}

/// Invocations per function per minute.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocations {
    /// The functions, in file order.
    pub functions: Vec<Function>,
    /// Minute-of-day index of the first count column.
    pub first_minute: u32,
    /// Number of minute columns.
    pub minutes: usize,
    /// Invocation counts, row-major: `counts[f * minutes + m]`.
    pub counts: Vec<u32>,
}

impl Invocations {
    /// Parses the content `bytes` of `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Invocations, DataError> {
        let mut t = Table::new(path, bytes, b',', "Azure Functions invocation counts")?;
        t.expect_header(&INVOCATION_IDS, "Azure Functions invocations")?;
        let minute_names: Vec<u32> = t.header[4..]
            .iter()
            .enumerate()
            .map(|(i, h)| {
                h.parse::<u32>().map_err(|_| DataError::Parse {
                    file: path.display().to_string(),
                    line: 1,
                    column: i as u64 + 5,
                    message: format!("header field {:?} is not a minute index", h),
                })
            })
            .collect::<Result<_, _>>()?;
        let Some(&first_minute) = minute_names.first() else {
            return Err(DataError::invalid(path, "no minute columns after Trigger"));
        };
        for (i, &m) in minute_names.iter().enumerate() {
            if m != first_minute + i as u32 {
                return Err(DataError::Parse {
                    file: path.display().to_string(),
                    line: 1,
                    column: i as u64 + 5,
                    message: format!(
                        "minute columns must be consecutive: expected {}, found {m}",
                        first_minute + i as u32
                    ),
                });
            }
        }
        let minutes = minute_names.len();
        let mut functions = Vec::new();
        let mut counts = Vec::new();
        while let Some(row) = t.next_row()? {
            functions.push(Function {
                owner: row.str(0)?.to_string(),
                app: row.str(1)?.to_string(),
                function: row.str(2)?.to_string(),
                trigger: row.str(3)?.to_string(),
            });
            for i in 4..4 + minutes {
                let v = row.u64(i)?;
                let v = u32::try_from(v).map_err(|_| row.bad(i, "count too large"))?;
                counts.push(v);
            }
        }
        if functions.is_empty() {
            return Err(DataError::invalid(path, "a header and no functions"));
        }
        Ok(Invocations {
            functions,
            first_minute,
            minutes,
            counts,
        })
    }

    /// The counts of function `f`.
    pub fn row(&self, f: usize) -> &[u32] {
        &self.counts[f * self.minutes..(f + 1) * self.minutes]
    }

    /// Total invocations.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Indices of the functions picked by `select` (hashes, or unique prefixes of at
    /// least 8 characters; empty: all) with trigger `trigger` (if given).
    pub fn pick(
        &self,
        path: &Path,
        select: &[String],
        trigger: Option<&str>,
    ) -> Result<Vec<usize>, DataError> {
        let mut out = Vec::new();
        if select.is_empty() {
            out.extend(0..self.functions.len());
        } else {
            for (k, s) in select.iter().enumerate() {
                if s.len() < 8 {
                    return Err(DataError::option(
                        path,
                        format!("select[{k}]"),
                        format!(
                            "{s:?} is too short: give a function hash or a prefix of ≥ 8 characters"
                        ),
                    ));
                }
                let hits: Vec<usize> = (0..self.functions.len())
                    .filter(|&f| self.functions[f].function.starts_with(s.as_str()))
                    .collect();
                match hits.len() {
                    0 => {
                        return Err(DataError::option(
                            path,
                            format!("select[{k}]"),
                            format!("no function hash starts with {s:?}"),
                        ));
                    }
                    1 => out.push(hits[0]),
                    n => {
                        return Err(DataError::option(
                            path,
                            format!("select[{k}]"),
                            format!("{s:?} matches {n} functions: give more characters"),
                        ));
                    }
                }
            }
        }
        if let Some(tr) = trigger {
            if !self.functions.iter().any(|f| f.trigger == tr) {
                let mut known: Vec<&str> =
                    self.functions.iter().map(|f| f.trigger.as_str()).collect();
                known.sort_unstable();
                known.dedup();
                return Err(DataError::option(
                    path,
                    "trigger",
                    format!(
                        "no function has trigger {tr:?} (there are: {})",
                        known.join(", ")
                    ),
                ));
            }
            out.retain(|&f| self.functions[f].trigger == tr);
            if out.is_empty() {
                return Err(DataError::option(
                    path,
                    "trigger",
                    format!("none of the selected functions has trigger {tr:?}"),
                ));
            }
        }
        Ok(out)
    }

    /// Invocations per second of the functions `picked`, summed, per minute.
    pub fn series(&self, picked: &[usize]) -> RateSeries {
        let mut rps = vec![0.0; self.minutes];
        for &f in picked {
            for (r, &c) in rps.iter_mut().zip(self.row(f)) {
                *r += f64::from(c);
            }
        }
        for r in &mut rps {
            *r /= 60.0;
        }
        RateSeries {
            start_s: f64::from(self.first_minute) * 60.0,
            step_s: 60.0,
            rps,
        }
    }
}

/// The duration columns after the three ids, and their names in our frames.
pub const DURATION_COLUMNS: [(&str, &str); 11] = [
    ("Average", "average_ms"),
    ("Count", "count"),
    ("Minimum", "minimum_ms"),
    ("Maximum", "maximum_ms"),
    ("percentile_Average_0", "p0_ms"),
    ("percentile_Average_1", "p1_ms"),
    ("percentile_Average_25", "p25_ms"),
    ("percentile_Average_50", "p50_ms"),
    ("percentile_Average_75", "p75_ms"),
    ("percentile_Average_99", "p99_ms"),
    ("percentile_Average_100", "p100_ms"),
];

/// Execution-time percentiles per function (milliseconds; `count` executions that day).
#[derive(Clone, Debug, PartialEq)]
pub struct Durations {
    /// (owner, app, function) hashes per row.
    pub ids: Vec<[String; 3]>,
    /// The eleven columns of [`DURATION_COLUMNS`], column-major: `values[c][row]`.
    pub values: Vec<Vec<f64>>,
}

impl Durations {
    /// Parses the content `bytes` of `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Durations, DataError> {
        let mut t = Table::new(path, bytes, b',', "Azure Functions duration percentiles")?;
        let mut names = vec!["HashOwner", "HashApp", "HashFunction"];
        names.extend(DURATION_COLUMNS.iter().map(|c| c.0));
        t.expect_header(&names, "Azure Functions durations")?;
        let mut ids = Vec::new();
        let mut values = vec![Vec::new(); DURATION_COLUMNS.len()];
        while let Some(row) = t.next_row()? {
            ids.push([
                row.str(0)?.to_string(),
                row.str(1)?.to_string(),
                row.str(2)?.to_string(),
            ]);
            for (c, col) in values.iter_mut().enumerate() {
                col.push(row.non_negative(3 + c)?);
            }
        }
        if ids.is_empty() {
            return Err(DataError::invalid(path, "a header and no functions"));
        }
        Ok(Durations { ids, values })
    }

    /// A column by its frame name (`average_ms`, `p99_ms`, …).
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        DURATION_COLUMNS
            .iter()
            .position(|c| c.1 == name)
            .map(|i| &self.values[i][..])
    }
}
