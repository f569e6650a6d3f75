//! Rate series: the normalised form every workload trace becomes, and the transforms
//! (resample, rescale, split by time, window) that turn it into a simulator workload.

use hale_sim::RateSpec;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A piecewise-constant rate: `rps[i]` requests per second during
/// `[start_s + i·step_s, start_s + (i+1)·step_s)`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateSeries {
    /// Seconds from the trace's own origin to the first step (Unix seconds for
    /// Bitbrains, seconds since midnight for Azure, 0 for NASA and generated series).
    pub start_s: f64,
    /// Length of one step in seconds.
    pub step_s: f64,
    /// Rate in each step: requests per second (or, for Bitbrains, the chosen column's
    /// unit, used as a load proxy until rescaled).
    pub rps: Vec<f64>,
}

/// Which part of a time split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// The first part: what a policy trains on.
    Train,
    /// The middle part: for tuning and early stopping.
    Validation,
    /// The last part: for the final comparison.
    Test,
}

impl Split {
    /// Parses `train`, `validation` or `test`.
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "validation" | "val" => Some(Split::Validation),
            "test" => Some(Split::Test),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Validation => 1,
            Split::Test => 2,
        }
    }
}

/// Summary figures of a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesStats {
    /// Number of steps.
    pub steps: usize,
    /// Length of one step in seconds.
    pub step_s: f64,
    /// Span in seconds.
    pub span_s: f64,
    /// Mean rate.
    pub mean: f64,
    /// Peak rate.
    pub peak: f64,
    /// Requests in all (rate × step, summed).
    pub total: f64,
    /// Steps with a zero rate.
    pub zero_steps: usize,
    /// (quantile, value) for 0.5, 0.9, 0.99.
    pub quantiles: Vec<(f64, f64)>,
}

impl RateSeries {
    /// A series starting at 0.
    pub fn new(step_s: f64, rps: Vec<f64>) -> RateSeries {
        RateSeries {
            start_s: 0.0,
            step_s,
            rps,
        }
    }

    /// Span in seconds.
    pub fn span_s(&self) -> f64 {
        self.step_s * self.rps.len() as f64
    }

    /// Requests in all: the integral of the rate.
    pub fn total(&self) -> f64 {
        self.rps.iter().sum::<f64>() * self.step_s
    }

    /// Mean rate over the span (0 for an empty series).
    pub fn mean(&self) -> f64 {
        if self.rps.is_empty() {
            0.0
        } else {
            self.rps.iter().sum::<f64>() / self.rps.len() as f64
        }
    }

    /// Peak rate.
    pub fn peak(&self) -> f64 {
        self.rps.iter().copied().fold(0.0, f64::max)
    }

