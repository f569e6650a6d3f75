//! The GNN actor-critic's training step on the CPU, fused: the forward pass over a
//! [`GraphBatch`], the gradient by hand from the loss's gradient with respect to
//! the logits and values, global-norm clipping and Adam, over plain `f32` buffers
//! that live as long as the run, with the matrix products on `gemm`'s kernels.
//!
//! It computes the function of [`GnnActorCritic::forward`]: an input projection
//! with a ReLU, GraphSAGE layers `relu(W_self·hᵢ + b + W_neigh·mean_{j→i} hⱼ)`, node
//! scores, and graph scores and a value from each graph's mean embedding. A SAGE
//! layer is one product here: `[h | mean] · [W_self; W_neigh]`, `[nodes, 2·hidden]`
//! by `[2·hidden, hidden]`. The loss is the caller's (PPO's in [`super::ppo`], a
//! squared error in the `gnn` bench): [`FusedGnn::gradient`] hands it the outputs
//! and takes back their gradient.
//!
//! A minibatch given as two shares (graphs split in two batches: a disjoint union
//! splits cleanly) is computed side by side (rayon), the shares' gradients added in
//! a fixed order: the same result whatever the thread count.
//!
//! `tests` compares the gradient and an Adam step with burn's autodiff.

pub use super::fused::HeadGrad;
use super::fused::{
    Dense, Dst, Grad, Src, adam_state_bytes, clip_and_adam, matmul, set_adam_state,
};
use crate::gnn::{ActionLayout, GnnActorCritic, GraphBatch};

/// The GNN actor-critic's weights and Adam state as plain buffers.
pub struct FusedGnn {
    /// The input projection, the SAGE layers (`[2·hidden, hidden]`: the self
    /// projection's rows, then the neighbour projection's; the self projection's
    /// bias), the node, graph and value heads.
    dense: Vec<Dense>,
    layers: usize,
    hidden: usize,
    /// Adam steps taken.
    time: i32,
    work: [Work; 2],
}

/// One pass's buffers, reused from one minibatch to the next.
#[derive(Default)]
struct Work {
    /// Per SAGE layer, `[nodes, 2·hidden]`: its input, then its input's neighbour
    /// mean. Layer 0's input is the input projection's output.
    cats: Vec<Vec<f32>>,
    /// `[nodes, hidden]`: the last layer's output.
    last: Vec<f32>,
    /// `[graphs, hidden]`: each graph's mean of `last`.
    pooled: Vec<f32>,
    /// `[graphs]`: 1 / nodes per graph.
    inv_count: Vec<f32>,
    /// `[nodes, node outputs]`, `[graphs, graph outputs]`, `[graphs]`.
    node_scores: Vec<f32>,
    graph_scores: Vec<f32>,
    values: Vec<f32>,
    /// `[graphs, actions]`.
    logits: Vec<f32>,
    /// The loss's gradient with respect to `logits` and `values`.
    head: HeadGrad,
    /// One per dense layer.
    grads: Vec<Grad>,
    /// Gradients with respect to the node and graph scores, the pooled embeddings,
    /// a layer's output and its input `[h | mean]`.
    g_node: Vec<f32>,
    g_graph: Vec<f32>,
    g_pooled: Vec<f32>,
    g_h: Vec<f32>,
    g_cat: Vec<f32>,
}

