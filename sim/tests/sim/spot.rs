//! Spot hosts reclaimed with notice: the notice comes `notice_s` before the end, the
//! host is drained at once and gone at the end, its replicas live on elsewhere, the
//! bill stops; lifetimes are exponential with the configured mean and do not depend
//! on what the policy does.

use hale_sim::{Action, HostState, Lifecycle, Scenario, SimTime, Simulation};
use std::sync::Arc;

fn scenario(spot: &str) -> Scenario {
    parse(spot).unwrap()
}

fn parse(spot: &str) -> Result<Scenario, hale_sim::ScenarioError> {
    let text = format!(
        r#"
name = "spot-lab"
zones = ["z0"]
[simulation]
scrape_interval_s = 10
[cluster]
provisioning_time_s = 60
max_hosts = 8
provision_type = "od"
{spot}
[[host_types]]
name = "od"
cpu = 4
memory_mib = 8192
price_per_hour = 0.40
[[host_types]]
name = "spot"
cpu = 4
memory_mib = 8192
price_per_hour = 0.12
lifecycle = "spot"
[[hosts]]
zone = "z0"
type = "od"
[[hosts]]
zone = "z0"
type = "spot"
count = 2
[[services]]
name = "web"
replicas = 3
cpu = 1
memory_mib = 512
concurrency = 8
service_time = {{ dist = "exponential", mean_ms = 2 }}
boot_time_s = 20
[[workload]]
service = "web"
rate = {{ kind = "constant", rps = 100 }}
"#
    );
    Scenario::from_toml_str(&text, "spot-lab.toml")
}

const SPOT: &str = "[cluster.spot]\nmean_lifetime_s = 1800\nnotice_s = 120\n";

fn live(s: &Simulation) -> usize {
    s.services()[0]
        .replicas
        .iter()
        .filter(|&&r| s.replicas()[r].state.is_live())
        .count()
}

#[test]
fn a_spot_host_gets_its_notice_then_goes_and_its_replicas_live_on_elsewhere() {
    // A seed whose first spot host goes within two hours.
    let sc = Arc::new(scenario(SPOT));
    let seed = (0..100)
        .find(|&seed| {
            Simulation::new(sc.clone(), seed)
                .spot_lifetime_s(1)
                .is_some_and(|l| {
                    (200.0..7200.0).contains(&l)
                        && l < Simulation::new(sc.clone(), seed)
                            .spot_lifetime_s(2)
                            .unwrap()
                })
        })
        .unwrap();
    let mut s = Simulation::new(sc, seed);
    let life = s.spot_lifetime_s(1).unwrap();
    assert_eq!(
        s.spot_lifetime_s(0),
        None,
        "on-demand hosts are never reclaimed"
    );
    let notice = life - 120.0;
    s.run_until(SimTime::from_secs_f64(notice - 1.0));
    assert_eq!(s.hosts()[1].reclaim_at, None, "no notice yet");
    let had = s.hosts()[1].replicas;
    s.run_until(SimTime::from_secs_f64(notice + 0.5));
    s.check_invariants().unwrap();
    let h = &s.hosts()[1];
    assert_eq!(
        h.reclaim_at,
        Some(SimTime::from_secs_f64(life)),
        "notice 120 s ahead"
    );
    assert!(h.cordoned && h.state == HostState::Ready);
    assert!(
        had == 0 || s.evictions() >= u64::from(had),
        "drained at the notice"
    );
    // Before the end the replicas run elsewhere; at the end the host is gone.
    s.run_until(SimTime::from_secs_f64(life - 1.0));
    assert_eq!(s.hosts()[1].replicas, 0, "drained before the end");
    assert_eq!(live(&s), 3);
    let cost = s.cost();
    s.run_until(SimTime::from_secs_f64(life + 1.0));
    s.check_invariants().unwrap();
    assert_eq!(s.hosts()[1].state, HostState::Removed);
    assert_eq!(s.hosts()[1].billed_since, None);
    assert_eq!(s.spot_reclaims(), 1);
    assert_eq!(live(&s), 3);
    // Two hosts billed from here on (the other spot host and the on-demand one).
    let t = s.now().as_secs_f64();
    s.run_until(SimTime::from_secs_f64(t + 36.0));
    let hourly = (s.cost() - cost) / (37.0 / 3600.0);
    assert!(
        (hourly - 0.52).abs() < 0.02
            || s.hosts().iter().any(|h| h.state == HostState::Provisioning),
        "{hourly}"
    );
}

