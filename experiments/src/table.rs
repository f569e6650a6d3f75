//! The CSV files hale writes, read back (for `hale report`): a header and rows of
//! fields, a field with a comma or a quote in double quotes (as trials.csv writes
//! them); no field spans lines.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// A CSV file: its header and its rows, every row as wide as the header.
pub struct Csv {
    pub path: PathBuf,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// Reads `path`; a row of another width than the header is refused with its line.
    pub fn read(path: &Path) -> Result<Csv> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(first) = lines.next() else {
            bail!("{} is empty: it has no header", path.display())
        };
        let header = fields(first);
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            let row = fields(line);
            if row.len() != header.len() {
                bail!(
                    "{} line {}: {} fields where the header has {} (a truncated or corrupt file?)",
                    path.display(),
                    i + 2,
                    row.len(),
                    header.len()
                );
            }
            rows.push(row);
        }
        Ok(Csv {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{} has no column {name:?} (columns: {})",
                self.path.display(),
                self.header.join(", ")
            )
        })
    }

    /// Whether the file has a column.
    pub fn has(&self, name: &str) -> bool {
        self.header.iter().any(|h| h == name)
    }

    /// A column's fields.
    pub fn text(&self, name: &str) -> Result<Vec<String>> {
        let i = self.index(name)?;
        Ok(self.rows.iter().map(|r| r[i].clone()).collect())
    }

    /// A column as numbers: an empty field is NaN (no value), any other field that is
    /// not a number is refused with its line.
    pub fn numbers(&self, name: &str) -> Result<Vec<f64>> {
        let i = self.index(name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(line, r)| {
                let f = &r[i];
                if f.is_empty() {
                    return Ok(f64::NAN);
                }
                f.parse::<f64>().with_context(|| {
                    format!(
                        "{} line {}, column {name}: {f:?} is not a number",
                        self.path.display(),
                        line + 2
                    )
                })
            })
            .collect()
    }
}

/// The fields of one line: commas split, except inside double quotes, where `""`
/// is a quote.
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = out.last_mut().expect("never empty");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => field.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_row_and_a_word_for_a_number_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(&p, "a,b\n1,\n2,x\n").unwrap();
        let csv = Csv::read(&p).unwrap();
        assert!(
            csv.numbers("b")
                .unwrap_err()
                .to_string()
                .contains("line 3, column b: \"x\"")
        );
        let a = csv.numbers("a").unwrap();
        assert_eq!(a, vec![1.0, 2.0]);
        assert!(
            csv.text("c")
                .unwrap_err()
                .to_string()
                .contains("no column \"c\"")
        );
        std::fs::write(&p, "a,b\n\"x, \"\"y\"\"\",2\n").unwrap();
        assert_eq!(Csv::read(&p).unwrap().text("a").unwrap(), vec!["x, \"y\""]);
        std::fs::write(&p, "a,b\n1,2\n3\n").unwrap();
        let e = Csv::read(&p).err().unwrap().to_string();
        assert!(e.contains("line 3: 1 fields where the header has 2"), "{e}");
    }
}
