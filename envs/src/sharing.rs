//! One network for agents whose spaces differ (parameter sharing, as in Terry et al.'s
//! "agent indication" and Christianos et al.'s shared-parameter IPPO): every agent's
//! view is padded to one observation and one action layout, and tells which agent it
//! is.
//!
//! - Observation: the agent's own flat features, zeros up to the longest agent's, then
//!   a one-hot of the agent's index (`[own | 0… | one-hot]`).
//! - Action: a `MultiDiscrete` with as many dimensions as the agent with the most, each
//!   as wide as the widest agent's there (a `Discrete(n)` agent has one dimension of
//!   `n`). The mask allows, per agent, only its own values: in its dimensions the values
//!   its space has (and its own mask allows), in the dimensions it does not have only 0.
//!
//! Because the padding is always zero and the one-hot constant, a network trained on
//! padded views equals, for each agent, a smaller one over the agent's own observation
//! and actions: the first layer's rows of the agent's features, its one-hot row folded
//! into the bias, the policy head's columns of the agent's values
//! ([`SharedLayout::own_logits`] names them). So a shared run still exports a plain
//! bundle per agent.

use crate::env::{Env, EnvError, Info, ObsSlot, Step, StepInto};
use crate::space::{Space, Value};
use serde_json::Value as Json;

/// The padded layout of a set of agents' spaces.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedLayout {
    /// The longest agent observation.
    own_dim: usize,
    /// Agents (the one-hot's length).
    agents: usize,
    /// The padded action dimensions' widths.
    nvec: Vec<u64>,
}

/// An action space's dimensions' widths (`Discrete(n)`: one of `n`).
fn widths(space: &Space) -> Option<Vec<u64>> {
    match space {
        Space::Discrete { n } => Some(vec![*n]),
        Space::MultiDiscrete { nvec } => Some(nvec.clone()),
        _ => None,
    }
}

/// A space's kind, for errors.
fn kind(space: &Space) -> &'static str {
    match space {
        Space::Discrete { .. } => "Discrete",
        Space::MultiDiscrete { .. } => "MultiDiscrete",
        Space::Box { .. } => "a Box",
        Space::Graph { .. } => "a graph",
    }
}

impl SharedLayout {
    /// The layout of agents with these `(name, observation, action)` spaces, in order
    /// (an agent's index is its place here). Observations must be flat boxes and
    /// actions `Discrete` or `MultiDiscrete`; the error names the agent that is not.
    pub fn new(env: &str, agents: &[(&str, &Space, &Space)]) -> Result<SharedLayout, EnvError> {
        let refuse = |agent: &str, reason: String| EnvError::Config {
            env: env.to_string(),
            field: format!("agent {agent}"),
            reason,
        };
        if agents.is_empty() {
            return Err(EnvError::Config {
                env: env.to_string(),
                field: "agents".into(),
                reason: "parameter sharing needs at least one agent".into(),
            });
        }
        let (mut own_dim, mut nvec) = (0, Vec::<u64>::new());
        for (agent, obs, act) in agents {
            match obs {
                Space::Box { .. } => own_dim = own_dim.max(obs.flat_dim().unwrap_or(0)),
                other => {
                    return Err(refuse(
                        agent,
                        format!(
                            "parameter sharing pads flat observations, and this one is {}",
                            kind(other)
                        ),
                    ));
                }
            }
            let w = widths(act).ok_or_else(|| {
                refuse(
                    agent,
                    format!(
                        "parameter sharing pads Discrete and MultiDiscrete actions, not {}",
                        kind(act)
                    ),
                )
            })?;
            for (c, &n) in w.iter().enumerate() {
                match nvec.get_mut(c) {
                    Some(m) => *m = (*m).max(n),
                    None => nvec.push(n),
                }
            }
        }
        Ok(SharedLayout {
            own_dim,
            agents: agents.len(),
            nvec,
        })
    }

    /// Floats in a padded observation: the longest agent's, plus the one-hot.
    pub fn obs_dim(&self) -> usize {
        self.own_dim + self.agents
    }

    /// The padded action space.
    pub fn action_space(&self) -> Space {
        Space::MultiDiscrete {
            nvec: self.nvec.clone(),
        }
    }

    /// The index of agent `k`'s one-hot feature in a padded observation.
    pub fn indicator(&self, k: usize) -> usize {
        self.own_dim + k
    }

