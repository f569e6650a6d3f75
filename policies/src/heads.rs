//! Categorical action heads over a flat logit vector (one per `Discrete` /
//! `MultiDiscrete` component), with the env's action mask: sampling, log-probabilities
//! and entropies.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Categorical heads over a flat logit vector: `sizes[k]` logits for head k.
#[derive(Clone, Debug, PartialEq)]
pub struct Heads {
    /// Size of each head.
    pub sizes: Vec<usize>,
}

/// Log-probabilities and entropies of a batch under masked categorical heads.
pub struct HeadStats {
    /// Log-probability of the taken actions, summed over heads, `[batch]`.
    pub log_prob: Tensor<1>,
    /// Entropy summed over heads, `[batch]`.
    pub entropy: Tensor<1>,
}

/// Logit given to masked-out actions (large negative, finite so 0 · logit stays 0).
pub const MASKED_LOGIT: f32 = -1e8;

impl Heads {
    /// Total logits.
    pub fn total(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// Log-probabilities of `actions` (`[batch, heads]`, one index per head) and
    /// entropies, with `mask` (`[batch, total]`, true = allowed) applied to `logits`.
    pub fn stats(
        &self,
        logits: Tensor<2>,
        mask: Option<Tensor<2, Bool>>,
        actions: Tensor<2, Int>,
    ) -> HeadStats {
        let logits = match mask {
            Some(m) => logits.mask_fill(m.bool_not(), MASKED_LOGIT),
            None => logits,
        };
        let mut log_prob: Option<Tensor<1>> = None;
        let mut entropy: Option<Tensor<1>> = None;
        let mut start = 0;
        for (k, &n) in self.sizes.iter().enumerate() {
            let [b, _] = logits.dims();
            let lp = log_softmax(logits.clone().slice([0..b, start..start + n]), 1);
            let a = actions.clone().slice([0..b, k..k + 1]);
            let taken = lp.clone().gather(1, a).squeeze_dim(1);
            let ent = -(lp.clone().exp() * lp).sum_dim(1).squeeze_dim(1);
            log_prob = Some(match log_prob {
                Some(x) => x + taken,
                None => taken,
            });
            entropy = Some(match entropy {
                Some(x) => x + ent,
                None => ent,
            });
            start += n;
        }
        HeadStats {
            log_prob: log_prob.expect("at least one head"),
            entropy: entropy.expect("at least one head"),
        }
    }

    /// Samples one action per head from `logits` (`batch × total`, row-major, on the
    /// CPU) with `mask` (same layout; empty: none), using uniforms from `uniform`.
    /// Returns the indices (`batch × heads`) and their summed log-probabilities.
    pub fn sample(
        &self,
        logits: &[f32],
        mask: &[bool],
        batch: usize,
        mut uniform: impl FnMut() -> f64,
    ) -> (Vec<i64>, Vec<f32>) {
        let total = self.total();
        let mut actions = Vec::with_capacity(batch * self.sizes.len());
        let mut log_probs = Vec::with_capacity(batch);
        let mut p = Vec::new();
        for row in 0..batch {
            let mut start = 0;
            let mut lp_sum = 0.0f64;
            for &n in &self.sizes {
                let l = &logits[row * total + start..row * total + start + n];
                let allowed = |i: usize| mask.is_empty() || mask[row * total + start + i];
                let max = (0..n)
                    .filter(|&i| allowed(i))
                    .map(|i| l[i] as f64)
                    .fold(f64::NEG_INFINITY, f64::max);
                p.clear();
                p.extend((0..n).map(|i| {
                    if allowed(i) {
                        (l[i] as f64 - max).exp()
                    } else {
                        0.0
                    }
                }));
                let z: f64 = p.iter().sum();
                let u = uniform() * z;
                let mut acc = 0.0;
                let mut pick = (0..n).rfind(|&i| allowed(i)).unwrap_or(0);
                for (i, &pi) in p.iter().enumerate() {
                    acc += pi;
                    if u < acc && pi > 0.0 {
                        pick = i;
                        break;
                    }
                }
                lp_sum += (p[pick] / z).ln();
                actions.push(pick as i64);
                start += n;
            }
            log_probs.push(lp_sum as f32);
        }
        (actions, log_probs)
    }
}
