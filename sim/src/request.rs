//! The request-level traffic model: every request is a chain of events.
//!
//! A *call* is what a caller waits for (an external request, or one of a job's
//! downstream calls); it makes one or more *attempts* (retries). Each attempt becomes a
//! *job* at a replica chosen by the service's load balancer: it queues for one of the
//! replica's worker slots, is processed for a sampled time, then makes its own calls in
//! parallel and holds its slot until they all answer (thread-per-request servers). A
//! caller gives up an attempt at its timeout and retries after an exponential back-off
//! with full jitter; the abandoned job goes on working, unseen, as in real retry storms.
//!
//! Timeouts cost no heap events in the common case: timeouts of one edge all have the
//! same length, so their deadlines arrive in issue order, and each edge keeps them in a
//! FIFO with a single pending check event at the earliest live deadline.
//!
//! Every random draw of a request (service demand, error, retry jitter, load-balancer
//! choice) is a pure function of its key: the request's arrival number and its path
//! through the call graph (see [`crate::rng`]).

use crate::event::Event;
use crate::model::{Replica, ReplicaId, ReplicaState, RequestCounters, ServiceState};
use crate::monitor::Monitor;
use crate::queue::EventQueue;
use crate::rng::{self, StreamId};
use crate::scenario::{LbPolicy, Scenario};
use crate::slab::{CallId, JobId, Slab};
use crate::time::SimTime;
use crate::workload::Arrivals;
use std::collections::VecDeque;

/// How an attempt or call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Error,
    Timeout,
}

struct Call {
    key: u64,
    /// The job that made this call; `None` for an external request.
    parent: Option<JobId>,
    edge: u32,
    attempt: u32,
    /// Arrival of the external request (roots only).
    arrived: SimTime,
}

struct Job {
    call: CallId,
    attempt: u32,
    key: u64,
    replica: u32,
    epoch: u32,
    service: u16,
    started: bool,
    arrived: SimTime,
    demand_s: f64,
    /// Downstream calls still unanswered (plus one while they are being issued).
    pending: u32,
    child_failed: bool,
}

struct TimeoutEntry {
    deadline: SimTime,
    call: CallId,
    attempt: u32,
}

/// State of the request-level model.
pub(crate) struct RequestEngine {
    calls: Slab<Call>,
    jobs: Slab<Job>,
    timeouts: Vec<VecDeque<TimeoutEntry>>,
    check_pending: Vec<bool>,
    workload_keys: Vec<u64>,
    roots: u64,
}

/// What the request model works on besides its own calls and jobs, borrowed from the
/// simulation for one event: the clock and event queue, the replicas it queues jobs
/// at and the services it balances over, the monitor's windows, the request counters
/// and the workloads' arrival processes.
pub(crate) struct Traffic<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) queue: &'a mut EventQueue<Event>,
    pub(crate) replicas: &'a mut [Replica],
    pub(crate) services: &'a mut [ServiceState],
    pub(crate) monitor: &'a mut Monitor,
    pub(crate) counters: &'a mut RequestCounters,
    pub(crate) arrivals: &'a mut [Arrivals],
    pub(crate) next_arrival: &'a mut [(SimTime, u64)],
    /// Terminating replicas whose last job just ended: the simulation finalizes them
    /// once the event is handled (the request model does not own replicas' lives).
    pub(crate) drained: &'a mut Vec<ReplicaId>,
    /// Per edge, whether the defender cut it (every attempt along it fails).
    pub(crate) cut: &'a [bool],
}

const K_SERVICE: u64 = 1;
const K_ERROR: u64 = 2;
const K_JITTER: u64 = 3;
const K_LB: u64 = 4;

impl RequestEngine {
    pub(crate) fn new(sc: &Scenario, seed: u64) -> RequestEngine {
        let base = rng::key(seed, StreamId::Service as u64);
        RequestEngine {
            calls: Slab::new(),
            jobs: Slab::new(),
            timeouts: (0..sc.edges.len()).map(|_| VecDeque::new()).collect(),
            check_pending: vec![false; sc.edges.len()],
            workload_keys: (0..sc.spec.workload.len())
                .map(|w| rng::key(base, w as u64))
                .collect(),
            roots: 0,
        }
    }

