//! The fluid traffic model: per-tick rates and queueing formulas instead of requests.
//!
//! Each tick (`fluid_tick_s`), in three passes over the call graph:
//!
//! 1. **Rates, callers first.** A service's attempt rate is what its workloads and
//!    callers send, times the retry amplification `1 + p + … + p^R` of each edge, where
//!    `p` is the edge's attempt-failure probability from the previous tick (so retry
//!    storms build up over ticks, as they do in the request-level model).
//! 2. **Latency and failure, callees first.** A replica is a multi-server queue: its
//!    `concurrency` slots are held for the local service time plus the slowest
//!    downstream call (expected maximum over a fan-out). Waiting follows Erlang C with
//!    the Allen–Cunneen correction `(Ca² + Cs²) / 2` for general holding times; round
//!    robin splits a Poisson stream into Erlang-`n` streams (`Ca² = 1/n`), while the
//!    least-outstanding and power-of-two balancers are treated as one pooled queue.
//!    Load above capacity accumulates as backlog (bounded by the queue capacity, the
//!    rest rejected), which adds `backlog / capacity` to the wait. Latency is taken as
//!    log-normal with the computed mean and variance, which gives percentiles and the
//!    probability of exceeding each caller's timeout.
//! 3. **Accounting.** The same counters as the request level are filled with expected
//!    values, so metrics, SLOs and the environments work unchanged.
//!
//! Faults, actions, probes and placement are shared with the request level: only the
//! traffic is approximated. Agreement with the request level is tested on `three-tier`.

use crate::model::{Replica, ReplicaState, RequestCounters, ServiceCounters, ServiceState};
use crate::scenario::{LbPolicy, Scenario};
use crate::time::SimTime;
use crate::workload::Arrivals;

pub(crate) struct FluidEngine {
    /// Queued work per service (requests).
    backlog: Vec<f64>,
    /// Attempt failure probability per edge, last tick.
    edge_fail: Vec<f64>,
    /// Probability that a job fails before calling downstream, per service, last tick.
    pre_fail: Vec<f64>,
    /// Latency mean and variance of a served job, per service, seconds.
    lat: Vec<(f64, f64)>,
    in_edges: Vec<Vec<usize>>,
    rate: Vec<f64>,
    /// Per service (healthy, hung, Σ service-time scale) over its endpoints, valid
    /// while the simulation's version equals `agg_version`.
    agg: Vec<(f64, f64, f64)>,
    agg_version: u64,
    /// Each workload's external request rate this tick (a buffer kept between ticks).
    external: Vec<f64>,
    /// Per edge, this tick: P(the callee's latency > the edge's timeout), computed
    /// once when the callee is done (callees come first) and read again by the caller
    /// and, for a workload's edge, by the end-to-end accounting.
    edge_tail: Vec<f64>,
    /// Per edge, `ln` of its timeout in seconds (constant).
    ln_timeout: Vec<f64>,
    /// Per service, the last Erlang C evaluated: `(servers, load's bits, P(wait))`.
    /// Loads repeat from tick to tick wherever the arrival rate is piecewise constant
    /// (a trace's samples, a steady workload), and the loop over servers is the
    /// tick's dearest part.
    erlang: Vec<(u32, u64, f64)>,
    /// Per service, the bits of the latency moments its in-edges' tails were last
    /// computed from: unchanged moments keep those tails.
    tail_of: Vec<Option<(u64, u64)>>,
}

/// What a fluid tick reads of the cluster, and where it writes its expected counts.
pub(crate) struct FluidInput<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) now: SimTime,
    pub(crate) arrivals: &'a mut [Arrivals],
    pub(crate) services: &'a [ServiceState],
    pub(crate) replicas: &'a [Replica],
    /// The simulation's control version (moved by every control event): per-service
    /// endpoint aggregates are recomputed only when it has moved.
    pub(crate) version: u64,
    /// The monitor's counters of the current window, per service.
    pub(crate) windows: &'a mut [ServiceCounters],
    /// The monitor's fluid latency moments of the current window, per service.
    pub(crate) latency: &'a mut [(f64, f64, f64)],
    pub(crate) counters: &'a mut RequestCounters,
    /// Per edge, whether the defender cut it (every attempt along it fails).
    pub(crate) cut: &'a [bool],
}

