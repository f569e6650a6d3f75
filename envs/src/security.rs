//! `Security-v0`: defend a network against a scripted attacker.
//!
//! `scenario = "cage2"` (the default, and for now the only mode) is CAGE Challenge 2
//! as [`hale_sim::cage2`] reproduces it: 13 hosts in three subnets, the attacker
//! `red = "b_line"` (straight for the operational server), `"meander"` (subnet by
//! subnet), `"sleep"`, or `"mixed"` (B_line or Meander, drawn per episode), and the
//! defender's 145 actions (CybORG's `EnumActionWrapper` order):
//!
//! | index | action |
//! |---|---|
//! | 0 | sleep |
//! | 1 | monitor |
//! | 2 + h | analyse host h |
//! | 15 + h | remove host h |
//! | 28 + 13 d + h | decoy d on host h (Apache, Femitter, HarakaSMPT, Smss, SSHD, Svchost, Tomcat, Vsftpd) |
//! | 132 + h | restore host h |
//!
//! with hosts in table order (Defender, Enterprise0–2, Op_Host0–2, Op_Server0,
//! User0–4). `action_mask()` leaves out the decoys that cannot start (their port is
//! taken, or the host runs the other system); everything else is always allowed.
//!
//! Observation (`Box`, 52 floats in {0, 1}): CybORG's `ChallengeWrapper` vector, per
//! host the activity this step (`None`, `Scan`, `Exploit`) and what the defender's
//! table believes (`No`, `Unknown`, `User`, `Privileged`). With
//! `observation = "table+alerts"`, 13 more: per host, whether the monitoring reported a
//! new attacker process this step (what CybORG's raw observation shows its scripted
//! defenders; the table does not tell it from an SSH login).
//!
//! Reward per step, CybORG's: minus the value of every host where the attacker is root
//! (Enterprise hosts and the operational server 1, User0 0, the others 0.1), −10 while
//! the operational service is stopped, −1 per restore. `info` has the parts. An episode
//! is `max_steps` steps (100; CAGE 2 scores 30, 50 and 100) and ends truncated.

use crate::cloud;
use crate::env::{Env, EnvError, Info, ObsSlot, SecurityInfo, Step, StepInto, check_action};
use crate::space::{Space, Value};
use hale_sim::cage2::{self, BLUE_ACTIONS, Cage2, OBS_LEN, Red};
use hale_sim::rng::{self, Stream};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

const ID: &str = "Security-v0";

/// Which attacker plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attacker {
    /// CAGE 2's B_line.
    BLine,
    /// CAGE 2's Meander.
    Meander,
    /// No attacker.
    Sleep,
    /// B_line or Meander, drawn per episode from its seed (even odds).
    Mixed,
}

/// What the defender observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityObservation {
    /// CAGE 2's table (52 floats).
    #[serde(rename = "table")]
    Table,
    /// The table and the process alerts (65 floats).
    #[serde(rename = "table+alerts")]
    TableAlerts,
}

/// Configuration of `Security-v0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The network: `cage2`.
    pub scenario: String,
    /// The attacker.
    pub red: Attacker,
    /// Steps per episode.
    pub max_steps: u32,
    /// What the defender observes.
    pub observation: SecurityObservation,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            scenario: "cage2".into(),
            red: Attacker::BLine,
            max_steps: 100,
            observation: SecurityObservation::Table,
        }
    }
}

/// The defender's env.
pub struct Security {
    cfg: SecurityConfig,
    game: Option<Cage2>,
    seeds: Stream,
    obs_space: Space,
    act_space: Space,
    mask: Vec<bool>,
}

