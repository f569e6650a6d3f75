//! Monitoring as a real system sees it: counters accumulate between scrapes; every
//! `scrape_interval_s` a [`Snapshot`] is taken, and observers see it only after
//! `scrape_delay_s`, optionally with multiplicative noise. SLOs are judged per scrape
//! window on the true values; costs accrue per host-second.

use crate::fluid::FluidEngine;
use crate::model::{
    Host, HostId, HostState, Replica, ReplicaId, ReplicaState, ServiceCounters, ServiceId,
    ServiceState,
};
use crate::rng::{Stream, StreamId};
use crate::scenario::Scenario;
use crate::time::SimTime;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::VecDeque;

/// One service's metrics over one scrape window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServiceMetrics {
    /// Requests (attempts) per second reaching the service.
    pub request_rate: f64,
    /// Latency percentiles of answered requests, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Failed over answered requests.
    pub error_rate: f64,
    /// Busy worker-slot time over available slot time of serving replicas.
    pub cpu_utilization: f64,
    /// Replicas ready or degraded.
    pub replicas_ready: u32,
    /// Replicas booting or pending.
    pub replicas_booting: u32,
    /// Desired replicas.
    pub replicas_desired: u32,
    /// Requests queued at the service's replicas now.
    pub queued: f64,
    /// Whether the window broke one of the service's SLOs (true values, no noise).
    pub slo_violated: bool,
}

/// One host at a scrape.
#[derive(Clone, Debug, Serialize)]
pub struct HostMetrics {
    /// Host id.
    pub host: HostId,
    /// State.
    pub state: HostState,
    /// Cordoned.
    pub cordoned: bool,
    /// Requested over available cores.
    pub cpu_allocation: f64,
    /// Requested over available memory.
    pub memory_allocation: f64,
}

/// One replica at a scrape (what probes and cAdvisor-style exporters show).
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaMetrics {
    /// Replica id.
    pub replica: ReplicaId,
    /// Service.
    pub service: ServiceId,
    /// Host.
    pub host: Option<HostId>,
    /// State.
    pub state: ReplicaState,
    /// Whether the last probe passed.
    pub probe_ok: bool,
    /// Consecutive failed probes.
    pub probe_failures: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// Memory in use, MiB.
    pub memory_mib: f64,
    /// Requests in service.
    pub busy: u32,
    /// Requests queued.
    pub queued: u32,
    /// Mean latency of the requests it answered in the window, ms (0 if none).
    pub mean_latency_ms: f64,
    /// Failed over answered requests in the window.
    pub error_rate: f64,
}

/// Everything one scrape saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// When it was scraped.
    pub time: SimTime,
    /// Length of the window it covers, seconds.
    pub window_s: f64,
    /// Per service, in scenario order.
    pub services: Vec<ServiceMetrics>,
    /// Per host that is not removed.
    pub hosts: Vec<HostMetrics>,
    /// Per live replica.
    pub replicas: Vec<ReplicaMetrics>,
    /// Money spent on hosts up to the scrape.
    pub cost: f64,
}

pub(crate) struct Monitor {
    pub(crate) win: Vec<ServiceCounters>,
    totals: Vec<ServiceCounters>,
    /// Latency histograms per service, made at the first request-level record (the
    /// fluid model keeps moments instead and never needs one: 20 of them were most of
    /// a fluid reset's memory).
    hist: Vec<Option<Histogram<u32>>>,
    /// Fluid latency moments per service: (weight, Σ w·mean, Σ w·E[L²]).
    pub(crate) fluid_lat: Vec<(f64, f64, f64)>,
    snapshots: VecDeque<Snapshot>,
    /// A snapshot no observer can see any more, kept for its buffers: the next
    /// scrape fills them instead of allocating.
    spare: Option<Snapshot>,
    /// Scratch for the fluid per-replica credit: serving replicas and their shifts.
    serving: Vec<ReplicaId>,
    shifts: Vec<f64>,
    last_scrape: SimTime,
    noise: Stream,
    pub(crate) slo_violation_s: Vec<f64>,
}

fn empty_histogram() -> Histogram<u32> {
    // 1 µs to one hour with two significant digits (1 % resolution).
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid")
}

