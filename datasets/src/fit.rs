//! Failure models from data: time between failures and repair time per root cause,
//! fitted by maximum likelihood (exponential and Weibull), with Kolmogorov–Smirnov
//! goodness of fit, and turned into the simulator's fault processes.

use crate::lanl::{Cause, FailureLog};
use hale_sim::{FaultProcessSpec, FaultSpec, IntervalSpec};
use serde::Serialize;
use std::collections::BTreeMap;

/// Exponential fit: the MLE of the mean is the sample mean.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExponentialFit {
    /// Mean in seconds.
    pub mean_s: f64,
    /// Log-likelihood at the fit.
    pub log_likelihood: f64,
    /// KS statistic: the largest gap between the empirical and the fitted CDF.
    pub ks: f64,
    /// KS p-value (asymptotic; with fitted parameters it is conservative).
    pub ks_p: f64,
}

/// Weibull fit (shape k, scale λ): the MLE solves
/// `Σ xᵏ ln x / Σ xᵏ − 1/k − mean(ln x) = 0` for k, then `λ = (mean xᵏ)^(1/k)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeibullFit {
    /// Shape k (< 1: failures cluster; > 1: wear-out).
    pub shape: f64,
    /// Scale λ in seconds.
    pub scale_s: f64,
    /// Mean `λ Γ(1 + 1/k)` in seconds.
    pub mean_s: f64,
    /// Log-likelihood at the fit.
    pub log_likelihood: f64,
    /// KS statistic.
    pub ks: f64,
    /// KS p-value (asymptotic; with fitted parameters it is conservative).
    pub ks_p: f64,
}

/// Both fits of one sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fitted {
    /// Sample size.
    pub n: usize,
    /// Sample mean in seconds.
    pub sample_mean_s: f64,
    /// Exponential fit.
    pub exponential: ExponentialFit,
    /// Weibull fit.
    pub weibull: WeibullFit,
}

impl Fitted {
    /// Fits a sample of positive durations in seconds (`None` below 2 values).
    pub fn fit(x: &[f64]) -> Option<Fitted> {
        if x.len() < 2 || x.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
            return None;
        }
        let mut sorted = x.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let exp_ll = -n * mean.ln() - n;
        let exp_ks = ks_statistic(&sorted, |v| 1.0 - (-v / mean).exp());
        let (shape, scale) = weibull_mle(x);
        let wb_ll = x
            .iter()
            .map(|&v| {
                shape.ln() - shape * scale.ln() + (shape - 1.0) * v.ln() - (v / scale).powf(shape)
            })
            .sum::<f64>();
        let wb_ks = ks_statistic(&sorted, |v| 1.0 - (-(v / scale).powf(shape)).exp());
        Some(Fitted {
            n: x.len(),
            sample_mean_s: mean,
            exponential: ExponentialFit {
                mean_s: mean,
                log_likelihood: exp_ll,
                ks: exp_ks,
                ks_p: ks_p_value(x.len(), exp_ks),
            },
            weibull: WeibullFit {
                shape,
                scale_s: scale,
                mean_s: scale * gamma(1.0 + 1.0 / shape),
                log_likelihood: wb_ll,
                ks: wb_ks,
                ks_p: ks_p_value(x.len(), wb_ks),
            },
        })
    }

    /// The better fit by AIC (exponential: 1 parameter, Weibull: 2), as the
    /// simulator's interval, with times multiplied by `time_scale`. Below
    /// [`MIN_WEIBULL_SAMPLES`] values the exponential is kept: a shape from a handful
    /// of gaps says little.
    pub fn best(&self, time_scale: f64) -> IntervalSpec {
        let aic_exp = 2.0 - 2.0 * self.exponential.log_likelihood;
        let aic_wb = 4.0 - 2.0 * self.weibull.log_likelihood;
        if aic_wb < aic_exp && self.n >= MIN_WEIBULL_SAMPLES {
            IntervalSpec::Weibull {
                shape: self.weibull.shape,
                scale_s: self.weibull.scale_s * time_scale,
            }
        } else {
            IntervalSpec::Exponential {
                mean_s: self.exponential.mean_s * time_scale,
            }
        }
    }
}

/// Fewest values for which [`Fitted::best`] may choose the Weibull.
pub const MIN_WEIBULL_SAMPLES: usize = 10;

