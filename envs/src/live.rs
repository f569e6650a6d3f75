//! The cloud envs' observations from live readings: the encoding `Scaling-v0` uses,
//! public so that the actuation adapter builds, from Prometheus and the target's
//! state, exactly the observation a policy was trained on.

use crate::cloud::SERVICE_FEATURES;

/// What monitoring says about one service, in the units the env's simulator reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServiceReading {
    /// Requests per second reaching the service.
    pub request_rate: f64,
    /// Latency percentiles of answered requests, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Failed over answered requests, 0..1.
    pub error_rate: f64,
    /// Busy over available CPU of the serving replicas, 0..1.
    pub cpu_utilization: f64,
    /// Replicas ready.
    pub ready: u32,
    /// Replicas starting (pending or booting).
    pub booting: u32,
    /// Desired replicas.
    pub desired: u32,
}

impl From<&hale_sim::ServiceMetrics> for ServiceReading {
    /// What the simulator's monitoring reported.
    fn from(m: &hale_sim::ServiceMetrics) -> ServiceReading {
        ServiceReading {
            request_rate: m.request_rate,
            p50_ms: m.p50_ms,
            p95_ms: m.p95_ms,
            p99_ms: m.p99_ms,
            error_rate: m.error_rate,
            cpu_utilization: m.cpu_utilization,
            ready: m.replicas_ready,
            booting: m.replicas_booting,
            desired: m.replicas_desired,
        }
    }
}

impl ServiceReading {
    /// The service's nine features: `[ln(1 + rate) / 10, p50/ref, p95/ref, p99/ref,
    /// error rate, CPU utilisation, ready/max, booting/max, desired/max]`, latency
    /// ratios capped at 10.
    pub fn encode(&self, latency_ref_ms: f64, max_replicas: f64) -> [f32; SERVICE_FEATURES] {
        let r = latency_ref_ms;
        [
            (1.0 + self.request_rate).ln() / 10.0,
            (self.p50_ms / r).min(10.0),
            (self.p95_ms / r).min(10.0),
            (self.p99_ms / r).min(10.0),
            self.error_rate,
            self.cpu_utilization,
            f64::from(self.ready) / max_replicas,
            f64::from(self.booting) / max_replicas,
            f64::from(self.desired) / max_replicas,
        ]
        .map(|v| v as f32)
    }
}

/// How `Scaling-v0` with a given config encodes its (matrix) observation.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingObservation {
    /// Service names, in observation (and action) order.
    pub services: Vec<String>,
    /// Latency each service's percentiles are divided by: its SLO bound, or 100 ms.
    pub latency_refs_ms: Vec<f64>,
    /// Replica counts are divided by this (the env's `max_replicas`).
    pub max_replicas: f64,
}

impl ScalingObservation {
    /// Features per service.
    pub const FEATURES: usize = SERVICE_FEATURES;

    /// The flat observation from one reading per service, in `services` order.
    pub fn encode(&self, readings: &[ServiceReading]) -> Result<Vec<f32>, String> {
        if readings.len() != self.services.len() {
            return Err(format!(
                "{} readings for {} services",
                readings.len(),
                self.services.len()
            ));
        }
        Ok(readings
            .iter()
            .zip(&self.latency_refs_ms)
            .flat_map(|(m, &r)| m.encode(r, self.max_replicas))
            .collect())
    }
}

/// How `Scaling-v0` turns an action's choice for one service into desired replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalingActions {
    /// Choices are changes −2…+2 (`action = "delta"`) rather than target counts.
    pub delta: bool,
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
}

impl ScalingActions {
    /// Desired replicas for `choice` when the service wants `current` now.
    pub fn replicas(&self, choice: i64, current: u32) -> u32 {
        let target = if self.delta {
            i64::from(current) + choice - 2
        } else {
            i64::from(self.min_replicas) + choice
        };
        target.clamp(i64::from(self.min_replicas), i64::from(self.max_replicas)) as u32
    }
}