    /// Summary figures, with quantiles of the per-step rate.
    pub fn stats(&self) -> SeriesStats {
        let mut sorted = self.rps.clone();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if sorted.is_empty() {
                0.0
            } else {
                sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
            }
        };
        SeriesStats {
            steps: self.rps.len(),
            step_s: self.step_s,
            span_s: self.span_s(),
            mean: self.mean(),
            peak: self.peak(),
            total: self.total(),
            zero_steps: self.rps.iter().filter(|&&v| v == 0.0).count(),
            quantiles: [0.5, 0.9, 0.99].iter().map(|&p| (p, q(p))).collect(),
        }
    }

    /// The same rate at another step, conserving requests: each new step's rate is the
    /// mean of the old rate over it (an exact integral of the piecewise-constant rate).
    /// Going down (1 s → 60 s) averages; going up (60 s → 1 s) repeats. When the span
    /// is not a whole number of new steps, the last new step holds the remaining
    /// requests spread over the whole step (requests are conserved; the span grows).
    pub fn resample(&self, step_s: f64) -> RateSeries {
        assert!(step_s > 0.0 && step_s.is_finite(), "step must be positive");
        if step_s == self.step_s || self.rps.is_empty() {
            return RateSeries {
                step_s,
                ..self.clone()
            };
        }
        let span = self.span_s();
        let n = ((span / step_s) - 1e-9).ceil().max(1.0) as usize;
        let mut out = Vec::with_capacity(n);
        let mut j = 0usize; // old step under the cursor
        for k in 0..n {
            let a = k as f64 * step_s;
            let b = ((k + 1) as f64 * step_s).min(span);
            let mut integral = 0.0;
            let mut t = a;
            while t < b - 1e-12 && j < self.rps.len() {
                let old_end = (j + 1) as f64 * self.step_s;
                let end = old_end.min(b);
                integral += self.rps[j] * (end - t);
                t = end;
                if old_end <= b + 1e-12 {
                    j += 1;
                }
            }
            out.push(integral / step_s);
        }
        RateSeries {
            start_s: self.start_s,
            step_s,
            rps: out,
        }
    }

    /// The series times `factor`.
    pub fn scaled(&self, factor: f64) -> RateSeries {
        RateSeries {
            rps: self.rps.iter().map(|v| v * factor).collect(),
            ..self.clone()
        }
    }

    /// Step ranges of the train, validation and test parts, in time order, for
    /// `fractions` of the span (they must sum to 1). The parts are disjoint and
    /// cover the series: no step is in two parts, so nothing leaks between them.
    pub fn split_ranges(&self, fractions: [f64; 3]) -> [Range<usize>; 3] {
        let n = self.rps.len();
        let b1 = ((n as f64 * fractions[0]).round() as usize).min(n);
        let b2 = ((n as f64 * (fractions[0] + fractions[1])).round() as usize).clamp(b1, n);
        [0..b1, b1..b2, b2..n]
    }

    /// Steps `range` as a series of their own (keeping their time).
    pub fn slice(&self, range: Range<usize>) -> RateSeries {
        RateSeries {
            start_s: self.start_s + range.start as f64 * self.step_s,
            step_s: self.step_s,
            rps: self.rps[range].to_vec(),
        }
    }

    /// One part of a time split.
    pub fn split(&self, fractions: [f64; 3], part: Split) -> RateSeries {
        self.slice(self.split_ranges(fractions)[part.index()].clone())
    }

    /// From `start_s` seconds in, for `duration_s` seconds (to the end if `None`).
    /// Boundaries round outwards to whole steps.
    pub fn window(&self, start_s: f64, duration_s: Option<f64>) -> RateSeries {
        let n = self.rps.len();
        let i0 = ((start_s / self.step_s).floor().max(0.0) as usize).min(n);
        let i1 = match duration_s {
            Some(d) => (((start_s + d) / self.step_s - 1e-9).ceil().max(0.0) as usize).clamp(i0, n),
            None => n,
        };
        self.slice(i0..i1)
    }

    /// The simulator's workload rate for this series.
    pub fn to_rate_spec(&self, repeat: bool) -> RateSpec {
        RateSpec::Series {
            step_s: self.step_s,
            rps: self.rps.clone(),
            repeat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_conserves_requests() {
        let s = RateSeries::new(1.0, (0..125).map(|i| (i % 7) as f64).collect());
        let down = s.resample(60.0);
        assert_eq!(down.rps.len(), 3);
        assert!(
            (down.total() - s.total()).abs() < 1e-9 * s.total(),
            "{} {}",
            down.total(),
            s.total()
        );
        // Whole minutes are plain means.
        let first: f64 = s.rps[..60].iter().sum::<f64>() / 60.0;
        assert!((down.rps[0] - first).abs() < 1e-12);
        // Up again repeats each minute's mean.
        let up = down.resample(1.0);
        assert_eq!(up.rps.len(), 180);
        assert!(up.rps[..60].iter().all(|&v| (v - first).abs() < 1e-12));
        // A step that does not divide the old one.
        let odd = s.resample(7.5); // 16 whole steps, then 5 s of a 17th
        assert_eq!(odd.rps.len(), 17);
        let total = odd.rps.iter().sum::<f64>() * 7.5;
        assert!((total - s.total()).abs() < 1e-9, "{total}");
        let m = RateSeries::new(60.0, vec![60.0, 0.0]);
        let r = m.resample(45.0); // [0,45): 60; [45,90): (15·60 + 30·0)/45 = 20
        assert_eq!(r.rps.len(), 3);
        assert!(
            (r.rps[0] - 60.0).abs() < 1e-12 && (r.rps[1] - 20.0).abs() < 1e-12,
            "{:?}",
            r.rps
        );
    }

    #[test]
    fn splits_are_disjoint_and_cover() {
        let s = RateSeries::new(60.0, (0..101).map(f64::from).collect());
        let [a, b, c] = s.split_ranges([0.7, 0.15, 0.15]);
        assert_eq!((a.start, a.end, b.end, c.end), (0, 71, 86, 101));
        assert_eq!(b.start, a.end);
        assert_eq!(c.start, b.end);
        let test = s.split([0.7, 0.15, 0.15], Split::Test);
        assert_eq!(test.start_s, 86.0 * 60.0);
        assert_eq!(test.rps[0], 86.0);
    }

    #[test]
    fn windows_round_outwards() {
        let s = RateSeries::new(10.0, (0..10).map(f64::from).collect());
        let w = s.window(15.0, Some(20.0)); // [15, 35) → steps 1..4
        assert_eq!(w.rps, vec![1.0, 2.0, 3.0]);
        assert_eq!(s.window(95.0, None).rps, vec![9.0]);
        assert!(s.window(200.0, Some(5.0)).rps.is_empty());
    }
}
