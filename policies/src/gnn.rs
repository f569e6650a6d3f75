//! A graph neural network over the environments' resource graph (zones, hosts,
//! services, replicas and the edges between them), and the action heads that read
//! its node embeddings.
//!
//! - [`GraphBatch`]: graphs of different sizes as one disjoint union. Edge indices are
//!   checked on the CPU before any tensor is built (a bad index names the graph and
//!   the edge); every edge is used in both directions.
//! - [`SageLayer`]: GraphSAGE with mean aggregation,
//!   `h'ᵢ = relu(W_self hᵢ + W_neigh · mean_{j→i} hⱼ)`, messages gathered with `select`
//!   and summed into their targets with `select_assign`.
//! - [`GnnActorCritic`]: an input projection, `layers` SAGE layers, per-node scores
//!   (`node_outputs` per node), per-graph scores and a value from the mean of each
//!   graph's node embeddings. An [`ActionLayout`] (built on the CPU from the node
//!   kinds) maps those scores to the env's action logits: for Scaling-v0 one
//!   categorical head per service node; for Healing-v0 no-op from the graph, restart
//!   and reschedule from each replica node, roll back from each service node and
//!   drain from each host node, in the env's slot order.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{IndexingUpdateOp, TensorData};
use hale_envs::GraphValue;
use hale_envs::encoding::{node, node_kind};

/// Why graphs cannot be batched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Node features are not a whole number of rows.
    #[error("graph {graph}: {len} node features is not a multiple of {node_dim} per node")]
    Features {
        /// Graph index in the batch.
        graph: usize,
        /// Length of its feature vector.
        len: usize,
        /// Features per node expected.
        node_dim: usize,
    },
    /// An edge names a node the graph does not have.
    #[error("graph {graph}: edge {edge} links {from} → {to}, but the graph has {nodes} nodes")]
    Edge {
        /// Graph index in the batch.
        graph: usize,
        /// Edge index in that graph.
        edge: usize,
        /// Its source.
        from: u32,
        /// Its target.
        to: u32,
        /// Nodes in the graph.
        nodes: usize,
    },
}

/// Graphs as one disjoint union, ready for message passing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphBatch {
    /// Node features, `[nodes × node_dim]` row-major.
    pub features: Vec<f32>,
    /// Features per node.
    pub node_dim: usize,
    /// Message sources (global node index), both directions of every edge.
    pub src: Vec<i64>,
    /// Message targets.
    pub dst: Vec<i64>,
    /// `1 / in-degree` per node (0 for a node nothing points to).
    pub inv_degree: Vec<f32>,
    /// The graph each node belongs to.
    pub graph_of_node: Vec<i64>,
    /// First node of each graph.
    pub offsets: Vec<usize>,
    /// Nodes per graph.
    pub counts: Vec<usize>,
}

impl GraphBatch {
    /// Batches `graphs`, checking every feature row and edge index.
    pub fn new(graphs: &[&GraphValue], node_dim: usize) -> Result<GraphBatch, GraphError> {
        let mut b = GraphBatch {
            features: Vec::new(),
            node_dim,
            src: Vec::new(),
            dst: Vec::new(),
            inv_degree: Vec::new(),
            graph_of_node: Vec::new(),
            offsets: Vec::with_capacity(graphs.len()),
            counts: Vec::with_capacity(graphs.len()),
        };
        b.refill(graphs, node_dim)?;
        Ok(b)
    }

