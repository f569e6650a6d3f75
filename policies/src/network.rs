//! The network a policy runs, behind one type: an MLP over flat observations or a GNN
//! over graph observations. Algorithms, bundles and [`crate::bundle::LearnedPolicy`]
//! call [`Network::forward`] and never look inside.
//!
//! Which one is described by an [`Encoder`] (written into `policy.json`): for a GNN, its
//! width and depth and the [`LayoutSpec`] that maps node scores to the env's actions.

use crate::gnn::{
    ActionLayout, GnnActorCritic, GraphBatch, GraphError, LayoutError, healing_layout,
    scaling_layout, security_layout,
};
use crate::heads::MASKED_LOGIT;
use crate::mlp::ActorCritic;
use crate::tensors::tensor2;
use crate::weights::WeightsError;
use burn::module::Module;
use burn::prelude::*;
use hale_envs::{GraphValue, HealingConfig, Space};
use serde::{Deserialize, Serialize};

/// Which network reads the observations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Encoder {
    /// Separate actor and critic MLPs over a flat observation (widths from the
    /// algorithm's `hidden`).
    #[default]
    Mlp,
    /// GraphSAGE over the resource graph.
    Gnn(GnnSpec),
}

/// Shape of a GNN policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GnnSpec {
    /// Features per node.
    pub node_dim: usize,
    /// Width of the node embeddings.
    pub hidden: usize,
    /// Message-passing layers.
    pub layers: usize,
    /// How node scores become action logits.
    pub layout: LayoutSpec,
}

/// How a GNN's node and graph scores map onto an env's action logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "env", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayoutSpec {
    /// Scaling-v0: one head of `choices` logits per service node.
    Scaling {
        /// Services (heads).
        services: usize,
        /// Choices per head.
        choices: usize,
    },
    /// Security-v0 in cloud mode: no-op and cut-or-reconnect per call edge from the
    /// graph's scores; analyse, isolate and restore per replica slot, rotate, decoy
    /// and block per service, from the nodes'.
    Security {
        /// Replica slots.
        replica_slots: usize,
        /// Services.
        services: usize,
        /// Entry services, by service index.
        entries: Vec<usize>,
        /// Call edges.
        edges: usize,
    },
    /// Healing-v0: no-op, restart and reschedule per replica slot, roll back per
    /// service, drain per host slot.
    Healing {
        /// Replica slots.
        replica_slots: usize,
        /// Services.
        services: usize,
        /// Host slots.
        host_slots: usize,
    },
}

impl LayoutSpec {
    /// The layout for env `env_id` with `config` and `action_space`, or why a GNN
    /// cannot drive it.
    pub fn for_env(
        env_id: &str,
        config: &serde_json::Value,
        action_space: &Space,
    ) -> Result<LayoutSpec, LayoutError> {
        // A multi-agent env's agent (a lockstep view, `CloudOps-v0:scaler`) acts as
        // the single-agent env it mirrors.
        if let Some((multi, agent)) = env_id.split_once(':') {
            let (id, single) = crate::team::mirror(multi, config, agent)
                .map_err(|e| LayoutError::Config(e.to_string()))?;
            return LayoutSpec::for_env(id, &single, action_space);
        }
        match (env_id, action_space) {
            ("Scaling-v0", Space::MultiDiscrete { nvec }) => {
                if config
                    .get("cpu_levels")
                    .and_then(|l| l.as_array())
                    .is_some_and(|l| !l.is_empty())
                {
                    return Err(LayoutError::VerticalSizing);
                }
                let choices = nvec.first().copied().unwrap_or(0) as usize;
                if nvec.iter().any(|&n| n as usize != choices) {
                    return Err(LayoutError::UnequalHeads { nvec: nvec.clone() });
                }
                Ok(LayoutSpec::Scaling {
                    services: nvec.len(),
                    choices,
                })
            }
            ("Healing-v0", Space::Discrete { n }) => {
                let cfg: HealingConfig = if config.is_null() {
                    HealingConfig::default()
                } else {
                    serde_json::from_value(config.clone())
                        .map_err(|e| LayoutError::Config(e.to_string()))?
                };
                let (r, h) = (cfg.max_replicas, cfg.max_hosts);
                let services = (*n as usize).checked_sub(1 + 2 * r + h).ok_or(
                    LayoutError::HealingActions {
                        actions: *n,
                        replica_slots: r,
                        host_slots: h,
                    },
                )?;
                Ok(LayoutSpec::Healing {
                    replica_slots: r,
                    services,
                    host_slots: h,
                })
            }
            ("Security-v0", Space::Discrete { .. }) => {
                let env = hale_envs::Security::new(config)
                    .map_err(|e| LayoutError::Config(e.to_string()))?;
                let (Some(l), Some(sc)) = (env.cloud_layout(), env.cloud_scenario()) else {
                    return Err(LayoutError::Config(
                        "a GNN defends Security-v0's cloud mode (CAGE 2 has no graph \
                         observation)"
                            .into(),
                    ));
                };
                let entries = sc
                    .security
                    .as_ref()
                    .map(|m| m.entry.clone())
                    .unwrap_or_default();
                Ok(LayoutSpec::Security {
                    replica_slots: l.replicas,
                    services: l.services,
                    entries,
                    edges: l.edges,
                })
            }
            _ => Err(LayoutError::Unsupported {
                env: env_id.to_string(),
                space: action_space.to_string(),
            }),
        }
    }

