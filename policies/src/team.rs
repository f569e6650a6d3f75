//! Teams for multi-agent envs (CloudOps-v0): one policy per agent, each reading its
//! agent's observation as the single-agent env that agent mirrors would give it, so
//! that every single-agent baseline (and, later, bundle) can play its part.
//!
//! A team is written `MEMBER+MEMBER+…`, one member per agent in the env's
//! `possible_agents` order (`hpa+kubelet+react-restore` for scaler, healer, defender).

use crate::eval::{Episode, PlayError, Recorder};
use crate::{Policy, PolicyContext, PolicyError, PolicySpec};
use hale_envs::{AgentMap, Env, Info, ParallelEnv, Value};
use serde_json::{Value as Json, json};

/// The team of baselines, per agent: the HPA scales, the kubelet heals, React-Restore
/// defends, a Karpenter-like consolidator cuts the bill.
pub fn baseline_member(agent: &str) -> Option<&'static str> {
    match agent {
        "scaler" => Some("hpa"),
        "healer" => Some("kubelet"),
        "defender" => Some("react-restore"),
        "optimiser" => Some("karpenter"),
        _ => None,
    }
}

/// The members of team `text` (`A+B+C`).
pub fn parse(text: &str) -> Vec<PolicySpec> {
    text.split('+').map(PolicySpec::parse).collect()
}

/// The file that makes a folder a team folder: what `hale train` writes for a
/// multi-agent run (`algorithm = "ippo"` or `"mappo"`), beside one bundle per agent
/// (`scaler/policy.json`, …). It holds the multi-agent env's id and resolved config,
/// the agents and the algorithm.
pub const TEAM_FILE: &str = "team.json";

/// The team folder at `path` (or at `path/policy`, a run folder's), if there is one.
pub fn team_dir(path: &std::path::Path) -> Option<std::path::PathBuf> {
    [path.to_path_buf(), path.join("policy")]
        .into_iter()
        .find(|d| d.join(TEAM_FILE).is_file())
}

/// The members of team `text` for `agents` (in order): `A+B+C` one per agent, or one
/// team folder ([`TEAM_FILE`]) whose bundles are taken agent by agent.
pub fn members(text: &str, agents: &[String]) -> Result<Vec<PolicySpec>, PolicyError> {
    let Some(dir) = (!text.contains('+'))
        .then(|| team_dir(std::path::Path::new(text)))
        .flatten()
    else {
        return Ok(parse(text));
    };
    agents
        .iter()
        .map(|agent| {
            let bundle = dir.join(agent);
            if bundle.join("policy.json").is_file() {
                Ok(PolicySpec {
                    label: agent.clone(),
                    source: crate::PolicySource::Bundle(bundle),
                })
            } else {
                Err(PolicyError::Mismatch {
                    policy: dir.display().to_string(),
                    env: "CloudOps-v0".into(),
                    reason: format!(
                        "the team folder has no bundle for agent {agent} ({} missing): \
                         was it trained with other agents? (see its {TEAM_FILE})",
                        bundle.join("policy.json").display()
                    ),
                })
            }
        })
        .collect()
}

/// The single-agent env (id and config) whose observation and actions `agent` of
/// multi-agent env `env_id` (with `config`) has.
pub fn mirror(
    env_id: &str,
    config: &Json,
    agent: &str,
) -> Result<(&'static str, Json), PolicyError> {
    let mismatch = |reason: String| PolicyError::Mismatch {
        policy: agent.into(),
        env: env_id.into(),
        reason,
    };
    if env_id != "CloudOps-v0" {
        return Err(mismatch("teams play CloudOps-v0".into()));
    }
    let cfg = hale_envs::CloudOpsConfig::from_json(config).map_err(|e| mismatch(e.to_string()))?;
    let fidelity = serde_json::to_value(cfg.fidelity).unwrap_or(Json::Null);
    let graph = cfg.observation == hale_envs::encoding::ObservationKind::Graph;
    let (id, mut single) = match agent {
        "scaler" => (
            "Scaling-v0",
            json!({
                "scenario": cfg.scenario, "fidelity": fidelity, "control_interval_s": cfg.step_s,
                "action": cfg.scaler_action, "min_replicas": cfg.min_replicas,
                "max_replicas": cfg.max_replicas,
            }),
        ),
        "healer" => (
            "Healing-v0",
            json!({
                "scenario": cfg.scenario, "fidelity": fidelity, "control_interval_s": cfg.step_s,
                "max_replicas": cfg.healer_replicas, "max_hosts": cfg.healer_hosts,
            }),
        ),
        "defender" => (
            "Security-v0",
            json!({
                "scenario": cfg.scenario, "fidelity": fidelity, "step_s": cfg.step_s,
                "max_steps": cfg.max_steps,
            }),
        ),
        "optimiser" => (
            "Cost-v0",
            json!({
                "scenario": cfg.scenario, "fidelity": fidelity, "control_interval_s": cfg.step_s,
                "spot_price": cfg.cost.spot_price, "spot_notice_s": cfg.cost.spot_notice_s,
                "spot_lifetime_s": cfg.cost.spot_lifetime_s, "slack": cfg.cost.slack,
                "memory_levels": cfg.memory_levels, "cpu_levels": cfg.cpu_levels,
                "host_slots": cfg.host_slots,
            }),
        ),
        other => return Err(mismatch(format!("no agent `{other}`"))),
    };
    // The graph views are the mirror envs' own (the optimiser's is its matrix).
    if graph
        && agent != "optimiser"
        && let Some(obj) = single.as_object_mut()
    {
        obj.insert("observation".into(), json!("graph"));
    }
    Ok((id, single))
}

