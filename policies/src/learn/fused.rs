//! PPO's update for the MLP actor-critic on the CPU, fused: the forward pass, PPO's
//! loss, its gradient by hand, global-norm clipping and Adam over plain `f32`
//! buffers that live as long as the run, with the matrix products on the same
//! `gemm` kernels burn's flex backend uses.
//!
//! Why: a CartPole-sized network (4 → 64 → 64 → 2) does little arithmetic per
//! minibatch, so under burn's autodiff most of an update was bookkeeping (a tensor
//! allocated and a graph node recorded per operation, the activation evaluated again
//! in the backward pass, Adam as a dozen tensor operations per parameter). The
//! function computed is the same as [`super::ppo`]'s burn path (`fused = false`):
//! `tests` compares one minibatch's gradient and Adam step with burn's autodiff.
//!
//! The burn module stays the run's source of truth for everything else
//! (checkpoints, evaluation, bundles): [`FusedMlp::write_into`] copies the weights
//! back after each update.

use super::ppo::PpoConfig;
use crate::heads::{Heads, MASKED_LOGIT};
use crate::mlp::ActorCritic;

/// Adam's constants, as [`super::ppo`] configures burn's (`AdamConfig`, ε 1e-5).
pub(super) const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

/// One dense layer, `y = x·W + b`, with `W` `[d_in, d_out]` row-major (burn's
/// `Linear` layout), and Adam's moments.
pub(super) struct Dense {
    pub(super) d_in: usize,
    pub(super) d_out: usize,
    pub(super) w: Vec<f32>,
    pub(super) b: Vec<f32>,
    /// First and second moments of `w`, then of `b`.
    pub(super) moments: [Vec<f32>; 4],
}

impl Dense {
    pub(super) fn new(w: Vec<f32>, b: Vec<f32>, d_in: usize, d_out: usize) -> Dense {
        debug_assert_eq!(w.len(), d_in * d_out);
        debug_assert_eq!(b.len(), d_out);
        Dense {
            d_in,
            d_out,
            moments: [
                vec![0.0; w.len()],
                vec![0.0; w.len()],
                vec![0.0; b.len()],
                vec![0.0; b.len()],
            ],
            w,
            b,
        }
    }

    /// `out[r · out_row ..][..d_out] = x_r · W + b` for `rows` rows of `x`.
    pub(super) fn forward(&self, rows: usize, x: Src<'_>, out: &mut [f32], out_row: usize) {
        for r in 0..rows {
            out[r * out_row..r * out_row + self.d_out].copy_from_slice(&self.b);
        }
        matmul(
            rows,
            self.d_out,
            self.d_in,
            Dst {
                buf: out,
                row: out_row,
            },
            true,
            x,
            Src {
                buf: &self.w,
                row: self.d_out,
                col: 1,
            },
        );
    }

    /// `grad.w = xᵀ · g_out`, `grad.b` = column sums of `g_out` (`[rows, d_out]`).
    pub(super) fn weight_grad(&self, rows: usize, x: Src<'_>, g_out: &[f32], grad: &mut Grad) {
        grad.w.clear();
        grad.w.resize(self.w.len(), 0.0);
        matmul(
            self.d_in,
            self.d_out,
            rows,
            Dst {
                buf: &mut grad.w,
                row: self.d_out,
            },
            false,
            Src {
                buf: x.buf,
                row: x.col,
                col: x.row,
            },
            Src {
                buf: g_out,
                row: self.d_out,
                col: 1,
            },
        );
        grad.b.clear();
        grad.b.resize(self.d_out, 0.0);
        for row in g_out.chunks_exact(self.d_out) {
            for (b, &g) in grad.b.iter_mut().zip(row) {
                *b += g;
            }
        }
    }

    /// `out (+)= g_out · Wᵀ`, `[rows, d_in]`: the gradient with respect to the input.
    pub(super) fn input_grad(&self, rows: usize, g_out: &[f32], out: &mut [f32], accumulate: bool) {
        matmul(
            rows,
            self.d_in,
            self.d_out,
            Dst {
                buf: out,
                row: self.d_in,
            },
            accumulate,
            Src {
                buf: g_out,
                row: self.d_out,
                col: 1,
            },
            Src {
                buf: &self.w,
                row: 1,
                col: self.d_out,
            },
        );
    }
}