impl FusedGnn {
    /// The buffers of `net`; `None` for a network not shaped as
    /// [`GnnActorCritic::new`] builds them (a missing bias, a neighbour projection
    /// with one, or of another shape than its self projection).
    pub fn from_model(net: &GnnActorCritic) -> Option<FusedGnn> {
        let linears: Vec<_> = net
            .linears()
            .into_iter()
            .map(crate::tensors::linear_values)
            .collect();
        let layers = (linears.len() - 4) / 2;
        let hidden = linears[0].2[1];
        let mut dense = Vec::with_capacity(layers + 4);
        let (w, b, [d_in, d_out]) = linears[0].clone();
        dense.push(Dense::new(w, b?, d_in, d_out));
        for l in 0..layers {
            let (w_self, b, [d_in, d_out]) = linears[1 + 2 * l].clone();
            let (w_neigh, none, shape) = linears[2 + 2 * l].clone();
            if none.is_some() || shape != [d_in, d_out] {
                return None;
            }
            let mut w = w_self;
            w.extend_from_slice(&w_neigh);
            dense.push(Dense::new(w, b?, 2 * d_in, d_out));
        }
        for (w, b, [d_in, d_out]) in linears[1 + 2 * layers..].iter().cloned() {
            dense.push(Dense::new(w, b?, d_in, d_out));
        }
        Some(FusedGnn {
            dense,
            layers,
            hidden,
            time: 0,
            work: Default::default(),
        })
    }

    /// `net` with this network's weights (same parameters, same ids).
    pub fn write_into(&self, net: &GnnActorCritic) -> GnnActorCritic {
        let half = |k: usize, first: bool| {
            let d = &self.dense[k];
            let n = d.w.len() / 2;
            if first { &d.w[..n] } else { &d.w[n..] }
        };
        net.map_linears(|i, l| {
            let layers = self.layers;
            match i {
                0 => crate::tensors::linear_with(l, &self.dense[0].w, Some(&self.dense[0].b)),
                i if i <= 2 * layers => {
                    let k = 1 + (i - 1) / 2;
                    if i % 2 == 1 {
                        crate::tensors::linear_with(l, half(k, true), Some(&self.dense[k].b))
                    } else {
                        crate::tensors::linear_with(l, half(k, false), None)
                    }
                }
                i => {
                    let d = &self.dense[i - layers];
                    crate::tensors::linear_with(l, &d.w, Some(&d.b))
                }
            }
        })
    }

    /// Takes `net`'s weights (a network of this one's shapes), keeping Adam's state.
    pub fn load_weights(&mut self, net: &GnnActorCritic) {
        let fresh = FusedGnn::from_model(net).expect("the layers this network was built from");
        for (d, f) in self.dense.iter_mut().zip(fresh.dense) {
            debug_assert_eq!((d.w.len(), d.b.len()), (f.w.len(), f.b.len()));
            (d.w, d.b) = (f.w, f.b);
        }
    }

    /// Logits `[graphs, layout.actions]` (entries at the layout's pad index are
    /// `pad`) and values `[graphs]` of the graphs in `batch`.
    pub fn forward(
        &mut self,
        batch: &GraphBatch,
        layout: &ActionLayout,
        pad: f32,
    ) -> (&[f32], &[f32]) {
        let work = &mut self.work[0];
        forward(
            &self.dense,
            self.layers,
            self.hidden,
            work,
            batch,
            layout,
            pad,
        );
        (&work.logits, &work.values)
    }

    /// The gradient of a loss over `shares` (one or two batches with their layouts,
    /// together one minibatch): `loss(share, logits, values, out)` gives the loss
    /// of a share and writes its gradient with respect to the logits and values
    /// into `out.logits` and `out.values` (weighted for the whole minibatch). The
    /// gradient stays in place for [`FusedGnn::clip_and_step`]; the losses are
    /// returned in share order.
    ///
    /// # Panics
    /// With no share or more than two.
    pub fn gradient<S: Send>(
        &mut self,
        shares: &[(&GraphBatch, &ActionLayout)],
        pad: f32,
        loss: impl Fn(usize, &[f32], &[f32], &mut HeadGrad) -> S + Sync,
    ) -> Vec<S> {
        let net = (&self.dense[..], self.layers, self.hidden);
        let one = |i: usize, work: &mut Work| {
            let (batch, layout) = shares[i];
            forward(net.0, net.1, net.2, work, batch, layout, pad);
            let s = loss(i, &work.logits, &work.values, &mut work.head);
            backward(net.0, net.1, net.2, work, batch, layout);
            s
        };
        let [w0, w1] = &mut self.work;
        match shares.len() {
            1 => vec![one(0, w0)],
            2 => {
                let (s0, s1) = rayon::join(|| one(0, w0), || one(1, w1));
                for (g0, g1) in w0.grads.iter_mut().zip(&w1.grads) {
                    for (x, y) in g0.w.iter_mut().zip(&g1.w) {
                        *x += y;
                    }
                    for (x, y) in g0.b.iter_mut().zip(&g1.b) {
                        *x += y;
                    }
                }
                vec![s0, s1]
            }
            n => panic!("FusedGnn::gradient takes one or two shares, not {n}"),
        }
    }

