//! Experiment configs: what `hale train` reads (TOML), parsed and checked before any
//! work starts, each error naming the file and field.

use hale_policies::learn::dqn::DqnConfig;
use hale_policies::learn::ppo::PpoConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What is wrong with an experiment config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, an unknown field, or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value out of range.
    #[error("{path}: field `{field}`: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field, as written in the file (`ppo.learning_rate`).
        field: String,
        /// What is wrong with its value.
        message: String,
    },
}

/// The most episodes per policy that one evaluation runs: a bound on the work a
/// mistyped count can ask for (and on the memory its table takes).
pub const MAX_EPISODES: usize = 100_000;

/// Checks that `episodes` episodes from `seed` can be run: at most [`MAX_EPISODES`],
/// and seeds `seed … seed + episodes − 1` all below `u64::MAX`.
pub fn check_episodes(seed: u64, episodes: usize) -> Result<(), EpisodesError> {
    if episodes > MAX_EPISODES {
        return Err(EpisodesError::TooMany { episodes });
    }
    if seed.checked_add(episodes as u64).is_none() {
        return Err(EpisodesError::PastLastSeed { seed, episodes });
    }
    Ok(())
}

/// An evaluation that cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EpisodesError {
    /// More than [`MAX_EPISODES`].
    #[error("{episodes} episodes is more than {MAX_EPISODES}")]
    TooMany {
        /// Episodes asked for.
        episodes: usize,
    },
    /// Seeds past `u64::MAX`.
    #[error(
        "seeds {seed} + {episodes} episodes go past the largest seed {}",
        u64::MAX
    )]
    PastLastSeed {
        /// First seed.
        seed: u64,
        /// Episodes asked for.
        episodes: usize,
    },
}

/// A training run's config (TOML).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Experiment name, part of the run folder's name.
    #[serde(default = "default_exp")]
    pub exp_name: String,
    /// Registered env id.
    pub env: String,
    /// The env's config.
    #[serde(default = "empty_table")]
    pub env_config: toml::Table,
    /// Seed of the run (envs get seed + i, the network and the sampling streams derive
    /// from it).
    #[serde(default = "one")]
    pub seed: u64,
    /// `ppo` or `dqn`; for a multi-agent env, `ippo` (one PPO learner per agent,
    /// hyperparameters from the `ppo` table) or `mappo` (the same, each critic reading
    /// the env's global state beside its agent's observation).
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Checkpoint (and reset the envs) every this many iterations.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Checkpoints kept: older ones are deleted once a newer one is written (the
    /// newest is what `--resume` reads; the one before it stands in if it is corrupt).
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: u64,
    /// Episodes of the final evaluation.
    #[serde(default = "default_eval_episodes")]
    pub eval_episodes: u64,
    /// First seed of the evaluation episodes (held out: far from the training seeds).
    #[serde(default = "default_eval_seed")]
    pub eval_seed: u64,
    /// PPO hyperparameters (with `algorithm = "ppo"`, `"ippo"` or `"mappo"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppo: Option<PpoConfig>,
    /// DQN hyperparameters (with `algorithm = "dqn"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dqn: Option<DqnConfig>,
}

impl TrainConfig {
    /// The chosen algorithm's hyperparameters as JSON.
    pub fn hyperparameters(&self) -> serde_json::Value {
        match self.algorithm.as_str() {
            "dqn" => serde_json::to_value(&self.dqn),
            _ => serde_json::to_value(&self.ppo),
        }
        .unwrap_or(serde_json::Value::Null)
    }

    /// Hidden layer widths of the chosen algorithm's network.
    pub fn hidden(&self) -> Vec<usize> {
        match self.algorithm.as_str() {
            "dqn" => self.dqn.as_ref().map(|c| c.hidden.clone()),
            _ => self.ppo.as_ref().map(|c| c.hidden.clone()),
        }
        .unwrap_or_default()
    }

