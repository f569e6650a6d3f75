//! The simulation: one event loop over the cloud model, its control plane (placement,
//! actions, faults, probes) and one of the two traffic models.

use crate::event::Event;
use crate::fluid::{FluidEngine, FluidInput};
use crate::model::{FaultRecord, FaultSubject};
use crate::model::{
    Host, HostId, HostState, Replica, ReplicaId, ReplicaState, RequestCounters, ServiceCounters,
    ServiceId, ServiceState,
};
use crate::monitor::{Monitor, ScrapeInput, Snapshot};
use crate::queue::EventQueue;
use crate::request::{RequestEngine, Traffic};
use crate::rng::{self, Stream, StreamId};
use crate::scenario::{Fidelity, RateSpec, Scenario};
use crate::time::SimTime;
use crate::workload::Arrivals;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// A model invariant that does not hold (a simulator bug), with the state that
/// breaks it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InvariantError {
    /// A host's allocation.
    #[error("host {host}: {broken}: {state}")]
    Host {
        /// The host.
        host: usize,
        /// What is broken.
        broken: &'static str,
        /// The host's state.
        state: String,
    },
    /// A replica of a service.
    #[error("replica {replica} of service {service}: {broken}")]
    Replica {
        /// The replica.
        replica: usize,
        /// Its service.
        service: usize,
        /// What is broken.
        broken: String,
    },
    /// Requests arrived ≠ completed + failed + timed out + in flight.
    #[error("requests not conserved: {counters}, in flight {in_flight}")]
    Conservation {
        /// The counters.
        counters: String,
        /// Requests in flight.
        in_flight: f64,
    },
}

/// A running simulation of one scenario with one seed.
///
/// A run is a pure function of (scenario, seed, actions and the times they are
/// applied): [`Simulation::event_log_hash`] is identical across runs that agree on all
/// three. Exogenous randomness (arrivals, service demands, faults) comes from streams
/// that no action touches, so two policies on one seed face the same world.
pub struct Simulation {
    pub(crate) scenario: Arc<Scenario>,
    pub(crate) seed: u64,
    pub(crate) queue: EventQueue<Event>,
    pub(crate) hosts: Vec<Host>,
    pub(crate) replicas: Vec<Replica>,
    pub(crate) services: Vec<ServiceState>,
    pub(crate) requests: RequestEngine,
    pub(crate) fluid: FluidEngine,
    pub(crate) arrivals: Vec<Arrivals>,
    /// (time, seq) of each workload's next arrival, kept out of the heap: arrivals
    /// are half of all events in simple models, and a workload has one at a time.
    pub(crate) next_arrival: Vec<(SimTime, u64)>,
    pub(crate) monitor: Monitor,
    pub(crate) faults: Vec<FaultRecord>,
    pub(crate) faults_missed: u64,
    pub(crate) counters: RequestCounters,
    pub(crate) fault_streams: Vec<Stream>,
    /// Per workload, where this run's window of its trace starts, in seconds into the
    /// resolved series (traces with `offset = "random"` or `"tiled"`).
    pub(crate) window_offsets_s: Vec<Option<f64>>,
    /// When a host was last added (the autoscaler waits after a scale-up).
    pub(crate) last_scale_up: Option<SimTime>,
    /// Bumped whenever replica states, sizes or endpoints may have changed; lets the
    /// fluid model reuse its per-service endpoint aggregates between changes.
    pub(crate) version: u64,
    pub(crate) schedule_stream: Stream,
    pub(crate) pending: VecDeque<ReplicaId>,
    pub(crate) sched_index: BTreeSet<(u64, HostId)>,
    pub(crate) cost_accrued: f64,
    pub(crate) oom_kills: u64,
    /// Live replicas deleted to be recreated elsewhere (kill, reschedule, drain, the
    /// cluster autoscaler's drains).
    pub(crate) evictions: u64,
    /// Spot hosts reclaimed by the provider.
    pub(crate) spot_reclaims: u64,
    /// The host type provisioned now, where an action changed the scenario's.
    pub(crate) provision_type: Option<usize>,
    pub(crate) log_hash: u64,
    pub(crate) events: u64,
    /// Replicas the request model drained during the current event, to finalize.
    pub(crate) drained: Vec<ReplicaId>,
    /// Per edge, whether the defender cut it.
    pub(crate) cut: Vec<bool>,
    /// The attacker and what the defender's monitoring sees of it, once started.
    pub(crate) security: Option<Box<crate::intrusion::Intrusions>>,
}

