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
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
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

#[test]
fn env_list_shows_every_env_with_its_spaces() {
    let out = hale().args(["env", "list"]).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for id in [
        "CartPole-v1",
        "Scaling-v0",
        "Healing-v0",
        "Security-v0",
        "CloudOps-v0",
    ] {
        assert!(s.contains(id), "{s}");
    }
    assert!(
        s.contains("Discrete(2)") && s.contains("MultiDiscrete([5] × 20)"),
        "{s}"
    );
}

#[test]
fn env_check_passes_for_cartpole() {
    let out = hale()
        .args(["env", "check", "CartPole-v1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok    CartPole-v1\n");
}

#[test]
fn env_replay_prints_one_line_per_episode_and_names_bad_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = dir.join("good.jsonl");
    std::fs::write(&good, "{\"seed\": 1, \"actions\": [0, 1, 1]}\n\n{\"options\": {\"state\": [0, 0, 0.2, 0]}, \"actions\": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}\n").unwrap();
    let out = hale()
        .args(["env", "replay", "--env", "CartPole-v1"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["steps"].as_array().unwrap().len(), 3);
    // Starting at 0.2 rad and pushed the other way, the pole passes 12° (0.209 rad)
    // within ten steps: the output stops at the terminating step.
    let second = lines[1]["steps"].as_array().unwrap();
    assert!(second.len() < 10, "{second:?}");
    assert!(second.last().unwrap()["terminated"].as_bool().unwrap());
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"actions\": [0]}\n{\"actions\": [0, \"left\"]}\n").unwrap();
    let out = hale()
        .args(["env", "replay", "--env", "CartPole-v1"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "nothing printed unless every line replays"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl: line 2: action 1: \"left\" is not an action"),
        "{err}"
    );
}

