//! What can stop the adapter from starting or running ([`AdapterError`]), and why a
//! policy cannot be loaded ([`PolicyLoadError`]). A config value out of range is a
//! [`FieldError`] (in [`crate::field`]).

use crate::field::FieldError;
use crate::target::TargetError;
use std::path::PathBuf;

/// Why the policy a config names cannot drive its env.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    /// The bundle cannot be read or checked.
    #[error(transparent)]
    Bundle(#[from] hale_policies::bundle::BundleError),
    /// The bundle was trained on another env.
    #[error("bundle {dir} was trained on {trained}, the config's env is {env}")]
    OtherEnv {
        /// The bundle.
        dir: PathBuf,
        /// Its env.
        trained: String,
        /// The config's env.
        env: String,
    },
    /// The config's env_config says otherwise than the bundle's.
    #[error("env_config.{key} = {mine} in the config, {theirs} in bundle {dir}")]
    Contradiction {
        /// The key.
        key: String,
        /// The config's value (JSON).
        mine: String,
        /// The bundle's value (JSON).
        theirs: String,
        /// The bundle.
        dir: PathBuf,
    },
    /// Neither a folder nor a known baseline.
    #[error("policy {name:?} is neither a bundle folder nor a baseline ({known})")]
    Unknown {
        /// What the config says.
        name: String,
        /// The baselines, for the message.
        known: String,
    },
    /// The env cannot be built from the config.
    #[error("env {env} with env_config {config}: {source}")]
    Env {
        /// The env id.
        env: String,
        /// Its config (JSON).
        config: String,
        /// Why.
        #[source]
        source: Box<hale_envs::EnvError>,
    },
    /// The policy does not fit the env, or cannot be built.
    #[error(transparent)]
    Policy(#[from] hale_policies::PolicyError),
}

/// What stops the adapter from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// A value of the config.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The policy.
    #[error(transparent)]
    Policy(#[from] Box<PolicyLoadError>),
    /// The policy's env cannot be driven from this config (the policy named).
    #[error("{policy}: {message}")]
    Mismatch {
        /// The policy, for people.
        policy: String,
        /// What does not fit.
        message: String,
    },
    /// The target cannot be connected.
    #[error("target: {0}")]
    Target(#[from] TargetError),
    /// The audit log cannot be opened or written.
    #[error("audit log {path}: {source}")]
    Audit {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// An event cannot be serialised (a bug: every event is plain data).
    #[error("an event cannot be written as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<PolicyLoadError> for AdapterError {
    fn from(e: PolicyLoadError) -> AdapterError {
        AdapterError::Policy(Box::new(e))
    }
}
