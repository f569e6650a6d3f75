//! `hale-adapter check` on good and bad configs.

use assert_cmd::Command;

fn check(config: &str) -> std::process::Output {
    check_with_token(config, None)
}

/// `check` with `$HALE_ADAPTER_TOKEN` set to `token`, or unset.
fn check_with_token(config: &str, token: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::cargo_bin("hale-adapter").unwrap();
    match token {
        Some(t) => cmd.env("HALE_ADAPTER_TOKEN", t),
        None => cmd.env_remove("HALE_ADAPTER_TOKEN"),
    };
    cmd.arg("check").arg(&path).output().unwrap()
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

[observation]
prometheus = "http://127.0.0.1:19090"
[observation.queries]
request_rate = 'sum(rate(app_requests_total{service="$service"}[1m]))'
p50_ms = '1000 * histogram_quantile(0.5, sum by (le) (rate(app_latency_seconds_bucket{service="$service"}[1m])))'
p95_ms = '1000 * histogram_quantile(0.95, sum by (le) (rate(app_latency_seconds_bucket{service="$service"}[1m])))'
p99_ms = '1000 * histogram_quantile(0.99, sum by (le) (rate(app_latency_seconds_bucket{service="$service"}[1m])))'
error_rate = 'sum(rate(app_errors_total{service="$service"}[1m])) / sum(rate(app_requests_total{service="$service"}[1m]))'
cpu_utilization = 'sum(rate(process_cpu_seconds_total{service="$service"}[1m]))'
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
fn a_kubernetes_manual_config_is_described_without_contacting_the_cluster() {
    let config = GOOD
        .replace("mode = \"auto\"", "mode = \"manual\"")
        .replace(
            "kind = \"dry-run\"\nservices = [\"frontend\", \"api\", \"db\"]",
            "kind = \"kubernetes\"\nkubeconfig = \"/nonexistent/kubeconfig\"\nnamespace = \"shop\"\ndeployments = [\"frontend\", \"api\", \"db\"]",
        );
    let config = format!("{config}\n[server]\nlisten = \"127.0.0.1:9464\"\n");
    let out = check_with_token(&config, Some("s3cret"));
    assert!(out.status.success(), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("target: Kubernetes, deployments frontend, api, db in namespace shop"),
        "{s}"
    );
    assert!(
        s.contains("/proposals and /ask (bearer token from $HALE_ADAPTER_TOKEN)"),
        "{s}"
    );
    assert!(s.contains("proposals expire after 300 s"), "{s}");
}

/// The example configs stay valid.
#[test]
fn the_example_configs_pass_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for name in [
        "kubernetes-manual.toml",
        "docker-auto.toml",
        "docker-healing.toml",
        "docker-team.toml",
    ] {
        // The manual-mode example reads its endpoint's token from the environment.
        let out = Command::cargo_bin("hale-adapter")
            .unwrap()
            .env("HALE_ADAPTER_TOKEN", "s3cret")
            .arg("check")
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
    }
}

#[test]
fn help_explains_the_modes_and_how_to_answer() {
    let out = Command::cargo_bin("hale-adapter")
        .unwrap()
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--mode",
        "ID accept",
        "/proposals/ID",
        "bearer token",
        "ttl_s",
    ] {
        assert!(s.contains(needle), "{needle} in\n{s}");
    }
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
        (
            GOOD.replace("http://127.0.0.1:19090", "127.0.0.1:19090"),
            "observation.prometheus",
        ),
        (GOOD.replace("p99_ms =", "p999_ms ="), "p999_ms"),
        (GOOD.replace("mode = \"auto\"", "mode = \"yolo\""), "yolo"),
        (
            GOOD.replace("env = \"Scaling-v0\"", "env = \"CartPole-v1\""),
            "unknown variant `CartPole-v1`, expected `Scaling-v0` or `Healing-v0`",
        ),
        (
            GOOD.replace("policy = \"hpa\"", "policy = \"/nonexistent/bundle\""),
            "/nonexistent/bundle",
        ),
        (
            GOOD.replace(
                "kind = \"dry-run\"\nservices",
                "kind = \"kubernetes\"\nkubeconfg = \"k\"\ndeployments",
            ),
            "kubeconfg",
        ),
        (
            GOOD.replace(
                "kind = \"dry-run\"\nservices",
                "kind = \"kubernetes\"\ntimeout_s = 0\ndeployments",
            ),
            "target.timeout_s",
        ),
        (
            format!(
                "{}\n[manual]\nprompt = false\n",
                GOOD.replace("mode = \"auto\"", "mode = \"manual\"")
            ),
            "needs a way to ask",
        ),
        (
            format!("{GOOD}\n[notify]\nwebhook = \"https://example.org/hook\"\n"),
            "notify.webhook",
        ),
        (
            format!("{GOOD}\n[server]\nlisten = \"127.0.0.1:9464\"\ntoken = \"x\"\n"),
            "token",
        ),
    ] {
        let out = check(&config);
        assert_eq!(out.status.code(), Some(2), "{config}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(expect), "expected {expect:?} in: {e}");
    }
}