/// Weibull maximum-likelihood (shape, scale). The shape equation is monotone in k and
/// scale-free, so it is solved by bisection on ln k over data divided by their
/// geometric mean (no overflow of xᵏ).
pub fn weibull_mle(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean_ln = x.iter().map(|v| v.ln()).sum::<f64>() / n;
    let gm = mean_ln.exp();
    let ly: Vec<f64> = x.iter().map(|v| v.ln() - mean_ln).collect(); // ln(x / gm), mean 0
    let g = |k: f64| {
        let mut s0 = 0.0;
        let mut s1 = 0.0;
        for &l in &ly {
            let w = (k * l).exp();
            s0 += w;
            s1 += w * l;
        }
        s1 / s0 - 1.0 / k
    };
    let (mut lo, mut hi) = (-7.0f64, 7.0f64); // ln k in [e^-7, e^7]
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if g(mid.exp()) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    let k = (0.5 * (lo + hi)).exp();
    let mean_yk = ly.iter().map(|&l| (k * l).exp()).sum::<f64>() / n;
    (k, gm * mean_yk.powf(1.0 / k))
}

/// `sup |F_n − F|` over a sorted sample.
pub fn ks_statistic(sorted: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = cdf(v);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

/// Asymptotic KS p-value (Stephens' small-sample correction of the Kolmogorov
/// distribution).
pub fn ks_p_value(n: usize, d: f64) -> f64 {
    let sn = (n as f64).sqrt();
    let lambda = (sn + 0.12 + 0.11 / sn) * d;
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = j as f64;
        let term = 2.0 * (-2.0 * j * j * lambda * lambda).exp();
        sum += if j as u64 % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

/// Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error < 1e-13).
pub fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x));
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, &g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

/// Over what failures are a renewal process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Failures of one cause anywhere in one system: "a cluster like this one".
    System,
    /// Failures of one cause on one node (records without a node number form one
    /// group per system).
    Node,
}

/// The fitted model of one root cause.
#[derive(Clone, Debug, Serialize)]
pub struct CauseModel {
    /// The cause.
    pub cause: Cause,
    /// Records of this cause (in the chosen systems).
    pub records: usize,
    /// Events after merging records that start in the same minute in the same scope
    /// (multi-node outages of one event).
    pub events: usize,
    /// Time between events in seconds (`None` with fewer than 2 gaps).
    pub between: Option<Fitted>,
    /// Repair time (down time) in seconds, of the records with a positive down time.
    pub repair: Option<Fitted>,
    /// Records with zero down time, left out of the repair fit.
    pub zero_repairs: usize,
}

/// Per-cause models fitted from a failure log.
#[derive(Clone, Debug, Serialize)]
pub struct FailureModel {
    /// Renewal scope.
    pub scope: Scope,
    /// The systems the records came from.
    pub systems: Vec<u32>,
    /// One model per cause with records.
    pub causes: Vec<CauseModel>,
}

/// Targets in a scenario for the faults a model samples.
#[derive(Clone, Debug)]
pub struct FaultTargets {
    /// The service hit by crashes, bad deploys and dependency failures.
    pub service: String,
    /// The zone hit by facility outages (`None`: facilities faults are left out).
    pub zone: Option<String>,
    /// Multiplies every fitted time (e.g. 1/60 to replay LANL minutes as seconds).
    pub time_scale: f64,
}

impl FailureModel {
    /// Fits every cause from `log`, keeping the records of `systems` (empty: all).
    pub fn fit(log: &FailureLog, scope: Scope, systems: &[u32]) -> FailureModel {
        let keep = |s: u32| systems.is_empty() || systems.contains(&s);
        let mut causes = Vec::new();
        for cause in Cause::ALL {
            // Start minutes grouped by scope.
            let mut groups: BTreeMap<(u32, Option<u32>), Vec<i64>> = BTreeMap::new();
            let mut repairs = Vec::new();
            let mut zero_repairs = 0;
            let mut records = 0;
            for f in log
                .failures
                .iter()
                .filter(|f| f.cause == cause && keep(f.system))
            {
                records += 1;
                let key = match scope {
                    Scope::System => (f.system, None),
                    Scope::Node => (f.system, f.node),
                };
                groups.entry(key).or_default().push(f.started_min);
                if f.downtime_min > 0.0 {
                    repairs.push(f.downtime_min * 60.0);
                } else {
                    zero_repairs += 1;
                }
            }
            if records == 0 {
                continue;
            }
            let mut gaps = Vec::new();
            let mut events = 0;
            for starts in groups.values_mut() {
                starts.sort_unstable();
                starts.dedup();
                events += starts.len();
                gaps.extend(starts.windows(2).map(|w| (w[1] - w[0]) as f64 * 60.0));
            }
            causes.push(CauseModel {
                cause,
                records,
                events,
                between: Fitted::fit(&gaps),
                repair: Fitted::fit(&repairs),
                zero_repairs,
            });
        }
        let mut used: Vec<u32> = log
            .failures
            .iter()
            .map(|f| f.system)
            .filter(|&s| keep(s))
            .collect();
        used.sort_unstable();
        used.dedup();
        FailureModel {
            scope,
            systems: used,
            causes,
        }
    }

