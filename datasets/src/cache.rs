//! A parquet cache of parsed traces, keyed by the SHA-256 of the file's bytes (of each
//! file's name and bytes, for a Bitbrains directory), the format and a layout version.
//! An edited trace gets a new key; a cache file that fails to read is parsed again and
//! replaced. Files are written to a temporary name and renamed, so a crash mid-write
//! leaves no half-written entry.

use crate::{DataError, Format, Trace};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bumped when a frame layout changes, so old entries are not misread.
const LAYOUT: u32 = 1;

/// Where parsed traces are kept (or nowhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    dir: Option<PathBuf>,
}

/// What a cached load did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// The cache is off, or this format is not cached.
    Off,
    /// Read from the cache.
    Hit,
    /// Parsed and written to the cache.
    Stored,
    /// Parsed; the cache entry could not be written (the load still succeeded).
    Unwritable,
}

impl Cache {
    /// A cache in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            dir: Some(dir.into()),
        }
    }

    /// No cache.
    pub fn off() -> Cache {
        Cache { dir: None }
    }

    /// `$HALE_CACHE_DIR`, else `$XDG_CACHE_HOME/hale/traces`, else
    /// `~/.cache/hale/traces`; off if none of them is set.
    pub fn default_location() -> Cache {
        let dir = std::env::var_os("HALE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("hale/traces"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/hale/traces"))
            });
        Cache { dir }
    }

    /// The cache directory, if on.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Loads `path` as [`crate::load`] does, through the cache.
    pub fn load(
        &self,
        path: &Path,
        format: Option<Format>,
    ) -> Result<(Format, Trace, CacheUse), DataError> {
        let format = match format {
            Some(f) => f,
            None => Format::detect(path)?,
        };
        let Some(dir) = self
            .dir
            .as_deref()
            .filter(|_| !matches!(format, Format::SeriesParquet | Format::Synthetic))
        else {
            let (format, trace) = crate::load(path, Some(format))?;
            return Ok((format, trace, CacheUse::Off));
        };
        let key = key(path, format)?;
        let entry = dir.join(format!("{}-{key}.parquet", format.name()));
        if let Some(trace) = read_entry(&entry, format) {
            return Ok((format, trace, CacheUse::Hit));
        }
        let (format, trace) = crate::load(path, Some(format))?;
        let stored = trace
            .to_frame()
            .map_err(|e| DataError::frame(path, e))
            .and_then(|mut df| {
                std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
                let mut buf = Vec::new();
                polars::prelude::ParquetWriter::new(&mut buf)
                    .finish(&mut df)
                    .map_err(|e| DataError::frame(&entry, e))?;
                write_atomic(&entry, &buf)
            });
        let used = if stored.is_ok() {
            CacheUse::Stored
        } else {
            CacheUse::Unwritable
        };
        Ok((format, trace, used))
    }
}

fn read_entry(entry: &Path, format: Format) -> Option<Trace> {
    // A corrupt entry (even one that makes the parquet reader panic) is a miss.
    let bytes = std::fs::read(entry).ok()?;
    let df = crate::frame::read_parquet(&bytes).ok()?;
    Trace::from_frame(format, &df).ok()
}

/// The cache key of `path` in `format`: hex SHA-256 of the bytes (and names, for a
/// directory), the format name and the layout version.
fn key(path: &Path, format: Format) -> Result<String, DataError> {
    let mut h = Sha256::new();
    h.update(format.name().as_bytes());
    h.update(LAYOUT.to_le_bytes());
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| DataError::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| DataError::io(&f, e))?;
            h.update(
                f.file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or_default(),
            );
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    } else {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        h.update(&bytes);
    }
    Ok(h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Writes `bytes` to `path` through a temporary file and a rename
/// ([`hale_sim::fs::write_atomic`]), naming the file in the error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    hale_sim::fs::write_atomic(path, bytes).map_err(|e| DataError::io(path, e))
}
