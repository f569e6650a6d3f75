//! Scaling-v0 driven by real traces (../shared/traces): a scenario names the NASA
//! per-second counts or the Azure Functions invocations, and an episode runs end to end
//! with the arrivals the trace prescribes.

use hale_envs::{Env, Value, make};
use serde_json::json;
use std::path::PathBuf;

const MICROSERVICES_20: &str = include_str!("../../../sim/scenarios/microservices-20.toml");

fn shared(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is absent; ../shared sits beside the checkout in CI",
            p.display()
        );
        None
    }
}

/// microservices-20 with its three workloads' rates replaced, written to `dir`.
fn scenario(dir: &std::path::Path, rates: [String; 3]) -> String {
    let mut text = MICROSERVICES_20.to_string();
    for (service, rate) in ["home-timeline", "user-timeline", "compose-post"]
        .iter()
        .zip(rates)
    {
        let head = format!("[[workload]]\nservice = \"{service}\"\nrate = ");
        let at = text.find(&head).unwrap_or_else(|| panic!("{service}")) + head.len();
        let end = at + text[at..].find('\n').unwrap();
        text.replace_range(at..end, &rate);
    }
    let path = dir.join("traced.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs one Scaling-v0 episode of `episode_s` on `scenario` (3 replicas per service)
/// and returns the requests that arrived, and the requests the trace prescribes.
fn episode(scenario: &str, episode_s: f64) -> (f64, f64) {
    let sc = hale_datasets::load_scenario(scenario).unwrap();
    let expected: f64 = sc
        .spec
        .workload
        .iter()
        .map(|w| {
            let (step, rps, _) = w.rate.as_series().expect("a trace");
            let steps = (episode_s / step) as usize;
            rps[..steps].iter().sum::<f64>() * step
        })
        .sum();
    let mut env = make(
        "Scaling-v0",
        &json!({"scenario": scenario, "action": "target", "episode_s": episode_s, "faults": false}),
    )
    .unwrap();
    env.reset(Some(1), None).unwrap();
    let mut arrived = 0.0;
    let mut steps = 0;
    loop {
        let s = env.step(&Value::MultiDiscrete(vec![2; 20])).unwrap();
        arrived += s.info.cloud.as_ref().unwrap().requests;
        assert!(s.reward.is_finite());
        steps += 1;
        if s.truncated {
            break;
        }
    }
    assert_eq!(steps, (episode_s / 30.0) as usize);
    (arrived, expected)
}

#[test]
fn scaling_v0_runs_an_episode_of_the_nasa_trace() {
    let Some(nasa) = shared("nasa_http_1995_per_second/workload.txt") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = nasa.display();
    let path = scenario(
        dir.path(),
        [
            format!(
                r#"{{ kind = "trace", path = "{p}", step_s = 60.0, split = "train", peak_rps = 900.0 }}"#
            ),
            format!(
                r#"{{ kind = "trace", path = "{p}", step_s = 60.0, split = "validation", peak_rps = 450.0 }}"#
            ),
            format!(
                r#"{{ kind = "trace", path = "{p}", step_s = 60.0, split = "test", mean_rps = 60.0 }}"#
            ),
        ],
    );
    let (arrived, expected) = episode(&path, 1800.0);
    eprintln!("NASA: {arrived:.0} requests arrived, the trace prescribes {expected:.0}");
    assert!(expected > 10_000.0);
    assert!(
        (arrived / expected - 1.0).abs() < 0.03,
        "{arrived} vs {expected}"
    );
}

#[test]
fn scaling_v0_runs_an_episode_of_an_azure_function_aggregate() {
    let Some(azure) = shared("azure_functions_2019_sample/invocations.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = azure.display();
    let path = scenario(
        dir.path(),
        [
            format!(r#"{{ kind = "trace", path = "{p}", trigger = "http", mean_rps = 600.0 }}"#),
            format!(r#"{{ kind = "trace", path = "{p}", trigger = "queue", mean_rps = 300.0 }}"#),
            format!(r#"{{ kind = "trace", path = "{p}", trigger = "timer", mean_rps = 80.0 }}"#),
        ],
    );
    let (arrived, expected) = episode(&path, 1800.0);
    eprintln!("Azure: {arrived:.0} requests arrived, the trace prescribes {expected:.0}");
    assert!(expected > 100_000.0);
    assert!(
        (arrived / expected - 1.0).abs() < 0.03,
        "{arrived} vs {expected}"
    );
}
