//! # hale-policies: policies for hale's environments
//!
//! A [`Policy`] maps an observation to an action; evaluation and the actuation
//! adapter use nothing else. Baselines are exact renderings of what operators run
//! today: the Kubernetes Horizontal Pod Autoscaler ([`hpa::Hpa`]) and the kubelet's
//! restart back-off ([`kubelet::Kubelet`]), plus threshold rules, a static and a random
//! policy, and a Holt-Winters forecasting autoscaler.
//!
//! ```
//! use hale_policies::{make_policy, PolicyContext};
//! use hale_envs::make;
//! use serde_json::json;
//!
//! let config = json!({"scenario": "three-tier", "action": "target", "episode_s": 120});
//! let mut env = make("Scaling-v0", &config).unwrap();
//! let ctx = PolicyContext::new("Scaling-v0", &config, env.as_ref()).unwrap();
//! let mut hpa = make_policy("hpa", &ctx).unwrap();
//! let (mut obs, _) = env.reset(Some(1), None).unwrap();
//! loop {
//!     let step = env.step(&hpa.act(&obs, env.action_mask()).unwrap()).unwrap();
//!     obs = step.obs;
//!     if step.truncated { break; }
//! }
//! ```
#![warn(missing_docs)]

#[cfg(feature = "nn")]
pub mod bundle;
pub mod cost;
pub mod defence;
pub mod eval;
#[cfg(feature = "nn")]
pub mod gnn;
#[cfg(feature = "nn")]
pub mod heads;
pub mod hpa;
pub mod kubelet;
#[cfg(feature = "learn")]
pub mod learn;
#[cfg(feature = "nn")]
pub mod mlp;
#[cfg(feature = "nn")]
pub mod network;
mod scaling_obs;
pub mod simple;
pub mod stats;
pub mod team;
#[cfg(feature = "nn")]
pub mod tensors;
#[cfg(feature = "nn")]
pub mod weights;

use hale_envs::{Env, Space, Value};
use serde_json::Value as Json;

pub use scaling_obs::ScalingView;

/// How a policy scored every action: one list per action head.
pub type Scores = Vec<Vec<f32>>;

/// A policy could not choose an action: the observation does not fit it (a
/// learned policy given an observation of another length, or a graph that does not
/// fit its layout). An error the caller sees, never a panic.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("policy {policy}: {reason}")]
pub struct ActError {
    /// The policy's name.
    pub policy: String,
    /// Why it could not act.
    pub reason: String,
}

/// Maps observations to actions.
pub trait Policy: Send {
    /// A short name for tables.
    fn name(&self) -> &str;
    /// The action for this observation (within `mask` when the env gives one), or
    /// an error when the policy cannot read the observation.
    fn act(&mut self, obs: &Value, mask: Option<&[bool]>) -> Result<Value, ActError>;
    /// Forgets everything about the previous episode.
    fn reset(&mut self);
    /// [`Policy::act`] with how the policy scored every action, one list per action
    /// head, to explain the decision: a learned policy's logits from the same
    /// forward pass; `None` for rules, which have no scores.
    fn act_explained(
        &mut self,
        obs: &Value,
        mask: Option<&[bool]>,
    ) -> Result<(Value, Option<Scores>), ActError> {
        Ok((self.act(obs, mask)?, None))
    }
}

/// What a policy may know about the env it will drive: its id, its config and spaces.
#[derive(Clone, Debug)]
pub struct PolicyContext {
    /// Env id.
    pub env_id: String,
    /// The env's config (JSON object or null).
    pub config: Json,
    /// Observation space.
    pub observation_space: Space,
    /// Action space.
    pub action_space: Space,
    /// Seconds between decisions.
    pub control_interval_s: f64,
    /// Initial desired replicas per service (Scaling-v0).
    pub initial_replicas: Vec<u32>,
}

/// Why a baseline does not apply to an env's config: what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unfit(pub &'static str);