    /// The model of one cause.
    pub fn cause(&self, cause: Cause) -> Option<&CauseModel> {
        self.causes.iter().find(|c| c.cause == cause)
    }

    /// The simulator's fault processes: one per cause with a time-between-failures fit,
    /// the better of the two fits by AIC. Hardware → host failure (repair: the mean
    /// fitted repair time), software, undetermined and unrecorded → replica crash, network →
    /// dependency failure and facilities → zone outage (for the mean repair time),
    /// human error → bad deploy (error rate 0.5, until rolled back).
    pub fn fault_processes(&self, targets: &FaultTargets) -> Vec<FaultProcessSpec> {
        let scale = targets.time_scale;
        let mut out = Vec::new();
        for c in &self.causes {
            let Some(between) = &c.between else { continue };
            let repair_s = c
                .repair
                .as_ref()
                .map_or(60.0, |r| r.sample_mean_s * scale)
                .max(1e-3);
            let (target, fault) = match c.cause {
                Cause::Hardware => (
                    "any".to_string(),
                    FaultSpec::HostFailure {
                        repair_s: Some(repair_s),
                    },
                ),
                Cause::Software | Cause::Undetermined | Cause::Unrecorded => {
                    (targets.service.clone(), FaultSpec::Crash)
                }
                Cause::Network => (
                    targets.service.clone(),
                    FaultSpec::DependencyFailure {
                        duration_s: repair_s,
                    },
                ),
                Cause::Facilities => match &targets.zone {
                    Some(z) => (
                        z.clone(),
                        FaultSpec::ZoneOutage {
                            duration_s: repair_s,
                        },
                    ),
                    None => continue,
                },
                Cause::HumanError => (
                    targets.service.clone(),
                    FaultSpec::BadDeploy { error_rate: 0.5 },
                ),
            };
            out.push(FaultProcessSpec {
                target,
                fault,
                every: between.best(scale),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hale_sim::rng::Stream;

    #[test]
    fn gamma_matches_known_values() {
        assert!((gamma(1.0) - 1.0).abs() < 1e-13);
        assert!((gamma(5.0) - 24.0).abs() < 1e-11);
        assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-13);
        assert!((gamma(1.5) - 0.5 * std::f64::consts::PI.sqrt()).abs() < 1e-13);
    }

    #[test]
    fn weibull_mle_recovers_its_parameters() {
        let mut s = Stream::from_key(11);
        for (k, lam) in [(0.7, 3600.0), (1.0, 50.0), (2.5, 1e6)] {
            let spec = IntervalSpec::Weibull {
                shape: k,
                scale_s: lam,
            };
            let x: Vec<f64> = (0..20_000).map(|_| spec.sample_s(s.unit())).collect();
            let f = Fitted::fit(&x).unwrap();
            // Standard error of the shape MLE ≈ 0.78 k / √n ≈ 0.0055 k.
            assert!((f.weibull.shape / k - 1.0).abs() < 0.03, "{k}: {f:?}");
            assert!((f.weibull.scale_s / lam - 1.0).abs() < 0.03, "{lam}: {f:?}");
            // A right model: small KS; the p-value is not tiny.
            assert!(f.weibull.ks < 0.015 && f.weibull.ks_p > 0.01, "{f:?}");
            if k != 1.0 {
                // The wrong model is rejected by both AIC and KS.
                assert!(matches!(f.best(1.0), IntervalSpec::Weibull { .. }));
                assert!(f.exponential.ks > 3.0 * f.weibull.ks, "{f:?}");
            }
        }
    }
}
