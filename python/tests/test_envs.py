"""Every hale env, as Gymnasium, Stable-Baselines3 and sb3-contrib see it: their own
published checkers, fresh arrays, Python types in infos, seeding, masks, errors, and
the same trajectory as `hale env replay`."""

from __future__ import annotations

import json
import subprocess
import warnings

import gymnasium
import numpy as np
import pytest
from conftest import CASES, case_id
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hale
from hale.env import HaleEnv


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gymnasium_check_env_passes_without_warnings(case):
    env_id, config = case
    env = HaleEnv(env_id, **config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Unbounded observations are unbounded: Gymnasium's own CartPole-v1 draws the
        # same two warnings from its checker.
        warnings.filterwarnings("ignore", message=".*(minimum|maximum) value is (-)?infinity")
        gym_check_env(env, skip_render_check=True)
    env.close()
    env.close()  # twice is harmless


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c[1].get("observation") != "graph"],
    ids=case_id,
)
def test_sb3_check_env_passes_without_warnings(case):
    # SB3 has no Graph observations: the graph views are Gymnasium-only.
    env_id, config = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The cloud envs' matrix is [services, features]: SB3 advises flattening a 2-D
        # observation, which its MlpPolicy does.
        warnings.filterwarnings("ignore", message=".*unconventional shape")
        sb3_check_env(HaleEnv(env_id, **config), warn=True)


def test_every_registered_env_is_registered_with_gymnasium():
    for env_id in hale.registry():
        env = gymnasium.make(f"hale/{env_id}")
        assert env.spec.id == f"hale/{env_id}"
        assert isinstance(env.unwrapped, HaleEnv)
        env.close()
    assert set(hale.registry()) >= {"CartPole-v1", "Scaling-v0", "Healing-v0"}


def test_spaces_map_exactly():
    env = HaleEnv("Scaling-v0", scenario="three-tier", action="target")
    assert isinstance(env.observation_space, gymnasium.spaces.Box)
    assert env.observation_space.dtype == np.float32
    assert env.observation_space.shape == (3, 9)  # three services × the v1 features
    assert isinstance(env.action_space, gymnasium.spaces.MultiDiscrete)
    assert env.action_space.shape == (3,)
    heal = HaleEnv("Healing-v0", scenario="three-tier")
    assert isinstance(heal.action_space, gymnasium.spaces.Discrete)
    graph = HaleEnv("Healing-v0", scenario="three-tier", observation="graph")
    assert isinstance(graph.observation_space, gymnasium.spaces.Graph)
    # CartPole-v1's spaces are Gymnasium's own, bounds and all.
    cart = HaleEnv("CartPole-v1")
    reference = gymnasium.make("CartPole-v1")
    assert cart.action_space == reference.action_space
    assert cart.observation_space == reference.observation_space