/// Why a policy cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// No policy has this name.
    #[error("unknown policy `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Known names.
        known: String,
    },
    /// A policy bundle could not be loaded, or does not fit the env.
    #[cfg(feature = "nn")]
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    /// The policy does not apply to this env or config.
    #[error("policy `{policy}` does not fit {env}: {reason}")]
    Mismatch {
        /// Policy.
        policy: String,
        /// Env id.
        env: String,
        /// What differs.
        reason: String,
    },
}

impl PolicyContext {
    /// The context of `env`, made from `config`.
    pub fn new(env_id: &str, config: &Json, env: &dyn Env) -> Result<PolicyContext, PolicyError> {
        let mismatch = |reason: String| PolicyError::Mismatch {
            policy: "any".into(),
            env: env_id.into(),
            reason,
        };
        // The env's own config type, defaults included, not a copy of them.
        let (control_interval_s, initial_replicas) = match env_id {
            "Scaling-v0" => {
                let cfg = hale_envs::ScalingConfig::from_json(config)
                    .map_err(|e| mismatch(e.to_string()))?;
                // Its shape is enough: the trace files it names are not read again.
                let sc = hale_envs::load_topology(env_id, &cfg.scenario)
                    .map_err(|e| mismatch(e.to_string()))?;
                let replicas = sc.spec.services.iter().map(|s| s.replicas).collect();
                (cfg.control_interval_s, replicas)
            }
            "Healing-v0" => {
                let cfg = hale_envs::HealingConfig::from_json(config)
                    .map_err(|e| mismatch(e.to_string()))?;
                (cfg.control_interval_s, vec![])
            }
            _ => (1.0, vec![]),
        };
        Ok(PolicyContext {
            env_id: env_id.into(),
            config: config.clone(),
            observation_space: env.observation_space().clone(),
            action_space: env.action_space().clone(),
            control_interval_s,
            initial_replicas,
        })
    }
}

/// Baseline names, for `--policy` and error messages.
pub const BASELINES: &[&str] = &[
    "hpa",
    "kubelet",
    "threshold",
    "static",
    "random",
    "forecast",
    "noop",
    "react-restore",
    "react-remove",
    "decoy-first",
    "on-demand",
    "karpenter",
];

/// Makes a baseline by name for the env described by `ctx`.
pub fn make_policy(name: &str, ctx: &PolicyContext) -> Result<Box<dyn Policy>, PolicyError> {
    let mismatch = |reason: &str| PolicyError::Mismatch {
        policy: name.into(),
        env: ctx.env_id.clone(),
        reason: reason.into(),
    };
    let scaling_only = || {
        if ctx.env_id != "Scaling-v0" {
            return Err(mismatch("it drives Scaling-v0 only"));
        }
        ScalingView::new(ctx).map_err(|r| mismatch(r.0))
    };
    Ok(match name {
        "hpa" => Box::new(hpa::Hpa::new(
            scaling_only()?,
            hpa::HpaConfig::default(),
            ctx.control_interval_s,
        )),
        "threshold" => Box::new(simple::Threshold::new(
            scaling_only()?,
            ctx.control_interval_s,
        )),
        "forecast" => Box::new(simple::Forecast::new(
            scaling_only()?,
            ctx.control_interval_s,
        )),
        "static" => match ctx.env_id.as_str() {
            "Scaling-v0" => Box::new(simple::Static::new(
                scaling_only()?,
                ctx.initial_replicas.clone(),
            )),
            _ => return Err(mismatch("it drives Scaling-v0 only (use noop elsewhere)")),
        },
        "kubelet" => {
            if ctx.env_id != "Healing-v0" {
                return Err(mismatch("it drives Healing-v0 only"));
            }
            Box::new(kubelet::Kubelet::new(ctx).map_err(|r| mismatch(r.0))?)
        }
        "react-restore" if defence::cloud_mode(ctx) => {
            Box::new(defence::CloudDefender::new(ctx, false).map_err(|r| mismatch(r.0))?)
        }
        "react-restore" => Box::new(
            defence::React::new(ctx, defence::Reaction::Restore).map_err(|r| mismatch(r.0))?,
        ),
        "react-remove" if defence::cloud_mode(ctx) => {
            return Err(mismatch(
                "it plays CAGE 2 (cloud mode has no process removal: use react-restore)",
            ));
        }
        "react-remove" => Box::new(
            defence::React::new(ctx, defence::Reaction::Remove).map_err(|r| mismatch(r.0))?,
        ),
        "decoy-first" if defence::cloud_mode(ctx) => {
            Box::new(defence::CloudDefender::new(ctx, true).map_err(|r| mismatch(r.0))?)
        }
        "decoy-first" => Box::new(defence::DecoyFirst::new(ctx).map_err(|r| mismatch(r.0))?),
        "on-demand" => Box::new(cost::OnDemand::new(ctx).map_err(|r| mismatch(r.0))?),
        "karpenter" => Box::new(cost::Karpenter::new(ctx).map_err(|r| mismatch(r.0))?),
        "random" => Box::new(simple::Random::new(ctx.action_space.clone(), 0)),
        "noop" => Box::new(simple::Noop::new(&ctx.action_space).map_err(|r| mismatch(r.0))?),
        _ => {
            return Err(PolicyError::Unknown {
                name: name.into(),
                known: BASELINES.join(", "),
            });
        }
    })
}

