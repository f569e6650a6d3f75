//! The kubelet's restart policy, for Healing-v0.
//!
//! - A crashed container is restarted after a back-off of 10 s, doubling on each
//!   restart, capped at 300 s; the count resets after 10 minutes of running healthy
//!   (Kubernetes' `CrashLoopBackOff`).
//! - A liveness probe failing `failureThreshold` times in a row (the env's
//!   `probe_failures / 3` feature reaching 1) gets the container restarted, under the
//!   same back-off.
//! - Readiness (out of load balancing while failing) is the simulator's own.
//!
//! It never rolls back a deploy, reschedules or drains: that is where a learned healer
//! can do better. One remedy per env step: of the restarts that are due, the one due
//! longest.

use crate::{ActError, Policy, PolicyContext, Value};
use hale_envs::encoding::{ObservationKind, ReplicaState, replica_row, state_index};

/// Kubernetes' container restart back-off.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// First delay, seconds.
    pub initial_s: f64,
    /// Cap, seconds.
    pub max_s: f64,
    /// Healthy time after which the count resets, seconds.
    pub reset_after_s: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_s: 10.0,
            max_s: 300.0,
            reset_after_s: 600.0,
        }
    }
}

impl Backoff {
    /// Delay before restart number `n` (0-based) since the last reset.
    pub fn delay_s(&self, n: u32) -> f64 {
        (self.initial_s * 2f64.powi(n.min(30) as i32)).min(self.max_s)
    }
}

#[derive(Clone, Debug, Default)]
struct Slot {
    /// Restarts since the last reset.
    restarts: u32,
    /// When the current failure was first seen, if failing.
    failing_since: Option<f64>,
    /// Since when it has looked healthy.
    healthy_since: Option<f64>,
}

/// The kubelet baseline.
pub struct Kubelet {
    slots: Vec<Slot>,
    max_replicas: usize,
    backoff: Backoff,
    interval_s: f64,
    time: f64,
}

/// Features per replica slot in Healing-v0's observation (the kubelet reads the state,
/// presence and probe failures).
const REPLICA_FEATURES: usize = replica_row::FEATURES;

impl Kubelet {
    /// A kubelet for the Healing-v0 env described by `ctx`.
    pub fn new(ctx: &PolicyContext) -> Result<Kubelet, crate::Unfit> {
        let cfg = hale_envs::HealingConfig::from_json(&ctx.config)
            .map_err(|_| crate::Unfit("the kubelet reads a Healing-v0 config"))?;
        if cfg.observation != ObservationKind::Matrix {
            return Err(crate::Unfit("the kubelet reads the matrix observation"));
        }
        let max_replicas = cfg.max_replicas;
        Ok(Kubelet {
            slots: vec![Slot::default(); max_replicas],
            max_replicas,
            backoff: Backoff::default(),
            interval_s: ctx.control_interval_s,
            time: 0.0,
        })
    }
}

impl Policy for Kubelet {
    fn name(&self) -> &str {
        "kubelet"
    }

    fn act(&mut self, obs: &Value, mask: Option<&[bool]>) -> Result<Value, ActError> {
        let x = obs.as_box();
        if x.len() < self.max_replicas * REPLICA_FEATURES {
            return Err(ActError {
                policy: "kubelet".into(),
                reason: format!(
                    "a Healing-v0 observation of at least {} values (its replica rows), got {}",
                    self.max_replicas * REPLICA_FEATURES,
                    x.len()
                ),
            });
        }
        let now = self.time;
        self.time += self.interval_s;
        let mut best: Option<(f64, usize)> = None;
        for k in 0..self.max_replicas {
            let row = &x[k * REPLICA_FEATURES..(k + 1) * REPLICA_FEATURES];
            let slot = &mut self.slots[k];
            if row[replica_row::PRESENT] == 0.0 {
                *slot = Slot::default();
                continue;
            }
            let states = replica_row::STATE..replica_row::STATE + hale_envs::encoding::STATES;
            let state = states
                .clone()
                .find(|&i| row[i] == 1.0)
                .map_or(0, |i| i - replica_row::STATE);
            let probe_failures = row[replica_row::PROBE_FAILURES];
            let crashed = state == state_index(ReplicaState::Crashed);
            let liveness_failed = probe_failures >= 1.0;
            let ready = state == state_index(ReplicaState::Ready) && probe_failures == 0.0;
            if ready {
                slot.failing_since = None;
                let since = *slot.healthy_since.get_or_insert(now);
                if now - since >= self.backoff.reset_after_s {
                    slot.restarts = 0;
                }
                continue;
            }
            slot.healthy_since = None;
            if crashed || liveness_failed {
                let since = *slot.failing_since.get_or_insert(now);
                let due = since + self.backoff.delay_s(slot.restarts);
                let allowed = mask.is_none_or(|m| m[1 + k]);
                if due <= now && allowed && best.is_none_or(|(d, _)| due < d) {
                    best = Some((due, k));
                }
            }
        }
        Ok(match best {
            Some((_, k)) => {
                let slot = &mut self.slots[k];
                slot.restarts += 1;
                slot.failing_since = None;
                Value::Discrete(1 + k as i64)
            }
            None => Value::Discrete(0),
        })
    }

