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
use super::fused::{Dense, Grad, Src, adam_state_bytes, clip_and_adam, matrix, set_adam_state};
use crate::gnn::{ActionLayout, GnnActorCritic, GraphBatch};

/// The GNN actor-critic's weights and Adam state as plain buffers.
pub struct FusedGnn {
    net: Net,
    /// Adam steps taken.
    time: i32,
    work: [Work; 2],
}

/// The weights, in one layout for the forward and the backward pass.
struct Net {
    /// The input projection, the SAGE layers (`[2·hidden, hidden]`: the self
    /// projection's rows, then the neighbour projection's; the self projection's
    /// bias), the node, graph and value heads.
    dense: Vec<Dense>,
    layers: usize,
    hidden: usize,
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
        Some(FusedGnn {
            net: Net::of(net)?,
            time: 0,
            work: Default::default(),
        })
    }

    /// `net` with this network's weights (same parameters, same ids).
    pub fn write_into(&self, net: &GnnActorCritic) -> GnnActorCritic {
        let (dense, layers) = (&self.net.dense, self.net.layers);
        net.map_linears(|i, l| match i {
            // A SAGE layer's self projection (odd), then its neighbour projection.
            i if (1..=2 * layers).contains(&i) => {
                let d = &dense[1 + (i - 1) / 2];
                let (w_self, w_neigh) = d.w.split_at(d.w.len() / 2);
                if i % 2 == 1 {
                    crate::tensors::linear_with(l, w_self, Some(&d.b))
                } else {
                    crate::tensors::linear_with(l, w_neigh, None)
                }
            }
            // The input projection (0) and the heads.
            i => {
                let d = &dense[if i == 0 { 0 } else { i - layers }];
                crate::tensors::linear_with(l, &d.w, Some(&d.b))
            }
        })
    }

    /// Takes `net`'s weights (a network of this one's shapes), keeping Adam's state.
    pub fn load_weights(&mut self, net: &GnnActorCritic) {
        let fresh = Net::of(net).expect("the layers this network was built from");
        for (d, f) in self.net.dense.iter_mut().zip(fresh.dense) {
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
        self.net.forward(work, batch, layout, pad);
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
        let net = &self.net;
        let one = |i: usize, work: &mut Work| {
            let (batch, layout) = shares[i];
            net.forward(work, batch, layout, pad);
            let s = loss(i, &work.logits, &work.values, &mut work.head);
            net.backward(work, batch, layout);
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
        let mut layers: Vec<&mut Dense> = self.net.dense.iter_mut().collect();
        clip_and_adam(&mut layers, &grads, &mut self.time, max_norm, lr);
    }

    /// Every dense layer's gradient from the last [`FusedGnn::gradient`] in the order
    /// of [`GnnActorCritic::linears`]: weight, then bias where the layer has one.
    #[cfg(test)]
    pub(crate) fn gradients(&self) -> Vec<Vec<f32>> {
        let (grads, layers) = (&self.work[0].grads, self.net.layers);
        let mut out = vec![grads[0].w.clone(), grads[0].b.clone()];
        for g in &grads[1..=layers] {
            let (w_self, w_neigh) = g.w.split_at(g.w.len() / 2);
            out.extend([w_self.to_vec(), g.b.clone(), w_neigh.to_vec()]);
        }
        for g in &grads[1 + layers..] {
            out.extend([g.w.clone(), g.b.clone()]);
        }
        out
    }

    /// Adam's state as bytes, for checkpoints (the layout of the MLP's, over this
    /// network's dense layers).
    pub fn adam_bytes(&self) -> Vec<u8> {
        adam_state_bytes(self.time, &self.net.dense.iter().collect::<Vec<_>>())
    }

    /// Restores [`FusedGnn::adam_bytes`]' output; on an error nothing changes.
    pub fn set_adam_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut layers: Vec<&mut Dense> = self.net.dense.iter_mut().collect();
        self.time = set_adam_state(bytes, &mut layers)?;
        Ok(())
    }
}