#[test]
fn without_drain_on_notice_the_replicas_die_with_the_host_and_are_recreated() {
    let sc = Arc::new(scenario(
        "[cluster.spot]\nmean_lifetime_s = 1800\nnotice_s = 30\ndrain_on_notice = false\n",
    ));
    let mut s = Simulation::new(sc, 3);
    let (h, life) = [1, 2]
        .into_iter()
        .filter_map(|h| s.spot_lifetime_s(h).map(|l| (h, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    s.run_until(SimTime::from_secs_f64(life - 1.0));
    let had = s.hosts()[h].replicas;
    assert!(s.hosts()[h].cordoned, "cordoned at the notice, not drained");
    let evicted = s.evictions();
    s.run_until(SimTime::from_secs_f64(life + 0.5));
    s.check_invariants().unwrap();
    assert_eq!(s.evictions() - evicted, u64::from(had), "killed at the end");
    assert_eq!(live(&s), 3);
}

#[test]
fn lifetimes_are_exponential_with_the_mean_and_independent_of_actions() {
    let sc = Arc::new(scenario(SPOT));
    let n = 4000;
    let lives: Vec<f64> = (0..n)
        .map(|seed| {
            Simulation::new(sc.clone(), seed)
                .spot_lifetime_s(1)
                .unwrap()
        })
        .collect();
    let mean = lives.iter().sum::<f64>() / n as f64;
    // Exponential: the standard deviation is the mean.
    let se = 1800.0 / (n as f64).sqrt();
    assert!((mean - 1800.0).abs() < 4.0 * se, "{mean}");
    let median = {
        let mut v = lives.clone();
        v.sort_by(f64::total_cmp);
        v[n as usize / 2]
    };
    assert!(
        (median / 1800.0 - std::f64::consts::LN_2).abs() < 0.05,
        "{median}"
    );

    // A policy that scales does not move the provider's clock.
    let reclaim = |scale: bool| {
        let mut s = Simulation::new(sc.clone(), 11);
        if scale {
            s.apply(&Action::Scale {
                service: 0,
                replicas: 9,
            })
            .unwrap();
        }
        s.run_until(SimTime::from_secs_f64(20_000.0));
        (
            s.spot_lifetime_s(1),
            s.spot_lifetime_s(2),
            s.hosts()[1].state,
            s.hosts()[2].state,
        )
    };
    assert_eq!(reclaim(false), reclaim(true));
}

#[test]
fn without_a_spot_section_spot_hosts_stay_and_bad_values_are_named() {
    let mut s = Simulation::new(Arc::new(scenario("")), 1);
    assert_eq!(s.hosts()[1].lifecycle, Lifecycle::Spot);
    assert_eq!(s.spot_lifetime_s(1), None);
    s.run_until(SimTime::from_secs_f64(50_000.0));
    assert_eq!(s.spot_reclaims(), 0);
    for (bad, field) in [
        ("mean_lifetime_s = 0", "cluster.spot.mean_lifetime_s"),
        ("notice_s = -1", "cluster.spot.notice_s"),
    ] {
        let msg = parse(&format!("[cluster.spot]\n{bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("spot-lab.toml") && msg.contains(field),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn provisioning_can_switch_to_spot_capacity_which_the_provider_then_reclaims() {
    let mut s = Simulation::new(Arc::new(scenario(SPOT)), 5);
    assert_eq!(
        s.provision_type(),
        Some(0),
        "the scenario provisions on demand"
    );
    s.apply(&Action::Provision { host_type: 1 }).unwrap();
    assert_eq!(s.provision_type(), Some(1));
    // More replicas than the three hosts hold: new hosts come, spot.
    s.apply(&Action::Scale {
        service: 0,
        replicas: 14,
    })
    .unwrap();
    s.run_until(SimTime::from_secs_f64(90.0));
    let new: Vec<usize> = (3..s.hosts().len()).collect();
    assert!(!new.is_empty(), "hosts were provisioned");
    for &h in &new {
        assert_eq!(s.hosts()[h].lifecycle, Lifecycle::Spot);
        assert!(s.spot_lifetime_s(h).is_some());
    }
    let e = s
        .apply(&Action::Provision { host_type: 7 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("host type 7"), "{e}");
    let mut spec = scenario(SPOT).spec.clone();
    spec.cluster.provision_type = None;
    let fixed = Scenario::from_spec(spec, "fixed.toml").unwrap();
    let mut none = Simulation::new(Arc::new(fixed), 5);
    let e = none
        .apply(&Action::Provision { host_type: 1 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("provisions no hosts"), "{e}");
}

#[test]
fn consolidating_a_host_moves_its_replicas_then_releases_it() {
    let mut s = Simulation::new(Arc::new(scenario("")), 2);
    let h = (0..3).find(|&h| s.hosts()[h].replicas > 0).unwrap();
    let had = s.hosts()[h].replicas;
    s.run_until(SimTime::from_secs_f64(10.0));
    s.apply(&Action::Consolidate { host: h }).unwrap();
    assert_eq!(s.evictions(), u64::from(had));
    // Idle replicas end at once, and the host with them; busy ones end gracefully.
    let host = &s.hosts()[h];
    assert!(host.state == HostState::Removed || (host.consolidating && host.cordoned));
    let cost = s.cost();
    s.run_until(SimTime::from_secs_f64(80.0));
    s.check_invariants().unwrap();
    assert_eq!(
        s.hosts()[h].state,
        HostState::Removed,
        "released once empty"
    );
    assert_eq!(s.hosts()[h].billed_since, None);
    assert_eq!(live(&s), 3, "the replicas live on elsewhere");
    let price = s.hosts()[h].price_per_hour;
    let others: f64 = (0..3)
        .filter(|&o| o != h)
        .map(|o| s.hosts()[o].price_per_hour)
        .sum();
    let hourly = (s.cost() - cost) / (70.0 / 3600.0);
    assert!(
        hourly < others + price - 1e-9,
        "{hourly}: the host stopped billing"
    );
    let e = s
        .apply(&Action::Consolidate { host: h })
        .unwrap_err()
        .to_string();
    assert!(e.contains("Removed"), "{e}");
}