    pub(crate) fn calls_live(&self) -> usize {
        self.calls.live
    }

    pub(crate) fn roots_live(&self) -> u64 {
        self.roots
    }
}

impl RequestEngine {
    pub(crate) fn schedule_next_arrival(&mut self, cx: &mut Traffic<'_>, w: usize) {
        if let Some(t) = cx.arrivals[w].next() {
            cx.next_arrival[w] = cx.queue.reserve(SimTime::from_secs_f64(t));
        }
    }

    pub(crate) fn on_arrival(&mut self, cx: &mut Traffic<'_>, w: usize) {
        let n = cx.arrivals[w].count;
        let key = rng::key(self.workload_keys[w], n);
        let now = cx.queue.now();
        let call = self.calls.insert(Call {
            key,
            parent: None,
            edge: w as u32,
            attempt: 0,
            arrived: now,
        });
        self.roots += 1;
        cx.counters.arrived += 1.0;
        self.dispatch(cx, call);
        self.schedule_next_arrival(cx, w);
    }

    /// Sends the current attempt of a call to a replica of its service.
    pub(crate) fn dispatch(&mut self, cx: &mut Traffic<'_>, call: CallId) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let (edge, attempt) = (c.edge as usize, c.attempt);
        let job_key = rng::key(c.key, attempt as u64);
        let s = cx.scenario.edges[edge].to;
        let now = cx.queue.now();
        cx.monitor.win[s].arrivals += 1.0;
        if cx.services[s].down || cx.cut[edge] {
            cx.monitor.win[s].failed += 1.0;
            self.attempt_done(cx, call, attempt, Outcome::Error);
            return;
        }
        let Some(r) = self.pick_replica(cx, s, job_key) else {
            cx.monitor.win[s].rejected += 1.0;
            cx.monitor.win[s].failed += 1.0;
            self.attempt_done(cx, call, attempt, Outcome::Error);
            return;
        };
        let spec = &cx.scenario.spec.services[s];
        let rep = &cx.replicas[r];
        let free = rep.busy < spec.concurrency;
        if !free && rep.queue.len() >= spec.queue_capacity as usize {
            cx.monitor.win[s].rejected += 1.0;
            cx.monitor.win[s].failed += 1.0;
            self.attempt_done(cx, call, attempt, Outcome::Error);
            return;
        }
        let job = self.jobs.insert(Job {
            call,
            attempt,
            key: job_key,
            replica: r as u32,
            epoch: rep.epoch,
            service: s as u16,
            started: false,
            arrived: now,
            demand_s: 0.0,
            pending: 0,
            child_failed: false,
        });
        let deadline = now + cx.scenario.edges[edge].timeout;
        self.timeouts[edge].push_back(TimeoutEntry {
            deadline,
            call,
            attempt,
        });
        if !self.check_pending[edge] {
            self.check_pending[edge] = true;
            cx.queue
                .push(deadline, Event::TimeoutCheck { edge: edge as u32 });
        }
        if free {
            self.start(cx, job);
        } else {
            cx.monitor.win[s].waited += 1.0;
            cx.replicas[r].queue.push_back(job);
        }
    }

    fn pick_replica(&mut self, cx: &mut Traffic<'_>, s: usize, key: u64) -> Option<ReplicaId> {
        let st = &mut cx.services[s];
        let n = st.endpoints.len();
        if n == 0 {
            return None;
        }
        let load = |r: ReplicaId| cx.replicas[r].busy as usize + cx.replicas[r].queue.len();
        Some(match cx.scenario.spec.services[s].load_balancer {
            LbPolicy::RoundRobin => {
                st.next_endpoint = if st.next_endpoint + 1 >= n {
                    0
                } else {
                    st.next_endpoint + 1
                };
                st.endpoints[st.next_endpoint]
            }
            LbPolicy::LeastOutstanding => {
                // Ties go to the next replica in round-robin order, so idle replicas share.
                st.next_endpoint = st.next_endpoint.wrapping_add(1);
                let mut best = st.endpoints[st.next_endpoint % n];
                for i in 1..n {
                    let r = st.endpoints[(st.next_endpoint + i) % n];
                    if load(r) < load(best) {
                        best = r;
                    }
                }
                best
            }
            LbPolicy::PowerOfTwo => {
                let k = rng::key(key, K_LB);
                let a = st.endpoints[((k as u128 * n as u128) >> 64) as usize];
                let k2 = rng::mix64(k);
                let b = st.endpoints[((k2 as u128 * n as u128) >> 64) as usize];
                if load(b) < load(a) { b } else { a }
            }
        })
    }

