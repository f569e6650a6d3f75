//! The adapter's config file (TOML). Unknown fields anywhere are refused, naming
//! them; values are checked before anything touches a target.

use crate::guard::GuardConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Act then notify, or propose and wait for a person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Act, then notify.
    Auto,
    /// Propose, wait for accept / decline / modify.
    #[default]
    Manual,
}

/// The `[target]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TargetConfig {
    /// Logs what it would do.
    DryRun {
        /// Namespace of the services.
        #[serde(default = "default_namespace")]
        namespace: String,
        /// Service names in the env's service order.
        services: Vec<String>,
        /// Replicas each service starts with.
        #[serde(default = "one")]
        initial_replicas: u32,
    },
}

fn default_namespace() -> String {
    "default".into()
}

fn one() -> u32 {
    1
}

/// The whole config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// A policy bundle folder (from `hale export`), or a baseline name (`hpa`,
    /// `kubelet`, …).
    pub policy: String,
    /// The env the policy drives (`Scaling-v0`, `Healing-v0`); a bundle must have been
    /// trained on it.
    pub env: String,
    /// The env's config (a baseline needs it; a bundle must match it).
    #[serde(default)]
    pub env_config: toml::Table,
    /// `auto` or `manual` (default: manual, the safe one).
    #[serde(default)]
    pub mode: Mode,
    /// Seconds between decisions.
    #[serde(default = "default_interval")]
    pub interval_s: f64,
    /// The append-only audit log (JSON lines).
    #[serde(default = "default_audit")]
    pub audit_log: PathBuf,
    /// What to act on.
    pub target: TargetConfig,
    /// Limits that hold whatever the policy says.
    #[serde(default)]
    pub guardrails: GuardConfig,
    /// Where live observations come from (Prometheus queries per feature).
    #[serde(default)]
    pub observation: Option<crate::observe::ObservationConfig>,
}

fn default_interval() -> f64 {
    15.0
}

fn default_audit() -> PathBuf {
    "hale-adapter-audit.jsonl".into()
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Malformed TOML, an unknown field, or a value out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

impl AdapterConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<AdapterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let cfg: AdapterConfig =
            toml::from_str(&text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        cfg.validate().map_err(invalid)?;
        Ok(cfg)
    }

    /// Checks values; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.interval_s.is_finite() && self.interval_s > 0.0) {
            return Err(format!(
                "interval_s must be a positive number of seconds, got {}",
                self.interval_s
            ));
        }
        match &self.target {
            TargetConfig::DryRun { services, .. } if services.is_empty() => {
                return Err("target.services must name the services, in the env's order".into());
            }
            _ => {}
        }
        if let Some(o) = &self.observation {
            crate::observe::PrometheusSource::new(o.clone())?;
        }
        self.guardrails.validate()
    }

    /// The env config as JSON (what envs and policies take).
    pub fn env_config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.env_config).unwrap_or(serde_json::Value::Null)
    }
}
