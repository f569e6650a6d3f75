//! Errors: each names the file and, where it can, the line, column and field.

use std::path::Path;

/// Why a trace could not be loaded, transformed, cached or fitted.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A cell, line or value is not what the format says it must be.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// Line, from 1.
        line: u64,
        /// Column, from 1: the field number in CSV files, the character in other text.
        column: u64,
        /// What was wrong, naming the field where there is one.
        message: String,
    },
    /// The file as a whole is unusable (empty, no data rows, unknown format).
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What was wrong.
        message: String,
    },
    /// A transform or option is out of range or does not apply to this trace.
    #[error("{file}: {field}: {message}")]
    Option {
        /// The trace it was applied to.
        file: String,
        /// The option, as written in a scenario (`split`, `peak_rps`, …).
        field: String,
        /// What was wrong.
        message: String,
    },
    /// polars refused a frame (cache read or write, conversion).
    #[error("{file}: {message}")]
    Frame {
        /// The file.
        file: String,
        /// What polars said.
        message: String,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            file: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> DataError {
        DataError::Invalid {
            file: path.display().to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn option(
        path: &Path,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> DataError {
        DataError::Option {
            file: path.display().to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn frame(path: &Path, e: impl std::fmt::Display) -> DataError {
        DataError::Frame {
            file: path.display().to_string(),
            message: e.to_string(),
        }
    }
}
