//! # hale-adapter: runs a trained policy against real infrastructure
//!
//! A policy bundle (from `hale export`) or a baseline decides; guardrails
//! ([`guard`]) limit what any decision may do; a [`target::Target`] carries it out;
//! every step is written to an append-only audit log ([`audit`]). Built for
//! inference only: no autodiff, no polars, no training code.
//!
//! This is the first slice of the adapter: config, policy loading and checks,
//! guardrails, the audit log, the Prometheus observation source for Scaling-v0 and
//! the dry-run target. The Kubernetes and Docker targets, the decision loop with its
//! auto and manual modes, and `/metrics` are still to come.
#![warn(missing_docs)]

pub mod action;
pub mod audit;
pub mod config;
pub mod guard;
pub mod observe;
pub mod policy;
pub mod run;
pub mod target;
