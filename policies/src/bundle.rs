//! Policy bundles: a trained network and what is needed to run it safely elsewhere.
//!
//! A bundle is a folder with `policy.json` ([`BundleSpec`]: format version, env id and
//! config, observation and action spaces, network shape, algorithm and
//! hyperparameters, git revision, SHA-256 of the weights) and `weights.bpk` (burn's
//! burnpack). Loading checks the format version, the weights' checksum and, against
//! an environment, its id and spaces; a bundle loads onto a plain (non-autodiff)
//! device and implements [`Policy`] (greedy: the most likely allowed action per head).

use crate::heads::{Heads, MASKED_LOGIT};
use crate::network::{Encoder, ForwardError, Network, Observations};
use crate::tensors::to_vec;
use crate::weights::WeightsError;
use crate::{ActError, Policy};
use burn::prelude::*;
use hale_envs::{Space, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The bundle format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// `policy.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSpec {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The env the policy was trained on.
    pub env_id: String,
    /// That env's config (JSON object).
    pub env_config: serde_json::Value,
    /// Its observation space.
    pub observation_space: Space,
    /// Its action space.
    pub action_space: Space,
    /// Length of a flat observation.
    pub obs_dim: usize,
    /// Sizes of the categorical action heads.
    pub heads: Vec<usize>,
    /// Hidden layer widths of the actor and critic (MLP).
    pub hidden: Vec<usize>,
    /// The network: `{"kind": "mlp"}` (the default, widths in `hidden`) or
    /// `{"kind": "gnn", …}` with its shape and action layout.
    #[serde(default)]
    pub encoder: Encoder,
    /// Algorithm (`ppo`).
    pub algorithm: String,
    /// Its hyperparameters, as trained.
    pub hyperparameters: serde_json::Value,
    /// Observation normalisation (mean, variance) if the policy expects it.
    #[serde(default)]
    pub obs_normalization: Option<(Vec<f64>, Vec<f64>)>,
    /// `git rev-parse HEAD` of the tree that trained it, if known.
    #[serde(default)]
    pub git_revision: Option<String>,
    /// Seed of the training run.
    pub seed: u64,
    /// Lowercase hex SHA-256 of `weights.bpk`.
    pub weights_sha256: String,
}

/// Why a bundle could not be written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `policy.json` is malformed or has unknown fields.
    #[error("{path}: {message}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The bundle was written by another format version.
    #[error("{path}: format_version {found}, this build reads {FORMAT_VERSION}")]
    Version {
        /// `policy.json`.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The weights do not match the checksum in `policy.json` (truncated or altered).
    #[error(
        "{path}: SHA-256 {found} does not match weights_sha256 {expected} in policy.json (truncated or altered?)"
    )]
    Checksum {
        /// `weights.bpk`.
        path: PathBuf,
        /// From policy.json.
        expected: String,
        /// Of the file.
        found: String,
    },
    /// The weights do not fit the network that `policy.json` describes.
    #[error("{path}: {source}")]
    Weights {
        /// `weights.bpk`.
        path: PathBuf,
        /// What burn said.
        #[source]
        source: WeightsError,
    },
    /// The bundle was trained on another env or spaces than it is asked to drive.
    #[error("bundle {path} does not fit: {message}")]
    Mismatch {
        /// The bundle folder.
        path: PathBuf,
        /// What differs.
        message: String,
    },
}

fn io(path: &Path, source: std::io::Error) -> BundleError {
    BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `bytes` to `path` through a temporary file and a rename
/// ([`hale_sim::fs::write_atomic`]), naming the file in the error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    hale_sim::fs::write_atomic(path, bytes).map_err(|e| io(path, e))
}

/// Writes a bundle into `dir` (created if needed): `weights.bpk` first, then
/// `policy.json` with its checksum, each atomically. `spec.weights_sha256` is filled in.
/// `spec.encoder` is taken from the network.
pub fn save(dir: &Path, model: &Network, mut spec: BundleSpec) -> Result<BundleSpec, BundleError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let weights = dir.join("weights.bpk");
    let bytes = model
        .weight_bytes()
        .map_err(|source| BundleError::Weights {
            path: weights.clone(),
            source,
        })?;
    spec.format_version = FORMAT_VERSION;
    spec.encoder = model.encoder();
    spec.weights_sha256 = sha256_hex(&bytes);
    write_atomic(&weights, &bytes)?;
    let json = serde_json::to_vec_pretty(&spec).expect("a spec serialises");
    write_atomic(&dir.join("policy.json"), &json)?;
    Ok(spec)
}