    /// [`GraphBatch::new`] into this batch's buffers (a training loop batches
    /// graphs of about the same size again and again). On an error the batch is
    /// left empty.
    pub fn refill(&mut self, graphs: &[&GraphValue], node_dim: usize) -> Result<(), GraphError> {
        let b = self;
        b.clear(node_dim);
        for (gi, g) in graphs.iter().enumerate() {
            if node_dim == 0 || !g.nodes.len().is_multiple_of(node_dim) {
                b.clear(node_dim);
                return Err(GraphError::Features {
                    graph: gi,
                    len: g.nodes.len(),
                    node_dim,
                });
            }
            let n = g.nodes.len() / node_dim;
            for (e, &[from, to]) in g.links.iter().enumerate() {
                if from as usize >= n || to as usize >= n {
                    b.clear(node_dim);
                    return Err(GraphError::Edge {
                        graph: gi,
                        edge: e,
                        from,
                        to,
                        nodes: n,
                    });
                }
            }
            let base = b.graph_of_node.len();
            b.offsets.push(base);
            b.counts.push(n);
            b.features.extend_from_slice(&g.nodes);
            b.graph_of_node.extend(std::iter::repeat_n(gi as i64, n));
            for &[from, to] in &g.links {
                let (f, t) = ((base + from as usize) as i64, (base + to as usize) as i64);
                b.src.extend([f, t]);
                b.dst.extend([t, f]);
            }
        }
        // In-degrees, counted in place, then inverted.
        b.inv_degree.resize(b.graph_of_node.len(), 0.0);
        for &t in &b.dst {
            b.inv_degree[t as usize] += 1.0;
        }
        for d in &mut b.inv_degree {
            *d = if *d == 0.0 { 0.0 } else { 1.0 / *d };
        }
        Ok(())
    }

    /// No graph, the buffers kept.
    fn clear(&mut self, node_dim: usize) {
        self.node_dim = node_dim;
        for v in [&mut self.src, &mut self.dst, &mut self.graph_of_node] {
            v.clear();
        }
        for v in [&mut self.features, &mut self.inv_degree] {
            v.clear();
        }
        self.offsets.clear();
        self.counts.clear();
    }

    /// Nodes in all.
    pub fn nodes(&self) -> usize {
        self.graph_of_node.len()
    }

    /// Graphs.
    pub fn graphs(&self) -> usize {
        self.counts.len()
    }
}

/// GraphSAGE with mean aggregation and a ReLU.
#[derive(Module, Debug)]
pub struct SageLayer {
    self_proj: Linear,
    neigh_proj: Linear,
}

impl SageLayer {
    /// A layer from `d_in` to `d_out` features.
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> SageLayer {
        SageLayer {
            self_proj: LinearConfig::new(d_in, d_out).init(device),
            neigh_proj: LinearConfig::new(d_in, d_out).with_bias(false).init(device),
        }
    }

    /// # Shapes
    /// `h` `[nodes, d_in]`, `src`/`dst` `[messages]`, `inv_degree` `[nodes, 1]` →
    /// `[nodes, d_out]`
    pub fn forward(
        &self,
        h: Tensor<2>,
        src: Tensor<1, Int>,
        dst: Tensor<1, Int>,
        inv_degree: Tensor<2>,
    ) -> Tensor<2> {
        let [n, d] = h.dims();
        let messages = h.clone().select(0, src);
        let summed = Tensor::<2>::zeros([n, d], &h.device()).select_assign(
            0,
            dst,
            messages,
            IndexingUpdateOp::Add,
        );
        let mean = summed * inv_degree;
        burn::tensor::activation::relu(self.self_proj.forward(h) + self.neigh_proj.forward(mean))
    }
}

/// Where each action logit comes from: per graph, `actions` indices into the table
/// `[graph scores (graphs × graph_outputs) | node scores (nodes × node_outputs) | pad]`,
/// built on the CPU from the node kinds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActionLayout {
    /// Logits per graph.
    pub actions: usize,
    /// `graphs × actions` table indices.
    pub index: Vec<i64>,
}

/// The GNN actor-critic.
#[derive(Module, Debug)]
pub struct GnnActorCritic {
    input: Linear,
    layers: Vec<SageLayer>,
    node_head: Linear,
    graph_head: Linear,
    value_head: Linear,
}

