//! The Kubernetes Horizontal Pod Autoscaler, as `kube-controller-manager` computes it.
//!
//! Per service and per sync (one env step; run the env with a 15 s control interval for
//! Kubernetes' default sync period):
//!
//! 1. **Replica calculator** (`replica_calculator.go`, `GetResourceReplicas`): with
//!    `usage ratio = utilisation / target`, if no pod is unready (while scaling up) or
//!    missing metrics, the answer is the current count within tolerance 0.1 and
//!    otherwise `ceil(ratio × ready pods)`. Otherwise the average is recomputed with
//!    unready pods at 0 % (scale-up only) and pods missing metrics at 100 % of target
//!    (scale down) or 0 % (scale up); a recomputed ratio within tolerance, or on the
//!    other side of 1, keeps the current count, as does a result that moves against it.
//!    Booting pods count as unready; pods neither ready nor booting (crashed, hung) as
//!    missing metrics.
//! 2. **Stabilisation** (`stabilizeRecommendationWithBehaviors`): the recommendation is
//!    clamped between the lowest over the scale-up window (0 s) and the highest over the
//!    scale-down window (300 s) of past recommendations, including this one.
//! 3. **Rate limits** (`convertDesiredReplicasWithBehaviorRate`, default behaviour):
//!    scale-up at most `max(100 %, 4 pods)` per 15 s, scale-down at most 100 % per 15 s,
//!    then `min_replicas..=max_replicas`.

use crate::scaling_obs::{ScalingView, ServiceView};
use crate::{ActError, Policy, Value};
use std::collections::VecDeque;

/// HPA settings (the `HorizontalPodAutoscaler` spec and controller flags).
#[derive(Clone, Debug, PartialEq)]
pub struct HpaConfig {
    /// Target average CPU utilisation, 0…1 (`averageUtilization` / 100).
    pub target: f64,
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    /// `behavior.scaleDown.stabilizationWindowSeconds`.
    pub scale_down_window_s: f64,
    /// `behavior.scaleUp.stabilizationWindowSeconds`.
    pub scale_up_window_s: f64,
    /// Scale-up policies' period.
    pub period_s: f64,
    /// Scale-up `Percent` policy.
    pub scale_up_percent: f64,
    /// Scale-up `Pods` policy.
    pub scale_up_pods: u32,
    /// Scale-down `Percent` policy.
    pub scale_down_percent: f64,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            target: 0.5,
            tolerance: 0.1,
            scale_down_window_s: 300.0,
            scale_up_window_s: 0.0,
            period_s: 15.0,
            scale_up_percent: 100.0,
            scale_up_pods: 4,
            scale_down_percent: 100.0,
        }
    }
}

/// The replica calculator for one service: the count the metrics ask for.
pub fn desired_from_metrics(cfg: &HpaConfig, current: u32, s: &ServiceView) -> u32 {
    let ready = s.ready as f64;
    let unready = s.booting as f64;
    let missing = current.saturating_sub(s.ready + s.booting) as f64;
    if ready == 0.0 {
        // No metrics at all: the controller cannot compute a ratio and keeps the scale.
        return current;
    }
    let usage_ratio = s.cpu / cfg.target;
    let scale_up_with_unready = unready > 0.0 && usage_ratio > 1.0;
    if !scale_up_with_unready && missing == 0.0 {
        if (1.0 - usage_ratio).abs() <= cfg.tolerance {
            return current;
        }
        return (usage_ratio * ready).ceil() as u32;
    }
    let mut total = s.cpu * ready;
    let mut pods = ready;
    if missing > 0.0 {
        if usage_ratio < 1.0 {
            total += missing * cfg.target;
        }
        pods += missing;
    }
    if scale_up_with_unready {
        pods += unready;
    }
    let new_ratio = total / pods / cfg.target;
    if (1.0 - new_ratio).abs() <= cfg.tolerance
        || (usage_ratio < 1.0 && new_ratio > 1.0)
        || (usage_ratio > 1.0 && new_ratio < 1.0)
    {
        return current;
    }
    let new_replicas = (new_ratio * pods).ceil() as u32;
    if (new_ratio < 1.0 && new_replicas > current) || (new_ratio > 1.0 && new_replicas < current) {
        return current;
    }
    new_replicas
}

/// One autoscaler per service, with its recommendation history.
pub struct Hpa {
    view: ScalingView,
    cfg: HpaConfig,
    sync_s: f64,
    /// (time, recommendation) per service.
    history: Vec<VecDeque<(f64, u32)>>,
    time: f64,
}

