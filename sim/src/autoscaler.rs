//! The cluster autoscaler's scale-down, with the Kubernetes Cluster Autoscaler's
//! semantics ([`AutoscalerSpec`](crate::AutoscalerSpec)): unneeded hosts are found by
//! their requests, drained when their replicas fit elsewhere, and released once empty.

use crate::event::Event;
use crate::model::{HostId, HostState};
use crate::sim::{EPS, Simulation};
use crate::time::SimTime;

impl Simulation {
    /// One scan: release the drained hosts that are empty, track which hosts are
    /// unneeded, and drain or release those unneeded long enough. Schedules the next.
    pub(crate) fn autoscaler_scan(&mut self) {
        let Some(a) = self.scenario.spec.cluster.autoscaler.clone() else {
            return;
        };
        let now = self.now();
        for h in 0..self.hosts.len() {
            if self.hosts[h].draining
                && self.hosts[h].replicas == 0
                && self.hosts[h].state == HostState::Ready
            {
                self.release_host(h);
            }
        }
        for host in &mut self.hosts {
            let candidate = host.state == HostState::Ready && !host.cordoned && !host.draining;
            let used = (host.cpu_allocated / host.cpu).max(host.memory_allocated / host.memory_mib);
            if candidate && used < a.utilization_threshold {
                host.unneeded_since.get_or_insert(now);
            } else {
                host.unneeded_since = None;
            }
        }
        let settled = self
            .last_scale_up
            .is_none_or(|t| now.saturating_sub(t) >= SimTime::from_secs_f64(a.delay_after_add_s));
        if settled {
            self.scale_down(
                SimTime::from_secs_f64(a.unneeded_time_s),
                a.min_hosts as usize,
            );
        }
        self.queue.push(
            now + SimTime::from_secs_f64(a.scan_interval_s),
            Event::AutoscalerScan,
        );
    }

    /// Releases the empty hosts unneeded for `unneeded`, and drains at most one
    /// non-empty one whose replicas fit on the others, keeping `min_hosts`.
    fn scale_down(&mut self, unneeded: SimTime, min_hosts: usize) {
        let now = self.now();
        let mut due: Vec<HostId> = (0..self.hosts.len())
            .filter(|&h| {
                self.hosts[h]
                    .unneeded_since
                    .is_some_and(|t| now.saturating_sub(t) >= unneeded)
            })
            .collect();
        // The emptiest first (then by index, so that a run is a function of its seed).
        due.sort_by(|&x, &y| {
            let share = |h: HostId| self.hosts[h].cpu_allocated / self.hosts[h].cpu;
            share(x).total_cmp(&share(y)).then(x.cmp(&y))
        });
        let mut kept = self
            .hosts
            .iter()
            .filter(|h| h.state != HostState::Removed && !h.draining)
            .count();
        let mut drained_one = false;
        for h in due {
            if kept <= min_hosts {
                break;
            }
            if self.hosts[h].replicas == 0 {
                self.release_host(h);
                kept -= 1;
            } else if !drained_one && self.fits_elsewhere(h) {
                // Eviction, as `kubectl drain`: each replica ends gracefully and a new
                // one boots on another host.
                if self.apply(&crate::Action::Drain { host: h }).is_ok() {
                    self.hosts[h].draining = true;
                    self.hosts[h].unneeded_since = None;
                    drained_one = true;
                    kept -= 1;
                }
            }
        }
    }

    /// Whether every live replica on `h` fits, by its requests, on the other
    /// schedulable hosts (first fit, largest first).
    pub fn fits_elsewhere(&self, h: HostId) -> bool {
        let mut free: Vec<(f64, f64)> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|&(o, host)| o != h && host.schedulable() && !host.draining)
            .map(|(_, host)| (host.cpu_free(), host.memory_free()))
            .collect();
        let mut moving: Vec<(f64, f64)> = self
            .replicas
            .iter()
            .filter(|r| r.host == Some(h) && r.state.is_live())
            // The replacement is created at the service's (target) size.
            .map(|r| {
                let st = &self.services[r.service];
                (st.target_cpu(), st.target_memory())
            })
            .collect();
        moving.sort_by(|a, b| b.0.total_cmp(&a.0));
        moving.iter().all(|&(cpu, mem)| {
            match free
                .iter_mut()
                .find(|(c, m)| *c + EPS >= cpu && *m + EPS >= mem)
            {
                Some(slot) => {
                    slot.0 -= cpu;
                    slot.1 -= mem;
                    true
                }
                None => false,
            }
        })
    }
}
