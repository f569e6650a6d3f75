//! The resource graph: zones, hosts, services and replicas, and how they relate.
//!
//! Built on demand from the simulation's state, read-only, for observation builders
//! and graph neural networks. Node order is deterministic: zones, then hosts, services
//! and replicas, each by id.

use crate::model::{HostId, HostState, ReplicaId, ServiceId};
use crate::sim::Simulation;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::collections::HashMap;

/// A node of the resource graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    /// A zone, by index.
    Zone(usize),
    /// A host that is not removed.
    Host(HostId),
    /// A service.
    Service(ServiceId),
    /// A live or terminating replica.
    Replica(ReplicaId),
}

/// An edge of the resource graph.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Zone → host.
    Contains,
    /// Host → replica.
    Runs,
    /// Service → replica.
    Owns,
    /// Service → service, with the calls per request.
    Calls {
        /// Parallel calls per request.
        fanout: u32,
    },
}

/// The resource graph at one instant.
pub struct ResourceGraph {
    /// The graph itself.
    pub graph: DiGraph<Resource, Relation>,
    /// Where each resource sits in it.
    pub index: HashMap<Resource, NodeIndex>,
}

impl Simulation {
    /// The resource graph now.
    pub fn resource_graph(&self) -> ResourceGraph {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        let mut add = |g: &mut DiGraph<Resource, Relation>, r: Resource| {
            let i = g.add_node(r);
            index.insert(r, i);
            i
        };
        let zones: Vec<NodeIndex> = (0..self.scenario.spec.zones.len())
            .map(|z| add(&mut graph, Resource::Zone(z)))
            .collect();
        let mut hosts = HashMap::new();
        for (h, host) in self.hosts.iter().enumerate() {
            if host.state != HostState::Removed {
                let i = add(&mut graph, Resource::Host(h));
                graph.add_edge(zones[host.zone], i, Relation::Contains);
                hosts.insert(h, i);
            }
        }
        let services: Vec<NodeIndex> = (0..self.services.len())
            .map(|s| add(&mut graph, Resource::Service(s)))
            .collect();
        for e in self.scenario.edges.iter() {
            if let Some(from) = e.from {
                graph.add_edge(
                    services[from],
                    services[e.to],
                    Relation::Calls { fanout: e.fanout },
                );
            }
        }
        for (s, st) in self.services.iter().enumerate() {
            for &r in &st.replicas {
                let i = add(&mut graph, Resource::Replica(r));
                graph.add_edge(services[s], i, Relation::Owns);
                if let Some(h) = self.replicas[r].host.and_then(|h| hosts.get(&h)) {
                    graph.add_edge(*h, i, Relation::Runs);
                }
            }
        }
        ResourceGraph { graph, index }
    }
}