    fn reset(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
        self.time = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_ten_seconds_to_a_five_minute_cap() {
        let b = Backoff::default();
        let seq: Vec<f64> = (0..8).map(|n| b.delay_s(n)).collect();
        assert_eq!(
            seq,
            vec![10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
        );
    }

    fn obs_with(slot0_state: usize, probe: f32) -> Value {
        let mut x = vec![0.0f32; 16 * REPLICA_FEATURES + 8 * 4 + 3 * 3];
        x[0] = 1.0;
        x[1 + slot0_state] = 1.0;
        x[9] = probe;
        Value::Box(x)
    }

    fn kubelet() -> Kubelet {
        Kubelet {
            slots: vec![Slot::default(); 16],
            max_replicas: 16,
            backoff: Backoff::default(),
            interval_s: 10.0,
            time: 0.0,
        }
    }

    #[test]
    fn crash_loop_restart_times_follow_the_back_off_and_reset_after_ten_minutes() {
        // A replica that crashes again as soon as it is restarted: restarts come 10,
        // 20, 40, 80, 160, 300, 300 s after each crash is seen (10 s control steps).
        let mut k = kubelet();
        let mut restarts = vec![];
        for step in 0..200 {
            let a = k.act(&obs_with(5, 0.0), None).unwrap();
            if a == Value::Discrete(1) {
                restarts.push(step as f64 * 10.0);
            }
        }
        let gaps: Vec<f64> = restarts.windows(2).map(|w| w[1] - w[0]).collect();
        // Each gap is the back-off plus the step in which the restart was issued.
        assert_eq!(restarts[0], 10.0);
        assert_eq!(&gaps[..6], &[30.0, 50.0, 90.0, 170.0, 310.0, 310.0]);
        // Ten minutes of health resets the count: the next crash waits 10 s again.
        let mut k = kubelet();
        for _ in 0..2 {
            k.act(&obs_with(5, 0.0), None).unwrap();
        }
        assert_eq!(k.slots[0].restarts, 1);
        for _ in 0..61 {
            assert_eq!(k.act(&obs_with(2, 0.0), None).unwrap(), Value::Discrete(0));
        }
        assert_eq!(k.slots[0].restarts, 0);
        assert_eq!(k.act(&obs_with(5, 0.0), None).unwrap(), Value::Discrete(0));
        assert_eq!(k.act(&obs_with(5, 0.0), None).unwrap(), Value::Discrete(1));
    }

    #[test]
    fn liveness_failures_restart_a_hung_replica() {
        let mut k = kubelet();
        // Hung but probes not yet failed three times: nothing.
        assert_eq!(
            k.act(&obs_with(4, 2.0 / 3.0), None).unwrap(),
            Value::Discrete(0)
        );
        // Three failures: due after the 10 s back-off.
        assert_eq!(k.act(&obs_with(4, 1.0), None).unwrap(), Value::Discrete(0));
        assert_eq!(k.act(&obs_with(4, 1.0), None).unwrap(), Value::Discrete(1));
    }
}