/// The node-kind features, as the envs encode them (`hale_envs::encoding::node`).
const KIND_HOST: usize = node::KIND + node_kind::HOST;
const KIND_SERVICE: usize = node::KIND + node_kind::SERVICE;
const KIND_REPLICA: usize = node::KIND + node_kind::REPLICA;

impl GnnActorCritic {
    /// A network for `node_dim` node features, `hidden` wide, `layers` SAGE layers,
    /// `node_outputs` scores per node and `graph_outputs` per graph.
    pub fn new(
        node_dim: usize,
        hidden: usize,
        layers: usize,
        node_outputs: usize,
        graph_outputs: usize,
        device: &Device,
    ) -> GnnActorCritic {
        GnnActorCritic {
            input: LinearConfig::new(node_dim, hidden).init(device),
            layers: (0..layers)
                .map(|_| SageLayer::new(hidden, hidden, device))
                .collect(),
            node_head: LinearConfig::new(hidden, node_outputs).init(device),
            graph_head: LinearConfig::new(hidden, graph_outputs.max(1)).init(device),
            value_head: LinearConfig::new(hidden, 1).init(device),
        }
    }

    /// Node embeddings `[nodes, hidden]` and per-graph means `[graphs, hidden]`.
    pub fn encode(&self, batch: &GraphBatch, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let n = batch.nodes();
        let x = Tensor::<2>::from_data(
            TensorData::new(batch.features.clone(), [n, batch.node_dim]),
            device,
        );
        let int =
            |v: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), device);
        let (src, dst) = (int(&batch.src), int(&batch.dst));
        let inv_degree =
            Tensor::<2>::from_data(TensorData::new(batch.inv_degree.clone(), [n, 1]), device);
        let mut h = burn::tensor::activation::relu(self.input.forward(x));
        for layer in &self.layers {
            h = layer.forward(h, src.clone(), dst.clone(), inv_degree.clone());
        }
        let [_, d] = h.dims();
        let g = batch.graphs();
        let inv_count: Vec<f32> = batch
            .counts
            .iter()
            .map(|&c| 1.0 / c.max(1) as f32)
            .collect();
        let pooled = Tensor::<2>::zeros([g, d], device).select_assign(
            0,
            int(&batch.graph_of_node),
            h.clone(),
            IndexingUpdateOp::Add,
        ) * Tensor::<2>::from_data(TensorData::new(inv_count, [g, 1]), device);
        (h, pooled)
    }

    /// Action logits `[graphs, layout.actions]` (padding entries at `pad`) and values
    /// `[graphs]`.
    pub fn forward(
        &self,
        batch: &GraphBatch,
        layout: &ActionLayout,
        pad: f32,
        device: &Device,
    ) -> (Tensor<2>, Tensor<1>) {
        let (h, pooled) = self.encode(batch, device);
        let node_scores = self.node_head.forward(h).flatten::<1>(0, 1);
        let graph_scores = self.graph_head.forward(pooled.clone()).flatten::<1>(0, 1);
        let table = Tensor::cat(
            vec![
                graph_scores,
                node_scores,
                Tensor::<1>::full([1], pad, device),
            ],
            0,
        );
        let g = batch.graphs();
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(layout.index.clone(), [layout.index.len()]),
            device,
        );
        let logits = table.select(0, index).reshape([g, layout.actions]);
        let values = self.value_head.forward(pooled).squeeze_dim::<1>(1);
        (logits, values)
    }
}

#[cfg(feature = "learn")]
impl GnnActorCritic {
    /// Every dense layer, in the order the fused update keeps them: the input
    /// projection, each SAGE layer's self then neighbour projection, the node, graph
    /// and value heads.
    pub(crate) fn linears(&self) -> Vec<&Linear> {
        let mut out = vec![&self.input];
        for l in &self.layers {
            out.extend([&l.self_proj, &l.neigh_proj]);
        }
        out.extend([&self.node_head, &self.graph_head, &self.value_head]);
        out
    }

