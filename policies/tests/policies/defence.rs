//! Security-v0's CAGE 2 mode against CybORG itself: CAGE 2's scripted defenders score
//! in hale what they score in CybORG v2, attacker by attacker.
//!
//! The reference figures were measured by running CybORG (cage-challenge-2, Scenario2,
//! 100 steps) with `python3 benches/scripts/cyborg_reference.py --episodes 400`; hale
//! plays 1000 episodes of each pair on fixed seeds, so the test is deterministic. A
//! pair passes when the two means differ by less than three standard errors of their
//! difference.

use hale_policies::{PolicyContext, eval, make_policy};
use serde_json::json;

/// (attacker, defender, CybORG's mean, its standard error). Sleep: the challenge's
/// published means (1000 episodes); React-*: 400 episodes; decoy-first (hale's rule
/// written as a CybORG agent in the script, which checks the decoys): 150 episodes.
const CYBORG: [(&str, &str, f64, f64); 8] = [
    ("b_line", "noop", -1134.0, 0.7),
    ("b_line", "react-restore", -526.1, 17.2),
    ("b_line", "react-remove", -933.7, 9.5),
    ("meander", "noop", -972.0, 2.2),
    ("meander", "react-restore", -236.2, 11.0),
    ("meander", "react-remove", -645.4, 13.1),
    ("b_line", "decoy-first", -56.7, 2.2),
    ("meander", "decoy-first", -89.3, 6.1),
];

#[test]
fn cage2_defenders_score_what_they_score_in_cyborg() {
    let episodes = 1000;
    let mut report = vec![];
    let mut failed = false;
    for (red, policy, reference, reference_se) in CYBORG {
        let config = json!({"red": red, "observation": "table+alerts"});
        let mut env = hale_envs::make("Security-v0", &config).unwrap();
        let ctx = PolicyContext::new("Security-v0", &config, env.as_ref()).unwrap();
        let mut p = make_policy(policy, &ctx).unwrap();
        let returns: Vec<f64> = (0..episodes)
            .map(|i| {
                p.reset();
                eval::play(env.as_mut(), policy, (i, 10_000 + i as u64), |o, m| {
                    p.act(o, m).map_err(|e| e.to_string())
                })
                .unwrap()
                .episode_return
            })
            .collect();
        let n = returns.len() as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let band = 3.0 * ((sd * sd / n) + reference_se * reference_se).sqrt();
        let ok = (mean - reference).abs() < band;
        failed |= !ok;
        report.push(format!(
            "{red:>8} vs {policy:<14} hale {mean:8.1} ± {:5.1}  CybORG {reference:8.1} ± {reference_se:5.1}  {}",
            sd / n.sqrt(),
            if ok { "ok" } else { "OFF" }
        ));
    }
    eprintln!("{}", report.join("\n"));
    assert!(!failed, "\n{}", report.join("\n"));
}

/// The rules read the table; behind `table+scans` (the table and the scan memory) they
/// play the same episodes as behind the plain table.
#[test]
fn the_rules_read_the_table_behind_the_scan_memory() {
    for policy in ["react-restore", "decoy-first", "noop"] {
        let returns = |observation: &str| -> Vec<f64> {
            let config = json!({"red": "meander", "observation": observation});
            let mut env = hale_envs::make("Security-v0", &config).unwrap();
            let ctx = PolicyContext::new("Security-v0", &config, env.as_ref()).unwrap();
            let mut p = make_policy(policy, &ctx).unwrap();
            (0..20)
                .map(|i| {
                    p.reset();
                    eval::play(env.as_mut(), policy, (i, 500 + i as u64), |o, m| {
                        p.act(o, m).map_err(|e| e.to_string())
                    })
                    .unwrap()
                    .episode_return
                })
                .collect()
        };
        assert_eq!(returns("table+scans"), returns("table"), "{policy}");
    }
}
