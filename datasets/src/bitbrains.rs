//! Bitbrains GWA-T-12 (Grid Workloads Archive, TU Delft): one CSV per VM.
//!
//! The separator is `;` followed by a TAB, in the header too. Despite the header's
//! `Timestamp [ms]`, timestamps are Unix **seconds**. Samples come about every 300 s,
//! with occasional gaps. A directory of such files loads as one trace whose VMs are
//! named by their file stems (`1.csv` → VM `1`).
//!
//! As a workload, a chosen column (CPU usage in MHz by default) stands in for the
//! request rate: it is put on a regular grid (the mean of the samples in each step; a
//! step with no sample inside a VM's span holds the VM's last value; outside its span a
//! VM contributes 0), summed over the selected VMs, and meant to be rescaled
//! (`peak_rps` or `mean_rps`) to requests per second.

use crate::csvread::Table;
use crate::{DataError, RateSeries};
use std::path::Path;

/// (header as written, frame name) of the columns after the timestamp.
pub const COLUMNS: [(&str, &str); 10] = [
    ("CPU cores", "cpu_cores"),
    ("CPU capacity provisioned [MHZ]", "cpu_capacity_mhz"),
    ("CPU usage [MHZ]", "cpu_usage_mhz"),
    ("CPU usage [%]", "cpu_usage_pct"),
    ("Memory capacity provisioned [KB]", "memory_capacity_kb"),
    ("Memory usage [KB]", "memory_usage_kb"),
    ("Disk read throughput [KB/s]", "disk_read_kbps"),
    ("Disk write throughput [KB/s]", "disk_write_kbps"),
    ("Network received throughput [KB/s]", "network_rx_kbps"),
    ("Network transmitted throughput [KB/s]", "network_tx_kbps"),
];

/// The grid step of the trace, in seconds.
pub const STEP_S: f64 = 300.0;

/// One VM's samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Vm {
    /// The VM id (the file stem).
    pub id: String,
    /// Unix seconds of each sample, strictly increasing.
    pub timestamp_s: Vec<i64>,
    /// The columns of [`COLUMNS`], column-major: `values[c][sample]`.
    pub values: Vec<Vec<f64>>,
}

/// A set of VMs (one file, or a directory of files).
#[derive(Clone, Debug, PartialEq)]
pub struct Bitbrains {
    /// The VMs, in id order (numerically where the ids are numbers).
    pub vms: Vec<Vm>,
}

impl Vm {
    /// Parses the content `bytes` of `path`; the VM id is the file stem.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vm, DataError> {
        let id = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let mut t = Table::new(path, bytes, b';', "Bitbrains GWA-T-12 per-VM samples")?;
        let mut names = vec!["Timestamp [ms]"];
        names.extend(COLUMNS.iter().map(|c| c.0));
        t.expect_header(&names, "Bitbrains GWA-T-12 (separator `;` + TAB)")?;
        let mut timestamp_s = Vec::new();
        let mut values = vec![Vec::new(); COLUMNS.len()];
        while let Some(row) = t.next_row()? {
            let ts = row.u64(0)?;
            let ts = i64::try_from(ts).map_err(|_| row.bad(0, "timestamp too large"))?;
            if let Some(&prev) = timestamp_s.last()
                && ts <= prev
            {
                return Err(row.bad(0, format!("timestamps must increase: {ts} follows {prev}")));
            }
            timestamp_s.push(ts);
            for (c, col) in values.iter_mut().enumerate() {
                col.push(row.non_negative(1 + c)?);
            }
        }
        if timestamp_s.is_empty() {
            return Err(DataError::invalid(path, "a header and no samples"));
        }
        Ok(Vm {
            id,
            timestamp_s,
            values,
        })
    }

    /// A column by its frame name.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        column_index(name).map(|i| &self.values[i][..])
    }
}

/// Index in [`COLUMNS`] of a frame name.
pub fn column_index(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| c.1 == name)
}

impl Bitbrains {
    /// Total samples over all VMs.
    pub fn rows(&self) -> usize {
        self.vms.iter().map(|v| v.timestamp_s.len()).sum()
    }

    /// Indices of the VMs picked by `select` (ids; empty: all).
    pub fn pick(&self, path: &Path, select: &[String]) -> Result<Vec<usize>, DataError> {
        if select.is_empty() {
            return Ok((0..self.vms.len()).collect());
        }
        select
            .iter()
            .enumerate()
            .map(|(k, s)| {
                self.vms.iter().position(|v| &v.id == s).ok_or_else(|| {
                    DataError::option(
                        path,
                        format!("select[{k}]"),
                        format!(
                            "no VM {s:?} (there are {}: {}…)",
                            self.vms.len(),
                            self.vms
                                .iter()
                                .take(5)
                                .map(|v| v.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            })
            .collect()
    }

    /// The sum over the VMs `picked` of column `column` on a regular 300 s grid from the
    /// earliest sample (see the module doc for gaps and spans).
    pub fn series(&self, picked: &[usize], column: usize) -> RateSeries {
        let vms: Vec<&Vm> = picked.iter().map(|&i| &self.vms[i]).collect();
        let Some(t0) = vms.iter().map(|v| v.timestamp_s[0]).min() else {
            return RateSeries::new(STEP_S, Vec::new());
        };
        let t_end = vms
            .iter()
            .map(|v| *v.timestamp_s.last().expect("non-empty"))
            .max()
            .expect("non-empty");
        let step = STEP_S as i64;
        let n = ((t_end - t0) / step + 1) as usize;
        let mut rps = vec![0.0; n];
        for vm in vms {
            let mut sum = vec![0.0; n];
            let mut count = vec![0u32; n];
            for (&t, &v) in vm.timestamp_s.iter().zip(&vm.values[column]) {
                let i = ((t - t0) / step) as usize;
                sum[i] += v;
                count[i] += 1;
            }
            let first = ((vm.timestamp_s[0] - t0) / step) as usize;
            let last = ((*vm.timestamp_s.last().expect("non-empty") - t0) / step) as usize;
            let mut held = 0.0;
            for i in first..=last {
                if count[i] > 0 {
                    held = sum[i] / f64::from(count[i]);
                }
                rps[i] += held;
            }
        }
        RateSeries {
            start_s: t0 as f64,
            step_s: STEP_S,
            rps,
        }
    }
}

/// Sorts VMs by id, numerically where both ids are numbers.
pub(crate) fn sort_vms(vms: &mut [Vm]) {
    vms.sort_by(|a, b| match (a.id.parse::<u64>(), b.id.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.id.cmp(&b.id),
    });
}