/// A row-major matrix of rows `width` long.
pub(super) fn matrix(buf: &[f32], width: usize) -> Src<'_> {
    Src {
        buf,
        row: width,
        col: 1,
    }
}

/// A layer's gradient.
#[derive(Clone, Default)]
pub(super) struct Grad {
    pub(super) w: Vec<f32>,
    pub(super) b: Vec<f32>,
}

/// Tanh hidden layers and a linear head.
struct Tower {
    layers: Vec<Dense>,
}

/// One tower's forward outputs and gradients in one pass.
#[derive(Default)]
struct TowerWork {
    /// `[rows, d_out]` per layer: after tanh for hidden layers, the head's raw output.
    out: Vec<Vec<f32>>,
    grads: Vec<Grad>,
}

impl Tower {
    /// The head's output for `rows` inputs, into `work.out`: row `r` is
    /// `x[r · x_stride ..]`, of which the first layer reads its `d_in` values.
    fn forward(&self, work: &mut TowerWork, x: &[f32], rows: usize, x_stride: usize) {
        let last = self.layers.len() - 1;
        work.out.resize_with(self.layers.len(), Vec::new);
        for (i, l) in self.layers.iter().enumerate() {
            let (before, rest) = work.out.split_at_mut(i);
            let out = &mut rest[0];
            out.resize(rows * l.d_out, 0.0);
            let input = match before.last() {
                Some(prev) => matrix(prev, l.d_in),
                None => matrix(x, x_stride),
            };
            l.forward(rows, input, out, l.d_out);
            if i < last {
                tanh_in_place(out);
            }
        }
    }

    /// Every weight's gradient into `work.grads`, from `grad` (`[rows, head outputs]`,
    /// the loss's gradient with respect to the head's output) after a forward pass on
    /// `x`; `grad` and `spare` are used as scratch.
    fn backward(
        &self,
        work: &mut TowerWork,
        x: &[f32],
        rows: usize,
        x_stride: usize,
        grad: &mut Vec<f32>,
        spare: &mut Vec<f32>,
    ) {
        let last = self.layers.len() - 1;
        work.grads.resize_with(self.layers.len(), Grad::default);
        for i in (0..=last).rev() {
            if i < last {
                // Through tanh: dy/dx = 1 − y².
                for (g, &y) in grad.iter_mut().zip(&work.out[i]) {
                    *g *= 1.0 - y * y;
                }
            }
            let input = match i {
                0 => matrix(x, x_stride),
                _ => matrix(&work.out[i - 1], self.layers[i - 1].d_out),
            };
            let l = &self.layers[i];
            l.weight_grad(rows, input, grad, &mut work.grads[i]);
            if i > 0 {
                spare.clear();
                spare.resize(rows * l.d_in, 0.0);
                l.input_grad(rows, grad, spare, false);
                std::mem::swap(grad, spare);
            }
        }
    }
}

/// One pass's buffers (a forward pass, or a share of a minibatch's gradient),
/// reused from one minibatch to the next.
#[derive(Default)]
struct Work {
    actor: TowerWork,
    critic: TowerWork,
    head: HeadGrad,
    spare: Vec<f32>,
}

/// The loss's gradient with respect to a network's outputs (logits and values), and
/// the buffers PPO's loss computes it in, reused from one minibatch to the next.
#[derive(Default)]
pub struct HeadGrad {
    /// `[rows, logits]`: the logits' gradient (PPO: log-probabilities per head first).
    pub logits: Vec<f32>,
    /// `[rows]`: the values' gradient.
    pub values: Vec<f32>,
    /// `[rows, heads]`: each head's entropy.
    entropies: Vec<f32>,
    /// `[rows]`: the loss's gradient with respect to each log-probability.
    grad_logprob: Vec<f32>,
    /// `[rows]`: log π_new − log π_old.
    pub(super) log_ratio: Vec<f32>,
}

