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

use crate::model::{ReplicaId, ReplicaState};
use crate::rng::{self, StreamId};
use crate::scenario::{LbPolicy, Scenario};
use crate::sim::{Event, Simulation};
use crate::slab::{CallId, JobId, Slab};
use crate::time::SimTime;
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

impl Simulation {
    pub(crate) fn schedule_next_arrival(&mut self, w: usize) {
        if let Some(t) = self.arrivals[w].next() {
            self.next_arrival[w] = self.queue.reserve(SimTime::from_secs_f64(t));
        }
    }

    pub(crate) fn on_arrival(&mut self, w: usize) {
        let n = self.arrivals[w].count;
        let key = rng::key(self.requests.workload_keys[w], n);
        let now = self.now();
        let call = self.requests.calls.insert(Call {
            key,
            parent: None,
            edge: w as u32,
            attempt: 0,
            arrived: now,
        });
        self.requests.roots += 1;
        self.counters.arrived += 1.0;
        self.dispatch(call);
        self.schedule_next_arrival(w);
    }

    /// Sends the current attempt of a call to a replica of its service.
    pub(crate) fn dispatch(&mut self, call: CallId) {
        let Some(c) = self.requests.calls.get(call) else {
            return;
        };
        let (edge, attempt) = (c.edge as usize, c.attempt);
        let job_key = rng::key(c.key, attempt as u64);
        let s = self.scenario.edges[edge].to;
        let now = self.now();
        self.monitor.win[s].arrivals += 1.0;
        if self.services[s].down {
            self.monitor.win[s].failed += 1.0;
            self.attempt_done(call, attempt, Outcome::Error);
            return;
        }
        let Some(r) = self.pick_replica(s, job_key) else {
            self.monitor.win[s].rejected += 1.0;
            self.monitor.win[s].failed += 1.0;
            self.attempt_done(call, attempt, Outcome::Error);
            return;
        };
        let spec = &self.scenario.spec.services[s];
        let rep = &self.replicas[r];
        let free = rep.busy < spec.concurrency;
        if !free && rep.queue.len() >= spec.queue_capacity as usize {
            self.monitor.win[s].rejected += 1.0;
            self.monitor.win[s].failed += 1.0;
            self.attempt_done(call, attempt, Outcome::Error);
            return;
        }
        let job = self.requests.jobs.insert(Job {
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
        let deadline = now + self.scenario.edges[edge].timeout;
        self.requests.timeouts[edge].push_back(TimeoutEntry {
            deadline,
            call,
            attempt,
        });
        if !self.requests.check_pending[edge] {
            self.requests.check_pending[edge] = true;
            self.queue
                .push(deadline, Event::TimeoutCheck { edge: edge as u32 });
        }
        if free {
            self.start(job);
        } else {
            self.monitor.win[s].waited += 1.0;
            self.replicas[r].queue.push_back(job);
        }
    }

    fn pick_replica(&mut self, s: usize, key: u64) -> Option<ReplicaId> {
        let st = &mut self.services[s];
        let n = st.endpoints.len();
        if n == 0 {
            return None;
        }
        let load = |r: ReplicaId| self.replicas[r].busy as usize + self.replicas[r].queue.len();
        Some(match self.scenario.spec.services[s].load_balancer {
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
    fn start(&mut self, job: JobId) {
        let now = self.now();
        let Some(j) = self.requests.jobs.get_mut(job) else {
            return;
        };
        let r = j.replica as usize;
        let s = j.service as usize;
        let spec = &self.scenario.spec.services[s];
        let rep = &mut self.replicas[r];
        rep.busy += 1;
        j.started = true;
        let scale = rep.slowdown * spec.cpu / rep.cpu;
        j.demand_s = spec.service_time.sample_s(rng::key(j.key, K_SERVICE)) * scale;
        let w = &mut self.monitor.win[s];
        w.started += 1.0;
        w.wait_s += now.saturating_sub(j.arrived).as_secs_f64();
        if rep.state != ReplicaState::Hung {
            self.queue.push(
                now + SimTime::from_secs_f64(j.demand_s),
                Event::JobDone { job },
            );
        }
    }

    pub(crate) fn on_job_done(&mut self, job: JobId) {
        let Some(j) = self.requests.jobs.get(job) else {
            return;
        };
        let r = j.replica as usize;
        if self.replicas[r].epoch != j.epoch {
            return;
        }
        let s = j.service as usize;
        self.monitor.win[s].busy_s += j.demand_s;
        let p_err = self.scenario.spec.services[s].error_rate + self.services[s].extra_error_rate;
        if p_err > 0.0 && rng::unit(rng::key(j.key, K_ERROR)) < p_err {
            self.finish(job, Outcome::Error);
            return;
        }
        let edges = &self.scenario.out_edges[s];
        if edges.is_empty() {
            self.finish(job, Outcome::Ok);
            return;
        }
        let total: u32 = edges.iter().map(|&e| self.scenario.edges[e].fanout).sum();
        let parent_key = j.key;
        if let Some(j) = self.requests.jobs.get_mut(job) {
            j.pending = total + 1;
        }
        let sc = self.scenario.clone();
        for &e in &sc.out_edges[s] {
            for f in 0..sc.edges[e].fanout {
                let key = rng::key(parent_key, (e as u64) << 32 | f as u64);
                let call = self.requests.calls.insert(Call {
                    key,
                    parent: Some(job),
                    edge: e as u32,
                    attempt: 0,
                    arrived: SimTime::ZERO,
                });
                self.dispatch(call);
            }
        }
        self.child_answered(job, Outcome::Ok);
    }

    /// One of a job's downstream calls answered (or the job finished issuing them).
    fn child_answered(&mut self, job: JobId, outcome: Outcome) {
        let Some(j) = self.requests.jobs.get_mut(job) else {
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
            self.finish(job, o);
        }
    }

    /// A job answers its caller and frees its slot for the next queued job.
    fn finish(&mut self, job: JobId, outcome: Outcome) {
        let Some(j) = self.requests.jobs.remove(job) else {
            return;
        };
        let now = self.now();
        let s = j.service as usize;
        let r = j.replica as usize;
        let w = &mut self.monitor.win[s];
        let latency = now.saturating_sub(j.arrived);
        w.latency_s += latency.as_secs_f64();
        if outcome == Outcome::Ok {
            w.completed += 1.0;
        } else {
            w.failed += 1.0;
        }
        self.monitor.record_latency(s, latency);
        let rep = &mut self.replicas[r];
        rep.win_answered += 1.0;
        rep.win_latency_s += latency.as_secs_f64();
        if outcome != Outcome::Ok {
            rep.win_failed += 1.0;
        }
        if j.started {
            self.release_slot(r);
        }
        self.attempt_done(j.call, j.attempt, outcome);
    }

    fn release_slot(&mut self, r: ReplicaId) {
        let conc = self.scenario.spec.services[self.replicas[r].service].concurrency;
        let rep = &mut self.replicas[r];
        rep.busy = rep.busy.saturating_sub(1);
        while self.replicas[r].busy < conc {
            let Some(next) = self.replicas[r].queue.pop_front() else {
                break;
            };
            if self.requests.jobs.get(next).is_some() {
                self.start(next);
            }
        }
        let rep = &self.replicas[r];
        if rep.state == ReplicaState::Terminating && rep.busy == 0 && rep.queue.is_empty() {
            self.finalize(r);
        }
    }

    /// An attempt ended; retry after a back-off or settle the call.
    fn attempt_done(&mut self, call: CallId, attempt: u32, outcome: Outcome) {
        let Some(c) = self.requests.calls.get_mut(call) else {
            return;
        };
        if c.attempt != attempt {
            return; // an abandoned attempt answering late
        }
        let edge = &self.scenario.edges[c.edge as usize];
        if outcome != Outcome::Ok && c.attempt < edge.retries {
            c.attempt += 1;
            let cap = edge.backoff_max_s;
            let base = (edge.backoff_s * f64::powi(2.0, c.attempt as i32 - 1)).min(cap);
            let wait = base * rng::unit(rng::key(c.key, K_JITTER << 32 | c.attempt as u64));
            let at = self.now() + SimTime::from_secs_f64(wait);
            self.queue.push(at, Event::Retry { call });
            return;
        }
        self.settle(call, outcome);
    }

    fn settle(&mut self, call: CallId, outcome: Outcome) {
        let Some(c) = self.requests.calls.remove(call) else {
            return;
        };
        match c.parent {
            Some(job) => self.child_answered(job, outcome),
            None => {
                self.requests.roots -= 1;
                let k = &mut self.counters;
                match outcome {
                    Outcome::Ok => {
                        k.completed += 1.0;
                        k.latency_s += self.queue.now().saturating_sub(c.arrived).as_secs_f64();
                    }
                    Outcome::Error => k.failed += 1.0,
                    Outcome::Timeout => k.timed_out += 1.0,
                }
            }
        }
    }

    pub(crate) fn on_timeout_check(&mut self, edge: usize) {
        let now = self.now();
        while let Some(front) = self.requests.timeouts[edge].front() {
            if !self.attempt_outstanding(front.call, front.attempt) {
                self.requests.timeouts[edge].pop_front();
                continue;
            }
            if front.deadline > now {
                break;
            }
            let (call, attempt) = (front.call, front.attempt);
            self.requests.timeouts[edge].pop_front();
            self.attempt_done(call, attempt, Outcome::Timeout);
        }
        match self.requests.timeouts[edge].front() {
            Some(front) => {
                let at = front.deadline;
                self.queue
                    .push(at, Event::TimeoutCheck { edge: edge as u32 });
            }
            None => self.requests.check_pending[edge] = false,
        }
    }

    /// An attempt is outstanding while its call is still waiting on it. A call whose
    /// attempt already failed is waiting on a retry instead, with `attempt` moved on.
    fn attempt_outstanding(&self, call: CallId, attempt: u32) -> bool {
        self.requests
            .calls
            .get(call)
            .is_some_and(|c| c.attempt == attempt)
    }

    /// Fails every job held by a replica (crash, restart, removal).
    pub(crate) fn fail_jobs_at(&mut self, r: ReplicaId) {
        let rep = &mut self.replicas[r];
        rep.busy = 0;
        rep.queue.clear();
        let held: Vec<JobId> = self
            .requests
            .jobs
            .iter()
            .filter(|(_, j)| j.replica as usize == r)
            .map(|(id, _)| id)
            .collect();
        for job in held {
            if let Some(j) = self.requests.jobs.remove(job) {
                let w = &mut self.monitor.win[j.service as usize];
                w.failed += 1.0;
                let rep = &mut self.replicas[r];
                rep.win_answered += 1.0;
                rep.win_failed += 1.0;
                self.attempt_done(j.call, j.attempt, Outcome::Error);
            }
        }
    }
}
