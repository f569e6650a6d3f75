"""hale's rayon vector env against Gymnasium's own SyncVectorEnv over the same envs:
the same observations, rewards, flags and infos, step for step, in both autoreset
modes."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from conftest import CASES, case_id
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import hale
from hale.env import HaleEnv
from hale.vector import HaleVectorEnv


def same(a, b, path="infos"):
    if isinstance(a, dict) and path == "infos.final_info":
        # hale's final_info is the last step's info without its action mask.
        b = {k: v for k, v in b.items() if k not in ("action_mask", "_action_mask")}
    if isinstance(a, dict):
        assert set(a) == set(b), (path, set(a) ^ set(b))
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, gymnasium.spaces.GraphInstance):
        same(a.nodes, b.nodes), same(a.edges, b.edges), same(a.edge_links, b.edge_links)
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y, path)
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert a.shape == b.shape, path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b), (path, type(a), type(b))
        if isinstance(a, np.ndarray):
            assert (a.shape, a.dtype) == (b.shape, b.dtype), (path, a.shape, a.dtype, b.shape, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=path)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize(
    "case",
    [CASES[0], ("Scaling-v0", {**CASES[1][1], "episode_s": 120}), ("Healing-v0", {**CASES[4][1], "episode_s": 120}),
     ("Healing-v0", {**CASES[5][1], "episode_s": 120})],
    ids=case_id,
)
def test_matches_gymnasium_sync_vector_env(case, mode):
    env_id, config = case
    n = 4
    ours = hale.vector.make(env_id, n, autoreset_mode=mode, **config)
    theirs = SyncVectorEnv(
        [lambda: HaleEnv(env_id, **config) for _ in range(n)], autoreset_mode=mode
    )
    assert ours.metadata["autoreset_mode"] == mode
    assert ours.observation_space == theirs.observation_space
    assert ours.action_space == theirs.action_space
    a, ai = ours.reset(seed=11)
    b, bi = theirs.reset(seed=11)
    same(a, b, "obs"), same(ai, bi)
    ours.action_space.seed(3)
    ended = 0
    for _ in range(60 if env_id == "CartPole-v1" else 30):
        actions = ours.action_space.sample()
        a = ours.step(actions)
        b = theirs.step(actions)
        same(a[0], b[0], "obs")
        for x, y in zip(a[1:4], b[1:4]):
            np.testing.assert_array_equal(x, y)
        assert a[1].dtype == np.float64 and a[2].dtype == bool
        same(a[4], b[4])
        ended += int(np.sum(a[2] | a[3]))
    assert env_id != "CartPole-v1" or ended > 0, "no episode ended: autoreset untested"
    ours.close(), theirs.close()


def test_fresh_arrays_and_masks():
    envs = hale.vector.make("Healing-v0", 3, scenario="three-tier", episode_s=120)
    obs, infos = envs.reset(seed=0)
    masks = envs.action_masks()
    assert masks.shape == (3, envs.single_action_space.n) and masks.dtype == bool
    np.testing.assert_array_equal(infos["action_mask"], masks)
    assert not masks.all(), "empty slots are masked"
    obs2, *_ = envs.step(np.zeros(3, dtype=np.int64))
    assert not np.shares_memory(obs, obs2)
    assert not np.shares_memory(masks, envs.action_masks())


def test_make_vec_uses_hales_vector_env_and_bad_input_is_named():
    envs = gymnasium.make_vec("hale/CartPole-v1", num_envs=8, vectorization_mode="vector_entry_point")
    assert isinstance(envs, HaleVectorEnv)
    obs, _ = envs.reset(seed=[5 + i for i in range(8)])
    assert obs.shape == (8, 4) and obs.dtype == np.float32
    with pytest.raises(ValueError, match="seed \\+ i"):
        envs.reset(seed=[1, 1, 1, 1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="expected 8 actions"):
        envs.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="num_envs"):
        HaleVectorEnv("CartPole-v1", 0)