    /// Which of the padded action space's logits (one block per dimension, in order)
    /// are the logits of an agent whose own action space is `own`, in `own`'s order.
    pub fn own_logits(&self, own: &Space) -> Vec<usize> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        let own = widths(own).unwrap_or_default();
        for (c, &n) in self.nvec.iter().enumerate() {
            if let Some(&m) = own.get(c) {
                out.extend(offset..offset + m as usize);
            }
            offset += n as usize;
        }
        out
    }

    /// Agent `k`'s view padded to this layout.
    pub fn wrap(&self, k: usize, inner: Box<dyn Env>) -> Result<Padded, EnvError> {
        let own_action = inner.action_space().clone();
        let own = widths(&own_action)
            .filter(|w| w.len() <= self.nvec.len() && w.iter().zip(&self.nvec).all(|(a, b)| a <= b))
            .ok_or_else(|| EnvError::Config {
                env: inner.id().to_string(),
                field: "action_space".into(),
                reason: format!(
                    "{own_action:?} does not fit the shared layout {:?}",
                    self.nvec
                ),
            })?;
        let own_dim = match inner.observation_space() {
            s @ Space::Box { .. } if s.flat_dim().is_some_and(|d| d <= self.own_dim) => {
                s.flat_dim().unwrap_or(0)
            }
            other => {
                return Err(EnvError::Config {
                    env: inner.id().to_string(),
                    field: "observation_space".into(),
                    reason: format!(
                        "{} does not fit the shared layout's {} floats",
                        kind(other),
                        self.own_dim
                    ),
                });
            }
        };
        if k >= self.agents {
            return Err(EnvError::Config {
                env: inner.id().to_string(),
                field: "agent".into(),
                reason: format!("agent index {k} of a layout for {} agents", self.agents),
            });
        }
        let (mut low, mut high) = (vec![0.0; self.obs_dim()], vec![0.0; self.obs_dim()]);
        if let Space::Box {
            low: l, high: h, ..
        } = inner.observation_space()
        {
            low[..own_dim].copy_from_slice(l);
            high[..own_dim].copy_from_slice(h);
        }
        high[self.indicator(k)] = 1.0;
        low[self.indicator(k)] = 1.0;
        let mut padded = Padded {
            observation_space: Space::Box {
                shape: vec![self.obs_dim()],
                low,
                high,
            },
            action_space: self.action_space(),
            own,
            own_discrete: matches!(own_action, Space::Discrete { .. }),
            own_dim,
            indicator: self.indicator(k),
            mask: vec![false; self.nvec.iter().sum::<u64>() as usize],
            nvec: self.nvec.clone(),
            inner,
        };
        padded.update_mask();
        Ok(padded)
    }
}

/// One agent's view padded to a [`SharedLayout`] (made by [`SharedLayout::wrap`]).
pub struct Padded {
    inner: Box<dyn Env>,
    observation_space: Space,
    action_space: Space,
    nvec: Vec<u64>,
    /// The agent's own action dimensions' widths.
    own: Vec<u64>,
    own_discrete: bool,
    own_dim: usize,
    indicator: usize,
    mask: Vec<bool>,
}

impl Padded {
    /// The padded mask from the inner env's: its values where it has them, nothing
    /// else but 0 in the dimensions it lacks.
    fn update_mask(&mut self) {
        let inner = self.inner.action_mask();
        let (mut at, mut inner_at) = (0usize, 0usize);
        for (c, &n) in self.nvec.iter().enumerate() {
            let block = &mut self.mask[at..at + n as usize];
            match self.own.get(c) {
                Some(&m) => {
                    for (v, flag) in block.iter_mut().enumerate() {
                        *flag = v < m as usize
                            && inner
                                .is_none_or(|mask| mask.get(inner_at + v).copied().unwrap_or(true));
                    }
                    inner_at += m as usize;
                }
                None => {
                    block.fill(false);
                    block[0] = true;
                }
            }
            at += n as usize;
        }
    }

    /// The agent's own action for a padded one; an error for values outside its own
    /// space (the mask forbids them).
    fn own_action(&self, action: &Value) -> Result<Value, EnvError> {
        let invalid = |reason: String| EnvError::InvalidAction {
            env: self.inner.id().to_string(),
            reason,
        };
        let Value::MultiDiscrete(a) = action else {
            return Err(invalid(format!(
                "expected a padded MultiDiscrete, got {action:?}"
            )));
        };
        if a.len() != self.nvec.len() {
            return Err(invalid(format!(
                "{} dimensions, the shared layout has {}",
                a.len(),
                self.nvec.len()
            )));
        }
        for (c, &v) in a.iter().enumerate() {
            let width = self.own.get(c).map_or(1, |&m| m as i64);
            if !(0..width).contains(&v) {
                return Err(invalid(format!(
                    "dimension {c} is {v}; this agent's values there are 0..{width}"
                )));
            }
        }
        Ok(if self.own_discrete {
            Value::Discrete(a[0])
        } else {
            Value::MultiDiscrete(a[..self.own.len()].to_vec())
        })
    }

    /// Pads the row whose first `own_dim` floats the inner env wrote.
    fn pad(&self, row: &mut [f32]) {
        row[self.own_dim..].fill(0.0);
        row[self.indicator] = 1.0;
    }

    fn padded(&self, obs: Value) -> Result<Value, EnvError> {
        let mut row = vec![0.0; self.observation_space.flat_dim().unwrap_or(0)];
        crate::env::write_obs(
            self.inner.id(),
            obs,
            ObsSlot::Flat(&mut row[..self.own_dim]),
        )?;
        self.pad(&mut row);
        Ok(Value::Box(row))
    }