    /// This network with layer `i` of [`GnnActorCritic::linears`]' order replaced by
    /// `set(i, layer)`.
    pub(crate) fn map_linears(
        &self,
        mut set: impl FnMut(usize, &Linear) -> Linear,
    ) -> GnnActorCritic {
        let mut i = 0;
        let mut next = |l: &Linear| {
            i += 1;
            set(i - 1, l)
        };
        let input = next(&self.input);
        let layers = self
            .layers
            .iter()
            .map(|l| SageLayer {
                self_proj: next(&l.self_proj),
                neigh_proj: next(&l.neigh_proj),
            })
            .collect();
        GnnActorCritic {
            input,
            layers,
            node_head: next(&self.node_head),
            graph_head: next(&self.graph_head),
            value_head: next(&self.value_head),
        }
    }
}

/// The nodes of `kind` in graph `g` of `batch`, in order (global indices).
fn nodes_of_kind(batch: &GraphBatch, g: usize, kind: usize) -> Vec<usize> {
    let (start, n, d) = (batch.offsets[g], batch.counts[g], batch.node_dim);
    (start..start + n)
        .filter(|&i| batch.features[i * d + kind] > 0.5)
        .collect()
}

/// Scaling-v0 (target or delta actions): one head of `choices` logits per service
/// node, services in order; the network needs `node_outputs = choices` and
/// `graph_outputs = 1`. Errors when a
/// graph has another number of services than `services`.
pub fn scaling_layout(
    batch: &GraphBatch,
    services: usize,
    choices: usize,
) -> Result<ActionLayout, LayoutError> {
    let graph_entries = batch.graphs(); // graph_outputs = 1 (unused here)
    let mut index = Vec::with_capacity(batch.graphs() * services * choices);
    for g in 0..batch.graphs() {
        let s = nodes_of_kind(batch, g, KIND_SERVICE);
        if s.len() != services {
            return Err(LayoutError::Services {
                graph: g,
                found: s.len(),
                expected: services,
            });
        }
        for node in s {
            for c in 0..choices {
                index.push((graph_entries + node * choices + c) as i64);
            }
        }
    }
    Ok(ActionLayout {
        actions: services * choices,
        index,
    })
}

