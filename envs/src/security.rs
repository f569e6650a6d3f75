//! `Security-v0`: defend a network against a scripted attacker.
//!
//! Two modes. Any other `scenario` (a builtin such as `microservices-20`, or a path)
//! is **cloud mode**: a simulated microservice cloud with a `[security]` section,
//! serving its load while the attacker moves through it (see [`crate::intrusion`] for
//! its observation, actions and reward; `step_s`, `fidelity`, `slo_weight` and
//! `restart_cost` apply there only).
//!
//! `scenario = "cage2"` (the default) is **CAGE Challenge 2** as [`hale_sim::cage2`]
//! reproduces it: 13 hosts in three subnets, the attacker
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
//! defenders; the table does not tell it from an SSH login). With
//! `observation = "table+scans"`, 26 more, a memory of the table's own scan activity
//! (the "scan state" of CAGE 2's winning defender, Cardiff's): per host, whether a
//! scan was seen on it at an earlier step, and whether it is the host scanned most
//! recently. A scan is seen only in the step it happens; the attacker exploits the
//! host it scanned, often steps later, so without this memory the policy cannot tell
//! which host is next.
//!
//! Reward per step, CybORG's: minus the value of every host where the attacker is root
//! (Enterprise hosts and the operational server 1, User0 0, the others 0.1), −10 while
//! the operational service is stopped, −1 per restore. `info` has the parts. An episode
//! is `max_steps` steps (100; CAGE 2 scores 30, 50 and 100) and ends truncated.

use crate::cloud;
use crate::env::{Env, EnvError, Info, ObsSlot, SecurityInfo, Step, StepInto, check_action};
use crate::intrusion::{CloudDefence, Layout};
use crate::space::{GraphValue, Space, Value};
use hale_sim::cage2::{self, BLUE_ACTIONS, Cage2, OBS_LEN, Red};
use hale_sim::rng::{self, Stream};
use hale_sim::{AttackerKind, Fidelity};
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
    /// The table and the memory of scans (78 floats).
    #[serde(rename = "table+scans")]
    TableScans,
    /// Cloud mode: the monitoring's signals per replica slot, service and edge (the
    /// cloud envs' name for their flat view).
    #[serde(rename = "matrix")]
    Flat,
    /// Cloud mode: the same on the service graph (for a GNN).
    #[serde(rename = "graph")]
    Graph,
}

/// Configuration of `Security-v0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The network: `cage2`, or a cloud scenario with a `[security]` section
    /// (builtin name or path).
    pub scenario: String,
    /// The attacker.
    pub red: Attacker,
    /// Steps per episode.
    pub max_steps: u32,
    /// What the defender observes (default: `table` in CAGE 2 mode, `matrix` in cloud
    /// mode).
    pub observation: Option<SecurityObservation>,
    /// Cloud mode: simulated seconds per step.
    pub step_s: f64,
    /// Cloud mode: the traffic model (`fluid` by default, for speed; `request` for
    /// every request as an event).
    pub fidelity: Option<Fidelity>,
    /// Cloud mode: weight of the SLO term (per SLO, the share of the step in
    /// violation).
    pub slo_weight: f64,
    /// Cloud mode: the reward's cost of each replica restart the defender causes (a
    /// restore, each replica of a rotation); CAGE 2's is 1. A defender trained with
    /// more restores less; evaluate it with 1, the defence reward hale reports.
    pub restart_cost: f64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            scenario: "cage2".into(),
            red: Attacker::BLine,
            max_steps: 100,
            observation: None,
            step_s: 10.0,
            fidelity: None,
            slo_weight: 1.0,
            restart_cost: 1.0,
        }
    }
}

/// The game an episode plays. An env holds one for its life, so the variants'
/// sizes do not matter; CAGE 2's stays inline, off the heap, for its speed.
#[expect(
    clippy::large_enum_variant,
    reason = "one per env, never moved in a loop"
)]
enum Mode {
    /// CAGE Challenge 2 (`None` before the first reset).
    Cage2(Option<Cage2>),
    /// A simulated cloud.
    Cloud(Box<CloudDefence>),
}

