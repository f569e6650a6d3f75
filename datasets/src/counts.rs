//! Per-second request counts as one line of whitespace-separated integers: the
//! NASA-HTTP format of `reconfigurable-ml-pipeline/web-service-datasets`.
//!
//! Value *i* is the number of requests in second *i*; there is no header and no
//! timestamp (for the NASA July 1995 trace, index 0 is 1995-07-01 00:00:01 EDT). Every
//! value is followed by a space in the original, so a file that ends inside a number is
//! taken as truncated. Newlines count as separators too (one value per line also loads).

use crate::{DataError, RateSeries};
use std::path::Path;

/// Request counts per fixed step (one second in the NASA trace).
#[derive(Clone, Debug, PartialEq)]
pub struct Counts {
    /// Length of one step in seconds.
    pub step_s: f64,
    /// Requests in each step.
    pub counts: Vec<u32>,
}

impl Counts {
    /// Parses the content `bytes` of `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Counts, DataError> {
        let mut counts = Vec::with_capacity(bytes.len() / 2);
        let (mut line, mut line_start) = (1u64, 0usize);
        let mut i = 0usize;
        let n = bytes.len();
        while i < n {
            let b = bytes[i];
            if b.is_ascii_digit() {
                let start = i;
                let mut v: u64 = 0;
                while i < n && bytes[i].is_ascii_digit() {
                    v = v * 10 + u64::from(bytes[i] - b'0');
                    if v > u64::from(u32::MAX) {
                        return Err(parse_error(
                            path,
                            line,
                            start - line_start,
                            format!("value {} is too large for a count", counts.len() + 1),
                        ));
                    }
                    i += 1;
                }
                if i == n {
                    return Err(parse_error(
                        path,
                        line,
                        start - line_start,
                        format!(
                            "the file ends inside value {} (truncated? every value is followed by a space)",
                            counts.len() + 1
                        ),
                    ));
                }
                if !bytes[i].is_ascii_whitespace() {
                    return Err(bad_byte(path, bytes, line, line_start, i, counts.len()));
                }
                counts.push(v as u32);
            } else if b == b'\n' {
                line += 1;
                i += 1;
                line_start = i;
            } else if b.is_ascii_whitespace() {
                i += 1;
            } else {
                return Err(bad_byte(path, bytes, line, line_start, i, counts.len()));
            }
        }
        if counts.is_empty() {
            return Err(parse_error(
                path,
                1,
                0,
                "empty file (expected whitespace-separated request counts)".into(),
            ));
        }
        Ok(Counts {
            step_s: 1.0,
            counts,
        })
    }

    /// Requests per second in each step.
    pub fn series(&self) -> RateSeries {
        RateSeries::new(
            self.step_s,
            self.counts
                .iter()
                .map(|&c| f64::from(c) / self.step_s)
                .collect(),
        )
    }
}

fn parse_error(path: &Path, line: u64, col0: usize, message: String) -> DataError {
    DataError::Parse {
        file: path.display().to_string(),
        line,
        column: col0 as u64 + 1,
        message,
    }
}

fn bad_byte(
    path: &Path,
    bytes: &[u8],
    line: u64,
    line_start: usize,
    at: usize,
    index: usize,
) -> DataError {
    let end = (at + 12).min(bytes.len());
    let start = bytes[..at]
        .iter()
        .rposition(|b| b.is_ascii_whitespace())
        .map_or(0, |p| p + 1)
        .max(line_start);
    let token = String::from_utf8_lossy(&bytes[start..end]);
    let token = token.split_whitespace().next().unwrap_or("");
    let hint = if matches!(bytes[at], b',' | b';' | b'\t') {
        " (wrong separator? values are separated by spaces)"
    } else {
        ""
    };
    parse_error(
        path,
        line,
        at - line_start,
        format!(
            "value {} is not a non-negative integer: {token:?}{hint}",
            index + 1
        ),
    )
}
