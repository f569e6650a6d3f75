//! A CSV reader that knows its file, header and position, so every cell error names the
//! file, line, column and field.

use crate::DataError;
use std::path::Path;

/// Records of a CSV file with a header, read from bytes already in memory.
pub(crate) struct Table<'a> {
    path: &'a Path,
    pub(crate) header: Vec<String>,
    reader: csv::Reader<&'a [u8]>,
    record: csv::ByteRecord,
}

/// One record, with what is needed to report a bad cell.
pub(crate) struct Row<'t> {
    path: &'t Path,
    header: &'t [String],
    record: &'t csv::ByteRecord,
    pub(crate) line: u64,
}

impl<'a> Table<'a> {
    /// Opens `bytes` (the content of `path`) with `delimiter`; surrounding spaces and tabs
    /// of every cell are trimmed. The header must have exactly `expect` (if given) fields.
    pub(crate) fn new(
        path: &'a Path,
        bytes: &'a [u8],
        delimiter: u8,
        what: &str,
    ) -> Result<Table<'a>, DataError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(DataError::Parse {
                file: path.display().to_string(),
                line: 1,
                column: 1,
                message: format!("empty file (expected {what})"),
            });
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .trim(csv::Trim::All)
            .flexible(true)
            .has_headers(true)
            .from_reader(bytes);
        let header = reader.byte_headers().map_err(|e| csv_error(path, &e))?;
        let header = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                std::str::from_utf8(h)
                    .map(str::to_string)
                    .map_err(|_| DataError::Parse {
                        file: path.display().to_string(),
                        line: 1,
                        column: i as u64 + 1,
                        message: "header is not UTF-8".into(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Table {
            path,
            header,
            reader,
            record: csv::ByteRecord::new(),
        })
    }

    /// Checks that the header starts with `names` (trimmed, case as written).
    pub(crate) fn expect_header(&self, names: &[&str], what: &str) -> Result<(), DataError> {
        for (i, want) in names.iter().enumerate() {
            let got = self.header.get(i).map(String::as_str);
            if got != Some(*want) {
                let hint = if self.header.len() == 1 {
                    " (one field only: wrong separator?)"
                } else {
                    ""
                };
                return Err(DataError::Parse {
                    file: self.path.display().to_string(),
                    line: 1,
                    column: i as u64 + 1,
                    message: format!(
                        "header field {} is {:?}, expected {want:?} for {what}{hint}",
                        i + 1,
                        got.unwrap_or("")
                    ),
                });
            }
        }
        Ok(())
    }

    /// The next record, or `None` at the end. Records must have as many fields as the
    /// header; blank lines are skipped.
    pub(crate) fn next_row(&mut self) -> Result<Option<Row<'_>>, DataError> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_error(self.path, &e))?;
            if !more {
                return Ok(None);
            }
            if self.record.len() == 1 && self.record[0].is_empty() {
                continue;
            }
            let line = self.record.position().map_or(0, |p| p.line());
            if self.record.len() != self.header.len() {
                let hint = if self.record.len() == 1 {
                    " (wrong separator?)"
                } else if self.record.len() < self.header.len() {
                    " (truncated?)"
                } else {
                    ""
                };
                return Err(DataError::Parse {
                    file: self.path.display().to_string(),
                    line,
                    column: self.record.len().min(self.header.len()) as u64 + 1,
                    message: format!(
                        "{} fields, the header has {}{hint}",
                        self.record.len(),
                        self.header.len()
                    ),
                });
            }
            return Ok(Some(Row {
                path: self.path,
                header: &self.header,
                record: &self.record,
                line,
            }));
        }
    }
}

fn csv_error(path: &Path, e: &csv::Error) -> DataError {
    let (line, message) = match e.kind() {
        csv::ErrorKind::Io(io) => (0, io.to_string()),
        csv::ErrorKind::Utf8 { pos, err } => (
            pos.as_ref().map_or(0, |p| p.line()),
            format!("field {} is not UTF-8", err.field() + 1),
        ),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => (
            pos.as_ref().map_or(0, |p| p.line()),
            format!("{len} fields, expected {expected_len}"),
        ),
        _ => (0, e.to_string()),
    };
    DataError::Parse {
        file: path.display().to_string(),
        line: line.max(1),
        column: 1,
        message,
    }
}

