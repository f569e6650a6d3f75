//! Records of injected faults, for time-to-recovery accounting.
//!
//! Fault *kinds* and their parameters are part of the scenario
//! ([`crate::scenario::FaultSpec`]); injection happens in the simulation.

use crate::model::{HostId, ReplicaId, ServiceId};
use crate::time::SimTime;
use serde::Serialize;

/// What a fault hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultSubject {
    /// One replica (crash, hang, leak, slow).
    Replica(ReplicaId),
    /// One host (host failure).
    Host(HostId),
    /// A zone (outage).
    Zone(usize),
    /// A service's deploy (bad deploy).
    Service(ServiceId),
    /// A service failing as a dependency of others.
    Dependency(ServiceId),
}

/// One injected fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    /// Kind, as in the scenario (`crash`, `hang`, …).
    pub kind: &'static str,
    /// When it was injected.
    pub at: SimTime,
    /// What it hit.
    pub subject: FaultSubject,
    /// When it stopped hurting: the replica was restarted and ready again or removed,
    /// the host repaired or removed, the deploy rolled back, the outage over.
    pub resolved_at: Option<SimTime>,
    /// Hosts it took down (host failure, zone outage).
    pub hosts: Vec<HostId>,
}

impl FaultRecord {
    /// Time to recovery, if resolved.
    pub fn time_to_recovery(&self) -> Option<SimTime> {
        self.resolved_at.map(|t| t.saturating_sub(self.at))
    }
}