/// Healing-v0: `[no-op, restart × replica slots, reschedule × replica slots, roll
/// back × services, drain × host slots]`, slots in node order (replica slot k is the
/// k-th replica node, host slot h the h-th host node); slots without a node take the
/// pad entry. The network needs `node_outputs = 2` (replicas: restart, reschedule;
/// services: roll back; hosts: drain, from output 0) and `graph_outputs = 1`.
pub fn healing_layout(
    batch: &GraphBatch,
    replica_slots: usize,
    services: usize,
    host_slots: usize,
) -> ActionLayout {
    const NODE_OUT: usize = 2;
    let g_n = batch.graphs();
    let pad = (g_n + batch.nodes() * NODE_OUT) as i64;
    let actions = 1 + 2 * replica_slots + services + host_slots;
    let mut index = Vec::with_capacity(g_n * actions);
    let node = |i: usize, k: usize| (g_n + i * NODE_OUT + k) as i64;
    for g in 0..g_n {
        let replicas = nodes_of_kind(batch, g, KIND_REPLICA);
        let svc = nodes_of_kind(batch, g, KIND_SERVICE);
        let hosts = nodes_of_kind(batch, g, KIND_HOST);
        index.push(g as i64);
        for k in 0..NODE_OUT {
            for slot in 0..replica_slots {
                index.push(replicas.get(slot).map_or(pad, |&i| node(i, k)));
            }
        }
        for s in 0..services {
            index.push(svc.get(s).map_or(pad, |&i| node(i, 0)));
        }
        for h in 0..host_slots {
            index.push(hosts.get(h).map_or(pad, |&i| node(i, 0)));
        }
    }
    ActionLayout { actions, index }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(nodes: usize, d: usize, links: &[[u32; 2]]) -> GraphValue {
        GraphValue {
            nodes: (0..nodes * d).map(|i| (i as f32 * 0.37).sin()).collect(),
            edges: vec![],
            links: links.to_vec(),
        }
    }

    #[test]
    fn batching_offsets_edges_and_refuses_bad_indices() {
        let a = graph(3, 2, &[[0, 1], [1, 2]]);
        let b = graph(2, 2, &[[1, 0]]);
        let batch = GraphBatch::new(&[&a, &b], 2).unwrap();
        assert_eq!(batch.nodes(), 5);
        assert_eq!(batch.offsets, vec![0, 3]);
        assert_eq!(batch.src, vec![0, 1, 1, 2, 4, 3]);
        assert_eq!(batch.dst, vec![1, 0, 2, 1, 3, 4]);
        assert_eq!(batch.inv_degree, vec![1.0, 0.5, 1.0, 1.0, 1.0]);
        let bad = graph(2, 2, &[[0, 2]]);
        let e = GraphBatch::new(&[&a, &bad], 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "graph 1: edge 0 links 0 → 2, but the graph has 2 nodes"
        );
        // Refilling a batch gives what a new one would, and a refused refill
        // leaves no graph of the old or the new batch behind.
        let mut reused = GraphBatch::new(&[&b, &a, &b], 2).unwrap();
        reused.refill(&[&a, &b], 2).unwrap();
        assert_eq!(reused, batch);
        assert!(reused.refill(&[&a, &bad], 2).is_err());
        assert_eq!(
            (reused.nodes(), reused.graphs(), reused.src.len()),
            (0, 0, 0)
        );
        let e = GraphBatch::new(&[&a], 4).unwrap_err();
        assert!(matches!(
            e,
            GraphError::Features {
                graph: 0,
                len: 6,
                node_dim: 4
            }
        ));
    }

    #[test]
    fn message_passing_matches_a_hand_computed_mean() {
        let device = Device::flex();
        let layer = SageLayer::new(1, 1, &device);
        // Path 0 - 1 - 2: node 1's neighbours are 0 and 2.
        let g = GraphValue {
            nodes: vec![1.0, 2.0, 4.0],
            edges: vec![],
            links: vec![[0, 1], [1, 2]],
        };
        let b = GraphBatch::new(&[&g], 1).unwrap();
        let h = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 4.0], [3, 1]), &device);
        let int = |v: &[i64]| {
            Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device)
        };
        let inv = Tensor::<2>::from_data(TensorData::new(b.inv_degree.clone(), [3, 1]), &device);
        let out = crate::tensors::to_vec(layer.forward(h, int(&b.src), int(&b.dst), inv));
        let w_self = crate::tensors::to_vec(layer.self_proj.weight.val())[0];
        let bias = crate::tensors::to_vec(layer.self_proj.bias.as_ref().unwrap().val())[0];
        let w_n = crate::tensors::to_vec(layer.neigh_proj.weight.val())[0];
        let mean = [2.0, 2.5, 2.0];
        for (i, x) in [1.0f32, 2.0, 4.0].iter().enumerate() {
            let expect = (w_self * x + bias + w_n * mean[i]).max(0.0);
            assert!(
                (out[i] - expect).abs() < 1e-5,
                "node {i}: {} vs {expect}",
                out[i]
            );
        }
    }

    #[test]
    fn a_graph_scores_the_same_alone_or_batched() {
        let device = Device::flex();
        let net = crate::tensors::seeded(&device, 1, |d| GnnActorCritic::new(2, 8, 2, 3, 1, d));
        let a = graph(4, 2, &[[0, 1], [1, 2], [2, 3]]);
        let b = graph(3, 2, &[[0, 2]]);
        let run = |gs: &[&GraphValue]| {
            let batch = GraphBatch::new(gs, 2).unwrap();
            let layout = ActionLayout {
                actions: 1,
                index: (0..gs.len() as i64).collect(),
            };
            let (l, v) = net.forward(&batch, &layout, -1e8, &device);
            (crate::tensors::to_vec(l), crate::tensors::to_vec(v))
        };
        let (la, va) = run(&[&a]);
        let (lb, vb) = run(&[&b]);
        let (lab, vab) = run(&[&a, &b]);
        for (x, y) in [
            (la[0], lab[0]),
            (lb[0], lab[1]),
            (va[0], vab[0]),
            (vb[0], vab[1]),
        ] {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}

/// Why an action layout cannot be made for an env, or a graph does not fit it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LayoutError {
    /// Scaling-v0 heads of different sizes.
    #[error("Scaling-v0 heads of unequal sizes {nvec:?}")]
    UnequalHeads {
        /// The sizes.
        nvec: Vec<u64>,
    },
    /// Scaling-v0 with `cpu_levels`: two heads per service node, which the GNN's
    /// layout does not have.
    #[error(
        "Scaling-v0 with `cpu_levels` (vertical sizing) needs two heads per service; the GNN has one: use the MLP"
    )]
    VerticalSizing,
    /// Healing-v0's config cannot be read.
    #[error("Healing-v0 config: {0}")]
    Config(String),
    /// Healing-v0's action count does not fit its slots.
    #[error(
        "Healing-v0: {actions} actions for {replica_slots} replica and {host_slots} host slots"
    )]
    HealingActions {
        /// Actions.
        actions: u64,
        /// Replica slots.
        replica_slots: usize,
        /// Host slots.
        host_slots: usize,
    },
    /// No layout for this env and space.
    #[error("the GNN has action layouts for Scaling-v0 and Healing-v0, not {env} with {space}")]
    Unsupported {
        /// The env id.
        env: String,
        /// Its action space.
        space: String,
    },
    /// A graph with another number of service nodes than the action space's heads.
    #[error("graph {graph} has {found} service nodes, the action space {expected} heads")]
    Services {
        /// The graph in the batch.
        graph: usize,
        /// Its service nodes.
        found: usize,
        /// Heads.
        expected: usize,
    },
}