    /// Scores per graph the network needs.
    pub fn graph_outputs(&self) -> usize {
        match self {
            LayoutSpec::Security { edges, .. } => 1 + edges,
            _ => 1,
        }
    }

    /// Scores per node the network needs.
    pub fn node_outputs(&self) -> usize {
        match self {
            LayoutSpec::Scaling { choices, .. } => *choices,
            LayoutSpec::Healing { .. } => 2,
            LayoutSpec::Security { .. } => 3,
        }
    }

    /// Logits per graph.
    pub fn actions(&self) -> usize {
        match self {
            LayoutSpec::Scaling { services, choices } => services * choices,
            LayoutSpec::Healing {
                replica_slots,
                services,
                host_slots,
            } => 1 + 2 * replica_slots + services + host_slots,
            LayoutSpec::Security {
                replica_slots,
                services,
                entries,
                edges,
            } => 1 + 3 * replica_slots + 2 * services + entries.len() + edges,
        }
    }

    /// The index table for a batch.
    pub fn build(&self, batch: &GraphBatch) -> Result<ActionLayout, LayoutError> {
        match *self {
            LayoutSpec::Scaling { services, choices } => scaling_layout(batch, services, choices),
            LayoutSpec::Healing {
                replica_slots,
                services,
                host_slots,
            } => Ok(healing_layout(batch, replica_slots, services, host_slots)),
            LayoutSpec::Security {
                replica_slots,
                services,
                ref entries,
                edges,
            } => Ok(security_layout(
                batch,
                replica_slots,
                services,
                entries,
                edges,
            )),
        }
    }
}

/// A GNN actor-critic and the layout of its actions.
#[derive(Module, Debug)]
pub struct GraphPolicyNet {
    gnn: GnnActorCritic,
    #[module(skip)]
    spec: GnnSpec,
}

#[cfg(feature = "learn")]
impl GraphPolicyNet {
    /// The network.
    pub(crate) fn gnn(&self) -> &GnnActorCritic {
        &self.gnn
    }

    /// Its width, depth and action layout.
    pub(crate) fn spec(&self) -> &GnnSpec {
        &self.spec
    }

    /// This policy with `gnn` (a network of the same shapes) in place of its network.
    pub(crate) fn with_gnn(&self, gnn: GnnActorCritic) -> GraphPolicyNet {
        GraphPolicyNet {
            gnn,
            spec: self.spec.clone(),
        }
    }
}

/// An MLP or a GNN actor-critic.
// One per policy or run, moved rarely: the size difference does not matter, and
// burn's derive does not see through a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    /// Over flat observations.
    Mlp(ActorCritic),
    /// Over graph observations.
    Gnn(GraphPolicyNet),
}

/// A batch of observations, as a network reads them.
pub enum Observations<'a> {
    /// `rows` flat observations, row-major.
    Flat {
        /// The values.
        values: &'a [f32],
        /// Observations in the batch.
        rows: usize,
    },
    /// Graphs.
    Graphs(Vec<&'a GraphValue>),
}