pub(crate) const EPS: f64 = 1e-9;

pub(crate) fn milli(x: f64) -> u64 {
    (x * 1000.0).round().max(0.0) as u64
}

impl Simulation {
    /// Starts a run at time zero: hosts up, initial replicas ready, first events queued.
    pub fn new(scenario: Arc<Scenario>, seed: u64) -> Simulation {
        let sc = scenario;
        let spec = &sc.spec;
        let n_services = spec.services.len();
        let services = spec
            .services
            .iter()
            .map(|s| ServiceState {
                desired: s.replicas,
                cpu: s.cpu,
                memory_mib: s.memory_mib,
                extra_error_rate: 0.0,
                deploys: 0,
                bad_deploy: false,
                down: false,
                attack_error_rate: 0.0,
                replicas: Vec::new(),
                endpoints: Vec::new(),
                next_endpoint: 0,
                pending_resize: None,
                resizes: 0,
                pending_memory: None,
                memory_resizes: 0,
            })
            .collect();
        let mut window_offsets_s = vec![None; spec.workload.len()];
        let arrivals = spec
            .workload
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // A trace whose window moves from run to run: this run's window.
                let windowed = match &w.rate {
                    RateSpec::Trace(t) => t.episode_window(seed, i).map(|(offset, rps)| {
                        let step_s = t.resolved.as_ref().map_or(1.0, |r| r.step_s);
                        window_offsets_s[i] = Some(offset as f64 * step_s);
                        RateSpec::Series {
                            step_s,
                            rps,
                            repeat: t.repeat,
                        }
                    }),
                    _ => None,
                };
                Arrivals::new(
                    windowed.as_ref().unwrap_or(&w.rate),
                    w.limit,
                    rng::key(rng::key(seed, StreamId::Workload as u64), i as u64),
                )
            })
            .collect();
        let fault_key = rng::key(seed, StreamId::Faults as u64);
        let fault_streams = (0..spec.faults.mtbf.len())
            .map(|i| Stream::from_key(rng::key(fault_key, i as u64 + 1)))
            .collect();
        let mut sim = Simulation {
            seed,
            queue: EventQueue::default(),
            hosts: Vec::new(),
            replicas: Vec::new(),
            services,
            requests: RequestEngine::new(&sc, seed),
            fluid: crate::fluid::FluidEngine::new(&sc),
            next_arrival: vec![(SimTime::MAX, u64::MAX); spec.workload.len()],
            arrivals,
            monitor: Monitor::new(&sc, seed),
            faults: Vec::new(),
            faults_missed: 0,
            counters: RequestCounters::default(),
            fault_streams,
            version: 0,
            schedule_stream: Stream::from_key(rng::key(fault_key, 0)),
            pending: VecDeque::new(),
            sched_index: BTreeSet::new(),
            cost_accrued: 0.0,
            oom_kills: 0,
            evictions: 0,
            spot_reclaims: 0,
            provision_type: None,
            last_scale_up: None,
            window_offsets_s,
            log_hash: rng::key(seed, 0x10c),
            events: 0,
            drained: Vec::new(),
            cut: vec![false; sc.edges.len()],
            security: None,
            scenario: sc.clone(),
        };
        for &(zone, t) in &sc.initial_hosts {
            let h = sim.push_host(t, zone, HostState::Ready);
            sim.index_insert(h);
        }
        for s in 0..n_services {
            for _ in 0..sim.services[s].desired {
                let r = sim.create_replica(s, None);
                if sim.replicas[r].state == ReplicaState::Booting {
                    // Initial replicas start ready: the run begins in steady state.
                    sim.replicas[r].epoch += 1;
                    sim.make_ready(r);
                }
            }
        }
        let s = &sc.spec.simulation;
        match sc.spec.fidelity {
            Fidelity::Request => {
                for w in 0..sim.arrivals.len() {
                    sim.on_traffic(|engine, cx| engine.schedule_next_arrival(cx, w));
                }
            }
            Fidelity::Fluid => sim.queue.push(SimTime::ZERO, Event::FluidTick),
        }
        sim.queue
            .push(SimTime::from_secs_f64(s.scrape_interval_s), Event::Scrape);
        sim.queue
            .push(SimTime::from_secs_f64(s.probe_period_s), Event::Probe);
        if let Some(a) = &sc.spec.cluster.autoscaler {
            sim.queue.push(
                SimTime::from_secs_f64(a.scan_interval_s),
                Event::AutoscalerScan,
            );
        }
        for h in 0..sim.hosts.len() {
            sim.schedule_spot(h);
        }
        for (i, f) in sc.spec.faults.schedule.iter().enumerate() {
            sim.queue.push(
                SimTime::from_secs_f64(f.at_s),
                Event::ScheduledFault { index: i as u32 },
            );
        }
        for (i, p) in sc.spec.faults.mtbf.iter().enumerate() {
            let dt = p.every.sample_s(sim.fault_streams[i].unit());
            sim.queue.push(
                SimTime::from_secs_f64(dt),
                Event::SampledFault { process: i as u32 },
            );
        }
        sim
    }

    // ----- running -------------------------------------------------------------------

    /// Processes every event up to and including `t`, then sets now to `t`.
    pub fn run_until(&mut self, t: SimTime) {
        loop {
            let mut lane = None;
            let mut key = self.queue.peek_key().unwrap_or((SimTime::MAX, u64::MAX));
            for (w, &a) in self.next_arrival.iter().enumerate() {
                if a < key {
                    (key, lane) = (a, Some(w));
                }
            }
            if key.0 > t || key.1 == u64::MAX {
                break;
            }
            let (time, ev) = match lane {
                Some(w) => {
                    self.next_arrival[w] = (SimTime::MAX, u64::MAX);
                    self.queue.advance_to(key.0);
                    (key.0, Event::Arrival { workload: w as u32 })
                }
                None => match self.queue.pop() {
                    Some(x) => x,
                    None => break,
                },
            };
            self.events += 1;
            let (kind, id) = ev.fingerprint();
            self.log_hash = rng::mix64(self.log_hash ^ time.0 ^ (kind << 58)) ^ id;
            self.handle(ev);
        }
        self.queue.advance_to(t);
        self.account_security();
    }

    /// Runs for `dt` more.
    pub fn run_for(&mut self, dt: SimTime) {
        let t = self.now() + dt;
        self.run_until(t);
    }

    /// Runs until no request is in flight and no workload will send another (every
    /// `limit` reached), or until `deadline`. Returns whether it drained.
    pub fn run_until_drained(&mut self, deadline: SimTime) -> bool {
        let step = SimTime::from_secs(1);
        loop {
            let more = self.next_arrival.iter().any(|a| a.1 != u64::MAX);
            if !more && self.requests.calls_live() == 0 {
                return true;
            }
            if self.now() >= deadline {
                return false;
            }
            let t = (self.now() + step).min(deadline);
            self.run_until(t);
        }
    }

    pub(crate) fn handle(&mut self, ev: Event) {
        // Control events may change replica states, sizes and endpoints; traffic,
        // ticks, scrapes and probes do not (probes change endpoints, which bump the
        // version themselves).
        if !matches!(
            ev,
            Event::Arrival { .. }
                | Event::JobDone { .. }
                | Event::TimeoutCheck { .. }
                | Event::Retry { .. }
                | Event::FluidTick
                | Event::Scrape
                | Event::Probe
        ) {
            self.version += 1;
        }
        match ev {
            Event::Arrival { workload } => {
                self.on_traffic(|engine, cx| engine.on_arrival(cx, workload as usize));
            }
            Event::JobDone { job } => self.on_traffic(|engine, cx| engine.on_job_done(cx, job)),
            Event::TimeoutCheck { edge } => {
                self.on_traffic(|engine, cx| engine.on_timeout_check(cx, edge as usize));
            }
            Event::Retry { call } => self.on_traffic(|engine, cx| engine.dispatch(cx, call)),
            Event::ReplicaReady { replica, epoch } => {
                let r = replica as usize;
                if self.replicas[r].epoch == epoch
                    && self.replicas[r].state == ReplicaState::Booting
                {
                    self.make_ready(r);
                    self.resolve(|s| s == FaultSubject::Replica(r));
                }
            }
            Event::HostReady { host } => {
                let h = host as usize;
                if self.hosts[h].state == HostState::Provisioning {
                    self.hosts[h].state = HostState::Ready;
                    self.index_insert(h);
                    self.schedule_spot(h);
                    self.place_pending();
                }
            }
            Event::HostRepair { host, epoch } => self.repair_host(host as usize, epoch),
            Event::TerminateDone { replica, epoch } => {
                let r = replica as usize;
                if self.replicas[r].epoch == epoch
                    && self.replicas[r].state == ReplicaState::Terminating
                {
                    self.finalize(r);
                }
            }
            Event::ScheduledFault { index } => {
                let i = index as usize;
                let fault = self.scenario.spec.faults.schedule[i].fault.clone();
                let target = self.scenario.scheduled_targets[i].clone();
                let u = self.schedule_stream.unit();
                self.inject(&fault, &target, u);
            }
            Event::SampledFault { process } => {
                let i = process as usize;
                let p = &self.scenario.spec.faults.mtbf[i];
                let (fault, target, every) = (
                    p.fault.clone(),
                    self.scenario.process_targets[i].clone(),
                    p.every.clone(),
                );
                let u = self.fault_streams[i].unit();
                let dt = every.sample_s(self.fault_streams[i].unit());
                self.inject(&fault, &target, u);
                let at = self.now() + SimTime::from_secs_f64(dt);
                self.queue.push(at, Event::SampledFault { process });
            }
            Event::FaultEnd { record } => self.end_fault(record as usize),
            Event::Oom { replica, epoch } => self.on_oom(replica as usize, epoch),
            Event::RollbackDone { service, deploy } => {
                let s = service as usize;
                if self.services[s].deploys == deploy && self.services[s].bad_deploy {
                    let st = &mut self.services[s];
                    st.bad_deploy = false;
                    st.extra_error_rate = 0.0;
                    st.deploys += 1;
                    self.resolve(|x| x == FaultSubject::Service(s));
                }
            }
            Event::ResizeDone { service, resize } => self.finish_resize(service as usize, resize),
            Event::MemoryResizeDone { service, resize } => {
                self.finish_memory_resize(service as usize, resize)
            }
            Event::Scrape => {
                let cost = self.cost();
                self.monitor.scrape(ScrapeInput {
                    scenario: &self.scenario,
                    now: self.queue.now(),
                    services: &self.services,
                    hosts: &self.hosts,
                    replicas: &mut self.replicas,
                    fluid: &self.fluid,
                    cost,
                });
                let at = self.now()
                    + SimTime::from_secs_f64(self.scenario.spec.simulation.scrape_interval_s);
                self.queue.push(at, Event::Scrape);
            }
            Event::AutoscalerScan => self.autoscaler_scan(),
            Event::SpotNotice { host } => self.spot_notice(host as usize),
            Event::SpotReclaim { host } => self.spot_reclaim(host as usize),
            Event::Attack => self.on_attack(),
            Event::Alert { replica } => self.on_alert(replica as usize),
            Event::AnalyseDone { replica, token } => self.on_analyse_done(replica as usize, token),
            Event::RollingRestart { replica, token } => {
                self.on_rolling_restart(replica as usize, token)
            }
            Event::Probe => {
                self.probe();
                let at = self.now()
                    + SimTime::from_secs_f64(self.scenario.spec.simulation.probe_period_s);
                self.queue.push(at, Event::Probe);
            }
            Event::FluidTick => {
                let dt = self.scenario.spec.simulation.fluid_tick_s;
                self.fluid.tick(
                    dt,
                    FluidInput {
                        scenario: &self.scenario,
                        now: self.queue.now(),
                        arrivals: &mut self.arrivals,
                        services: &self.services,
                        replicas: &self.replicas,
                        version: self.version,
                        windows: &mut self.monitor.win,
                        latency: &mut self.monitor.fluid_lat,
                        counters: &mut self.counters,
                        cut: &self.cut,
                    },
                );
                let at = self.now() + SimTime::from_secs_f64(dt);
                self.queue.push(at, Event::FluidTick);
            }
        }
    }

    /// Hands an event to the request model with what it works on, then finalizes the
    /// terminating replicas it drained.
    fn on_traffic(&mut self, event: impl FnOnce(&mut RequestEngine, &mut Traffic<'_>)) {
        let mut cx = Traffic {
            scenario: &self.scenario,
            queue: &mut self.queue,
            replicas: &mut self.replicas,
            services: &mut self.services,
            monitor: &mut self.monitor,
            counters: &mut self.counters,
            arrivals: &mut self.arrivals,
            next_arrival: &mut self.next_arrival,
            drained: &mut self.drained,
            cut: &self.cut,
        };
        event(&mut self.requests, &mut cx);
        while !self.drained.is_empty() {
            let r = self.drained.remove(0);
            self.finalize(r);
        }
    }

    // ----- read-only views ------------------------------------------------------------

    /// The newest scrape an observer can see now (scraped at least
    /// `scrape_delay_s` ago), if any.
    pub fn observe(&self) -> Option<&Snapshot> {
        let delay = SimTime::from_secs_f64(self.scenario.spec.simulation.scrape_delay_s);
        self.monitor.visible(self.now(), delay)
    }

    /// Seconds of SLO violation so far, per SLO of the scenario.
    pub fn slo_violation_s(&self) -> &[f64] {
        &self.monitor.slo_violation_s
    }

    /// Per workload, where this run's window of its trace starts, in seconds into
    /// the trace's split (`None`: not a trace whose window moves).
    pub fn window_offsets_s(&self) -> &[Option<f64>] {
        &self.window_offsets_s
    }

    /// Current simulated time.
    pub fn now(&self) -> SimTime {
        self.queue.now()
    }

    /// The scenario.
    pub fn scenario(&self) -> &Arc<Scenario> {
        &self.scenario
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Hosts, by id (removed ones included).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Replicas, by id (terminated ones included).
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// Services, in scenario order.
    pub fn services(&self) -> &[ServiceState] {
        &self.services
    }

    /// Outcomes of external requests so far.
    pub fn requests(&self) -> RequestCounters {
        self.counters
    }

    /// External requests in flight now (request level: counted from live calls).
    pub fn requests_in_flight(&self) -> u64 {
        self.requests.roots_live()
    }

    /// A service's counters since the start.
    pub fn service_totals(&self, s: ServiceId) -> ServiceCounters {
        self.monitor.totals(s)
    }

    /// Clears every service's run totals (to drop a warm-up period).
    pub fn reset_service_totals(&mut self) {
        self.monitor.reset_totals();
    }

    /// Live replicas deleted so far to be recreated elsewhere: kills, reschedules and
    /// drains (an operator's or the cluster autoscaler's). Scale-downs and restarts
    /// are not evictions.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The host type the cluster provisions now, if it provisions.
    pub fn provision_type(&self) -> Option<usize> {
        self.scenario
            .provision
            .map(|(t, _)| self.provision_type.unwrap_or(t))
    }

    /// Spot hosts the provider has reclaimed so far.
    pub fn spot_reclaims(&self) -> u64 {
        self.spot_reclaims
    }

    /// Money spent on hosts so far.
    pub fn cost(&self) -> f64 {
        let now = self.now();
        self.cost_accrued
            + self
                .hosts
                .iter()
                .filter_map(|h| {
                    h.billed_since
                        .map(|t| h.price_per_hour * now.saturating_sub(t).as_secs_f64() / 3600.0)
                })
                .sum::<f64>()
    }

    /// Faults injected so far, with their resolution times.
    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }

    /// Faults whose target did not exist when they fired (e.g. no serving replica).
    pub fn faults_missed(&self) -> u64 {
        self.faults_missed
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.events
    }

    /// A hash of every event processed (time, kind, id): equal for equal runs.
    pub fn event_log_hash(&self) -> u64 {
        self.log_hash
    }

    /// Pushes that asked for a time in the past (zero unless the simulator is wrong).
    pub fn events_scheduled_in_past(&self) -> u64 {
        self.queue.scheduled_in_past()
    }

    /// Checks the model's invariants; returns the first one broken.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        for (h, host) in self.hosts.iter().enumerate() {
            if host.cpu_free() < -1e-6 || host.memory_free() < -1e-6 {
                return Err(InvariantError::Host {
                    host: h,
                    broken: "over-committed",
                    state: format!("{host:?}"),
                });
            }
            if host.state == HostState::Removed
                && (host.replicas > 0 || host.billed_since.is_some() || host.draining)
            {
                return Err(InvariantError::Host {
                    host: h,
                    broken: "released with replicas, billing or a drain",
                    state: format!("{host:?}"),
                });
            }
            let (cpu, mem) = self
                .replicas
                .iter()
                .filter(|r| r.host == Some(h) && r.state != ReplicaState::Terminated)
                .fold((0.0, 0.0), |(c, m), r| (c + r.cpu, m + r.memory_mib));
            if (cpu - host.cpu_allocated).abs() > 1e-6 || (mem - host.memory_allocated).abs() > 1e-6
            {
                return Err(InvariantError::Host {
                    host: h,
                    broken: "allocation is not the sum of its replicas' requests",
                    state: format!("{host:?}; replicas request {cpu} cores, {mem} MiB"),
                });
            }
            if host.cpu_allocated < -1e-6 || host.memory_allocated < -1e-6 {
                return Err(InvariantError::Host {
                    host: h,
                    broken: "negative allocation",
                    state: format!("{host:?}"),
                });
            }
        }
        for (s, st) in self.services.iter().enumerate() {
            let conc = self.scenario.spec.services[s].concurrency;
            for &r in &st.endpoints {
                if !self.replicas[r].in_lb || self.replicas[r].service != s {
                    return Err(InvariantError::Replica {
                        replica: r,
                        service: s,
                        broken: "an endpoint not marked in_lb".into(),
                    });
                }
            }
            for &r in &st.replicas {
                let rep = &self.replicas[r];
                if rep.busy > conc {
                    return Err(InvariantError::Replica {
                        replica: r,
                        service: s,
                        broken: format!("{} busy slots of {conc}", rep.busy),
                    });
                }
                if rep.state == ReplicaState::Terminated {
                    return Err(InvariantError::Replica {
                        replica: r,
                        service: s,
                        broken: "terminated, still listed".into(),
                    });
                }
                if rep.isolated && (rep.in_lb || rep.busy > 0 || !rep.queue.is_empty()) {
                    return Err(InvariantError::Replica {
                        replica: r,
                        service: s,
                        broken: format!(
                            "isolated, yet in the load balancer ({}) or holding requests ({} busy, {} queued)",
                            rep.in_lb,
                            rep.busy,
                            rep.queue.len()
                        ),
                    });
                }
            }
        }
        let c = &self.counters;
        let in_flight = self.requests.roots_live() as f64;
        if self.scenario.spec.fidelity == Fidelity::Request
            && c.arrived != c.completed + c.failed + c.timed_out + in_flight
        {
            return Err(InvariantError::Conservation {
                counters: format!("{c:?}"),
                in_flight,
            });
        }
        Ok(())
    }

    // ----- replica life ---------------------------------------------------------------

    pub(crate) fn create_replica(&mut self, s: ServiceId, avoid: Option<HostId>) -> ReplicaId {
        let r = self.replicas.len();
        self.replicas.push(Replica {
            service: s,
            host: None,
            state: ReplicaState::Pending,
            in_lb: false,
            probe_failures: 0,
            restarts: 0,
            // A new replica gets the size a resize in flight is heading for, as the
            // VPA's admission controller sets a new pod's requests at creation.
            cpu: self.services[s].target_cpu(),
            memory_mib: self.services[s].target_memory(),
            busy: 0,
            leak_mib_per_s: 0.0,
            slowdown: 1.0,
            isolated: false,
            steal: 1.0,
            created: self.now(),
            queue: VecDeque::new(),
            epoch: 0,
            leak_since: SimTime::ZERO,
            leaked_mib: 0.0,
            avoid_host: avoid,
            win_answered: 0.0,
            win_failed: 0.0,
            win_latency_s: 0.0,
        });
        self.services[s].replicas.push(r);
        if !self.try_place(r) {
            self.pending.push_back(r);
            self.maybe_provision();
        }
        r
    }

    /// Binds a pending replica to a host and starts booting it.
    pub(crate) fn try_place(&mut self, r: ReplicaId) -> bool {
        let s = self.replicas[r].service;
        let cpu = self.services[s].target_cpu();
        let mem = self.services[s].target_memory();
        let Some(h) = self.find_host(cpu, mem, self.replicas[r].avoid_host) else {
            return false;
        };
        self.allocate(h, cpu, mem);
        self.hosts[h].replicas += 1;
        let rep = &mut self.replicas[r];
        rep.host = Some(h);
        rep.cpu = cpu;
        rep.memory_mib = mem;
        rep.epoch += 1;
        self.start_booting(r, self.scenario.spec.services[s].boot_time_s);
        true
    }

    /// Starts a replica booting; it becomes ready after `secs` unless its epoch moves on.
    pub(crate) fn start_booting(&mut self, r: ReplicaId, secs: f64) {
        // A fresh container: whatever an intruder held in the old one is gone.
        self.clean_replica(r);
        let rep = &mut self.replicas[r];
        rep.state = ReplicaState::Booting;
        let epoch = rep.epoch;
        let at = self.queue.now() + SimTime::from_secs_f64(secs);
        self.queue.push(
            at,
            Event::ReplicaReady {
                replica: r as u32,
                epoch,
            },
        );
    }

    pub(crate) fn make_ready(&mut self, r: ReplicaId) {
        let rep = &mut self.replicas[r];
        rep.state = if rep.slowdown > 1.0 || rep.leak_mib_per_s > 0.0 {
            ReplicaState::Degraded
        } else {
            ReplicaState::Ready
        };
        rep.probe_failures = 0;
        self.add_endpoint(r);
        self.check_memory(r);
    }

    pub(crate) fn add_endpoint(&mut self, r: ReplicaId) {
        if !self.replicas[r].in_lb && !self.replicas[r].isolated {
            self.version += 1;
            self.replicas[r].in_lb = true;
            let s = self.replicas[r].service;
            self.services[s].endpoints.push(r);
        }
    }

    pub(crate) fn remove_endpoint(&mut self, r: ReplicaId) {
        if self.replicas[r].in_lb {
            self.version += 1;
            self.replicas[r].in_lb = false;
            let s = self.replicas[r].service;
            self.services[s].endpoints.retain(|&x| x != r);
        }
    }

    /// Fails everything the replica holds (its callers see a reset connection).
    pub(crate) fn drop_work(&mut self, r: ReplicaId) {
        self.replicas[r].epoch += 1;
        self.on_traffic(|engine, cx| engine.fail_jobs_at(cx, r));
    }

    pub(crate) fn crash_replica(&mut self, r: ReplicaId) {
        self.remove_endpoint(r);
        self.replicas[r].state = ReplicaState::Crashed;
        self.replicas[r].leak_mib_per_s = 0.0;
        self.replicas[r].leaked_mib = 0.0;
        self.drop_work(r);
    }

    /// Takes a replica out of service; with `graceful`, it first finishes its work
    /// (at most the termination grace period).
    pub(crate) fn terminate(&mut self, r: ReplicaId, graceful: bool) {
        self.remove_endpoint(r);
        let rep = &self.replicas[r];
        let busy = rep.busy > 0 || !rep.queue.is_empty();
        if graceful && busy && rep.host.is_some() && rep.state.is_serving() {
            let rep = &mut self.replicas[r];
            rep.state = ReplicaState::Terminating;
            let at = self.queue.now()
                + SimTime::from_secs_f64(self.scenario.spec.simulation.termination_grace_s);
            let epoch = rep.epoch;
            self.queue.push(
                at,
                Event::TerminateDone {
                    replica: r as u32,
                    epoch,
                },
            );
        } else {
            self.finalize(r);
        }
    }

    /// Removes a replica for good and frees its host's capacity.
    pub(crate) fn finalize(&mut self, r: ReplicaId) {
        self.remove_endpoint(r);
        self.drop_work(r);
        let s = self.replicas[r].service;
        if let Some(h) = self.replicas[r].host {
            let (cpu, mem) = (self.replicas[r].cpu, self.replicas[r].memory_mib);
            self.allocate(h, -cpu, -mem);
            self.hosts[h].replicas -= 1;
            if self.hosts[h].consolidating && self.hosts[h].replicas == 0 {
                self.release_host(h);
            }
        }
        self.replicas[r].state = ReplicaState::Terminated;
        self.replicas[r].leak_mib_per_s = 0.0;
        self.replicas[r].leaked_mib = 0.0;
        self.clean_replica(r);
        self.services[s].replicas.retain(|&x| x != r);
        self.pending.retain(|&x| x != r);
        self.resolve(|x| x == FaultSubject::Replica(r));
        if self.replicas[r].host.is_some() {
            self.place_pending();
        }
    }

    /// A service's live replicas, oldest first.
    pub(crate) fn live_replicas(&self, s: ServiceId) -> Vec<ReplicaId> {
        self.services[s]
            .replicas
            .iter()
            .copied()
            .filter(|&r| self.replicas[r].state.is_live())
            .collect()
    }

    /// Brings the service's live replica count to its desired count.
    pub(crate) fn reconcile(&mut self, s: ServiceId) {
        let live = self.live_replicas(s);
        let desired = self.services[s].desired as usize;
        for _ in live.len()..desired {
            self.create_replica(s, None);
        }
        if live.len() > desired {
            // The least useful go first: pending, crashed, hung, booting, degraded,
            // ready; newest first among equals.
            let rank = |st: ReplicaState| match st {
                ReplicaState::Pending => 0,
                ReplicaState::Crashed => 1,
                ReplicaState::Hung => 2,
                ReplicaState::Booting => 3,
                ReplicaState::Degraded => 4,
                _ => 5,
            };
            let mut victims = live;
            victims.sort_by_key(|&r| (rank(self.replicas[r].state), std::cmp::Reverse(r)));
            for &r in &victims[..victims.len() - desired] {
                self.terminate(r, true);
            }
        }
    }

    // ----- probes ---------------------------------------------------------------------

    /// Readiness probes: a replica failing `probe_failure_threshold` probes in a row
    /// leaves the load balancer; one passing again rejoins it.
    pub(crate) fn probe(&mut self) {
        let threshold = self.scenario.spec.simulation.probe_failure_threshold;
        for s in 0..self.services.len() {
            for i in 0..self.services[s].replicas.len() {
                let r = self.services[s].replicas[i];
                match self.replicas[r].state {
                    ReplicaState::Ready | ReplicaState::Degraded => {
                        self.replicas[r].probe_failures = 0;
                        self.add_endpoint(r);
                    }
                    ReplicaState::Hung | ReplicaState::Crashed => {
                        self.replicas[r].probe_failures += 1;
                        if self.replicas[r].probe_failures >= threshold {
                            self.remove_endpoint(r);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
