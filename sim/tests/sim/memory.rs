//! Memory right-sizing: requests pack hosts, working sets over limits are OOM-killed,
//! and overcommitted hosts kill the replica most over its request.

use crate::sim;
use hale_sim::{Action, ActionError, ReplicaState, Scenario, SimTime, Simulation};

/// One service `api` (2 replicas, 1 GiB requested, limit 2 GiB, `working_set` used) on
/// `hosts` hosts of 16 cores and 4 GiB.
fn lab(working_set: f64, hosts: u32) -> Simulation {
    let text = format!(
        r#"
name = "memory-lab"
zones = ["z"]
[simulation]
scrape_interval_s = 10
probe_period_s = 5
[cluster]
provisioning_time_s = 60
max_hosts = 4
[[host_types]]
name = "h"
cpu = 16
memory_mib = 4096
price_per_hour = 1.0
[[hosts]]
zone = "z"
type = "h"
count = {hosts}
[[services]]
name = "api"
replicas = 2
cpu = 0.5
memory_mib = 1024
memory_limit_mib = 2048
working_set_mib = {working_set}
concurrency = 8
service_time = {{ dist = "exponential", mean_ms = 2 }}
boot_time_s = 10
restart_time_s = 5
resize_time_s = 5
[[workload]]
service = "api"
rate = {{ kind = "constant", rps = 100 }}
timeout_ms = 1000
"#
    );
    sim(
        Scenario::from_toml_str(&text, "memory-lab.toml").unwrap(),
        7,
    )
}

fn at(s: &mut Simulation, secs: f64) {
    s.run_until(SimTime::from_secs_f64(secs));
    s.check_invariants().unwrap();
}

fn replicas_in(s: &Simulation, state: ReplicaState) -> usize {
    s.services()[0]
        .replicas
        .iter()
        .filter(|&&r| s.replicas()[r].state == state)
        .count()
}

#[test]
fn a_smaller_request_above_the_working_set_packs_more_replicas_without_kills() {
    let mut s = lab(300.0, 1);
    at(&mut s, 20.0);
    assert_eq!(s.hosts()[0].memory_allocated, 2048.0);
    // At 1 GiB a 4 GiB host holds four replicas; at 512 MiB, eight.
    s.apply(&Action::ResizeMemory {
        service: 0,
        memory_mib: 512.0,
    })
    .unwrap();
    assert_eq!(s.services()[0].target_memory(), 512.0);
    at(&mut s, 30.0);
    assert_eq!(s.services()[0].memory_mib, 512.0);
    assert_eq!(s.hosts()[0].memory_allocated, 1024.0);
    s.apply(&Action::Scale {
        service: 0,
        replicas: 8,
    })
    .unwrap();
    at(&mut s, 100.0);
    assert_eq!(replicas_in(&s, ReplicaState::Ready), 8);
    assert_eq!(s.hosts()[0].memory_allocated, 4096.0);
    assert_eq!(s.oom_kills(), 0);
    let r = s.services()[0].replicas[0];
    assert_eq!(
        s.memory_limit_mib(r),
        1024.0,
        "the limit keeps its 2× ratio"
    );
    assert_eq!(s.memory_used_mib(r), 300.0);
}

#[test]
fn a_limit_under_the_working_set_is_oom_killed_at_every_start() {
    let mut s = lab(600.0, 1);
    at(&mut s, 20.0);
    // 256 MiB requested: a 512 MiB limit under the 600 MiB working set.
    s.apply(&Action::ResizeMemory {
        service: 0,
        memory_mib: 256.0,
    })
    .unwrap();
    at(&mut s, 24.9);
    assert_eq!(s.oom_kills(), 0, "the resize takes its 5 s");
    at(&mut s, 25.0 + 5.0);
    assert_eq!(replicas_in(&s, ReplicaState::Crashed), 2);
    assert_eq!(s.oom_kills(), 2);
    // A restart brings a fresh container with the same limit: killed again (a crash
    // loop), 5 s restart + 5 s to fill its memory later.
    let r = s.services()[0].replicas[0];
    s.apply(&Action::Restart { replica: r }).unwrap();
    at(&mut s, 36.0);
    assert_eq!(s.replicas()[r].state, ReplicaState::Ready);
    at(&mut s, 41.0);
    assert_eq!(s.replicas()[r].state, ReplicaState::Crashed);
    assert_eq!(s.replicas()[r].restarts, 3, "two OOM kills and a restart");
    assert_eq!(s.oom_kills(), 3);
    // Sized back above the working set, the next start holds.
    s.apply(&Action::ResizeMemory {
        service: 0,
        memory_mib: 1024.0,
    })
    .unwrap();
    at(&mut s, 47.0);
    s.apply(&Action::Restart { replica: r }).unwrap();
    at(&mut s, 100.0);
    assert_eq!(s.replicas()[r].state, ReplicaState::Ready);
    assert_eq!(s.oom_kills(), 3);
}

