//! `CartPole-v1`: Gymnasium's classic control task, with its exact dynamics.
//!
//! State in f64, observations in f32, Euler integration with τ = 0.02 s, termination
//! at |x| > 2.4 or |θ| > 12°, reward 1 per step (including the terminating one), and the
//! 500-step limit as truncation (added by the registry's time-limit wrapper, as
//! Gymnasium registers it). `reset` draws the state from U(−0.05, 0.05); the option
//! `{"state": [x, x_dot, theta, theta_dot]}` sets it instead.

use crate::env::{Env, EnvError, Info, ObsSlot, Step, StepInto, check_action};
use crate::space::{Space, Value};
use hale_sim::rng::{self, Stream, StreamId};
use serde_json::Value as Json;

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
const LENGTH: f64 = 0.5; // half the pole's length
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;

/// The cart-pole balancing task.
pub struct CartPole {
    state: Option<[f64; 4]>,
    steps_beyond_terminated: Option<u32>,
    rng: Stream,
    obs_space: Space,
    act_space: Space,
}

impl Default for CartPole {
    fn default() -> Self {
        let high = [
            X_THRESHOLD as f32 * 2.0,
            f32::MAX,
            THETA_THRESHOLD as f32 * 2.0,
            f32::MAX,
        ];
        CartPole {
            state: None,
            steps_beyond_terminated: None,
            rng: Stream::new(0, StreamId::Policy),
            obs_space: Space::Box {
                low: high.iter().map(|h| -h).collect(),
                high: high.to_vec(),
                shape: vec![4],
            },
            act_space: Space::Discrete { n: 2 },
        }
    }
}

impl CartPole {
    fn obs(&self) -> [f32; 4] {
        self.state.unwrap_or_default().map(|x| x as f32)
    }

    /// One step of the dynamics; returns (reward, terminated).
    fn advance(&mut self, action: i64) -> Result<(f64, bool), EnvError> {
        let Some([x, x_dot, theta, theta_dot]) = self.state else {
            return Err(EnvError::NeedsReset("CartPole-v1".into()));
        };
        let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
        let (sintheta, costheta) = theta.sin_cos();
        // Same association as Gymnasium's numpy code (np.square), for bit-level agreement.
        let temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
        let thetaacc = (GRAVITY * sintheta - costheta * temp)
            / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS));
        let xacc = temp - POLE_MASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
        let state = [
            x + TAU * x_dot,
            x_dot + TAU * xacc,
            theta + TAU * theta_dot,
            theta_dot + TAU * thetaacc,
        ];
        self.state = Some(state);
        let terminated = state[0] < -X_THRESHOLD
            || state[0] > X_THRESHOLD
            || state[2] < -THETA_THRESHOLD
            || state[2] > THETA_THRESHOLD;
        let reward = if !terminated {
            1.0
        } else if self.steps_beyond_terminated.is_none() {
            self.steps_beyond_terminated = Some(0);
            1.0
        } else {
            // Stepping a terminated episode: Gymnasium warns and gives 0.
            *self.steps_beyond_terminated.as_mut().unwrap_or(&mut 0) += 1;
            0.0
        };
        Ok((reward, terminated))
    }

    fn action_of(&self, action: &Value) -> Result<i64, EnvError> {
        check_action("CartPole-v1", &self.act_space, None, action)?;
        match action {
            Value::Discrete(a) => Ok(*a),
            _ => unreachable!("check_action accepts only Discrete here"),
        }
    }
}

impl Env for CartPole {
    fn id(&self) -> &str {
        "CartPole-v1"
    }

    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        if let Some(seed) = seed {
            self.rng = Stream::from_key(rng::key(seed, 0xca27_901e));
        }
        let state = match options.and_then(|o| o.get("state")) {
            Some(s) => {
                let err = |reason: &str| EnvError::Config {
                    env: "CartPole-v1".into(),
                    field: "options.state".into(),
                    reason: reason.into(),
                };
                let v: Vec<f64> = serde_json::from_value(s.clone())
                    .map_err(|e| err(&format!("expected [x, x_dot, theta, theta_dot]: {e}")))?;
                let s: [f64; 4] = v
                    .try_into()
                    .map_err(|v: Vec<f64>| err(&format!("expected 4 numbers, got {}", v.len())))?;
                if s.iter().any(|x| !x.is_finite()) {
                    return Err(err("values must be finite"));
                }
                s
            }
            None => std::array::from_fn(|_| -0.05 + 0.1 * self.rng.unit()),
        };
        if let Some(o) = options
            && let Some(k) = o.as_object().and_then(|m| m.keys().find(|k| *k != "state"))
        {
            return Err(EnvError::Config {
                env: "CartPole-v1".into(),
                field: format!("options.{k}"),
                reason: "unknown option (known: state)".into(),
            });
        }
        self.state = Some(state);
        self.steps_beyond_terminated = None;
        Ok((Value::Box(self.obs().to_vec()), Info::default()))
    }

    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let a = self.action_of(action)?;
        let (reward, terminated) = self.advance(a)?;
        Ok(Step {
            obs: Value::Box(self.obs().to_vec()),
            reward,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }

    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let ObsSlot::Flat(row @ [_, _, _, _]) = obs else {
            return Err(EnvError::Config {
                env: "CartPole-v1".into(),
                field: "observation".into(),
                reason: format!("4 floats, written to {obs:?}"),
            });
        };
        let a = self.action_of(action)?;
        let (reward, terminated) = self.advance(a)?;
        row.copy_from_slice(&self.obs());
        Ok(StepInto {
            reward,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
}
