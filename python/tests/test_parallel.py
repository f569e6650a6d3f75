"""hale's multi-agent envs as PettingZoo sees them: its own published API and seed
tests, dict keys, spaces, state, masks, errors, and the same joint episode from the
same seed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

import hale

# Short episodes so the published tests run whole episodes in seconds.
CASES = [
    {"max_steps": 30},
    {"max_steps": 30, "agents": ["scaler", "defender"], "reward": "own"},
    {"max_steps": 30, "agents": ["healer"], "attacker": "none"},
    {"max_steps": 30, "agents": ["scaler", "healer", "defender", "optimiser"]},
    # Graph views for a GNN per agent: Gymnasium Graph spaces beside the optimiser's Box.
    {
        "max_steps": 30,
        "agents": ["scaler", "healer", "defender", "optimiser"],
        "observation": "graph",
    },
]


def case_id(config: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in config.items())


@pytest.mark.parametrize("config", CASES, ids=case_id)
def test_pettingzoo_parallel_api_test_passes(config):
    env = hale.parallel_env("CloudOps-v0", **config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The API test resets with a dummy option to see that reset takes one.
        warnings.filterwarnings("ignore", message=".*takes no reset options")
        parallel_api_test(env, num_cycles=100)
    env.close()
    env.close()


@pytest.mark.parametrize("config", CASES, ids=case_id)
def test_pettingzoo_parallel_seed_test_passes(config):
    parallel_seed_test(lambda: hale.parallel_env("CloudOps-v0", **config), num_cycles=40)


def test_dicts_are_keyed_by_the_agents_alive_and_values_are_python_types():
    env = hale.parallel_env("CloudOps-v0", max_steps=3)
    assert env.possible_agents == ["scaler", "healer", "defender"]
    assert env.agents == []
    obs, infos = env.reset(seed=1)
    assert set(obs) == set(infos) == set(env.agents) == set(env.possible_agents)
    for agent, o in obs.items():
        assert o.dtype == np.float32 and env.observation_space(agent).contains(o)
    assert env.state_space.contains(env.state())
    assert infos["healer"]["action_mask"].dtype == bool
    assert "action_mask" not in infos["scaler"], "the scaler has no mask"
    for _ in range(3):
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rewards, terms, truncs, infos = env.step(actions)
        assert set(obs) == set(rewards) == set(terms) == set(truncs) == set(infos)
        assert all(type(r) is float for r in rewards.values())
        assert all(type(t) is bool for t in truncs.values())
        info = infos["defender"]
        assert type(info["team_reward"]) is float and type(info["flip_flops"]) is int
        assert info["team_reward"] == pytest.approx(
            sum(info[k] for k in ("team_cost", "team_slo", "team_unserved", "team_security", "team_actions"))
        )
    assert env.agents == [] and all(truncs.values())
    with pytest.raises(RuntimeError, match="episode ended"):
        env.step({})


def test_fresh_arrays_on_every_call():
    env = hale.parallel_env("CloudOps-v0", max_steps=5)
    obs, _ = env.reset(seed=2)
    again, _ = env.reset(seed=2)
    assert obs["scaler"] is not again["scaler"]
    np.testing.assert_array_equal(obs["scaler"], again["scaler"])
    s1, s2 = env.state(), env.state()
    assert s1 is not s2


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="janitor"):
        hale.parallel_env("CloudOps-v0", agents=["janitor"])
    with pytest.raises(ValueError, match="Scaling-v0"):
        hale.parallel_env("Scaling-v0")
    env = hale.parallel_env("CloudOps-v0", masked_fallback=False)
    env.reset(seed=3)
    actions = {a: env.action_space(a).sample() for a in env.agents}
    with pytest.raises(ValueError, match="janitor"):
        env.step({**actions, "janitor": 0})
    del actions["healer"]
    with pytest.raises(ValueError, match="healer"):
        env.step(actions)
    actions = {a: env.action_space(a).sample() for a in env.agents}
    mask = env.action_mask("defender")
    actions["defender"] = int(np.flatnonzero(~mask)[0])
    with pytest.raises(ValueError, match="masked"):
        env.step(actions)
    with pytest.warns(UserWarning, match="no reset options"):
        env.reset(seed=3, options={"x": 1})