impl Monitor {
    pub(crate) fn new(sc: &Scenario, seed: u64) -> Monitor {
        let n = sc.spec.services.len();
        Monitor {
            win: vec![ServiceCounters::default(); n],
            totals: vec![ServiceCounters::default(); n],
            hist: (0..n).map(|_| None).collect(),
            fluid_lat: vec![(0.0, 0.0, 0.0); n],
            snapshots: VecDeque::new(),
            spare: None,
            serving: Vec::new(),
            shifts: Vec::new(),
            last_scrape: SimTime::ZERO,
            noise: Stream::new(seed, StreamId::Monitoring),
            slo_violation_s: vec![0.0; sc.spec.slos.len()],
        }
    }

    #[inline]
    pub(crate) fn record_latency(&mut self, s: ServiceId, latency: SimTime) {
        self.hist[s]
            .get_or_insert_with(empty_histogram)
            .saturating_record(latency.as_micros().max(1));
    }

    pub(crate) fn totals(&self, s: ServiceId) -> ServiceCounters {
        add(self.totals[s], &self.win[s])
    }

    pub(crate) fn reset_totals(&mut self) {
        for t in &mut self.totals {
            *t = ServiceCounters::default();
        }
        for w in &mut self.win {
            *w = ServiceCounters::default();
        }
    }

    fn percentiles(&self, s: ServiceId) -> [f64; 3] {
        if let Some(h) = self.hist[s].as_ref().filter(|h| !h.is_empty()) {
            return [50.0, 95.0, 99.0].map(|q| h.value_at_quantile(q / 100.0) as f64 / 1e3);
        }
        let (w, m1, m2) = self.fluid_lat[s];
        if w <= 0.0 {
            return [0.0; 3];
        }
        let mean = m1 / w;
        let var = (m2 / w - mean * mean).max(0.0);
        [0.5, 0.95, 0.99].map(|p| lognormal_quantile(mean, var, p) * 1e3)
    }
}

fn add(mut a: ServiceCounters, b: &ServiceCounters) -> ServiceCounters {
    a.arrivals += b.arrivals;
    a.waited += b.waited;
    a.started += b.started;
    a.wait_s += b.wait_s;
    a.completed += b.completed;
    a.failed += b.failed;
    a.rejected += b.rejected;
    a.busy_s += b.busy_s;
    a.latency_s += b.latency_s;
    a
}

/// The `p` quantile of a log-normal with the given mean and variance (seconds).
pub(crate) fn lognormal_quantile(mean: f64, var: f64, p: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    let s2 = (1.0 + var / (mean * mean)).ln();
    let mu = mean.ln() - s2 / 2.0;
    (mu + s2.sqrt() * inverse_normal_cdf(p)).exp()
}

/// Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9).
pub(crate) fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// What a scrape reads of the cluster (and the per-replica windows it closes).
pub(crate) struct ScrapeInput<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) now: SimTime,
    pub(crate) services: &'a [ServiceState],
    pub(crate) hosts: &'a [Host],
    pub(crate) replicas: &'a mut [Replica],
    /// Work queued in the fluid model (0 at request level).
    pub(crate) fluid: &'a FluidEngine,
    /// Money spent on hosts so far.
    pub(crate) cost: f64,
}

