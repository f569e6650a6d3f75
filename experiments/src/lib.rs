//! # hale-experiments: the `hale` command-line tool
//!
//! The binary (`hale`) runs scenarios, trains, evaluates and exports policies; this
//! library holds what other tools read too: the experiment config ([`config`]), the
//! sweep plan ([`sweep`]) and the MLflow tracking client ([`mlflow`]).
#![warn(missing_docs)]

pub mod config;
pub mod mlflow;
pub mod sweep;