/// `check` refuses what `run` would refuse (issue 15: it said ok, then `run`
/// refused or panicked): a target listing another number of services than the
/// policy's env, manual mode without a token or with an empty one, and durations no
/// `Duration` can hold.
#[test]
fn check_refuses_everything_run_would() {
    let manual = format!(
        "{}\n[server]\nlisten = \"127.0.0.1:9464\"\n",
        GOOD.replace("mode = \"auto\"", "mode = \"manual\"")
    );
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        (
            GOOD.replace("[\"frontend\", \"api\", \"db\"]", "[\"frontend\", \"api\"]"),
            None,
            "target lists 2 services, the policy's env has 3",
        ),
        (manual.clone(), None, "HALE_ADAPTER_TOKEN is not set"),
        (manual.clone(), Some("  "), "is empty"),
        (
            GOOD.replace("interval_s = 15", "interval_s = 1e30"),
            None,
            "interval_s = 1000000000000000000000000000000 s is longer",
        ),
        (
            GOOD.replace("[observation]", "[observation]\ntimeout_s = 1e30"),
            None,
            "observation.timeout_s",
        ),
        (
            format!("{GOOD}\n[manual]\nttl_s = 1e30\n"),
            None,
            "manual.ttl_s",
        ),
        (
            GOOD.replace(
                "kind = \"dry-run\"\nservices",
                "kind = \"docker\"\ntimeout_s = 1e30\nservices",
            ),
            None,
            "target.timeout_s",
        ),
    ];
    for (config, token, expect) in cases {
        let out = check_with_token(&config, token);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}\n{e}");
        assert!(e.contains(expect), "expected {expect:?} in: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    // The manual config with a token passes.
    assert!(check_with_token(&manual, Some("s3cret")).status.success());
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

/// A bundle whose weights were cut short, or one trained for another env, is
/// refused by `check` and by `run` with exit 2, naming the file or the env, and
/// `run` touches nothing: not even the audit log is created.
#[test]
fn a_truncated_or_misfit_bundle_is_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/demo-scaling-ppo");
    for f in ["policy.json", "weights.bpk"] {
        std::fs::copy(shipped.join(f), bundle.join(f)).unwrap();
    }
    let audit = dir.path().join("audit.jsonl");
    let config = |env: &str| {
        GOOD.replace(
            "policy = \"hpa\"",
            &format!("policy = {:?}", bundle.display().to_string()),
        )
        .replace(
            "env = \"Scaling-v0\"",
            &format!(
                "env = {env:?}\naudit_log = {:?}",
                audit.display().to_string()
            ),
        )
        .replace(
            "[env_config]\nscenario = \"three-tier\"\naction = \"target\"\n",
            "",
        )
    };
    let run = |config: &str, command: &[&str]| {
        let path = dir.path().join("adapter.toml");
        std::fs::write(&path, config).unwrap();
        Command::cargo_bin("hale-adapter")
            .unwrap()
            .args(command)
            .arg(&path)
            .args(if command[0] == "run" {
                &["--steps", "1"][..]
            } else {
                &[]
            })
            .output()
            .unwrap()
    };
    // The intact bundle passes.
    let out = run(&config("Scaling-v0"), &["check"]);
    assert!(out.status.success(), "{out:?}");
    // Trained for Scaling-v0, asked to drive Healing-v0.
    let healing = format!(
        "{}\n[observation.replica_queries]\nmemory_fraction = \"m\"\nmean_latency_ms = \"l\"\nerror_rate = \"e\"\n",
        config("Healing-v0")
    );
    for command in ["check", "run"] {
        let out = run(&healing, &[command]);
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("was trained on Scaling-v0"),
            "{command}: {err}"
        );
    }
    // Weights cut in half: the checksum says so, naming the file.
    let weights = bundle.join("weights.bpk");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    for command in ["check", "run"] {
        let out = run(&config("Scaling-v0"), &[command]);
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("weights.bpk") && err.contains("truncated or altered"),
            "{command}: {err}"
        );
    }
    assert!(!audit.exists(), "nothing ran, nothing was audited");
}