    /// The env config as JSON (what envs take).
    pub fn env_config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.env_config).unwrap_or(serde_json::Value::Null)
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<TrainConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = TrainConfig::from_toml_str(&text, path)?;
        cfg.resolve_scenario(path.parent().unwrap_or(Path::new(".")));
        Ok(cfg)
    }

    /// Reads a relative `env_config.scenario` path relative to the config's folder (as a
    /// scenario reads its traces relative to itself), where a file is there, and
    /// records it absolute, so that the run's `config.toml` and bundle name it from
    /// anywhere. Builtin names, absolute paths and paths with no file there are left
    /// as they are (the env names a missing file).
    fn resolve_scenario(&mut self, base: &Path) {
        let Some(toml::Value::String(name)) = self.env_config.get("scenario") else {
            return;
        };
        if hale_sim::BUILTINS.contains(&name.as_str()) || Path::new(name).is_absolute() {
            return;
        }
        if let Ok(path) = base.join(name).canonicalize() {
            self.env_config.insert(
                "scenario".into(),
                toml::Value::String(path.display().to_string()),
            );
        }
    }

    /// Parses and checks a config's text (`path` names it in errors); the chosen
    /// algorithm's table is filled with its defaults when absent.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<TrainConfig, ConfigError> {
        let field = |field: &str, message: String| ConfigError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let mut cfg: TrainConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let multi_agent = hale_envs::parallel_registry()
            .iter()
            .any(|spec| spec.id == cfg.env);
        match (cfg.algorithm.as_str(), multi_agent) {
            ("ippo" | "mappo", false) => {
                return Err(field(
                    "algorithm",
                    format!(
                        "{} trains the agents of a multi-agent env (CloudOps-v0); {} has one agent: use ppo",
                        cfg.algorithm, cfg.env
                    ),
                ));
            }
            ("ppo" | "dqn", true) => {
                return Err(field(
                    "algorithm",
                    format!(
                        "{} has several agents: train them with algorithm = \"ippo\" (one PPO learner per agent, hyperparameters from [ppo]) or \"mappo\" (the same with critics that read the global state)",
                        cfg.env
                    ),
                ));
            }
            _ => {}
        }
        match cfg.algorithm.as_str() {
            "ppo" | "ippo" | "mappo" => {
                if cfg.dqn.is_some() {
                    return Err(field(
                        "dqn",
                        format!("a [dqn] table, but algorithm = {:?}", cfg.algorithm),
                    ));
                }
                let c = cfg.ppo.get_or_insert_with(PpoConfig::default);
                c.validate()
                    .map_err(|e| field(&format!("ppo.{}", e.field), e.reason))?;
            }
            "dqn" => {
                if cfg.ppo.is_some() {
                    return Err(field(
                        "ppo",
                        "a [ppo] table, but algorithm = \"dqn\"".into(),
                    ));
                }
                let c = cfg.dqn.get_or_insert_with(DqnConfig::default);
                c.validate()
                    .map_err(|e| field(&format!("dqn.{}", e.field), e.reason))?;
            }
            other => {
                return Err(field(
                    "algorithm",
                    format!("unknown algorithm {other:?} (known: ppo, dqn, ippo, mappo)"),
                ));
            }
        }
        if cfg.checkpoint_every == 0 {
            return Err(field("checkpoint_every", "must be positive".into()));
        }
        if cfg.keep_checkpoints == 0 {
            return Err(field("keep_checkpoints", "must be positive".into()));
        }
        check_episodes(cfg.eval_seed, cfg.eval_episodes as usize).map_err(|e| {
            let name = match e {
                EpisodesError::TooMany { .. } => "eval_episodes",
                EpisodesError::PastLastSeed { .. } => "eval_seed",
            };
            field(name, e.to_string())
        })?;
        Ok(cfg)
    }
}

fn default_exp() -> String {
    "ppo".into()
}
fn empty_table() -> toml::Table {
    toml::Table::new()
}
fn one() -> u64 {
    1
}
fn default_algorithm() -> String {
    "ppo".into()
}
fn default_checkpoint_every() -> u64 {
    25
}
fn default_keep_checkpoints() -> u64 {
    3
}

fn default_eval_episodes() -> u64 {
    20
}
fn default_eval_seed() -> u64 {
    1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every config shipped in `experiments/configs/` parses, and its env (single- or
    /// multi-agent) is made from its env config (a relative scenario read relative to
    /// the config).
    #[test]
    fn the_shipped_configs_load_and_make_their_envs() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let cfg = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
            let scenario = cfg.env_config.get("scenario").and_then(|s| s.as_str());
            if scenario.is_some_and(|s| s.ends_with("-traces.toml")) && !traces.exists() {
                eprintln!(
                    "skipping {}'s env: {} is absent",
                    path.display(),
                    traces.display()
                );
                continue;
            }
            if let Some(s) = scenario
                && !hale_sim::BUILTINS.contains(&s)
            {
                assert!(Path::new(s).is_absolute(), "{}: {s}", path.display());
            }
            hale_envs::check_config(&cfg.env, &cfg.env_config_json())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        assert!(seen >= 10, "{seen} configs in {}", dir.display());
    }

    #[test]
    fn a_relative_scenario_is_read_relative_to_the_config() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("scenarios")).unwrap();
        let scenario = tmp.path().join("scenarios/mine.toml");
        std::fs::write(&scenario, "").unwrap();
        let write = |name: &str, scenario: &str| {
            let path = tmp.path().join(name);
            let text = format!("env = \"Scaling-v0\"\n[env_config]\nscenario = \"{scenario}\"\n");
            std::fs::write(&path, text).unwrap();
            TrainConfig::load(&path).unwrap().env_config["scenario"].clone()
        };
        let want = scenario.canonicalize().unwrap().display().to_string();
        assert_eq!(
            write("a.toml", "scenarios/mine.toml").as_str(),
            Some(want.as_str())
        );
        assert_eq!(write("b.toml", "three-tier").as_str(), Some("three-tier"));
        assert_eq!(
            write("c.toml", "nowhere.toml").as_str(),
            Some("nowhere.toml")
        );
    }
}