#[test]
fn an_overcommitted_host_kills_the_replica_most_over_its_request() {
    // Requests of 1 GiB against a 1.5 GiB working set: four replicas fit the 4 GiB
    // host by request, but three already use 4.5 GiB.
    let mut s = lab(1536.0, 1);
    at(&mut s, 20.0);
    assert_eq!(replicas_in(&s, ReplicaState::Ready), 2);
    assert_eq!(s.oom_kills(), 0, "two use 3 GiB of 4");
    s.apply(&Action::Scale {
        service: 0,
        replicas: 4,
    })
    .unwrap();
    at(&mut s, 40.0);
    assert!(s.oom_kills() >= 2, "{} kills", s.oom_kills());
    let running = replicas_in(&s, ReplicaState::Ready);
    assert!(running <= 2, "{running} running: 3 would use 4.5 GiB of 4");
    let used: f64 = s.services()[0]
        .replicas
        .iter()
        .filter(|&&r| s.replicas()[r].state == ReplicaState::Ready)
        .map(|&r| s.memory_used_mib(r))
        .sum();
    assert!(used <= 4096.0, "{used} MiB in use on a 4096 MiB host");
    // The replicas of a less overcommitting size all run.
    let mut calm = lab(900.0, 1);
    at(&mut calm, 20.0);
    calm.apply(&Action::Scale {
        service: 0,
        replicas: 4,
    })
    .unwrap();
    at(&mut calm, 40.0);
    assert_eq!(calm.oom_kills(), 0);
    assert_eq!(replicas_in(&calm, ReplicaState::Ready), 4);
}

#[test]
fn resizes_that_do_not_fit_together_or_make_no_sense_are_refused() {
    let mut s = lab(300.0, 1);
    at(&mut s, 20.0);
    let before = s.services()[0].target_memory();
    // Two replicas at 3 GiB need 6 GiB of a 4 GiB host.
    let err = s
        .apply(&Action::ResizeMemory {
            service: 0,
            memory_mib: 3072.0,
        })
        .unwrap_err();
    assert!(
        matches!(err, ActionError::NoMemory { host: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("3072 MiB"), "{err}");
    for bad in [0.0, -1.0, f64::NAN, 8192.0] {
        let err = s
            .apply(&Action::ResizeMemory {
                service: 0,
                memory_mib: bad,
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                ActionError::OutOfRange {
                    field: "memory_mib",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
    let err = s
        .apply(&Action::ResizeMemory {
            service: 3,
            memory_mib: 512.0,
        })
        .unwrap_err();
    assert!(matches!(err, ActionError::NoService(3, 1)), "{err}");
    assert_eq!(s.services()[0].target_memory(), before);
    // CPU too: two replicas growing 8 cores each need 16 of the 15 left.
    let err = s
        .apply(&Action::Resize {
            service: 0,
            cpu: 8.5,
        })
        .unwrap_err();
    assert!(matches!(err, ActionError::NoRoom { host: 0, .. }), "{err}");
    assert_eq!(s.services()[0].target_cpu(), 0.5);
    at(&mut s, 60.0);
    assert_eq!(s.hosts()[0].memory_allocated, 2048.0);
}

#[test]
fn a_working_set_at_or_over_the_limit_is_a_scenario_error_that_names_the_field() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/three-tier.toml"
    ))
    .unwrap();
    let first = text.find("memory_mib = 256").unwrap();
    let line_end = first + text[first..].find('\n').unwrap();
    let bad = format!(
        "{}\nworking_set_mib = 1e9{}",
        &text[..line_end],
        &text[line_end..]
    );
    let err = Scenario::from_toml_str(&bad, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("working_set_mib"), "{err}");
    assert!(err.contains("OOM"), "{err}");
}