/// The context of `agent`'s policy: its mirror env's, checked to have the agent's
/// spaces.
pub fn agent_context(
    env: &dyn ParallelEnv,
    config: &Json,
    agent: &str,
) -> Result<PolicyContext, PolicyError> {
    let (id, single) = mirror(env.id(), config, agent)?;
    let mismatch = |reason: String| PolicyError::Mismatch {
        policy: agent.into(),
        env: env.id().into(),
        reason,
    };
    let made = hale_envs::make(id, &single).map_err(|e| mismatch(e.to_string()))?;
    let spaces = |e: &dyn Env| (e.observation_space().clone(), e.action_space().clone());
    let theirs = spaces(made.as_ref());
    let ours = (
        env.observation_space(agent)
            .map_err(|e| mismatch(e.to_string()))?
            .clone(),
        env.action_space(agent)
            .map_err(|e| mismatch(e.to_string()))?
            .clone(),
    );
    if theirs != ours {
        return Err(mismatch(format!(
            "its observation and actions are not {id}'s with {single}"
        )));
    }
    PolicyContext::new(id, &single, made.as_ref())
}

/// A team: one policy per agent of the env, in `possible_agents` order.
pub struct Team {
    agents: Vec<String>,
    members: Vec<Box<dyn Policy>>,
}

impl Team {
    /// The team `members` (one per agent of `env`, in order), each loaded by `load`
    /// with its agent's context.
    pub fn new(
        env: &dyn ParallelEnv,
        config: &Json,
        members: &[PolicySpec],
        load: impl Fn(&PolicySpec, &PolicyContext) -> Result<Box<dyn Policy>, PolicyError>,
    ) -> Result<Team, PolicyError> {
        let agents = env.possible_agents().to_vec();
        if members.len() != agents.len() {
            return Err(PolicyError::Mismatch {
                policy: members
                    .iter()
                    .map(|m| m.label.clone())
                    .collect::<Vec<_>>()
                    .join("+"),
                env: env.id().into(),
                reason: format!(
                    "a team has one member per agent, {} here ({}), joined by `+`; got {}",
                    agents.len(),
                    agents.join(", "),
                    members.len()
                ),
            });
        }
        let members = agents
            .iter()
            .zip(members)
            .map(|(agent, spec)| load(spec, &agent_context(env, config, agent)?))
            .collect::<Result<_, _>>()?;
        Ok(Team { agents, members })
    }

    /// Forgets the last episode.
    pub fn reset(&mut self) {
        self.members.iter_mut().for_each(|m| m.reset());
    }

    /// The joint action of the agents alive in `env`, given their observations.
    pub fn act(
        &mut self,
        env: &dyn ParallelEnv,
        obs: &AgentMap<Value>,
    ) -> Result<AgentMap<Value>, String> {
        let mut joint = AgentMap::new();
        for (agent, member) in self.agents.iter().zip(&mut self.members) {
            let Some(o) = obs.get(agent) else { continue };
            if !env.agents().contains(agent) {
                continue;
            }
            let a = member
                .act(o, env.action_mask(agent))
                .map_err(|e| format!("{agent} ({}): {e}", member.name()))?;
            joint.insert(agent.clone(), a);
        }
        Ok(joint)
    }
}

/// The team's view of a joint step's infos, for [`Recorder`]: the cloud's figures and
/// the team's terms and ledger (the same in every agent's info), each agent's own part
/// (the defender's security, the healer's remedy, the scaler's changes), and whether
/// any agent acted.
pub fn team_info(infos: &AgentMap<Info>) -> Info {
    let mut out = infos.values().next().cloned().unwrap_or_default();
    let acted = infos
        .values()
        .any(|i| i.cloudops.as_ref().is_some_and(|t| t.agent_acted));
    for i in infos.values() {
        out.security = out.security.or_else(|| i.security.clone());
        out.healing = out.healing.or_else(|| i.healing.clone());
        out.scaling = out.scaling.or_else(|| i.scaling.clone());
        out.cost = out.cost.or_else(|| i.cost.clone());
    }
    if let Some(t) = &mut out.cloudops {
        t.agent_acted = acted;
    }
    out
}

/// Plays one episode of `team` on `env` with `seed`, scoring the team's reward.
pub fn play_team(
    env: &mut dyn ParallelEnv,
    team: &mut Team,
    label: &str,
    (episode, seed): (usize, u64),
) -> Result<Episode, PlayError> {
    let mut rec = Recorder::new(label, episode, seed);
    let id = env.id().to_string();
    let fail = |step: u64, reason: String| PlayError {
        policy: label.into(),
        env: id.clone(),
        seed,
        step,
        reason,
    };
    team.reset();
    let (mut obs, _) = env
        .reset(Some(seed), None)
        .map_err(|e| fail(0, e.to_string()))?;
    while !env.agents().is_empty() {
        let joint = team.act(env, &obs).map_err(|e| fail(rec.steps(), e))?;
        let s = env
            .step(&joint)
            .map_err(|e| fail(rec.steps(), e.to_string()))?;
        let info = team_info(&s.infos);
        let reward = info.cloudops.as_ref().map_or(0.0, |t| t.team_reward);
        rec.record(reward, &info);
        obs = s.obs;
    }
    env.close();
    Ok(rec.finish())
}