#[test]
fn env_bench_prints_steps_per_second() {
    let out = hale()
        .args([
            "env",
            "bench",
            "--env",
            "CartPole-v1",
            "--num-envs",
            "4",
            "--steps",
            "100",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["env_steps"], 400.0);
    assert!(v["steps_per_s"].as_f64().unwrap() > 0.0);
}

fn eval(args: &[&str], out: &std::path::Path) -> std::process::Output {
    hale()
        .arg("eval")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn eval_compares_every_scaling_baseline_on_common_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    let r = eval(
        &[
            "--env",
            "Scaling-v0",
            "--config",
            r#"{"scenario": "three-tier", "episode_s": 600}"#,
            "--policy",
            "hpa,static,threshold,forecast,random",
            "--episodes",
            "4",
            "--seed",
            "3",
        ],
        &out,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let table = String::from_utf8_lossy(&r.stdout);
    assert!(table.contains("paired difference static - hpa"), "{table}");
    let csv = std::fs::read_to_string(out.join("episodes.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 5 * 4);
    // The parquet file holds the same 20 rows and columns.
    use polars::prelude::SerReader;
    let file = std::fs::File::open(out.join("episodes.parquet")).unwrap();
    let df = polars::prelude::ParquetReader::new(file).finish().unwrap();
    assert_eq!(df.height(), 20);
    assert_eq!(df.width(), csv.lines().next().unwrap().split(',').count());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // Common random numbers: policies reacting to the same load and faults share their
    // noise, so the paired interval of a difference is narrower than the unpaired one.
    // (A static policy has almost no variance of its own, so pairing cannot help it
    // much; a random one's noise is its own.)
    let diffs = summary["summary"]["paired_differences"]
        .as_object()
        .unwrap();
    assert_eq!(diffs.len(), 4);
    let ci = |pair: &str, metric: &str, which: &str| diffs[pair][metric][which].as_f64().unwrap();
    for pair in ["forecast - hpa", "threshold - hpa"] {
        for metric in ["p95_ms", "unserved"] {
            assert!(
                ci(pair, metric, "ci95_paired") < ci(pair, metric, "ci95_unpaired"),
                "{pair} {metric}: {diffs:#?}"
            );
        }
    }
    let total = |which: &str| diffs.keys().map(|k| ci(k, "p95_ms", which)).sum::<f64>();
    assert!(total("ci95_paired") < total("ci95_unpaired"));
    // A static policy never acts; the HPA does.
    let pol = &summary["summary"]["policies"];
    assert_eq!(pol["static"]["actions"]["mean"], 0.0);
    assert!(pol["hpa"]["actions"]["mean"].as_f64().unwrap() > 0.0);
    // The first episode's timeline: every policy, every 15-s step of the 600 s, on
    // the same seed; the same load for every policy (common random numbers), and the
    // picture.
    let timeline = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    let rows: Vec<Vec<&str>> = timeline
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 5 * 40, "{timeline}");
    assert!(rows.iter().all(|r| r[1] == "0" && r[2] == "3"));
    let load = |p: &str| -> Vec<&str> { rows.iter().filter(|r| r[0] == p).map(|r| r[4]).collect() };
    assert_eq!(load("hpa"), load("static"));
    let last = rows.iter().rfind(|r| r[0] == "hpa").unwrap();
    assert_eq!(last[3], "600");
    let svg = std::fs::read_to_string(out.join("timeline.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("hosts billed"),
        "{svg:.200}"
    );
    // An episode that is not run has no timeline.
    let r = eval(
        &[
            "--env",
            "Scaling-v0",
            "--policy",
            "hpa",
            "--episodes",
            "2",
            "--timeline",
            "2",
        ],
        &out,
    );
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--timeline 2"));
}

#[test]
fn eval_compares_healing_baselines() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    let r = eval(
        &[
            "--env",
            "Healing-v0",
            "--config",
            r#"{"episode_s": 900}"#,
            "--policy",
            "kubelet,noop,random",
            "--episodes",
            "3",
        ],
        &out,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let pol = &summary["summary"]["policies"];
    assert!(pol["kubelet"]["actions"]["mean"].as_f64().unwrap() > 0.0);
    assert_eq!(pol["noop"]["actions"]["mean"], 0.0);
}

#[test]
fn eval_compares_teams_on_cloudops_with_the_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    let r = eval(
        &[
            "--env",
            "CloudOps-v0",
            "--config",
            r#"{"max_steps": 40}"#,
            "--policy",
            "baselines=hpa+kubelet+react-restore,static+kubelet+noop",
            "--episodes",
            "2",
        ],
        &out,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let table = String::from_utf8_lossy(&r.stdout);
    for row in [
        "team: security term",
        "double restarts",
        "evictions",
        "conflicts",
    ] {
        assert!(table.contains(row), "{row}: {table}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let pol = &summary["summary"]["policies"];
    assert!(pol["baselines"]["restores"]["mean"].as_f64().unwrap() > 0.0);
    assert_eq!(pol["static+kubelet+noop"]["restores"]["mean"], 0.0);
    let csv = std::fs::read_to_string(out.join("episodes.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("isolations_undone"));
    std::fs::remove_dir_all(&out).ok();
    // A team with a member too few names the agents.
    let r = eval(
        &[
            "--env",
            "CloudOps-v0",
            "--policy",
            "hpa+kubelet",
            "--episodes",
            "2",
        ],
        &out,
    );
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("scaler, healer, defender"), "{err}");
}

#[test]
fn eval_names_unknown_and_misfit_policies() {
    let out = std::env::temp_dir().join("hale-eval-never-written");
    let r = eval(
        &[
            "--env",
            "Scaling-v0",
            "--policy",
            "hpa,hpx",
            "--episodes",
            "2",
        ],
        &out,
    );
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(
            "unknown policy `hpx` (known: hpa, kubelet, threshold, static, random, forecast, noop, react-restore, react-remove, decoy-first, on-demand, karpenter)"
        ),
        "{err}"
    );
    let r = eval(
        &["--env", "Healing-v0", "--policy", "hpa", "--episodes", "2"],
        &out,
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("policy `hpa` does not fit Healing-v0: it drives Scaling-v0 only"),
        "{err}"
    );
    assert!(
        !out.exists(),
        "nothing is written when the arguments are wrong"
    );
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/fixtures")
        .join(name)
}

#[test]
fn data_inspect_reports_format_span_rate_and_quantiles() {
    let out = hale()
        .args(["data", "inspect", "--no-cache"])
        .arg(fixture("azure_invocations.csv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "format      azure-invocations (detected)",
        "rows        3 functions × 5 minutes",
        "span        5 min 0 s (300 s) from 28800 s",
        "resolution  60 s",
        "triggers    http 2, timer 1",
        "invocations 436",
        "quantiles   p50",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
    let out = hale()
        .args([
            "data",
            "inspect",
            "--json",
            "--no-cache",
            "--format",
            "nasa",
        ])
        .arg(fixture("counts.txt"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stats"]["steps"], 180);
    assert_eq!(v["stats"]["total"], 360.0);
}

#[test]
fn data_convert_writes_a_series_that_scenarios_and_inspect_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("minutes.parquet");
    let run = hale()
        .args([
            "data",
            "convert",
            "--no-cache",
            "--step-s",
            "60",
            "--peak-rps",
            "30",
        ])
        .arg(fixture("counts.txt"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stdout).contains("3 steps of 60 s"));
    let inspect = hale().args(["data", "inspect"]).arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        stdout.contains("series-parquet") && stdout.contains("peak 30.0000"),
        "{stdout}"
    );
    // A scenario naming it runs.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sim/scenarios/three-tier.toml"
    ))
    .unwrap();
    let line = r#"rate = { kind = "diurnal", mean_rps = 600, amplitude = 0.6, period_s = 3600 }"#;
    assert!(text.contains(line));
    let sc = dir.path().join("traced.toml");
    std::fs::write(
        &sc,
        text.replace(
            line,
            r#"rate = { kind = "trace", path = "minutes.parquet" }"#,
        ),
    )
    .unwrap();
    let check = hale().args(["sim", "check"]).arg(&sc).output().unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn data_commands_name_bad_input_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "1 2 3\n4 five 6 ").unwrap();
    let out_file = dir.path().join("out.csv");
    let out = hale()
        .args(["data", "convert", "--no-cache"])
        .arg(&bad)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:3: value 5", bad.display())),
        "{stderr}"
    );
    assert!(!out_file.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary files left"
    );
    let out = hale()
        .args(["data", "inspect", "--format", "excel"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format \"excel\""));
    let out = hale()
        .args(["data", "fit"])
        .arg(fixture("counts.txt"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no failure records"));
}

#[test]
fn data_fit_prints_per_cause_fits_and_scenario_toml() {
    let out = hale()
        .args(["data", "fit", "--no-cache", "--toml", "--service", "api"])
        .arg(fixture("lanl.csv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hardware") && stdout.contains("exp mean"),
        "{stdout}"
    );
    // The TOML part parses as a scenario's faults.
    let toml_part = &stdout[stdout.find("[[faults.mtbf]]").unwrap()..];
    let v: toml::Value = toml::from_str(toml_part).unwrap();
    let mtbf = v["faults"]["mtbf"].as_array().unwrap();
    assert_eq!(mtbf[0]["fault"]["kind"].as_str(), Some("host-failure"));
    assert_eq!(mtbf[0]["every"]["dist"].as_str(), Some("exponential"));
}

#[test]
fn data_synth_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        let run = hale()
            .args(["data", "synth", "--seed", seed])
            .arg(fixture("synthetic.toml"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        std::fs::read(out).unwrap()
    };
    assert_eq!(generate("1", "a.csv"), generate("1", "b.csv"));
    assert_ne!(generate("1", "a.csv"), generate("2", "c.csv"));
}

const TRAIN_SMOKE: &str = r#"
exp_name = "smoke"
env = "CartPole-v1"
seed = 3
checkpoint_every = 2
eval_episodes = 3

[ppo]
total_timesteps = 4096
"#;

/// `hale train CFG --out OUT EXTRA…`.
fn train(cfg: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    hale()
        .arg("train")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// `hale export RUN --out DEST EXTRA…`.
fn export(run: &std::path::Path, dest: &std::path::Path, extra: &[&str]) -> std::process::Output {
    hale()
        .arg("export")
        .arg(run)
        .arg("--out")
        .arg(dest)
        .args(extra)
        .output()
        .unwrap()
}

/// The run folder `hale train` made under `out`.
fn run_dir(out: &std::path::Path) -> std::path::PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

/// metrics.csv without the wall-time column (charts/SPS).
fn metrics_without_sps(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(5);
            cells.join(",")
        })
        .collect()
}

/// Trains `config` whole, then stopped after 3 iterations and resumed: the resumed
/// run logs the same rows (but wall time) and ends with the same weights, bit for
/// bit. Returns the whole run's folder.
fn resume_matches_whole_run(
    tmp: &std::path::Path,
    config: &str,
    iterations: usize,
    probes: &[hale_envs::Value],
) -> std::path::PathBuf {
    use burn::prelude::Device;
    use hale_policies::bundle::Bundle;
    let cfg = tmp.join("run.toml");
    std::fs::write(&cfg, config).unwrap();
    let whole = tmp.join("whole");
    let out = train(&cfg, &whole, &[]);
    assert!(out.status.success(), "{out:?}");
    let a = run_dir(&whole);
    let metrics = metrics_without_sps(&a);
    assert_eq!(metrics.len(), iterations + 1);
    assert!(
        metrics[0].starts_with("global_step,iteration,charts/learning_rate,charts/episodic_return")
    );
    // Asked to stop after 3 iterations, it goes on to the checkpoint at 4 (issue 15:
    // it used to stop at 3 with no checkpoint there, and resume at 2), then resumes.
    let parts = tmp.join("parts");
    let out = train(&cfg, &parts, &["--stop-after", "3"]);
    assert!(out.status.success(), "{out:?}");
    let stopped = format!(
        "stopped at iteration 4 of {iterations} (the first checkpoint at or after --stop-after 3"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&stopped),
        "{out:?}"
    );
    let b = run_dir(&parts);
    assert!(!b.join("policy").exists());
    assert!(b.join("checkpoints/iter-000004").exists());
    let out = hale()
        .arg("train")
        .arg("--resume")
        .arg(&b)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        metrics_without_sps(&b),
        metrics,
        "the resumed run logs what the whole run logged"
    );
    // Same weights: the two bundles give the same logits, bit for bit.
    let device = Device::flex();
    let pa = Bundle::load(&a.join("policy"), &device)
        .unwrap()
        .into_policy("a");
    let pb = Bundle::load(&b.join("policy"), &device)
        .unwrap()
        .into_policy("b");
    for obs in probes {
        assert_eq!(pa.logits(obs, None).unwrap(), pb.logits(obs, None).unwrap());
    }
    // And the same file, byte for byte: parameter ids are numbered, not drawn at
    // random, so the bundle's SHA-256 is the run's too.
    assert_eq!(
        std::fs::read(a.join("policy/weights.bpk")).unwrap(),
        std::fs::read(b.join("policy/weights.bpk")).unwrap(),
        "the resumed run's weights file is the whole run's"
    );
    a
}

/// CartPole observations to compare two bundles on.
fn cartpole_probes() -> Vec<hale_envs::Value> {
    [
        [0.0f32, 0.0, 0.0, 0.0],
        [0.1, -0.5, 0.05, 0.3],
        [-1.0, 1.0, -0.2, -0.7],
    ]
    .iter()
    .map(|o| hale_envs::Value::Box(o.to_vec()))
    .collect()
}

#[test]
fn train_writes_a_run_folder_and_resume_continues_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let a = resume_matches_whole_run(tmp.path(), TRAIN_SMOKE, 8, &cartpole_probes());
    assert!(
        a.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("CartPole-v1__smoke__3__")
    );
    for f in [
        "config.toml",
        "metrics.csv",
        "summary.json",
        "policy/policy.json",
        "policy/weights.bpk",
        "checkpoints/iter-000008/model.bpk",
    ] {
        assert!(a.join(f).exists(), "{f}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("summary.json")).unwrap()).unwrap();
    assert!(summary["eval_mean_return"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["eval_seeds"][0], 1_000_000);
}

/// Crash safety (issue 15): SIGKILL at random moments, and halfway through writing a
/// checkpoint; a corrupt newest checkpoint; each time `--resume` ends with the
/// metrics and weights of the uninterrupted run. Old checkpoints are pruned.
#[test]
fn sigkill_at_any_moment_then_resume_gives_the_uninterrupted_run() {
    use burn::prelude::Device;
    use hale_policies::bundle::Bundle;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("run.toml");
    std::fs::write(&cfg, format!("{TRAIN_SMOKE}\n")).unwrap();
    let config = std::fs::read_to_string(&cfg).unwrap().replace(
        "checkpoint_every = 2",
        "checkpoint_every = 2\nkeep_checkpoints = 2",
    );
    std::fs::write(&cfg, config).unwrap();
    let whole = tmp.path().join("whole");
    let out = train(&cfg, &whole, &[]);
    assert!(out.status.success(), "{out:?}");
    let a = run_dir(&whole);
    let metrics = metrics_without_sps(&a);
    let mut kept: Vec<String> = std::fs::read_dir(a.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, ["iter-000006", "iter-000008"], "keep_checkpoints = 2");
    let device = Device::flex();
    let logits = |run: &std::path::Path| {
        let p = Bundle::load(&run.join("policy"), &device)
            .unwrap()
            .into_policy("p");
        cartpole_probes()
            .iter()
            .map(|o| p.logits(o, None).unwrap())
            .collect::<Vec<_>>()
    };
    let same_as_whole = |run: &std::path::Path, how: &str| {
        assert_eq!(metrics_without_sps(run), metrics, "{how}: metrics");
        assert_eq!(logits(run), logits(&a), "{how}: weights");
    };
    let resume = |run: &std::path::Path| {
        hale()
            .arg("train")
            .arg("--resume")
            .arg(run)
            .output()
            .unwrap()
    };

    // Killed halfway through writing checkpoint 4: the unfinished one is ignored.
    let out = train_with_env(
        &cfg,
        &tmp.path().join("mid"),
        "HALE_TEST_KILL_IN_CHECKPOINT",
        "4",
    );
    assert!(!out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("mid"));
    assert!(!run.join("checkpoints/iter-000004").exists());
    let out = resume(&run);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at iteration 2"),
        "{out:?}"
    );
    same_as_whole(&run, "killed while writing a checkpoint");

    // The newest checkpoint corrupt: the one before it is read, with a warning.
    let out = train(&cfg, &tmp.path().join("corrupt"), &["--stop-after", "6"]);
    assert!(out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("corrupt"));
    let model = run.join("checkpoints/iter-000006/model.bpk");
    let mut bytes = std::fs::read(&model).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    let out = resume(&run);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("iter-000006/model.bpk") && stderr.contains("resuming from"),
        "{stderr}"
    );
    same_as_whole(&run, "corrupt newest checkpoint");

    // SIGKILL at moments spread over the run (before the first checkpoint, between
    // checkpoints, in the evaluation), each followed by --resume, until it finishes.
    let parts = tmp.path().join("killed");
    let spawn = || {
        let entries = std::fs::read_dir(&parts).map(|d| d.count()).unwrap_or(0);
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("hale"));
        cmd.arg("train");
        match entries {
            // Killed before its folder held a config: nothing to resume.
            0 => {
                cmd.arg(&cfg).arg("--out").arg(&parts);
            }
            _ => {
                let run = run_dir(&parts);
                if !run.join("config.toml").exists() {
                    std::fs::remove_dir_all(&run).unwrap();
                    cmd.arg(&cfg).arg("--out").arg(&parts);
                } else {
                    cmd.arg("--resume").arg(run);
                }
            }
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut finished = false;
    for delay_ms in [50, 300, 700, 1200, 1800, 2500, 3500, 5000] {
        let mut child = spawn();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        if child.wait().unwrap().success() {
            finished = true;
            break;
        }
    }
    if !finished {
        assert!(spawn().wait().unwrap().success());
    }
    same_as_whole(&run_dir(&parts), "killed at random moments");
}

/// `hale train CFG --out OUT` with one environment variable set.
fn train_with_env(
    cfg: &std::path::Path,
    out: &std::path::Path,
    key: &str,
    value: &str,
) -> std::process::Output {
    hale()
        .arg("train")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .env(key, value)
        .output()
        .unwrap()
}

/// DQN resumes exactly too: its replay buffer and target network are checkpointed.
#[test]
fn dqn_resumes_exactly_with_its_replay_buffer() {
    let tmp = tempfile::tempdir().unwrap();
    let a = resume_matches_whole_run(
        tmp.path(),
        r#"
exp_name = "dqn"
env = "CartPole-v1"
algorithm = "dqn"
seed = 5
checkpoint_every = 2
eval_episodes = 2

[dqn]
total_timesteps = 3000
steps_per_iteration = 500
learning_starts = 400
buffer_size = 1000
batch_size = 32
target_network_frequency = 100
num_envs = 2
"#,
        6,
        &cartpole_probes(),
    );
    for f in ["model.bpk", "target.bpk", "optim.bin", "replay.bin"] {
        assert!(a.join("checkpoints/iter-000006").join(f).exists(), "{f}");
    }
    let header = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert!(
        header
            .lines()
            .next()
            .unwrap()
            .ends_with("losses/td_loss,losses/q_values,charts/epsilon")
    );
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("policy/policy.json")).unwrap()).unwrap();
    assert_eq!(spec["algorithm"], "dqn");
}

#[test]
fn train_and_bundles_name_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(
        &cfg,
        TRAIN_SMOKE.replace("total_timesteps", "total_timestep"),
    )
    .unwrap();
    let out = train(&cfg, &tmp.path().join("o"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("total_timestep"),
        "{stderr}"
    );
    assert!(!tmp.path().join("o").exists(), "nothing written");
    // A truncated weights file is refused by its checksum; a bundle for another env
    // does not fit.
    std::fs::write(&cfg, TRAIN_SMOKE.replace("4096", "1024")).unwrap();
    let out = train(&cfg, &tmp.path().join("r"), &[]);
    assert!(out.status.success(), "{out:?}");
    let policy = run_dir(&tmp.path().join("r")).join("policy");
    let device = burn::prelude::Device::flex();
    let bundle = hale_policies::bundle::Bundle::load(&policy, &device).unwrap();
    let env = hale_envs::make("Scaling-v0", &serde_json::json!({})).unwrap();
    let e = bundle
        .check_fits("Scaling-v0", env.observation_space(), env.action_space())
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("trained on CartPole-v1, asked to drive Scaling-v0"),
        "{e}"
    );
    let weights = policy.join("weights.bpk");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let e = hale_policies::bundle::Bundle::load(&policy, &device)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("weights.bpk") && e.to_string().contains("truncated"),
        "{e}"
    );
}