    fn flat<'a>(&self, slot: ObsSlot<'a>) -> Result<&'a mut [f32], EnvError> {
        match slot {
            ObsSlot::Flat(row) if row.len() == self.observation_space.flat_dim().unwrap_or(0) => {
                Ok(row)
            }
            _ => Err(EnvError::Config {
                env: self.inner.id().to_string(),
                field: "observation".into(),
                reason: "a padded observation needs a flat row of the shared layout's length"
                    .into(),
            }),
        }
    }
}

impl Env for Padded {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        let (obs, info) = self.inner.reset(seed, options)?;
        self.update_mask();
        Ok((self.padded(obs)?, info))
    }

    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let own = self.own_action(action)?;
        let s = self.inner.step(&own)?;
        self.update_mask();
        Ok(Step {
            obs: self.padded(s.obs)?,
            ..s
        })
    }

    fn action_mask(&self) -> Option<&[bool]> {
        Some(&self.mask)
    }

    fn close(&mut self) {
        self.inner.close();
    }

    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let own = self.own_action(action)?;
        let row = self.flat(obs)?;
        let s = self
            .inner
            .step_into(&own, ObsSlot::Flat(&mut row[..self.own_dim]))?;
        self.pad(row);
        self.update_mask();
        Ok(s)
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: ObsSlot<'_>) -> Result<Info, EnvError> {
        let row = self.flat(obs)?;
        let info = self
            .inner
            .reset_into(seed, ObsSlot::Flat(&mut row[..self.own_dim]))?;
        self.pad(row);
        self.update_mask();
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CartPole;

    fn layout() -> SharedLayout {
        let obs3 = Space::uniform_box(vec![3], 0.0, 1.0);
        let obs4 = Space::uniform_box(vec![4], -1.0, 1.0);
        SharedLayout::new(
            "test",
            &[
                ("a", &obs3, &Space::Discrete { n: 5 }),
                ("b", &obs4, &Space::MultiDiscrete { nvec: vec![2, 7] }),
            ],
        )
        .unwrap()
    }

    #[test]
    fn layout_takes_the_widest_of_each_dimension() {
        let l = layout();
        assert_eq!(l.obs_dim(), 4 + 2);
        assert_eq!(l.action_space(), Space::MultiDiscrete { nvec: vec![5, 7] });
        assert_eq!(l.indicator(1), 5);
        // Discrete(5) is the first block; [2, 7] the first two of it and the second.
        assert_eq!(l.own_logits(&Space::Discrete { n: 5 }), vec![0, 1, 2, 3, 4]);
        assert_eq!(
            l.own_logits(&Space::MultiDiscrete { nvec: vec![2, 7] }),
            vec![0, 1, 5, 6, 7, 8, 9, 10, 11]
        );
    }

    #[test]
    fn padded_view_masks_what_the_agent_lacks_and_passes_the_rest_through() {
        // CartPole: 4 floats, Discrete(2), no mask of its own.
        let obs = Space::uniform_box(vec![6], 0.0, 1.0);
        let pole = CartPole::default();
        let l = SharedLayout::new(
            "test",
            &[
                ("pole", pole.observation_space(), pole.action_space()),
                ("other", &obs, &Space::MultiDiscrete { nvec: vec![3, 2] }),
            ],
        )
        .unwrap();
        let mut padded = l.wrap(0, Box::new(CartPole::default())).unwrap();
        let mut plain = CartPole::default();
        let (o, _) = padded.reset(Some(7), None).unwrap();
        let (p, _) = plain.reset(Some(7), None).unwrap();
        let o = o.as_box().to_vec();
        assert_eq!(&o[..4], p.as_box());
        assert_eq!(&o[4..], &[0.0, 0.0, 1.0, 0.0]);
        // Dimension 0: values 0 and 1 of 3; dimension 1 (CartPole has none): only 0.
        assert_eq!(
            padded.action_mask().unwrap(),
            &[true, true, false, true, false]
        );
        let s = padded.step(&Value::MultiDiscrete(vec![1, 0])).unwrap();
        let t = plain.step(&Value::Discrete(1)).unwrap();
        assert_eq!(&s.obs.as_box()[..4], t.obs.as_box());
        assert_eq!(s.reward, t.reward);
        let mut row = vec![9.0; 8];
        padded
            .step_into(&Value::MultiDiscrete(vec![0, 0]), ObsSlot::Flat(&mut row))
            .unwrap();
        let t = plain.step(&Value::Discrete(0)).unwrap();
        assert_eq!(&row[..4], t.obs.as_box());
        assert_eq!(&row[4..], &[0.0, 0.0, 1.0, 0.0]);
        // Values the agent does not have are errors, not panics.
        for bad in [vec![2, 0], vec![0, 1], vec![0]] {
            assert!(matches!(
                padded.step(&Value::MultiDiscrete(bad)),
                Err(EnvError::InvalidAction { .. })
            ));
        }
    }

    #[test]
    fn graph_observations_are_refused_by_agent_name() {
        let graph = Space::Graph {
            node_features: 3,
            edge_features: 1,
        };
        let e = SharedLayout::new(
            "CloudOps-v0",
            &[("scaler", &graph, &Space::Discrete { n: 2 })],
        )
        .unwrap_err();
        assert!(e.to_string().contains("agent scaler"), "{e}");
    }
}
