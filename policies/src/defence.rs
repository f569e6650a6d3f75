//! Intrusion-response baselines for Security-v0: CAGE 2's scripted defenders.
//!
//! - `react-restore` and `react-remove` are CybORG's `BlueReactRestoreAgent` and
//!   `BlueReactRemoveAgent`: monitor; after a monitoring step, queue every host (but
//!   User0, the attacker's way in) where a new attacker process was reported; restore
//!   (or remove) the queued hosts one per step, first in first out, then monitor again.
//!   With `observation = "table+alerts"` they read the alerts, as CybORG's agents read
//!   the raw observation, and reproduce CybORG's scores; on the plain table they react
//!   to every `Exploit` activity, SSH logins included (a stronger variant).
//! - `decoy-first` restores what is reported as above, and otherwise fills the
//!   servers the attacker wants (Op_Server0, then Enterprise2, 1, 0) with decoys, the
//!   ones that catch the attacker's preferred exploits first, then monitors: the
//!   decoy-then-react pattern of the challenge's leading heuristics.
//!
//! In cloud mode (`scenario` other than `cage2`) the same names play the same rules
//! on replicas: `react-restore` restores every replica slot that raised an alert,
//! one per step, first in first out; `decoy-first` also puts a decoy in each service
//! on the way to the data tier (entries first, as the attacker meets them), one per
//! step when nothing is queued. `react-remove` is CAGE 2's only.

use crate::{ActError, Policy, PolicyContext, Unfit};
use hale_envs::intrusion::{Layout, REPLICA_FEATURES};
use hale_envs::{Space, Value};
use hale_sim::cage2::{BlueAction, Decoy, HOSTS, OBS_LEN, OBS_PER_HOST};

/// Hosts in the order CybORG's monitoring reports them (its Velociraptor clients).
const REPORT_ORDER: [usize; 13] = [8, 9, 10, 11, 12, 1, 2, 3, 0, 7, 4, 5, 6];
const USER0: usize = 8;
const MONITOR: i64 = 1;
/// The servers a decoy-first defender protects, most valuable first.
const DECOY_HOSTS: [usize; 4] = [7, 3, 2, 1];
/// Decoys by the weight of the exploit they catch (the attacker prefers heavier ones).
const DECOY_ORDER: [Decoy; 8] = [
    Decoy::Femitter,
    Decoy::HarakaSmtp,
    Decoy::Tomcat,
    Decoy::Apache,
    Decoy::Vsftpd,
    Decoy::Smss,
    Decoy::Svchost,
    Decoy::Sshd,
];

/// What a reaction does to a reported host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Restore it from its image.
    Restore,
    /// Kill the attacker's reported processes.
    Remove,
}

/// Reads Security-v0's observation: which hosts to react to.
#[derive(Clone, Copy, Debug)]
struct Reader {
    alerts: bool,
    /// The observation's length (the table, and the alerts or the scan memory).
    len: usize,
}

impl Reader {
    fn new(ctx: &PolicyContext) -> Result<Reader, Unfit> {
        if ctx.env_id != "Security-v0" {
            return Err(Unfit("it defends Security-v0 only"));
        }
        match &ctx.observation_space {
            // The table, alone or followed by the scan memory (`table+scans`), which
            // the rules do not read.
            Space::Box { shape, .. }
                if shape == &[OBS_LEN] || shape == &[OBS_LEN + 2 * HOSTS.len()] =>
            {
                Ok(Reader {
                    alerts: false,
                    len: shape[0],
                })
            }
            Space::Box { shape, .. } if shape == &[OBS_LEN + HOSTS.len()] => Ok(Reader {
                alerts: true,
                len: shape[0],
            }),
            _ => Err(Unfit(
                "it reads the table observation (observation = \"table\", \"table+alerts\" or \"table+scans\")",
            )),
        }
    }

    fn reported(&self, obs: &[f32], h: usize) -> bool {
        if self.alerts {
            obs[OBS_LEN + h] > 0.5
        } else {
            // Activity `Exploit` is [1, 1].
            obs[h * OBS_PER_HOST] > 0.5 && obs[h * OBS_PER_HOST + 1] > 0.5
        }
    }

    /// Appends to `queue` the hosts reported in `obs` (but User0), in report order,
    /// that it does not hold yet.
    fn enqueue(&self, obs: &[f32], queue: &mut Vec<usize>) {
        for h in REPORT_ORDER {
            if h != USER0 && self.reported(obs, h) && !queue.contains(&h) {
                queue.push(h);
            }
        }
    }

    fn obs<'a>(&self, policy: &str, obs: &'a Value) -> Result<&'a [f32], ActError> {
        let want = self.len;
        match obs {
            Value::Box(x) if x.len() == want => Ok(x),
            _ => Err(ActError {
                policy: policy.into(),
                reason: format!("expected Security-v0's table of {want} floats"),
            }),
        }
    }
}

/// CybORG's React-Restore / React-Remove.
pub struct React {
    reader: Reader,
    reaction: Reaction,
    queue: Vec<usize>,
    last_monitor: bool,
}

impl React {
    /// A reactive defender for the env of `ctx`.
    pub fn new(ctx: &PolicyContext, reaction: Reaction) -> Result<React, Unfit> {
        Ok(React {
            reader: Reader::new(ctx)?,
            reaction,
            queue: vec![],
            last_monitor: false,
        })
    }
}

