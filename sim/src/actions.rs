//! What a policy can do to the cloud, and why the simulator may refuse.

use crate::event::Event;
use crate::model::{Host, HostId, HostState, Replica, ReplicaId, ReplicaState, ServiceId};
use crate::sim::{EPS, Simulation};
use crate::time::SimTime;
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
    /// Change the memory request of every replica of a service, in place (its limit
    /// keeps the scenario's ratio to the request). A replica whose working set is
    /// at its new limit is OOM-killed; requests under the working set let placement
    /// overcommit hosts, whose kubelets then kill under memory pressure.
    ResizeMemory {
        /// Service.
        service: ServiceId,
        /// New memory request per replica, MiB.
        memory_mib: f64,
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
    /// Consolidate a host: drain it (its replicas boot elsewhere first) and release
    /// it as soon as it is empty, as Karpenter's consolidation does.
    Consolidate {
        /// Host.
        host: HostId,
    },
    /// Provision hosts of this type from now on when replicas fit nowhere (the
    /// spot/on-demand mix of new capacity; needs a scenario that provisions).
    Provision {
        /// Host-type index.
        host_type: usize,
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
    /// A security action in a scenario without intrusions.
    #[error("{0}: the scenario has no [security] section, or no attacker was started")]
    NoSecurity(&'static str),
    /// A security action that does not apply now.
    #[error("cannot {action}: {reason}")]
    Refused {
        /// The action.
        action: &'static str,
        /// Why.
        reason: String,
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
    /// A memory resize does not fit on a host.
    #[error("memory resize of service {service} to {memory_mib} MiB does not fit on host {host}")]
    NoMemory {
        /// Service.
        service: ServiceId,
        /// Requested memory, MiB.
        memory_mib: f64,
        /// The host without room.
        host: HostId,
    },
}

/// Most replicas one service may be scaled to.
pub const MAX_REPLICAS_PER_SERVICE: u32 = 100_000;

// ----- applying actions ----------------------------------------------------------

impl Simulation {
    pub(crate) fn check_service(&self, s: ServiceId) -> Result<(), ActionError> {
        if s < self.services.len() {
            Ok(())
        } else {
            Err(ActionError::NoService(s, self.services.len()))
        }
    }

    pub(crate) fn check_replica(
        &self,
        r: ReplicaId,
        action: &'static str,
    ) -> Result<(), ActionError> {
        let Some(rep) = self.replicas.get(r) else {
            return Err(ActionError::NoReplica(
                r,
                self.replicas.len().saturating_sub(1),
            ));
        };
        if rep.state.is_live() && rep.state != ReplicaState::Pending {
            Ok(())
        } else {
            Err(ActionError::ReplicaState {
                replica: r,
                state: rep.state,
                action,
            })
        }
    }

    pub(crate) fn check_host(&self, h: HostId, action: &'static str) -> Result<(), ActionError> {
        let Some(host) = self.hosts.get(h) else {
            return Err(ActionError::NoHost(h, self.hosts.len().saturating_sub(1)));
        };
        if host.state == HostState::Removed {
            Err(ActionError::HostState {
                host: h,
                state: host.state,
                action,
            })
        } else {
            Ok(())
        }
    }

    /// Restarts a replica in place: a fresh container (no hang, leak, slowness or
    /// intruder), serving again after the service's restart time.
    pub(crate) fn restart(&mut self, r: ReplicaId) -> Result<(), ActionError> {
        self.check_replica(r, "restart")?;
        if let Some(h) = self.replicas[r].host
            && self.hosts[h].state != HostState::Ready
        {
            return Err(ActionError::HostState {
                host: h,
                state: self.hosts[h].state,
                action: "restart a replica on it",
            });
        }
        self.remove_endpoint(r);
        self.drop_work(r);
        let s = self.replicas[r].service;
        let rep = &mut self.replicas[r];
        rep.slowdown = 1.0;
        rep.leak_mib_per_s = 0.0;
        rep.leaked_mib = 0.0;
        rep.restarts += 1;
        self.start_booting(r, self.scenario.spec.services[s].restart_time_s);
        Ok(())
    }

    /// Applies an action now. An invalid action changes nothing and says why.
    pub fn apply(&mut self, action: &Action) -> Result<(), ActionError> {
        self.version += 1;
        match *action {
            Action::Scale { service, replicas } => {
                self.check_service(service)?;
                if replicas > MAX_REPLICAS_PER_SERVICE {
                    return Err(ActionError::OutOfRange {
                        field: "replicas",
                        value: replicas as f64,
                        range: format!("0..={MAX_REPLICAS_PER_SERVICE}"),
                    });
                }
                self.services[service].desired = replicas;
                self.reconcile(service);
            }
            Action::Restart { replica: r } => self.restart(r)?,
            Action::Kill { replica: r } | Action::Reschedule { replica: r } => {
                let name = if matches!(action, Action::Kill { .. }) {
                    "kill"
                } else {
                    "reschedule"
                };
                self.check_replica(r, name)?;
                let avoid = if name == "kill" {
                    None
                } else {
                    self.replicas[r].host
                };
                let s = self.replicas[r].service;
                self.evictions += 1;
                self.finalize(r);
                self.create_replica(s, avoid);
                self.reconcile(s);
            }
            Action::Rollback { service } => {
                self.check_service(service)?;
                let st = &self.services[service];
                if !st.bad_deploy {
                    return Err(ActionError::NothingToRollBack(service));
                }
                let at = self.now()
                    + SimTime::from_secs_f64(self.scenario.spec.services[service].rollback_time_s);
                let deploy = st.deploys;
                self.queue.push(
                    at,
                    Event::RollbackDone {
                        service: service as u32,
                        deploy,
                    },
                );
            }
            Action::Cordon { host } => {
                self.check_host(host, "cordon")?;
                self.index_remove(host);
                self.hosts[host].cordoned = true;
            }
            Action::Uncordon { host } => {
                self.check_host(host, "uncordon")?;
                self.hosts[host].cordoned = false;
                // Taken back from the cluster autoscaler or a consolidation.
                self.hosts[host].draining = false;
                self.hosts[host].consolidating = false;
                self.index_insert(host);
                self.place_pending();
            }
            Action::Drain { host } => {
                self.check_host(host, "drain")?;
                self.index_remove(host);
                self.hosts[host].cordoned = true;
                let on_host: Vec<ReplicaId> = (0..self.replicas.len())
                    .filter(|&r| {
                        self.replicas[r].host == Some(host) && self.replicas[r].state.is_live()
                    })
                    .collect();
                for r in on_host {
                    let s = self.replicas[r].service;
                    self.evictions += 1;
                    self.terminate(r, true);
                    self.create_replica(s, Some(host));
                }
            }
            Action::Resize { service, cpu } => {
                self.check_service(service)?;
                self.check_size(cpu, "cpu", |t| t.cpu)?;
                if let Some(host) = self.host_without_room(service, |r| cpu - r.cpu, Host::cpu_free)
                {
                    return Err(ActionError::NoRoom { service, cpu, host });
                }
                self.services[service].pending_resize = Some(cpu);
                // A resize is not a deploy: it has its own counter, so a resize and a
                // rollback in flight do not cancel each other.
                self.services[service].resizes += 1;
                let resize = self.services[service].resizes;
                self.resize_done_at(
                    service,
                    Event::ResizeDone {
                        service: service as u32,
                        resize,
                    },
                );
            }
            Action::ResizeMemory {
                service,
                memory_mib,
            } => {
                self.check_service(service)?;
                self.check_size(memory_mib, "memory_mib", |t| t.memory_mib)?;
                if let Some(host) = self.host_without_room(
                    service,
                    |r| memory_mib - r.memory_mib,
                    Host::memory_free,
                ) {
                    return Err(ActionError::NoMemory {
                        service,
                        memory_mib,
                        host,
                    });
                }
                self.services[service].pending_memory = Some(memory_mib);
                self.services[service].memory_resizes += 1;
                let resize = self.services[service].memory_resizes;
                self.resize_done_at(
                    service,
                    Event::MemoryResizeDone {
                        service: service as u32,
                        resize,
                    },
                );
            }
            Action::AddHost { host_type, zone } => {
                if host_type >= self.scenario.spec.host_types.len() {
                    return Err(ActionError::NoSuch {
                        what: "host type",
                        index: host_type,
                    });
                }
                if zone >= self.scenario.spec.zones.len() {
                    return Err(ActionError::NoSuch {
                        what: "zone",
                        index: zone,
                    });
                }
                let max = self.scenario.spec.cluster.max_hosts;
                if self.live_hosts() >= max as usize {
                    return Err(ActionError::HostLimit(max));
                }
                self.provision_host(host_type, zone);
            }
            Action::RemoveHost { host } => {
                self.check_host(host, "remove")?;
                if self.hosts[host].replicas > 0 {
                    return Err(ActionError::HostNotEmpty {
                        host,
                        replicas: self.hosts[host].replicas,
                    });
                }
                self.release_host(host);
            }
            Action::Consolidate { host } => {
                self.check_host(host, "consolidate")?;
                if self.hosts[host].state != HostState::Ready {
                    return Err(ActionError::HostState {
                        host,
                        state: self.hosts[host].state,
                        action: "consolidate",
                    });
                }
                self.apply(&Action::Drain { host })?;
                if self.hosts[host].replicas == 0 {
                    self.release_host(host);
                } else {
                    self.hosts[host].consolidating = true;
                }
            }
            Action::Provision { host_type } => {
                let types = self.scenario.spec.host_types.len();
                if host_type >= types {
                    return Err(ActionError::NoSuch {
                        what: "host type",
                        index: host_type,
                    });
                }
                if self.scenario.provision.is_none() {
                    return Err(ActionError::OutOfRange {
                        field: "host_type",
                        value: host_type as f64,
                        range: "none: the scenario provisions no hosts (cluster.provision_type)"
                            .into(),
                    });
                }
                self.provision_type = Some(host_type);
                self.maybe_provision();
            }
        }
        Ok(())
    }

    /// A size for every replica of a service: positive, and no larger than the
    /// largest host type's `of`.
    fn check_size(
        &self,
        size: f64,
        field: &'static str,
        of: fn(&crate::scenario::HostTypeSpec) -> f64,
    ) -> Result<(), ActionError> {
        let max = self
            .scenario
            .spec
            .host_types
            .iter()
            .map(of)
            .fold(0.0, f64::max);
        if size.is_finite() && size > 0.0 && size <= max {
            Ok(())
        } else {
            Err(ActionError::OutOfRange {
                field,
                value: size,
                range: format!("(0, {max}]"),
            })
        }
    }

    /// The first host where service `s`'s placed replicas cannot all grow by
    /// `growth` (summed over the host's replicas of `s`) within `free`.
    fn host_without_room(
        &self,
        s: ServiceId,
        growth: impl Fn(&Replica) -> f64,
        free: fn(&Host) -> f64,
    ) -> Option<HostId> {
        let mut by_host: Vec<(HostId, f64)> = Vec::new();
        for &r in &self.services[s].replicas {
            if let Some(h) = self.replicas[r].host {
                let g = growth(&self.replicas[r]);
                match by_host.iter_mut().find(|(x, _)| *x == h) {
                    Some((_, d)) => *d += g,
                    None => by_host.push((h, g)),
                }
            }
        }
        by_host
            .into_iter()
            .find(|&(h, g)| free(&self.hosts[h]) + EPS < g)
            .map(|(h, _)| h)
    }

    /// Schedules `done`, the end of a resize of service `s`, its resize time from now.
    fn resize_done_at(&mut self, s: ServiceId, done: Event) {
        let at = self.now() + SimTime::from_secs_f64(self.scenario.spec.services[s].resize_time_s);
        self.queue.push(at, done);
    }

    pub(crate) fn finish_resize(&mut self, s: ServiceId, resize: u32) {
        if self.services[s].resizes != resize {
            return;
        }
        let Some(cpu) = self.services[s].pending_resize.take() else {
            return;
        };
        let old = self.services[s].cpu;
        self.services[s].cpu = cpu;
        for r in self.services[s].replicas.clone() {
            if let Some(h) = self.replicas[r].host {
                let delta = cpu - self.replicas[r].cpu;
                // Replicas whose host filled up meanwhile keep their old size.
                if self.hosts[h].cpu_free() + EPS >= delta {
                    self.allocate(h, delta, 0.0);
                    self.replicas[r].cpu = cpu;
                }
            }
        }
        if cpu < old {
            self.place_pending();
        }
    }
}