/// A loaded bundle: its spec and network, on an inference device.
pub struct Bundle {
    /// The folder it came from.
    pub dir: PathBuf,
    /// `policy.json`.
    pub spec: BundleSpec,
    /// The network.
    pub model: Network,
    device: Device,
}

impl Bundle {
    /// Reads and checks a bundle folder (format version, checksum, weights that fit).
    pub fn load(dir: &Path, device: &Device) -> Result<Bundle, BundleError> {
        let spec_path = dir.join("policy.json");
        let text = std::fs::read(&spec_path).map_err(|e| io(&spec_path, e))?;
        let weights = dir.join("weights.bpk");
        let bytes = std::fs::read(&weights).map_err(|e| io(&weights, e))?;
        Bundle::from_bytes(dir, &text, bytes, device)
    }

    /// Checks a bundle from the contents of its `policy.json` and `weights.bpk`;
    /// `dir` names the folder in errors.
    pub fn from_bytes(
        dir: &Path,
        text: &[u8],
        bytes: Vec<u8>,
        device: &Device,
    ) -> Result<Bundle, BundleError> {
        let spec_path = dir.join("policy.json");
        let raw: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| BundleError::Spec {
                path: spec_path.clone(),
                message: e.to_string(),
            })?;
        if let Some(v) = raw.get("format_version").and_then(|v| v.as_u64())
            && v != u64::from(FORMAT_VERSION)
        {
            return Err(BundleError::Version {
                path: spec_path,
                found: v as u32,
            });
        }
        let spec: BundleSpec = serde_json::from_value(raw).map_err(|e| BundleError::Spec {
            path: spec_path.clone(),
            message: e.to_string(),
        })?;
        let weights = dir.join("weights.bpk");
        let found = sha256_hex(&bytes);
        if found != spec.weights_sha256 {
            return Err(BundleError::Checksum {
                path: weights,
                expected: spec.weights_sha256,
                found,
            });
        }
        let total: usize = spec.heads.iter().sum();
        // Under the backend-RNG lock, as every module is built: the fresh weights are
        // overwritten, but drawing them unlocked could shift a seeded draw elsewhere.
        let fresh = crate::tensors::seeded(device, 0, |d| {
            Network::new(&spec.encoder, spec.obs_dim, total, &spec.hidden, d)
        });
        let model = fresh
            .load_weight_bytes(bytes)
            .map_err(|source| BundleError::Weights {
                path: weights,
                source,
            })?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            spec,
            model,
            device: device.clone(),
        })
    }

    /// Checks that the bundle fits env `env_id` with these spaces.
    pub fn check_fits(
        &self,
        env_id: &str,
        observation: &Space,
        action: &Space,
    ) -> Result<(), BundleError> {
        let differs = if self.spec.env_id != env_id {
            Some(format!(
                "trained on {}, asked to drive {env_id}",
                self.spec.env_id
            ))
        } else if &self.spec.observation_space != observation {
            let (t, e) = differing(&self.spec.observation_space, observation);
            Some(format!("observation space {t} (trained) vs {e} (env)"))
        } else if &self.spec.action_space != action {
            let (t, e) = differing(&self.spec.action_space, action);
            Some(format!("action space {t} (trained) vs {e} (env)"))
        } else {
            None
        };
        match differs {
            Some(message) => Err(BundleError::Mismatch {
                path: self.dir.clone(),
                message,
            }),
            None => Ok(()),
        }
    }

    /// The bundle as a greedy [`Policy`].
    pub fn into_policy(self, name: &str) -> LearnedPolicy {
        LearnedPolicy {
            name: name.to_string(),
            heads: Heads {
                sizes: self.spec.heads.clone(),
            },
            discrete: matches!(self.spec.action_space, Space::Discrete { .. }),
            obs_dim: self.spec.obs_dim,
            norm: self.spec.obs_normalization.clone(),
            model: self.model,
            device: self.device,
        }
    }
}

/// A trained network acting greedily: per head, the allowed action with the largest
/// logit.
pub struct LearnedPolicy {
    name: String,
    heads: Heads,
    discrete: bool,
    obs_dim: usize,
    norm: Option<(Vec<f64>, Vec<f64>)>,
    model: Network,
    device: Device,
}

