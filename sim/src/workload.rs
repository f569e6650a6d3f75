//! Arrival processes: turning a rate over time into arrival instants.
//!
//! Every process is a non-homogeneous Poisson process sampled by thinning (Lewis and
//! Shedler): candidates at the peak rate, each kept with probability rate(t) / peak.
//! Each workload draws from its own stream, so nothing else shifts its arrivals.

use crate::rng::Stream;
use crate::scenario::RateSpec;

/// The arrival process of one workload.
#[derive(Clone, Debug)]
pub(crate) struct Arrivals {
    rate: RateSpec,
    peak: f64,
    stream: Stream,
    /// Time of the last candidate, seconds.
    t: f64,
    /// MMPP: whether in the burst state, and when it next switches.
    burst: bool,
    next_switch: f64,
    pub(crate) count: u64,
    limit: Option<u64>,
}

/// The rate of a process at `t` seconds (MMPP excepted: its state is sampled).
pub fn rate_at(rate: &RateSpec, t: f64) -> f64 {
    match rate {
        RateSpec::Constant { rps } => *rps,
        RateSpec::Diurnal {
            mean_rps,
            amplitude,
            period_s,
            phase_s,
        } => {
            mean_rps * (1.0 + amplitude * (std::f64::consts::TAU * (t + phase_s) / period_s).sin())
        }
        RateSpec::Step {
            before_rps,
            after_rps,
            at_s,
        } => {
            if t < *at_s {
                *before_rps
            } else {
                *after_rps
            }
        }
        RateSpec::Series { .. } | RateSpec::Trace(_) => {
            let Some((step_s, rps, repeat)) = rate.as_series() else {
                return 0.0; // an unresolved trace; validation refuses these
            };
            let i = (t / step_s).floor().max(0.0) as usize;
            if repeat {
                rps[i % rps.len()]
            } else {
                rps[i.min(rps.len() - 1)]
            }
        }
        RateSpec::Mmpp {
            low_rps,
            high_rps,
            mean_low_s,
            mean_high_s,
        } => {
            // The stationary mean, for callers without a sampled state.
            (low_rps * mean_low_s + high_rps * mean_high_s) / (mean_low_s + mean_high_s)
        }
    }
}

fn peak(rate: &RateSpec) -> f64 {
    match rate {
        RateSpec::Constant { rps } => *rps,
        RateSpec::Diurnal {
            mean_rps,
            amplitude,
            ..
        } => mean_rps * (1.0 + amplitude),
        RateSpec::Step {
            before_rps,
            after_rps,
            ..
        } => before_rps.max(*after_rps),
        RateSpec::Series { .. } | RateSpec::Trace(_) => rate
            .as_series()
            .map_or(0.0, |(_, rps, _)| rps.iter().copied().fold(0.0, f64::max)),
        RateSpec::Mmpp {
            low_rps, high_rps, ..
        } => low_rps.max(*high_rps),
    }
}

impl Arrivals {
    pub(crate) fn new(rate: &RateSpec, limit: Option<u64>, key: u64) -> Arrivals {
        let mut stream = Stream::from_key(key);
        let next_switch = match rate {
            RateSpec::Mmpp { mean_low_s, .. } => stream.exp(*mean_low_s),
            _ => f64::INFINITY,
        };
        Arrivals {
            peak: peak(rate),
            rate: rate.clone(),
            stream,
            t: 0.0,
            burst: false,
            next_switch,
            count: 0,
            limit,
        }
    }

    /// The rate at `t`, advancing the MMPP state to `t` (t must not decrease).
    pub(crate) fn rate_now(&mut self, t: f64) -> f64 {
        if let RateSpec::Mmpp {
            low_rps,
            high_rps,
            mean_low_s,
            mean_high_s,
        } = self.rate
        {
            while t >= self.next_switch {
                self.burst = !self.burst;
                let mean = if self.burst { mean_high_s } else { mean_low_s };
                self.next_switch += self.stream.exp(mean);
            }
            if self.burst { high_rps } else { low_rps }
        } else {
            rate_at(&self.rate, t)
        }
    }

    /// Whether the limit has been reached (or there will never be an arrival).
    pub(crate) fn exhausted(&self) -> bool {
        self.limit.is_some_and(|l| self.count >= l) || self.peak <= 0.0
    }

    /// The next arrival time in seconds, or `None` when the process has stopped.
    pub(crate) fn next(&mut self) -> Option<f64> {
        if self.exhausted() {
            return None;
        }
        loop {
            self.t += self.stream.exp(1.0 / self.peak);
            if !self.t.is_finite() {
                return None;
            }
            let accept = match self.rate {
                RateSpec::Constant { .. } => true,
                _ => {
                    let u = self.stream.unit();
                    u * self.peak < self.rate_now(self.t)
                }
            };
            if accept {
                self.count += 1;
                return Some(self.t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_in(rate: RateSpec, horizon: f64) -> u64 {
        let mut a = Arrivals::new(&rate, None, 42);
        let mut n = 0;
        while a.next().is_some_and(|t| t < horizon) {
            n += 1;
        }
        n
    }

    #[test]
    fn counts_match_the_integrated_rate() {
        // Poisson counts: mean = integral of the rate, sd = sqrt(mean); bounds are 5 sd.
        let n = count_in(RateSpec::Constant { rps: 100.0 }, 1000.0);
        assert!(
            (n as f64 - 100_000.0).abs() < 5.0 * 100_000f64.sqrt(),
            "{n}"
        );
        let d = RateSpec::Diurnal {
            mean_rps: 50.0,
            amplitude: 0.8,
            period_s: 100.0,
            phase_s: 0.0,
        };
        let n = count_in(d, 1000.0); // whole periods: integral = 50 * 1000
        assert!((n as f64 - 50_000.0).abs() < 5.0 * 50_000f64.sqrt(), "{n}");
        let s = RateSpec::Series {
            step_s: 10.0,
            rps: vec![0.0, 100.0],
            repeat: true,
        };
        let n = count_in(s, 1000.0); // half the time at 100/s
        assert!((n as f64 - 50_000.0).abs() < 5.0 * 50_000f64.sqrt(), "{n}");
    }

    #[test]
    fn mmpp_mean_rate_is_the_stationary_mix() {
        // Stationary rate = (10 * 30 + 200 * 10) / 40 = 57.5/s. Over 20 000 s the state
        // process has ~500 cycles, so the relative error is a few percent; allow 8 %.
        let m = RateSpec::Mmpp {
            low_rps: 10.0,
            high_rps: 200.0,
            mean_low_s: 30.0,
            mean_high_s: 10.0,
        };
        let n = count_in(m, 20_000.0) as f64 / 20_000.0;
        assert!((n - 57.5).abs() < 0.08 * 57.5, "{n}");
    }
}