PER_SERVICE = {"desired", "cpu_used_core_s", "cpu_requested_core_s", "memory_used_mib_s", "memory_requested_mib_s"}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_call_returns_fresh_arrays_and_python_types(case):
    env_id, config = case
    env = HaleEnv(env_id, **config)
    obs0, info = env.reset(seed=5)
    obs1, reward, terminated, truncated, info = env.step(env.action_space.sample())
    first = obs0.nodes if isinstance(obs0, gymnasium.spaces.GraphInstance) else obs0
    second = obs1.nodes if isinstance(obs1, gymnasium.spaces.GraphInstance) else obs1
    assert not np.shares_memory(first, second)
    assert type(reward) is float and type(terminated) is bool and type(truncated) is bool

    def check(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                check(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                check(v, f"{path}[{i}]")
        elif isinstance(value, np.ndarray):
            # Arrays: the mask, and the per-service figures (one entry per service).
            key = path.rsplit(".", 1)[-1]
            if key == "action_mask":
                assert value.dtype == bool, path
            else:
                assert key in PER_SERVICE and value.dtype in (np.float64, np.int64), path
                assert value.shape == (services,), (path, value.shape)
        else:
            assert value is None or type(value) in (float, int, bool, str), (path, type(value))

    services = len(info["desired"]) if "desired" in info else 0
    check(info, "info")


def test_healing_masks_are_in_info_and_action_masks_and_fall_back_to_the_noop():
    env = HaleEnv("Healing-v0", scenario="three-tier", episode_s=300)
    _, info = env.reset(seed=1)
    mask = env.action_masks()
    assert mask.dtype == bool and mask.shape == (env.action_space.n,)
    np.testing.assert_array_equal(info["action_mask"], mask)
    masked = int(np.flatnonzero(~mask)[0])
    # Gymnasium's contract: any element of the action space is an action; a masked one
    # is the no-op, step for step.
    strict = HaleEnv("Healing-v0", masked_fallback=False, scenario="three-tier", episode_s=300)
    strict.reset(seed=1)
    with pytest.raises(ValueError, match="masked out"):
        strict.step(masked)
    a = env.step(masked)
    b = strict.step(0)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


def test_reset_seed_gives_the_same_episode_and_reseeds_np_random():
    # Request-level fidelity: arrivals and service times are drawn from the seed.
    env = HaleEnv("Scaling-v0", scenario="three-tier", episode_s=300)

    def episode(seed):
        obs, _ = env.reset(seed=seed)
        draws = env.np_random.integers(0, 1 << 30, size=3)
        out = [obs]
        for a in ([3, 3, 3], [4, 2, 1], [0, 1, 2]):
            out.append(env.step(np.array(a))[0])
        return np.stack(out), draws

    a, da = episode(9)
    b, db = episode(9)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)
    c, _ = episode(10)
    assert not np.array_equal(a, c)


def test_bad_input_gets_errors_that_name_it():
    with pytest.raises(ValueError, match="slo_weigth"):
        HaleEnv("Scaling-v0", slo_weigth=2.0)
    with pytest.raises(gymnasium.error.Error, match="Scaleing-v0"):
        hale.make("Scaleing-v0")
    env = HaleEnv("CartPole-v1")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(2)
    with pytest.raises(ValueError, match="not an action"):
        env.step("left")
    with pytest.raises(gymnasium.error.Error, match="-1"):
        env.reset(seed=-1)


@pytest.mark.parametrize(
    "case",
    [CASES[0], CASES[1], CASES[4]],
    ids=case_id,
)
def test_same_seed_and_actions_give_hale_env_replays_trajectory(case, hale_bin, tmp_path):
    env_id, config = case
    env = HaleEnv(env_id, masked_fallback=False, **config)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=77)
    actions, steps = [], []
    while True:
        mask = env.action_masks()
        if isinstance(env.action_space, gymnasium.spaces.Discrete):
            a = int(rng.choice(np.flatnonzero(mask)))
        else:
            a = [int(rng.integers(0, n)) for n in env.action_space.nvec]
        obs, reward, terminated, truncated, _ = env.step(a)
        actions.append(a)
        steps.append((obs, reward, terminated, truncated))
        if terminated or truncated or len(steps) == 40:
            break
    line = json.dumps({"seed": 77, "actions": actions})
    (tmp_path / "episodes.jsonl").write_text(line + "\n")
    out = subprocess.run(
        [hale_bin, "env", "replay", "--env", env_id, "--config", json.dumps(config),
         tmp_path / "episodes.jsonl"],
        capture_output=True, text=True, check=True,
    )
    replayed = json.loads(out.stdout.splitlines()[0])["steps"]
    assert len(replayed) == len(steps)
    for (obs, reward, terminated, truncated), r in zip(steps, replayed):
        # Bit for bit: the replay prints float32 observations exactly.
        np.testing.assert_array_equal(obs.ravel(), np.array(r["obs"], dtype=np.float32))
        assert reward == r["reward"]
        assert (terminated, truncated) == (r["terminated"], r["truncated"])


def test_maskable_ppo_reads_the_masks_and_trains_on_healing():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = hale.make("Healing-v0", scenario="three-tier", episode_s=300)
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu")
    model.learn(128)
    obs, _ = env.reset(seed=3)
    mask = env.unwrapped.action_masks()
    action, _ = model.predict(obs, action_masks=mask, deterministic=True)
    assert mask[int(action)]
