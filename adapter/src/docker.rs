//! The Docker target: Swarm services through the Engine API (bollard, over the
//! engine's unix socket). Scaling updates a service's replica count; a restart kills
//! one task's container (SIGKILL) and Swarm replaces it as its restart policy says;
//! "cordon" pauses a node (no new tasks, running ones stay); a roll back asks Swarm
//! for the service's previous spec, as `docker service rollback` does.
//!
//! A restart reaches the container through this engine, so it works for tasks on
//! this node (a single-node swarm, or an adapter per node).

use crate::action::Action;
use crate::observe::Replicas;
use crate::target::{Blocking, NodeState, ReplicaState, Target, TargetError, TargetState};
use bollard::Docker;
use bollard::models::{NodeSpecAvailabilityEnum, Service, Task, TaskState};
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

/// Swarm services on one engine.
pub struct DockerSwarm {
    api: Blocking,
    docker: Docker,
    services: Vec<String>,
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
        })
    }

    /// Runs one engine call to completion, or gives up after the timeout.
    fn block<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, TargetError> {
        self.api.call(what, call, |e| match e {
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

    fn scale(&self, name: &str, replicas: u32) -> Result<(), TargetError> {
        let what = format!("scale service {name}");
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
        // The version makes the update conditional: if someone changed the service
        // since it was read, the engine refuses and nothing is overwritten.
        let options = UpdateServiceOptionsBuilder::new()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        self.block(&what, self.docker.update_service(name, spec, options, None))?;
        Ok(())
    }

    fn restart(&self, service: &str, task_id: &str) -> Result<(), TargetError> {
        let what = format!("restart task {task_id} of service {service}");
        let task = self
            .tasks(service)?
            .into_iter()
            .find(|t| t.id.as_deref() == Some(task_id))
            .ok_or_else(|| TargetError::NotFound {
                target: "docker".into(),
                object: format!("task {task_id} of service {service}"),
            })?;
        let container = task
            .status
            .and_then(|s| s.container_status)
            .and_then(|c| c.container_id)
            .ok_or_else(|| TargetError::Refused {
                target: "docker".into(),
                action: what.clone(),
                reason: "the task has no container (not started, or on another node)".into(),
            })?;
        self.block(
            &what,
            self.docker.kill_container(
                &container,
                Some(KillContainerOptions {
                    signal: "SIGKILL".into(),
                }),
            ),
        )?;
        Ok(())
    }

    fn pause(&self, node: &str) -> Result<(), TargetError> {
        let what = format!("pause node {node}");
        let found = self.block(&what, self.docker.inspect_node(node))?;
        let version = Self::version_of(&what, found.version.and_then(|v| v.index))?;
        let mut spec = found.spec.unwrap_or_default();
        spec.availability = Some(NodeSpecAvailabilityEnum::PAUSE);
        let options = UpdateNodeOptionsBuilder::new()
            .version(i64::try_from(version).unwrap_or(i64::MAX))
            .build();
        self.block(&what, self.docker.update_node(node, spec, options))?;
        Ok(())
    }

    fn rollback(&self, name: &str) -> Result<(), TargetError> {
        let what = format!("roll back service {name}");
        let service = self.service(name)?;
        let version = Self::version_of(&what, service.version.and_then(|v| v.index))?;
        let options = UpdateServiceOptionsBuilder::new()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .rollback("previous")
            .build();
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
                    action: what,
                    reason,
                })
            }
            Err(e) => Err(e),
        }
    }
}

fn task_state(task: &Task) -> ReplicaState {
    let phase = name_of(&task.status.as_ref().and_then(|s| s.state));
    ReplicaState {
        name: task.id.clone().unwrap_or_default(),
        node: task.node_id.clone(),
        ready: phase == "running",
        phase,
        restarts: 0,
    }
}

impl Target for DockerSwarm {
    fn name(&self) -> &str {
        "docker"
    }

    fn state(&mut self) -> Result<TargetState, TargetError> {
        let mut services = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        for name in &self.services {
            let service = self.service(name)?;
            let desired = service
                .spec
                .as_ref()
                .and_then(|s| s.mode.as_ref())
                .and_then(|m| m.replicated.as_ref())
                .and_then(|r| r.replicas)
                .map_or(0, |r| u32::try_from(r).unwrap_or(0));
            // Tasks Swarm still wants running; the ones it shut down stay listed as
            // history and are not replicas.
            let tasks: Vec<ReplicaState> = self
                .tasks(name)?
                .iter()
                .filter(|t| name_of(&t.desired_state) == "running")
                .map(task_state)
                .collect();
            let ready = tasks.iter().filter(|t| t.ready).count() as u32;
            let key = format!("/{name}");
            services.insert(
                key.clone(),
                Replicas {
                    ready,
                    booting: (tasks.len() as u32).saturating_sub(ready),
                    desired,
                },
            );
            let mut tasks = tasks;
            tasks.sort_by(|a, b| a.name.cmp(&b.name));
            replicas.insert(key, tasks);
        }
        let mut nodes: Vec<NodeState> = self
            .block("nodes", self.docker.list_nodes(None::<ListNodesOptions>))?
            .into_iter()
            .map(|n| {
                let availability = n.spec.as_ref().and_then(|s| s.availability);
                NodeState {
                    name: n.id.clone().unwrap_or_default(),
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
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TargetState {
            services,
            replicas,
            nodes,
        })
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
            Action::Cordon { node } => self.pause(node),
            Action::Rollback { service, .. } => self.rollback(service),
        }
    }
}