    /// Scales the gradient to a global L2 norm of at most `max_norm` and takes one
    /// Adam step at `lr` (burn's `Adam` arithmetic, ε 1e-5).
    pub fn clip_and_step(&mut self, max_norm: f32, lr: f64) {
        let grads: Vec<&Grad> = self.work[0].grads.iter().collect();
        clip_and_adam(
            &mut self.dense.iter_mut().collect::<Vec<_>>(),
            &grads,
            &mut self.time,
            max_norm,
            lr,
        );
    }

    /// Every dense layer's gradient from the last [`FusedGnn::gradient`] in the order
    /// of [`GnnActorCritic::linears`]: weight, then bias where the layer has one.
    #[cfg(test)]
    pub(crate) fn gradients(&self) -> Vec<Vec<f32>> {
        let grads = &self.work[0].grads;
        let mut out = vec![grads[0].w.clone(), grads[0].b.clone()];
        for g in &grads[1..=self.layers] {
            let n = g.w.len() / 2;
            out.extend([g.w[..n].to_vec(), g.b.clone(), g.w[n..].to_vec()]);
        }
        for g in &grads[1 + self.layers..] {
            out.extend([g.w.clone(), g.b.clone()]);
        }
        out
    }

    /// Adam's state as bytes, for checkpoints (the layout of the MLP's, over this
    /// network's dense layers).
    pub fn adam_bytes(&self) -> Vec<u8> {
        adam_state_bytes(self.time, &self.dense.iter().collect::<Vec<_>>())
    }

    /// Restores [`FusedGnn::adam_bytes`]' output; on an error nothing changes.
    pub fn set_adam_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.time = set_adam_state(bytes, &mut self.dense.iter_mut().collect::<Vec<_>>())?;
        Ok(())
    }
}

/// `out[r · out_row ..][..d_out] = x_r · W + b` for `rows` rows of `x`, then a ReLU
/// where `relu`.
fn dense_forward(l: &Dense, rows: usize, x: Src<'_>, out: &mut [f32], out_row: usize, relu: bool) {
    for r in 0..rows {
        out[r * out_row..r * out_row + l.d_out].copy_from_slice(&l.b);
    }
    matmul(
        rows,
        l.d_out,
        l.d_in,
        Dst {
            buf: out,
            row: out_row,
        },
        true,
        x,
        Src {
            buf: &l.w,
            row: l.d_out,
            col: 1,
        },
    );
    if relu {
        for r in 0..rows {
            for v in &mut out[r * out_row..r * out_row + l.d_out] {
                *v = v.max(0.0);
            }
        }
    }
}

/// `buf[to..to + len] += buf[from..from + len]`, for ranges that do not overlap.
#[inline]
fn add_row(buf: &mut [f32], to: usize, from: usize, len: usize) {
    debug_assert!(to + len <= from || from + len <= to, "overlapping rows");
    if to > from {
        let (head, tail) = buf.split_at_mut(to);
        for (a, &b) in tail[..len].iter_mut().zip(&head[from..from + len]) {
            *a += b;
        }
    } else {
        let (head, tail) = buf.split_at_mut(from);
        for (a, &b) in head[to..to + len].iter_mut().zip(&tail[..len]) {
            *a += b;
        }
    }
}

/// A row-major matrix of rows `width` long.
fn rows(buf: &[f32], width: usize) -> Src<'_> {
    Src {
        buf,
        row: width,
        col: 1,
    }
}

