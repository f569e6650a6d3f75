//! `check_env` over every registered environment.

use serde_json::Value;

#[test]
fn every_registered_env_passes_the_checker() {
    for spec in hale_envs::registry() {
        let failures = hale_envs::check_registered(spec.id, &Value::Null, 60);
        assert!(failures.is_empty(), "{}: {failures:#?}", spec.id);
    }
    // The cloud envs' graph view too (issue 15: Scaling-v0's graph step_into wrote
    // nothing).
    for id in ["Scaling-v0", "Healing-v0"] {
        let config = serde_json::json!({"observation": "graph", "episode_s": 600});
        let failures = hale_envs::check_registered(id, &config, 30);
        assert!(failures.is_empty(), "{id} graph: {failures:#?}");
    }
    // Security-v0's cloud mode, against both attackers.
    for (red, observation) in [
        ("b_line", "matrix"),
        ("meander", "matrix"),
        ("b_line", "graph"),
    ] {
        let config = serde_json::json!({
            "scenario": "microservices-20", "red": red, "observation": observation
        });
        let failures = hale_envs::check_registered("Security-v0", &config, 40);
        assert!(
            failures.is_empty(),
            "Security-v0 cloud {red} {observation}: {failures:#?}"
        );
    }
}

/// An env whose `step_into` writes nothing (as Scaling-v0's graph view did) is
/// caught; a flat buffer of the wrong length is an error, not a panic.
#[test]
fn the_checker_catches_a_step_into_that_writes_nothing() {
    use hale_envs::{CartPole, Env, EnvError, Info, ObsSlot, Space, Step, StepInto, Value as V};
    struct Lazy(CartPole);
    impl Env for Lazy {
        fn id(&self) -> &str {
            "Lazy"
        }
        fn observation_space(&self) -> &Space {
            self.0.observation_space()
        }
        fn action_space(&self) -> &Space {
            self.0.action_space()
        }
        fn reset(&mut self, seed: Option<u64>, o: Option<&Value>) -> Result<(V, Info), EnvError> {
            self.0.reset(seed, o)
        }
        fn step(&mut self, a: &V) -> Result<Step, EnvError> {
            self.0.step(a)
        }
        fn step_into(&mut self, a: &V, _obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
            let s = self.0.step(a)?;
            Ok(StepInto {
                reward: s.reward,
                terminated: s.terminated,
                truncated: s.truncated,
                info: s.info,
            })
        }
    }
    let failures = hale_envs::check_env(&|| Ok(Box::new(Lazy(CartPole::default()))), 20);
    assert!(
        failures
            .iter()
            .any(|f| f.contains("step_into wrote another observation")),
        "{failures:?}"
    );
    let mut env = CartPole::default();
    env.reset(Some(1), None).unwrap();
    let mut short = [0.0f32; 3];
    let err = env.step_into(&V::Discrete(0), ObsSlot::Flat(&mut short));
    assert!(err.is_err(), "{err:?}");
}

#[test]
fn the_checker_catches_a_nondeterministic_env() {
    use hale_envs::{CartPole, Env, EnvError, Info, Space, Step, Value as V};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    /// CartPole whose seeds are ignored: every instance draws its own.
    struct Leaky(CartPole);
    impl Env for Leaky {
        fn id(&self) -> &str {
            "Leaky"
        }
        fn observation_space(&self) -> &Space {
            self.0.observation_space()
        }
        fn action_space(&self) -> &Space {
            self.0.action_space()
        }
        fn reset(&mut self, _seed: Option<u64>, o: Option<&Value>) -> Result<(V, Info), EnvError> {
            self.0.reset(Some(NEXT.fetch_add(1, Ordering::Relaxed)), o)
        }
        fn step(&mut self, a: &V) -> Result<Step, EnvError> {
            self.0.step(a)
        }
    }
    let failures = hale_envs::check_env(&|| Ok(Box::new(Leaky(CartPole::default()))), 20);
    assert!(
        failures.iter().any(|f| f.contains("not deterministic")),
        "{failures:?}"
    );
}

#[test]
fn unknown_env_and_bad_config_are_named() {
    let err = hale_envs::make("Scaling-v9", &Value::Null)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "unknown environment `Scaling-v9` (registered: CartPole-v1, Scaling-v0, Healing-v0, Security-v0, Cost-v0)"
    );
    let err = hale_envs::make("Scaling-v0", &serde_json::json!({"control_interval": 5}))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("Scaling-v0: config: unknown field `control_interval`"),
        "{err}"
    );
    let err = hale_envs::make("Scaling-v0", &serde_json::json!({"scenario": "nope"}))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("Scaling-v0: scenario: nope: cannot read"),
        "{err}"
    );
    let err = hale_envs::make("CartPole-v1", &serde_json::json!({"gravity": 3}))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "CartPole-v1: gravity: this environment takes no configuration"
    );
}
