"""Stable-Baselines3 on hale's envs: PPO learns CartPole-v1 (rl-zoo's hyperparameters)
and runs on Scaling-v0; the CleanRL-style example trains on Scaling-v0."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import hale


def test_ppo_solves_cartpole():
    # One thread and fixed seeds: the run is the same every time (not a flaky test).
    torch.set_num_threads(1)
    envs = make_vec_env("hale/CartPole-v1", n_envs=8, seed=0)

    def linear(start):
        return lambda progress: progress * start

    # rl-baselines3-zoo's tuned PPO for CartPole-v1.
    model = PPO(
        "MlpPolicy", envs, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
        n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2),
        seed=0, device="cpu",
    )
    model.learn(100_000)
    mean, _ = evaluate_policy(model, hale.make("CartPole-v1"), n_eval_episodes=20, deterministic=True)
    assert mean >= 475, mean


def test_ppo_runs_on_scaling():
    env = hale.make("Scaling-v0", scenario="three-tier", episode_s=600, fidelity="fluid")
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu")
    model.learn(128)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


def test_the_cleanrl_style_example_trains_on_scaling(tmp_path):
    example = Path(__file__).parents[1] / "examples" / "ppo_scaling.py"
    subprocess.run(
        [sys.executable, example, "--total-timesteps", "1024", "--num-envs", "4",
         "--num-steps", "64", "--out", tmp_path / "run"],
        check=True, capture_output=True, text=True,
    )
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert len(rows) == 4  # 1024 / (4 × 64) updates
    assert all(float(r["losses/value_loss"]) >= 0 for r in rows)
