"""hale.evaluate: the same seeds and figures as `hale eval`, with Python policies beside
hale's baselines."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest

import hale
from hale.env import HaleEnv

CONFIG = {"scenario": "three-tier", "episode_s": 600, "fidelity": "fluid"}


def test_figures_equal_hale_eval(hale_bin, tmp_path):
    frame = hale.evaluate("Scaling-v0", ["hpa", "static"], episodes=3, seed=4, **CONFIG)
    subprocess.run(
        [hale_bin, "eval", "--env", "Scaling-v0", "--config", json.dumps(CONFIG),
         "--policy", "hpa,static", "--episodes", "3", "--seed", "4", "--out", tmp_path / "e"],
        check=True, capture_output=True,
    )
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert frame.attrs["config"] == summary["config"]
    for policy in ("hpa", "static"):
        for metric, v in summary["summary"]["policies"][policy].items():
            if metric == "cpu_slack_by_service":
                continue
            got = frame.loc[(policy, metric), "mean"]
            want = float("nan") if v["mean"] is None else v["mean"]
            assert got == want or (math.isnan(got) and math.isnan(want)), (policy, metric)
    d = summary["summary"]["paired_differences"]["static - hpa"]["cost"]
    assert frame.loc[("static", "cost"), "diff"] == d["diff"]
    assert frame.loc[("static", "cost"), "ci95_paired"] == d["ci95_paired"]
    episodes = frame.attrs["episodes"]
    assert list(episodes["seed"][episodes["policy"] == "hpa"]) == [4, 5, 6]


def test_a_python_policy_is_scored_as_its_own_episodes_are():
    def lean(obs, mask):
        # Target one level below the HPA's cap everywhere (any fixed action will do).
        return np.full(3, 2, dtype=np.int64)

    frame = hale.evaluate("Scaling-v0", {"hpa": "hpa", "lean": lean}, episodes=2, seed=0, **CONFIG)
    config = frame.attrs["config"]
    returns = []
    for seed in (0, 1):
        env = HaleEnv("Scaling-v0", **config)
        env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(np.full(3, 2))
            total += r
            done = term or trunc
        returns.append(total)
    assert frame.loc[("lean", "episode_return"), "mean"] == pytest.approx(np.mean(returns), rel=1e-12)
    assert not math.isnan(frame.loc[("lean", "episode_return"), "diff"])


def test_an_sb3_model_is_a_policy():
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", hale.make("CartPole-v1"), n_steps=64, batch_size=32, seed=0, device="cpu")
    frame = hale.evaluate("CartPole-v1", {"ppo": model, "noop": "noop"}, episodes=2)
    assert frame.loc[("ppo", "episode_return"), "mean"] >= 1.0


def test_bad_policies_are_named():
    with pytest.raises(ValueError, match="unknown policy `hap`"):
        hale.evaluate("Scaling-v0", ["hap"], **CONFIG)
    with pytest.raises(ValueError, match="at least 2"):
        hale.evaluate("Scaling-v0", ["hpa"], episodes=1, **CONFIG)
    with pytest.raises(ValueError, match="labelled"):
        hale.evaluate("Scaling-v0", ["hpa", "hpa"], **CONFIG)
    with pytest.raises(ValueError, match="drives Scaling-v0 only"):
        hale.evaluate("Healing-v0", ["hpa"], scenario="three-tier")
    with pytest.raises(ValueError, match="/nowhere"):
        hale.evaluate("Scaling-v0", ["hpa", "/nowhere/bundle"], **CONFIG)


def test_a_bundle_is_evaluated_as_hale_eval_evaluates_it(hale_bin, tmp_path):
    from hale import _hale

    if not _hale.BUNDLES:
        pytest.skip("this build has no bundles (maturin build --features bundles)")
    config = tmp_path / "smoke.toml"
    config.write_text(
        'exp_name = "smoke"\nenv = "CartPole-v1"\nseed = 1\neval_episodes = 2\n\n'
        "[ppo]\ntotal_timesteps = 2048\nnum_envs = 4\nnum_steps = 128\n"
    )
    subprocess.run(
        [hale_bin, "train", config, "--out", tmp_path / "runs"], check=True, capture_output=True
    )
    run = next((tmp_path / "runs").glob("*/policy")).parent
    frame = hale.evaluate("CartPole-v1", {"ppo": str(run), "noop": "noop"}, episodes=2, seed=7)
    subprocess.run(
        [hale_bin, "eval", "--env", "CartPole-v1", "--policy", f"ppo={run},noop",
         "--episodes", "2", "--seed", "7", "--out", tmp_path / "e"],
        check=True, capture_output=True,
    )
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())["summary"]
    want = summary["policies"]["ppo"]["episode_return"]["mean"]
    assert frame.loc[("ppo", "episode_return"), "mean"] == want
    bad = tmp_path / "not-a-bundle"
    bad.mkdir()
    with pytest.raises(ValueError, match="not-a-bundle"):
        hale.evaluate("CartPole-v1", [str(bad), "noop"])
