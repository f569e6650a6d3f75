//! Targets: what the adapter acts on, behind one trait: the dry-run target here,
//! Kubernetes in [`crate::kubernetes`].

use crate::action::Action;
use crate::observe::Replicas;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a target reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TargetState {
    /// Replica counts per service (`NS/NAME`); a missing entry is unknown.
    pub services: BTreeMap<String, Replicas>,
    /// Each service's replicas (pods, tasks) by `NS/NAME`, where the target lists them.
    pub replicas: BTreeMap<String, Vec<ReplicaState>>,
    /// The nodes the services run on, where the target lists them.
    pub nodes: Vec<NodeState>,
}

/// One replica (a pod, a task) as the target reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplicaState {
    /// Pod or task name (what [`Action::Restart`] names).
    pub name: String,
    /// The node it is placed on, if any.
    pub node: Option<String>,
    /// The target's phase, lower case (`pending`, `running`, `failed`, …).
    pub phase: String,
    /// Whether it passes its readiness checks.
    pub ready: bool,
    /// Container restarts so far.
    pub restarts: u32,
}

/// One node as the target reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeState {
    /// Node name (what [`Action::Cordon`] names).
    pub name: String,
    /// Whether the node reports itself ready.
    pub ready: bool,
    /// Whether new work may be placed on it (not cordoned or paused).
    pub schedulable: bool,
}

/// Why a target could not be read or acted on.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target did not answer (down, timed out).
    #[error("{target}: unreachable: {reason}")]
    Unreachable {
        /// Target name.
        target: String,
        /// What happened.
        reason: String,
    },
    /// The object named is not there (any more).
    #[error("{target}: {object} not found")]
    NotFound {
        /// Target name.
        target: String,
        /// What was looked for.
        object: String,
    },
    /// The target refused the operation.
    #[error("{target}: refused {action}: {reason}")]
    Refused {
        /// Target name.
        target: String,
        /// The action, printed.
        action: String,
        /// What it said.
        reason: String,
    },
}

/// Infrastructure the adapter can observe and change.
pub trait Target: Send {
    /// A short name for logs (`dry-run`, `kubernetes`, `docker`).
    fn name(&self) -> &str;
    /// The current state.
    fn state(&mut self) -> Result<TargetState, TargetError>;
    /// Carries out one (guarded) action.
    fn apply(&mut self, action: &Action) -> Result<(), TargetError>;
}

/// Does nothing, says what it would do (on stderr), and keeps the replica counts it
/// would have set (all ready at once), so a dry run of a scaling policy evolves as a
/// real one would.
pub struct DryRun {
    state: TargetState,
    /// Every action it was asked to carry out, in order.
    pub applied: Vec<Action>,
}

impl DryRun {
    /// A dry-run target starting from these replica counts (`NS/NAME` → count).
    pub fn new(replicas: BTreeMap<String, u32>) -> DryRun {
        let services = replicas
            .into_iter()
            .map(|(k, n)| {
                (
                    k,
                    Replicas {
                        ready: n,
                        booting: 0,
                        desired: n,
                    },
                )
            })
            .collect();
        DryRun {
            state: TargetState {
                services,
                ..TargetState::default()
            },
            applied: Vec::new(),
        }
    }
}

impl Target for DryRun {
    fn name(&self) -> &str {
        "dry-run"
    }

    fn state(&mut self) -> Result<TargetState, TargetError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, action: &Action) -> Result<(), TargetError> {
        eprintln!("dry-run: would {action}");
        if let Action::Scale {
            namespace,
            service,
            replicas,
        } = action
        {
            self.state.services.insert(
                format!("{namespace}/{service}"),
                Replicas {
                    ready: *replicas,
                    booting: 0,
                    desired: *replicas,
                },
            );
        }
        self.applied.push(action.clone());
        Ok(())
    }
}