impl Policy for React {
    fn name(&self) -> &str {
        match self.reaction {
            Reaction::Restore => "react-restore",
            Reaction::Remove => "react-remove",
        }
    }

    fn act(&mut self, obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        let x = self.reader.obs(self.name(), obs)?;
        if self.last_monitor {
            self.reader.enqueue(x, &mut self.queue);
        }
        if self.queue.is_empty() {
            self.last_monitor = true;
            return Ok(Value::Discrete(MONITOR));
        }
        self.last_monitor = false;
        let h = self.queue.remove(0);
        let a = match self.reaction {
            Reaction::Restore => BlueAction::Restore(h),
            Reaction::Remove => BlueAction::Remove(h),
        };
        Ok(Value::Discrete(a.index() as i64))
    }

    fn reset(&mut self) {
        self.queue.clear();
        self.last_monitor = false;
    }
}

/// Decoys on the servers first, restores for what is reported.
pub struct DecoyFirst {
    reader: Reader,
    queue: Vec<usize>,
}

impl DecoyFirst {
    /// A decoy-first defender for the env of `ctx`.
    pub fn new(ctx: &PolicyContext) -> Result<DecoyFirst, Unfit> {
        Ok(DecoyFirst {
            reader: Reader::new(ctx)?,
            queue: vec![],
        })
    }
}

impl Policy for DecoyFirst {
    fn name(&self) -> &str {
        "decoy-first"
    }

    fn act(&mut self, obs: &Value, mask: Option<&[bool]>) -> Result<Value, ActError> {
        let x = self.reader.obs("decoy-first", obs)?;
        self.reader.enqueue(x, &mut self.queue);
        if !self.queue.is_empty() {
            let h = self.queue.remove(0);
            return Ok(Value::Discrete(BlueAction::Restore(h).index() as i64));
        }
        let allowed = |a: usize| mask.is_none_or(|m| m.get(a).copied().unwrap_or(false));
        for h in DECOY_HOSTS {
            for d in DECOY_ORDER {
                let a = BlueAction::Decoy(d, h).index();
                if allowed(a) {
                    return Ok(Value::Discrete(a as i64));
                }
            }
        }
        Ok(Value::Discrete(MONITOR))
    }

    fn reset(&mut self) {
        self.queue.clear();
    }
}

/// Whether `ctx` is Security-v0 in cloud mode.
pub fn cloud_mode(ctx: &PolicyContext) -> bool {
    ctx.env_id == "Security-v0"
        && ctx.config["scenario"]
            .as_str()
            .is_some_and(|s| s != "cage2")
}

/// Cloud mode's React-Restore and decoy-first.
pub struct CloudDefender {
    layout: Layout,
    /// Services to put decoys in, in order (empty for React-Restore).
    decoys: Vec<usize>,
    queue: Vec<usize>,
}

impl CloudDefender {
    /// A cloud-mode defender for the env of `ctx`; with `decoys`, decoy-first.
    pub fn new(ctx: &PolicyContext, decoys: bool) -> Result<CloudDefender, Unfit> {
        let env = hale_envs::Security::new(&ctx.config)
            .map_err(|_| Unfit("it needs a Security-v0 config that loads"))?;
        let (Some(layout), Some(sc)) = (env.cloud_layout(), env.cloud_scenario()) else {
            return Err(Unfit("it defends Security-v0's cloud mode"));
        };
        let model = sc
            .security
            .as_ref()
            .ok_or(Unfit("the scenario has no [security] section"))?;
        let mut order: Vec<usize> = (0..layout.services)
            .filter(|&s| model.hops_to_data[s] != u32::MAX)
            .collect();
        // Entries first, then the way down to the data.
        order.sort_by_key(|&s| {
            (
                !model.entry.contains(&s),
                std::cmp::Reverse(model.hops_to_data[s]),
                s,
            )
        });
        Ok(CloudDefender {
            layout,
            decoys: if decoys { order } else { vec![] },
            queue: vec![],
        })
    }
}

impl Policy for CloudDefender {
    fn name(&self) -> &str {
        if self.decoys.is_empty() {
            "react-restore"
        } else {
            "decoy-first"
        }
    }

    fn act(&mut self, obs: &Value, mask: Option<&[bool]>) -> Result<Value, ActError> {
        let l = self.layout;
        let x = match obs {
            Value::Box(x) if x.len() == l.obs_len() => x,
            _ => {
                return Err(ActError {
                    policy: self.name().into(),
                    reason: format!(
                        "expected Security-v0's cloud observation of {} floats",
                        l.obs_len()
                    ),
                });
            }
        };
        for k in 0..l.replicas {
            if x[k * REPLICA_FEATURES] > 0.5 && !self.queue.contains(&k) {
                self.queue.push(k);
            }
        }
        let allowed = |a: usize| mask.is_none_or(|m| m.get(a).copied().unwrap_or(false));
        while !self.queue.is_empty() {
            let k = self.queue.remove(0);
            let a = 1 + 2 * l.replicas + k;
            if allowed(a) {
                return Ok(Value::Discrete(a as i64));
            }
        }
        for &s in &self.decoys {
            let a = 1 + 3 * l.replicas + l.services + s;
            if allowed(a) {
                return Ok(Value::Discrete(a as i64));
            }
        }
        Ok(Value::Discrete(0))
    }

    fn reset(&mut self) {
        self.queue.clear();
    }
}
