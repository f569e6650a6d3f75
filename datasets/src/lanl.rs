//! LANL failure records LA-UR-05-7318 (Schroeder & Gibson, DSN 2006): one row per node
//! outage on 23 HPC systems, 1996–2005.
//!
//! Read columns: `System`, `machine type`, `nodes`, `nodenum`, `Prob Started` and
//! `Prob Fixed` (`m/d/YYYY H:MM`, local time at LANL, kept as written: no time zone is
//! applied), `Down Time` (minutes), the six root-cause columns (`Facilities`,
//! `Hardware`, `Human Error`, `Network`, `Undetermined`, `Software`: at most one holds a
//! free-text subcategory; 453 records of the 1996–2005 file have none, and load as
//! [`Cause::Unrecorded`]) and `Same Event` (Yes/No). Columns are found by header name.

use crate::DataError;
use crate::csvread::Table;
use serde::Serialize;
use std::path::Path;

/// A root cause, as the six cause columns of the file name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Power, cooling, the building.
    Facilities,
    /// A failed part.
    Hardware,
    /// An operator's mistake.
    HumanError,
    /// The interconnect.
    Network,
    /// Not found.
    Undetermined,
    /// The operating system, middleware or applications.
    Software,
    /// No cause column is filled in (453 records of the 1996–2005 file).
    Unrecorded,
}

impl Cause {
    /// The six with a column, in file column order.
    pub const COLUMNS: [Cause; 6] = [
        Cause::Facilities,
        Cause::Hardware,
        Cause::HumanError,
        Cause::Network,
        Cause::Undetermined,
        Cause::Software,
    ];

    /// All seven.
    pub const ALL: [Cause; 7] = [
        Cause::Facilities,
        Cause::Hardware,
        Cause::HumanError,
        Cause::Network,
        Cause::Undetermined,
        Cause::Software,
        Cause::Unrecorded,
    ];

    /// The column header.
    pub fn header(self) -> &'static str {
        match self {
            Cause::Facilities => "Facilities",
            Cause::Hardware => "Hardware",
            Cause::HumanError => "Human Error",
            Cause::Network => "Network",
            Cause::Undetermined => "Undetermined",
            Cause::Software => "Software",
            Cause::Unrecorded => "",
        }
    }

    /// Kebab-case name (`human-error`).
    pub fn name(self) -> &'static str {
        match self {
            Cause::Facilities => "facilities",
            Cause::Hardware => "hardware",
            Cause::HumanError => "human-error",
            Cause::Network => "network",
            Cause::Undetermined => "undetermined",
            Cause::Software => "software",
            Cause::Unrecorded => "unrecorded",
        }
    }

    /// Parses a kebab-case name or a header.
    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL
            .into_iter()
            .find(|c| c.name() == s || (!s.is_empty() && c.header().eq_ignore_ascii_case(s)))
    }
}

/// One outage.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// System number.
    pub system: u32,
    /// `cluster`, `smp`, … as written.
    pub machine_type: String,
    /// Nodes in the system (absent in 126 records of system 17).
    pub nodes: Option<u32>,
    /// Node number within the system (absent with `nodes`).
    pub node: Option<u32>,
    /// When the problem started: minutes since 1970-01-01 00:00, local clock.
    pub started_min: i64,
    /// When it was fixed, same clock.
    pub fixed_min: i64,
    /// Down time in minutes, as recorded.
    pub downtime_min: f64,
    /// Root cause.
    pub cause: Cause,
    /// The free-text subcategory (`Memory Dimm`, `Other Software`, …).
    pub subcause: String,
    /// Whether the record is related to another event.
    pub same_event: bool,
}

/// The failure log.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureLog {
    /// Records in file order.
    pub failures: Vec<Failure>,
}

impl FailureLog {
    /// Parses the content `bytes` of `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<FailureLog, DataError> {
        let mut t = Table::new(path, bytes, b',', "LANL failure records")?;
        let col = |name: &str| -> Result<usize, DataError> {
            t.header.iter().position(|h| h == name).ok_or_else(|| {
                let hint = if t.header.len() == 1 {
                    " (one header field: wrong separator?)"
                } else {
                    ""
                };
                DataError::Parse {
                    file: path.display().to_string(),
                    line: 1,
                    column: 1,
                    message: format!("no column {name:?} in the header{hint}"),
                }
            })
        };
        let system = col("System")?;
        let machine = col("machine type")?;
        let nodes = col("nodes")?;
        let node = col("nodenum")?;
        let started = col("Prob Started")?;
        let fixed = col("Prob Fixed")?;
        let down = col("Down Time")?;
        let causes: Vec<usize> = Cause::COLUMNS
            .iter()
            .map(|c| col(c.header()))
            .collect::<Result<_, _>>()?;
        let same = col("Same Event")?;
        let mut failures = Vec::new();
        while let Some(row) = t.next_row()? {
            let u32_at = |i: usize| -> Result<u32, DataError> {
                u32::try_from(row.u64(i)?).map_err(|_| row.bad(i, "too large"))
            };
            let opt_u32_at = |i: usize| -> Result<Option<u32>, DataError> {
                if row.str(i)?.is_empty() {
                    Ok(None)
                } else {
                    u32_at(i).map(Some)
                }
            };
            let mut cause = None;
            for (k, &i) in causes.iter().enumerate() {
                let s = row.str(i)?;
                if !s.is_empty() {
                    if cause.is_some() {
                        return Err(row.bad(i, "a second root cause in one record"));
                    }
                    cause = Some((Cause::COLUMNS[k], s.to_string()));
                }
            }
            let (cause, subcause) = cause.unwrap_or((Cause::Unrecorded, String::new()));
            let started_min = row.us_datetime_min(started)?;
            let fixed_min = row.us_datetime_min(fixed)?;
            let same_event = match row.str(same)? {
                "Yes" => true,
                "No" => false,
                other => return Err(row.bad(same, format!("expected Yes or No, found {other:?}"))),
            };
            failures.push(Failure {
                system: u32_at(system)?,
                machine_type: row.str(machine)?.to_string(),
                nodes: opt_u32_at(nodes)?,
                node: opt_u32_at(node)?,
                started_min,
                fixed_min,
                downtime_min: row.non_negative(down)?,
                cause,
                subcause,
                same_event,
            });
        }
        if failures.is_empty() {
            return Err(DataError::invalid(path, "a header and no failure records"));
        }
        Ok(FailureLog { failures })
    }

    /// Distinct systems, ascending.
    pub fn systems(&self) -> Vec<u32> {
        let mut s: Vec<u32> = self.failures.iter().map(|f| f.system).collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// Records per cause.
    pub fn cause_counts(&self) -> Vec<(Cause, usize)> {
        Cause::ALL
            .iter()
            .map(|&c| (c, self.failures.iter().filter(|f| f.cause == c).count()))
            .collect()
    }
}