impl FluidEngine {
    pub(crate) fn new(sc: &Scenario) -> FluidEngine {
        let n = sc.spec.services.len();
        let mut in_edges = vec![Vec::new(); n];
        for (e, edge) in sc.edges.iter().enumerate() {
            in_edges[edge.to].push(e);
        }
        FluidEngine {
            backlog: vec![0.0; n],
            edge_fail: vec![0.0; sc.edges.len()],
            pre_fail: vec![0.0; n],
            lat: vec![(0.0, 0.0); n],
            in_edges,
            rate: vec![0.0; n],
            agg: vec![(0.0, 0.0, 0.0); n],
            agg_version: u64::MAX,
            external: vec![0.0; sc.spec.workload.len()],
            edge_tail: vec![0.0; sc.edges.len()],
            ln_timeout: sc
                .edges
                .iter()
                .map(|e| e.timeout.as_secs_f64().ln())
                .collect(),
            erlang: vec![(u32::MAX, 0, 0.0); n],
            tail_of: vec![None; n],
        }
    }

    pub(crate) fn queued(&self, s: usize) -> f64 {
        self.backlog[s]
    }
}

/// Erlang C: probability that an arrival waits in an M/M/c queue with offered load
/// `a = λ/μ` (requires `a < c`).
///
/// Erlang B by the recursion on its inverse, `1/B(k) = 1 + (k/a) / B(k−1)`: one
/// multiply-add per server and no division in the loop (the fluid model evaluates this
/// for every service on every tick). Once `1/B` passes 1e300, B is 0 to double
/// precision and so is the probability of waiting.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    if a <= 0.0 {
        return 0.0;
    }
    let inv_a = 1.0 / a;
    let mut inv_b = 1.0;
    for k in 1..=c {
        inv_b = 1.0 + k as f64 * inv_a * inv_b;
        if inv_b > 1e300 {
            return 0.0;
        }
    }
    let b = 1.0 / inv_b;
    let rho = a / c as f64;
    (b / (1.0 - rho * (1.0 - b))).clamp(0.0, 1.0)
}

/// Expected maximum of `k` independent standard normals.
fn expected_max_normal(k: u32) -> f64 {
    const TABLE: [f64; 11] = [
        0.0, 0.0, 0.5642, 0.8463, 1.0294, 1.1630, 1.2672, 1.3522, 1.4236, 1.4850, 1.5388,
    ];
    if (k as usize) < TABLE.len() {
        TABLE[k as usize]
    } else {
        let l = (2.0 * (k as f64).ln()).sqrt();
        l - ((k as f64).ln().ln() + (4.0 * std::f64::consts::PI).ln()) / (2.0 * l)
    }
}

/// `1 + p + … + p^retries`: expected attempts per call.
fn attempts(p: f64, retries: u32) -> f64 {
    (0..=retries).map(|i| p.powi(i as i32)).sum()
}

/// A log-normal latency with a given mean and variance, ready for `P(L > t)` at
/// several `t`: its log-moments are taken once. The branches are the single
/// evaluation's, in its order, so the answer is the same to the bit.
struct Tail {
    mean: f64,
    var: f64,
    /// `(μ, σ)` of `ln L`, when the latency is positive with variance.
    log: (f64, f64),
}

impl Tail {
    fn new(mean: f64, var: f64) -> Tail {
        let log = if mean <= 0.0 || var <= 0.0 {
            (0.0, 0.0)
        } else {
            let s2 = (1.0 + var / (mean * mean)).ln();
            (mean.ln() - s2 / 2.0, s2.sqrt())
        };
        Tail { mean, var, log }
    }

    /// `P(L > t)`, given `ln_t = t.ln()`.
    fn above(&self, t: f64, ln_t: f64) -> f64 {
        if self.mean <= 0.0 {
            return 0.0;
        }
        if self.var <= 0.0 {
            return if self.mean > t { 1.0 } else { 0.0 };
        }
        let (mu, sigma) = self.log;
        let z = (ln_t - mu) / sigma;
        0.5 * erfc(z / std::f64::consts::SQRT_2)
    }
}

/// Complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// One tick of a service's queue in the fluid model.
#[derive(Debug, PartialEq)]
struct QueueStep {
    /// Work still queued after the tick.
    backlog: f64,
    /// Work started in the tick.
    served: f64,
    /// Share of the tick's new attempts rejected, in [0, 1].
    p_reject: f64,
    /// Queued work dropped beyond the new attempts (the queue shrank under it).
    dropped: f64,
}

/// `backlog` queued, `inflow` arriving, up to `capacity` started, and room for `q_max`
/// afterwards. When capacity shrank (replicas removed, hung or crashed) the backlog can
/// exceed the new queue capacity by more than the tick's inflow: then every new attempt
/// is rejected and the rest of the excess is dropped, so work is conserved:
/// `backlog + inflow = served + backlog' + p_reject · inflow + dropped`.
fn queue_step(backlog: f64, inflow: f64, capacity: f64, q_max: f64) -> QueueStep {
    let served = (backlog + inflow).min(capacity);
    let q = backlog + inflow - served;
    let excess = (q - q_max).max(0.0);
    let rejected = excess.min(inflow);
    QueueStep {
        backlog: q.min(q_max),
        served,
        p_reject: if inflow > 0.0 { rejected / inflow } else { 0.0 },
        dropped: excess - rejected,
    }
}