impl Monitor {
    /// Takes a scrape: the window's metrics per service, host and replica (with noise
    /// where the scenario asks), SLO violations, and the snapshot kept for observers;
    /// then opens the next window.
    pub(crate) fn scrape(&mut self, cx: ScrapeInput<'_>) {
        let now = cx.now;
        let window_s = now.saturating_sub(self.last_scrape).as_secs_f64().max(1e-9);
        self.last_scrape = now;
        let (mut services, mut hosts, mut replicas) = match self.spare.take() {
            Some(old) => (old.services, old.hosts, old.replicas),
            None => (
                Vec::with_capacity(cx.services.len()),
                Vec::with_capacity(cx.hosts.len()),
                Vec::new(),
            ),
        };
        services.clear();
        hosts.clear();
        replicas.clear();
        for (s, st) in cx.services.iter().enumerate() {
            let w = self.win[s];
            let [p50, p95, p99] = self.percentiles(s);
            let answered = w.completed + w.failed;
            let (mut ready, mut booting, mut slots, mut queued) = (0u32, 0u32, 0.0, 0.0);
            let conc = cx.scenario.spec.services[s].concurrency as f64;
            for &r in &st.replicas {
                let rep = &cx.replicas[r];
                match rep.state {
                    ReplicaState::Ready | ReplicaState::Degraded => {
                        ready += 1;
                        slots += conc;
                    }
                    ReplicaState::Booting | ReplicaState::Pending => booting += 1,
                    _ => {}
                }
                queued += rep.queue.len() as f64;
            }
            let mean_ms = if answered > 0.0 {
                w.latency_s / answered * 1e3
            } else {
                let (fw, m1, _) = self.fluid_lat[s];
                if fw > 0.0 { m1 / fw * 1e3 } else { 0.0 }
            };
            queued += cx.fluid.queued(s);
            services.push(ServiceMetrics {
                request_rate: w.arrivals / window_s,
                p50_ms: p50,
                p95_ms: p95,
                p99_ms: p99,
                mean_ms,
                error_rate: if answered > 0.0 {
                    w.failed / answered
                } else {
                    0.0
                },
                cpu_utilization: if slots > 0.0 {
                    (w.busy_s / (slots * window_s)).min(1.0)
                } else {
                    0.0
                },
                replicas_ready: ready,
                replicas_booting: booting,
                replicas_desired: st.desired,
                queued,
                slo_violated: false,
            });
        }
        for (i, slo) in cx.scenario.spec.slos.iter().enumerate() {
            let s = cx.scenario.slo_service[i];
            let m = &mut services[s];
            let latency = self.latency_quantile(s, slo.percentile);
            let violated = latency * 1e3 > slo.latency_ms || m.error_rate > slo.max_error_rate;
            if violated {
                m.slo_violated = true;
                self.slo_violation_s[i] += window_s;
            }
        }
        let noise = cx.scenario.spec.simulation.metric_noise;
        if noise > 0.0 {
            for m in &mut services {
                for v in [
                    &mut m.request_rate,
                    &mut m.p50_ms,
                    &mut m.p95_ms,
                    &mut m.p99_ms,
                    &mut m.mean_ms,
                    &mut m.error_rate,
                    &mut m.cpu_utilization,
                ] {
                    *v = (*v * (1.0 + noise * self.noise.normal())).max(0.0);
                }
            }
        }
        hosts.extend(
            cx.hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.state != HostState::Removed)
                .map(|(i, h)| HostMetrics {
                    host: i,
                    state: h.state,
                    cordoned: h.cordoned,
                    cpu_allocation: h.cpu_allocated / h.cpu,
                    memory_allocation: h.memory_allocated / h.memory_mib,
                }),
        );
        // The fluid model has no per-request records: a serving replica is credited
        // with its service's figures, its latency shifted by how much slower (or
        // faster) its service time is than the average endpoint's. Done here, once per
        // scrape, rather than on every tick for every replica.
        if cx.scenario.spec.fidelity == crate::scenario::Fidelity::Fluid {
            for (s, st) in cx.services.iter().enumerate() {
                let spec = &cx.scenario.spec.services[s];
                let scale = |r: ReplicaId| {
                    let rep = &cx.replicas[r];
                    rep.slowdown * rep.steal * spec.cpu / rep.cpu
                };
                let serving = &mut self.serving;
                serving.clear();
                serving.extend(
                    st.endpoints
                        .iter()
                        .copied()
                        .filter(|&r| cx.replicas[r].state.is_serving()),
                );
                if serving.is_empty() {
                    continue;
                }
                let avg = serving.iter().map(|&r| scale(r)).sum::<f64>() / serving.len() as f64;
                let m = &services[s];
                let share = m.request_rate * window_s / st.endpoints.len() as f64;
                let shifts = &mut self.shifts;
                shifts.clear();
                shifts.extend(
                    serving
                        .iter()
                        .map(|&r| (scale(r) - avg) * spec.service_time.mean_s()),
                );
                for (&r, &shift) in serving.iter().zip(shifts.iter()) {
                    let rep = &mut cx.replicas[r];
                    rep.win_answered = share;
                    rep.win_failed = share * m.error_rate;
                    rep.win_latency_s = share * (m.mean_ms / 1e3 + shift).max(0.0);
                }
            }
        }
        replicas.extend(
            cx.services
                .iter()
                .flat_map(|st| st.replicas.iter().copied())
                .map(|r| {
                    let rep = &cx.replicas[r];
                    let working_set = cx.scenario.spec.services[rep.service].working_set();
                    ReplicaMetrics {
                        replica: r,
                        service: rep.service,
                        host: rep.host,
                        state: rep.state,
                        probe_ok: rep.probe_failures == 0 && rep.state.is_serving(),
                        probe_failures: rep.probe_failures,
                        restarts: rep.restarts,
                        memory_mib: rep.memory_used_mib(working_set, now),
                        busy: rep.busy,
                        queued: rep.queue.len() as u32,
                        mean_latency_ms: if rep.win_answered > 0.0 {
                            rep.win_latency_s / rep.win_answered * 1e3
                        } else {
                            0.0
                        },
                        error_rate: if rep.win_answered > 0.0 {
                            rep.win_failed / rep.win_answered
                        } else {
                            0.0
                        },
                    }
                }),
        );
        for st in cx.services.iter() {
            for &r in &st.replicas {
                let rep = &mut cx.replicas[r];
                (rep.win_answered, rep.win_failed, rep.win_latency_s) = (0.0, 0.0, 0.0);
            }
        }
        let cost = cx.cost;
        let snap = Snapshot {
            time: now,
            window_s,
            services,
            hosts,
            replicas,
            cost,
        };
        let mon = self;
        for s in 0..mon.win.len() {
            mon.totals[s] = add(mon.totals[s], &mon.win[s]);
            mon.win[s] = ServiceCounters::default();
            if let Some(h) = mon.hist[s].as_mut().filter(|h| !h.is_empty()) {
                h.reset();
            }
            mon.fluid_lat[s] = (0.0, 0.0, 0.0);
        }
        // Keep what a delayed observer may still need, and one more.
        let delay = SimTime::from_secs_f64(cx.scenario.spec.simulation.scrape_delay_s);
        while mon.snapshots.len() > 1 && mon.snapshots[1].time + delay <= now {
            mon.spare = mon.snapshots.pop_front();
        }
        mon.snapshots.push_back(snap);
    }
}

