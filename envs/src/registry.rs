//! Making environments by id, as `gymnasium.make`.

use crate::env::{Env, EnvError};
use crate::multi::ParallelEnv;
use crate::wrappers::TimeLimit;
use serde_json::Value as Json;

/// A registered environment.
pub struct EnvSpec {
    /// Its id.
    pub id: &'static str,
    /// One line for `hale env list`.
    pub description: &'static str,
    /// Config fields that only weigh the reward: whatever their values, the same seed
    /// and actions give the same observations, masks and episode ends. A policy trained
    /// under other weights can be evaluated under these.
    pub reward_weights: &'static [&'static str],
    make: fn(&Json) -> Result<Box<dyn Env>, EnvError>,
}

fn no_config(id: &str, config: &Json) -> Result<(), EnvError> {
    match config {
        Json::Null => Ok(()),
        Json::Object(m) if m.is_empty() => Ok(()),
        Json::Object(m) => Err(EnvError::Config {
            env: id.into(),
            field: m.keys().next().cloned().unwrap_or_default(),
            reason: "this environment takes no configuration".into(),
        }),
        other => Err(EnvError::Config {
            env: id.into(),
            field: "config".into(),
            reason: format!("expected an object, got {other}"),
        }),
    }
}

/// Every registered environment.
pub fn registry() -> &'static [EnvSpec] {
    &[
        EnvSpec {
            id: "CartPole-v1",
            description: "Gymnasium's cart-pole balancing, exact dynamics, 500-step limit",
            reward_weights: &[],
            make: |c| {
                no_config("CartPole-v1", c)?;
                Ok(Box::new(TimeLimit::new(
                    crate::cartpole::CartPole::default(),
                    500,
                )))
            },
        },
        EnvSpec {
            id: "Scaling-v0",
            description: "set replica counts per service of a simulated cloud (default scenario microservices-20)",
            reward_weights: &[
                "cost_weight",
                "slo_weight",
                "drop_weight",
                "slo_minute_price",
            ],
            make: |c| Ok(Box::new(crate::scaling::Scaling::new(c)?)),
        },
        EnvSpec {
            id: "Healing-v0",
            description: "choose a remedy (restart, reschedule, roll back, drain) or nothing as faults strike (default scenario three-tier)",
            reward_weights: &["unserved_weight", "remedy_penalty", "disruption_weight"],
            make: |c| Ok(Box::new(crate::healing::Healing::new(c)?)),
        },
        EnvSpec {
            id: "Security-v0",
            description: "defend a network against a scripted attacker (default CAGE Challenge 2 against B_line, 100 steps)",
            reward_weights: &["slo_weight", "restart_cost"],
            make: |c| Ok(Box::new(crate::security::Security::new(c)?)),
        },
        EnvSpec {
            id: "Cost-v0",
            description: "cut the bill: spot/on-demand mix, consolidation and right-sizing under spot reclaims (default scenario microservices-20)",
            reward_weights: &["slo_minute_price"],
            make: |c| Ok(Box::new(crate::cost::Cost::new(c)?)),
        },
    ]
}

/// Makes the environment `id` with `config` (a JSON object of env-specific settings,
/// or null for the defaults).
pub fn make(id: &str, config: &Json) -> Result<Box<dyn Env>, EnvError> {
    match registry().iter().find(|s| s.id == id) {
        Some(spec) => (spec.make)(config),
        None => Err(EnvError::UnknownEnv {
            id: id.to_string(),
            known: registry()
                .iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A registered multi-agent environment.
pub struct ParallelEnvSpec {
    /// Its id.
    pub id: &'static str,
    /// One line for `hale env list`.
    pub description: &'static str,
    /// Config fields that only weigh the rewards (as [`EnvSpec::reward_weights`]).
    pub reward_weights: &'static [&'static str],
    make: fn(&Json) -> Result<Box<dyn ParallelEnv>, EnvError>,
}

/// Every registered multi-agent environment.
pub fn parallel_registry() -> &'static [ParallelEnvSpec] {
    &[ParallelEnvSpec {
        id: "CloudOps-v0",
        description: "scaler, healer and defender on one cloud (PettingZoo parallel API), with a conflict ledger (default microservices-20 against B_line)",
        reward_weights: &[
            "cost_weight",
            "slo_weight",
            "unserved_weight",
            "security_weight",
            "remedy_penalty",
        ],
        make: |c| Ok(Box::new(crate::cloudops::CloudOps::new(c)?)),
    }]
}

/// Makes the multi-agent environment `id` with `config`.
pub fn make_parallel(id: &str, config: &Json) -> Result<Box<dyn ParallelEnv>, EnvError> {
    match parallel_registry().iter().find(|s| s.id == id) {
        Some(spec) => (spec.make)(config),
        None => Err(EnvError::UnknownEnv {
            id: id.to_string(),
            known: parallel_registry()
                .iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The config fields of env `id` (single- or multi-agent) that only weigh the reward
/// ([`EnvSpec::reward_weights`]); none for an unknown id.
pub fn reward_weights(id: &str) -> &'static [&'static str] {
    registry()
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.reward_weights)
        .or_else(|| {
            parallel_registry()
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.reward_weights)
        })
        .unwrap_or(&[])
}

/// Checks that env `id`, single- or multi-agent, is registered and accepts `config`, by
/// making it once.
pub fn check_config(id: &str, config: &Json) -> Result<(), EnvError> {
    if parallel_registry().iter().any(|s| s.id == id) {
        make_parallel(id, config).map(drop)
    } else {
        make(id, config).map(drop)
    }
}