/// The sums over a share of a minibatch that its losses are the means of.
#[derive(Default)]
pub(super) struct Sums {
    pub(super) policy: f64,
    pub(super) value: f64,
    pub(super) entropy: f64,
}

impl Sums {
    /// The losses of a minibatch of `rows` with these sums.
    pub(super) fn means(&self, rows: usize) -> LossValues {
        let rows = rows as f64;
        LossValues {
            policy: self.policy / rows,
            value: 0.5 * self.value / rows,
            entropy: self.entropy / rows,
        }
    }
}

impl std::ops::Add for Sums {
    type Output = Sums;
    fn add(self, o: Sums) -> Sums {
        Sums {
            policy: self.policy + o.policy,
            value: self.value + o.value,
            entropy: self.entropy + o.entropy,
        }
    }
}

/// The actor-critic's weights and Adam state as plain buffers, and the buffers of
/// the two halves of a minibatch, whose gradients are computed side by side.
pub(crate) struct FusedMlp {
    actor: Tower,
    critic: Tower,
    obs_dim: usize,
    /// Adam steps taken.
    time: i32,
    work: [Work; 2],
}

/// One minibatch, gathered: `rows` transitions.
pub(crate) struct Minibatch<'a> {
    /// `[rows, obs_dim]`.
    pub obs: &'a [f32],
    /// `[rows, heads]`.
    pub actions: &'a [i64],
    /// `[rows, logits]`, true = allowed; empty when the env gives no masks.
    pub masks: &'a [bool],
    /// `[rows]` each.
    pub old_logprob: &'a [f32],
    pub old_value: &'a [f32],
    pub returns: &'a [f32],
    /// Normalised already when `norm_adv`.
    pub advantages: &'a [f32],
}

impl Minibatch<'_> {
    /// Rows `from..to`, of `obs_dim` features and `heads` heads over `logits` logits.
    pub(super) fn rows(
        &self,
        (from, to): (usize, usize),
        obs_dim: usize,
        heads: &Heads,
    ) -> Minibatch<'_> {
        let (logits, heads) = (heads.total(), heads.sizes.len());
        Minibatch {
            obs: &self.obs[from * obs_dim..to * obs_dim],
            actions: &self.actions[from * heads..to * heads],
            masks: if self.masks.is_empty() {
                &[]
            } else {
                &self.masks[from * logits..to * logits]
            },
            old_logprob: &self.old_logprob[from..to],
            old_value: &self.old_value[from..to],
            returns: &self.returns[from..to],
            advantages: &self.advantages[from..to],
        }
    }
}

/// What a minibatch's loss came to (means over the minibatch).
pub(crate) struct LossValues {
    pub policy: f64,
    pub value: f64,
    pub entropy: f64,
}

/// A minibatch smaller than this is not split in two.
pub(crate) const SPLIT_ROWS: usize = 64;

impl FusedMlp {
    /// The buffers of `model` (every layer with a bias, as [`ActorCritic`] builds
    /// them; `None` otherwise).
    pub(crate) fn from_model(model: &ActorCritic, obs_dim: usize) -> Option<FusedMlp> {
        let (actor, critic) = model.dense_layers()?;
        let tower = |layers: Vec<(Vec<f32>, Vec<f32>, [usize; 2])>| Tower {
            layers: layers
                .into_iter()
                .map(|(w, b, [d_in, d_out])| Dense::new(w, b, d_in, d_out))
                .collect(),
        };
        Some(FusedMlp {
            actor: tower(actor),
            critic: tower(critic),
            obs_dim,
            time: 0,
            work: Default::default(),
        })
    }

    /// `model` with this network's weights (same parameters, same ids).
    pub(crate) fn write_into(&self, model: &ActorCritic) -> ActorCritic {
        fn pairs(t: &Tower) -> Vec<(&[f32], &[f32])> {
            t.layers
                .iter()
                .map(|l| (l.w.as_slice(), l.b.as_slice()))
                .collect()
        }
        model.with_dense_layers(&pairs(&self.actor), &pairs(&self.critic))
    }