impl Monitor {
    /// The newest snapshot an observer can see at `now`: scraped at least `delay` ago.
    pub(crate) fn visible(&self, now: SimTime, delay: SimTime) -> Option<&Snapshot> {
        self.snapshots.iter().rev().find(|s| s.time + delay <= now)
    }

    fn latency_quantile(&self, s: ServiceId, percentile: f64) -> f64 {
        if let Some(h) = self.hist[s].as_ref().filter(|h| !h.is_empty()) {
            return h.value_at_quantile(percentile / 100.0) as f64 / 1e6;
        }
        let (w, m1, m2) = self.fluid_lat[s];
        if w <= 0.0 {
            return 0.0;
        }
        let mean = m1 / w;
        lognormal_quantile(mean, (m2 / w - mean * mean).max(0.0), percentile / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_normal_matches_known_quantiles() {
        // Standard values: Φ⁻¹(0.5) = 0, Φ⁻¹(0.95) = 1.644854, Φ⁻¹(0.99) = 2.326348.
        assert!(inverse_normal_cdf(0.5).abs() < 1e-9);
        assert!((inverse_normal_cdf(0.95) - 1.644_853_627).abs() < 1e-6);
        assert!((inverse_normal_cdf(0.99) - 2.326_347_874).abs() < 1e-6);
        assert!((inverse_normal_cdf(0.01) + 2.326_347_874).abs() < 1e-6);
    }

    #[test]
    fn lognormal_quantile_of_zero_variance_is_the_mean() {
        assert!((lognormal_quantile(0.2, 0.0, 0.99) - 0.2).abs() < 1e-12);
    }
}
