//! Loading the policy the config names: a bundle, checked against the env it will
//! drive, or a baseline.

use crate::config::AdapterConfig;
use crate::error::PolicyLoadError;
use burn::prelude::Device;
use hale_policies::{BASELINES, Policy, PolicyContext, PolicySpec, load_policy};

/// What was loaded, for the operator.
pub struct Loaded {
    /// The policy.
    pub policy: Box<dyn Policy>,
    /// One line: where it came from and what it drives.
    pub description: String,
    /// The env config the policy runs under (a bundle's own).
    pub env_config: serde_json::Value,
}

/// Loads the config's policy for its env: a bundle must carry format version,
/// checksum and spaces that fit; a baseline must know the env.
pub fn load(config: &AdapterConfig) -> Result<Loaded, PolicyLoadError> {
    let env_config = config.env_config_json();
    let spec = PolicySpec::parse(&config.policy);
    // A bundle brings the env config it was trained on; the config's env_config must
    // not contradict it.
    let env_config = match &spec.source {
        hale_policies::PolicySource::Bundle(dir) => {
            let bundle = hale_policies::bundle::Bundle::load(dir, &Device::flex())?;
            if bundle.spec.env_id != config.env.id() {
                return Err(PolicyLoadError::OtherEnv {
                    dir: dir.clone(),
                    trained: bundle.spec.env_id,
                    env: config.env.to_string(),
                });
            }
            if let (Some(mine), Some(theirs)) =
                (env_config.as_object(), bundle.spec.env_config.as_object())
            {
                for (k, v) in mine {
                    if let Some(t) = theirs.get(k).filter(|t| *t != v) {
                        return Err(PolicyLoadError::Contradiction {
                            key: k.clone(),
                            mine: v.to_string(),
                            theirs: t.to_string(),
                            dir: dir.clone(),
                        });
                    }
                }
            }
            bundle.spec.env_config.clone()
        }
        hale_policies::PolicySource::Baseline(name) => {
            if !BASELINES.contains(&name.as_str()) {
                return Err(PolicyLoadError::Unknown {
                    name: name.clone(),
                    known: BASELINES.join(", "),
                });
            }
            env_config
        }
    };
    let env =
        hale_envs::make(config.env.id(), &env_config).map_err(|source| PolicyLoadError::Env {
            env: config.env.to_string(),
            config: env_config.to_string(),
            source: Box::new(source),
        })?;
    let ctx = PolicyContext::new(config.env.id(), &env_config, env.as_ref())?;
    let policy = load_policy(&spec, &ctx, &Device::flex())?;
    let description = format!(
        "{} ({}) for {}: observation {}, action {}",
        spec.label,
        match &spec.source {
            hale_policies::PolicySource::Bundle(d) => format!("bundle {}", d.display()),
            hale_policies::PolicySource::Baseline(_) => "baseline".into(),
        },
        config.env,
        ctx.observation_space,
        ctx.action_space
    );
    Ok(Loaded {
        policy,
        description,
        env_config,
    })
}