/// A short Cost-v0 run: summary.json pairs the learned optimiser with the cluster
/// autoscaler alone (`on-demand`) and the Karpenter-like consolidator.
#[test]
fn train_on_cost_compares_with_on_demand_and_karpenter() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cost.toml");
    std::fs::write(
        &cfg,
        r#"
exp_name = "tiny-cost"
env = "Cost-v0"
eval_episodes = 2

[env_config]
episode_s = 600.0

[ppo]
total_timesteps = 512
num_envs = 2
num_steps = 64
"#,
    )
    .unwrap();
    let out = train(&cfg, &tmp.path().join("r"), &[]);
    assert!(out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("r"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    let diffs = &summary["comparison"]["paired_differences"];
    for d in ["ppo - on-demand", "karpenter - on-demand"] {
        assert!(diffs[d]["cost"].is_object(), "{d}: {summary}");
    }
}

/// A short Scaling-v0 run: summary.json holds the paired comparison with the HPA and
/// the static baseline, and `hale eval` takes the run folder as a policy.
#[test]
fn train_on_scaling_compares_with_baselines_and_eval_takes_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("scaling.toml");
    std::fs::write(
        &cfg,
        r#"
exp_name = "tiny"
env = "Scaling-v0"
eval_episodes = 3

[env_config]
scenario = "three-tier"
fidelity = "fluid"
fluid_tick_s = 15.0
control_interval_s = 15.0
episode_s = 600.0
action = "target"

[ppo]
total_timesteps = 1024
num_envs = 2
num_steps = 64
normalize_reward = true
"#,
    )
    .unwrap();
    let out = train(&cfg, &tmp.path().join("r"), &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("paired difference ppo - hpa"), "{stdout}");
    let run = run_dir(&tmp.path().join("r"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    let policies = &summary["comparison"]["policies"];
    for p in ["hpa", "static", "ppo"] {
        assert!(
            policies[p]["slo_violation_min"]["mean"].is_number(),
            "{p}: {summary}"
        );
    }
    let ppo_return = policies["ppo"]["episode_return"]["mean"].as_f64().unwrap();
    assert_eq!(summary["eval_mean_return"].as_f64().unwrap(), ppo_return);

    // The run folder (or its policy/) as a policy of `hale eval`, labelled.
    let eval_out = tmp.path().join("eval");
    let out = hale()
        .args([
            "eval",
            "--env",
            "Scaling-v0",
            "--config",
            r#"{"scenario":"three-tier","fidelity":"fluid","fluid_tick_s":15.0,"episode_s":600.0}"#,
            "--episodes",
            "3",
            "--seed",
            "1000000",
            "--policy",
        ])
        .arg(format!("hpa,mine={}", run.display()))
        .arg("--out")
        .arg(&eval_out)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("paired difference mine - hpa"), "{stdout}");
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eval_out.join("summary.json")).unwrap()).unwrap();
    // Same env config, policy and seeds as the training run's evaluation.
    assert_eq!(
        again["summary"]["policies"]["mine"]["episode_return"]["mean"].as_f64(),
        Some(ppo_return)
    );

    // A bundle for another env is refused before anything runs.
    let out = hale()
        .args(["eval", "--env", "Healing-v0", "--policy"])
        .arg(format!("kubelet,{}", run.join("policy").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("trained on Scaling-v0, asked to drive Healing-v0"),
        "{stderr}"
    );
}

/// A corrupt checkpoint is refused on resume, naming the file, and the run folder is
/// left as it was; configs that mix algorithms or misspell a hyperparameter are
/// refused naming the field.
#[test]
fn resume_refuses_a_corrupt_checkpoint_and_configs_name_their_mistakes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = r#"
env = "CartPole-v1"
algorithm = "dqn"
checkpoint_every = 2
[dqn]
total_timesteps = 2000
steps_per_iteration = 500
learning_starts = 100
buffer_size = 500
batch_size = 16
"#;
    let cfg = tmp.path().join("dqn.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = train(&cfg, &tmp.path().join("r"), &["--stop-after", "2"]);
    assert!(out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("r"));
    let replay = run.join("checkpoints/iter-000002/replay.bin");
    let bytes = std::fs::read(&replay).unwrap();
    std::fs::write(&replay, &bytes[..bytes.len() - 7]).unwrap();
    let metrics_before = std::fs::read(run.join("metrics.csv")).unwrap();
    let out = hale()
        .arg("train")
        .arg("--resume")
        .arg(&run)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("replay.bin") && stderr.contains("truncated or altered"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(run.join("metrics.csv")).unwrap(),
        metrics_before
    );
    assert!(!run.join("policy").exists());

    for (text, names) in [
        (config.replace("batch_size", "batch_sise"), "batch_sise"),
        (format!("{config}\n[ppo]\nnum_envs = 2\n"), "[ppo]"),
        (config.replace("\"dqn\"", "\"sac\""), "sac"),
        (
            config.replace("learning_starts = 100", "exploration_fraction = 1.5"),
            "exploration_fraction",
        ),
    ] {
        std::fs::write(&cfg, &text).unwrap();
        let out = train(&cfg, &tmp.path().join("bad"), &[]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("dqn.toml") && stderr.contains(names),
            "{stderr}"
        );
        assert!(!tmp.path().join("bad").exists());
    }
}

/// `hale export` copies a checked bundle; it refuses a corrupt one and an existing
/// destination, writing nothing.
#[test]
fn export_checks_the_bundle_and_writes_a_whole_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("smoke.toml");
    std::fs::write(&cfg, TRAIN_SMOKE.replace("4096", "1024")).unwrap();
    let out = train(&cfg, &tmp.path().join("r"), &[]);
    assert!(out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("r"));
    let dest = tmp.path().join("deploy/cartpole");
    let out = export(&run, &dest, &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ppo policy for CartPole-v1"));
    for f in ["policy.json", "weights.bpk"] {
        assert_eq!(
            std::fs::read(dest.join(f)).unwrap(),
            std::fs::read(run.join("policy").join(f)).unwrap()
        );
    }
    // The destination exists now: refused.
    let out = export(&run, &dest, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    // A bundle whose policy.json names an unknown field: refused, nothing written.
    let spec = run.join("policy/policy.json");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text.replacen("{", "{\"colour\": 1,", 1)).unwrap();
    let other = tmp.path().join("deploy/other");
    let out = export(&run, &other, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy.json") && stderr.contains("colour"),
        "{stderr}"
    );
    assert!(!other.exists());
}

/// A GNN policy on Healing-v0's resource graph: trained, compared with the kubelet
/// (which reads the matrix view of the same episodes), and evaluated again by
/// `hale eval` from a config that does not ask for the graph.
#[test]
fn gnn_trains_on_the_graph_and_eval_gives_each_policy_its_view() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("gnn.toml");
    std::fs::write(
        &cfg,
        r#"
exp_name = "gnn"
env = "Healing-v0"
eval_episodes = 3

[env_config]
fidelity = "fluid"
episode_s = 600.0
observation = "graph"

[ppo]
network = "gnn"
gnn_hidden = 16
total_timesteps = 512
num_envs = 2
num_steps = 64
normalize_reward = true
"#,
    )
    .unwrap();
    let out = train(&cfg, &tmp.path().join("r"), &[]);
    assert!(out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("r"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    let policies = &summary["comparison"]["policies"];
    let kubelet = policies["kubelet"]["episode_return"]["mean"]
        .as_f64()
        .unwrap();
    let ppo = policies["ppo"]["episode_return"]["mean"].as_f64().unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("policy/policy.json")).unwrap()).unwrap();
    assert_eq!(spec["encoder"]["kind"], "gnn", "{spec}");
    assert_eq!(spec["encoder"]["layout"]["env"], "healing", "{spec}");

    let eval_out = tmp.path().join("eval");
    let out = hale()
        .args([
            "eval",
            "--env",
            "Healing-v0",
            "--config",
            r#"{"fidelity":"fluid","episode_s":600.0}"#,
            "--episodes",
            "3",
            "--seed",
            "1000000",
            "--policy",
        ])
        .arg(format!("kubelet,gnn={}", run.display()))
        .arg("--out")
        .arg(&eval_out)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eval_out.join("summary.json")).unwrap()).unwrap();
    let p = &again["summary"]["policies"];
    assert_eq!(p["gnn"]["episode_return"]["mean"].as_f64(), Some(ppo));
    assert_eq!(
        p["kubelet"]["episode_return"]["mean"].as_f64(),
        Some(kubelet)
    );

    // A GNN over flat observations, or a device this build lacks: refused naming the
    // file or the flag, before any run folder exists.
    let flat = tmp.path().join("flat.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&flat, text.replace("observation = \"graph\"", "")).unwrap();
    let out = train(&flat, &tmp.path().join("never"), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flat.toml") && stderr.contains("observation = \"graph\""),
        "{stderr}"
    );
    // --onnx exports MLPs only: refused for the GNN, nothing written.
    let dest = tmp.path().join("gnn-onnx");
    let out = export(&run, &dest, &["--onnx"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GNN"),
        "{out:?}"
    );
    assert!(!dest.exists());
    let out = train(&cfg, &tmp.path().join("never"), &["--device", "tpu"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--device tpu"));
    assert!(!tmp.path().join("never").exists());
}

/// Python with onnxruntime, if this machine has it (`.ci/run` installs it into a venv
/// and names it in `HALE_PYTHON`); in CI its absence is a failure.
fn onnxruntime_python() -> Option<String> {
    let python = std::env::var("HALE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{python} cannot import onnxruntime and numpy (.ci/run installs them)"
    );
    eprintln!("skipping the onnxruntime check: {python} cannot import onnxruntime and numpy");
    None
}

/// `hale export --onnx` writes an ONNX model that onnxruntime runs to the bundle's
/// own logits and values, for any batch size.
#[test]
fn export_onnx_runs_in_onnxruntime_with_the_bundles_logits() {
    use hale_envs::Value;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("smoke.toml");
    std::fs::write(&cfg, TRAIN_SMOKE.replace("4096", "1024")).unwrap();
    let out = train(&cfg, &tmp.path().join("r"), &[]);
    assert!(out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("r"));
    let dest = tmp.path().join("deploy");
    let out = export(&run, &dest, &["--onnx"]);
    assert!(out.status.success(), "{out:?}");
    let onnx = dest.join("policy.onnx");
    assert!(std::fs::metadata(&onnx).unwrap().len() > 1000);

    let obs = [
        [0.0f32, 0.0, 0.0, 0.0],
        [0.1, -0.5, 0.05, 0.3],
        [-1.0, 1.0, -0.2, -0.7],
    ];
    let policy = hale_policies::bundle::Bundle::load(&dest, &burn::prelude::Device::flex())
        .unwrap()
        .into_policy("ppo");
    let expected: Vec<Vec<f32>> = obs
        .iter()
        .map(|o| policy.logits(&Value::Box(o.to_vec()), None).unwrap())
        .collect();
    let Some(python) = onnxruntime_python() else {
        return;
    };
    let script = r#"
import json, sys
import numpy as np, onnxruntime as ort
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
obs = np.array(json.loads(sys.argv[2]), dtype=np.float32)
name = sess.get_inputs()[0].name
logits, values = sess.run(None, {name: obs})
print(json.dumps({"logits": logits.tolist(), "values": values.tolist(),
                  "shapes": [list(logits.shape), list(values.shape)]}))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&onnx)
        .arg(serde_json::to_string(&obs).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["shapes"], serde_json::json!([[3, 2], [3]]), "{got}");
    for (row, want) in expected.iter().enumerate() {
        for (k, w) in want.iter().enumerate() {
            let g = got["logits"][row][k].as_f64().unwrap() as f32;
            assert!(
                (g - w).abs() < 1e-5,
                "obs {row} logit {k}: onnx {g}, hale {w}"
            );
        }
    }
}

/// A GNN run resumes exactly as well: same metrics, same logits on a real graph.
#[test]
fn gnn_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let env_config =
        serde_json::json!({"fidelity": "fluid", "episode_s": 300.0, "observation": "graph"});
    let mut env = hale_envs::make("Healing-v0", &env_config).unwrap();
    let (graph, _) = env.reset(Some(9), None).unwrap();
    resume_matches_whole_run(
        tmp.path(),
        r#"
exp_name = "gnn"
env = "Healing-v0"
seed = 4
checkpoint_every = 2
eval_episodes = 2

[env_config]
fidelity = "fluid"
episode_s = 300.0
observation = "graph"

[ppo]
network = "gnn"
gnn_hidden = 16
total_timesteps = 640
num_envs = 2
num_steps = 64
"#,
        5,
        &[graph],
    );
}

