//! The `hale` binary end to end.

use assert_cmd::Command;

fn hale() -> Command {
    Command::cargo_bin("hale").unwrap()
}

#[test]
fn sim_run_reports_a_summary() {
    let out = hale()
        .args(["sim", "run", "three-tier", "--seconds", "30", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scenario"], "builtin:three-tier");
    assert!(v["requests_arrived"].as_f64().unwrap() > 10_000.0);
    assert!(v["cost"].as_f64().unwrap() > 0.0);
}

#[test]
fn sim_check_names_the_bad_field_and_fails() {
    let dir = std::env::temp_dir().join(format!("hale-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sim/scenarios/three-tier.toml"
    ))
    .unwrap();
    std::fs::write(&bad, text.replace("cpu = 1.0", "cpu = -1.0")).unwrap();
    let out = hale()
        .args(["sim", "check", "three-tier"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok    three-tier"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}: field `services[1].cpu`: must be a positive number, got -1",
            bad.display()
        )),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 2 scenarios are invalid"));
}

#[test]
fn unknown_scenario_is_an_error_with_exit_code_2() {
    let out = hale()
        .args(["sim", "run", "no-such-scenario"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-scenario: cannot read"), "{err}");
}