impl Security {
    /// `Security-v0` with `config` (a JSON object of [`SecurityConfig`] fields, or null).
    pub fn new(config: &Json) -> Result<Security, EnvError> {
        let cfg: SecurityConfig = cloud::parse_config(ID, config)?;
        let bad = |field: &str, reason: String| EnvError::Config {
            env: ID.into(),
            field: field.into(),
            reason,
        };
        if cfg.scenario != "cage2" {
            return Err(bad(
                "scenario",
                format!(
                    "{:?} is not a network Security-v0 has (cage2: CAGE Challenge 2's)",
                    cfg.scenario
                ),
            ));
        }
        if cfg.max_steps == 0 {
            return Err(bad("max_steps", "must be at least 1".into()));
        }
        let len = obs_len(cfg.observation);
        Ok(Security {
            obs_space: Space::Box {
                low: vec![0.0; len],
                high: vec![1.0; len],
                shape: vec![len],
            },
            act_space: Space::Discrete {
                n: BLUE_ACTIONS as u64,
            },
            mask: vec![true; BLUE_ACTIONS],
            game: None,
            seeds: Stream::from_key(0),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SecurityConfig {
        &self.cfg
    }

    /// The game under way (`None` before the first reset): for baselines and tests
    /// that need the hidden truth.
    pub fn game(&self) -> Option<&Cage2> {
        self.game.as_ref()
    }

    fn write_obs(&self, out: &mut [f32]) {
        let Some(g) = &self.game else { return };
        g.observation(&mut out[..OBS_LEN]);
        if self.cfg.observation == SecurityObservation::TableAlerts {
            for (o, a) in out[OBS_LEN..].iter_mut().zip(g.alerts()) {
                *o = f32::from(u8::from(a));
            }
        }
    }

    fn obs(&self) -> Value {
        let mut v = vec![0.0; obs_len(self.cfg.observation)];
        self.write_obs(&mut v);
        Value::Box(v)
    }

    fn update_mask(&mut self) {
        if let Some(g) = &self.game {
            g.write_mask(&mut self.mask);
        }
    }

    /// Checks and plays one step; the reward, whether the episode is over, the info.
    fn advance(&mut self, action: &Value) -> Result<(f64, bool, Info), EnvError> {
        let game = self.game.as_mut().ok_or(EnvError::NeedsReset(ID.into()))?;
        if game.steps() >= u64::from(self.cfg.max_steps) {
            return Err(EnvError::EpisodeOver(ID.into()));
        }
        check_action(ID, &self.act_space, Some(&self.mask), action)?;
        let Value::Discrete(a) = action else {
            unreachable!("checked above")
        };
        let o = game.step(*a as usize);
        let over = game.steps() >= u64::from(self.cfg.max_steps);
        self.update_mask();
        let info = Info {
            security: Some(SecurityInfo {
                reward_confidentiality: o.confidentiality,
                reward_availability: o.availability,
                reward_action_cost: o.action_cost,
                red_action: o.red.kind(),
                red_success: o.red_success,
                footholds: o.footholds,
                privileged: o.privileged,
                acted: o.blue_acted,
            }),
            ..Info::default()
        };
        Ok((o.reward, over, info))
    }
}

fn obs_len(o: SecurityObservation) -> usize {
    match o {
        SecurityObservation::Table => OBS_LEN,
        SecurityObservation::TableAlerts => OBS_LEN + cage2::HOSTS.len(),
    }
}

impl Env for Security {
    fn id(&self) -> &str {
        ID
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
        let s = cloud::episode_seed(ID, &mut self.seeds, 0x5ec2, seed, options)?;
        let red = match self.cfg.red {
            Attacker::BLine => Red::BLine,
            Attacker::Meander => Red::Meander,
            Attacker::Sleep => Red::Sleep,
            Attacker::Mixed if rng::unit(rng::key(s, 0x3ed)) < 0.5 => Red::BLine,
            Attacker::Mixed => Red::Meander,
        };
        self.game = Some(Cage2::new(red, s));
        self.update_mask();
        Ok((self.obs(), Info::default()))
    }

    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let (reward, truncated, info) = self.advance(action)?;
        Ok(Step {
            obs: self.obs(),
            reward,
            terminated: false,
            truncated,
            info,
        })
    }

    fn action_mask(&self) -> Option<&[bool]> {
        Some(&self.mask)
    }

    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let (reward, truncated, info) = self.advance(action)?;
        match obs {
            ObsSlot::Flat(row) if row.len() == obs_len(self.cfg.observation) => self.write_obs(row),
            other => {
                return Err(EnvError::Config {
                    env: ID.into(),
                    field: "observation".into(),
                    reason: format!(
                        "{} floats, written to {other:?}",
                        obs_len(self.cfg.observation)
                    ),
                });
            }
        }
        Ok(StepInto {
            reward,
            terminated: false,
            truncated,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bad_config_names_its_field() {
        let e = Security::new(&json!({"scenario": "microservices-20"}))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("scenario") && e.contains("cage2"), "{e}");
        let e = Security::new(&json!({"red": "apt29"}))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("apt29") && e.contains("b_line"), "{e}");
        let e = Security::new(&json!({"max_steps": 0}))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("max_steps"), "{e}");
    }

    #[test]
    fn an_episode_is_max_steps_long_and_sleeping_against_b_line_costs_what_cage2_says() {
        let mut env = Security::new(&json!({"max_steps": 30})).unwrap();
        let (obs, _) = env.reset(Some(4), None).unwrap();
        assert_eq!(obs, Value::Box(vec![0.0; 52]));
        let mut total = 0.0;
        for t in 0..30 {
            let s = env.step(&Value::Discrete(0)).unwrap();
            total += s.reward;
            assert_eq!(s.truncated, t == 29);
            let i = s.info.security.unwrap();
            assert!(
                (i.reward_confidentiality + i.reward_availability + i.reward_action_cost
                    - s.reward)
                    .abs()
                    < 1e-9
            );
        }
        assert!(total < -100.0, "{total}");
        assert!(matches!(
            env.step(&Value::Discrete(0)),
            Err(EnvError::EpisodeOver(_))
        ));
    }

    #[test]
    fn the_alerts_observation_adds_a_bit_per_host() {
        let mut env = Security::new(&json!({"observation": "table+alerts"})).unwrap();
        assert_eq!(env.observation_space().flat_dim(), Some(65));
        env.reset(Some(0), None).unwrap();
        // A decoy whose port is taken is masked: Apache on Enterprise1 (port 80).
        let apache_ent1 = 2 + 2 * 13 + 2;
        assert!(!env.action_mask().unwrap()[apache_ent1]);
        assert!(env.step(&Value::Discrete(apache_ent1 as i64)).is_err());
    }
}
