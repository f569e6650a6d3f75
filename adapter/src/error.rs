//! The adapter's errors: a config value out of range ([`FieldError`]), and what can
//! stop the adapter from starting or running ([`AdapterError`]).

use crate::target::TargetError;
use std::path::PathBuf;

/// A config value that cannot be used. `message` says what is wrong in words that
/// name the field; `field` is its dotted path (`guardrails.cooldown_s`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The field, as written in the config (`manual.ttl_s`).
    pub field: String,
    /// What is wrong, for people.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The longest time the adapter takes from a config (a decision interval, a
/// timeout, a proposal's time to live, a guard window): a week. A longer one is a
/// mistake, and past about 10^19 s it cannot even be held as a `Duration`.
pub const MAX_SECONDS: f64 = 7.0 * 86_400.0;

/// Checks a number of seconds from the config: finite, positive (or ≥ 0 with
/// `zero_ok`) and at most [`MAX_SECONDS`]; the error names `field`.
pub fn check_seconds(field: &str, v: f64, zero_ok: bool) -> Result<(), FieldError> {
    let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
    if !(v.is_finite() && low_ok) {
        let want = if zero_ok {
            "a non-negative"
        } else {
            "a positive"
        };
        return Err(FieldError::new(
            field,
            format!("{field} must be {want} number of seconds, got {v}"),
        ));
    }
    if v > MAX_SECONDS {
        return Err(FieldError::new(
            field,
            format!(
                "{field} = {v} s is longer than the longest the adapter waits, {MAX_SECONDS} s \
                 (a week)"
            ),
        ));
    }
    Ok(())
}

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
