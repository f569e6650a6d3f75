//! The events of the simulation's one loop: traffic (arrivals, job completions,
//! timeouts, retries), the control plane (boots, repairs, terminations, faults,
//! roll backs, resizes) and the periodic scrape, probe and fluid tick.

use crate::slab::{CallId, JobId};

/// Every kind of event. Kept small (16 bytes) because the heap moves it around.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Arrival { workload: u32 },
    JobDone { job: JobId },
    TimeoutCheck { edge: u32 },
    Retry { call: CallId },
    ReplicaReady { replica: u32, epoch: u32 },
    HostReady { host: u32 },
    HostRepair { host: u32, epoch: u32 },
    TerminateDone { replica: u32, epoch: u32 },
    ScheduledFault { index: u32 },
    SampledFault { process: u32 },
    FaultEnd { record: u32 },
    Oom { replica: u32, epoch: u32 },
    RollbackDone { service: u32, deploy: u32 },
    ResizeDone { service: u32, resize: u32 },
    MemoryResizeDone { service: u32, resize: u32 },
    Scrape,
    Probe,
    FluidTick,
    AutoscalerScan,
    Attack,
    Alert { replica: u32 },
    AnalyseDone { replica: u32, token: u32 },
    RollingRestart { replica: u32, token: u32 },
    SpotNotice { host: u32 },
    SpotReclaim { host: u32 },
}

impl Event {
    /// (kind, main id) folded into the event-log hash.
    pub(crate) fn fingerprint(&self) -> (u64, u64) {
        match *self {
            Event::Arrival { workload } => (1, workload as u64),
            Event::JobDone { job } => (2, job.raw()),
            Event::TimeoutCheck { edge } => (3, edge as u64),
            Event::Retry { call } => (4, call.raw()),
            Event::ReplicaReady { replica, epoch } => (5, (replica as u64) << 32 | epoch as u64),
            Event::HostReady { host } => (6, host as u64),
            Event::HostRepair { host, epoch } => (7, (host as u64) << 32 | epoch as u64),
            Event::TerminateDone { replica, epoch } => (8, (replica as u64) << 32 | epoch as u64),
            Event::ScheduledFault { index } => (9, index as u64),
            Event::SampledFault { process } => (10, process as u64),
            Event::FaultEnd { record } => (11, record as u64),
            Event::Oom { replica, epoch } => (12, (replica as u64) << 32 | epoch as u64),
            Event::RollbackDone { service, deploy } => (13, (service as u64) << 32 | deploy as u64),
            Event::ResizeDone { service, resize } => (14, (service as u64) << 32 | resize as u64),
            Event::Scrape => (15, 0),
            Event::Probe => (16, 0),
            Event::FluidTick => (17, 0),
            Event::AutoscalerScan => (18, 0),
            Event::Attack => (19, 0),
            Event::Alert { replica } => (20, replica as u64),
            Event::AnalyseDone { replica, token } => (21, (replica as u64) << 32 | token as u64),
            Event::RollingRestart { replica, token } => (22, (replica as u64) << 32 | token as u64),
            Event::SpotNotice { host } => (23, host as u64),
            Event::SpotReclaim { host } => (24, host as u64),
            Event::MemoryResizeDone { service, resize } => {
                (25, (service as u64) << 32 | resize as u64)
            }
        }
    }
}