impl Observations<'_> {
    /// Observations in the batch.
    pub fn len(&self) -> usize {
        match self {
            Observations::Flat { rows, .. } => *rows,
            Observations::Graphs(g) => g.len(),
        }
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a batch could not go through the network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForwardError {
    /// A graph is malformed (bad edge index, feature length).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The graph does not fit the action layout (e.g. another number of services).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A flat observation of another length than the policy reads.
    #[error("an observation of {found} values, the policy reads {expected}")]
    Length {
        /// Values given.
        found: usize,
        /// Values the policy reads.
        expected: usize,
    },
    /// Flat observations given to a GNN or graphs to an MLP.
    #[error("{network} policy was given {given} observations")]
    Kind {
        /// `an MLP` or `a GNN`.
        network: &'static str,
        /// `graph` or `flat`.
        given: &'static str,
    },
}

impl Network {
    /// A fresh network: an MLP for `obs_dim` floats and `logits` logits with `hidden`
    /// widths, or a GNN as `encoder` says.
    pub fn new(
        encoder: &Encoder,
        obs_dim: usize,
        logits: usize,
        hidden: &[usize],
        device: &Device,
    ) -> Network {
        match encoder {
            Encoder::Mlp => Network::Mlp(ActorCritic::new(obs_dim, logits, hidden, device)),
            Encoder::Gnn(spec) => Network::Gnn(GraphPolicyNet {
                gnn: GnnActorCritic::new(
                    spec.node_dim,
                    spec.hidden,
                    spec.layers,
                    spec.layout.node_outputs(),
                    spec.layout.graph_outputs(),
                    device,
                ),
                spec: spec.clone(),
            }),
        }
    }

    /// Action logits `[batch, logits]` (for a GNN, action slots with no node behind
    /// them at [`MASKED_LOGIT`]) and values `[batch]`.
    pub fn forward(
        &self,
        obs: Observations<'_>,
        device: &Device,
    ) -> Result<(Tensor<2>, Tensor<1>), ForwardError> {
        match (self, obs) {
            (Network::Mlp(net), Observations::Flat { values, rows }) => {
                let d = values.len() / rows.max(1);
                let x = tensor2(values.to_vec(), rows, d, device);
                Ok((net.logits(x.clone()), net.value(x)))
            }
            (Network::Gnn(net), Observations::Graphs(graphs)) => {
                let batch = GraphBatch::new(&graphs, net.spec.node_dim)?;
                let layout = net.spec.layout.build(&batch)?;
                Ok(net.gnn.forward(&batch, &layout, MASKED_LOGIT, device))
            }
            (Network::Mlp(_), Observations::Graphs(_)) => Err(ForwardError::Kind {
                network: "an MLP",
                given: "graph",
            }),
            (Network::Gnn(_), Observations::Flat { .. }) => Err(ForwardError::Kind {
                network: "a GNN",
                given: "flat",
            }),
        }
    }

    /// Values only `[batch]`.
    pub fn value(&self, obs: Observations<'_>, device: &Device) -> Result<Tensor<1>, ForwardError> {
        match (self, obs) {
            (Network::Mlp(net), Observations::Flat { values, rows }) => {
                let d = values.len() / rows.max(1);
                Ok(net.value(tensor2(values.to_vec(), rows, d, device)))
            }
            (net, obs) => Ok(net.forward(obs, device)?.1),
        }
    }

    /// The weights as burnpack bytes (of the inner network, so an MLP's bundle is
    /// the same file it was before networks had a common type).
    pub fn weight_bytes(&self) -> Result<Vec<u8>, WeightsError> {
        match self {
            Network::Mlp(net) => crate::weights::module_bytes(net.clone()),
            Network::Gnn(net) => crate::weights::module_bytes(net.gnn.clone()),
        }
    }

    /// Loads weights written by [`Network::weight_bytes`].
    pub fn load_weight_bytes(self, bytes: Vec<u8>) -> Result<Network, WeightsError> {
        Ok(match self {
            Network::Mlp(net) => Network::Mlp(crate::weights::load_module_bytes(net, bytes)?),
            Network::Gnn(net) => Network::Gnn(GraphPolicyNet {
                gnn: crate::weights::load_module_bytes(net.gnn, bytes)?,
                spec: net.spec,
            }),
        })
    }
}

/// Which network an algorithm builds (its config's `network` field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// An MLP over flat observations.
    #[default]
    Mlp,
    /// A GNN over graph observations (the env's `observation = "graph"`).
    Gnn,
}

impl Network {
    /// What `policy.json` records about this network.
    pub fn encoder(&self) -> Encoder {
        match self {
            Network::Mlp(_) => Encoder::Mlp,
            Network::Gnn(net) => Encoder::Gnn(net.spec.clone()),
        }
    }
}