/// What a probe with bad input found (issue 15, item 11): each is refused at once
/// with the file and field named, leaving no run folder, instead of a panic, an
/// abort, a NaN blamed on the wrong field, or work thrown away at the end.
#[test]
fn issue_15_bad_numbers_are_refused_up_front_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("probe.toml");
    let dqn = "env = \"CartPole-v1\"\nalgorithm = \"dqn\"\n[dqn]\ntotal_timesteps = 2000\n";
    for (text, field) in [
        (
            TRAIN_SMOKE.replace("[ppo]", "[ppo]\nlearning_rate = inf"),
            "`ppo.learning_rate`: must be finite",
        ),
        (
            TRAIN_SMOKE.replace("[ppo]", "[ppo]\nent_coef = nan"),
            "`ppo.ent_coef`: must be finite",
        ),
        (
            TRAIN_SMOKE.replace(
                "[ppo]",
                "[ppo]\nnum_envs = 4294967296\nnum_steps = 4294967296",
            ),
            "`ppo.num_steps`",
        ),
        (
            TRAIN_SMOKE.replace(
                "eval_episodes = 3",
                "eval_episodes = 3\neval_seed = 18446744073709551615",
            ),
            "`eval_seed`",
        ),
        (
            format!("{dqn}buffer_size = 10000000000000\n"),
            "`dqn.buffer_size`",
        ),
    ] {
        std::fs::write(&cfg, &text).unwrap();
        let out = train(&cfg, &tmp.path().join("runs"), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
        assert!(
            stderr.contains("probe.toml") && stderr.contains(field),
            "{text}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!tmp.path().join("runs").exists(), "no run folder is left");
    }

    // Two runs of one config in the same second get two folders.
    std::fs::write(&cfg, TRAIN_SMOKE.replace("4096", "512")).unwrap();
    let runs = tmp.path().join("twice");
    let children: Vec<_> = (0..2)
        .map(|_| {
            hale()
                .arg("train")
                .arg(&cfg)
                .arg("--out")
                .arg(&runs)
                .arg("--stop-after")
                .arg("1")
                .output()
        })
        .collect();
    for out in children {
        let out = out.unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 2);

    // hale eval: seeds past u64::MAX, an absurd episode count, and an --out that
    // cannot be a folder are refused before any episode runs.
    let eval = |extra: &[&str]| {
        hale()
            .args(["eval", "--env", "CartPole-v1", "--policy", "random,noop"])
            .args(extra)
            .output()
            .unwrap()
    };
    for (extra, says) in [
        (
            vec!["--seed", "18446744073709551614", "--episodes", "3"],
            "largest seed",
        ),
        (vec!["--episodes", "18446744073709551615"], "more than"),
    ] {
        let out = eval(&extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("--episodes") && stderr.contains(says),
            "{stderr}"
        );
    }
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = eval(&["--episodes", "2", "--out", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--out") && stderr.contains("a-file"),
        "{stderr}"
    );
}

/// `hale eval` and the adapter agree on a bundle's env config (issue 15): a bundle
/// trained on the demo scenario is refused on three-tier, naming the field, and
/// without --scenario it is evaluated on the scenario it was trained on.
#[test]
fn eval_refuses_a_bundle_on_another_topology_and_defaults_to_its_own_scenario() {
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../adapter/tests/data/demo-scaling-ppo");
    let policies = format!("hpa,ppo={}", bundle.display());
    let out = hale()
        .args([
            "eval",
            "--env",
            "Scaling-v0",
            "--scenario",
            "three-tier",
            "--episodes",
            "2",
        ])
        .args(["--policy", &policies])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // Another scenario is fine if it has the same services and calls; three-tier
    // has not.
    assert!(
        stderr.contains("trained on scenario demo, whose services are [front, api, db]")
            && stderr.contains("--scenario demo"),
        "{stderr}"
    );
    let out = hale()
        .args(["eval", "--env", "Scaling-v0", "--episodes", "2", "--config"])
        .arg(r#"{"episode_s": 300}"#)
        .args(["--policy", &policies])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("\"scenario\":\"demo\""), "{stderr}");
}

/// Errors say each cause once, in words (issue 15: `(os error 2): No such file or
/// directory (os error 2)`, and `Io("Invalid magic number")` for weights that are
/// not burnpack); `--split-fractions` takes the comma form that --help gives.
#[test]
fn errors_say_each_cause_once_and_split_fractions_take_commas() {
    let out = hale()
        .args(["data", "inspect", "/nonexistent/trace.csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");

    // A bundle whose weights are not burnpack (with a checksum that matches them).
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../adapter/tests/data/demo-scaling-ppo/policy.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shipped).unwrap()).unwrap();
    let garbage = b"not a burnpack file at all".to_vec();
    spec["weights_sha256"] = hale_policies::bundle::sha256_hex(&garbage).into();
    std::fs::write(bundle.join("policy.json"), spec.to_string()).unwrap();
    std::fs::write(bundle.join("weights.bpk"), garbage).unwrap();
    let out = hale()
        .args(["eval", "--env", "Scaling-v0", "--episodes", "2", "--policy"])
        .arg(format!("hpa,ppo={}", bundle.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("weights.bpk"), "{stderr}");
    assert!(!stderr.contains("Io(\""), "a Rust debug form: {stderr}");

    let trace = fixture("counts.txt");
    for form in [&["0.6,0.2,0.2"][..], &["0.6", "0.2", "0.2"]] {
        let dest = tmp.path().join(format!("split{}.csv", form.len()));
        let out = hale()
            .args(["data", "convert", "--no-cache", "--step-s", "60"])
            .arg(&trace)
            .args(["--split", "test", "--split-fractions"])
            .args(form)
            .arg("--out")
            .arg(&dest)
            .output()
            .unwrap();
        assert!(out.status.success(), "{form:?}: {out:?}");
        assert!(dest.exists());
    }
    let out = hale()
        .args(["data", "convert", "--no-cache", "--step-s", "60"])
        .arg(&trace)
        .args(["--split-fractions", "0.5,0.5", "--out"])
        .arg(tmp.path().join("x.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("three fractions"), "{stderr}");
}

/// Work is bounded (issue 15: `duration_s = 1e30` passed `hale sim check`, then
/// `hale sim run`, `hale eval` and training's evaluation never ended): a scenario's
/// duration past a year, a period under 1 ms, an env's `episode_s` past a year and
/// `hale sim run --seconds 1e30` are refused, naming the field.
#[test]
fn durations_that_would_never_end_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let builtin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/scenarios/three-tier.toml");
    let text = std::fs::read_to_string(builtin).unwrap();
    for (change, field) in [
        ("duration_s = 1e30", "simulation.duration_s"),
        (
            "duration_s = 3600\nfluid_tick_s = 1e-9",
            "simulation.fluid_tick_s",
        ),
    ] {
        let path = tmp.path().join("long.toml");
        std::fs::write(&path, text.replace("duration_s = 3600", change)).unwrap();
        let out = hale().args(["sim", "check"]).arg(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{stdout}");
        assert!(stdout.contains(field), "{stdout}");
    }
    let out = hale()
        .args(["sim", "run", "three-tier", "--seconds", "1e30"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--seconds") && stderr.contains("a year"),
        "{stderr}"
    );
    let out = hale()
        .args([
            "eval",
            "--env",
            "Healing-v0",
            "--policy",
            "kubelet,noop",
            "--config",
        ])
        .arg(r#"{"episode_s": 1e30}"#)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("episode_s"), "{stderr}");
}

/// A three-tier scenario whose frontend is driven by the NASA trace in ../shared
/// (train split, 15 s steps, one hour at a mean of 600 requests/s), or `None` (with
/// the reason printed) where ../shared is absent.
fn trace_scenario(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let trace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces/nasa_http_1995_per_second/workload.txt");
    if !trace.exists() {
        eprintln!("skipping: {} is absent", trace.display());
        return None;
    }
    let builtin = include_str!("../../sim/scenarios/three-tier.toml");
    let diurnal =
        r#"rate = { kind = "diurnal", mean_rps = 600, amplitude = 0.6, period_s = 3600 }"#;
    assert!(builtin.contains(diurnal));
    let text = builtin.replace(
        diurnal,
        &format!(
            r#"rate = {{ kind = "trace", path = {:?}, step_s = 15.0, split = "train", duration_s = 3600, mean_rps = 600.0 }}"#,
            trace.display().to_string()
        ),
    );
    let path = dir.join("three-tier-nasa.toml");
    std::fs::write(&path, text).unwrap();
    Some(path)
}

/// A tiny PPO config (256 steps, fluid, target actions and two CPU levels, episodes
/// of `episode_s`) on Scaling-v0 with `scenario`, written in `dir`.
fn tiny_scaling_config(
    dir: &std::path::Path,
    scenario: &std::path::Path,
    episode_s: f64,
) -> std::path::PathBuf {
    let cfg = dir.join("train.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
exp_name = "tiny"
env = "Scaling-v0"
eval_episodes = 2

[env_config]
scenario = {:?}
fidelity = "fluid"
fluid_tick_s = 15.0
control_interval_s = 15.0
episode_s = {episode_s:?}
action = "target"
cpu_levels = [0.5, 1.0]

[ppo]
total_timesteps = 256
num_envs = 2
num_steps = 32
"#,
            scenario.display().to_string()
        ),
    )
    .unwrap();
    cfg
}

/// Issue 16: a scenario driven by a real trace works in every command that takes a
/// scenario, for both cloud envs, and a bundle trained on it runs in `hale eval` and
/// in `hale-adapter check`.
#[test]
fn trace_scenarios_work_in_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(scenario) = trace_scenario(tmp.path()) else {
        return;
    };
    let sc = scenario.to_str().unwrap();
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };

    let v: serde_json::Value = serde_json::from_str(&ok(hale()
        .args(["sim", "run", sc, "--seconds", "60", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    // One minute of the trace, rescaled to a mean of 600/s over its train part.
    let arrived = v["requests_arrived"].as_f64().unwrap();
    assert!(arrived > 5_000.0, "{v}");

    for env in ["Scaling-v0", "Healing-v0"] {
        let config = serde_json::json!({ "scenario": sc, "fidelity": "fluid" }).to_string();
        let v: serde_json::Value = serde_json::from_str(&ok(hale()
            .args(["env", "bench", "--env", env, "--config", &config])
            .args(["--num-envs", "2", "--steps", "5"])
            .output()
            .unwrap()))
        .unwrap();
        assert_eq!(v["env_steps"], 10.0, "{env}: {v}");
    }
    let healing = ok(hale()
        .args([
            "eval",
            "--env",
            "Healing-v0",
            "--scenario",
            sc,
            "--episodes",
            "2",
        ])
        .args([
            "--policy",
            "kubelet,noop",
            "--config",
            r#"{"episode_s": 300}"#,
        ])
        .arg("--out")
        .arg(tmp.path().join("healing"))
        .output()
        .unwrap());
    assert!(
        healing.contains("paired difference noop - kubelet"),
        "{healing}"
    );

    let cfg = tiny_scaling_config(tmp.path(), &scenario, 300.0);
    let trained = ok(train(&cfg, &tmp.path().join("r"), &[]));
    assert!(trained.contains("paired difference ppo - hpa"), "{trained}");
    let run = run_dir(&tmp.path().join("r"));

    let eval = ok(hale()
        .args([
            "eval",
            "--env",
            "Scaling-v0",
            "--scenario",
            sc,
            "--episodes",
            "2",
        ])
        .arg("--policy")
        .arg(format!("hpa,mine={}", run.join("policy").display()))
        .arg("--out")
        .arg(tmp.path().join("eval"))
        .output()
        .unwrap());
    assert!(eval.contains("paired difference mine - hpa"), "{eval}");

    // On another scenario of the same topology (the test split, in tiled windows),
    // with a note that says so.
    let test_split = tmp.path().join("three-tier-nasa-test.toml");
    std::fs::write(
        &test_split,
        std::fs::read_to_string(&scenario)
            .unwrap()
            .replace(r#"split = "train""#, r#"split = "test", offset = "tiled""#),
    )
    .unwrap();
    let out = hale()
        .args([
            "eval",
            "--env",
            "Scaling-v0",
            "--episodes",
            "2",
            "--scenario",
        ])
        .arg(&test_split)
        .arg("--policy")
        .arg(format!("hpa,mine={}", run.join("policy").display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("was trained on scenario") && stderr.contains("same services and calls"),
        "{stderr}"
    );

    // The adapter is built beside `hale` by `cargo test --workspace`.
    let adapter = std::path::Path::new(env!("CARGO_BIN_EXE_hale")).with_file_name("hale-adapter");
    assert!(
        adapter.exists(),
        "{} is not built (cargo build -p hale-adapter)",
        adapter.display()
    );
    let adapter_cfg = tmp.path().join("adapter.toml");
    std::fs::write(
        &adapter_cfg,
        format!(
            r#"
policy = {:?}
env = "Scaling-v0"
mode = "auto"
interval_s = 15

[target]
kind = "dry-run"
services = ["frontend", "api", "db"]
cpu_millicores = 500

[observation]
prometheus = "http://127.0.0.1:19090"
[observation.queries]
request_rate = 'sum(rate(app_requests_total{{service="$service"}}[1m]))'
p50_ms = 'p50{{service="$service"}}'
p95_ms = 'p95{{service="$service"}}'
p99_ms = 'p99{{service="$service"}}'
error_rate = 'errors{{service="$service"}}'
cpu_utilization = 'cpu{{service="$service"}}'
"#,
            run.join("policy").display().to_string()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(&adapter)
        .arg("check")
        .arg(&adapter_cfg)
        .output()
        .unwrap();
    let checked = ok(out);
    assert!(checked.contains("for Scaling-v0"), "{checked}");
}

/// Issue 16's generalisation protocol on a per-second counts trace that is not in
/// ../shared (made here): a policy trained on `microservices-20-traces.toml` is
/// evaluated on that scenario with every trace path replaced by the new file (test
/// split, tiled windows, the same rescaling), and `summary.json` reports, per policy,
/// the bill, core-hours, CPU slack and SLO minutes, and their paired differences.
#[test]
fn generalisation_to_another_counts_trace() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !repo.join("../shared/traces").exists() {
        eprintln!("skipping: ../shared/traces is absent");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let scenario = repo.join("experiments/scenarios/microservices-20-traces.toml");
    let cfg = tiny_scaling_config(tmp.path(), &scenario, 600.0);
    let out = train(&cfg, &tmp.path().join("r"), &[]);
    assert!(out.status.success(), "{out:?}");
    let run = run_dir(&tmp.path().join("r"));

    // Eight hours of per-second counts with a daily-ish swing: 1.2 h in its test part.
    let counts: Vec<String> = (0..28_800)
        .map(|t| {
            format!(
                "{}",
                50 + (40.0 * (t as f64 / 3000.0).sin()) as i64 + (t % 7)
            )
        })
        .collect();
    let trace = tmp.path().join("other-site.txt");
    // The NASA file's format: one line, every count followed by a space.
    std::fs::write(&trace, format!("{} ", counts.join(" "))).unwrap();
    let text = std::fs::read_to_string(&scenario).unwrap();
    let mut swapped = String::new();
    for line in text.lines() {
        let line = match line.find("path = \"") {
            Some(i) => {
                let end = i + 8 + line[i + 8..].find('"').unwrap();
                format!(
                    "{}path = {:?}{}",
                    &line[..i],
                    trace.display().to_string(),
                    &line[end + 1..]
                )
            }
            None => line.to_string(),
        };
        swapped.push_str(
            &line
                .replace(r#"split = "train""#, r#"split = "test""#)
                .replace(r#"offset = "random""#, r#"offset = "tiled""#),
        );
        swapped.push('\n');
    }
    assert_eq!(swapped.matches("other-site.txt").count(), 3, "{swapped}");
    let file = tmp.path().join("other-site.toml");
    std::fs::write(&file, swapped).unwrap();
    let dir = tmp.path().join("eval");
    let out = hale()
        .args(["eval", "--env", "Scaling-v0", "--scenario"])
        .arg(&file)
        .arg("--policy")
        .arg(format!("hpa,{}/policy", run.display()))
        .args(["--episodes", "2", "--seed", "77", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let s = &summary["summary"];
    for key in ["cost", "core_hours", "cpu_slack", "slo_violation_min"] {
        for p in ["hpa", "ppo"] {
            assert!(s["policies"][p][key]["mean"].is_number(), "{p} {key}: {s}");
        }
        assert!(
            s["paired_differences"]["ppo - hpa"][key]["diff"].is_number(),
            "{key}: {s}"
        );
    }
}

/// `hale bench`: every shipped task is listed, builds its scenario (traces swapped in,
/// the judged split, fixed windows) and runs; a run writes the paired results beside
/// the exact scenario; bad tasks and arguments are named.
#[test]
fn bench_lists_and_runs_every_task_and_names_bad_input() {
    let list = hale().args(["bench", "list"]).output().unwrap();
    assert!(list.status.success(), "{list:?}");
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    let tasks: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/bench"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "toml").then(|| p.file_stem().unwrap().to_string_lossy().into())
        })
        .collect();
    assert!(tasks.len() >= 8, "{tasks:?}");
    let dir = tempfile::tempdir().unwrap();
    for task in &tasks {
        assert!(text.contains(task.as_str()), "{task} not listed:\n{text}");
        let out = dir.path().join(task);
        let run = hale()
            .args(["bench", "run", task, "--episodes", "2", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{task}: {run:?}");
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("bench.json")).unwrap()).unwrap();
        let policies = record["summary"]["policies"].as_object().unwrap();
        assert!(policies.len() >= 2, "{task}: {record}");
        let scenario = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
        if scenario.contains("kind = \"trace\"") {
            assert!(
                scenario.contains("split = \"test\"") && !scenario.contains("split = \"train\""),
                "{task} is judged on the test part"
            );
            assert!(scenario.contains("offset = \"tiled\""), "{task}");
        }
    }
    // Another part of the traces for model selection.
    let out = dir.path().join("validation");
    let run = hale()
        .args([
            "bench",
            "run",
            "scaling-ms20-nasa",
            "--policy",
            "hpa,static",
        ])
        .args(["--episodes", "2", "--split", "validation", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let scenario = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    assert!(scenario.contains("split = \"validation\""));

    let fails = |args: &[&str], says: &[&str]| {
        let o = hale().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for s in says {
            assert!(err.contains(s), "{args:?} should say {s:?}: {err}");
        }
    };
    fails(
        &["bench", "run", "no-such-task"],
        &["no-such-task", "scaling-ms20-nasa"],
    );
    fails(
        &["bench", "run", "demo", "--split", "holdout"],
        &["--split", "holdout"],
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "description = \"x\"\nenv = \"Scaling-v0\"\nscenario = \"three-tier\"\nepisodes = 1\nseed = 0\nbaselines = [\"hpa\"]\n",
    )
    .unwrap();
    fails(
        &["bench", "run", bad.to_str().unwrap()],
        &["bad.toml", "episodes"],
    );
    std::fs::write(&bad, "description = \"x\"\nenv = \"Scaling-v0\"\nscenario = \"three-tier\"\nepisodes = 2\nseed = 0\nbaselines = [\"hpa\"]\n[trace]\npath = \"nowhere.txt\"\nduration_s = 3600\nmean_rps = [1.0, 2.0]\n").unwrap();
    fails(
        &["bench", "run", bad.to_str().unwrap()],
        &["bad.toml", "trace.mean_rps", "2 rates", "1 workloads"],
    );
    // Without --out a run writes under the temporary folder; a failed one leaves nothing.
    let tmpdir = dir.path().join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let o = hale()
        .args(["bench", "run", bad.to_str().unwrap()])
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0);
}

/// A sweep file over CartPole-v1 in `dir`: learning rates 1e-3 and 3e-4 × seeds 1–3,
/// `steps` each, a checkpoint every 5 iterations.
fn cartpole_sweep(dir: &std::path::Path, steps: u64) -> std::path::PathBuf {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/cartpole-ppo.toml");
    let path = dir.join("sweep.toml");
    std::fs::write(
        &path,
        format!(
            r#"base = {:?}
seeds = [1, 2, 3]
[grid]
"ppo.learning_rate" = [1e-3, 3e-4]
"ppo.total_timesteps" = [{steps}]
"checkpoint_every" = [5]
"eval_episodes" = [5]
"#,
            base.display().to_string()
        ),
    )
    .unwrap();
    path
}

/// `trials.csv` as (trial → (status, column → value)).
fn trial_table(
    out: &std::path::Path,
) -> std::collections::BTreeMap<String, (String, std::collections::BTreeMap<String, String>)> {
    let text = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let row: std::collections::BTreeMap<String, String> = header
                .iter()
                .zip(&cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect();
            (cells[0].to_string(), (row["status"].clone(), row))
        })
        .collect()
}

/// The trials' results that a run determines (not wall times or throughput).
fn results(
    table: &std::collections::BTreeMap<
        String,
        (String, std::collections::BTreeMap<String, String>),
    >,
) -> Vec<(String, String, String)> {
    table
        .iter()
        .map(|(t, (_, row))| {
            (
                t.clone(),
                row["eval/mean_return"].clone(),
                row["train/global_step"].clone(),
            )
        })
        .collect()
}

/// Issue 17: a sweep of 2 values × 3 seeds on CartPole-v1 on 2 jobs. Killed with
/// SIGKILL once a trial has finished and another has a checkpoint, and run again: the
/// finished trials are skipped (not rewritten), the others resume, no trial process
/// outlives the sweep, and every result equals an uninterrupted sweep's. A trial
/// process killed alone fails its trial (named, exit 2) and the sweep's re-run
/// resumes it.
#[test]
fn a_killed_sweep_resumes_and_matches_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = cartpole_sweep(tmp.path(), 30_720);
    let sweep_cmd = |out: &str| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("hale"));
        c.arg("sweep")
            .arg(&sweep)
            .arg("--out")
            .arg(tmp.path().join(out))
            .args(["--jobs", "2"]);
        c
    };
    let whole = sweep_cmd("whole").output().unwrap();
    assert!(whole.status.success(), "{whole:?}");
    let stdout = String::from_utf8_lossy(&whole.stdout);
    assert!(
        stdout.contains("6 trials (2 axis points × 3 seeds)")
            && stdout.contains("point 1 (")
            && stdout.contains("eval/mean_return"),
        "{stdout}"
    );
    let expected = results(&trial_table(&tmp.path().join("whole")));
    assert_eq!(expected.len(), 6);
    let parquet = std::fs::metadata(tmp.path().join("whole/trials.parquet")).unwrap();
    assert!(parquet.len() > 0);

    // Killed mid-way.
    let cut = tmp.path().join("cut");
    let trial = |name: &str| cut.join("trials").join(name);
    let finished = |name: &str| {
        std::fs::read_dir(trial(name))
            .into_iter()
            .flatten()
            .any(|e| e.unwrap().path().join("summary.json").is_file())
    };
    let checkpointed = |name: &str| {
        std::fs::read_dir(trial(name))
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_dir(e.unwrap().path().join("checkpoints")).ok())
            .any(|mut d| d.next().is_some())
    };
    let names: Vec<String> = expected.iter().map(|(t, _, _)| t.clone()).collect();
    let mut child = sweep_cmd("cut")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed mid-way"
        );
        assert!(started.elapsed().as_secs() < 300, "no trial finished");
        let done = names.iter().filter(|n| finished(n)).count();
        let midway = names.iter().any(|n| !finished(n) && checkpointed(n));
        if done >= 1 && midway {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before: Vec<&String> = names.iter().filter(|n| finished(n)).collect();
    let mtime = |name: &str| {
        let run = run_dir_with_config(&trial(name));
        std::fs::metadata(run.join("summary.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let stamps: Vec<_> = done_before.iter().map(|n| mtime(n)).collect();
    // No trial process outlives the sweep: nothing writes metrics any more.
    let sizes = || -> Vec<u64> {
        names
            .iter()
            .filter_map(|n| std::fs::read_dir(trial(n)).ok())
            .flatten()
            .filter_map(|e| std::fs::metadata(e.unwrap().path().join("metrics.csv")).ok())
            .map(|m| m.len())
            .collect()
    };
    let before = sizes();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(before, sizes(), "a trial process outlived the sweep");

    let again = sweep_cmd("cut").output().unwrap();
    assert!(again.status.success(), "{again:?}");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains(&format!(
            "{} trials finished earlier: skipped",
            done_before.len()
        )),
        "{stdout}"
    );
    for (n, stamp) in done_before.iter().zip(&stamps) {
        assert_eq!(mtime(n), *stamp, "{n} was run again");
    }
    let table = trial_table(&cut);
    assert!(table.values().all(|(s, _)| s == "done"), "{table:?}");
    let resumed = names.iter().any(|n| {
        std::fs::read_to_string(trial(n).join("attempts.jsonl"))
            .unwrap()
            .contains("\"resume\":true")
    });
    assert!(resumed, "no trial resumed from its checkpoint");
    assert_eq!(results(&table), expected, "the cut sweep's results differ");

    // One trial's process killed: that trial fails, named; the re-run resumes it.
    let one = tmp.path().join("one");
    let child = sweep_cmd("one")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let victim = one.join("trials/p000-s1");
    let started = std::time::Instant::now();
    while !std::fs::read_dir(&victim)
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.unwrap().path().join("checkpoints")).ok())
        .any(|mut d| d.next().is_some())
    {
        assert!(
            started.elapsed().as_secs() < 300,
            "p000-s1 never checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f"])
        .arg(victim.display().to_string())
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if killed.success() {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("1 of 6 trials failed")
                && stderr.contains("p000-s1: hale train was killed"),
            "{stderr}"
        );
    }
    let again = sweep_cmd("one").output().unwrap();
    assert!(again.status.success(), "{again:?}");
    assert_eq!(results(&trial_table(&one)), expected);

    // The sweep's report: curves per point with a seed band, bars per point.
    let whole = tmp.path().join("whole");
    let out = hale().arg("report").arg(&whole).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = whole.join("report");
    let learning = figure(&report.join("learning"));
    // Two points, each a mean line over three seeds with its band.
    assert!(
        learning.contains("(3 seeds)") && learning.matches("<polygon").count() >= 2,
        "no seed bands"
    );
    assert!(figure(&report.join("points")).contains("eval/mean_return"));
    figure(&report.join("learning-all"));
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    for f in [
        "learning.svg",
        "learning-all.svg",
        "points.svg",
        "learning.png",
    ] {
        assert!(index.contains(f), "index.html lacks {f}");
    }
    // One trial's run folder alone: its curve, no band.
    let run = run_dir_with_config(&whole.join("trials/p000-s1"));
    let out = hale()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(tmp.path().join("one-run"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!figure(&tmp.path().join("one-run/learning")).contains("<polygon"));
    let index = std::fs::read_to_string(tmp.path().join("one-run/index.html")).unwrap();
    assert!(
        index.contains("Evaluation after training: mean return"),
        "{index}"
    );
}

/// Checks that STEM.svg and STEM.png are a drawing and an image; returns the SVG.
fn figure(stem: &std::path::Path) -> String {
    let svg = std::fs::read_to_string(stem.with_extension("svg"))
        .unwrap_or_else(|e| panic!("{}.svg: {e}", stem.display()));
    assert!(
        svg.starts_with("<svg") && svg.contains("</svg>"),
        "{}",
        stem.display()
    );
    let png = std::fs::read(stem.with_extension("png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}.png is not a PNG",
        stem.display()
    );
    // The IHDR chunk: a width and height of at least a panel.
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(w >= 300 && h >= 200, "{}.png is {w}×{h}", stem.display());
    svg
}

#[test]
fn report_draws_an_evaluation_with_its_timeline_and_names_bad_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let eval = tmp.path().join("eval");
    let out = hale()
        .args(["eval", "--env", "Healing-v0", "--policy", "kubelet,noop"])
        .args(["--episodes", "2", "--timeline", "1", "--out"])
        .arg(&eval)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let csv = std::fs::read_to_string(eval.join("timeline.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for col in [
        "slo_ms",
        "bill",
        "faults_started",
        "remedy",
        "replicas/api",
        "replicas/db",
    ] {
        assert!(
            header.split(',').any(|c| c == col),
            "timeline.csv lacks {col}: {header}"
        );
    }
    // Episode 1 of both policies, and the kubelet restarts something in it.
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(1) == Some("1"))
    );
    assert!(
        csv.contains(",restart"),
        "the kubelet never restarted anything"
    );
    let out = hale().arg("report").arg(&eval).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = eval.join("report");
    let kubelet = figure(&report.join("timeline/timeline-kubelet"));
    for text in [
        "SLO 100 ms",
        "replicas per service",
        "remedy: restart",
        "fault",
        "the bill",
    ] {
        assert!(
            kubelet.contains(text),
            "the kubelet's timeline lacks {text:?}"
        );
    }
    figure(&report.join("timeline/timeline-noop"));
    figure(&report.join("timeline/timeline"));
    assert!(figure(&report.join("paired")).contains("− kubelet"));
    assert!(figure(&report.join("comparison")).contains("MTTR"));
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(index.contains("noop - kubelet") && index.contains("timeline/timeline-kubelet.svg"));

    // Bad folders are named; a corrupt file is named with its line.
    let out = hale()
        .arg("report")
        .arg(tmp.path().join("absent"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent: no such folder"));
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = hale().arg("report").arg(&empty).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a run, sweep or evaluation folder"),
        "{stderr}"
    );
    let mut lines: Vec<&str> = csv.lines().collect();
    lines[3] = "kubelet,1,1";
    std::fs::write(eval.join("timeline.csv"), lines.join("\n")).unwrap();
    let out = hale()
        .arg("report")
        .arg(&eval)
        .arg("--out")
        .arg(tmp.path().join("r2"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("timeline.csv line 4: 3 fields where the header has"),
        "{stderr}"
    );
}

/// The run folder (the one with a config.toml) in a trial's folder.
fn run_dir_with_config(trial: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(trial)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("config.toml").is_file())
        .unwrap()
}

/// Issue 17: a sweep of 2 values × 3 seeds on Scaling-v0 runs end to end, each
/// trained policy also judged on a benchmark task; its table has each trial's
/// evaluation against the baselines and on the task, and the summary their paired
/// differences over seeds. A sweep of a benchmark task alone compares the policies
/// it names. Bad axes and a task of another env are refused before anything runs.
#[test]
fn a_scaling_sweep_runs_end_to_end_and_bad_axes_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.toml");
    std::fs::write(
        &base,
        r#"exp_name = "tiny"
env = "Scaling-v0"
eval_episodes = 2

[env_config]
scenario = "three-tier"
fidelity = "fluid"
fluid_tick_s = 15.0
control_interval_s = 15.0
episode_s = 300.0
action = "target"

[ppo]
total_timesteps = 256
num_envs = 2
num_steps = 32
"#,
    )
    .unwrap();
    let sweep = tmp.path().join("sweep.toml");
    // Each trained policy is also judged on a benchmark task of the same topology,
    // where the shared traces are here.
    let traces = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces")
        .exists();
    let bench = if traces {
        "[bench]\ntasks = [\"scaling-three-tier-nasa\"]\nepisodes = 2\n"
    } else {
        ""
    };
    std::fs::write(
        &sweep,
        format!(
            "base = \"base.toml\"\nseeds = [1, 2, 3]\n[grid]\n\"env_config.cost_weight\" = [1.0, 4.0]\n{bench}"
        ),
    )
    .unwrap();
    let out = hale()
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("diff/ppo - hpa/cost"), "{stdout}");
    let table = trial_table(&tmp.path().join("out"));
    assert_eq!(table.len(), 6);
    for (status, row) in table.values() {
        assert_eq!(status, "done");
        let mut columns = vec![
            "eval/hpa/cost",
            "eval/ppo/slo_violation_min",
            "diff/ppo - hpa/cost",
        ];
        if traces {
            columns.push("bench/scaling-three-tier-nasa/diff/trial - hpa/cost");
            columns.push("bench/scaling-three-tier-nasa/eval/static/cpu_slack");
        }
        for column in columns {
            assert!(
                row.get(column).is_some_and(|v| v.parse::<f64>().is_ok()),
                "{column}: {:?}",
                row.get(column)
            );
        }
    }

    // A benchmark sweep alone: one trial per task, its baselines and the policies
    // named, paired.
    std::fs::write(
        &sweep,
        "[bench]\ntasks = [\"demo\"]\npolicies = [\"threshold\"]\nepisodes = 2\n",
    )
    .unwrap();
    let out = hale()
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(tmp.path().join("tasks"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = trial_table(&tmp.path().join("tasks"));
    let (status, row) = &table["demo"];
    assert_eq!(status, "done");
    assert!(
        row["diff/threshold - hpa/cost"].parse::<f64>().is_ok(),
        "{row:?}"
    );
    // Its report: each task drawn as an evaluation, with its timeline.
    let out = hale()
        .arg("report")
        .arg(tmp.path().join("tasks"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = tmp.path().join("tasks/report");
    let paired = figure(&report.join("paired-demo"));
    assert!(paired.contains("− hpa") && paired.contains("threshold"));
    figure(&report.join("comparison-demo"));
    figure(&report.join("timeline-demo/timeline-threshold"));
    // Refused before anything runs, naming what is wrong; nothing is written: a task
    // of another env than the one trained, an axis over a field that is not there.
    for (name, text, said) in [
        (
            "other-env",
            "base = \"base.toml\"\n[bench]\ntasks = [\"healing-lanl\"]\n",
            "task healing-lanl judges Healing-v0 policies",
        ),
        (
            "bad-axis",
            "base = \"base.toml\"\n[grid]\n\"ppo.num_step\" = [16]\n",
            "axis `ppo.num_step`",
        ),
    ] {
        std::fs::write(&sweep, text).unwrap();
        let out = hale()
            .arg("sweep")
            .arg(&sweep)
            .arg("--out")
            .arg(tmp.path().join(name))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
        assert!(!tmp.path().join(name).exists());
    }
}

/// A real MLflow tracking server (sqlite, artifacts proxied) on loopback, stopped on
/// drop; `None` (a skip) where the venv has no mlflow, which CI refuses.
struct Mlflow {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Mlflow {
    fn drop(&mut self) {
        // The server's workers are its children: the process group goes.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mlflow_server() -> Option<Mlflow> {
    use std::os::unix::process::CommandExt;
    let python = std::env::var("HALE_PYTHON").unwrap_or_else(|_| "python3".into());
    let mlflow = std::path::Path::new(&python).with_file_name("mlflow");
    if !mlflow.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is not there (.ci/run installs mlflow into its venv)",
            mlflow.display()
        );
        eprintln!(
            "skipping the MLflow test: {} is not there",
            mlflow.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = std::process::Command::new(&mlflow)
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--backend-store-uri")
        .arg(format!(
            "sqlite:///{}",
            dir.path().join("mlflow.db").display()
        ))
        .arg("--artifacts-destination")
        .arg(dir.path().join("artifacts"))
        .args(["--workers", "1"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let server = Mlflow {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    // Its start (database migrations, workers) takes seconds: wait for /health.
    let started = std::time::Instant::now();
    loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /health HTTP/1.0\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
        });
        if up {
            return Some(server);
        }
        let log =
            std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
        assert!(
            started.elapsed().as_secs() < 120,
            "mlflow server did not come up in 120 s:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// GET a JSON document from the MLflow server (through python's stdlib, as curl may
/// be absent).
/// `hale train CONFIG --out OUT` logged to the MLflow server at `url` (experiment
/// hale-test, model `model`): the run folder and its mlflow.json.
fn train_logged(
    config: &std::path::Path,
    out: &std::path::Path,
    url: &str,
    model: &str,
) -> (std::path::PathBuf, serde_json::Value) {
    let done = hale()
        .arg("train")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(["--mlflow", url, "--mlflow-experiment", "hale-test"])
        .args(["--mlflow-model", model])
        .output()
        .unwrap();
    assert!(done.status.success(), "{done:?}");
    let run = run_dir(out);
    let logged =
        serde_json::from_str(&std::fs::read_to_string(run.join("mlflow.json")).unwrap()).unwrap();
    (run, logged)
}

fn mlflow_get(url: &str, path: &str) -> serde_json::Value {
    let python = std::env::var("HALE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
        ])
        .arg(format!("{url}{path}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {path}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// POST a JSON document to the MLflow server; its answer.
fn mlflow_post(url: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let python = std::env::var("HALE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, urllib.request; r = urllib.request.Request(sys.argv[1], \
             data=sys.argv[2].encode(), headers={'Content-Type': 'application/json'}); \
             print(urllib.request.urlopen(r).read().decode())",
        ])
        .arg(format!("{url}{path}"))
        .arg(body.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "POST {path}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn mlflow_tracks_training_benchmarks_and_sweeps_and_export_fetches_a_registered_model() {
    let Some(server) = mlflow_server() else {
        return;
    };
    let url = server.url.clone();
    let tmp = tempfile::tempdir().unwrap();

    // Bad addresses are named before anything is written.
    let config = tmp.path().join("cartpole.toml");
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/cartpole-ppo.toml");
    let text = std::fs::read_to_string(&base).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("total_timesteps") {
                "total_timesteps = 4096".to_string()
            } else if l.trim_start().starts_with("eval_episodes") {
                "eval_episodes = 3".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text).unwrap();
    let runs = tmp.path().join("runs");
    for (addr, says) in [
        (
            "http://127.0.0.1:1",
            "MLflow at http://127.0.0.1:1 is unreachable",
        ),
        ("localhost:5000", "not an http:// or https:// URL"),
    ] {
        let out = hale()
            .arg("train")
            .arg(&config)
            .arg("--out")
            .arg(&runs)
            .args(["--mlflow", addr])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            !runs.exists(),
            "a run folder was made for an unreachable server"
        );
    }

    // A training run: parameters, metrics, tags, artifacts and a model version.
    let (run, logged) = train_logged(&config, &runs, &url, "cartpole-test");
    assert_eq!(logged["model"]["uri"], "models:/cartpole-test/1");
    let run_id = logged["run_id"].as_str().unwrap();
    let got = mlflow_get(&url, &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
    let data = &got["run"]["data"];
    let has = |list: &str, key: &str| {
        data[list]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["key"] == key)
    };
    for p in ["env", "seed", "ppo.learning_rate", "ppo.total_timesteps"] {
        assert!(has("params", p), "param {p} missing: {data}");
    }
    for m in [
        "charts/episodic_return",
        "losses/value_loss",
        "eval/mean_return",
    ] {
        assert!(has("metrics", m), "metric {m} missing: {data}");
    }
    for t in ["hale.version", "mlflow.source.git.commit", "mlflow.runName"] {
        assert!(has("tags", t), "tag {t} missing: {data}");
    }
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    // Every row of metrics.csv is a point of the curve, at its step.
    let history = mlflow_get(
        &url,
        &format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=losses/value_loss"
        ),
    );
    let rows = std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(history["metrics"].as_array().unwrap().len(), rows);
    let listing = mlflow_get(
        &url,
        &format!("/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=policy"),
    );
    let files: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"policy/policy.json") && files.contains(&"policy/weights.bpk"),
        "{files:?}"
    );

    // The registered version comes back as a bundle, checked, byte for byte.
    let exported = tmp.path().join("exported");
    let out = hale()
        .arg("export")
        .args([
            "--from-mlflow",
            "models:/cartpole-test/1",
            "--mlflow",
            &url,
            "--out",
        ])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for f in ["policy.json", "weights.bpk"] {
        assert_eq!(
            std::fs::read(exported.join(f)).unwrap(),
            std::fs::read(run.join("policy").join(f)).unwrap(),
            "{f}"
        );
    }
    for (model, says) in [
        ("models:/cartpole-test/9", "RESOURCE_DOES_NOT_EXIST"),
        ("models:/cartpole-test/latest", "models:/NAME/VERSION"),
    ] {
        let out = hale()
            .arg("export")
            .args(["--from-mlflow", model, "--mlflow", &url, "--out"])
            .arg(tmp.path().join("never"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(!tmp.path().join("never").exists());
    }

    // A team run (IPPO): every agent's curves, the team folder as the model version,
    // and export fetches it back whole.
    let team_cfg = tmp.path().join("ippo.toml");
    std::fs::write(&team_cfg, IPPO_SMOKE.replace("1536", "384")).unwrap();
    let team_runs = tmp.path().join("team-runs");
    let (team_run, logged) = train_logged(&team_cfg, &team_runs, &url, "team-test");
    assert_eq!(logged["model"]["uri"], "models:/team-test/1");
    let got = mlflow_get(
        &url,
        &format!(
            "/api/2.0/mlflow/runs/get?run_id={}",
            logged["run_id"].as_str().unwrap()
        ),
    );
    let metrics = got["run"]["data"]["metrics"].as_array().unwrap();
    for m in [
        "scaler/losses/value_loss",
        "defender/losses/entropy",
        "eval/mean_return",
    ] {
        assert!(metrics.iter().any(|x| x["key"] == m), "{m}: {metrics:?}");
    }
    let exported = tmp.path().join("team-exported");
    let out = hale()
        .arg("export")
        .args(["--from-mlflow", "models:/team-test/1", "--mlflow", &url])
        .arg("--out")
        .arg(&exported)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for f in ["team.json", "scaler/weights.bpk", "defender/policy.json"] {
        assert_eq!(
            std::fs::read(exported.join(f)).unwrap(),
            std::fs::read(team_run.join("policy").join(f)).unwrap(),
            "{f}"
        );
    }

    // A benchmark run: the comparison as metrics, the folder as artifacts.
    let bench = tmp.path().join("bench");
    let out = hale()
        .args([
            "bench",
            "run",
            "demo",
            "--episodes",
            "2",
            "--mlflow",
            &url,
            "--out",
        ])
        .arg(&bench)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let logged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bench.join("mlflow.json")).unwrap()).unwrap();
    assert_eq!(logged["experiment"], "hale-bench");
    let got = mlflow_get(
        &url,
        &format!(
            "/api/2.0/mlflow/runs/get?run_id={}",
            logged["run_id"].as_str().unwrap()
        ),
    );
    let metrics = got["run"]["data"]["metrics"].as_array().unwrap();
    assert!(
        metrics
            .iter()
            .any(|m| m["key"].as_str().unwrap().starts_with("diff/")),
        "{metrics:?}"
    );

    // A sweep: each trial a run nested under the sweep's, the table on the sweep's.
    let sweep = tmp.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "base = {:?}\nseeds = [1, 2]\n[grid]\n\"ppo.total_timesteps\" = [2048]\n\"eval_episodes\" = [2]\n",
            config.display().to_string()
        ),
    )
    .unwrap();
    let swept = tmp.path().join("swept");
    let out = hale()
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&swept)
        .args(["--jobs", "2", "--mlflow", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let parent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(swept.join("mlflow.json")).unwrap()).unwrap();
    let parent_id = parent["run_id"].as_str().unwrap();
    let listing = mlflow_get(
        &url,
        &format!("/api/2.0/mlflow/artifacts/list?run_id={parent_id}"),
    );
    assert!(listing.to_string().contains("trials.csv"), "{listing}");
    let children = mlflow_post(
        &url,
        "/api/2.0/mlflow/runs/search",
        &serde_json::json!({ "experiment_ids": [parent["experiment_id"]], "max_results": 50 }),
    );
    let nested = children["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter(|r| r.to_string().contains(parent_id) && r["info"]["run_id"] != parent_id)
                .count()
        })
        .unwrap_or(0);
    assert_eq!(nested, 2, "{children}");
}

/// The notebooks run, cell by cell (nbclient), against a run, an evaluation and a
/// sweep made here; a failing cell fails the test.
#[test]
fn the_notebooks_execute_against_a_small_run_evaluation_and_sweep() {
    let python = std::env::var("HALE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import nbclient, polars, matplotlib, ipykernel"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{python} cannot import nbclient, polars, matplotlib and ipykernel (.ci/run installs notebooks/requirements.txt)"
        );
        eprintln!("skipping the notebooks: {python} lacks notebooks/requirements.txt");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/cartpole-ppo.toml");
    let sweep = tmp.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "base = {:?}\nseeds = [1, 2]\n[grid]\n\"ppo.learning_rate\" = [1e-3, 3e-4]\n\"ppo.total_timesteps\" = [2048]\n\"eval_episodes\" = [2]\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    let swept = tmp.path().join("sweep");
    let out = hale()
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&swept)
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let run = run_dir_with_config(&swept.join("trials/p000-s1"));
    let eval = tmp.path().join("eval");
    let out = hale()
        .args([
            "eval",
            "--env",
            "Healing-v0",
            "--policy",
            "kubelet,noop",
            "--episodes",
            "2",
            "--out",
        ])
        .arg(&eval)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let executed = tmp.path().join("executed");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks/execute.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg("--run")
        .arg(&run)
        .arg("--eval")
        .arg(&eval)
        .arg("--sweep")
        .arg(&swept)
        .arg("--out")
        .arg(&executed)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for nb in ["run.ipynb", "evaluation.ipynb", "sweep.ipynb"] {
        assert!(stdout.contains(&format!("ok    {nb}")), "{stdout}");
    }
    for fig in [
        "run-return",
        "eval-means",
        "eval-timeline",
        "sweep-points",
        "sweep-learning",
    ] {
        let png = std::fs::read(executed.join("figures").join(format!("{fig}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{fig}.png");
    }
}

/// A local Ray cluster (a head and one worker node on loopback, one CPU and a capped
/// object store each), stopped on drop.
struct RayCluster {
    ray: std::path::PathBuf,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for RayCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.ray)
            .args(["stop", "--force"])
            .output();
    }
}

fn ray_cluster() -> Option<RayCluster> {
    let python = std::env::var("HALE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ray = std::path::Path::new(&python).with_file_name("ray");
    if !ray.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is not there (.ci/run installs ray[tune] into its venv)",
            ray.display()
        );
        eprintln!("skipping the Ray test: {} is not there", ray.display());
        return None;
    }
    // Ray's socket paths must be short: a folder right under /tmp.
    let dir = tempfile::Builder::new()
        .prefix("hray")
        .tempdir_in("/tmp")
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = RayCluster {
        ray: ray.clone(),
        address: format!("127.0.0.1:{port}"),
        _dir: dir,
    };
    let common = [
        "--node-ip-address",
        "127.0.0.1",
        "--num-cpus",
        "1",
        "--object-store-memory",
        "100000000",
        "--disable-usage-stats",
    ];
    let head = std::process::Command::new(&ray)
        .args([
            "start",
            "--head",
            "--port",
            &port.to_string(),
            "--include-dashboard=false",
        ])
        .args(common)
        .arg("--temp-dir")
        .arg(cluster._dir.path())
        .output()
        .unwrap();
    assert!(head.status.success(), "ray start --head: {head:?}");
    let worker = std::process::Command::new(&ray)
        .args(["start", "--address", &cluster.address])
        .args(common)
        .output()
        .unwrap();
    assert!(worker.status.success(), "ray start (worker): {worker:?}");
    Some(cluster)
}

#[test]
fn a_sweep_on_ray_runs_on_both_nodes_retries_a_killed_trial_and_matches_the_local_backend() {
    let Some(cluster) = ray_cluster() else {
        return;
    };
    let python = std::env::var("HALE_PYTHON").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/cartpole-ppo.toml");
    let sweep = tmp.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "base = {:?}\nseeds = [1, 2]\n[grid]\n\"ppo.learning_rate\" = [1e-3, 3e-4]\n\"ppo.total_timesteps\" = [40960]\n\"checkpoint_every\" = [2]\n\"eval_episodes\" = [3]\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    let local = tmp.path().join("local");
    let out = hale()
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&local)
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let expected = results(&trial_table(&local));

    let driver = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ray/hale_tune.py");
    let on_ray = tmp.path().join("ray");
    let tune = |out: &std::path::Path, address: &str| {
        let mut c = std::process::Command::new(&python);
        c.arg(&driver)
            .arg(&sweep)
            .arg("--out")
            .arg(out)
            .args(["--address", address, "--hale"])
            .arg(assert_cmd::cargo::cargo_bin("hale"));
        c
    };
    let child = tune(&on_ray, &cluster.address)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // One trial's process killed after its first checkpoint: Tune retries it.
    let victim = on_ray.join("trials/p000-s1");
    let started = std::time::Instant::now();
    while !std::fs::read_dir(&victim)
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.unwrap().path().join("checkpoints")).ok())
        .any(|mut d| d.next().is_some())
    {
        assert!(
            started.elapsed().as_secs() < 300,
            "p000-s1 never checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f"])
        .arg(format!("hale train .*{}", victim.display()))
        .status()
        .unwrap();
    assert!(killed.success(), "no hale train process of p000-s1 to kill");
    let out = child.wait_with_output().unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    let attempts = std::fs::read_to_string(victim.join("attempts.jsonl")).unwrap();
    assert!(
        attempts.contains("\"resume\": true") && attempts.contains("\"exit\": -9"),
        "p000-s1 was not retried from its checkpoint: {attempts}"
    );
    // Trials ran on both nodes.
    let nodes: std::collections::BTreeSet<String> = ["p000-s1", "p000-s2", "p001-s1", "p001-s2"]
        .iter()
        .map(|t| {
            std::fs::read_to_string(on_ray.join("trials").join(t).join("ray-node.txt")).unwrap()
        })
        .collect();
    assert_eq!(nodes.len(), 2, "the trials ran on {nodes:?}");
    // The same table, the same results as the local backend.
    let table = trial_table(&on_ray);
    assert!(table.values().all(|(s, _)| s == "done"), "{table:?}");
    assert_eq!(
        results(&table),
        expected,
        "Ray's results differ from the local backend's"
    );

    // Run again: the experiment is restored, every trial finished, nothing runs.
    let again = tune(&on_ray, &cluster.address).output().unwrap();
    let log = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{again:?}");
    assert!(log.contains("restoring the Tune experiment"), "{log}");
    assert_eq!(
        std::fs::read_to_string(victim.join("attempts.jsonl")).unwrap(),
        attempts
    );

    // No cluster at the address: named, nothing written.
    let nowhere = tmp.path().join("nowhere");
    let out = tune(&nowhere, "127.0.0.1:1").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--address 127.0.0.1:1: no Ray cluster answers there"),
        "{stderr}"
    );
    assert!(!nowhere.exists());
}

const IPPO_SMOKE: &str = r#"
exp_name = "ippo-smoke"
env = "CloudOps-v0"
algorithm = "ippo"
seed = 4
checkpoint_every = 2
eval_episodes = 2

[env_config]
scaler_action = "target"
max_steps = 30

[ppo]
total_timesteps = 1536
num_envs = 3
num_steps = 64
num_minibatches = 2
update_epochs = 2
hidden = [16]
"#;

/// Issue 20: IPPO from `hale train`. The run folder holds a team folder (`team.json`
/// and one bundle per agent, each for the env its agent mirrors); the summary pairs
/// the team with the team of baselines; a run stopped and resumed logs and ends
/// exactly as the whole run; `hale eval` takes the run as a team, and a team folder
/// without one of the env's agents is refused naming it. MAPPO's run does the same.
/// Single- and multi-agent algorithms on the wrong kind of env are refused up front.
#[test]
fn ippo_and_mappo_train_teams_that_resume_exactly_and_evaluate_as_one() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("ippo.toml");
    std::fs::write(&cfg, IPPO_SMOKE).unwrap();
    let out = train(&cfg, &tmp.path().join("whole"), &[]);
    assert!(out.status.success(), "{out:?}");
    let a = run_dir(&tmp.path().join("whole"));
    let team: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("policy/team.json")).unwrap()).unwrap();
    assert_eq!(team["env_id"], "CloudOps-v0");
    assert_eq!(
        team["agents"],
        serde_json::json!(["scaler", "healer", "defender"])
    );
    let mirrors = [
        ("scaler", "Scaling-v0"),
        ("healer", "Healing-v0"),
        ("defender", "Security-v0"),
    ];
    for (agent, env) in mirrors {
        let spec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(a.join(format!("policy/{agent}/policy.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(spec["env_id"], env, "{agent}");
        assert_eq!(spec["algorithm"], "ippo");
    }
    let metrics = metrics_without_sps(&a);
    assert_eq!(metrics.len(), 9, "8 iterations of 3 × 64 joint steps");
    assert!(metrics[0].contains("scaler/losses/value_loss,"));
    assert!(metrics[0].contains("defender/losses/explained_variance"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("summary.json")).unwrap()).unwrap();
    let policies = &summary["comparison"]["policies"];
    assert!(policies["baselines"]["conflicts"]["mean"].is_number());
    assert!(policies["ippo"]["cost"]["mean"].is_number());
    assert!(
        summary["comparison"]["paired_differences"]["ippo - baselines"]["conflicts"].is_object()
    );
    assert_eq!(summary["global_step"], 1536);

    // Stopped at a checkpoint and resumed: the same rows and the same weights.
    let parts = tmp.path().join("parts");
    let out = train(&cfg, &parts, &["--stop-after", "3"]);
    assert!(out.status.success(), "{out:?}");
    let b = run_dir(&parts);
    assert!(b.join("checkpoints/iter-000004/scaler.model.bpk").exists());
    let out = hale()
        .arg("train")
        .arg("--resume")
        .arg(&b)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(metrics_without_sps(&b), metrics);
    for (agent, _) in mirrors {
        let weights = |run: &std::path::Path| {
            std::fs::read(run.join(format!("policy/{agent}/weights.bpk"))).unwrap()
        };
        assert_eq!(weights(&a), weights(&b), "{agent}'s weights");
    }

    // The run is a team for `hale eval`, beside the team of baselines.
    let eval_out = tmp.path().join("eval");
    let team_arg = format!("ippo={}", a.display());
    let r = eval(
        &[
            "--env",
            "CloudOps-v0",
            "--policy",
            &format!("hpa+kubelet+react-restore,{team_arg}"),
            "--episodes",
            "2",
        ],
        &eval_out,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let table = String::from_utf8_lossy(&r.stdout);
    assert!(
        table.contains("ippo") && table.contains("conflicts"),
        "{table}"
    );
    // With a fourth agent the team folder has no optimiser: refused, naming it.
    let r = eval(
        &[
            "--env",
            "CloudOps-v0",
            "--config",
            r#"{"agents": ["scaler", "healer", "defender", "optimiser"]}"#,
            "--policy",
            &team_arg,
            "--episodes",
            "2",
        ],
        &tmp.path().join("eval4"),
    );
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("agents"), "{err}");

    // MAPPO: the same run with critics that read the state; its bundles are the
    // actors, and play as a team on the agents' own observations.
    std::fs::write(
        &cfg,
        IPPO_SMOKE
            .replace("algorithm = \"ippo\"", "algorithm = \"mappo\"")
            .replace("1536", "384"),
    )
    .unwrap();
    let out = train(&cfg, &tmp.path().join("mappo"), &[]);
    assert!(out.status.success(), "{out:?}");
    let m = run_dir(&tmp.path().join("mappo"));
    let team: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("policy/team.json")).unwrap()).unwrap();
    assert_eq!(team["algorithm"], "mappo");
    let r = eval(
        &[
            "--env",
            "CloudOps-v0",
            "--policy",
            &format!("mappo={},{team_arg}", m.display()),
            "--episodes",
            "2",
        ],
        &tmp.path().join("eval-mappo"),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    // One network shared by every agent: each agent's bundle is the network cut down
    // to its own observation and actions, and the team plays in `hale eval`.
    std::fs::write(
        &cfg,
        IPPO_SMOKE
            .replace("hidden = [16]", "hidden = [16]\nshare_parameters = true")
            .replace("1536", "384"),
    )
    .unwrap();
    let out = train(&cfg, &tmp.path().join("shared"), &[]);
    assert!(out.status.success(), "{out:?}");
    let sh = run_dir(&tmp.path().join("shared"));
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sh.join("policy/healer/policy.json")).unwrap())
            .unwrap();
    assert_eq!(spec["hyperparameters"]["share_parameters"], true);
    assert_eq!(spec["env_id"], "Healing-v0");
    let r = eval(
        &[
            "--env",
            "CloudOps-v0",
            "--policy",
            &format!("shared={},{team_arg}", sh.display()),
            "--episodes",
            "2",
        ],
        &tmp.path().join("eval-shared"),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    // A GNN per agent: the agents that observe the graph get one (with their mirror
    // env's action layout), the optimiser an MLP; the team plays in `hale eval`.
    std::fs::write(
        &cfg,
        IPPO_SMOKE
            .replace(
                "max_steps = 30",
                "max_steps = 30\nobservation = \"graph\"\nagents = [\"scaler\", \"healer\", \"defender\", \"optimiser\"]",
            )
            .replace("hidden = [16]", "hidden = [16]\nnetwork = \"gnn\"\ngnn_hidden = 8")
            .replace("1536", "384"),
    )
    .unwrap();
    let out = train(&cfg, &tmp.path().join("gnn"), &[]);
    assert!(out.status.success(), "{out:?}");
    let g = run_dir(&tmp.path().join("gnn"));
    for (agent, kind) in [
        ("scaler", "gnn"),
        ("healer", "gnn"),
        ("defender", "gnn"),
        ("optimiser", "mlp"),
    ] {
        let spec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(g.join(format!("policy/{agent}/policy.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(spec["encoder"]["kind"], kind, "{agent}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.join("summary.json")).unwrap()).unwrap();
    assert!(summary["comparison"]["policies"]["ippo"]["cost"]["mean"].is_number());

    // `hale export` copies a team folder whole, every member checked: MAPPO's MLP
    // actors also as ONNX, and the copy plays as the team did.
    let exported = tmp.path().join("exported");
    let out = hale()
        .arg("export")
        .arg(&m)
        .arg("--out")
        .arg(&exported)
        .arg("--onnx")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(exported.join("team.json")).unwrap(),
        std::fs::read(m.join("policy/team.json")).unwrap()
    );
    for (agent, _) in mirrors {
        for f in ["policy.json", "weights.bpk"] {
            assert_eq!(
                std::fs::read(exported.join(agent).join(f)).unwrap(),
                std::fs::read(m.join("policy").join(agent).join(f)).unwrap(),
                "{agent}/{f}"
            );
        }
        assert!(
            exported.join(agent).join("policy.onnx").is_file(),
            "{agent}"
        );
    }
    let r = eval(
        &[
            "--env",
            "CloudOps-v0",
            "--policy",
            &format!("run={},copy={}", m.display(), exported.display()),
            "--episodes",
            "2",
        ],
        &tmp.path().join("eval-export"),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("eval-export/summary.json")).unwrap(),
    )
    .unwrap();
    let policies = &summary["summary"]["policies"];
    assert!(policies["run"]["cost"]["mean"].is_number(), "{summary}");
    assert_eq!(policies["run"]["cost"], policies["copy"]["cost"]);
    // A GNN member cannot go to ONNX: refused naming it, nothing written.
    let out = hale()
        .arg("export")
        .arg(&g)
        .arg("--onnx")
        .arg("--out")
        .arg(tmp.path().join("never"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GNN") && stderr.contains("scaler"),
        "{stderr}"
    );
    assert!(!tmp.path().join("never").exists());
    // A team file that lists an agent without a bundle: refused naming the file.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("team.json"),
        r#"{"agents": ["scaler", "optimiser"]}"#,
    )
    .unwrap();
    let out = hale()
        .arg("export")
        .arg(&broken)
        .arg("--out")
        .arg(tmp.path().join("never"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scaler"), "{stderr}");
    assert!(!tmp.path().join("never").exists());

    // The wrong algorithm for the env's kind of agents, refused before anything is
    // written.
    for (from, to, says) in [
        (
            "algorithm = \"ippo\"",
            "algorithm = \"ppo\"",
            "algorithm = \"ippo\"",
        ),
        ("env = \"CloudOps-v0\"", "env = \"Scaling-v0\"", "use ppo"),
    ] {
        std::fs::write(&cfg, IPPO_SMOKE.replace(from, to)).unwrap();
        let out = train(&cfg, &tmp.path().join("refused"), &[]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ippo.toml") && stderr.contains("algorithm") && stderr.contains(says),
            "{stderr}"
        );
        assert!(!tmp.path().join("refused").exists());
    }
}