    /// A job takes a worker slot and is processed for its sampled demand.
    fn start(&mut self, cx: &mut Traffic<'_>, job: JobId) {
        let now = cx.queue.now();
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        let r = j.replica as usize;
        let s = j.service as usize;
        let spec = &cx.scenario.spec.services[s];
        let rep = &mut cx.replicas[r];
        rep.busy += 1;
        j.started = true;
        let scale = rep.slowdown * rep.steal * spec.cpu / rep.cpu;
        j.demand_s = spec.service_time.sample_s(rng::key(j.key, K_SERVICE)) * scale;
        let w = &mut cx.monitor.win[s];
        w.started += 1.0;
        w.wait_s += now.saturating_sub(j.arrived).as_secs_f64();
        if rep.state != ReplicaState::Hung {
            cx.queue.push(
                now + SimTime::from_secs_f64(j.demand_s),
                Event::JobDone { job },
            );
        }
    }

    pub(crate) fn on_job_done(&mut self, cx: &mut Traffic<'_>, job: JobId) {
        let Some(j) = self.jobs.get(job) else {
            return;
        };
        let r = j.replica as usize;
        if cx.replicas[r].epoch != j.epoch {
            return;
        }
        let s = j.service as usize;
        cx.monitor.win[s].busy_s += j.demand_s;
        let st = &cx.services[s];
        let p_err =
            cx.scenario.spec.services[s].error_rate + st.extra_error_rate + st.attack_error_rate;
        if p_err > 0.0 && rng::unit(rng::key(j.key, K_ERROR)) < p_err {
            self.finish(cx, job, Outcome::Error);
            return;
        }
        let edges = &cx.scenario.out_edges[s];
        if edges.is_empty() {
            self.finish(cx, job, Outcome::Ok);
            return;
        }
        let total: u32 = edges.iter().map(|&e| cx.scenario.edges[e].fanout).sum();
        let parent_key = j.key;
        if let Some(j) = self.jobs.get_mut(job) {
            j.pending = total + 1;
        }
        let sc = cx.scenario;
        for &e in &sc.out_edges[s] {
            for f in 0..sc.edges[e].fanout {
                let key = rng::key(parent_key, (e as u64) << 32 | f as u64);
                let call = self.calls.insert(Call {
                    key,
                    parent: Some(job),
                    edge: e as u32,
                    attempt: 0,
                    arrived: SimTime::ZERO,
                });
                self.dispatch(cx, call);
            }
        }
        self.child_answered(cx, job, Outcome::Ok);
    }

    /// One of a job's downstream calls answered (or the job finished issuing them).
    fn child_answered(&mut self, cx: &mut Traffic<'_>, job: JobId, outcome: Outcome) {
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        if outcome != Outcome::Ok {
            j.child_failed = true;
        }
        j.pending -= 1;
        if j.pending == 0 {
            let o = if j.child_failed {
                Outcome::Error
            } else {
                Outcome::Ok
            };
            self.finish(cx, job, o);
        }
    }

    /// A job answers its caller and frees its slot for the next queued job.
    fn finish(&mut self, cx: &mut Traffic<'_>, job: JobId, outcome: Outcome) {
        let Some(j) = self.jobs.remove(job) else {
            return;
        };
        let now = cx.queue.now();
        let s = j.service as usize;
        let r = j.replica as usize;
        let w = &mut cx.monitor.win[s];
        let latency = now.saturating_sub(j.arrived);
        w.latency_s += latency.as_secs_f64();
        if outcome == Outcome::Ok {
            w.completed += 1.0;
        } else {
            w.failed += 1.0;
        }
        cx.monitor.record_latency(s, latency);
        let rep = &mut cx.replicas[r];
        rep.win_answered += 1.0;
        rep.win_latency_s += latency.as_secs_f64();
        if outcome != Outcome::Ok {
            rep.win_failed += 1.0;
        }
        if j.started {
            self.release_slot(cx, r);
        }
        self.attempt_done(cx, j.call, j.attempt, outcome);
    }

