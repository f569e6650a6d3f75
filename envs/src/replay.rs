//! Replaying episodes from JSON lines (what `hale env replay` does).
//!
//! Each input line: `{"seed": optional u64, "options": optional object, "actions":
//! [...]}`. Each output line: `{"steps": [{"obs", "reward", "terminated",
//! "truncated"}, …]}`, stopping at the end of the episode.

use crate::env::{Env, EnvError};
use crate::space::{Space, Value};
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// A problem with one replay line; every variant names the line.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Not JSON of the expected shape.
    #[error("line {line}: {message}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The env refused a reset or an action.
    #[error("line {line}: action {index}: {source}")]
    Env {
        /// 1-based line number.
        line: usize,
        /// Index of the action (or of the reset: 0).
        index: usize,
        /// The env's error.
        source: EnvError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Episode {
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    options: Option<Json>,
    actions: Vec<Json>,
}

/// Decodes a JSON action for a space: an integer for Discrete, an array of integers
/// for MultiDiscrete, an array of numbers for Box.
pub fn action_from_json(space: &Space, a: &Json) -> Result<Value, ActionError> {
    let bad = || ActionError::NotAnAction {
        action: a.to_string(),
        space: space.to_string(),
    };
    Ok(match space {
        Space::Discrete { .. } => Value::Discrete(a.as_i64().ok_or_else(bad)?),
        Space::MultiDiscrete { .. } => Value::MultiDiscrete(
            a.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|x| x.as_i64().ok_or_else(bad))
                .collect::<Result<_, _>>()?,
        ),
        Space::Box { .. } => Value::Box(
            a.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|x| x.as_f64().map(|v| v as f32).ok_or_else(bad))
                .collect::<Result<_, _>>()?,
        ),
        Space::Graph { .. } => return Err(ActionError::Graph),
    })
}

/// Why a JSON action cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The value does not fit the space.
    #[error("{action} is not an action of {space}")]
    NotAnAction {
        /// The JSON given.
        action: String,
        /// The space, printed.
        space: String,
    },
    /// Graph spaces have no JSON form here.
    #[error("graph actions cannot be replayed")]
    Graph,
}

/// Replays one episode line on `env`; `line` is its 1-based number for messages.
pub fn replay_line(env: &mut dyn Env, text: &str, line: usize) -> Result<Json, ReplayError> {
    let ep: Episode = serde_json::from_str(text).map_err(|e| ReplayError::Malformed {
        line,
        message: e.to_string(),
    })?;
    if let Some(o) = &ep.options
        && !o.is_object()
    {
        return Err(ReplayError::Malformed {
            line,
            message: format!("options must be an object, got {o}"),
        });
    }
    env.reset(ep.seed, ep.options.as_ref())
        .map_err(|source| ReplayError::Env {
            line,
            index: 0,
            source,
        })?;
    let mut steps = Vec::new();
    for (i, a) in ep.actions.iter().enumerate() {
        let action =
            action_from_json(env.action_space(), a).map_err(|message| ReplayError::Malformed {
                line,
                message: format!("action {i}: {message}"),
            })?;
        let s = env.step(&action).map_err(|source| ReplayError::Env {
            line,
            index: i,
            source,
        })?;
        let obs = match &s.obs {
            Value::Box(x) => json!(x),
            other => serde_json::to_value(other).unwrap_or(Json::Null),
        };
        steps.push(json!({"obs": obs, "reward": s.reward, "terminated": s.terminated, "truncated": s.truncated}));
        if s.terminated || s.truncated {
            break;
        }
    }
    Ok(json!({ "steps": steps }))
}