    /// Takes `model`'s weights (a network of this one's shapes), keeping Adam's state.
    pub(crate) fn load_weights(&mut self, model: &ActorCritic) {
        let (actor, critic) = model
            .dense_layers()
            .expect("the layers this network was built from");
        let layers = layers_mut(&mut self.actor, &mut self.critic);
        for (l, (w, b, _)) in layers.into_iter().zip(actor.into_iter().chain(critic)) {
            debug_assert_eq!((l.w.len(), l.b.len()), (w.len(), b.len()));
            (l.w, l.b) = (w, b);
        }
    }

    /// Logits `[rows, logits]` and values `[rows]` of `rows` flat observations.
    pub(crate) fn forward(&mut self, obs: &[f32], rows: usize) -> (&[f32], &[f32]) {
        debug_assert_eq!(obs.len(), rows * self.obs_dim);
        let work = &mut self.work[0];
        self.actor.forward(&mut work.actor, obs, rows, self.obs_dim);
        self.critic
            .forward(&mut work.critic, obs, rows, self.obs_dim);
        (
            work.actor.out.last().expect("a head"),
            work.critic.out.last().expect("a head"),
        )
    }

    /// PPO's loss on `batch` and its gradient, with the log-ratios written to
    /// `log_ratio`. Leaves the gradient in place for [`FusedMlp::clip_and_step`].
    ///
    /// A minibatch of at least [`SPLIT_ROWS`] is computed as two halves side by side
    /// (rayon), their gradients added in a fixed order: the same result whatever the
    /// thread count.
    pub(crate) fn loss_and_gradient(
        &mut self,
        batch: &Minibatch<'_>,
        heads: &Heads,
        cfg: &PpoConfig,
        log_ratio: &mut Vec<f32>,
    ) -> LossValues {
        let rows = batch.old_logprob.len();
        let [w0, w1] = &mut self.work;
        let net = (&self.actor, &self.critic, self.obs_dim);
        let sums = if rows >= SPLIT_ROWS {
            let half = rows / 2;
            let (a, b) = (
                batch.rows((0, half), self.obs_dim, heads),
                batch.rows((half, rows), self.obs_dim, heads),
            );
            let (s0, s1) = rayon::join(
                || share(net, w0, &a, rows, heads, cfg),
                || share(net, w1, &b, rows, heads, cfg),
            );
            for (tower0, tower1) in [(&mut w0.actor, &w1.actor), (&mut w0.critic, &w1.critic)] {
                for (g0, g1) in tower0.grads.iter_mut().zip(&tower1.grads) {
                    for (x, y) in g0.w.iter_mut().zip(&g1.w) {
                        *x += y;
                    }
                    for (x, y) in g0.b.iter_mut().zip(&g1.b) {
                        *x += y;
                    }
                }
            }
            log_ratio.clear();
            log_ratio.extend_from_slice(&w0.head.log_ratio);
            log_ratio.extend_from_slice(&w1.head.log_ratio);
            s0 + s1
        } else {
            let s = share(net, w0, batch, rows, heads, cfg);
            log_ratio.clear();
            log_ratio.extend_from_slice(&w0.head.log_ratio);
            s
        };
        sums.means(rows)
    }

    /// Scales the gradient to a global L2 norm of at most `max_norm` (as
    /// [`super::ppo::clip_global_norm`]) and takes one Adam step at `lr`.
    pub(crate) fn clip_and_step(&mut self, max_norm: f32, lr: f64) {
        let work = &self.work[0];
        let grads: Vec<&Grad> = work.actor.grads.iter().chain(&work.critic.grads).collect();
        let mut layers = layers_mut(&mut self.actor, &mut self.critic);
        clip_and_adam(&mut layers, &grads, &mut self.time, max_norm, lr);
    }

    /// Every layer's gradient from the last [`FusedMlp::loss_and_gradient`]: weight,
    /// bias, next layer …, actor then critic.
    #[cfg(test)]
    pub(crate) fn gradients(&self) -> Vec<Vec<f32>> {
        let work = &self.work[0];
        let grads = work.actor.grads.iter().chain(&work.critic.grads);
        grads.flat_map(|g| [g.w.clone(), g.b.clone()]).collect()
    }