impl Net {
    /// `net`'s weights, each SAGE layer's two projections stacked into one.
    fn of(net: &GnnActorCritic) -> Option<Net> {
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
            let (mut w, b, [d_in, d_out]) = linears[1 + 2 * l].clone();
            let (w_neigh, none, shape) = &linears[2 + 2 * l];
            if none.is_some() || *shape != [d_in, d_out] {
                return None;
            }
            w.extend_from_slice(w_neigh);
            dense.push(Dense::new(w, b?, 2 * d_in, d_out));
        }
        for (w, b, [d_in, d_out]) in linears[1 + 2 * layers..].iter().cloned() {
            dense.push(Dense::new(w, b?, d_in, d_out));
        }
        Some(Net {
            dense,
            layers,
            hidden,
        })
    }

    /// The node, graph and value heads.
    fn heads(&self) -> [&Dense; 3] {
        let [node, graph, value] = &self.dense[1 + self.layers..] else {
            unreachable!("three heads after the input projection and the layers")
        };
        [node, graph, value]
    }

    /// The forward pass of `batch` into `work` (logits, values and what the backward
    /// pass reads).
    fn forward(&self, work: &mut Work, batch: &GraphBatch, layout: &ActionLayout, pad: f32) {
        let (n, g, h) = (batch.nodes(), batch.graphs(), self.hidden);
        work.cats.resize_with(self.layers, Vec::new);
        for c in &mut work.cats {
            c.resize(n * 2 * h, 0.0);
        }
        work.last.resize(n * h, 0.0);
        let features = matrix(&batch.features, batch.node_dim);
        match work.cats.first_mut() {
            Some(c) => relu_forward(&self.dense[0], n, features, c, 2 * h),
            None => relu_forward(&self.dense[0], n, features, &mut work.last, h),
        }
        for l in 0..self.layers {
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
            let x = matrix(cat, 2 * h);
            match after.first_mut() {
                Some(next) => relu_forward(&self.dense[1 + l], n, x, next, 2 * h),
                None => relu_forward(&self.dense[1 + l], n, x, &mut work.last, h),
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
        let head = |l: &Dense, rows: usize, x: &[f32], out: &mut Vec<f32>| {
            out.resize(rows * l.d_out, 0.0);
            l.forward(rows, matrix(x, h), out, l.d_out);
        };
        let [node_head, graph_head, value_head] = self.heads();
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
    /// gradient with respect to the logits and values) after [`Net::forward`] on
    /// `batch`.
    fn backward(&self, work: &mut Work, batch: &GraphBatch, layout: &ActionLayout) {
        let (n, g, h, layers) = (batch.nodes(), batch.graphs(), self.hidden, self.layers);
        let [node_head, graph_head, value_head] = self.heads();
        work.grads.resize_with(self.dense.len(), Grad::default);
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
        let head_grads = &mut work.grads[1 + layers..];
        node_head.weight_grad(n, matrix(&work.last, h), &work.g_node, &mut head_grads[0]);
        graph_head.weight_grad(
            g,
            matrix(&work.pooled, h),
            &work.g_graph,
            &mut head_grads[1],
        );
        value_head.weight_grad(
            g,
            matrix(&work.pooled, h),
            &work.head.values,
            &mut head_grads[2],
        );
        work.g_h.resize(n * h, 0.0);
        node_head.input_grad(n, &work.g_node, &mut work.g_h, false);
        work.g_pooled.resize(g * h, 0.0);
        graph_head.input_grad(g, &work.g_graph, &mut work.g_pooled, false);
        value_head.input_grad(g, &work.head.values, &mut work.g_pooled, true);
        for (row, &gi) in work.g_h.chunks_exact_mut(h).zip(&batch.graph_of_node) {
            let gi = gi as usize;
            let inv = work.inv_count[gi];
            for (a, &b) in row.iter_mut().zip(&work.g_pooled[gi * h..(gi + 1) * h]) {
                *a += b * inv;
            }
        }
        for l in (0..layers).rev() {
            // The layer's output: the next layer's input half, or the last output.
            let (out, stride) = match work.cats.get(l + 1) {
                Some(next) => (next.as_slice(), 2 * h),
                None => (work.last.as_slice(), h),
            };
            relu_backward(&mut work.g_h, out, stride, h);
            let layer = &self.dense[1 + l];
            layer.weight_grad(
                n,
                matrix(&work.cats[l], 2 * h),
                &work.g_h,
                &mut work.grads[1 + l],
            );
            work.g_cat.resize(n * 2 * h, 0.0);
            layer.input_grad(n, &work.g_h, &mut work.g_cat, false);
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
        // The input projection's output is layer 0's input (or, with no layer, the
        // last output).
        let (out, stride) = match work.cats.first() {
            Some(c) => (c.as_slice(), 2 * h),
            None => (work.last.as_slice(), h),
        };
        relu_backward(&mut work.g_h, out, stride, h);
        let features = matrix(&batch.features, batch.node_dim);
        self.dense[0].weight_grad(n, features, &work.g_h, &mut work.grads[0]);
    }
}

/// [`Dense::forward`], then a ReLU on the `d_out` columns written.
fn relu_forward(l: &Dense, rows: usize, x: Src<'_>, out: &mut [f32], out_row: usize) {
    l.forward(rows, x, out, out_row);
    for r in 0..rows {
        for v in &mut out[r * out_row..r * out_row + l.d_out] {
            *v = v.max(0.0);
        }
    }
}

/// Through a ReLU: `grad` (`[rows, width]`) is zeroed where the output (row `r`
/// at `out[r · stride ..]`) is not positive, that is where its input was not.
fn relu_backward(grad: &mut [f32], out: &[f32], stride: usize, width: usize) {
    for (r, row) in grad.chunks_exact_mut(width).enumerate() {
        for (g, &o) in row.iter_mut().zip(&out[r * stride..r * stride + width]) {
            if o <= 0.0 {
                *g = 0.0;
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