/// The defender's env.
pub struct Security {
    cfg: SecurityConfig,
    observation: SecurityObservation,
    mode: Mode,
    seeds: Stream,
    obs_space: Space,
    act_space: Space,
    mask: Vec<bool>,
    /// CAGE 2 mode, `table+scans`: per host, 0 never scanned, 1 scanned at an earlier
    /// step, 2 the host scanned most recently.
    scans: [u8; cage2::HOSTS.len()],
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
        if cfg.max_steps == 0 {
            return Err(bad("max_steps", "must be at least 1".into()));
        }
        if cfg.scenario != "cage2" {
            let observation = cfg.observation.unwrap_or(SecurityObservation::Flat);
            if !matches!(
                observation,
                SecurityObservation::Flat | SecurityObservation::Graph
            ) {
                return Err(bad(
                    "observation",
                    format!(
                        "{observation:?} is CAGE 2's; cloud mode ({}) observes \"matrix\" or \"graph\"",
                        cfg.scenario
                    ),
                ));
            }
            let game = CloudDefence::new(
                &cfg.scenario,
                Some(cfg.fidelity.unwrap_or(Fidelity::Fluid)),
                cfg.step_s,
                cfg.max_steps,
                cfg.slo_weight,
                cfg.restart_cost,
            )?;
            let (mut obs_space, act_space) = game.spaces();
            if observation == SecurityObservation::Graph {
                obs_space = Space::Graph {
                    node_features: crate::intrusion::GRAPH_NODE_FEATURES,
                    edge_features: crate::intrusion::GRAPH_EDGE_FEATURES,
                };
            }
            return Ok(Security {
                mask: vec![false; game.layout().actions()],
                mode: Mode::Cloud(Box::new(game)),
                observation,
                obs_space,
                act_space,
                seeds: Stream::from_key(0),
                scans: [0; cage2::HOSTS.len()],
                cfg,
            });
        }
        if cfg.restart_cost != 1.0 {
            return Err(bad(
                "restart_cost",
                format!(
                    "{} is cloud mode's: CAGE 2 keeps its reward table (−1 per restore)",
                    cfg.restart_cost
                ),
            ));
        }
        let observation = cfg.observation.unwrap_or(SecurityObservation::Table);
        if matches!(
            observation,
            SecurityObservation::Flat | SecurityObservation::Graph
        ) {
            return Err(bad(
                "observation",
                "cage2 observes \"table\", \"table+alerts\" or \"table+scans\" (\"matrix\" and \"graph\" are cloud mode's)".into(),
            ));
        }
        let len = obs_len(observation);
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
            mode: Mode::Cage2(None),
            observation,
            seeds: Stream::from_key(0),
            scans: [0; cage2::HOSTS.len()],
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SecurityConfig {
        &self.cfg
    }

    /// The CAGE 2 game under way (`None` before the first reset, and in cloud mode):
    /// for baselines and tests that need the hidden truth.
    pub fn game(&self) -> Option<&Cage2> {
        match &self.mode {
            Mode::Cage2(g) => g.as_ref(),
            Mode::Cloud(_) => None,
        }
    }

    /// Cloud mode's simulation under way (`None` before the first reset, and in
    /// CAGE 2 mode): for tests that need the hidden truth.
    pub fn simulation(&self) -> Option<&hale_sim::Simulation> {
        match &self.mode {
            Mode::Cloud(c) => c.sim(),
            Mode::Cage2(_) => None,
        }
    }

    /// Cloud mode's layout of actions and observations (`None` in CAGE 2 mode).
    pub fn cloud_layout(&self) -> Option<Layout> {
        match &self.mode {
            Mode::Cloud(c) => Some(c.layout()),
            Mode::Cage2(_) => None,
        }
    }

