//! Bad scenario files fail with errors that name the file and the field.

use hale_sim::{Scenario, ScenarioError};
use std::path::PathBuf;

/// Writes three-tier with one edit to a temporary file and loads it from there.
fn load_edited(name: &str, from: &str, to: &str) -> (PathBuf, Result<Scenario, ScenarioError>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/three-tier.toml"
    ))
    .unwrap();
    assert!(text.contains(from), "{from:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    let result = Scenario::from_file(&path);
    (path, result)
}

fn message(name: &str, from: &str, to: &str) -> (String, String) {
    let (path, result) = load_edited(name, from, to);
    let err = result.expect_err("an invalid scenario must be refused");
    (path.display().to_string(), err.to_string())
}

#[test]
fn unknown_field_is_named() {
    let (file, msg) = message("typo.toml", "boot_time_s = 30", "boot_tme_s = 30");
    assert!(msg.starts_with(&file), "{msg}");
    assert!(msg.contains("unknown field `boot_tme_s`"), "{msg}");
    assert!(msg.contains("line "), "{msg}");
}

#[test]
fn negative_rate_is_named() {
    let (file, msg) = message("negative.toml", "mean_rps = 600", "mean_rps = -5");
    assert_eq!(
        msg,
        format!("{file}: field `workload[0].rate.mean_rps`: must be ≥ 0, got -5")
    );
}

#[test]
fn dependency_cycle_is_named() {
    let (file, msg) = message(
        "cycle.toml",
        "service_time = { dist = \"exponential\", mean_ms = 5.0 }",
        "service_time = { dist = \"exponential\", mean_ms = 5.0 }\ncalls = [{ to = \"frontend\" }]",
    );
    assert!(
        msg.starts_with(&format!("{file}: field `services[")),
        "{msg}"
    );
    assert!(
        msg.contains("dependency cycle: frontend → api → db → frontend"),
        "{msg}"
    );
}

#[test]
fn missing_service_is_named() {
    let (file, msg) = message("missing.toml", "to = \"db\"", "to = \"dbb\"");
    assert_eq!(
        msg,
        format!(
            "{file}: field `services[1].calls[0].to`: unknown service \"dbb\" (known: api, db, frontend)"
        )
    );
}

#[test]
fn other_bad_values_are_named() {
    let cases = [
        (
            "concurrency = 8\nqueue_capacity = 256",
            "concurrency = 0\nqueue_capacity = 256",
            "services[1].concurrency",
        ),
        (
            "amplitude = 0.6",
            "amplitude = 1.5",
            "workload[0].rate.amplitude",
        ),
        (
            "type = \"m5.xlarge\"\ncount = 2",
            "type = \"m6.huge\"\ncount = 2",
            "hosts[0].type",
        ),
        (
            "target = \"api\"",
            "target = \"apx\"",
            "faults.mtbf[0].target",
        ),
        ("percentile = 95", "percentile = 100", "slos[0].percentile"),
        ("mean_s = 1800", "mean_s = 0", "faults.mtbf[0].every.mean_s"),
    ];
    for (i, (from, to, field)) in cases.into_iter().enumerate() {
        let (file, msg) = message(&format!("bad-{i}.toml"), from, to);
        assert!(
            msg.starts_with(&format!("{file}: field `{field}`")),
            "{msg}"
        );
    }
}

#[test]
fn unreadable_file_and_unknown_builtin_are_named() {
    let err = Scenario::load("/no/such/scenario.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/no/such/scenario.toml: cannot read"),
        "{err}"
    );
    let err = Scenario::builtin("four-tier").unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown builtin scenario `four-tier` (known: three-tier, microservices-20, demo)"
    );
}

#[test]
fn builtins_load() {
    for name in hale_sim::BUILTINS {
        let s = Scenario::builtin(name).unwrap();
        assert_eq!(&s.spec.name, name);
    }
    let ms = Scenario::builtin("microservices-20").unwrap();
    assert_eq!(ms.spec.services.len(), 20);
}