/// Security-v0 in cloud mode: `[no-op, analyse × replica slots, isolate × replica
/// slots, restore × replica slots, rotate × services, decoy × services, block ×
/// entries, cut × edges]`. The no-op and the cuts are graph scores (`graph_outputs =
/// 1 + edges`: an edge is not a node); the rest node scores (`node_outputs = 3`:
/// replicas analyse, isolate, restore; services rotate, decoy, block). Replica slot k
/// is the k-th replica node, service s the s-th service node; a slot without a node
/// takes the pad entry.
pub fn security_layout(
    batch: &GraphBatch,
    replica_slots: usize,
    services: usize,
    entries: &[usize],
    edges: usize,
) -> ActionLayout {
    const NODE_OUT: usize = 3;
    let g_n = batch.graphs();
    let graph_out = 1 + edges;
    let graph_table = g_n * graph_out;
    let pad = (graph_table + batch.nodes() * NODE_OUT) as i64;
    let actions = 1 + 3 * replica_slots + 2 * services + entries.len() + edges;
    let mut index = Vec::with_capacity(g_n * actions);
    let node = |i: usize, k: usize| (graph_table + i * NODE_OUT + k) as i64;
    for g in 0..g_n {
        let replicas = nodes_of_kind(batch, g, KIND_REPLICA);
        let svc = nodes_of_kind(batch, g, KIND_SERVICE);
        index.push((g * graph_out) as i64);
        for k in 0..NODE_OUT {
            for slot in 0..replica_slots {
                index.push(replicas.get(slot).map_or(pad, |&i| node(i, k)));
            }
        }
        for k in 0..2 {
            for s in 0..services {
                index.push(svc.get(s).map_or(pad, |&i| node(i, k)));
            }
        }
        for &s in entries {
            index.push(svc.get(s).map_or(pad, |&i| node(i, 2)));
        }
        for e in 0..edges {
            index.push((g * graph_out + 1 + e) as i64);
        }
    }
    ActionLayout { actions, index }
}
