//! Reading Scaling-v0's matrix observation and writing its target actions.

use crate::PolicyContext;
use hale_envs::encoding::{ObservationKind, service};
use hale_envs::{ScalingAction, Value};

/// One service as the monitoring system saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServiceView {
    /// Requests per second.
    pub rate: f64,
    /// Worker-slot (CPU) utilisation of the ready replicas, 0…1.
    pub cpu: f64,
    /// p95 latency over the service's SLO bound.
    pub p95_over_slo: f64,
    /// Ready replicas.
    pub ready: u32,
    /// Booting or pending replicas.
    pub booting: u32,
    /// Desired replicas.
    pub desired: u32,
}

/// Decodes Scaling-v0 observations (matrix, `v1` or `v2` features per service) and encodes
/// target-count actions. Requires the env's `action = "target"`: baselines set counts.
#[derive(Clone, Debug)]
pub struct ScalingView {
    /// Services.
    pub services: usize,
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// With vertical sizing, the choice that keeps each service's CPU request (the
    /// baselines scale replica counts only).
    pub keep_cpu: Option<i64>,
    /// Features per service in the observation (the `v1` ones come first).
    pub stride: usize,
}

impl ScalingView {
    /// The view for an env context; says why it does not apply.
    pub fn new(ctx: &PolicyContext) -> Result<ScalingView, crate::Unfit> {
        let cfg = hale_envs::ScalingConfig::from_json(&ctx.config)
            .map_err(|_| crate::Unfit("baselines read a Scaling-v0 config"))?;
        if cfg.action != ScalingAction::Target {
            return Err(crate::Unfit(
                "baselines set replica counts: configure the env with \"action\": \"target\"",
            ));
        }
        if cfg.observation != ObservationKind::Matrix {
            return Err(crate::Unfit("baselines read the matrix observation"));
        }
        let stride = cfg.features.per_service();
        let n = ctx
            .observation_space
            .flat_dim()
            .ok_or(crate::Unfit("observation is not a matrix"))?
            / stride;
        // The env checks that a non-empty `cpu_levels` holds 1.0.
        Ok(ScalingView {
            services: n,
            min_replicas: cfg.min_replicas,
            max_replicas: cfg.max_replicas,
            keep_cpu: cfg.actions().base_cpu_choice(),
            stride,
        })
    }

    /// Per-service view of an observation (all zeros before the first scrape).
    pub fn read(&self, obs: &Value) -> Vec<ServiceView> {
        let x = obs.as_box();
        let m = self.max_replicas as f64;
        (0..self.services)
            .map(|s| {
                let f = |k: usize| x.get(s * self.stride + k).copied().unwrap_or(0.0) as f64;
                ServiceView {
                    rate: (f(service::RATE) * 10.0).exp() - 1.0,
                    p95_over_slo: f(service::P95),
                    cpu: f(service::CPU),
                    ready: (f(service::READY) * m).round() as u32,
                    booting: (f(service::BOOTING) * m).round() as u32,
                    desired: (f(service::DESIRED) * m).round() as u32,
                }
            })
            .collect()
    }

    /// The action setting these counts (clamped to the env's bounds).
    /// With vertical sizing every service keeps the scenario's CPU request.
    pub fn action(&self, counts: &[u32]) -> Value {
        let replicas = counts
            .iter()
            .map(|&c| (c.clamp(self.min_replicas, self.max_replicas) - self.min_replicas) as i64);
        let sizes = self
            .keep_cpu
            .map(|k| vec![k; counts.len()])
            .unwrap_or_default();
        Value::MultiDiscrete(replicas.chain(sizes).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_keep_the_scenarios_cpu_request_when_the_env_sizes_cpu() {
        let ctx = |config: serde_json::Value| {
            let env = hale_envs::make("Scaling-v0", &config).unwrap();
            PolicyContext::new("Scaling-v0", &config, env.as_ref()).unwrap()
        };
        let plain = ScalingView::new(&ctx(serde_json::json!({
            "scenario": "three-tier", "action": "target"
        })))
        .unwrap();
        assert_eq!(
            plain.action(&[3, 0, 25]),
            Value::MultiDiscrete(vec![2, 0, 19])
        );
        let sized = ScalingView::new(&ctx(serde_json::json!({
            "scenario": "three-tier", "action": "target", "cpu_levels": [0.25, 0.5, 1.0, 2.0]
        })))
        .unwrap();
        // Counts as before, then level 1.0 (choice 2) for every service.
        assert_eq!(
            sized.action(&[3, 1, 2]),
            Value::MultiDiscrete(vec![2, 0, 1, 2, 2, 2])
        );
    }

    /// The baselines read the v1 features wherever they sit: the HPA acts the same on
    /// an env with the v2 features, step for step.
    #[test]
    fn the_hpa_acts_the_same_on_v1_and_v2_features() {
        let run = |features: &str| {
            let config = serde_json::json!({"scenario": "three-tier", "action": "target",
                "control_interval_s": 15, "episode_s": 1200, "fidelity": "fluid",
                "features": features});
            let mut env = hale_envs::make("Scaling-v0", &config).unwrap();
            let ctx = PolicyContext::new("Scaling-v0", &config, env.as_ref()).unwrap();
            let mut hpa = crate::make_policy("hpa", &ctx).unwrap();
            let (mut obs, _) = env.reset(Some(4), None).unwrap();
            let mut actions = vec![];
            loop {
                let a = hpa.act(&obs, None).unwrap();
                let s = env.step(&a).unwrap();
                actions.push(a);
                obs = s.obs;
                if s.truncated {
                    return actions;
                }
            }
        };
        let v1 = run("v1");
        assert!(v1.iter().any(|a| a != &v1[0]), "the HPA should act");
        assert_eq!(v1, run("v2"));
    }
}
