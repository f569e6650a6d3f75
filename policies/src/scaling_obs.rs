//! Reading Scaling-v0's matrix observation and writing its target actions.

use crate::PolicyContext;
use hale_envs::encoding::{ObservationKind, SERVICE_FEATURES, service};
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

/// Decodes Scaling-v0 observations (matrix, `SERVICE_FEATURES` per service) and encodes
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
        let n = ctx
            .observation_space
            .flat_dim()
            .ok_or(crate::Unfit("observation is not a matrix"))?
            / SERVICE_FEATURES;
        Ok(ScalingView {
            services: n,
            min_replicas: cfg.min_replicas,
            max_replicas: cfg.max_replicas,
        })
    }

    /// Per-service view of an observation (all zeros before the first scrape).
    pub fn read(&self, obs: &Value) -> Vec<ServiceView> {
        let x = obs.as_box();
        let m = self.max_replicas as f64;
        (0..self.services)
            .map(|s| {
                let f = |k: usize| x.get(s * SERVICE_FEATURES + k).copied().unwrap_or(0.0) as f64;
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