    /// Adam's state as bytes, for checkpoints (see [`adam_state_bytes`]).
    pub(crate) fn adam_bytes(&self) -> Vec<u8> {
        let layers: Vec<&Dense> = self
            .actor
            .layers
            .iter()
            .chain(&self.critic.layers)
            .collect();
        adam_state_bytes(self.time, &layers)
    }

    /// Restores [`FusedMlp::adam_bytes`]' output; on an error (bytes not of this
    /// network's shapes) nothing changes.
    pub(crate) fn set_adam_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.time = set_adam_state(bytes, &mut layers_mut(&mut self.actor, &mut self.critic))?;
        Ok(())
    }
}

/// Every layer of both towers, `actor`'s first.
fn layers_mut<'a>(actor: &'a mut Tower, critic: &'a mut Tower) -> Vec<&'a mut Dense> {
    actor.layers.iter_mut().chain(&mut critic.layers).collect()
}

/// Scales `grads` (one per layer of `layers`) to a global L2 norm of at most
/// `max_norm` (as [`super::ppo::clip_global_norm`]) and takes one Adam step at `lr`,
/// counting it in `time`.
pub(super) fn clip_and_adam(
    layers: &mut [&mut Dense],
    grads: &[&Grad],
    time: &mut i32,
    max_norm: f32,
    lr: f64,
) {
    debug_assert_eq!(layers.len(), grads.len());
    let sq: f64 = grads
        .iter()
        .map(|g| {
            let sum = |g: &[f32]| g.iter().map(|&x| x * x).sum::<f32>();
            f64::from(sum(&g.w)) + f64::from(sum(&g.b))
        })
        .sum();
    let norm = sq.sqrt() as f32;
    let scale = if norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    };
    *time += 1;
    let bias2 = (1.0 - BETA_2.powi(*time)).sqrt();
    let factor = bias2 / (1.0 - BETA_1.powi(*time));
    let lr = lr as f32;
    for (l, g) in layers.iter_mut().zip(grads) {
        let [m_w, v_w, m_b, v_b] = &mut l.moments;
        adam(&mut l.w, &g.w, m_w, v_w, scale, factor, bias2, lr);
        adam(&mut l.b, &g.b, m_b, v_b, scale, factor, bias2, lr);
    }
}

