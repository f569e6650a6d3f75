//! The simpler baselines: static, random, no-op, threshold rules and a forecasting
//! autoscaler.

use crate::scaling_obs::ScalingView;
use crate::{ActError, Policy, Value};
use hale_envs::Space;
use hale_sim::rng::Stream;

/// Keeps every service at a fixed count (by default the scenario's initial sizing).
pub struct Static {
    view: ScalingView,
    counts: Vec<u32>,
}

impl Static {
    /// A static policy holding `counts`.
    pub fn new(view: ScalingView, counts: Vec<u32>) -> Static {
        Static { view, counts }
    }
}

impl Policy for Static {
    fn name(&self) -> &str {
        "static"
    }
    fn act(&mut self, _obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        Ok(self.view.action(&self.counts))
    }
    fn reset(&mut self) {}
}

/// Uniform random actions within the mask.
pub struct Random {
    space: Space,
    rng: Stream,
}

impl Random {
    /// A random policy over `space`, seeded.
    pub fn new(space: Space, seed: u64) -> Random {
        Random {
            space,
            rng: Stream::from_key(seed ^ 0x7a4d),
        }
    }
}

impl Policy for Random {
    fn name(&self) -> &str {
        "random"
    }
    fn act(&mut self, _obs: &Value, mask: Option<&[bool]>) -> Result<Value, ActError> {
        Ok(self.space.sample(&mut self.rng, mask))
    }
    fn reset(&mut self) {}
}

/// Always action 0 (Discrete spaces: "do nothing" in Healing-v0).
pub struct Noop;

impl Noop {
    /// A no-op for a Discrete action space.
    pub fn new(space: &Space) -> Result<Noop, crate::Unfit> {
        match space {
            Space::Discrete { .. } => Ok(Noop),
            _ => Err(crate::Unfit("noop needs a Discrete action space")),
        }
    }
}

impl Policy for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn act(&mut self, _obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        Ok(Value::Discrete(0))
    }
    fn reset(&mut self) {}
}

/// Threshold rules: one replica more above 70 % utilisation, one fewer below 30 %,
/// then a 60 s cool-down for that service.
pub struct Threshold {
    view: ScalingView,
    interval_s: f64,
    cooldown_until: Vec<f64>,
    time: f64,
    /// Scale out above this utilisation.
    pub upper: f64,
    /// Scale in below this utilisation.
    pub lower: f64,
    /// Seconds after a change before the next.
    pub cooldown_s: f64,
}

impl Threshold {
    /// Threshold rules for every service.
    pub fn new(view: ScalingView, interval_s: f64) -> Threshold {
        Threshold {
            cooldown_until: vec![0.0; view.services],
            view,
            interval_s,
            time: 0.0,
            upper: 0.7,
            lower: 0.3,
            cooldown_s: 60.0,
        }
    }
}

impl Policy for Threshold {
    fn name(&self) -> &str {
        "threshold"
    }
    fn act(&mut self, obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        let now = self.time;
        self.time += self.interval_s;
        let counts: Vec<u32> = self
            .view
            .read(obs)
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if now < self.cooldown_until[i] || s.ready == 0 {
                    return s.desired;
                }
                let next = if s.cpu > self.upper {
                    s.desired + 1
                } else if s.cpu < self.lower {
                    s.desired.saturating_sub(1)
                } else {
                    s.desired
                };
                if next != s.desired {
                    self.cooldown_until[i] = now + self.cooldown_s;
                }
                next
            })
            .collect();
        Ok(self.view.action(&counts))
    }
    fn reset(&mut self) {
        self.cooldown_until.fill(0.0);
        self.time = 0.0;
    }
}

/// Holt-Winters additive smoothing of one series, with a seasonal period in steps.
#[derive(Clone, Debug)]
pub struct HoltWinters {
    alpha: f64,
    beta: f64,
    gamma: f64,
    level: Option<f64>,
    trend: f64,
    season: Vec<f64>,
    t: usize,
    last: f64,
}

impl HoltWinters {
    /// Smoothing factors for level, trend and season; `period` steps per season.
    pub fn new(alpha: f64, beta: f64, gamma: f64, period: usize) -> HoltWinters {
        HoltWinters {
            alpha,
            beta,
            gamma,
            level: None,
            trend: 0.0,
            season: vec![0.0; period.max(1)],
            t: 0,
            last: 0.0,
        }
    }

