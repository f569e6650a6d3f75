//! Synthetic rate series with seeds: diurnal and weekly seasonality, a trend, bursts
//! (a two-state Markov-modulated process), flash crowds and noise.
//!
//! The rate at time t (seconds) is
//!
//! ```text
//! base_rps · (1 + trend_per_day · t/day)
//!          · (1 + daily_amplitude  · cos 2π (t/day  − peak_hour/24))
//!          · (1 + weekly_amplitude · cos 2π (t/week − peak_day/7))
//!          · (burst_factor while in a burst, else 1)
//!          · (1 + Σ flash crowds: magnitude · rise then exponential decay)
//!          · (1 + noise_cv · ε),  ε ~ N(0, 1) per step
//! ```
//!
//! clamped at 0 and averaged over each step (at 8 points per step). Burst sojourns and
//! flash-crowd arrivals are exponential. The same spec and seed give the same series.

use crate::RateSeries;
use hale_sim::rng::Stream;
use serde::{Deserialize, Serialize};

const DAY_S: f64 = 86_400.0;
/// Most steps a series may have.
const MAX_STEPS: f64 = 1e7;
/// Most burst switches, or flash crowds, a series may expect.
const MAX_EVENTS: f64 = 1e6;

/// A generator, as written in a TOML file (`hale data synth`) or built in code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// Seed of the generator (bursts, flash crowds, noise).
    #[serde(default)]
    pub seed: u64,
    /// Step of the series in seconds.
    #[serde(default = "default_step")]
    pub step_s: f64,
    /// Length in seconds.
    #[serde(default = "default_duration")]
    pub duration_s: f64,
    /// Mean rate before seasonality, in requests per second.
    pub base_rps: f64,
    /// Relative growth per day (0.01: +1 % a day).
    #[serde(default)]
    pub trend_per_day: f64,
    /// Relative amplitude of the daily cycle, in [0, 1].
    #[serde(default)]
    pub daily_amplitude: f64,
    /// Hour of the daily peak.
    #[serde(default = "default_peak_hour")]
    pub peak_hour: f64,
    /// Relative amplitude of the weekly cycle, in [0, 1].
    #[serde(default)]
    pub weekly_amplitude: f64,
    /// Day of the weekly peak (0 = the first day).
    #[serde(default = "default_peak_day")]
    pub peak_day: f64,
    /// Bursts (absent: none).
    #[serde(default)]
    pub bursts: Option<Bursts>,
    /// Flash crowds (absent: none).
    #[serde(default)]
    pub flash_crowds: Option<FlashCrowds>,
    /// Coefficient of variation of multiplicative per-step noise.
    #[serde(default)]
    pub noise_cv: f64,
}

/// A two-state Markov-modulated rate: quiet, then bursts of `factor` times the rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bursts {
    /// Rate multiplier during a burst (≥ 1).
    pub factor: f64,
    /// Mean time between bursts, in seconds.
    pub mean_quiet_s: f64,
    /// Mean burst length, in seconds.
    pub mean_burst_s: f64,
}

/// Sudden surges (a link on a front page): a linear rise, then an exponential decay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashCrowds {
    /// Expected flash crowds per day.
    pub per_day: f64,
    /// Added rate at the top, relative to the rate without it (4: five times the load).
    pub magnitude: f64,
    /// Rise time in seconds.
    #[serde(default = "default_rise")]
    pub rise_s: f64,
    /// Decay time constant in seconds.
    #[serde(default = "default_decay")]
    pub decay_s: f64,
}

fn default_step() -> f64 {
    60.0
}
fn default_duration() -> f64 {
    7.0 * DAY_S
}
fn default_peak_hour() -> f64 {
    14.0
}
fn default_peak_day() -> f64 {
    2.0
}
fn default_rise() -> f64 {
    300.0
}
fn default_decay() -> f64 {
    1800.0
}

