//! The Docker target: Swarm services through the Engine API (bollard, over the
//! engine's unix socket). Scaling updates a service's replica count; "cordon" pauses
//! a node (no new tasks, running ones stay) and a drain sets its availability to
//! `drain` (Swarm moves its tasks); a roll back asks Swarm for the service's previous
//! spec, as `docker service rollback` does. A resize sets the service's CPU
//! reservation (and its limit, in proportion), which Swarm applies by a rolling task
//! update; the reservation before the first resize is kept in the service's
//! `hale.dev/base-cpu-millicores` label.
//!
//! A restart kills the task's container (SIGKILL) if it runs. Where the service's
//! restart policy is `any` or `on-failure`, Swarm then starts a new task. Where it is
//! `none` (the healing policy, not Swarm, decides about restarts), the task's slot
//! stays empty, and Swarm has no call to start one task again: the target refills
//! the service's ended slots by setting its replica count to the tasks still running
//! and then back, which starts one new task per ended slot and touches no running
//! one.
//!
//! Replicas are Swarm's slots: the newest task of each slot, and, for a service with
//! restart policy `none`, slots whose last task failed count as crashed replicas
//! until they are refilled. A replica's restarts are the earlier tasks of its slot
//! (Swarm keeps five per slot by default).
//!
//! A restart reaches the container through this engine, so it works for tasks on
//! this node (a single-node swarm, or an adapter per node).

