//! The live input: the target's replicas and nodes with what Prometheus says about
//! them, in the slots the env's encoding reads. Healing-v0 decides from it, and a
//! policy of either env that reads the resource graph sees it as a graph.

use crate::metrics::Metrics;
use crate::observe::{Missing, PrometheusSource, Replicas};
use crate::report::Outcome;
use crate::target::TargetState;
use hale_envs::encoding::{
    GraphEncoding, GraphHost, GraphReplica, HostReading, ReplicaReading, ServiceReading,
};

/// What Healing-v0's observation and the resource graph (of either env) are built
/// from: the target's replicas and nodes with what Prometheus says about them.
#[derive(Clone, Debug, Default)]
pub struct LiveInput {
    /// The replicas in slot order (by service, then the target's order).
    pub replicas: Vec<LiveReplica>,
    /// The nodes in slot order.
    pub hosts: Vec<LiveHost>,
    /// Distinct zones of the nodes (at least one).
    pub zones: usize,
    /// One reading per service, in the env's order.
    pub services: Vec<ServiceReading>,
    /// Replica counts per service.
    pub counts: Vec<Replicas>,
    /// Whether each service has a previous revision.
    pub rollback_possible: Vec<bool>,
}

/// One node of the live input.
#[derive(Clone, Debug)]
pub struct LiveHost {
    /// Its target name.
    pub name: String,
    /// Its zone's index.
    pub zone: usize,
    /// Up, cordoned, CPU allocation.
    pub reading: HostReading,
    /// Requested over available memory (0 where unknown; only the graph reads it).
    pub memory_allocation: f64,
}

impl LiveInput {
    /// The resource graph of this state, encoded as the env does.
    pub fn graph(&self, encoding: &GraphEncoding) -> hale_envs::GraphValue {
        let hosts: Vec<GraphHost> = self
            .hosts
            .iter()
            .map(|h| GraphHost {
                zone: h.zone,
                reading: h.reading,
                memory_allocation: h.memory_allocation,
            })
            .collect();
        let replicas: Vec<GraphReplica> = self
            .replicas
            .iter()
            .map(|r| GraphReplica {
                reading: r.reading,
                host: r
                    .node
                    .as_ref()
                    .and_then(|n| self.hosts.iter().position(|h| &h.name == n)),
            })
            .collect();
        encoding.encode(self.zones, &hosts, &self.services, &replicas)
    }
}

/// One replica of the live input.
#[derive(Clone, Debug)]
pub struct LiveReplica {
    /// Its target name (pod, task id).
    pub name: String,
    /// The node it is placed on.
    pub node: Option<String>,
    /// What the env's encoding reads.
    pub reading: ReplicaReading,
}

/// Where observations come from, and the target's names of the env's services.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// Prometheus.
    pub source: &'a PrometheusSource,
    /// Where staleness goes.
    pub metrics: &'a Metrics,
    /// The target's namespace.
    pub namespace: &'a str,
    /// The target's names of the env's services, in the env's order.
    pub services: &'a [String],
}

/// The live input (Healing-v0, or a graph) from the target's state and Prometheus;
/// a hold when anything is missing. The nodes' memory is needed for a `graph` only.
pub fn gather(
    cx: &Sources<'_>,
    state: &TargetState,
    replicas: &[Option<Replicas>],
    now_unix: f64,
    graph: bool,
) -> Result<LiveInput, Outcome> {
    let obs = cx.source.readings(cx.services, replicas, now_unix);
    let mut missing = obs.missing;
    let mut oldest = obs.oldest_sample_s;
    // Zones in name order; nodes without one share a zone.
    let mut zones: Vec<Option<&str>> = state.nodes.iter().map(|n| n.zone.as_deref()).collect();
    zones.sort_unstable();
    zones.dedup();
    let hosts: Vec<LiveHost> = state
        .nodes
        .iter()
        .map(|n| {
            if n.cpu_allocation.is_none() {
                missing.push(Missing {
                    service: format!("node/{}", n.name),
                    feature: "cpu_allocation".into(),
                    reason: "the target does not report the node's cores".into(),
                });
            }
            if graph && n.memory_allocation.is_none() {
                missing.push(Missing {
                    service: format!("node/{}", n.name),
                    feature: "memory_allocation".into(),
                    reason: "the target does not report the node's memory".into(),
                });
            }
            LiveHost {
                name: n.name.clone(),
                zone: zones
                    .iter()
                    .position(|z| *z == n.zone.as_deref())
                    .unwrap_or(0),
                reading: HostReading {
                    up: n.ready,
                    cordoned: !n.schedulable,
                    cpu_allocation: n.cpu_allocation.unwrap_or(0.0),
                },
                memory_allocation: n.memory_allocation.unwrap_or(0.0),
            }
        })
        .collect();
    let mut listed: Vec<(usize, &crate::target::ReplicaState)> = Vec::new();
    for (i, service) in cx.services.iter().enumerate() {
        match state.replicas.get(&format!("{}/{service}", cx.namespace)) {
            Some(list) => listed.extend(list.iter().map(|r| (i, r))),
            None => missing.push(Missing {
                service: service.clone(),
                feature: "replicas".into(),
                reason: "the target did not list the service's replicas".into(),
            }),
        }
    }
    // Only a running replica can be asked about itself.
    let running: Vec<(String, String)> = listed
        .iter()
        .filter(|(_, r)| r.running())
        .map(|(i, r)| (cx.services[*i].clone(), r.name.clone()))
        .collect();
    let (samples, replica_missing, replica_oldest) = cx.source.replicas(&running, now_unix);
    missing.extend(replica_missing);
    oldest = oldest.max(replica_oldest);
    cx.metrics.staleness.set(oldest);
    if !missing.is_empty() {
        return Err(Outcome::missing(missing));
    }
    let mut samples = samples.into_iter();
    let readings = listed
        .iter()
        .map(|(i, r)| {
            let (state, probe_failures) = r.live_state();
            let sample = if r.running() {
                samples.next().unwrap_or_default()
            } else {
                Default::default()
            };
            let host_up = r
                .node
                .as_ref()
                .is_some_and(|n| hosts.iter().any(|h| &h.name == n && h.reading.up));
            LiveReplica {
                name: r.name.clone(),
                node: r.node.clone(),
                reading: ReplicaReading {
                    service: *i,
                    state,
                    probe_failures,
                    restarts: r.restarts,
                    memory_fraction: sample.memory_fraction,
                    mean_latency_ms: sample.mean_latency_ms,
                    error_rate: sample.error_rate,
                    host_up,
                },
            }
        })
        .collect();
    Ok(LiveInput {
        replicas: readings,
        hosts,
        zones: zones.len().max(1),
        services: obs.readings,
        counts: replicas.iter().map(|r| r.unwrap_or_default()).collect(),
        rollback_possible: cx
            .services
            .iter()
            .map(|s| {
                state
                    .rollback_possible
                    .get(&format!("{}/{s}", cx.namespace))
                    .copied()
                    .unwrap_or(false)
            })
            .collect(),
    })
}
