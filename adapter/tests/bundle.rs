//! The trained bundle the Swarm test runs (`tests/data/demo-scaling-ppo`, exported by
//! `hale export` from `experiments/configs/demo-scaling-ppo.toml`), driven through
//! the whole loop on a dry-run target with a stand-in Prometheus: it scales front up
//! when a burst comes, back down when it is over, and leaves the idle api and db at
//! one replica. The live version of this is in `tests/docker.rs`.

use hale_adapter::action::Action;
use hale_adapter::config::AdapterConfig;
use hale_adapter::report::Outcome;
use hale_adapter::run::Adapter;

mod common;
use common::{QUERIES, sample, stand_in};

const NOW: f64 = 1_800_000_000.0;

fn bundle() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/demo-scaling-ppo").to_string()
}

#[test]
fn the_demo_bundle_follows_a_burst_up_and_down() {
    let (url, answers) = stand_in();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
policy = "{}"
env = "Scaling-v0"
mode = "auto"
audit_log = "{}"
[target]
kind = "dry-run"
namespace = ""
services = ["front", "api", "db"]
[guardrails]
max_replicas = 4
cooldown_s = 0
[observation]
prometheus = "{url}"
{QUERIES}"#,
        bundle(),
        dir.path().join("audit.jsonl").display()
    );
    let cfg: AdapterConfig = toml::from_str(&text).unwrap();
    let mut adapter = Adapter::new(&cfg).unwrap();
    // What hale-demo's front shows (5 ms of CPU per request on one worker): CPU
    // utilisation is the load over the replicas' capacity; latency a few ms until
    // the worker saturates.
    let mut front = 1u32;
    let mut seen = Vec::new();
    let load = [
        0.0, 5.0, 5.0, 160.0, 160.0, 160.0, 160.0, 5.0, 5.0, 0.0, 0.0,
    ];
    for (k, &rate) in load.iter().enumerate() {
        let cpu = (rate * 0.005 / f64::from(front)).min(1.0);
        let p95 = if rate > 0.0 {
            5.5 + 30.0 * cpu * cpu
        } else {
            0.0
        };
        let t = NOW + 15.0 * k as f64;
        {
            let mut a = answers.lock().unwrap();
            for s in ["front", "api", "db"] {
                let (r, c, p) = if s == "front" {
                    (rate, cpu, p95)
                } else {
                    (0.0, 0.0, 0.0)
                };
                for (q, v) in [
                    ("rate", r),
                    ("p50", p / 2.0),
                    ("p95", p),
                    ("p99", p * 1.5),
                    ("errors", 0.0),
                    ("cpu", c),
                ] {
                    a.insert(format!("{q}({s})"), sample(v, t - 1.0));
                }
            }
        }
        let Outcome::Decided { decisions } = adapter.step(t, 15.0 * k as f64).unwrap() else {
            panic!("step {k}: expected a decision")
        };
        for d in &decisions {
            assert_eq!(d.service, "front", "api and db stay put: {d:?}");
            assert_eq!(d.explanation.policy, "ppo");
            assert!(!d.explanation.alternatives.is_empty());
            if let Some(Action::Scale { replicas, .. }) = d.verdict.action() {
                front = *replicas;
            }
        }
        seen.push(front);
    }
    // Up during the burst, down after it.
    let burst = &seen[3..7];
    assert!(burst.iter().any(|&n| n >= 2), "{seen:?}");
    assert_eq!(seen[2], 1, "{seen:?}");
    assert_eq!(*seen.last().unwrap(), 1, "{seen:?}");
}
