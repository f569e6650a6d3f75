//! What a policy can do to the cloud, and why the simulator may refuse.

use crate::model::{HostId, HostState, ReplicaId, ReplicaState, ServiceId};
use serde::{Deserialize, Serialize};

/// An action on the simulated cloud. Each takes effect with the latency the scenario
/// gives it (boot, restart, provisioning, rollback, resize time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Set a service's desired replica count.
    Scale {
        /// Service.
        service: ServiceId,
        /// Desired replicas.
        replicas: u32,
    },
    /// Restart a replica in place (clears hangs, leaks and slowness).
    Restart {
        /// Replica.
        replica: ReplicaId,
    },
    /// Delete a replica; its service creates a replacement anywhere.
    Kill {
        /// Replica.
        replica: ReplicaId,
    },
    /// Delete a replica; its replacement goes to another host.
    Reschedule {
        /// Replica.
        replica: ReplicaId,
    },
    /// Roll a service back to its previous deploy.
    Rollback {
        /// Service.
        service: ServiceId,
    },
    /// Mark a host unschedulable.
    Cordon {
        /// Host.
        host: HostId,
    },
    /// Mark a host schedulable again.
    Uncordon {
        /// Host.
        host: HostId,
    },
    /// Cordon a host and move its replicas elsewhere.
    Drain {
        /// Host.
        host: HostId,
    },
    /// Change the cores of every replica of a service, in place.
    Resize {
        /// Service.
        service: ServiceId,
        /// New cores per replica.
        cpu: f64,
    },
    /// Provision a host.
    AddHost {
        /// Host-type index.
        host_type: usize,
        /// Zone index.
        zone: usize,
    },
    /// Release an empty host.
    RemoveHost {
        /// Host.
        host: HostId,
    },
}

/// Why an action was refused. The simulator is unchanged when one is returned.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// No such service.
    #[error("no service {0} (the scenario has {1})")]
    NoService(ServiceId, usize),
    /// No such replica.
    #[error("no replica {0} (ids go up to {1})")]
    NoReplica(ReplicaId, usize),
    /// No such host.
    #[error("no host {0} (ids go up to {1})")]
    NoHost(HostId, usize),
    /// No such host type or zone.
    #[error("no {what} {index}")]
    NoSuch {
        /// "host type" or "zone".
        what: &'static str,
        /// The index given.
        index: usize,
    },
    /// The replica is in a state the action does not apply to.
    #[error("replica {replica} is {state:?}: cannot {action}")]
    ReplicaState {
        /// Replica.
        replica: ReplicaId,
        /// Its state.
        state: ReplicaState,
        /// The action.
        action: &'static str,
    },
    /// The host is in a state the action does not apply to.
    #[error("host {host} is {state:?}: cannot {action}")]
    HostState {
        /// Host.
        host: HostId,
        /// Its state.
        state: HostState,
        /// The action.
        action: &'static str,
    },
    /// A host still runs replicas.
    #[error("host {host} still runs {replicas} replicas: drain it first")]
    HostNotEmpty {
        /// Host.
        host: HostId,
        /// How many.
        replicas: u32,
    },
    /// The cluster is at its host limit.
    #[error("the cluster already has its maximum of {0} hosts")]
    HostLimit(u32),
    /// Nothing to roll back.
    #[error("service {0} runs a good deploy: nothing to roll back")]
    NothingToRollBack(ServiceId),
    /// A numeric argument is out of range.
    #[error("{field} = {value} is out of range ({range})")]
    OutOfRange {
        /// Which argument.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range.
        range: String,
    },
    /// A resize does not fit on a host.
    #[error("resize of service {service} to {cpu} cores does not fit on host {host}")]
    NoRoom {
        /// Service.
        service: ServiceId,
        /// Requested cores.
        cpu: f64,
        /// The host without room.
        host: HostId,
    },
}

/// Most replicas one service may be scaled to.
pub const MAX_REPLICAS_PER_SERVICE: u32 = 100_000;
