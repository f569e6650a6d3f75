//! Actions take the time they take; faults do what they say; refusals change nothing.

use crate::sim;
use hale_sim::{
    Action, ActionError, FaultSubject, HostState, ReplicaState, Scenario, SimTime, Simulation,
};

/// A small lab: `web` (2 replicas) calls `store` (2 replicas); two 4-core hosts.
fn lab(faults: &str, extra: &str) -> Simulation {
    let text = format!(
        r#"
name = "lab"
zones = ["z0", "z1"]
[simulation]
scrape_interval_s = 10
probe_period_s = 5
probe_failure_threshold = 3
[cluster]
provisioning_time_s = 60
max_hosts = 4
provision_type = "small"
[[host_types]]
name = "small"
cpu = 4
memory_mib = 8192
price_per_hour = 0.36
[[hosts]]
zone = "z0"
type = "small"
count = 2
[[services]]
name = "web"
replicas = 2
cpu = 1
memory_mib = 512
memory_limit_mib = 1024
concurrency = 8
service_time = {{ dist = "exponential", mean_ms = 2 }}
boot_time_s = 20
restart_time_s = 5
rollback_time_s = 30
calls = [{{ to = "store", timeout_ms = 100, retries = 2, backoff_ms = 10 }}]
[[services]]
name = "store"
replicas = 2
cpu = 1
memory_mib = 512
concurrency = 8
service_time = {{ dist = "exponential", mean_ms = 3 }}
restart_time_s = 5
rollback_time_s = 30
[[workload]]
service = "web"
rate = {{ kind = "constant", rps = 200 }}
timeout_ms = 1000
{faults}
{extra}
"#
    );
    sim(Scenario::from_toml_str(&text, "lab.toml").unwrap(), 3)
}

fn at(s: &mut Simulation, secs: f64) {
    s.run_until(SimTime::from_secs_f64(secs));
    s.check_invariants().unwrap();
}

fn states(s: &Simulation, service: usize) -> Vec<ReplicaState> {
    s.services()[service]
        .replicas
        .iter()
        .map(|&r| s.replicas()[r].state)
        .collect()
}

#[test]
fn scale_out_boots_then_serves_and_provisions_when_full() {
    let mut s = lab("", "");
    at(&mut s, 10.0);
    // 2 hosts × 4 cores hold 8 one-core replicas; 4 exist, so 4 more fit and 2 wait.
    s.apply(&Action::Scale {
        service: 0,
        replicas: 8,
    })
    .unwrap();
    let st = states(&s, 0);
    assert_eq!(
        st.iter().filter(|&&x| x == ReplicaState::Booting).count(),
        4
    );
    assert_eq!(
        st.iter().filter(|&&x| x == ReplicaState::Pending).count(),
        2
    );
    assert_eq!(
        s.hosts()
            .iter()
            .filter(|h| h.state == HostState::Provisioning)
            .count(),
        1
    );
    at(&mut s, 29.9);
    assert_eq!(
        s.services()[0].endpoints.len(),
        2,
        "booting replicas serve nothing"
    );
    at(&mut s, 30.0);
    assert_eq!(s.services()[0].endpoints.len(), 6, "boot time is 20 s");
    at(&mut s, 70.0); // the new host is ready at 70 s, its replicas at 90 s
    assert_eq!(s.hosts()[2].state, HostState::Ready);
    at(&mut s, 90.0);
    assert_eq!(s.services()[0].endpoints.len(), 8);
    // Scale in: newest go first, and capacity returns to the hosts.
    s.apply(&Action::Scale {
        service: 0,
        replicas: 1,
    })
    .unwrap();
    at(&mut s, 200.0);
    assert_eq!(states(&s, 0), vec![ReplicaState::Ready]);
    let allocated: f64 = s.hosts().iter().map(|h| h.cpu_allocated).sum();
    assert!(
        (allocated - 3.0).abs() < 1e-9,
        "1 web + 2 store cores, got {allocated}"
    );
}