    /// Folds in the next observation. The first season initialises the model (level
    /// = its mean, seasonal terms = deviations from it); until then forecasts are the
    /// last value.
    pub fn update(&mut self, y: f64) {
        let p = self.season.len();
        let t = self.t;
        self.t += 1;
        if t < p {
            self.season[t] = y;
            self.last = y;
            if t + 1 == p {
                let mean = self.season.iter().sum::<f64>() / p as f64;
                self.season.iter_mut().for_each(|v| *v -= mean);
                self.level = Some(mean);
            }
            return;
        }
        let Some(level) = self.level else { return };
        let i = t % p;
        let s = self.season[i];
        let new_level = self.alpha * (y - s) + (1.0 - self.alpha) * (level + self.trend);
        self.trend = self.beta * (new_level - level) + (1.0 - self.beta) * self.trend;
        self.season[i] = self.gamma * (y - new_level) + (1.0 - self.gamma) * s;
        self.level = Some(new_level);
        self.last = y;
    }

    /// Forecast `h` steps ahead (h ≥ 1).
    pub fn forecast(&self, h: usize) -> f64 {
        let p = self.season.len();
        match self.level {
            Some(level) if self.t >= p => {
                level + h as f64 * self.trend + self.season[(self.t + h - 1) % p]
            }
            _ => self.last,
        }
    }
}

/// A predictive autoscaler: forecasts each service's request rate one boot time ahead
/// (Holt-Winters, one-hour season) and provisions for it at 60 % utilisation, using a
/// running estimate of what one replica serves at full utilisation.
pub struct Forecast {
    view: ScalingView,
    models: Vec<HoltWinters>,
    capacity: Vec<Option<f64>>,
    lead_steps: usize,
    /// Utilisation to provision for.
    pub target: f64,
}

impl Forecast {
    /// A forecaster for every service, deciding every `interval_s`.
    pub fn new(view: ScalingView, interval_s: f64) -> Forecast {
        let period = (3600.0 / interval_s).round().max(1.0) as usize;
        Forecast {
            models: vec![HoltWinters::new(0.5, 0.05, 0.3, period); view.services],
            capacity: vec![None; view.services],
            view,
            lead_steps: (60.0 / interval_s).ceil().max(1.0) as usize,
            target: 0.6,
        }
    }
}

impl Policy for Forecast {
    fn name(&self) -> &str {
        "forecast"
    }
    fn act(&mut self, obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        let counts: Vec<u32> = self
            .view
            .read(obs)
            .iter()
            .enumerate()
            .map(|(i, s)| {
                self.models[i].update(s.rate);
                if s.cpu > 0.05 && s.ready > 0 {
                    let per_replica = s.rate / (s.cpu * s.ready as f64);
                    let c = self.capacity[i].get_or_insert(per_replica);
                    *c = 0.8 * *c + 0.2 * per_replica;
                }
                match self.capacity[i] {
                    Some(cap) if cap > 0.0 => {
                        let rate = self.models[i]
                            .forecast(self.lead_steps)
                            .max(s.rate)
                            .max(0.0);
                        (rate / (cap * self.target)).ceil() as u32
                    }
                    _ => s.desired,
                }
            })
            .collect();
        Ok(self.view.action(&counts))
    }
    fn reset(&mut self) {
        let period = self.models.first().map(|m| m.season.len()).unwrap_or(1);
        self.models
            .iter_mut()
            .for_each(|m| *m = HoltWinters::new(0.5, 0.05, 0.3, period));
        self.capacity.fill(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holt_winters_learns_a_seasonal_series() {
        // y = 100 + 50 sin(2π t / 24): after a few seasons the one-step forecast error
        // is small compared with the amplitude.
        let mut hw = HoltWinters::new(0.5, 0.05, 0.3, 24);
        let y = |t: usize| 100.0 + 50.0 * (std::f64::consts::TAU * t as f64 / 24.0).sin();
        for t in 0..24 * 6 {
            hw.update(y(t));
        }
        let t = 24 * 6;
        for h in 1..6 {
            let err = (hw.forecast(h) - y(t + h - 1)).abs();
            assert!(
                err < 5.0,
                "h = {h}: forecast {} vs {}",
                hw.forecast(h),
                y(t + h - 1)
            );
        }
    }
}