impl Hpa {
    /// An HPA for every service, synced once per env step of `sync_s` seconds.
    pub fn new(view: ScalingView, cfg: HpaConfig, sync_s: f64) -> Hpa {
        Hpa {
            history: vec![VecDeque::new(); view.services],
            view,
            cfg,
            sync_s,
            time: 0.0,
        }
    }

    /// One sync of one service: the replica count to set.
    pub fn sync_service(&mut self, i: usize, s: &ServiceView) -> u32 {
        let cfg = &self.cfg;
        let current = s.desired;
        let desired = desired_from_metrics(cfg, current, s)
            .clamp(self.view.min_replicas, self.view.max_replicas);
        // Stabilisation over past recommendations (the new one included).
        let now = self.time;
        let h = &mut self.history[i];
        h.push_back((now, desired));
        let keep = cfg.scale_down_window_s.max(cfg.scale_up_window_s);
        while h.front().is_some_and(|&(t, _)| t <= now - keep) {
            h.pop_front();
        }
        let (mut up, mut down) = (desired, desired);
        for &(t, r) in h.iter() {
            if t > now - cfg.scale_up_window_s || t == now {
                up = up.min(r);
            }
            if t > now - cfg.scale_down_window_s || t == now {
                down = down.max(r);
            }
        }
        let stabilised = current.max(up).min(down);
        // Rate limits. With one sync per period, the period starts at `current`.
        let start = current as f64;
        if stabilised > current {
            let limit = (start + cfg.scale_up_pods as f64)
                .max((start * (1.0 + cfg.scale_up_percent / 100.0)).ceil())
                as u32;
            stabilised
                .min(limit.max(current))
                .min(self.view.max_replicas)
        } else if stabilised < current {
            let limit = (start * (1.0 - cfg.scale_down_percent / 100.0))
                .floor()
                .max(0.0) as u32;
            stabilised
                .max(limit.min(current))
                .max(self.view.min_replicas)
        } else {
            current
        }
    }
}

impl Policy for Hpa {
    fn name(&self) -> &str {
        "hpa"
    }

    fn act(&mut self, obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        let services = self.view.read(obs);
        let counts: Vec<u32> = services
            .iter()
            .enumerate()
            .map(|(i, s)| self.sync_service(i, s))
            .collect();
        self.time += self.sync_s;
        Ok(self.view.action(&counts))
    }