/// Adam's state as bytes, for checkpoints: the step count `time`, then every layer's
/// moments (weights' first and second, biases' first and second), each as a length
/// and its values, all little-endian.
pub(super) fn adam_state_bytes(time: i32, layers: &[&Dense]) -> Vec<u8> {
    let mut out = time.to_le_bytes().to_vec();
    for l in layers {
        for m in &l.moments {
            out.extend_from_slice(&(m.len() as u64).to_le_bytes());
            for v in m {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    out
}

/// Restores [`adam_state_bytes`]' output into `layers`' moments and returns the step
/// count; on an error (bytes not of these layers' shapes) nothing changes.
pub(super) fn set_adam_state(bytes: &[u8], layers: &mut [&mut Dense]) -> Result<i32, String> {
    let mut at = 0;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let chunk = bytes
            .get(at..at + n)
            .ok_or_else(|| format!("ends at byte {} of {}", bytes.len(), at + n))?;
        at += n;
        Ok(chunk)
    };
    let time = i32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut moments = Vec::new();
    for l in layers.iter() {
        for m in &l.moments {
            let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
            if len != m.len() {
                return Err(format!(
                    "a moment of {len} values where the network's layer has {}",
                    m.len()
                ));
            }
            let values = take(4 * len)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect::<Vec<f32>>();
            moments.push(values);
        }
    }
    if at != bytes.len() {
        return Err(format!("{} bytes past the last moment", bytes.len() - at));
    }
    let mut moments = moments.into_iter();
    for l in layers.iter_mut() {
        for slot in &mut l.moments {
            *slot = moments.next().expect("one per moment, counted above");
        }
    }
    Ok(time)
}

/// One share of a minibatch of `m` rows (`batch`, some of them): its loss sums, and
/// its part of the minibatch's gradient (each row weighted `1 / m`) in `work`.
fn share(
    (actor, critic, obs_dim): (&Tower, &Tower, usize),
    work: &mut Work,
    batch: &Minibatch<'_>,
    m: usize,
    heads: &Heads,
    cfg: &PpoConfig,
) -> Sums {
    let rows = batch.old_logprob.len();
    actor.forward(&mut work.actor, batch.obs, rows, obs_dim);
    critic.forward(&mut work.critic, batch.obs, rows, obs_dim);
    let logits = work.actor.out.last().expect("a head");
    let values = work.critic.out.last().expect("a head");
    let sums = ppo_gradient(logits, values, batch, m, heads, cfg, &mut work.head);
    let mut grad = std::mem::take(&mut work.head.logits);
    actor.backward(
        &mut work.actor,
        batch.obs,
        rows,
        obs_dim,
        &mut grad,
        &mut work.spare,
    );
    work.head.logits = grad;
    let mut grad = std::mem::take(&mut work.head.values);
    critic.backward(
        &mut work.critic,
        batch.obs,
        rows,
        obs_dim,
        &mut grad,
        &mut work.spare,
    );
    work.head.values = grad;
    sums
}

/// PPO's loss on `batch` (a share of a minibatch of `m` rows) given the network's
/// `logits` `[rows, heads.total()]` and `values` `[rows]`: its sums, and its
/// gradient with respect to the logits and values (each row weighted `1 / m`) in
/// `out.logits` and `out.values`; the log-ratios in `out.log_ratio`.
pub(super) fn ppo_gradient(
    logits: &[f32],
    values: &[f32],
    batch: &Minibatch<'_>,
    m: usize,
    heads: &Heads,
    cfg: &PpoConfig,
    out: &mut HeadGrad,
) -> Sums {
    let rows = batch.old_logprob.len();
    let total = heads.total();
    let num_heads = heads.sizes.len();
    let (clip, m) = (cfg.clip_coef as f32, m as f32);
    let (ent_coef, vf_coef) = (cfg.ent_coef as f32, cfg.vf_coef as f32);
    let mut sums = Sums::default();

    // Per head: masked log-softmax into `out.logits`, the taken action's log-probability
    // and the entropy.
    out.logits.clear();
    out.logits.extend_from_slice(logits);
    out.entropies.clear();
    out.entropies.resize(rows * num_heads, 0.0);
    out.log_ratio.clear();
    out.grad_logprob.clear();
    for r in 0..rows {
        let mut logprob = 0.0f32;
        let mut start = 0;
        for (k, &n) in heads.sizes.iter().enumerate() {
            let z = &mut out.logits[r * total + start..r * total + start + n];
            if !batch.masks.is_empty() {
                let mask = &batch.masks[r * total + start..r * total + start + n];
                for (zj, &allowed) in z.iter_mut().zip(mask) {
                    if !allowed {
                        *zj = MASKED_LOGIT;
                    }
                }
            }
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = z.iter().map(|&zj| (zj - max).exp()).sum();
            let lse = max + sum.ln();
            let mut h = 0.0f32;
            for zj in z.iter_mut() {
                *zj -= lse;
                h -= zj.exp() * *zj;
            }
            logprob += z[batch.actions[r * num_heads + k] as usize];
            out.entropies[r * num_heads + k] = h;
            sums.entropy += f64::from(h);
            start += n;
        }
        let lr = logprob - batch.old_logprob[r];
        out.log_ratio.push(lr);
        let ratio = lr.exp();
        let a = batch.advantages[r];
        let pg1 = -a * ratio;
        let pg2 = -a * ratio.clamp(1.0 - clip, 1.0 + clip);
        sums.policy += f64::from(pg1.max(pg2));
        // d pg / d ratio: −A where the unclipped term is the larger (always so inside
        // the clip range, where both are equal); 0 where the clipped one is.
        let slope = if pg1 >= pg2 { -a } else { 0.0 };
        out.grad_logprob.push(slope * ratio / m);
    }

    // The logits' gradient, in place of the log-probabilities: the policy term
    // (one-hot − p) and the entropy bonus's −ent_coef · dH/dz = ent_coef · p (log p + H).
    for r in 0..rows {
        let mut start = 0;
        for (k, &n) in heads.sizes.iter().enumerate() {
            let h = out.entropies[r * num_heads + k];
            let taken = batch.actions[r * num_heads + k] as usize;
            let row = r * total + start;
            for j in 0..n {
                let allowed = batch.masks.is_empty() || batch.masks[row + j];
                let lp = out.logits[row + j];
                let p = lp.exp();
                let onehot = if j == taken { 1.0 } else { 0.0 };
                out.logits[row + j] = if allowed {
                    out.grad_logprob[r] * (onehot - p) + ent_coef / m * p * (lp + h)
                } else {
                    0.0
                };
            }
            start += n;
        }
    }

    // The value loss, 0.5 · mean of the (clipped) squared error, and its gradient.
    out.values.clear();
    for ((&v, &ret), &old) in values.iter().zip(batch.returns).zip(batch.old_value) {
        let unclipped = (v - ret) * (v - ret);
        let (err, g) = if cfg.clip_vloss {
            let vc = old + (v - old).clamp(-clip, clip);
            let clipped = (vc - ret) * (vc - ret);
            // The clipped error is the larger only outside the clip range, where it
            // does not depend on v.
            if unclipped >= clipped {
                (unclipped, v - ret)
            } else {
                (clipped, 0.0)
            }
        } else {
            (unclipped, v - ret)
        };
        sums.value += f64::from(err);
        out.values.push(vf_coef * g / m);
    }

    sums
}

/// One Adam step on `p` with gradient `scale · g` (burn's `Adam` arithmetic).
#[allow(clippy::too_many_arguments)]
pub(super) fn adam(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    scale: f32,
    factor: f32,
    bias2: f32,
    lr: f32,
) {
    for i in 0..p.len() {
        let g = g[i] * scale;
        m[i] = m[i] * BETA_1 + g * (1.0 - BETA_1);
        v[i] = v[i] * BETA_2 + g * g * (1.0 - BETA_2);
        p[i] -= lr * (m[i] * factor / (v[i].sqrt() + EPSILON * bias2));
    }
}

/// A matrix written by [`matmul`]: element (i, j) at `buf[i · row + j]`.
pub(super) struct Dst<'a> {
    pub(super) buf: &'a mut [f32],
    pub(super) row: usize,
}

/// A matrix read by [`matmul`]: element (i, j) at `buf[i · row + j · col]`.
pub(super) struct Src<'a> {
    pub(super) buf: &'a [f32],
    pub(super) row: usize,
    pub(super) col: usize,
}