impl Synthetic {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((name.to_string(), format!("must be positive, got {v}")))
            }
        };
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err((name.to_string(), format!("must be in [0, 1], got {v}")))
            }
        };
        let non_negative = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err((name.to_string(), format!("must be ≥ 0, got {v}")))
            }
        };
        positive("step_s", self.step_s)?;
        positive("duration_s", self.duration_s)?;
        non_negative("base_rps", self.base_rps)?;
        if !self.trend_per_day.is_finite() {
            return Err(("trend_per_day".into(), "must be finite".into()));
        }
        unit("daily_amplitude", self.daily_amplitude)?;
        unit("weekly_amplitude", self.weekly_amplitude)?;
        non_negative("noise_cv", self.noise_cv)?;
        if self.duration_s / self.step_s > MAX_STEPS {
            return Err(("step_s".into(), "more than 10⁷ steps".into()));
        }
        // Switches and flash crowds are drawn up front: their expected number is bounded
        // like the steps', so a spec cannot ask for unbounded memory or time.
        let too_many = |name: &str, expected: f64| {
            if expected <= MAX_EVENTS {
                Ok(())
            } else {
                Err((
                    name.to_string(),
                    format!("asks for {expected:.3e} events over duration_s, more than 10⁶"),
                ))
            }
        };
        if let Some(b) = &self.bursts {
            if !(b.factor.is_finite() && b.factor >= 1.0) {
                return Err((
                    "bursts.factor".into(),
                    format!("must be ≥ 1, got {}", b.factor),
                ));
            }
            positive("bursts.mean_quiet_s", b.mean_quiet_s)?;
            positive("bursts.mean_burst_s", b.mean_burst_s)?;
            too_many(
                "bursts.mean_quiet_s",
                2.0 * self.duration_s / (b.mean_quiet_s + b.mean_burst_s),
            )?;
        }
        if let Some(f) = &self.flash_crowds {
            non_negative("flash_crowds.per_day", f.per_day)?;
            non_negative("flash_crowds.magnitude", f.magnitude)?;
            positive("flash_crowds.rise_s", f.rise_s)?;
            positive("flash_crowds.decay_s", f.decay_s)?;
            too_many("flash_crowds.per_day", f.per_day * self.duration_s / DAY_S)?;
        }
        Ok(())
    }

    /// The series. Call [`Synthetic::validate`] first (a spec that fails it may give
    /// an empty or odd series, never a panic).
    pub fn generate(&self) -> RateSeries {
        let n = (self.duration_s / self.step_s).ceil().max(0.0) as usize;
        let mut bursts_rng = Stream::from_key(hale_sim::rng::mix64(self.seed ^ 0xB0B5));
        let mut flash_rng = Stream::from_key(hale_sim::rng::mix64(self.seed ^ 0xF1A5));
        let mut noise_rng = Stream::from_key(hale_sim::rng::mix64(self.seed ^ 0x0015E));
        // Burst switch times, and flash-crowd starts, drawn up front.
        let mut switches = Vec::new();
        if let Some(b) = &self.bursts {
            let mut t = bursts_rng.exp(b.mean_quiet_s);
            let mut burst = true;
            while t < self.duration_s {
                switches.push(t);
                t += bursts_rng.exp(if burst {
                    b.mean_burst_s
                } else {
                    b.mean_quiet_s
                });
                burst = !burst;
            }
        }
        let mut flashes = Vec::new();
        if let Some(f) = self.flash_crowds.as_ref().filter(|f| f.per_day > 0.0) {
            let mut t = flash_rng.exp(DAY_S / f.per_day);
            while t < self.duration_s {
                flashes.push(t);
                t += flash_rng.exp(DAY_S / f.per_day);
            }
        }
        let mut next_switch = 0usize;
        let mut surge = self.flash_crowds.as_ref().map(|f| Surge::new(f, &flashes));
        let mut rps = Vec::with_capacity(n);
        const POINTS: usize = 8;
        for i in 0..n {
            let mut acc = 0.0;
            for p in 0..POINTS {
                let t = (i as f64 + (p as f64 + 0.5) / POINTS as f64) * self.step_s;
                while next_switch < switches.len() && switches[next_switch] <= t {
                    next_switch += 1;
                }
                let in_burst = next_switch % 2 == 1;
                let surge = surge.as_mut().map_or(0.0, |s| s.at(t));
                acc += self.shape_at(t, in_burst, surge);
            }
            let mut v = acc / POINTS as f64;
            if self.noise_cv > 0.0 {
                v *= 1.0 + self.noise_cv * noise_rng.normal();
            }
            rps.push(v.max(0.0));
        }
        RateSeries::new(self.step_s, rps)
    }

    /// The rate at `t` without noise, given whether a burst is on and the flash
    /// crowds' summed surge there.
    fn shape_at(&self, t: f64, in_burst: bool, surge: f64) -> f64 {
        use std::f64::consts::TAU;
        let mut v = self.base_rps * (1.0 + self.trend_per_day * t / DAY_S).max(0.0);
        v *= 1.0 + self.daily_amplitude * (TAU * (t / DAY_S - self.peak_hour / 24.0)).cos();
        v *= 1.0 + self.weekly_amplitude * (TAU * (t / (7.0 * DAY_S) - self.peak_day / 7.0)).cos();
        if in_burst && let Some(b) = &self.bursts {
            v *= b.factor;
        }
        if let Some(f) = &self.flash_crowds {
            v *= 1.0 + f.magnitude * surge;
        }
        v
    }
}