#[test]
fn crash_then_restart_resolves_the_fault() {
    let mut s = lab(
        "[[faults.schedule]]\nat_s = 50\ntarget = \"store\"\nfault = { kind = \"crash\" }",
        "",
    );
    at(&mut s, 50.0);
    let f = s.faults()[0].clone();
    let FaultSubject::Replica(r) = f.subject else {
        panic!("{f:?}")
    };
    assert_eq!(s.replicas()[r].state, ReplicaState::Crashed);
    assert!(!s.replicas()[r].in_lb);
    s.apply(&Action::Restart { replica: r }).unwrap();
    assert_eq!(s.replicas()[r].state, ReplicaState::Booting);
    at(&mut s, 54.9);
    assert!(s.faults()[0].resolved_at.is_none());
    at(&mut s, 55.0);
    assert_eq!(s.replicas()[r].state, ReplicaState::Ready);
    assert_eq!(
        s.faults()[0].time_to_recovery(),
        Some(SimTime::from_secs(5))
    );
    assert_eq!(s.replicas()[r].restarts, 1);
}

#[test]
fn hung_replica_leaves_the_load_balancer_after_failed_probes() {
    let mut s = lab(
        "[[faults.schedule]]\nat_s = 12\ntarget = \"store\"\nfault = { kind = \"hang\" }",
        "",
    );
    at(&mut s, 12.0);
    let FaultSubject::Replica(r) = s.faults()[0].subject else {
        panic!()
    };
    assert_eq!(s.replicas()[r].state, ReplicaState::Hung);
    // Probes at 15, 20, 25 s fail; the third removes it.
    at(&mut s, 24.9);
    assert!(
        s.replicas()[r].in_lb,
        "still routed to before the threshold"
    );
    at(&mut s, 25.0);
    assert!(!s.replicas()[r].in_lb);
    assert_eq!(s.replicas()[r].probe_failures, 3);
    // While it was routed to, attempts on it timed out (100 ms) and held web's slots:
    // the client saw failures. Once it is out, everything completes again.
    let hurt = s.requests();
    assert!(hurt.failed + hurt.timed_out > 0.0, "{hurt:?}");
    at(&mut s, 30.0);
    let before = s.requests();
    at(&mut s, 60.0);
    let after = s.requests();
    assert_eq!(
        after.failed + after.timed_out,
        before.failed + before.timed_out,
        "{after:?}"
    );
    assert!(after.completed - before.completed > 0.99 * (after.arrived - before.arrived));
}

#[test]
fn memory_leak_ends_in_an_oom_kill_when_the_limit_is_reached() {
    // 512 MiB in use, limit 1024 MiB, leaking 8 MiB/s: OOM 64 s after the leak.
    let mut s = lab(
        "[[faults.schedule]]\nat_s = 10\ntarget = \"web\"\nfault = { kind = \"memory-leak\", mib_per_s = 8 }",
        "",
    );
    at(&mut s, 10.0);
    let FaultSubject::Replica(r) = s.faults()[0].subject else {
        panic!()
    };
    assert_eq!(s.replicas()[r].state, ReplicaState::Degraded);
    at(&mut s, 73.9);
    assert_eq!(s.replicas()[r].state, ReplicaState::Degraded);
    at(&mut s, 74.0);
    assert_eq!(s.replicas()[r].state, ReplicaState::Crashed);
    assert_eq!(s.replicas()[r].restarts, 1);
}

#[test]
fn host_failure_crashes_its_replicas_until_repaired() {
    let mut s = lab(
        "[[faults.schedule]]\nat_s = 10\ntarget = \"host-0\"\nfault = { kind = \"host-failure\", repair_s = 100 }",
        "",
    );
    at(&mut s, 10.0);
    assert_eq!(s.hosts()[0].state, HostState::Failed);
    let on_h0: Vec<usize> = (0..s.replicas().len())
        .filter(|&r| s.replicas()[r].host == Some(0))
        .collect();
    assert!(!on_h0.is_empty());
    for &r in &on_h0 {
        assert_eq!(s.replicas()[r].state, ReplicaState::Crashed);
        let err = s.apply(&Action::Restart { replica: r }).unwrap_err();
        assert!(
            matches!(err, ActionError::HostState { host: 0, .. }),
            "{err}"
        );
    }
    // A reschedule moves one to the other host.
    s.apply(&Action::Reschedule { replica: on_h0[0] }).unwrap();
    let moved = *s.services()[s.replicas()[on_h0[0]].service]
        .replicas
        .last()
        .unwrap();
    assert_eq!(s.replicas()[moved].host, Some(1));
    at(&mut s, 110.0);
    assert_eq!(s.hosts()[0].state, HostState::Ready);
    assert_eq!(
        s.faults()[0].time_to_recovery(),
        Some(SimTime::from_secs(100))
    );
}