/// `grad.w = xᵀ · g_out`, `grad.b` = column sums of `g_out` (`[rows, d_out]`).
fn dense_weight_grad(l: &Dense, rows: usize, x: Src<'_>, g_out: &[f32], grad: &mut Grad) {
    grad.w.clear();
    grad.w.resize(l.w.len(), 0.0);
    let x_row = x.row;
    matmul(
        l.d_in,
        l.d_out,
        rows,
        Dst {
            buf: &mut grad.w,
            row: l.d_out,
        },
        false,
        Src {
            buf: x.buf,
            row: 1,
            col: x_row,
        },
        Src {
            buf: g_out,
            row: l.d_out,
            col: 1,
        },
    );
    grad.b.clear();
    grad.b.resize(l.d_out, 0.0);
    for row in g_out.chunks_exact(l.d_out) {
        for (b, &g) in grad.b.iter_mut().zip(row) {
            *b += g;
        }
    }
}

/// `out (+)= g_out · Wᵀ`, `[rows, d_in]`.
fn dense_input_grad(l: &Dense, rows: usize, g_out: &[f32], out: &mut [f32], accumulate: bool) {
    matmul(
        rows,
        l.d_in,
        l.d_out,
        Dst {
            buf: out,
            row: l.d_in,
        },
        accumulate,
        Src {
            buf: g_out,
            row: l.d_out,
            col: 1,
        },
        Src {
            buf: &l.w,
            row: 1,
            col: l.d_out,
        },
    );
}

/// The forward pass of `batch` into `work` (logits, values and what the backward
/// pass reads).
fn forward(
    dense: &[Dense],
    layers: usize,
    h: usize,
    work: &mut Work,
    batch: &GraphBatch,
    layout: &ActionLayout,
    pad: f32,
) {
    let (n, g) = (batch.nodes(), batch.graphs());
    work.cats.resize_with(layers, Vec::new);
    for c in &mut work.cats {
        c.resize(n * 2 * h, 0.0);
    }
    work.last.resize(n * h, 0.0);
    let features = Src {
        buf: &batch.features,
        row: batch.node_dim,
        col: 1,
    };
    match work.cats.first_mut() {
        Some(c) => dense_forward(&dense[0], n, features, c, 2 * h, true),
        None => dense_forward(&dense[0], n, features, &mut work.last, h, true),
    }
    for l in 0..layers {
        let (before, after) = work.cats.split_at_mut(l + 1);
        let cat = &mut before[l];
        // The neighbour mean, into the right half.
        for row in cat.chunks_exact_mut(2 * h) {
            row[h..].fill(0.0);
        }
        for (&s, &d) in batch.src.iter().zip(&batch.dst) {
            add_row(cat, d as usize * 2 * h + h, s as usize * 2 * h, h);
        }
        for (row, &inv) in cat.chunks_exact_mut(2 * h).zip(&batch.inv_degree) {
            for v in &mut row[h..] {
                *v *= inv;
            }
        }
        let x = Src {
            buf: cat,
            row: 2 * h,
            col: 1,
        };
        match after.first_mut() {
            Some(next) => dense_forward(&dense[1 + l], n, x, next, 2 * h, true),
            None => dense_forward(&dense[1 + l], n, x, &mut work.last, h, true),
        }
    }
    work.inv_count.clear();
    work.inv_count
        .extend(batch.counts.iter().map(|&c| 1.0 / c.max(1) as f32));
    work.pooled.clear();
    work.pooled.resize(g * h, 0.0);
    for (row, &gi) in work.last.chunks_exact(h).zip(&batch.graph_of_node) {
        let p = &mut work.pooled[gi as usize * h..(gi as usize + 1) * h];
        for (a, &b) in p.iter_mut().zip(row) {
            *a += b;
        }
    }
    for (p, &inv) in work.pooled.chunks_exact_mut(h).zip(&work.inv_count) {
        for v in p {
            *v *= inv;
        }
    }
    let [node_head, graph_head, value_head] = &dense[1 + layers..] else {
        unreachable!("three heads")
    };
    let head = |l: &Dense, rows: usize, x: &[f32], out: &mut Vec<f32>| {
        out.resize(rows * l.d_out, 0.0);
        let x = Src {
            buf: x,
            row: h,
            col: 1,
        };
        dense_forward(l, rows, x, out, l.d_out, false);
    };
    head(node_head, n, &work.last, &mut work.node_scores);
    head(graph_head, g, &work.pooled, &mut work.graph_scores);
    head(value_head, g, &work.pooled, &mut work.values);
    let graph_table = work.graph_scores.len();
    work.logits.clear();
    work.logits.extend(layout.index.iter().map(|&i| {
        let i = i as usize;
        if i < graph_table {
            work.graph_scores[i]
        } else {
            work.node_scores
                .get(i - graph_table)
                .copied()
                .unwrap_or(pad)
        }
    }));
}