    fn release_slot(&mut self, cx: &mut Traffic<'_>, r: ReplicaId) {
        let conc = cx.scenario.spec.services[cx.replicas[r].service].concurrency;
        let rep = &mut cx.replicas[r];
        rep.busy = rep.busy.saturating_sub(1);
        while cx.replicas[r].busy < conc {
            let Some(next) = cx.replicas[r].queue.pop_front() else {
                break;
            };
            if self.jobs.get(next).is_some() {
                self.start(cx, next);
            }
        }
        let rep = &cx.replicas[r];
        if rep.state == ReplicaState::Terminating && rep.busy == 0 && rep.queue.is_empty() {
            cx.drained.push(r);
        }
    }

    /// An attempt ended; retry after a back-off or settle the call.
    fn attempt_done(&mut self, cx: &mut Traffic<'_>, call: CallId, attempt: u32, outcome: Outcome) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        if c.attempt != attempt {
            return; // an abandoned attempt answering late
        }
        let edge = &cx.scenario.edges[c.edge as usize];
        if outcome != Outcome::Ok && c.attempt < edge.retries {
            c.attempt += 1;
            let cap = edge.backoff_max_s;
            let base = (edge.backoff_s * f64::powi(2.0, c.attempt as i32 - 1)).min(cap);
            let wait = base * rng::unit(rng::key(c.key, K_JITTER << 32 | c.attempt as u64));
            let at = cx.queue.now() + SimTime::from_secs_f64(wait);
            cx.queue.push(at, Event::Retry { call });
            return;
        }
        self.settle(cx, call, outcome);
    }

    fn settle(&mut self, cx: &mut Traffic<'_>, call: CallId, outcome: Outcome) {
        let Some(c) = self.calls.remove(call) else {
            return;
        };
        match c.parent {
            Some(job) => self.child_answered(cx, job, outcome),
            None => {
                self.roots -= 1;
                let k = &mut cx.counters;
                match outcome {
                    Outcome::Ok => {
                        k.completed += 1.0;
                        k.latency_s += cx.queue.now().saturating_sub(c.arrived).as_secs_f64();
                    }
                    Outcome::Error => k.failed += 1.0,
                    Outcome::Timeout => k.timed_out += 1.0,
                }
            }
        }
    }

    pub(crate) fn on_timeout_check(&mut self, cx: &mut Traffic<'_>, edge: usize) {
        let now = cx.queue.now();
        while let Some(front) = self.timeouts[edge].front() {
            if !self.attempt_outstanding(front.call, front.attempt) {
                self.timeouts[edge].pop_front();
                continue;
            }
            if front.deadline > now {
                break;
            }
            let (call, attempt) = (front.call, front.attempt);
            self.timeouts[edge].pop_front();
            self.attempt_done(cx, call, attempt, Outcome::Timeout);
        }
        match self.timeouts[edge].front() {
            Some(front) => {
                let at = front.deadline;
                cx.queue.push(at, Event::TimeoutCheck { edge: edge as u32 });
            }
            None => self.check_pending[edge] = false,
        }
    }

    /// An attempt is outstanding while its call is still waiting on it. A call whose
    /// attempt already failed is waiting on a retry instead, with `attempt` moved on.
    fn attempt_outstanding(&self, call: CallId, attempt: u32) -> bool {
        self.calls.get(call).is_some_and(|c| c.attempt == attempt)
    }

    /// Fails every job held by a replica (crash, restart, removal).
    pub(crate) fn fail_jobs_at(&mut self, cx: &mut Traffic<'_>, r: ReplicaId) {
        let rep = &mut cx.replicas[r];
        rep.busy = 0;
        rep.queue.clear();
        let held: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.replica as usize == r)
            .map(|(id, _)| id)
            .collect();
        for job in held {
            if let Some(j) = self.jobs.remove(job) {
                let w = &mut cx.monitor.win[j.service as usize];
                w.failed += 1.0;
                let rep = &mut cx.replicas[r];
                rep.win_answered += 1.0;
                rep.win_failed += 1.0;
                self.attempt_done(cx, j.call, j.attempt, Outcome::Error);
            }
        }
    }
}