#[test]
fn bad_deploy_raises_errors_until_rolled_back() {
    let mut s = lab(
        "[[faults.schedule]]\nat_s = 10\ntarget = \"store\"\nfault = { kind = \"bad-deploy\", error_rate = 0.5 }",
        "",
    );
    assert_eq!(
        s.apply(&Action::Rollback { service: 1 }),
        Err(ActionError::NothingToRollBack(1))
    );
    at(&mut s, 60.0);
    let seen = s.observe().unwrap().services[1].error_rate;
    assert!((seen - 0.5).abs() < 0.05, "store error rate {seen}");
    s.apply(&Action::Rollback { service: 1 }).unwrap();
    at(&mut s, 89.0);
    assert!(s.services()[1].bad_deploy);
    at(&mut s, 90.0);
    assert!(!s.services()[1].bad_deploy);
    at(&mut s, 110.0);
    assert_eq!(s.observe().unwrap().services[1].error_rate, 0.0);
    assert_eq!(
        s.faults()[0].time_to_recovery(),
        Some(SimTime::from_secs(80))
    );
}

#[test]
fn dependency_failure_cascades_through_retries() {
    let mut s = lab(
        "[[faults.schedule]]\nat_s = 10\ntarget = \"store\"\nfault = { kind = \"dependency-failure\", duration_s = 20 }",
        "",
    );
    at(&mut s, 10.0);
    let before = s.service_totals(1).arrivals;
    at(&mut s, 20.0);
    let during = s.service_totals(1).arrivals - before;
    // 200 requests/s × 10 s, each tried 3 times (2 retries): ~6000 attempts at store.
    assert!((during - 6000.0).abs() < 400.0, "{during}");
    let web = s.observe().unwrap().services[0].error_rate;
    assert!(web > 0.99, "web fails when its dependency does: {web}");
    at(&mut s, 45.0);
    assert!(!s.services()[1].down);
    assert_eq!(s.observe().unwrap().services[0].error_rate, 0.0);
}

#[test]
fn per_replica_metrics_single_out_a_slow_replica() {
    let mut s = lab(
        "[[faults.schedule]]\nat_s = 5\ntarget = \"store\"\nfault = { kind = \"slow\", factor = 4 }",
        "",
    );
    at(&mut s, 30.0);
    let FaultSubject::Replica(slow) = s.faults()[0].subject else {
        panic!()
    };
    let snap = s.observe().unwrap();
    let store: Vec<_> = snap.replicas.iter().filter(|m| m.service == 1).collect();
    assert_eq!(store.len(), 2);
    let (bad, good): (Vec<&hale_sim::ReplicaMetrics>, Vec<_>) =
        store.into_iter().partition(|m| m.replica == slow);
    // Service time 3 ms mean, 4× slower: about 12 ms against 3 ms (plus queueing).
    assert!(
        bad[0].mean_latency_ms > 2.5 * good[0].mean_latency_ms,
        "{bad:?} {good:?}"
    );
    assert_eq!(bad[0].error_rate, 0.0);
}

#[test]
fn retry_storm_amplifies_load_on_a_slow_dependency() {
    // Store down to one replica, then 40× slower: 120 ms mean > the 100 ms timeout,
    // so most attempts time out and web retries twice.
    let slow = "[[faults.schedule]]\nat_s = 10\ntarget = \"store\"\nfault = { kind = \"slow\", factor = 40 }";
    let mut s = lab(slow, "");
    s.apply(&Action::Scale {
        service: 1,
        replicas: 1,
    })
    .unwrap();
    at(&mut s, 10.0);
    assert_eq!(s.services()[1].replicas.len(), 1);
    let (a0, w0) = (s.service_totals(1).arrivals, s.service_totals(0).started);
    at(&mut s, 20.0);
    // Each web job that gets a slot makes one call of up to 3 attempts.
    let ratio = (s.service_totals(1).arrivals - a0) / (s.service_totals(0).started - w0);
    assert!(ratio > 2.5, "attempts at store per web job: {ratio}");
    // Web holds its slots while it waits, so its queue fills: the storm spreads up.
    assert!(s.observe().unwrap().services[0].queued > 100.0);
}