use crate::action::{Action, CREDENTIALS_VERSION};
use crate::observe::Replicas;
use crate::target::{
    BASE_CPU, BeforeWrite, Blocking, CpuRequest, NodeState, ReplicaState, Target, TargetError,
    TargetState, retry_on_conflict,
};
use bollard::Docker;
use bollard::models::{
    NodeSpecAvailabilityEnum, Service, ServiceSpec, Task, TaskSpecRestartPolicyConditionEnum,
    TaskState,
};
use bollard::query_parameters::{
    KillContainerOptions, ListNodesOptions, ListTasksOptionsBuilder, UpdateNodeOptionsBuilder,
    UpdateServiceOptionsBuilder,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The oldest Engine API this target speaks (Docker 20.10); newer engines answer it.
const API_VERSION: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// What Swarm says when a versioned update carries a version that is no longer
/// current (swarmkit's `ErrSequenceConflict`).
const OUT_OF_SEQUENCE: &str = "update out of sequence";

/// Swarm services on one engine.
pub struct DockerSwarm {
    api: Blocking,
    docker: Docker,
    services: Vec<String>,
    before_write: BeforeWrite,
}

fn name_of(state: &Option<TaskState>) -> String {
    state
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

impl DockerSwarm {
    /// Connects to the engine at `socket` (`unix:///var/run/docker.sock`); the
    /// services are the env's, in its order. Nothing is sent until the first call.
    pub fn connect(
        socket: &str,
        services: &[String],
        timeout: Duration,
    ) -> Result<DockerSwarm, TargetError> {
        let api = Blocking::new("docker", timeout)?;
        let docker = {
            // bollard's connectors need a runtime in scope.
            let _guard = api.runtime().enter();
            Docker::connect_with_unix(socket, timeout.as_secs().max(1), &API_VERSION)
                .map_err(|e| api.unreachable(format!("{socket}: {e}")))?
        };
        Ok(DockerSwarm {
            api,
            docker,
            services: services.to_vec(),
            before_write: BeforeWrite::default(),
        })
    }

    /// Runs one engine call to completion, or gives up after the timeout.
    fn block<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, TargetError> {
        self.api.call(what, call, |e| match e {
            // Swarm answers a versioned update that lost the race to another
            // writer with a server error; it is a conflict, as Kubernetes' 409.
            bollard::errors::Error::DockerResponseServerError {
                status_code: _,
                message,
            } if message.contains(OUT_OF_SEQUENCE) => Some((409, message.clone())),
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => Some((*status_code, message.clone())),
            _ => None,
        })
    }

    fn service(&self, name: &str) -> Result<Service, TargetError> {
        self.block(
            &format!("service {name}"),
            self.docker.inspect_service(name, None),
        )
    }

    fn tasks(&self, service: &str) -> Result<Vec<Task>, TargetError> {
        let filters = HashMap::from([("service", vec![service])]);
        self.block(
            &format!("tasks of service {service}"),
            self.docker.list_tasks(Some(
                ListTasksOptionsBuilder::new().filters(&filters).build(),
            )),
        )
    }

    fn version_of(what: &str, v: Option<u64>) -> Result<u64, TargetError> {
        v.ok_or_else(|| TargetError::Refused {
            target: "docker".into(),
            action: what.to_string(),
            reason: "the engine gave no object version".into(),
        })
    }

    /// Sets the service's replica count: read, change, and update conditionally on
    /// the version read, again from the read if another writer came in between.
    fn scale(&self, name: &str, replicas: u32) -> Result<(), TargetError> {
        let what = format!("scale service {name}");
        retry_on_conflict(|| {
            let service = self.service(name)?;
            let version = Self::version_of(&what, service.version.and_then(|v| v.index))?;
            let mut spec = service.spec.unwrap_or_default();
            let replicated = spec
                .mode
                .as_mut()
                .and_then(|m| m.replicated.as_mut())
                .ok_or_else(|| TargetError::Refused {
                    target: "docker".into(),
                    action: what.clone(),
                    reason: "not a replicated service".into(),
                })?;
            replicated.replicas = Some(i64::from(replicas));
            self.update(&what, name, spec, version)
        })
    }

    /// Sets the service's CPU reservation per task to `millicores`, and moves its CPU
    /// limit, if any, by the same factor (never below the reservation); the first
    /// resize records the reservation it found ([`BASE_CPU`]). Versioned, as
    /// [`DockerSwarm::scale`] is.
    fn resize(&self, name: &str, millicores: u32) -> Result<(), TargetError> {
        let what = format!("resize service {name}");
        retry_on_conflict(|| {
            let service = self.service(name)?;
            let version = Self::version_of(&what, service.version.and_then(|v| v.index))?;
            let mut spec = service.spec.unwrap_or_default();
            let Some(now) = cpu_request(&spec) else {
                return Err(TargetError::Refused {
                    target: "docker".into(),
                    action: what.clone(),
                    reason: "the service reserves no CPU: there is nothing to size".into(),
                });
            };
            spec.labels
                .get_or_insert_default()
                .entry(BASE_CPU.to_string())
                .or_insert_with(|| now.base_millicores.to_string());
            let resources = spec
                .task_template
                .get_or_insert_default()
                .resources
                .get_or_insert_default();
            let nanos = i64::from(millicores) * 1_000_000;
            resources.reservations.get_or_insert_default().nano_cpus = Some(nanos);
            if let Some(limit) = resources.limits.as_mut().and_then(|l| l.nano_cpus.as_mut()) {
                let factor = f64::from(millicores) / f64::from(now.millicores);
                *limit = ((*limit as f64 * factor).round() as i64).max(nanos);
            }
            self.update(&what, name, spec, version)
        })
    }

    /// Bumps the service's [`CREDENTIALS_VERSION`] label and forces an update, so
    /// Swarm replaces its tasks by its update policy (one at a time by default), and
    /// they start with the secret's new version. Versioned, as
    /// [`DockerSwarm::scale`] is.
    fn rotate(&self, name: &str) -> Result<(), TargetError> {
        let what = format!("rotate service {name}'s credentials");
        retry_on_conflict(|| {
            let service = self.service(name)?;
            let version = Self::version_of(&what, service.version.and_then(|v| v.index))?;
            let mut spec = service.spec.unwrap_or_default();
            let labels = spec.labels.get_or_insert_default();
            let next = labels
                .get(CREDENTIALS_VERSION)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            labels.insert(CREDENTIALS_VERSION.into(), next.to_string());
            let template = spec.task_template.get_or_insert_default();
            template.force_update = Some(template.force_update.unwrap_or(0) + 1);
            self.update(&what, name, spec, version)
        })
    }

    /// The write of a read-modify-write: the service's spec as changed, at the
    /// version read (another writer since makes it a conflict).
    fn update(
        &self,
        what: &str,
        name: &str,
        spec: ServiceSpec,
        version: u64,
    ) -> Result<(), TargetError> {
        let options = UpdateServiceOptionsBuilder::new()
            .version(swarm_version(version))
            .build();
        self.before_write.call(what);
        self.block(what, self.docker.update_service(name, spec, options, None))?;
        Ok(())
    }

    fn restart(&self, service: &str, task_id: &str) -> Result<(), TargetError> {
        let what = format!("restart task {task_id} of service {service}");
        let refused = |reason: &str| TargetError::Refused {
            target: "docker".into(),
            action: what.clone(),
            reason: reason.into(),
        };
        let find = |tasks: Vec<Task>| {
            tasks
                .into_iter()
                .find(|t| t.id.as_deref() == Some(task_id))
                .ok_or_else(|| TargetError::NotFound {
                    target: "docker".into(),
                    object: format!("task {task_id} of service {service}"),
                })
        };
        let task = find(self.tasks(service)?)?;
        let spec = self.service(service)?.spec.unwrap_or_default();
        let refill = restart_condition(&spec) == Some(TaskSpecRestartPolicyConditionEnum::NONE);
        let status = task.status.clone().unwrap_or_default();
        if status.state == Some(TaskState::RUNNING) {
            let container = status
                .container_status
                .and_then(|c| c.container_id)
                .ok_or_else(|| refused("the task has no container (on another node?)"))?;
            self.block(
                &what,
                self.docker.kill_container(
                    &container,
                    Some(KillContainerOptions {
                        signal: "SIGKILL".into(),
                    }),
                ),
            )?;
        } else if !refill {
            return Err(refused(
                "the task is not running and the service's restart policy starts its replacement",
            ));
        }
        if !refill {
            return Ok(());
        }
        // Swarm lets go of the slot once it has seen the task end.
        self.wait(
            |tasks| {
                tasks.iter().any(|t| {
                    t.id.as_deref() == Some(task_id) && name_of(&t.desired_state) != "running"
                })
            },
            service,
        )
        .map_err(|_| refused("the killed task did not end within the timeout"))?;
        let desired = replicas_of(&spec).ok_or_else(|| refused("not a replicated service"))?;
        let running = self
            .tasks(service)?
            .iter()
            .filter(|t| name_of(&t.desired_state) == "running")
            .count() as u32;
        // The orchestrator must have dropped the ended slots (their tasks are gone from
        // the list, not only marked for removal) before the count goes back up;
        // otherwise the two updates reconcile as one, which refills nothing.
        self.scale(service, running)?;
        let forgotten = self.wait(
            |tasks| !tasks.iter().any(|t| t.id.as_deref() == Some(task_id)),
            service,
        );
        // Whatever happened, the service gets its count back.
        self.scale(service, desired)?;
        forgotten.map_err(|_| refused("Swarm did not drop the ended slot within the timeout"))
    }

    /// Polls the service's tasks until `done` holds, or the timeout passes.
    fn wait(&self, done: impl Fn(&[Task]) -> bool, service: &str) -> Result<(), TargetError> {
        let started = std::time::Instant::now();
        loop {
            if done(&self.tasks(service)?) {
                return Ok(());
            }
            if started.elapsed() > self.api.timeout() {
                return Err(self.api.unreachable(format!(
                    "tasks of service {service}: not as expected within {:?}",
                    self.api.timeout()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn set_availability(
        &self,
        node: &str,
        availability: NodeSpecAvailabilityEnum,
    ) -> Result<(), TargetError> {
        let what = format!("set node {node} to {availability}");
        retry_on_conflict(|| {
            let found = self.block(&what, self.docker.inspect_node(node))?;
            let version = Self::version_of(&what, found.version.and_then(|v| v.index))?;
            let mut spec = found.spec.unwrap_or_default();
            spec.availability = Some(availability);
            let options = UpdateNodeOptionsBuilder::new()
                .version(i64::try_from(version).unwrap_or(i64::MAX))
                .build();
            self.before_write.call(&what);
            self.block(&what, self.docker.update_node(node, spec, options))?;
            Ok(())
        })
    }

    fn rollback(&self, name: &str) -> Result<(), TargetError> {
        let what = format!("roll back service {name}");
        retry_on_conflict(|| {
            let service = self.service(name)?;
            let version = Self::version_of(&what, service.version.and_then(|v| v.index))?;
            let options = UpdateServiceOptionsBuilder::new()
                .version(swarm_version(version))
                .rollback("previous")
                .build();
            self.before_write.call(&what);
            match self.block(
                &what,
                self.docker
                    .update_service(name, service.spec.unwrap_or_default(), options, None),
            ) {
                Ok(_) => Ok(()),
                // The engine answers a service with nothing to roll back to with a
                // server error; it is a refusal, not an outage.
                Err(TargetError::Unreachable { reason, .. }) if reason.contains("previous") => {
                    Err(TargetError::Refused {
                        target: "docker".into(),
                        action: what.clone(),
                        reason,
                    })
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Calls `hook` with the action's description between the read and the write of
    /// every read-modify-write ([`BeforeWrite`]).
    pub fn set_before_write(&mut self, hook: impl FnMut(&str) + Send + 'static) {
        self.before_write.set(hook);
    }
}

/// An object version as the update calls take it. Swarm's versions are raft log
/// indices, far below `i32::MAX`; one past it is sent as `i32::MAX`, which the
/// engine refuses as out of sequence rather than wrapping to an old version.
fn swarm_version(version: u64) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

fn restart_condition(
    spec: &bollard::models::ServiceSpec,
) -> Option<TaskSpecRestartPolicyConditionEnum> {
    spec.task_template
        .as_ref()
        .and_then(|t| t.restart_policy.as_ref())
        .and_then(|r| r.condition)
}

/// A service's CPU reservation per task, millicores, with its recorded base; None
/// where it reserves none.
fn cpu_request(spec: &bollard::models::ServiceSpec) -> Option<CpuRequest> {
    let nanos = spec
        .task_template
        .as_ref()?
        .resources
        .as_ref()?
        .reservations
        .as_ref()?
        .nano_cpus?;
    let millicores = u32::try_from((nanos + 500_000) / 1_000_000).ok()?;
    (millicores > 0).then(|| {
        CpuRequest::read(
            millicores,
            spec.labels.as_ref().and_then(|l| l.get(BASE_CPU)),
        )
    })
}

fn replicas_of(spec: &bollard::models::ServiceSpec) -> Option<u32> {
    spec.mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .map(|r| u32::try_from(r).unwrap_or(0))
}

fn task_state(task: &Task, restarts: u32) -> ReplicaState {
    let phase = name_of(&task.status.as_ref().and_then(|s| s.state));
    ReplicaState {
        name: task.id.clone().unwrap_or_default(),
        node: task.node_id.clone(),
        ready: phase == "running",
        phase,
        restarts,
        // Swarm has no network policy: the adapter never isolates a task.
        isolated: false,
    }
}

/// An RFC 3339 time (`2026-11-24T14:01:02.12Z`) as a key that sorts in time order
/// whatever the number of fraction digits the engine wrote.
fn created_key(t: &str) -> (String, String) {
    let t = t.trim_end_matches('Z');
    match t.split_once('.') {
        Some((whole, frac)) => (whole.to_string(), format!("{frac:0<9}")),
        None => (t.to_string(), "0".repeat(9)),
    }
}

/// A service's replicas from its tasks: the newest task of each slot Swarm still
/// wants running, then (restart policy `none`) slots whose last task failed, up to
/// the desired count; in slot order.
fn replicas_from_tasks(tasks: &[Task], desired: u32, refill: bool) -> Vec<(i64, ReplicaState)> {
    let mut slots: BTreeMap<i64, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        slots.entry(t.slot.unwrap_or(0)).or_default().push(t);
    }
    let mut live = Vec::new();
    let mut ended = Vec::new();
    for (slot, mut history) in slots {
        history.sort_by_key(|t| created_key(t.created_at.as_deref().unwrap_or("")));
        let restarts = history.len().saturating_sub(1) as u32;
        let newest = history[history.len() - 1];
        if name_of(&newest.desired_state) == "running" {
            live.push((slot, task_state(newest, restarts)));
        } else if refill
            && matches!(
                newest.status.as_ref().and_then(|s| s.state),
                Some(TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED)
            )
        {
            ended.push((slot, task_state(newest, restarts)));
        }
    }
    let room = (desired as usize).saturating_sub(live.len());
    live.extend(ended.into_iter().take(room));
    live.sort_by_key(|(slot, _)| *slot);
    live
}

impl Target for DockerSwarm {
    fn name(&self) -> &str {
        "docker"
    }

    fn state(&mut self) -> Result<TargetState, TargetError> {
        let mut state = TargetState::default();
        // Cores and bytes reserved per node by the listed services' running tasks.
        let mut reserved: HashMap<String, (f64, f64)> = HashMap::new();
        for name in &self.services {
            let service = self.service(name)?;
            let spec = service.spec.clone().unwrap_or_default();
            let desired = replicas_of(&spec).unwrap_or(0);
            let refill = restart_condition(&spec) == Some(TaskSpecRestartPolicyConditionEnum::NONE);
            let tasks = replicas_from_tasks(&self.tasks(name)?, desired, refill);
            let live: Vec<&ReplicaState> = tasks
                .iter()
                .map(|(_, t)| t)
                .filter(|t| t.phase != "failed" && t.phase != "rejected" && t.phase != "orphaned")
                .collect();
            let ready = live.iter().filter(|t| t.ready).count() as u32;
            let reservation = spec
                .task_template
                .as_ref()
                .and_then(|t| t.resources.as_ref())
                .and_then(|r| r.reservations.as_ref());
            let cores = reservation.and_then(|r| r.nano_cpus).unwrap_or(0) as f64 / 1e9;
            let bytes = reservation.and_then(|r| r.memory_bytes).unwrap_or(0) as f64;
            for t in &live {
                if let (Some(node), true) = (&t.node, t.running()) {
                    let r = reserved.entry(node.clone()).or_default();
                    r.0 += cores;
                    r.1 += bytes;
                }
            }
            let key = format!("/{name}");
            state.services.insert(
                key.clone(),
                Replicas {
                    ready,
                    booting: (live.len() as u32).saturating_sub(ready),
                    desired,
                },
            );
            if let Some(request) = cpu_request(&spec) {
                state.cpu.insert(key.clone(), request);
            }
            // A service whose template was updated has a previous spec to go back to.
            state
                .rollback_possible
                .insert(key.clone(), service.update_status.is_some());
            state
                .replicas
                .insert(key, tasks.into_iter().map(|(_, t)| t).collect());
        }
        state.nodes = self
            .block("nodes", self.docker.list_nodes(None::<ListNodesOptions>))?
            .into_iter()
            .map(|n| {
                let availability = n.spec.as_ref().and_then(|s| s.availability);
                let name = n.id.clone().unwrap_or_default();
                let resources = n.description.as_ref().and_then(|d| d.resources.as_ref());
                let cores = resources
                    .and_then(|r| r.nano_cpus)
                    .filter(|&c| c > 0)
                    .map(|c| c as f64 / 1e9);
                let bytes = resources
                    .and_then(|r| r.memory_bytes)
                    .filter(|&b| b > 0)
                    .map(|b| b as f64);
                let (used_cores, used_bytes) = reserved.get(&name).copied().unwrap_or_default();
                NodeState {
                    cpu_allocation: cores.map(|c| used_cores / c),
                    memory_allocation: bytes.map(|b| used_bytes / b),
                    // Swarm has no zones of its own.
                    zone: None,
                    name,
                    ready: n
                        .status
                        .as_ref()
                        .and_then(|s| s.state.as_ref())
                        .and_then(|s| serde_json::to_value(s).ok())
                        .is_some_and(|v| v == "ready"),
                    schedulable: matches!(availability, Some(NodeSpecAvailabilityEnum::ACTIVE)),
                }
            })
            .collect();
        state.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(state)
    }

    fn apply(&mut self, action: &Action) -> Result<(), TargetError> {
        match action {
            Action::Noop => Ok(()),
            Action::Scale {
                service, replicas, ..
            } => self.scale(service, *replicas),
            Action::Restart {
                service, replica, ..
            } => self.restart(service, replica),
            Action::Cordon { node } => self.set_availability(node, NodeSpecAvailabilityEnum::PAUSE),
            Action::Drain { node } => self.set_availability(node, NodeSpecAvailabilityEnum::DRAIN),
            Action::Resize {
                service,
                millicores,
                ..
            } => self.resize(service, *millicores),
            Action::Rollback { service, .. } => self.rollback(service),
            Action::Isolate { .. } | Action::Release { .. } => Err(TargetError::Refused {
                target: "docker".into(),
                action: action.to_string(),
                reason: "Swarm has no network policy that cuts one task off (isolation is \
                         Kubernetes only; restore or rotate instead)"
                    .into(),
            }),
            Action::Rotate { service, .. } => self.rotate(service),
        }
    }
}
