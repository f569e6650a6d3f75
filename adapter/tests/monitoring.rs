//! Issue 21: the alerting rules and the Grafana dashboard in `adapter/monitoring/`.
//! promtool checks the rules and runs their unit tests; every dashboard query is
//! parsed by promtool too (as a recording rule of a scratch file); and every
//! `hale_adapter_*` series the rules and the dashboard read is one the adapter's
//! `/metrics` exports, so a renamed metric breaks this test rather than an alert.

use std::path::{Path, PathBuf};
use std::process::Command;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring")
}

/// Whether promtool runs here; on CI it must (.ci/run installs prometheus, which
/// ships it).
fn promtool_found() -> bool {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed (.ci/run installs Debian's prometheus, which ships it)"
        );
        eprintln!("skipping: promtool is not installed");
    }
    found
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(monitoring())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Every PromQL expression of the dashboard's panels, in order.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(monitoring().join("grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    // The service picker's query is Grafana's, not PromQL: its metric must exist.
    let picker = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "service")
        .unwrap();
    assert_eq!(
        picker["query"],
        "label_values(service:app_requests:rate5m, service)"
    );
    out
}

#[test]
fn rules_pass_promtool_and_their_unit_tests() {
    if !promtool_found() {
        return;
    }
    let checked = promtool(&["check", "rules", "rules.yml"]);
    assert!(checked.contains("SUCCESS: 15 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "rules_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn dashboard_queries_parse_and_read_the_recording_rules() {
    if !promtool_found() {
        return;
    }
    let queries = dashboard_queries();
    assert_eq!(queries.len(), 13, "{queries:#?}");
    let rules = std::fs::read_to_string(monitoring().join("rules.yml")).unwrap();
    // Grafana's variables, as a selection of every service.
    let mut scratch = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let q = q.replace("$service", ".+");
        scratch.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&q).unwrap()
        ));
        // A recorded series the dashboard reads is one rules.yml records.
        for word in q.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
            if word.contains(':') && word.chars().next().is_some_and(char::is_alphabetic) {
                assert!(
                    rules.contains(&format!("record: {word}")),
                    "the dashboard reads {word}, which rules.yml does not record"
                );
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yml");
    std::fs::write(&file, scratch).unwrap();
    let checked = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(checked.contains("SUCCESS: 13 rules found"), "{checked}");
}

#[test]
fn every_adapter_series_read_is_one_the_adapter_exports() {
    let metrics = hale_adapter::metrics::Metrics::new();
    // Families appear once they have a sample.
    metrics.action("scale", "expired");
    metrics
        .blocked
        .get_or_create(&hale_adapter::metrics::RuleLabels {
            rule: "cooldown".into(),
        })
        .inc();
    let exported = metrics.encode();
    let sample_names: Vec<&str> = exported
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let rules = std::fs::read_to_string(monitoring().join("rules.yml")).unwrap();
    let dashboard = std::fs::read_to_string(monitoring().join("grafana-dashboard.json")).unwrap();
    let mut read = Vec::new();
    for text in [&rules, &dashboard] {
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with("hale_adapter_") && !read.contains(&word) {
                read.push(word);
            }
        }
    }
    assert!(read.len() >= 7, "{read:?}");
    for name in read {
        assert!(
            sample_names.contains(&name),
            "{name} is read by adapter/monitoring but the adapter exports {sample_names:?}"
        );
    }
}
