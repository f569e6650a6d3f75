//! Reading Scaling-v0's matrix observation and writing its target actions.

use crate::PolicyContext;
use hale_envs::Value;
use serde_json::Value as Json;

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

/// Decodes Scaling-v0 observations (matrix, 9 features per service) and encodes
/// target-count actions. Requires the env's `action = "target"`: baselines set counts.
#[derive(Clone, Debug)]
pub struct ScalingView {
    /// Services.
    pub services: usize,
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
}

impl ScalingView {
    /// The view for an env context; says why it does not apply.
    pub fn new(ctx: &PolicyContext) -> Result<ScalingView, crate::Unfit> {
        let get = |k: &str| ctx.config.get(k);
        if get("action").and_then(Json::as_str) != Some("target") {
            return Err(crate::Unfit(
                "baselines set replica counts: configure the env with \"action\": \"target\"",
            ));
        }
        if get("observation")
            .and_then(Json::as_str)
            .is_some_and(|o| o != "matrix")
        {
            return Err(crate::Unfit("baselines read the matrix observation"));
        }
        let n = ctx
            .observation_space
            .flat_dim()
            .ok_or(crate::Unfit("observation is not a matrix"))?
            / 9;
        Ok(ScalingView {
            services: n,
            min_replicas: get("min_replicas").and_then(Json::as_u64).unwrap_or(1) as u32,
            max_replicas: get("max_replicas").and_then(Json::as_u64).unwrap_or(20) as u32,
        })
    }

    /// Per-service view of an observation (all zeros before the first scrape).
    pub fn read(&self, obs: &Value) -> Vec<ServiceView> {
        let x = obs.as_box();
        let m = self.max_replicas as f64;
        (0..self.services)
            .map(|s| {
                let f = |k: usize| x.get(s * 9 + k).copied().unwrap_or(0.0) as f64;
                ServiceView {
                    rate: (f(0) * 10.0).exp() - 1.0,
                    p95_over_slo: f(2),
                    cpu: f(5),
                    ready: (f(6) * m).round() as u32,
                    booting: (f(7) * m).round() as u32,
                    desired: (f(8) * m).round() as u32,
                }
            })
            .collect()
    }

    /// The action setting these counts (clamped to the env's bounds).
    pub fn action(&self, counts: &[u32]) -> Value {
        Value::MultiDiscrete(
            counts
                .iter()
                .map(|&c| {
                    (c.clamp(self.min_replicas, self.max_replicas) - self.min_replicas) as i64
                })
                .collect(),
        )
    }
}