/// `dst = a · b` (`accumulate`: `dst += a · b`), `a` `[m, k]`, `b` `[k, n]`, on one
/// thread (the matrices are small; one thread is also the same result every run).
pub(super) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: Dst<'_>,
    accumulate: bool,
    a: Src<'_>,
    b: Src<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, row: usize, col: usize| {
        (rows - 1) * row + cols.saturating_sub(1) * col
    };
    assert!(
        last(m, n, dst.row, 1) < dst.buf.len(),
        "matmul: dst too short"
    );
    if k > 0 {
        assert!(
            last(m, k, a.row, a.col) < a.buf.len(),
            "matmul: a too short"
        );
        assert!(
            last(k, n, b.row, b.col) < b.buf.len(),
            "matmul: b too short"
        );
    }
    let s = |x: usize| x as isize;
    // SAFETY: every element the kernel reads or writes is inside the slices (the
    // asserts above bound the largest index), and `dst` does not alias `a` or `b`
    // (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.buf.as_mut_ptr(),
            1,
            s(dst.row),
            accumulate,
            a.buf.as_ptr(),
            s(a.col),
            s(a.row),
            b.buf.as_ptr(),
            s(b.col),
            s(b.row),
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// tanh, element-wise, in a form the compiler vectorises: `1 − 2 / (e^{2x} + 1)` with
/// a polynomial `exp`, and the odd Taylor series near 0 where that loses precision.
/// Within 2e-7 of `f64::tanh` everywhere (a test checks). Eight lanes at a time where
/// the CPU has AVX2, four otherwise: the same operations (Rust never fuses a multiply
/// and an add on its own), so the same result to the bit.
fn tanh_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { tanh_avx2(x) };
        return;
    }
    tanh_lanes(x);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(x: &mut [f32]) {
    tanh_lanes(x);
}