impl LearnedPolicy {
    /// Logits for one observation (flat, or a graph for a GNN bundle), with masked
    /// actions at [`MASKED_LOGIT`].
    pub fn logits(&self, obs: &Value, mask: Option<&[bool]>) -> Result<Vec<f32>, ForwardError> {
        let logits = match (obs, &self.norm) {
            (Value::Graph(g), _) => {
                self.model
                    .forward(Observations::Graphs(vec![g]), &self.device)?
                    .0
            }
            (obs, Some((mean, _))) if obs.as_box().len() != mean.len() => {
                return Err(ForwardError::Length {
                    found: obs.as_box().len(),
                    expected: mean.len(),
                });
            }
            (obs, Some((mean, var))) => {
                let x: Vec<f32> = obs
                    .as_box()
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        ((f64::from(v) - mean[i]) / (var[i] + 1e-8).sqrt()).clamp(-10.0, 10.0)
                            as f32
                    })
                    .collect();
                self.forward_flat(&x)?
            }
            (obs, None) => self.forward_flat(obs.as_box())?,
        };
        let mut logits = to_vec(logits);
        if let Some(m) = mask {
            for (l, &ok) in logits.iter_mut().zip(m) {
                if !ok {
                    *l = MASKED_LOGIT;
                }
            }
        }
        Ok(logits)
    }

    fn forward_flat(&self, x: &[f32]) -> Result<Tensor<2>, ForwardError> {
        if matches!(self.model, Network::Gnn(_)) {
            return Err(ForwardError::Kind {
                network: "a GNN",
                given: "flat",
            });
        }
        if x.len() != self.obs_dim {
            return Err(ForwardError::Length {
                found: x.len(),
                expected: self.obs_dim,
            });
        }
        let obs = Observations::Flat { values: x, rows: 1 };
        Ok(self.model.forward(obs, &self.device)?.0)
    }

    /// The greedy action: per head, the allowed action with the largest logit.
    pub fn try_act(&self, obs: &Value, mask: Option<&[bool]>) -> Result<Value, ForwardError> {
        Ok(self.greedy(&self.heads(&self.logits(obs, mask)?)))
    }

    /// The error for an observation the network could not read.
    fn refused(&self, e: ForwardError) -> ActError {
        ActError {
            policy: self.name.clone(),
            reason: e.to_string(),
        }
    }

    /// Logits split into the action heads.
    fn heads(&self, logits: &[f32]) -> Vec<Vec<f32>> {
        let mut start = 0;
        self.heads
            .sizes
            .iter()
            .map(|&n| {
                start += n;
                logits[start - n..start].to_vec()
            })
            .collect()
    }

    /// Per head, the action with the largest logit.
    fn greedy(&self, heads: &[Vec<f32>]) -> Value {
        let picks: Vec<i64> = heads
            .iter()
            .map(|head| {
                (0..head.len()).fold(0, |b, i| if head[i] > head[b] { i } else { b }) as i64
            })
            .collect();
        if self.discrete {
            Value::Discrete(picks[0])
        } else {
            Value::MultiDiscrete(picks)
        }
    }
}

impl Policy for LearnedPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    /// [`LearnedPolicy::try_act`]; an observation the network cannot read (wrong
    /// length, a graph that does not fit the layout) is an error naming the policy.
    fn act(&mut self, obs: &Value, mask: Option<&[bool]>) -> Result<Value, ActError> {
        self.try_act(obs, mask).map_err(|e| self.refused(e))
    }

    fn reset(&mut self) {}

    /// One forward pass gives both the greedy action and the scores.
    fn act_explained(
        &mut self,
        obs: &Value,
        mask: Option<&[bool]>,
    ) -> Result<(Value, Option<crate::Scores>), ActError> {
        let heads = self.heads(&self.logits(obs, mask).map_err(|e| self.refused(e))?);
        Ok((self.greedy(&heads), Some(heads)))
    }
}

/// Two spaces that differ, in one short line each, or in full where the short
/// lines are the same (boxes that differ in their bounds only).
fn differing(trained: &Space, env: &Space) -> (String, String) {
    let (t, e) = (trained.to_string(), env.to_string());
    if t == e {
        (format!("{trained:?}"), format!("{env:?}"))
    } else {
        (t, e)
    }
}
