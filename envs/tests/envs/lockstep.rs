//! Lockstep views: each agent's vector env of single-agent views, stepped from its own
//! thread, plays exactly the joint episodes of the multi-agent env stepped directly;
//! an aborted run stops everyone instead of hanging.

use hale_envs::lockstep::Lockstep;
use hale_envs::{AgentMap, AutoReset, CloudOps, Env, ParallelEnv, Value, VectorEnv};
use serde_json::{Value as Json, json};
use std::time::Duration;

fn config() -> Json {
    json!({
        "agents": ["scaler", "healer", "optimiser"], "attacker": "none", "max_steps": 5,
    })
}

/// Agent `agent`'s action at step `t` in joint env `j`: every one allowed (the healer
/// does nothing; the optimiser keeps everything but now and then a memory level).
fn action(agent: &str, t: usize, j: usize) -> Value {
    match agent {
        "scaler" => {
            let mut a = vec![2i64; 20];
            a[(t + j) % 20] = ((t + 2 * j) % 5) as i64;
            Value::MultiDiscrete(a)
        }
        "healer" => Value::Discrete(0),
        _ => {
            let layout = hale_envs::CostLayout::from_config(&json!({})).unwrap();
            let mut a = layout.action(t.is_multiple_of(3), None);
            a[2 + (t + j) % layout.services] = ((t + j) % 4) as i64;
            Value::MultiDiscrete(a)
        }
    }
}

const STEPS: usize = 12;
const ENVS: usize = 2;

/// Per agent, every step's reward bits, env by env.
fn through_lockstep() -> AgentMap<Vec<u64>> {
    let envs: Vec<Box<dyn ParallelEnv>> = (0..ENVS)
        .map(|_| Box::new(CloudOps::new(&config()).unwrap()) as Box<dyn ParallelEnv>)
        .collect();
    let lock = Lockstep::new(envs).unwrap();
    let threads: Vec<_> = lock
        .agents()
        .to_vec()
        .into_iter()
        .map(|agent| {
            let views = lock.agent_envs(&agent).unwrap();
            let lock = lock.clone();
            std::thread::spawn(move || {
                // A pool of its own: the views block until the other agents arrive.
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap();
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pool.install(|| {
                        let mut v = VectorEnv::new(views, AutoReset::SameStep).unwrap();
                        v.reset(Some(90)).unwrap();
                        let mut rewards = vec![];
                        for t in 0..STEPS {
                            let a: Vec<Value> = (0..ENVS).map(|j| action(&agent, t, j)).collect();
                            v.step(&a).unwrap();
                            rewards.extend(v.rewards.iter().map(|r| r.to_bits()));
                        }
                        (agent.clone(), rewards)
                    })
                }));
                // A failing agent stops the others rather than leave them waiting.
                run.unwrap_or_else(|e| {
                    lock.abort(&format!("agent {agent} panicked"));
                    std::panic::resume_unwind(e)
                })
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The same, stepping each joint env directly (resetting at the time limit as a
/// same-step vector env does).
fn directly() -> AgentMap<Vec<u64>> {
    let mut envs: Vec<CloudOps> = (0..ENVS)
        .map(|j| {
            let mut e = CloudOps::new(&config()).unwrap();
            e.reset(Some(90 + j as u64), None).unwrap();
            e
        })
        .collect();
    let agents = envs[0].possible_agents().to_vec();
    let mut out: AgentMap<Vec<u64>> = agents.iter().map(|a| (a.clone(), vec![])).collect();
    for t in 0..STEPS {
        let mut rewards: Vec<AgentMap<f64>> = vec![];
        for (j, e) in envs.iter_mut().enumerate() {
            let joint: AgentMap<Value> = agents
                .iter()
                .map(|a| (a.clone(), action(a, t, j)))
                .collect();
            let s = e.step(&joint).unwrap();
            if s.truncations.values().all(|&x| x) {
                e.reset(None, None).unwrap();
            }
            rewards.push(s.rewards);
        }
        for a in &agents {
            out.get_mut(a)
                .unwrap()
                .extend(rewards.iter().map(|r| r[a].to_bits()));
        }
    }
    out
}

#[test]
fn every_agents_views_play_the_joint_episodes_exactly() {
    let (a, b) = (through_lockstep(), directly());
    assert_eq!(a.len(), 3);
    for (agent, rewards) in &a {
        assert_eq!(rewards.len(), STEPS * ENVS);
        assert_eq!(rewards, &b[agent], "{agent}");
    }
    assert_eq!(through_lockstep(), a, "the same run twice");
}

#[test]
fn an_aborted_run_stops_the_agents_that_wait_and_views_name_misuse() {
    let envs: Vec<Box<dyn ParallelEnv>> = vec![Box::new(CloudOps::new(&config()).unwrap())];
    let lock = Lockstep::new(envs).unwrap();
    let mut scaler = lock.agent_envs("scaler").unwrap().pop().unwrap();
    assert_eq!(scaler.id(), "CloudOps-v0:scaler");
    assert!(lock.agent_envs("janitor").is_err());
    let (tx, rx) = std::sync::mpsc::channel();
    let waiting = std::thread::spawn(move || {
        // The healer and the optimiser never come: this waits until the abort.
        tx.send(scaler.reset(Some(1), None).map(|_| ())).unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    lock.abort("the healer's learner failed");
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("woken by the abort");
    let err = got.unwrap_err().to_string();
    assert!(err.contains("the healer's learner failed"), "{err}");
    waiting.join().unwrap();
    let mut healer = lock.agent_envs("healer").unwrap().pop().unwrap();
    assert!(healer.reset(Some(1), None).is_err(), "stopped for good");
}

/// With the state (MAPPO), a view's observation is its agent's followed by the joint
/// env's state after the round, and its space says so.
#[test]
fn views_with_state_append_the_joint_state() {
    let cfg = json!({"agents": ["scaler", "healer"], "attacker": "none", "max_steps": 5});
    let lock = Lockstep::with_state(vec![
        Box::new(CloudOps::new(&cfg).unwrap()) as Box<dyn ParallelEnv>
    ])
    .unwrap();
    assert!(lock.shares_state());
    let mut direct = CloudOps::new(&cfg).unwrap();
    let (obs, _) = direct.reset(Some(3), None).unwrap();
    let state = direct.state().unwrap();
    let threads: Vec<_> = ["scaler", "healer"]
        .into_iter()
        .map(|agent| {
            let mut view = lock.agent_envs(agent).unwrap().pop().unwrap();
            std::thread::spawn(move || {
                let space = view.observation_space().flat_dim().unwrap();
                let (o, _) = view.reset(Some(3), None).unwrap();
                (agent, space, o)
            })
        })
        .collect();
    for t in threads {
        let (agent, space, o) = t.join().unwrap();
        let mut expected = obs[agent].as_box().to_vec();
        expected.extend_from_slice(state.as_box());
        assert_eq!(o.as_box(), &expected[..], "{agent}");
        assert_eq!(space, expected.len());
        assert_eq!(
            lock.agent_obs_dim(agent).unwrap(),
            obs[agent].as_box().len()
        );
    }
}