/// The flash crowds' summed surge, Σ over crowds started at s ≤ t of
/// (t − s)/rise while rising, then e^(−(t − s − rise)/decay), read at increasing t
/// in O(1) amortised: the decaying part is memoryless (carried by one factor from
/// the previous t), the rising part is a window sum, (n · t − Σ s) / rise.
struct Surge<'a> {
    rise_s: f64,
    decay_s: f64,
    /// Start times, ascending.
    starts: &'a [f64],
    /// Crowds `[rising_from, started)` are rising; those before are decaying.
    rising_from: usize,
    started: usize,
    /// Σ s over the rising crowds.
    rising_starts: f64,
    /// The decaying crowds' sum at `at`.
    decaying: f64,
    at: f64,
}

impl<'a> Surge<'a> {
    fn new(f: &FlashCrowds, starts: &'a [f64]) -> Self {
        Surge {
            rise_s: f.rise_s,
            decay_s: f.decay_s,
            starts,
            rising_from: 0,
            started: 0,
            rising_starts: 0.0,
            decaying: 0.0,
            at: 0.0,
        }
    }

    /// The surge at `t`, no earlier than the last call's.
    fn at(&mut self, t: f64) -> f64 {
        debug_assert!(t >= self.at);
        self.decaying *= (-(t - self.at) / self.decay_s).exp();
        self.at = t;
        while self.started < self.starts.len() && self.starts[self.started] <= t {
            self.rising_starts += self.starts[self.started];
            self.started += 1;
        }
        while self.rising_from < self.started && self.starts[self.rising_from] + self.rise_s <= t {
            let s = self.starts[self.rising_from];
            self.rising_starts -= s;
            self.decaying += (-(t - s - self.rise_s) / self.decay_s).exp();
            self.rising_from += 1;
        }
        let rising = self.started - self.rising_from;
        if rising == 0 {
            // No rounding carried over from crowds that have left the window.
            self.rising_starts = 0.0;
            return self.decaying;
        }
        ((rising as f64 * t - self.rising_starts) / self.rise_s).max(0.0) + self.decaying
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Synthetic {
        toml::from_str("base_rps = 100.0").unwrap()
    }

    #[test]
    fn seasonality_peaks_where_asked() {
        let s = Synthetic {
            daily_amplitude: 0.5,
            duration_s: DAY_S,
            ..base()
        }
        .generate();
        assert_eq!(s.rps.len(), 1440);
        let argmax = (0..s.rps.len())
            .max_by(|&a, &b| s.rps[a].total_cmp(&s.rps[b]))
            .unwrap();
        assert!((argmax as f64 / 60.0 - 14.0).abs() < 0.1, "{argmax}");
        // A whole day of a cosine averages to the base.
        assert!((s.mean() - 100.0).abs() < 1e-6, "{}", s.mean());
    }

    #[test]
    fn bursts_raise_the_mean_by_their_share() {
        let g = Synthetic {
            duration_s: 200.0 * DAY_S,
            step_s: 600.0,
            bursts: Some(Bursts {
                factor: 3.0,
                mean_quiet_s: 3600.0,
                mean_burst_s: 1200.0,
            }),
            ..base()
        };
        let s = g.generate();
        // A quarter of the time at 3×: mean 1.5 × base, within sampling error.
        assert!((s.mean() / 150.0 - 1.0).abs() < 0.05, "{}", s.mean());
        assert_eq!(g.generate(), s, "same seed, same series");
        let other = Synthetic { seed: 1, ..g }.generate();
        assert_ne!(other, s);
    }

    #[test]
    fn flash_crowds_add_their_integral() {
        let g = Synthetic {
            duration_s: 100.0 * DAY_S,
            step_s: 300.0,
            flash_crowds: Some(FlashCrowds {
                per_day: 2.0,
                magnitude: 4.0,
                rise_s: 600.0,
                decay_s: 1800.0,
            }),
            ..base()
        };
        let s = g.generate();
        // Each flash adds magnitude · base · (rise/2 + decay) requests.
        let per_flash = 4.0 * 100.0 * (300.0 + 1800.0);
        let flashes = (s.total() - 100.0 * g.duration_s) / per_flash;
        assert!((flashes / 200.0 - 1.0).abs() < 0.25, "{flashes}");
        assert!(s.peak() > 300.0);
    }

    /// The carried surge against the sum written out, crowd by crowd.
    #[test]
    fn carried_surge_is_the_direct_sum() {
        let direct = |f: &FlashCrowds, starts: &[f64], t: f64| -> f64 {
            starts
                .iter()
                .filter(|&&s| s <= t)
                .map(|&s| {
                    let dt = t - s;
                    if dt < f.rise_s {
                        dt / f.rise_s
                    } else {
                        (-(dt - f.rise_s) / f.decay_s).exp()
                    }
                })
                .sum()
        };
        let mut rng = Stream::from_key(7);
        for (rise_s, decay_s) in [(300.0, 1800.0), (5000.0, 10.0), (1.0, 1e53), (1e5, 1e-300)] {
            let f = FlashCrowds {
                per_day: 0.0,
                magnitude: 1.0,
                rise_s,
                decay_s,
            };
            let mut starts = vec![0.0, 0.0, 50.0];
            let mut s = 50.0;
            for _ in 0..200 {
                s += rng.exp(2000.0);
                starts.push(s);
            }
            let mut surge = Surge::new(&f, &starts);
            let mut t = 0.0;
            while t < s + 10.0 * rise_s {
                let (carried, want) = (surge.at(t), direct(&f, &starts, t));
                assert!(
                    (carried - want).abs() <= 1e-9 * (1.0 + want),
                    "rise {rise_s}, decay {decay_s}, t {t}: {carried} vs {want}"
                );
                t += rng.exp(700.0);
            }
        }
    }

    #[test]
    fn event_counts_are_bounded() {
        let e = Synthetic {
            duration_s: 100.0 * DAY_S,
            flash_crowds: Some(FlashCrowds {
                per_day: 1e5,
                magnitude: 1.0,
                rise_s: 1.0,
                decay_s: 1.0,
            }),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.0, "flash_crowds.per_day", "{e:?}");
        let e = Synthetic {
            bursts: Some(Bursts {
                factor: 2.0,
                mean_quiet_s: 1e-3,
                mean_burst_s: 1e-3,
            }),
            ..base()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.0, "bursts.mean_quiet_s", "{e:?}");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = Synthetic {
            daily_amplitude: 1.5,
            ..base()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.0, "daily_amplitude");
        assert!(toml::from_str::<Synthetic>("base_rps = 1.0\nbase_rsp = 2.0").is_err());
    }
}
