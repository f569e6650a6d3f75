//! # hale-experiments: the `hale` command-line tool
//!
//! The binary (`hale`) runs scenarios, trains, evaluates and exports policies; this
//! library holds what other tools read too: the experiment config ([`config`]) and
//! the sweep plan ([`sweep`]).
#![warn(missing_docs)]

pub mod config;
pub mod sweep;