#[test]
fn invalid_actions_are_refused_and_change_nothing() {
    let mut s = lab("", "");
    at(&mut s, 5.0);
    let hash = s.event_log_hash();
    let replicas = s.replicas().len();
    let refused = [
        (
            Action::Scale {
                service: 9,
                replicas: 1,
            },
            "no service 9",
        ),
        (Action::Restart { replica: 99 }, "no replica 99"),
        (Action::Drain { host: 7 }, "no host 7"),
        (
            Action::Resize {
                service: 0,
                cpu: -1.0,
            },
            "cpu = -1 is out of range",
        ),
        (
            Action::Resize {
                service: 0,
                cpu: 64.0,
            },
            "cpu = 64 is out of range",
        ),
        (Action::RemoveHost { host: 0 }, "still runs"),
        (
            Action::AddHost {
                host_type: 3,
                zone: 0,
            },
            "no host type 3",
        ),
        (
            Action::Scale {
                service: 0,
                replicas: u32::MAX,
            },
            "out of range",
        ),
    ];
    for (action, text) in refused {
        let err = s.apply(&action).unwrap_err().to_string();
        assert!(err.contains(text), "{action:?}: {err}");
    }
    assert_eq!(s.replicas().len(), replicas);
    at(&mut s, 10.0);
    let mut t = lab("", "");
    at(&mut t, 10.0);
    assert_eq!(
        t.event_log_hash(),
        s.event_log_hash(),
        "refusals left a trace"
    );
    let _ = hash;
}

/// A replica created while a resize is in flight gets the new size at once (as the
/// VPA's admission controller sizes a new pod); the running ones change after the
/// resize time.
#[test]
fn new_replicas_take_the_size_a_resize_heads_for() {
    let mut s = lab("", "");
    at(&mut s, 5.0);
    let before = s.services()[0].replicas.len();
    s.apply(&Action::Resize {
        service: 0,
        cpu: 0.5,
    })
    .unwrap();
    s.apply(&Action::Scale {
        service: 0,
        replicas: before as u32 + 1,
    })
    .unwrap();
    let new = *s.services()[0].replicas.last().unwrap();
    assert_eq!(s.replicas()[new].cpu, 0.5);
    let old = s.services()[0].replicas[0];
    assert_eq!(s.replicas()[old].cpu, 1.0);
    assert_eq!(s.services()[0].target_cpu(), 0.5);
    at(&mut s, 200.0);
    assert!(
        s.services()[0]
            .replicas
            .iter()
            .all(|&r| s.replicas()[r].cpu == 0.5)
    );
}

#[test]
fn cordon_drain_resize_and_hosts() {
    let mut s = lab("", "");
    at(&mut s, 5.0);
    s.apply(&Action::Drain { host: 0 }).unwrap();
    at(&mut s, 60.0);
    assert!(s.hosts()[0].cordoned);
    assert_eq!(s.hosts()[0].replicas, 0, "drained");
    assert!(s.services().iter().all(|st| st.endpoints.len() == 2));
    s.apply(&Action::RemoveHost { host: 0 }).unwrap();
    assert_eq!(s.hosts()[0].state, HostState::Removed);
    // Resize in place: 4 replicas of 1 core on host 1 (4 cores): growing web to 1.5
    // does not fit; shrinking does, after the resize time.
    assert!(matches!(
        s.apply(&Action::Resize {
            service: 0,
            cpu: 1.5
        }),
        Err(ActionError::NoRoom { .. })
    ));
    s.apply(&Action::Resize {
        service: 0,
        cpu: 0.5,
    })
    .unwrap();
    at(&mut s, 64.9);
    assert_eq!(s.hosts()[1].cpu_allocated, 4.0);
    at(&mut s, 65.0);
    assert_eq!(s.hosts()[1].cpu_allocated, 3.0);
    s.apply(&Action::AddHost {
        host_type: 0,
        zone: 1,
    })
    .unwrap();
    at(&mut s, 130.0);
    assert_eq!(s.hosts().last().unwrap().state, HostState::Ready);
    s.apply(&Action::Cordon { host: 1 }).unwrap();
    s.apply(&Action::Scale {
        service: 1,
        replicas: 3,
    })
    .unwrap();
    let new = *s.services()[1].replicas.last().unwrap();
    assert_eq!(
        s.replicas()[new].host,
        Some(s.hosts().len() - 1),
        "cordoned host skipped"
    );
}

#[test]
fn cost_accrues_per_host_second() {
    let mut s = lab("", "");
    at(&mut s, 3600.0);
    // Two hosts at 0.36 per hour for one hour.
    assert!((s.cost() - 0.72).abs() < 1e-9, "{}", s.cost());
}

#[test]
fn slo_violation_is_accounted_per_window() {
    let mut s = lab(
        "",
        "[[slos]]\nservice = \"web\"\npercentile = 99\nlatency_ms = 1\n",
    );
    at(&mut s, 100.0);
    // p99 of web (≥ 5 ms mean) is above 1 ms in every 10 s window.
    assert_eq!(s.slo_violation_s(), &[100.0]);
}

