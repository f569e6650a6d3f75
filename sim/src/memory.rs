//! Memory: what replicas use against what they request and may use, OOM kills at the
//! limit and under node pressure, and right-sizing a service's request.

use crate::event::Event;
use crate::model::{HostId, ReplicaId, ReplicaState, ServiceId};
use crate::sim::{EPS, Simulation};
use crate::time::SimTime;

/// How long a replica whose working set is over its limit runs before the kernel kills
/// it: the time to fault its memory in.
const OOM_FILL_S: f64 = 5.0;

/// Memory within this of the limit is at the limit, MiB (event times are rounded to
/// the clock's tick, so a leak meets its limit only to within its rate × a tick).
const AT_LIMIT_MIB: f64 = 0.01;

impl Simulation {
    /// Memory replica `r` may use before it is OOM-killed, MiB: its request times the
    /// scenario's ratio of limit to request.
    pub fn memory_limit_mib(&self, r: ReplicaId) -> f64 {
        let rep = &self.replicas[r];
        rep.memory_mib * self.scenario.spec.services[rep.service].limit_ratio()
    }

    /// Memory replica `r` uses now, MiB (its service's working set plus any leak).
    pub fn memory_used_mib(&self, r: ReplicaId) -> f64 {
        let rep = &self.replicas[r];
        rep.memory_used_mib(
            self.scenario.spec.services[rep.service].working_set(),
            self.now(),
        )
    }

    /// OOM kills so far (at a replica's limit or under node memory pressure).
    pub fn oom_kills(&self) -> u64 {
        self.oom_kills
    }

    /// Schedules replica `r`'s OOM kill for when its memory reaches its limit (now
    /// plus the time to fill it, if it is already there); nothing when it never will.
    pub(crate) fn schedule_oom(&mut self, r: ReplicaId) {
        let (used, limit) = (self.memory_used_mib(r), self.memory_limit_mib(r));
        let rep = &self.replicas[r];
        let secs = if used + AT_LIMIT_MIB >= limit {
            OOM_FILL_S
        } else if rep.leak_mib_per_s > 0.0 {
            ((limit - used) / rep.leak_mib_per_s).max(1e-3)
        } else {
            return;
        };
        let at = self.now() + SimTime::from_secs_f64(secs);
        let epoch = rep.epoch;
        self.queue.push(
            at,
            Event::Oom {
                replica: r as u32,
                epoch,
            },
        );
    }

    /// An OOM event: the kill happens if the replica is the same container and its
    /// memory is (still) at its limit (a resize since may have raised it).
    pub(crate) fn on_oom(&mut self, r: ReplicaId, epoch: u32) {
        let rep = &self.replicas[r];
        if rep.epoch == epoch && rep.state.is_running() {
            if self.memory_used_mib(r) + AT_LIMIT_MIB >= self.memory_limit_mib(r) {
                self.oom_kill(r);
            } else {
                // A limit raised since this was scheduled: the leak meets it later.
                self.schedule_oom(r);
            }
        }
    }

    fn oom_kill(&mut self, r: ReplicaId) {
        self.oom_kills += 1;
        self.crash_replica(r);
        self.replicas[r].restarts += 1;
    }

    /// A replica started running on its host, or its request changed: if its memory
    /// is at its limit it is killed shortly (a leak, when it gets there), and if the
    /// host's replicas now use more memory than it has, the kubelet's node-pressure
    /// eviction kills replicas, the one most over its request first, until they fit.
    pub(crate) fn check_memory(&mut self, r: ReplicaId) {
        self.schedule_oom(r);
        let working_set = self.scenario.spec.services[self.replicas[r].service].working_set();
        // Working sets at or under their requests never overcommit a host (requests
        // are what placement counts); a leak is killed at its own limit.
        if self.replicas[r].memory_mib + EPS < working_set
            && let Some(h) = self.replicas[r].host
        {
            self.relieve_pressure(h);
        }
    }

    /// Kills the replicas of host `h` most over their requests until the memory its
    /// running replicas use fits the host.
    fn relieve_pressure(&mut self, h: HostId) {
        loop {
            let running: Vec<ReplicaId> = self
                .services
                .iter()
                .flat_map(|st| st.replicas.iter().copied())
                .filter(|&x| {
                    let state = self.replicas[x].state;
                    self.replicas[x].host == Some(h)
                        && (state.is_running() || state == ReplicaState::Terminating)
                })
                .collect();
            let used: f64 = running.iter().map(|&x| self.memory_used_mib(x)).sum();
            if used <= self.hosts[h].memory_mib + EPS {
                return;
            }
            // The first of the most over its request (ids break ties: deterministic).
            let Some(victim) = running
                .iter()
                .copied()
                .filter(|&x| self.replicas[x].state != ReplicaState::Terminating)
                .max_by(|&a, &b| {
                    let over = |x: ReplicaId| self.memory_used_mib(x) - self.replicas[x].memory_mib;
                    over(a).total_cmp(&over(b)).then(b.cmp(&a))
                })
            else {
                return;
            };
            self.oom_kill(victim);
        }
    }

    /// A memory resize took effect: every placed replica takes the new request where
    /// its host has room (others keep the old one), and a replica whose new limit is
    /// under what it uses is OOM-killed.
    pub(crate) fn finish_memory_resize(&mut self, s: ServiceId, resize: u32) {
        if self.services[s].memory_resizes != resize {
            return;
        }
        let Some(mib) = self.services[s].pending_memory.take() else {
            return;
        };
        let old = self.services[s].memory_mib;
        self.services[s].memory_mib = mib;
        for r in self.services[s].replicas.clone() {
            let Some(h) = self.replicas[r].host else {
                continue;
            };
            let delta = mib - self.replicas[r].memory_mib;
            if self.hosts[h].memory_free() + EPS >= delta {
                self.allocate(h, 0.0, delta);
                self.replicas[r].memory_mib = mib;
                if self.replicas[r].state.is_running() {
                    self.check_memory(r);
                }
            }
        }
        if mib < old {
            self.place_pending();
        }
    }
}