/// A policy named on a command line: a baseline name, or the folder of a policy bundle
/// (or of a training run, whose `policy/` is used), optionally labelled as
/// `LABEL=PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySpec {
    /// The name shown in tables: the label, the baseline's name, or the bundle's
    /// algorithm.
    pub label: String,
    /// A baseline name or a bundle folder.
    pub source: PolicySource,
}

/// Where a [`PolicySpec`] comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// One of [`BASELINES`].
    Baseline(String),
    /// A bundle folder (holding `policy.json`).
    Bundle(std::path::PathBuf),
}

impl PolicySpec {
    /// Parses `NAME`, `PATH` or `LABEL=PATH`. A word that names no baseline and no
    /// folder is kept as a baseline name, so that [`load_policy`] reports it unknown.
    pub fn parse(text: &str) -> PolicySpec {
        let (label, rest) = match text.split_once('=') {
            Some((l, r)) if !l.is_empty() && !l.contains('/') => (Some(l.to_string()), r),
            _ => (None, text),
        };
        let path = std::path::Path::new(rest);
        let bundle_dir = if path.join("policy.json").is_file() {
            Some(path.to_path_buf())
        } else if path.join("policy").join("policy.json").is_file() {
            Some(path.join("policy"))
        } else if let Some(team) = team::team_dir(path) {
            Some(team)
        } else if rest.contains('/') || path.is_dir() {
            // Looks like a path: let loading say what is missing.
            Some(path.to_path_buf())
        } else {
            None
        };
        match bundle_dir {
            Some(dir) => {
                let label = label.unwrap_or_else(|| {
                    std::fs::read(dir.join("policy.json"))
                        .or_else(|_| std::fs::read(dir.join(team::TEAM_FILE)))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                        .and_then(|j| j.get("algorithm").and_then(Json::as_str).map(String::from))
                        .unwrap_or_else(|| "bundle".into())
                });
                PolicySpec {
                    label,
                    source: PolicySource::Bundle(dir),
                }
            }
            None => PolicySpec {
                label: label.unwrap_or_else(|| rest.to_string()),
                source: PolicySource::Baseline(rest.to_string()),
            },
        }
    }
}

/// Makes the policy `spec` names for the env of `ctx`: a baseline, or a bundle loaded
/// onto `device` and checked against the env's id and spaces.
#[cfg(feature = "nn")]
pub fn load_policy(
    spec: &PolicySpec,
    ctx: &PolicyContext,
    device: &burn::prelude::Device,
) -> Result<Box<dyn Policy>, PolicyError> {
    match &spec.source {
        PolicySource::Baseline(name) => make_policy(name, ctx),
        PolicySource::Bundle(dir) => {
            let b = bundle::Bundle::load(dir, device)?;
            b.check_fits(&ctx.env_id, &ctx.observation_space, &ctx.action_space)?;
            Ok(Box::new(b.into_policy(&spec.label)))
        }
    }
}