#[test]
fn resource_graph_links_everything() {
    let s = lab("", "");
    let g = s.resource_graph();
    // 2 zones + 2 hosts + 2 services + 4 replicas.
    assert_eq!(g.graph.node_count(), 10);
    // 2 contains + 4 runs + 4 owns + 1 calls.
    assert_eq!(g.graph.edge_count(), 11);
}

fn hosts_in(s: &Simulation, state: HostState) -> Vec<usize> {
    (0..s.hosts().len())
        .filter(|&h| s.hosts()[h].state == state)
        .collect()
}

fn ready(s: &Simulation, service: usize) -> usize {
    states(s, service)
        .iter()
        .filter(|&&x| x == ReplicaState::Ready)
        .count()
}

/// The cluster autoscaler finds both hosts unneeded (half their cores requested, under
/// a 0.6 threshold), waits `unneeded_time_s`, drains one (its replicas fit on the
/// other), releases it once empty, and keeps `min_hosts`: the bill halves.
#[test]
fn the_autoscaler_drains_and_releases_an_unneeded_host() {
    let run = |min_hosts: u32| {
        let mut s = lab(
            "",
            &format!(
                "[cluster.autoscaler]\nutilization_threshold = 0.6\nunneeded_time_s = 600\nmin_hosts = {min_hosts}\n"
            ),
        );
        at(&mut s, 605.0);
        assert_eq!(hosts_in(&s, HostState::Ready), vec![0, 1], "not yet");
        for t in (610..=800).step_by(10) {
            at(&mut s, t as f64);
        }
        s
    };
    let mut s = run(1);
    assert_eq!(hosts_in(&s, HostState::Removed), vec![0]);
    assert_eq!(s.hosts()[1].replicas, 4);
    assert!(!s.hosts()[0].draining && s.hosts()[0].billed_since.is_none());
    assert_eq!((ready(&s, 0), ready(&s, 1)), (2, 2), "the replicas moved");
    let before = s.cost();
    at(&mut s, 1400.0);
    let hourly = (s.cost() - before) / (600.0 / 3600.0);
    assert!((hourly - 0.36).abs() < 1e-9, "one host billed: {hourly}");
    assert_eq!(hosts_in(&s, HostState::Removed), vec![0], "min_hosts = 1");

    let s = run(2);
    assert!(hosts_in(&s, HostState::Removed).is_empty(), "min_hosts = 2");
}

/// No release within `delay_after_add_s` of a scale-up, and a host whose replicas fit
/// nowhere else stays.
#[test]
fn the_autoscaler_waits_after_a_scale_up_and_keeps_hosts_whose_replicas_fit_nowhere() {
    let autoscaler = "[cluster.autoscaler]\nunneeded_time_s = 60\ndelay_after_add_s = 600\n";
    let scale = |s: &mut Simulation, replicas: u32| {
        s.apply(&Action::Scale {
            service: 0,
            replicas,
        })
        .unwrap()
    };
    // A third host provisioned at 5 s for a replica that no longer needs it: empty
    // from when it is ready (65 s), unneeded long enough from 125 s, released only
    // after the delay, at the first scan from 605 s.
    let mut s = lab("", autoscaler);
    at(&mut s, 5.0);
    // 2 × 4 cores hold 8 one-core replicas: the ninth provisions a third host.
    scale(&mut s, 7);
    at(&mut s, 6.0);
    scale(&mut s, 3);
    at(&mut s, 600.0);
    assert_eq!(hosts_in(&s, HostState::Ready), vec![0, 1, 2]);
    assert_eq!(s.hosts()[2].replicas, 0);
    at(&mut s, 620.0);
    assert_eq!(hosts_in(&s, HostState::Removed), vec![2]);

    let mut s = lab("", autoscaler);
    at(&mut s, 5.0);
    scale(&mut s, 7);
    at(&mut s, 700.0);
    assert_eq!(s.hosts()[2].replicas, 1);
    // The third host is a quarter used, but its replica fits nowhere else.
    assert_eq!(hosts_in(&s, HostState::Ready), vec![0, 1, 2]);
    // With room made, it goes: within a scan, a drain and a grace period.
    scale(&mut s, 3);
    for t in (710..=900).step_by(10) {
        at(&mut s, t as f64);
    }
    assert_eq!(hosts_in(&s, HostState::Removed), vec![2]);
    assert_eq!(ready(&s, 0) + ready(&s, 1), 5);
}