impl Row<'_> {
    fn error(&self, i: usize, message: String) -> DataError {
        DataError::Parse {
            file: self.path.display().to_string(),
            line: self.line,
            column: i as u64 + 1,
            message: format!("field {:?}: {message}", self.header[i]),
        }
    }

    /// Cell `i` as text.
    pub(crate) fn str(&self, i: usize) -> Result<&str, DataError> {
        std::str::from_utf8(&self.record[i]).map_err(|_| self.error(i, "not UTF-8".into()))
    }

    /// Cell `i` as a finite number.
    pub(crate) fn f64(&self, i: usize) -> Result<f64, DataError> {
        let s = self.str(i)?;
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(i, format!("expected a number, found {s:?}"))),
        }
    }

    /// Cell `i` as a non-negative number.
    pub(crate) fn non_negative(&self, i: usize) -> Result<f64, DataError> {
        let v = self.f64(i)?;
        if v < 0.0 {
            return Err(self.error(i, format!("must not be negative, found {v}")));
        }
        Ok(v)
    }

    /// Cell `i` as an unsigned integer.
    pub(crate) fn u64(&self, i: usize) -> Result<u64, DataError> {
        let s = self.str(i)?;
        s.parse::<u64>()
            .map_err(|_| self.error(i, format!("expected a non-negative integer, found {s:?}")))
    }

    /// Cell `i` as `m/d/YYYY H:MM`, in minutes since 1970-01-01 00:00 (the clock as
    /// written: no time zone is applied).
    pub(crate) fn us_datetime_min(&self, i: usize) -> Result<i64, DataError> {
        let s = self.str(i)?;
        parse_us_datetime(s)
            .ok_or_else(|| self.error(i, format!("expected m/d/YYYY H:MM, found {s:?}")))
    }

    /// A cell error for a value that parsed but breaks a rule of the format.
    pub(crate) fn bad(&self, i: usize, message: impl Into<String>) -> DataError {
        self.error(i, message.into())
    }
}

/// `m/d/YYYY H:MM` → minutes since 1970-01-01 00:00. Years outside 1..=9999 are
/// refused (the fuzzer found that a year such as 10^16 overflowed the minutes).
pub(crate) fn parse_us_datetime(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('/');
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let year: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=9999).contains(&year) {
        return None;
    }
    let (h, m) = time.split_once(':')?;
    let hour: i64 = h.parse().ok()?;
    let minute: i64 = m.parse().ok()?;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || !(0..24).contains(&hour) || !(0..60).contains(&minute) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 1440 + hour * 60 + minute)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Minutes since 1970 → `YYYY-MM-DD HH:MM`.
pub fn format_minutes(min: i64) -> String {
    let days = min.div_euclid(1440);
    let rem = min.rem_euclid(1440);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        // 1995-05-19 21:55, the first LANL record.
        let m = parse_us_datetime("5/19/1995 21:55").unwrap();
        assert_eq!(format_minutes(m), "1995-05-19 21:55");
        assert_eq!(parse_us_datetime("1/1/1970 0:00"), Some(0));
        assert_eq!(parse_us_datetime("1/1/10000000000000000 0:00"), None);
        assert_eq!(
            parse_us_datetime("2/29/2004 0:00")
                .map(format_minutes)
                .unwrap(),
            "2004-02-29 00:00"
        );
        assert_eq!(parse_us_datetime("2/29/2005 0:00"), None);
        assert_eq!(parse_us_datetime("13/1/2005 0:00"), None);
        assert_eq!(parse_us_datetime("1/1/2005 24:00"), None);
        assert_eq!(parse_us_datetime("1/1/2005"), None);
    }
}