/// Every dense layer's gradient into `work.grads`, from `work.head` (the loss's
/// gradient with respect to the logits and values) after [`forward`] on `batch`.
fn backward(
    dense: &[Dense],
    layers: usize,
    h: usize,
    work: &mut Work,
    batch: &GraphBatch,
    layout: &ActionLayout,
) {
    let (n, g) = (batch.nodes(), batch.graphs());
    let [node_head, graph_head, value_head] = &dense[1 + layers..] else {
        unreachable!("three heads")
    };
    work.grads.resize_with(dense.len(), Grad::default);
    // Through the layout's gather: every logit's gradient back to its score.
    let graph_table = g * graph_head.d_out;
    work.g_graph.clear();
    work.g_graph.resize(graph_table, 0.0);
    work.g_node.clear();
    work.g_node.resize(n * node_head.d_out, 0.0);
    for (&i, &gl) in layout.index.iter().zip(&work.head.logits) {
        let i = i as usize;
        if i < graph_table {
            work.g_graph[i] += gl;
        } else if let Some(s) = work.g_node.get_mut(i - graph_table) {
            *s += gl;
        }
    }
    let (head_grads, _) = work.grads[1 + layers..].split_at_mut(3);
    dense_weight_grad(
        node_head,
        n,
        rows(&work.last, h),
        &work.g_node,
        &mut head_grads[0],
    );
    dense_weight_grad(
        graph_head,
        g,
        rows(&work.pooled, h),
        &work.g_graph,
        &mut head_grads[1],
    );
    dense_weight_grad(
        value_head,
        g,
        rows(&work.pooled, h),
        &work.head.values,
        &mut head_grads[2],
    );
    work.g_h.resize(n * h, 0.0);
    dense_input_grad(node_head, n, &work.g_node, &mut work.g_h, false);
    work.g_pooled.resize(g * h, 0.0);
    dense_input_grad(graph_head, g, &work.g_graph, &mut work.g_pooled, false);
    dense_input_grad(value_head, g, &work.head.values, &mut work.g_pooled, true);
    for (row, &gi) in work.g_h.chunks_exact_mut(h).zip(&batch.graph_of_node) {
        let gi = gi as usize;
        let inv = work.inv_count[gi];
        for (a, &b) in row.iter_mut().zip(&work.g_pooled[gi * h..(gi + 1) * h]) {
            *a += b * inv;
        }
    }
    for l in (0..layers).rev() {
        // Through the ReLU: the output is positive where its input was.
        let (out, stride): (&[f32], usize) = match work.cats.get(l + 1) {
            Some(next) => (next, 2 * h),
            None => (&work.last, h),
        };
        for (r, row) in work.g_h.chunks_exact_mut(h).enumerate() {
            for (gv, &o) in row.iter_mut().zip(&out[r * stride..r * stride + h]) {
                if o <= 0.0 {
                    *gv = 0.0;
                }
            }
        }
        let layer = &dense[1 + l];
        let cat = &work.cats[l];
        dense_weight_grad(
            layer,
            n,
            Src {
                buf: cat,
                row: 2 * h,
                col: 1,
            },
            &work.g_h,
            &mut work.grads[1 + l],
        );
        work.g_cat.resize(n * 2 * h, 0.0);
        dense_input_grad(layer, n, &work.g_h, &mut work.g_cat, false);
        // The input's gradient: its own half, and the mean's half sent back along
        // every message to its source.
        for (gh, gc) in work
            .g_h
            .chunks_exact_mut(h)
            .zip(work.g_cat.chunks_exact(2 * h))
        {
            gh.copy_from_slice(&gc[..h]);
        }
        for (&s, &d) in batch.src.iter().zip(&batch.dst) {
            let (s, d) = (s as usize, d as usize);
            let inv = batch.inv_degree[d];
            let from = &work.g_cat[d * 2 * h + h..(d + 1) * 2 * h];
            for (a, &b) in work.g_h[s * h..(s + 1) * h].iter_mut().zip(from) {
                *a += b * inv;
            }
        }
    }
    let (out, stride): (&[f32], usize) = match work.cats.first() {
        Some(c) => (c, 2 * h),
        None => (&work.last, h),
    };
    for (r, row) in work.g_h.chunks_exact_mut(h).enumerate() {
        for (gv, &o) in row.iter_mut().zip(&out[r * stride..r * stride + h]) {
            if o <= 0.0 {
                *gv = 0.0;
            }
        }
    }
    let features = Src {
        buf: &batch.features,
        row: batch.node_dim,
        col: 1,
    };
    dense_weight_grad(&dense[0], n, features, &work.g_h, &mut work.grads[0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::{seeded, to_vec};
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::prelude::*;
    use burn::tensor::TensorData;
    use hale_envs::GraphValue;

    /// Three graphs: 5, 7 and 4 nodes with 5 features, random links, one node of
    /// the last graph linked to nothing.
    fn graphs() -> Vec<GraphValue> {
        let mut x = 0.3f32;
        let mut next = move || {
            x = (x * 7.13 + 0.91).fract();
            x * 2.0 - 1.0
        };
        let links: [&[[u32; 2]]; 3] = [
            &[[0, 1], [1, 2], [2, 3], [3, 4], [4, 0], [1, 3]],
            &[
                [0, 1],
                [1, 2],
                [2, 3],
                [3, 4],
                [4, 5],
                [5, 6],
                [6, 0],
                [2, 5],
                [0, 3],
            ],
            &[[0, 1], [1, 2]],
        ];
        [5, 7, 4]
            .iter()
            .zip(links)
            .map(|(&n, l)| GraphValue {
                nodes: (0..n * 5).map(|_| next()).collect(),
                edges: vec![],
                links: l.to_vec(),
            })
            .collect()
    }

    /// Per graph: both graph scores, node scores of three nodes (one twice), and
    /// the pad entry.
    fn layout(batch: &GraphBatch) -> ActionLayout {
        const NODE_OUT: usize = 3;
        let graph_table = batch.graphs() * 2;
        let pad = (graph_table + batch.nodes() * NODE_OUT) as i64;
        let node = |i: usize, k: usize| (graph_table + i * NODE_OUT + k) as i64;
        let mut index = Vec::new();
        for g in 0..batch.graphs() {
            let o = batch.offsets[g];
            index.extend([
                (2 * g) as i64,
                (2 * g + 1) as i64,
                node(o, 0),
                node(o + 1, 2),
                pad,
                node(o + 3, 1),
                node(o, 0),
            ]);
        }
        ActionLayout { actions: 7, index }
    }

    /// The loss `Σ c · logits + Σ (v − 1)²` with `c` fixed: its gradient.
    fn coefficient(k: usize) -> f32 {
        ((k as f32) * 0.77).sin()
    }

    fn grad_of(
        first_graph: usize,
        logits: &[f32],
        values: &[f32],
        out: &mut HeadGrad,
        actions: usize,
    ) {
        out.logits.clear();
        out.logits
            .extend((0..logits.len()).map(|k| coefficient(first_graph * actions + k)));
        out.values.clear();
        out.values.extend(values.iter().map(|v| 2.0 * (v - 1.0)));
    }

    #[test]
    fn the_fused_gradient_and_adam_step_match_burns_autodiff() {
        let device = Device::flex().autodiff();
        let net = seeded(&device, 4, |d| GnnActorCritic::new(5, 8, 2, 3, 2, d));
        let gs = graphs();
        let refs: Vec<&GraphValue> = gs.iter().collect();
        let batch = GraphBatch::new(&refs, 5).unwrap();
        let lay = layout(&batch);
        let pad = 0.25;

        // burn: forward, the loss, autodiff.
        let (logits, values) = net.forward(&batch, &lay, pad, &device);
        let n_logits = lay.index.len();
        let c: Vec<f32> = (0..n_logits).map(coefficient).collect();
        let c = Tensor::<2>::from_data(TensorData::new(c, [3, 7]), &device);
        let loss = (logits.clone() * c).sum() + (values.clone() - 1.0).square().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &net);

        let mut fused = FusedGnn::from_model(&net).unwrap();
        let (l, v) = fused.forward(&batch, &lay, pad);
        for (a, b) in l
            .iter()
            .zip(to_vec(logits.inner()))
            .chain(v.iter().zip(to_vec(values.inner())))
        {
            assert!((a - b).abs() < 1e-5, "forward: {a} vs {b}");
        }
        fused.gradient(&[(&batch, &lay)], pad, |_, l, v, out| {
            grad_of(0, l, v, out, 7)
        });
        let ours = fused.gradients();
        let mut theirs = Vec::new();
        for lin in net.linears() {
            let w = grads.get::<2>(lin.weight.id).map(to_vec);
            theirs.push(w.unwrap_or_else(|| vec![0.0; lin.weight.val().dims().iter().product()]));
            if let Some(b) = &lin.bias {
                let g = grads.get::<1>(b.id).map(to_vec);
                theirs.push(g.unwrap_or_else(|| vec![0.0; b.val().dims()[0]]));
            }
        }
        assert_eq!(ours.len(), theirs.len());
        let scale = theirs.iter().flatten().fold(0f32, |m, g| m.max(g.abs()));
        assert!(scale > 0.0);
        for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a.len(), b.len(), "parameter {k}");
            assert!(
                b.iter().any(|&x| x != 0.0),
                "parameter {k} has no gradient in burn"
            );
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-4 * scale, "parameter {k}: {x} vs {y}");
            }
        }

        // Two shares (graphs 0–1 and 2) give the one-batch gradient.
        let mut split = FusedGnn::from_model(&net).unwrap();
        let (b01, b2) = (
            GraphBatch::new(&refs[..2], 5).unwrap(),
            GraphBatch::new(&refs[2..], 5).unwrap(),
        );
        let (l01, l2) = (layout(&b01), layout(&b2));
        split.gradient(&[(&b01, &l01), (&b2, &l2)], pad, |share, l, v, out| {
            grad_of(2 * share, l, v, out, 7)
        });
        for (a, b) in split
            .gradients()
            .iter()
            .flatten()
            .zip(ours.iter().flatten())
        {
            assert!((a - b).abs() <= 1e-5 * scale, "split: {a} vs {b}");
        }

        // One Adam step each: the same weights.
        let mut optim = AdamConfig::new().with_epsilon(1e-5).init();
        let after = optim.step(1e-2, net.clone(), grads);
        fused.clip_and_step(f32::INFINITY, 1e-2);
        let mine = fused.write_into(&net);
        for (a, b) in after.linears().iter().zip(mine.linears()) {
            for (x, y) in to_vec(a.weight.val()).iter().zip(to_vec(b.weight.val())) {
                assert!((x - y).abs() < 1e-5, "weights after a step: {x} vs {y}");
            }
            assert_eq!(a.weight.id, b.weight.id);
        }
        // Adam's state survives its bytes.
        let bytes = fused.adam_bytes();
        let mut other = FusedGnn::from_model(&net).unwrap();
        other.set_adam_bytes(&bytes).unwrap();
        assert_eq!(other.adam_bytes(), bytes);
        assert!(other.set_adam_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
