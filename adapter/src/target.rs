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
    /// Each service's CPU request per replica (`NS/NAME`), where its template sets one.
    pub cpu: BTreeMap<String, CpuRequest>,
}

/// A service's CPU request per replica, as its template sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuRequest {
    /// Requested now, millicores (summed over a pod's containers).
    pub millicores: u32,
    /// What a sizing policy's levels are factors of: the request the service had
    /// before the adapter first resized it (the target records it on the service,
    /// [`BASE_CPU`]), or its request now where it never did.
    pub base_millicores: u32,
}

/// The annotation (Kubernetes) or label (Swarm) on a service that records its CPU
/// request per replica, millicores, before the adapter first resized it.
pub const BASE_CPU: &str = "hale.dev/base-cpu-millicores";

impl CpuRequest {
    /// The request `millicores` with the base recorded on the service, if any (an
    /// unreadable record counts as none: the request now is the base).
    pub fn read(millicores: u32, recorded: Option<&String>) -> CpuRequest {
        CpuRequest {
            millicores,
            base_millicores: recorded
                .and_then(|v| v.trim().parse().ok())
                .filter(|&b: &u32| b > 0)
                .unwrap_or(millicores),
        }
    }
}

/// Shares `target` millicores out over containers that request `each` now, in
/// proportion, each at least 1m; the last takes the rounding so they sum to
/// `target` exactly where that leaves it at least 1m. Empty if none requests CPU.
pub fn share_cpu(each: &[u32], target: u32) -> Vec<u32> {
    let total: u32 = each.iter().sum();
    if total == 0 {
        return Vec::new();
    }
    let ratio = f64::from(target) / f64::from(total);
    let mut out: Vec<u32> = each
        .iter()
        .map(|&m| ((f64::from(m) * ratio).round() as u32).max(1))
        .collect();
    let others: u32 = out[..out.len() - 1].iter().sum();
    if let Some(last) = out.last_mut() {
        *last = target.saturating_sub(others).max(1);
    }
    out
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
    /// Cut off the network by the adapter ([`crate::action::ISOLATED`]).
    pub isolated: bool,
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
    pub fn live_state(&self) -> (hale_envs::encoding::ReplicaState, u32) {
        use hale_envs::encoding::ReplicaState as S;
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
    /// Another writer changed the object between our read and our write (Kubernetes
    /// answers 409, Swarm "update out of sequence"): nothing was overwritten, and a
    /// fresh read-modify-write may succeed ([`retry_on_conflict`]).
    #[error("{target}: conflict on {action}: {reason}")]
    Conflict {
        /// Target name.
        target: String,
        /// The action, printed.
        action: String,
        /// What it said.
        reason: String,
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
/// a vanished object, 409 a conflict with another writer, 5xx (or no HTTP answer at
/// all: `status` is `None`) an unreachable target, any other status a refusal.
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
        Some((409, message)) => TargetError::Conflict {
            target: target.into(),
            action: what.to_string(),
            reason: format!("HTTP 409 {message}"),
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

/// How many times a read-modify-write is tried in all when other writers keep
/// changing the object between its read and its write (client-go's `DefaultRetry`
/// has 5 steps).
pub const CONFLICT_ATTEMPTS: u32 = 5;

/// Runs `read_modify_write` (which reads the object afresh each time, changes it and
/// writes it back conditionally on the version it read) until it succeeds, fails for
/// another reason than a conflict, or has met [`CONFLICT_ATTEMPTS`] conflicts, as
/// client-go's `RetryOnConflict` does. Between tries it waits 10 ms more each time,
/// so that a controller's burst of status writes can pass.
///
/// Orchestrators bump an object's version on every write, status updates included: a
/// Deployment controller updating a rollout's status makes a roll back read a moment
/// earlier stale. The last conflict is returned if every try met one.
pub fn retry_on_conflict<T>(
    mut read_modify_write: impl FnMut() -> Result<T, TargetError>,
) -> Result<T, TargetError> {
    let mut tries = 1;
    loop {
        match read_modify_write() {
            Err(TargetError::Conflict { .. }) if tries < CONFLICT_ATTEMPTS => {
                std::thread::sleep(std::time::Duration::from_millis(10 * u64::from(tries)));
                tries += 1;
            }
            done => return done,
        }
    }
}

/// A seam for tests of concurrent writers: a target calls it between the read and
/// the write of each read-modify-write, so a test can change the object meanwhile,
/// as a controller or a person would. Empty (and free) unless a test sets it.
#[derive(Default)]
pub struct BeforeWrite(std::sync::Mutex<Option<WriteHook>>);

/// What [`BeforeWrite`] calls: the action's description in, nothing out.
type WriteHook = Box<dyn FnMut(&str) + Send>;

impl BeforeWrite {
    /// Calls `hook` with the action's description before each conditional write.
    pub fn set(&mut self, hook: impl FnMut(&str) + Send + 'static) {
        *self.0.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    /// Runs the hook, if one is set.
    pub fn call(&self, action: &str) {
        if let Some(hook) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            hook(action);
        }
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
    /// A dry-run target starting from these replica counts (`NS/NAME` → count),
    /// with no CPU requests (see [`DryRun::with_cpu`]).
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

    /// The same, every service requesting `millicores` per replica (its base).
    pub fn with_cpu(mut self, millicores: u32) -> DryRun {
        self.state.cpu = self
            .state
            .services
            .keys()
            .map(|k| (k.clone(), CpuRequest::read(millicores, None)))
            .collect();
        self
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
        match action {
            Action::Scale {
                namespace,
                service,
                replicas,
            } => {
                self.state.services.insert(
                    format!("{namespace}/{service}"),
                    Replicas {
                        ready: *replicas,
                        booting: 0,
                        desired: *replicas,
                    },
                );
            }
            Action::Resize {
                namespace,
                service,
                millicores,
            } => {
                let key = format!("{namespace}/{service}");
                let Some(cpu) = self.state.cpu.get_mut(&key) else {
                    return Err(TargetError::Refused {
                        target: "dry-run".into(),
                        action: action.to_string(),
                        reason: format!("{key} requests no CPU: there is nothing to size"),
                    });
                };
                cpu.millicores = *millicores;
            }
            Action::Isolate { .. } | Action::Release { .. } => {
                let (namespace, service, replica, on) =
                    action.isolation().expect("an isolation or a release");
                if let Some(list) = self
                    .state
                    .replicas
                    .get_mut(&format!("{namespace}/{service}"))
                {
                    for r in list.iter_mut().filter(|r| r.name == replica) {
                        r.isolated = on;
                    }
                }
            }
            _ => {}
        }
        self.applied.push(action.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict() -> TargetError {
        classify(
            "kubernetes",
            "roll back deployment default/web",
            Some((409, "the object has been modified".into())),
            "",
        )
    }

    #[test]
    fn cpu_is_shared_in_proportion_and_sums_to_the_target() {
        assert_eq!(share_cpu(&[500], 175), vec![175]);
        assert_eq!(share_cpu(&[300, 100], 200), vec![150, 50]);
        let three = share_cpu(&[333, 333, 334], 101);
        assert_eq!(three.iter().sum::<u32>(), 101);
        assert!(three.iter().all(|&m| m >= 1));
        assert_eq!(share_cpu(&[0, 0], 100), Vec::<u32>::new());
        assert_eq!(share_cpu(&[100, 100], 1), vec![1, 1]);
    }

    #[test]
    fn the_recorded_base_wins_unless_unreadable() {
        assert_eq!(
            CpuRequest::read(175, Some(&"500".into())).base_millicores,
            500
        );
        assert_eq!(
            CpuRequest::read(175, Some(&"half".into())).base_millicores,
            175
        );
        assert_eq!(
            CpuRequest::read(175, Some(&"0".into())).base_millicores,
            175
        );
        assert_eq!(CpuRequest::read(175, None).base_millicores, 175);
    }

    #[test]
    fn http_409_is_a_conflict() {
        assert!(matches!(conflict(), TargetError::Conflict { .. }));
    }

    #[test]
    fn a_conflict_is_retried_until_the_write_goes_through() {
        let mut calls = 0;
        let done = retry_on_conflict(|| {
            calls += 1;
            if calls < 3 {
                Err(conflict())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(done.unwrap(), 3);
    }

    #[test]
    fn retries_are_bounded_and_the_last_conflict_is_returned() {
        let mut calls = 0;
        let done: Result<(), _> = retry_on_conflict(|| {
            calls += 1;
            Err(conflict())
        });
        assert_eq!(calls, CONFLICT_ATTEMPTS);
        assert!(matches!(done, Err(TargetError::Conflict { .. })));
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let done: Result<(), _> = retry_on_conflict(|| {
            calls += 1;
            Err(classify(
                "kubernetes",
                "x",
                Some((403, "forbidden".into())),
                "",
            ))
        });
        assert_eq!(calls, 1);
        assert!(matches!(done, Err(TargetError::Refused { .. })));
    }
}
