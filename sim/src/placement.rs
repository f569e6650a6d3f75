//! Hosts and placement: adding and removing hosts, and placing pending replicas on
//! the hosts the scenario's placement policy picks.

use crate::event::Event;
use crate::model::{Host, HostId, HostState, ReplicaState};
use crate::scenario::Placement;
use crate::sim::{EPS, Simulation, milli};
use crate::time::SimTime;

impl Simulation {
    pub(crate) fn push_host(&mut self, t: usize, zone: usize, state: HostState) -> HostId {
        let ht = &self.scenario.spec.host_types[t];
        self.hosts.push(Host {
            zone,
            host_type: t,
            cpu: ht.cpu,
            memory_mib: ht.memory_mib,
            price_per_hour: ht.price_per_hour,
            lifecycle: ht.lifecycle,
            state,
            cordoned: false,
            cpu_allocated: 0.0,
            memory_allocated: 0.0,
            replicas: 0,
            billed_since: Some(self.now()),
            draining: false,
            unneeded_since: None,
            consolidating: false,
            reclaim_at: None,
            repair_epoch: 0,
        });
        self.hosts.len() - 1
    }

    pub(crate) fn index_insert(&mut self, h: HostId) {
        if self.hosts[h].schedulable() {
            self.sched_index
                .insert((milli(self.hosts[h].cpu_allocated), h));
        }
    }

    pub(crate) fn index_remove(&mut self, h: HostId) {
        self.sched_index
            .remove(&(milli(self.hosts[h].cpu_allocated), h));
    }

    pub(crate) fn allocate(&mut self, h: HostId, cpu: f64, mem: f64) {
        self.index_remove(h);
        let host = &mut self.hosts[h];
        host.cpu_allocated = (host.cpu_allocated + cpu).max(0.0);
        host.memory_allocated = (host.memory_allocated + mem).max(0.0);
        self.index_insert(h);
    }

    pub(crate) fn stop_billing(&mut self, h: HostId) {
        if let Some(t) = self.hosts[h].billed_since.take() {
            self.cost_accrued +=
                self.hosts[h].price_per_hour * self.now().saturating_sub(t).as_secs_f64() / 3600.0;
        }
    }

    /// Stops billing an empty host and takes it out of the cluster.
    pub(crate) fn release_host(&mut self, h: HostId) {
        self.index_remove(h);
        self.stop_billing(h);
        self.hosts[h].state = HostState::Removed;
        self.hosts[h].draining = false;
        self.hosts[h].consolidating = false;
        self.hosts[h].unneeded_since = None;
        self.resolve(|x| x == crate::model::FaultSubject::Host(h));
    }

    pub(crate) fn find_host(&self, cpu: f64, mem: f64, avoid: Option<HostId>) -> Option<HostId> {
        let fits = |&&(_, h): &&(u64, HostId)| {
            let host = &self.hosts[h];
            Some(h) != avoid && host.cpu_free() + EPS >= cpu && host.memory_free() + EPS >= mem
        };
        match self.scenario.spec.cluster.placement {
            Placement::Spread => self.sched_index.iter().find(fits).map(|&(_, h)| h),
            Placement::Binpack => self.sched_index.iter().rev().find(fits).map(|&(_, h)| h),
        }
    }

    pub(crate) fn live_hosts(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.state != HostState::Removed)
            .count()
    }

    pub(crate) fn provision_host(&mut self, t: usize, zone: usize) -> HostId {
        let h = self.push_host(t, zone, HostState::Provisioning);
        self.last_scale_up = Some(self.now());
        let at =
            self.now() + SimTime::from_secs_f64(self.scenario.spec.cluster.provisioning_time_s);
        self.queue.push(at, Event::HostReady { host: h as u32 });
        h
    }

    /// Provisions hosts (if the scenario allows) until pending replicas could fit.
    pub(crate) fn maybe_provision(&mut self) {
        let Some((t, zone)) = self.scenario.provision else {
            return;
        };
        let t = self.provision_type.unwrap_or(t);
        let demand: f64 = self
            .pending
            .iter()
            .map(|&r| self.services[self.replicas[r].service].cpu)
            .sum();
        let mut supply: f64 = self
            .hosts
            .iter()
            .filter(|h| h.state == HostState::Provisioning)
            .map(Host::cpu_free)
            .sum();
        let max = self.scenario.spec.cluster.max_hosts as usize;
        while demand > supply + EPS && self.live_hosts() < max {
            let h = self.provision_host(t, zone);
            supply += self.hosts[h].cpu;
        }
    }

    pub(crate) fn place_pending(&mut self) {
        let n = self.pending.len();
        for _ in 0..n {
            let Some(r) = self.pending.pop_front() else {
                break;
            };
            if self.replicas[r].state == ReplicaState::Pending && !self.try_place(r) {
                self.pending.push_back(r);
            }
        }
    }
}
