//! Spot hosts reclaimed by the provider, with notice ([`crate::SpotSpec`]).

use crate::event::Event;
use crate::model::{HostId, HostState, ReplicaId, ReplicaState};
use crate::rng::{self, StreamId};
use crate::scenario::Lifecycle;
use crate::sim::Simulation;
use crate::time::SimTime;

impl Simulation {
    /// Host `h`'s lifetime, if it is spot capacity and the scenario reclaims spot:
    /// drawn for the host id alone, so a host lives as long whatever the policy does.
    pub fn spot_lifetime_s(&self, h: HostId) -> Option<f64> {
        let spot = self.scenario.spec.cluster.spot.as_ref()?;
        (self.hosts[h].lifecycle == Lifecycle::Spot).then(|| {
            let k = rng::key(rng::key(self.seed, StreamId::Spot as u64), h as u64);
            rng::exp_from(k, spot.mean_lifetime_s)
        })
    }

    /// Schedules the notice and the end of ready spot host `h`.
    pub(crate) fn schedule_spot(&mut self, h: HostId) {
        if self.hosts[h].state != HostState::Ready {
            return;
        }
        let Some(life) = self.spot_lifetime_s(h) else {
            return;
        };
        let notice_s = self
            .scenario
            .spec
            .cluster
            .spot
            .as_ref()
            .map_or(0.0, |s| s.notice_s);
        let end = self.now() + SimTime::from_secs_f64(life);
        let notice = end
            .saturating_sub(SimTime::from_secs_f64(notice_s))
            .max(self.now());
        self.queue
            .push(notice, Event::SpotNotice { host: h as u32 });
        self.queue.push(end, Event::SpotReclaim { host: h as u32 });
    }

    /// The provider's notice: the host will be taken back; with `drain_on_notice`
    /// it is cordoned and drained now.
    pub(crate) fn spot_notice(&mut self, h: HostId) {
        if self.hosts[h].state == HostState::Removed {
            return;
        }
        let spot = self.scenario.spec.cluster.spot.clone().unwrap_or_default();
        self.hosts[h].reclaim_at = Some(self.now() + SimTime::from_secs_f64(spot.notice_s));
        if spot.drain_on_notice && self.hosts[h].state == HostState::Ready {
            // A drain of a ready host is always accepted.
            let _ = self.apply(&crate::Action::Drain { host: h });
        } else {
            self.index_remove(h);
            self.hosts[h].cordoned = true;
        }
    }

    /// The provider takes host `h` back: what still runs there is recreated
    /// elsewhere, and the host stops being billed.
    pub(crate) fn spot_reclaim(&mut self, h: HostId) {
        if self.hosts[h].state == HostState::Removed {
            return;
        }
        self.spot_reclaims += 1;
        // Out of placement first: capacity freed below must not land here.
        self.index_remove(h);
        self.hosts[h].cordoned = true;
        let on_host: Vec<ReplicaId> = (0..self.replicas.len())
            .filter(|&r| {
                self.replicas[r].host == Some(h)
                    && self.replicas[r].state != ReplicaState::Terminated
            })
            .collect();
        let mut services = vec![];
        for r in on_host {
            let s = self.replicas[r].service;
            if self.replicas[r].state.is_live() {
                self.evictions += 1;
                self.finalize(r);
                self.create_replica(s, Some(h));
                services.push(s);
            } else {
                self.finalize(r);
            }
        }
        self.release_host(h);
        for s in services {
            self.reconcile(s);
        }
        self.place_pending();
        self.maybe_provision();
    }
}
