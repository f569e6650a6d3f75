//! `hale-adapter check` on good and bad configs.

use assert_cmd::Command;

fn check(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter.toml");
    std::fs::write(&path, config).unwrap();
    Command::cargo_bin("hale-adapter")
        .unwrap()
        .arg("check")
        .arg(&path)
        .output()
        .unwrap()
}

const GOOD: &str = r#"
policy = "hpa"
env = "Scaling-v0"
mode = "auto"
interval_s = 15

[env_config]
scenario = "three-tier"
action = "target"

[target]
kind = "dry-run"
services = ["frontend", "api", "db"]

[guardrails]
max_replicas = 6
deny = ["kube-system/*", "default/db"]
"#;

#[test]
fn a_good_config_is_described() {
    let out = check(GOOD);
    assert!(out.status.success(), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("hpa (baseline) for Scaling-v0"), "{s}");
    assert!(s.contains("replicas 1..=6"), "{s}");
}

#[test]
fn bad_configs_name_the_field_and_exit_non_zero() {
    for (config, expect) in [
        (
            GOOD.replace("interval_s = 15", "interval_seconds = 15"),
            "interval_seconds",
        ),
        (
            GOOD.replace("max_replicas = 6", "max_replicas = 6\nmin_replicas = 9"),
            "min_replicas",
        ),
        (GOOD.replace("\"hpa\"", "\"hpx\""), "hpx"),
        (GOOD.replace("dry-run", "ssh"), "ssh"),
        (GOOD.replace("mode = \"auto\"", "mode = \"yolo\""), "yolo"),
        (
            GOOD.replace("policy = \"hpa\"", "policy = \"/nonexistent/bundle\""),
            "/nonexistent/bundle",
        ),
    ] {
        let out = check(&config);
        assert_eq!(out.status.code(), Some(2), "{config}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(expect), "expected {expect:?} in: {e}");
    }
}

/// What ships: the adapter's own dependency tree has no autodiff, optimiser, polars,
/// ONNX or training crate.
#[test]
fn the_adapter_builds_without_training_code() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "hale-adapter",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.contains("hale-policies") && tree.contains("burn-flex"),
        "{tree}"
    );
    for banned in [
        "burn-autodiff",
        "burn-optim",
        "polars",
        "burn-onnx",
        "hale-datasets",
        "hale-experiments",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "{banned} is in the adapter's build:\n{tree}"
        );
    }
}