    /// Cloud mode's scenario (`None` in CAGE 2 mode).
    pub fn cloud_scenario(&self) -> Option<&std::sync::Arc<hale_sim::Scenario>> {
        match &self.mode {
            Mode::Cloud(c) => Some(c.scenario()),
            Mode::Cage2(_) => None,
        }
    }

    /// Cloud mode: the replica a replica slot refers to now.
    pub fn slot_replica(&self, k: usize) -> Option<hale_sim::ReplicaId> {
        match &self.mode {
            Mode::Cloud(c) => c.replica(k),
            Mode::Cage2(_) => None,
        }
    }

    fn write_obs(&self, out: &mut [f32]) {
        let g = match &self.mode {
            Mode::Cloud(c) => return c.write_obs(out),
            Mode::Cage2(Some(g)) => g,
            Mode::Cage2(None) => return,
        };
        g.observation(&mut out[..OBS_LEN]);
        match self.observation {
            SecurityObservation::TableAlerts => {
                for (o, a) in out[OBS_LEN..].iter_mut().zip(g.alerts()) {
                    *o = f32::from(u8::from(a));
                }
            }
            SecurityObservation::TableScans => {
                for (o, &s) in out[OBS_LEN..].chunks_exact_mut(2).zip(&self.scans) {
                    o[0] = f32::from(u8::from(s == 1));
                    o[1] = f32::from(u8::from(s == 2));
                }
            }
            _ => {}
        }
    }

    /// Folds this step's scan activity (the table's activity column) into the scan
    /// memory.
    fn remember_scans(&mut self) {
        let Mode::Cage2(Some(g)) = &self.mode else {
            return;
        };
        let activity = g.activity();
        if activity.contains(&cage2::Activity::Scan) {
            for (s, a) in self.scans.iter_mut().zip(activity) {
                *s = match (*a, *s) {
                    (cage2::Activity::Scan, _) => 2,
                    (_, 2) => 1,
                    (_, s) => s,
                };
            }
        }
    }

    fn obs_len(&self) -> usize {
        match &self.mode {
            Mode::Cloud(c) => c.layout().obs_len(),
            Mode::Cage2(_) => obs_len(self.observation),
        }
    }

    fn obs(&self) -> Value {
        if let Mode::Cloud(c) = &self.mode
            && self.observation == SecurityObservation::Graph
        {
            let mut g = GraphValue::default();
            c.write_graph(&mut g);
            return Value::Graph(g);
        }
        let mut v = vec![0.0; self.obs_len()];
        self.write_obs(&mut v);
        Value::Box(v)
    }

    fn update_mask(&mut self) {
        match &self.mode {
            Mode::Cage2(Some(g)) => g.write_mask(&mut self.mask),
            Mode::Cloud(c) => c.write_mask(&mut self.mask),
            Mode::Cage2(None) => {}
        }
    }

