//! # hale-adapter: runs a trained policy against real infrastructure
//!
//! A policy bundle (from `hale export`) or a baseline decides; guardrails
//! ([`guard`]) limit what any decision may do; a [`target::Target`] carries it out;
//! every step is written to an append-only audit log ([`audit`]). Built for
//! inference only: no autodiff, no polars, no training code.
//!
//! In auto mode it acts and then notifies; in manual mode it proposes, explains
//! ([`explain`]) and waits for a person ([`approval`], on the terminal or the HTTP
//! endpoint of [`server`], which also serves [`metrics`]). Targets: Kubernetes
//! ([`kubernetes`]), Docker Swarm ([`docker`]) and a dry run ([`target::DryRun`]).
//! It drives Scaling-v0 and Healing-v0 policies ([`decide`]), flat or on the live
//! resource graph ([`live`]); each step's outcome is a [`report::Outcome`]. Several
//! agents can share one adapter ([`team`], arbitrated by [`coordinate`]); operators
//! ask in plain words ([`ask`], answered by [`operator`]) and watch and answer the
//! agents in a web console on the same endpoint ([`console`]).
#![warn(missing_docs)]

pub mod action;
pub mod actuate;
pub mod approval;
pub mod ask;
pub mod audit;
pub mod config;
pub mod console;
pub mod coordinate;
pub mod decide;
pub mod docker;
pub mod error;
pub mod explain;
pub mod field;
pub mod guard;
pub mod kubernetes;
pub mod live;
pub mod metrics;
pub mod observe;
pub mod operator;
pub mod policy;
pub mod report;
pub mod run;
pub mod server;
pub mod target;
pub mod team;