impl FluidEngine {
    /// Advances the model by one tick of `dt` seconds: attempt rates down the call
    /// graph, latency and failure back up it, and the tick's expected counts into the
    /// monitor's windows and the request counters.
    pub(crate) fn tick(&mut self, dt: f64, cx: FluidInput<'_>) {
        let sc = cx.scenario;
        let t = cx.now.as_secs_f64();
        let f = self;

        // 1. Attempt rates, callers first.
        f.rate.iter_mut().for_each(|x| *x = 0.0);
        f.external.resize(sc.spec.workload.len(), 0.0);
        for (w, arr) in cx.arrivals.iter_mut().enumerate() {
            f.external[w] = arr.rate_now(t);
            let e = &sc.edges[w];
            f.rate[e.to] += f.external[w] * attempts(f.edge_fail[w], e.retries);
        }
        for &s in &sc.topo_order {
            let pass = f.rate[s] * (1.0 - f.pre_fail[s]);
            for &e in &sc.out_edges[s] {
                if cx.cut[e] {
                    continue;
                }
                let edge = &sc.edges[e];
                f.rate[edge.to] +=
                    pass * edge.fanout as f64 * attempts(f.edge_fail[e], edge.retries);
            }
        }

        // 2. Latency and failure, callees first.
        for &s in sc.topo_order.iter().rev() {
            let spec = &sc.spec.services[s];
            let st = &cx.services[s];
            // The slowest downstream call (expected maximum over its fan-out).
            let (mut d_mean, mut d_var, mut child_ok) = (0.0, 0.0, 1.0);
            for &e in &sc.out_edges[s] {
                let edge = &sc.edges[e];
                let (m, v) = f.lat[edge.to];
                let p = f.edge_fail[e];
                let to = edge.timeout.as_secs_f64();
                // The callee was done earlier this tick: its tail at this edge's
                // timeout is already known.
                let p_timeout = f.edge_tail[e].min(p);
                // Failed attempts cost their time to fail plus a mean back-off.
                let fail_time = if p > 0.0 {
                    (p_timeout * to + (p - p_timeout) * m) / p
                } else {
                    0.0
                };
                let mut retry_cost = 0.0;
                for i in 1..=edge.retries {
                    let backoff = (edge.backoff_s * f64::powi(2.0, i as i32 - 1))
                        .min(edge.backoff_max_s)
                        / 2.0;
                    retry_cost += p.powi(i as i32) * (fail_time + backoff);
                }
                let mean = m.min(to) + retry_cost;
                let k = edge.fanout;
                let m_k = mean + v.sqrt() * expected_max_normal(k);
                if m_k > d_mean {
                    d_mean = m_k;
                    d_var = v;
                }
                child_ok *= (1.0 - p.powi(edge.retries as i32 + 1)).powi(k as i32);
            }
            if f.agg_version != cx.version {
                let (mut healthy, mut hung, mut slow) = (0.0, 0.0, 0.0);
                for &r in &st.endpoints {
                    let rep = &cx.replicas[r];
                    match rep.state {
                        ReplicaState::Hung => hung += 1.0,
                        x if x.is_serving() => {
                            healthy += 1.0;
                            slow += rep.slowdown * rep.steal * spec.cpu / rep.cpu;
                        }
                        _ => {}
                    }
                }
                f.agg[s] = (healthy, hung, slow);
            }
            let (healthy, hung, slow) = f.agg[s];
            let n_lb = healthy + hung;
            let arrivals = f.rate[s];
            let service =
                spec.service_time.mean_s() * if healthy > 0.0 { slow / healthy } else { 1.0 };
            let hold = service + d_mean;
            let hold_var = spec.service_time.scv() * service * service + d_var;
            let c = spec.concurrency;
            let p_err = (spec.error_rate + st.extra_error_rate + st.attack_error_rate).min(1.0);
            let (l_mean, l_var, p_reject, served);
            let mut dropped = 0.0;
            if st.down || healthy == 0.0 {
                (l_mean, l_var, served) = (0.0, 0.0, 0.0);
                p_reject = if st.down || n_lb == 0.0 { 1.0 } else { 0.0 };
                f.backlog[s] = 0.0;
            } else {
                let to_healthy = arrivals * healthy / n_lb;
                let cap = healthy * c as f64 / hold;
                let inflow = to_healthy * dt;
                let q_max = healthy * spec.queue_capacity as f64;
                let step = queue_step(f.backlog[s], inflow, cap * dt, q_max);
                let q = step.backlog;
                f.backlog[s] = q;
                served = step.served;
                p_reject = step.p_reject;
                dropped = step.dropped;
                // Stationary wait (Allen–Cunneen), with load capped below saturation.
                let (servers, load, ca2) = match spec.load_balancer {
                    LbPolicy::RoundRobin => (c, to_healthy / healthy * hold, 1.0 / healthy),
                    _ => ((c as f64 * healthy) as u32, to_healthy * hold, 1.0),
                };
                let load = load.min(0.98 * servers as f64);
                let p_wait = match f.erlang[s] {
                    (c, bits, p) if c == servers && bits == load.to_bits() => p,
                    _ => {
                        let p = erlang_c(servers, load);
                        f.erlang[s] = (servers, load.to_bits(), p);
                        p
                    }
                };
                let theta = hold / (servers as f64 - load) * (ca2 + hold_var / (hold * hold)) / 2.0;
                let wq = p_wait * theta + q / cap;
                let wq_var = p_wait * theta * theta * (2.0 - p_wait);
                l_mean = wq + hold;
                l_var = hold_var + wq_var;
            }
            let hung_share = if n_lb > 0.0 { hung / n_lb } else { 0.0 };
            let pre = 1.0 - (1.0 - hung_share) * (1.0 - p_reject) * (1.0 - p_err);
            f.pre_fail[s] = pre;
            let job_ok = (1.0 - pre) * child_ok;
            f.lat[s] = (l_mean, l_var);
            let moments = Some((l_mean.to_bits(), l_var.to_bits()));
            if f.tail_of[s] != moments {
                let latency = Tail::new(l_mean, l_var);
                for &e in &f.in_edges[s] {
                    let to = sc.edges[e].timeout.as_secs_f64();
                    f.edge_tail[e] = latency.above(to, f.ln_timeout[e]);
                }
                f.tail_of[s] = moments;
            }
            for &e in &f.in_edges[s] {
                f.edge_fail[e] = if cx.cut[e] {
                    1.0
                } else {
                    1.0 - job_ok * (1.0 - f.edge_tail[e])
                };
            }
            // 3. The window's counters, in expected values.
            let w = &mut cx.windows[s];
            let attempts_now = arrivals * dt;
            w.arrivals += attempts_now;
            w.started += served;
            w.busy_s += served * service;
            w.completed += attempts_now * job_ok;
            w.failed +=
                attempts_now * (1.0 - hung_share) * (1.0 - job_ok / (1.0 - hung_share).max(1e-12));
            w.rejected += attempts_now * p_reject + dropped;
            w.latency_s += attempts_now * (1.0 - hung_share) * l_mean;
            let lat = &mut cx.latency[s];
            let weight = attempts_now * job_ok;
            lat.0 += weight;
            lat.1 += weight * l_mean;
            lat.2 += weight * (l_var + l_mean * l_mean);
        }

        f.agg_version = cx.version;

        // External requests, end to end.
        for (w, &lam) in f.external.iter().enumerate() {
            let edge = &sc.edges[w];
            let m = f.lat[edge.to].0;
            let p = f.edge_fail[w];
            let p_final = p.powi(edge.retries as i32 + 1);
            let to = edge.timeout.as_secs_f64();
            let p_timeout = f.edge_tail[w].min(p);
            let arrived = lam * dt;
            let k = &mut *cx.counters;
            k.arrived += arrived;
            let completed = arrived * (1.0 - p_final);
            k.completed += completed;
            let timeout_share = if p > 0.0 { p_timeout / p } else { 0.0 };
            k.timed_out += arrived * p_final * timeout_share;
            k.failed += arrived * p_final * (1.0 - timeout_share);
            let fail_time = if p > 0.0 {
                (p_timeout * to + (p - p_timeout) * m) / p
            } else {
                0.0
            };
            let retry_cost: f64 = (1..=edge.retries)
                .map(|i| p.powi(i as i32) * fail_time)
                .sum();
            k.latency_s += completed * (m.min(to) + retry_cost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_step_conserves_work_when_the_queue_shrinks_under_its_backlog() {
        // 48 queued at three replicas, cut to one (room for 16): more is over the
        // limit than arrives in the tick. Rejections were once counted as 42.6 of
        // 16.5 new attempts, which made downstream rates negative.
        let (backlog, inflow) = (48.0, 16.5);
        let s = queue_step(backlog, inflow, 5.9, 16.0);
        assert_eq!(s.p_reject, 1.0);
        assert_eq!(s.backlog, 16.0);
        assert!(s.dropped > 0.0);
        let out = s.served + s.backlog + s.p_reject * inflow + s.dropped;
        assert!((out - (backlog + inflow)).abs() < 1e-12, "{s:?}");
        // Nothing over the limit: nothing rejected or dropped.
        let s = queue_step(4.0, 10.0, 5.0, 16.0);
        assert_eq!(
            (s.served, s.backlog, s.p_reject, s.dropped),
            (5.0, 9.0, 0.0, 0.0)
        );
        // Over the limit by less than the inflow: part of the inflow rejected.
        let s = queue_step(10.0, 10.0, 2.0, 16.0);
        assert_eq!((s.backlog, s.p_reject, s.dropped), (16.0, 0.2, 0.0));
    }

    #[test]
    fn erlang_c_matches_textbook_values() {
        // M/M/1: P(wait) = rho. M/M/2 with a = 1: C = 1/3 (from the reference table).
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((erlang_c(8, 7.2) - 0.701_532_990_146_257).abs() < 1e-9);
        // c = 32, rho = 0.5 from the reference table; and a huge pool stays finite.
        assert!(
            (erlang_c(32, 16.0) - 0.000_291_057_991_747_951).abs() < 1e-15,
            "{}",
            erlang_c(32, 16.0)
        );
        assert_eq!(erlang_c(100_000, 10.0), 0.0);
    }

    /// The single evaluation the tick used before `Tail` split it.
    fn tail(mean: f64, var: f64, t: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        if var <= 0.0 {
            return if mean > t { 1.0 } else { 0.0 };
        }
        let s2 = (1.0 + var / (mean * mean)).ln();
        let mu = mean.ln() - s2 / 2.0;
        let z = (t.ln() - mu) / s2.sqrt();
        0.5 * erfc(z / std::f64::consts::SQRT_2)
    }

    #[test]
    fn a_split_tail_is_the_single_evaluation_to_the_bit() {
        let values = [0.0, -1.0, 1e-6, 0.003, 0.05, 0.4, 2.0, 30.0, f64::NAN];
        for &mean in &values {
            for &var in &values {
                let split = Tail::new(mean, var);
                for t in [0.001, 0.1, 1.0, 5.0] {
                    let (a, b) = (split.above(t, t.ln()), tail(mean, var, t));
                    assert!(
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                        "mean {mean}, var {var}, t {t}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn erfc_is_accurate() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 2e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 2e-7);
    }
}