    /// Checks and plays one step; the reward, whether the episode is over, the info.
    fn advance(&mut self, action: &Value) -> Result<(f64, bool, Info), EnvError> {
        let max = self.cfg.max_steps;
        let steps = match &self.mode {
            Mode::Cage2(Some(g)) => g.steps(),
            Mode::Cloud(c) if c.sim().is_some() => u64::from(c.steps()),
            _ => return Err(EnvError::NeedsReset(ID.into())),
        };
        if steps >= u64::from(max) {
            return Err(EnvError::EpisodeOver(ID.into()));
        }
        check_action(ID, &self.act_space, Some(&self.mask), action)?;
        let Value::Discrete(a) = action else {
            unreachable!("checked above")
        };
        let game = match &mut self.mode {
            Mode::Cage2(Some(g)) => g,
            Mode::Cloud(c) => {
                let out = c.step(*a as usize)?;
                self.update_mask();
                return Ok(out);
            }
            Mode::Cage2(None) => unreachable!("checked above"),
        };
        let o = game.step(*a as usize);
        let over = game.steps() >= u64::from(self.cfg.max_steps);
        self.remember_scans();
        self.update_mask();
        let info = Info {
            security: Some(SecurityInfo {
                reward_confidentiality: o.confidentiality,
                reward_availability: o.availability,
                reward_action_cost: o.action_cost,
                restarts: (-o.action_cost).round() as u32,
                reward_slo: 0.0,
                exfiltrated_mb: 0.0,
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
        SecurityObservation::Table | SecurityObservation::Flat | SecurityObservation::Graph => {
            OBS_LEN
        }
        SecurityObservation::TableAlerts => OBS_LEN + cage2::HOSTS.len(),
        SecurityObservation::TableScans => OBS_LEN + 2 * cage2::HOSTS.len(),
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
        self.scans = [0; cage2::HOSTS.len()];
        match &mut self.mode {
            Mode::Cage2(g) => *g = Some(Cage2::new(red, s)),
            Mode::Cloud(c) => c.reset(
                s,
                match red {
                    Red::BLine => AttackerKind::BLine,
                    Red::Meander => AttackerKind::Meander,
                    Red::Sleep => AttackerKind::None,
                },
            ),
        }
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
            ObsSlot::Graph(g) if self.observation == SecurityObservation::Graph => {
                if let Mode::Cloud(c) = &self.mode {
                    c.write_graph(g);
                }
            }
            ObsSlot::Flat(row)
                if self.observation != SecurityObservation::Graph
                    && row.len() == self.obs_len() =>
            {
                self.write_obs(row)
            }
            other => {
                return Err(EnvError::Config {
                    env: ID.into(),
                    field: "observation".into(),
                    reason: format!("{} floats, written to {other:?}", self.obs_len()),
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
        let e = Security::new(&json!({"scenario": "three-tier"}))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("scenario") && e.contains("[security]"), "{e}");
        let e = Security::new(&json!({"scenario": "microservices-20", "observation": "table"}))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("observation") && e.contains("matrix"), "{e}");
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

    /// The scan memory keeps what the table showed for one step: every host
    /// scanned so far, and which was scanned last; a reset forgets it.
    #[test]
    fn the_scan_memory_follows_the_tables_scans() {
        let mut env =
            Security::new(&json!({"observation": "table+scans", "red": "meander"})).unwrap();
        assert_eq!(env.observation_space().flat_dim(), Some(78));
        let sleep = Value::Discrete(0);
        let mut seen_scans = 0;
        for episode in 0..3 {
            let (obs, _) = env.reset(Some(episode), None).unwrap();
            let Value::Box(obs) = obs else { unreachable!() };
            assert!(obs[OBS_LEN..].iter().all(|&x| x == 0.0), "a reset forgets");
            // Per host: scanned at an earlier step (and not since), scanned last.
            let (mut earlier, mut last) = ([false; 13], None::<usize>);
            for _ in 0..40 {
                let Value::Box(obs) = env.step(&sleep).unwrap().obs else {
                    unreachable!()
                };
                let scanned: Vec<usize> = (0..13)
                    .filter(|&h| obs[h * 4] == 1.0 && obs[h * 4 + 1] == 0.0)
                    .collect();
                assert!(scanned.len() <= 1, "one red action per step");
                if let Some(&h) = scanned.first() {
                    seen_scans += 1;
                    if let Some(l) = last {
                        earlier[l] = true;
                    }
                    earlier[h] = false;
                    last = Some(h);
                }
                for h in 0..13 {
                    let bit = |b: bool| f32::from(u8::from(b));
                    assert_eq!(obs[OBS_LEN + 2 * h], bit(earlier[h]), "host {h}: earlier");
                    assert_eq!(
                        obs[OBS_LEN + 2 * h + 1],
                        bit(last == Some(h)),
                        "host {h}: last"
                    );
                }
            }
        }
        assert!(
            seen_scans > 5,
            "Meander scans within 40 steps ({seen_scans})"
        );
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
