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
    /// Whether each service (`NS/NAME`) has a previous revision to roll back to,
    /// where the target says.
    pub rollback_possible: BTreeMap<String, bool>,
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
    /// Container restarts so far (Kubernetes), or earlier tasks in the same slot
    /// (Swarm).
    pub restarts: u32,
}

impl ReplicaState {
    /// Whether its process runs (it can answer queries about itself).
    pub fn running(&self) -> bool {
        self.phase == "running"
    }

    /// The env's replica state for this phase, with the probe failures to report:
    ///
    /// | phase | state |
    /// |---|---|
    /// | `pending`, `new`, `allocated`, `assigned` with no node | pending |
    /// | `accepted`, `preparing`, `ready`, `starting`, or pending on a node | booting |
    /// | `running`, ready | ready |
    /// | `running`, not ready | hung, one probe failure |
    /// | `failed`, `rejected`, `orphaned`, `crashed`, `unknown` | crashed |
    /// | `terminating`, `shutdown`, `remove` | terminating |
    /// | `complete`, `succeeded` | terminated |
    ///
    /// The orchestrator's own liveness probes act on a hung process; what the adapter
    /// sees is readiness failing, reported as one failure (a third of the restart
    /// threshold), so a kubelet-like policy leaves it to them.
    pub fn live_state(&self) -> (hale_envs::live::ReplicaState, u32) {
        use hale_envs::live::ReplicaState as S;
        match self.phase.as_str() {
            "pending" | "new" | "allocated" | "assigned" if self.node.is_none() => (S::Pending, 0),
            "pending" | "new" | "allocated" | "assigned" | "accepted" | "preparing" | "ready"
            | "starting" => (S::Booting, 0),
            "running" if self.ready => (S::Ready, 0),
            "running" => (S::Hung, 1),
            "terminating" | "shutdown" | "remove" => (S::Terminating, 0),
            "complete" | "succeeded" => (S::Terminated, 0),
            _ => (S::Crashed, 0),
        }
    }
}

/// One node as the target reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeState {
    /// Node name (what [`Action::Cordon`] names).
    pub name: String,
    /// Whether the node reports itself ready.
    pub ready: bool,
    /// Whether new work may be placed on it (not cordoned or paused).
    pub schedulable: bool,
    /// CPU requested by the replicas the target lists on it, over its cores (None
    /// where the node does not say how many it has).
    pub cpu_allocation: Option<f64>,
    /// Memory requested by those replicas over the node's memory (None where the
    /// node does not say how much it has).
    pub memory_allocation: Option<f64>,
    /// Its zone (Kubernetes: the `topology.kubernetes.io/zone` label), if any.
    pub zone: Option<String>,
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

/// What the loop should make of a failed call to an orchestrator's API: HTTP 404 is
/// a vanished object, 5xx (or no HTTP answer at all: `status` is `None`) an
/// unreachable target, any other status a refusal.
pub fn classify(
    target: &str,
    what: &str,
    status: Option<(u16, String)>,
    error: impl std::fmt::Display,
) -> TargetError {
    match status {
        Some((404, _)) => TargetError::NotFound {
            target: target.into(),
            object: what.to_string(),
        },
        Some((code, message)) if code >= 500 => TargetError::Unreachable {
            target: target.into(),
            reason: format!("{what}: HTTP {code} {message}"),
        },
        Some((code, message)) => TargetError::Refused {
            target: target.into(),
            action: what.to_string(),
            reason: format!("HTTP {code} {message}"),
        },
        None => TargetError::Unreachable {
            target: target.into(),
            reason: format!("{what}: {error}"),
        },
    }
}

/// For targets whose client is async (kube-rs, bollard): a single-threaded tokio
/// runtime of the target's own that runs each call to completion, or gives up after
/// the timeout, so the decision loop stays synchronous.
pub struct Blocking {
    runtime: tokio::runtime::Runtime,
    timeout: std::time::Duration,
    target: &'static str,
}

impl Blocking {
    /// A runtime for `target` (its name in errors), bounding each call by `timeout`.
    pub fn new(
        target: &'static str,
        timeout: std::time::Duration,
    ) -> Result<Blocking, TargetError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TargetError::Unreachable {
                target: target.into(),
                reason: format!("cannot start the async runtime: {e}"),
            })?;
        Ok(Blocking {
            runtime,
            timeout,
            target,
        })
    }

    /// The time limit of each call.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// The runtime, for setting a client up.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// An unreachable-target error with this target's name.
    pub fn unreachable(&self, reason: String) -> TargetError {
        TargetError::Unreachable {
            target: self.target.into(),
            reason,
        }
    }

    /// Runs `call` (described by `what` in errors); `status` reads the HTTP status
    /// and message out of the client's error, if it has one, for [`classify`].
    pub fn call<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, E>>,
        status: fn(&E) -> Option<(u16, String)>,
    ) -> Result<T, TargetError> {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, call).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(self.target, what, status(&e), e)),
            Err(_) => Err(self.unreachable(format!("{what}: no answer within {:?}", self.timeout))),
        }
    }
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