    fn reset(&mut self) {
        self.history.iter_mut().for_each(VecDeque::clear);
        self.time = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(cpu: f64, ready: u32, booting: u32, desired: u32) -> ServiceView {
        ServiceView {
            cpu,
            ready,
            booting,
            desired,
            ..Default::default()
        }
    }

    fn cfg(target: f64) -> HpaConfig {
        HpaConfig {
            target,
            ..HpaConfig::default()
        }
    }

    #[test]
    fn worked_examples_of_the_kubernetes_documentation() {
        // "if the current metric value is 200m, and the desired value is 100m, the number
        // of replicas will be doubled" — and 50m halves them.
        assert_eq!(desired_from_metrics(&cfg(0.5), 1, &svc(1.0, 1, 0, 1)), 2);
        assert_eq!(desired_from_metrics(&cfg(0.5), 4, &svc(1.0, 4, 0, 4)), 8);
        assert_eq!(desired_from_metrics(&cfg(0.5), 4, &svc(0.25, 4, 0, 4)), 2);
        // Within the 0.1 tolerance nothing changes: ratio 1.09 and 0.91.
        assert_eq!(desired_from_metrics(&cfg(0.5), 5, &svc(0.545, 5, 0, 5)), 5);
        assert_eq!(desired_from_metrics(&cfg(0.5), 5, &svc(0.455, 5, 0, 5)), 5);
        // Just outside: ratio 1.2 × 5 ready = 6.
        assert_eq!(desired_from_metrics(&cfg(0.5), 5, &svc(0.6, 5, 0, 5)), 6);
    }

    #[test]
    fn unready_and_missing_pods_are_treated_as_the_docs_say() {
        // Scaling up with 2 unready pods: they count as 0 %. 2 ready at 100 % of a 50 %
        // target (ratio 2) → recomputed over 4 pods: 50 % → ratio 1.0, within
        // tolerance: no change.
        assert_eq!(desired_from_metrics(&cfg(0.5), 4, &svc(1.0, 2, 2, 4)), 4);
        // 2 ready at 150 % (ratio 3) with 2 unready: recomputed 75 % → ratio 1.5 over 4
        // pods → 6.
        assert_eq!(desired_from_metrics(&cfg(0.5), 4, &svc(1.5, 2, 2, 4)), 6);
        // Scaling down with a pod missing metrics: it counts as 100 % of target.
        // 3 ready at 10 % (ratio 0.2), 1 missing at 50 % → (0.3 + 0.5) / 4 = 20 % →
        // ratio 0.4 → ceil(0.4 × 4) = 2.
        assert_eq!(desired_from_metrics(&cfg(0.5), 4, &svc(0.1, 3, 0, 4)), 2);
        // Scaling up with a pod missing metrics: it counts as 0 %. 3 ready at 60 %
        // (ratio 1.2), 1 missing → 45 % → ratio 0.9: the direction reverses: no change.
        assert_eq!(desired_from_metrics(&cfg(0.5), 4, &svc(0.6, 3, 0, 4)), 4);
        // No ready pod, no metrics: keep the scale.
        assert_eq!(desired_from_metrics(&cfg(0.5), 3, &svc(0.0, 0, 3, 3)), 3);
    }

    fn hpa(min: u32, max: u32) -> Hpa {
        Hpa::new(
            ScalingView {
                services: 1,
                min_replicas: min,
                max_replicas: max,
                keep_cpu: None,
                stride: hale_envs::encoding::SERVICE_FEATURES,
            },
            HpaConfig::default(),
            15.0,
        )
    }

    #[test]
    fn the_stabilisation_window_holds_a_scale_down_for_five_minutes() {
        let mut h = hpa(1, 20);
        // At 4 replicas and 100 % (ratio 2) the HPA asks for 8...
        assert_eq!(h.sync_service(0, &svc(1.0, 4, 0, 4)), 8);
        h.time += 15.0;
        // ...then the load drops to 10 % on 8 ready (ratio 0.2 → 2): the 8 recommended
        // 15 s ago holds for the 300 s window.
        let mut timeline = vec![];
        for _ in 0..21 {
            timeline.push(h.sync_service(0, &svc(0.1, 8, 0, 8)));
            h.time += 15.0;
        }
        // Recommendation 8 was made at t = 0; at t = 300 it leaves the window.
        assert_eq!(&timeline[..19], &[8; 19]);
        assert_eq!(&timeline[19..], &[2, 2]);
    }

    #[test]
    fn scale_up_is_limited_to_double_or_four_pods_per_period() {
        let mut h = hpa(1, 100);
        // 1 replica at 500 % of target wants 10: limited to max(2 × 1, 1 + 4) = 5.
        assert_eq!(h.sync_service(0, &svc(2.5, 1, 0, 1)), 5);
        h.time += 15.0;
        // 10 replicas at 200 % want 40: limited to max(20, 14) = 20.
        assert_eq!(h.sync_service(0, &svc(1.0, 10, 0, 10)), 20);
        // Bounds hold.
        let mut h = hpa(2, 6);
        assert_eq!(h.sync_service(0, &svc(1.0, 4, 0, 4)), 6);
    }

    #[test]
    fn step_load_replica_timeline() {
        // A scripted step load on one service of capacity 1 unit per replica: the
        // utilisation seen is load / ready (capped at 1); booting takes one sync.
        // Load 1.5 units until t = 60 s, then 6 units, then 1.2 units from t = 300 s.
        let mut h = hpa(1, 20);
        let (mut ready, mut booting, mut desired) = (3u32, 0u32, 3u32);
        let mut timeline = vec![];
        for k in 0..50 {
            let t = k as f64 * 15.0;
            let load = if t < 60.0 {
                1.5
            } else if t < 300.0 {
                6.0
            } else {
                1.2
            };
            let cpu = (load / ready as f64).min(1.0);
            let next = h.sync_service(0, &svc(cpu, ready, booting, desired));
            h.time += 15.0;
            // Pods asked for in this sync are ready at the next one; removals are at once.
            ready = (ready + booting).min(next);
            booting = next.saturating_sub(ready);
            desired = next;
            timeline.push(next);
        }
        // Derivation: at 3 ready and 50 % (ratio 1.0) nothing changes until t = 60
        // (k = 4): 6/3 → 100 %, ratio 2 → 6 (limit max(3 + 4, 6) = 7). At k = 5, 3 ready
        // at 100 % and 3 booting counted at 0 % → 50 %, ratio 1.0: hold 6. At k = 6, 6
        // ready at 100 % → 12; k = 7 holds the same way; from k = 8, 12 ready at 50 %
        // hold. From t = 300 (k = 20): 1.2/12 = 10 %, ratio 0.2 → ceil(2.4) = 3, but the
        // 12s recommended up to t = 285 stay in the 300 s window until t = 585 (k = 39).
        let expected: Vec<u32> = (0..50)
            .map(|k| match k {
                0..=3 => 3,
                4..=5 => 6,
                6..=38 => 12,
                _ => 3,
            })
            .collect();
        assert_eq!(timeline, expected);
    }
}
