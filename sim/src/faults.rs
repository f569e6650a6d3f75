//! Fault injection and repair. Fault *kinds* and their parameters are part of the
//! scenario ([`crate::scenario::FaultSpec`]); what was injected is recorded as
//! [`crate::model::FaultRecord`]s, for time-to-recovery accounting.

use crate::event::Event;
use crate::model::{FaultRecord, FaultSubject, Host, HostId, HostState, ReplicaId, ReplicaState};
use crate::scenario::{FaultSpec, FaultTarget};
use crate::sim::Simulation;
use crate::time::SimTime;

// ----- injection and repair ---------------------------------------------------------

impl Simulation {
    pub(crate) fn record_fault(
        &mut self,
        kind: &'static str,
        subject: FaultSubject,
        hosts: Vec<HostId>,
    ) -> usize {
        self.faults.push(FaultRecord {
            kind,
            at: self.now(),
            subject,
            resolved_at: None,
            hosts,
        });
        self.faults.len() - 1
    }

    pub(crate) fn resolve(&mut self, pred: impl Fn(FaultSubject) -> bool) {
        let now = self.now();
        for f in self.faults.iter_mut().filter(|f| f.resolved_at.is_none()) {
            if pred(f.subject) {
                f.resolved_at = Some(now);
            }
        }
    }

    pub(crate) fn pick<T: Copy>(items: &[T], u: f64) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[((u * items.len() as f64) as usize).min(items.len() - 1)])
        }
    }

    pub(crate) fn inject(&mut self, fault: &FaultSpec, target: &FaultTarget, u: f64) {
        let kind = fault.kind_name();
        match (fault, target) {
            (
                FaultSpec::Crash
                | FaultSpec::Hang
                | FaultSpec::MemoryLeak { .. }
                | FaultSpec::Slow { .. },
                &FaultTarget::Service(s),
            ) => {
                let serving: Vec<ReplicaId> = self.services[s]
                    .replicas
                    .iter()
                    .copied()
                    .filter(|&r| self.replicas[r].state.is_serving())
                    .collect();
                let Some(r) = Self::pick(&serving, u) else {
                    self.faults_missed += 1;
                    return;
                };
                self.record_fault(kind, FaultSubject::Replica(r), vec![]);
                match *fault {
                    FaultSpec::Crash => self.crash_replica(r),
                    FaultSpec::Hang => {
                        self.replicas[r].state = ReplicaState::Hung;
                        self.replicas[r].epoch += 1;
                    }
                    FaultSpec::MemoryLeak { mib_per_s } => {
                        let now = self.queue.now();
                        let rep = &mut self.replicas[r];
                        // An earlier leak keeps what it took.
                        rep.leaked_mib +=
                            rep.leak_mib_per_s * now.saturating_sub(rep.leak_since).as_secs_f64();
                        rep.leak_mib_per_s += mib_per_s;
                        rep.leak_since = now;
                        rep.state = ReplicaState::Degraded;
                        self.schedule_oom(r);
                    }
                    FaultSpec::Slow { factor } => {
                        self.replicas[r].slowdown = factor;
                        self.replicas[r].state = ReplicaState::Degraded;
                    }
                    _ => unreachable!("matched above"),
                }
            }
            (FaultSpec::HostFailure { repair_s }, t) => {
                let up = |h: &Host| h.state == HostState::Ready;
                let candidates: Vec<HostId> = match *t {
                    FaultTarget::Host(h) => vec![h]
                        .into_iter()
                        .filter(|&h| up(&self.hosts[h]))
                        .collect(),
                    FaultTarget::Zone(z) => (0..self.hosts.len())
                        .filter(|&h| up(&self.hosts[h]) && self.hosts[h].zone == z)
                        .collect(),
                    _ => (0..self.hosts.len())
                        .filter(|&h| up(&self.hosts[h]))
                        .collect(),
                };
                let Some(h) = Self::pick(&candidates, u) else {
                    self.faults_missed += 1;
                    return;
                };
                self.record_fault(kind, FaultSubject::Host(h), vec![h]);
                self.fail_host(h);
                if let Some(rep) = repair_s {
                    let at = self.now() + SimTime::from_secs_f64(*rep);
                    let epoch = self.hosts[h].repair_epoch;
                    self.queue.push(
                        at,
                        Event::HostRepair {
                            host: h as u32,
                            epoch,
                        },
                    );
                }
            }
            (FaultSpec::ZoneOutage { duration_s }, &FaultTarget::Zone(z)) => {
                let hosts: Vec<HostId> = (0..self.hosts.len())
                    .filter(|&h| self.hosts[h].zone == z && self.hosts[h].state == HostState::Ready)
                    .collect();
                let rec = self.record_fault(kind, FaultSubject::Zone(z), hosts.clone());
                for h in hosts {
                    self.fail_host(h);
                }
                let at = self.now() + SimTime::from_secs_f64(*duration_s);
                self.queue.push(at, Event::FaultEnd { record: rec as u32 });
            }
            (FaultSpec::BadDeploy { error_rate }, &FaultTarget::Service(s)) => {
                self.record_fault(kind, FaultSubject::Service(s), vec![]);
                let st = &mut self.services[s];
                st.bad_deploy = true;
                st.extra_error_rate = *error_rate;
                st.deploys += 1;
            }
            (FaultSpec::DependencyFailure { duration_s }, &FaultTarget::Service(s)) => {
                let rec = self.record_fault(kind, FaultSubject::Dependency(s), vec![]);
                self.services[s].down = true;
                let at = self.now() + SimTime::from_secs_f64(*duration_s);
                self.queue.push(at, Event::FaultEnd { record: rec as u32 });
            }
            // Validation resolves every kind to a target of the right shape.
            _ => self.faults_missed += 1,
        }
    }

    pub(crate) fn fail_host(&mut self, h: HostId) {
        self.index_remove(h);
        self.stop_billing(h);
        self.hosts[h].state = HostState::Failed;
        self.hosts[h].repair_epoch += 1;
        let on_host: Vec<ReplicaId> = (0..self.replicas.len())
            .filter(|&r| {
                self.replicas[r].host == Some(h)
                    && self.replicas[r].state != ReplicaState::Terminated
            })
            .collect();
        for r in on_host {
            if self.replicas[r].state == ReplicaState::Terminating {
                self.finalize(r);
            } else {
                self.crash_replica(r);
            }
        }
    }

    pub(crate) fn repair_host(&mut self, h: HostId, epoch: u32) {
        if self.hosts[h].state != HostState::Failed || self.hosts[h].repair_epoch != epoch {
            return;
        }
        self.hosts[h].state = HostState::Ready;
        self.hosts[h].billed_since = Some(self.now());
        self.index_insert(h);
        self.resolve(|x| x == FaultSubject::Host(h));
        self.place_pending();
    }

    pub(crate) fn end_fault(&mut self, rec: usize) {
        if self.faults[rec].resolved_at.is_some() {
            return;
        }
        match self.faults[rec].subject {
            FaultSubject::Zone(_) => {
                for h in self.faults[rec].hosts.clone() {
                    let epoch = self.hosts[h].repair_epoch;
                    self.repair_host(h, epoch);
                }
            }
            FaultSubject::Dependency(s) => self.services[s].down = false,
            _ => {}
        }
        self.faults[rec].resolved_at = Some(self.now());
    }
}
