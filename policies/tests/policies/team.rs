//! Teams on CloudOps-v0: each agent's policy reads what its mirror env would give it;
//! the team of baselines plays whole episodes, the same on the same seed; a team of
//! the wrong size or shape is refused by name.

use hale_envs::{CloudOps, ParallelEnv};
use hale_policies::team::{Team, agent_context, baseline_member, parse, play_team};
use hale_policies::{PolicySpec, make_policy};
use serde_json::json;

fn load(
    spec: &PolicySpec,
    ctx: &hale_policies::PolicyContext,
) -> Result<Box<dyn hale_policies::Policy>, hale_policies::PolicyError> {
    let hale_policies::PolicySource::Baseline(name) = &spec.source else {
        panic!("baselines only here")
    };
    make_policy(name, ctx)
}

#[test]
fn every_agent_mirrors_a_single_agent_env_with_the_same_spaces() {
    let config = json!({
        "scaler_action": "target",
        "agents": ["scaler", "healer", "defender", "optimiser"],
        "spot_notice_s": 30, "memory_levels": [0.5, 1.0], "host_slots": 12,
    });
    let env = CloudOps::new(&config).unwrap();
    for agent in env.possible_agents() {
        let ctx = agent_context(&env, &config, agent).unwrap();
        assert_eq!(
            &ctx.observation_space,
            env.observation_space(agent).unwrap()
        );
        assert_eq!(&ctx.action_space, env.action_space(agent).unwrap());
        make_policy(baseline_member(agent).unwrap(), &ctx).unwrap();
    }
    // With graph views, the scaler, healer and defender mirror their envs' graph
    // observations (what their GNN bundles were trained on).
    let config = json!({
        "scaler_action": "target",
        "agents": ["scaler", "healer", "defender", "optimiser"],
        "observation": "graph",
    });
    let env = CloudOps::new(&config).unwrap();
    for agent in env.possible_agents() {
        let ctx = agent_context(&env, &config, agent).unwrap();
        assert_eq!(
            &ctx.observation_space,
            env.observation_space(agent).unwrap(),
            "{agent}"
        );
        let graph = matches!(ctx.observation_space, hale_envs::Space::Graph { .. });
        assert_eq!(graph, agent != "optimiser", "{agent}");
    }
}

#[test]
fn the_baseline_team_plays_the_same_episode_on_the_same_seed_and_acts() {
    let config = json!({"scaler_action": "target", "max_steps": 60});
    let play = |seed| {
        let mut env = CloudOps::new(&config).unwrap();
        let mut team = Team::new(&env, &config, &parse("hpa+kubelet+react-restore"), load).unwrap();
        play_team(&mut env, &mut team, "baselines", (0, seed)).unwrap()
    };
    let (a, b) = (play(11), play(11));
    assert_eq!(a.steps, 60);
    assert_eq!(a.episode_return.to_bits(), b.episode_return.to_bits());
    assert_eq!(
        (a.evictions, a.double_restarts),
        (b.evictions, b.double_restarts)
    );
    let sum = a.team_cost + a.team_slo + a.team_unserved + a.team_security + a.team_actions;
    assert!(
        (a.episode_return - sum).abs() < 1e-6,
        "{} vs {sum}",
        a.episode_return
    );
    assert!(a.actions > 0, "the HPA, the kubelet or React-Restore acted");
    assert!(a.cost > 0.0 && a.requests > 0.0);
}

#[test]
fn a_team_of_the_wrong_size_or_kind_is_refused_by_name() {
    let config = json!({"scaler_action": "target"});
    let env = CloudOps::new(&config).unwrap();
    let e = Team::new(&env, &config, &parse("hpa+kubelet"), load)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("one member per agent") && e.contains("scaler, healer, defender"),
        "{e}"
    );
    let e = Team::new(&env, &config, &parse("kubelet+kubelet+react-restore"), load)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("kubelet") && e.contains("Healing-v0"), "{e}");
    // The HPA sets counts: with delta actions it says so.
    let delta = json!({});
    let env = CloudOps::new(&delta).unwrap();
    let e = Team::new(&env, &delta, &parse("hpa+kubelet+react-restore"), load)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("target"), "{e}");
}

#[test]
fn the_karpenter_like_optimiser_moves_the_team_to_spot_within_its_budget() {
    let config = json!({
        "scaler_action": "target", "max_steps": 90,
        "agents": ["scaler", "healer", "defender", "optimiser"],
    });
    let mut env = CloudOps::new(&config).unwrap();
    let mut team = Team::new(
        &env,
        &config,
        &parse("hpa+kubelet+react-restore+karpenter"),
        load,
    )
    .unwrap();
    let e = play_team(&mut env, &mut team, "baselines", (0, 5)).unwrap();
    assert!(e.consolidations >= 5, "{} consolidations", e.consolidations);
    assert!(e.spot_share > 0.5, "spot share {}", e.spot_share);
    // Its budget: never more than 10 % of the live hosts (rounded up) disrupted at once.
    let sim = env.simulation().unwrap();
    let disrupted = sim.hosts().iter().filter(|h| h.consolidating).count();
    let live = sim
        .hosts()
        .iter()
        .filter(|h| h.state != hale_sim::HostState::Removed)
        .count();
    assert!(disrupted <= live.div_ceil(10), "{disrupted} of {live}");
}

/// A team folder (what `hale train` writes for IPPO) gives one bundle per agent, in
/// the env's order; one without an agent's bundle is refused, naming the agent and
/// the file that is missing. `A+B+C` is read member by member as before.
#[test]
fn a_team_folder_gives_its_agents_bundles_in_order() {
    use hale_policies::{PolicySource, team};
    let dir = std::env::temp_dir().join(format!("hale-team-folder-{}", std::process::id()));
    let policy = dir.join("policy");
    for agent in ["defender", "scaler"] {
        std::fs::create_dir_all(policy.join(agent)).unwrap();
        std::fs::write(policy.join(agent).join("policy.json"), "{}").unwrap();
    }
    std::fs::write(policy.join(team::TEAM_FILE), r#"{"algorithm": "ippo"}"#).unwrap();
    let agents: Vec<String> = ["scaler", "defender"].map(String::from).to_vec();
    let text = dir.display().to_string();
    let members = team::members(&text, &agents).unwrap();
    let dirs: Vec<_> = members
        .iter()
        .map(|m| match &m.source {
            PolicySource::Bundle(d) => d.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(dirs, [policy.join("scaler"), policy.join("defender")]);
    assert_eq!(members[0].label, "scaler");
    // The run folder parses as one policy labelled with its algorithm.
    let spec = hale_policies::PolicySpec::parse(&text);
    assert_eq!(spec.label, "ippo");
    let three: Vec<String> = ["scaler", "healer", "defender"].map(String::from).to_vec();
    let e = team::members(&text, &three).unwrap_err().to_string();
    assert!(
        e.contains("no bundle for agent healer") && e.contains("healer/policy.json"),
        "{e}"
    );
    assert_eq!(team::members("hpa+kubelet", &three).unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
