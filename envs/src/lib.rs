//! # hale-envs: Gymnasium-style environments over the hale simulator
//!
//! The contract is Gymnasium's: `reset(seed, options) -> (obs, info)` and
//! `step(action) -> Step { obs, reward, terminated, truncated, info }`, with spaces that
//! know `contains` and `sample(rng, mask)`, action masks, wrappers, vector envs with
//! Gymnasium's autoreset modes, a registry and a checker.
//!
//! ```
//! use hale_envs::{make, Value};
//!
//! let mut env = make("CartPole-v1", &serde_json::Value::Null).unwrap();
//! let (obs, _info) = env.reset(Some(42), None).unwrap();
//! assert!(env.observation_space().contains(&obs));
//! let step = env.step(&Value::Discrete(1)).unwrap();
//! assert_eq!(step.reward, 1.0);
//! assert!(env.step(&Value::Discrete(2)).is_err()); // outside Discrete(2): an error, not a panic
//! ```
#![warn(missing_docs)]

mod cartpole;
pub mod checker;
mod cloud;
pub mod cloudops;
pub mod cost;
pub mod encoding;
mod env;
mod healing;
pub mod intrusion;
pub mod lockstep;
mod multi;
mod registry;
pub mod replay;
mod scaling;
mod security;
pub mod sharing;
mod space;
pub mod vector;
pub mod wrappers;

pub use cartpole::CartPole;
pub use checker::{check_env, check_parallel_env, check_registered};
pub use cloud::{Randomize, load_topology};
pub use cloudops::{CloudOps, CloudOpsConfig, CloudOpsInfo, Ledger};
pub use cost::{Cost, CostConfig, CostInfo, CostLayout, CostModel};
pub use env::{
    CloudInfo, Env, EnvError, EpisodeInfo, HealingInfo, Info, ObsSlot, ScalingInfo, SecurityInfo,
    Step, StepInto, Usage, check_action, write_obs,
};
pub use healing::{Healing, HealingConfig};
pub use multi::{AgentMap, MultiStep, ParallelEnv};
pub use registry::{
    EnvSpec, ParallelEnvSpec, check_config, make, make_parallel, parallel_registry, registry,
    reward_weights,
};
pub use scaling::{Scaling, ScalingAction, ScalingConfig, ScalingReward};
pub use security::{Attacker, Security, SecurityConfig, SecurityObservation};
pub use space::{GraphValue, Space, Value};
pub use vector::{AutoReset, ParallelVectorEnv, VectorEnv};