#[inline(always)]
fn tanh_lanes(x: &mut [f32]) {
    for v in x {
        let a = v.abs().min(9.0);
        let e = exp_poly(2.0 * a);
        let far = 1.0 - 2.0 / (e + 1.0);
        let a2 = a * a;
        let near = a * (1.0 + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0 - a2 * (17.0 / 315.0))));
        let t = if a < 0.05 { near } else { far };
        *v = t.copysign(*v);
    }
}

/// `e^x` for `x` in [0, 18]: `x = n · ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by its
/// Taylor series to degree 7 (relative error below 1e-8 there), scaled by `2^n`
/// through the exponent bits.
#[inline(always)]
fn exp_poly(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Round to nearest through the float adder (no SSE4.1 `round` on baseline x86-64).
    const SHIFTER: f32 = 12_582_912.0; // 1.5 · 2^23
    let shifted = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // n sits in the low bits of `shifted`: 2^n from integer arithmetic on the bits,
    // which vectorises where a float-to-int cast does not.
    let n_bits = shifted.to_bits().wrapping_sub(SHIFTER.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_is_within_2e_7_of_f64_tanh() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let mut v = [x];
            tanh_in_place(&mut v);
            worst = worst.max((f64::from(v[0]) - f64::from(x).tanh()).abs());
        }
        for x in [1e-30f32, -1e-8, 30.0, -1e4, f32::MAX] {
            let mut v = [x];
            tanh_in_place(&mut v);
            worst = worst.max((f64::from(v[0]) - f64::from(x).tanh()).abs());
        }
        assert!(worst < 2e-7, "worst absolute error {worst}");
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn tanh_is_the_same_to_the_bit_with_and_without_avx2() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let xs: Vec<f32> = (-40_000..40_000).map(|i| i as f32 * 3.1e-4).collect();
        let (mut wide, mut narrow) = (xs.clone(), xs);
        // SAFETY: the CPU has AVX2, checked above.
        unsafe { tanh_avx2(&mut wide) };
        tanh_lanes(&mut narrow);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&wide), bits(&narrow));
    }

    #[test]
    fn exp_poly_is_within_2_ulp_on_its_range() {
        for i in 0..=180_000 {
            let x = i as f32 * 1e-4;
            let (got, want) = (f64::from(exp_poly(x)), f64::from(x).exp());
            assert!(
                ((got - want) / want).abs() < 2.5e-7,
                "e^{x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn matmul_handles_transposed_operands() {
        // a [2, 3], b [3, 2]; a · b, and (aᵀ)ᵀ read through strides.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
        let mut c = [0.0f32; 4];
        let dst = Dst {
            buf: &mut c,
            row: 2,
        };
        let src_a = Src {
            buf: &a,
            row: 3,
            col: 1,
        };
        let src_b = Src {
            buf: &b,
            row: 2,
            col: 1,
        };
        matmul(2, 2, 3, dst, false, src_a, src_b);
        assert_eq!(c, [58.0, 64.0, 139.0, 154.0]);
        // bᵀ · aᵀ = (a · b)ᵀ, reading a and b through transposing strides.
        let mut t = [1.0f32; 4];
        let dst = Dst {
            buf: &mut t,
            row: 2,
        };
        let src_b = Src {
            buf: &b,
            row: 1,
            col: 2,
        };
        let src_a = Src {
            buf: &a,
            row: 1,
            col: 3,
        };
        matmul(2, 2, 3, dst, true, src_b, src_a);
        assert_eq!(t, [59.0, 140.0, 65.0, 155.0]);
    }
}
