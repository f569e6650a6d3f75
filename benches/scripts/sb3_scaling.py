#!/usr/bin/env python3
"""PPO on Scaling-v0 from Python (Stable-Baselines3) beside hale's own PPO, the same
budget and hyperparameters, and both beside the HPA and a static sizing, compared
paired through `hale.evaluate`.

    maturin build --release -m python/Cargo.toml --features bundles --out dist
    pip install dist/hale-*.whl stable-baselines3 torch
    python3 benches/scripts/sb3_scaling.py --steps 200000 --hale target/release/hale

The task is three-tier (builtin) with the fluid model, a decision every 15 s, target
replica counts, the cluster autoscaler on and requested cores priced twice
(`cost_weight = 2`). Both learners: an MLP of 128 × 128, 8 envs × 128 steps per update,
4 minibatches, 4 epochs, learning rate 3e-4, entropy 0.01, rewards normalised, seed 1.
The evaluation runs `--episodes` episodes from seed 10 000 (not seen in training) for
every policy; prints the frame and writes it as CSV beside the runs (`--out`).
"""

import argparse
import subprocess
import time
from pathlib import Path

CONFIG = {
    "scenario": "three-tier",
    "fidelity": "fluid",
    "fluid_tick_s": 15.0,
    "control_interval_s": 15.0,
    "action": "target",
    "cost_weight": 2.0,
}


def train_hale(hale_bin, steps, seed, out):
    lines = [
        'exp_name = "ppo-three-tier-builtin"', 'env = "Scaling-v0"', f"seed = {seed}", "",
        "[env_config]",
        *[f"{k} = {v!r}".replace("'", '"') for k, v in CONFIG.items()], "",
        "[ppo]", f"total_timesteps = {steps}", "learning_rate = 3e-4", "num_envs = 8",
        "num_steps = 128", "num_minibatches = 4", "update_epochs = 4", "ent_coef = 0.01",
        "hidden = [128, 128]", "normalize_reward = true",
    ]
    cfg = out / "hale-ppo.toml"
    cfg.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    subprocess.run([hale_bin, "train", cfg, "--out", out / "hale-runs"], check=True)
    run = next((out / "hale-runs").glob("*/policy")).parent
    return run, time.perf_counter() - start


def train_sb3(steps, seed, out):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    envs = VecNormalize(make_vec_env("hale/Scaling-v0", n_envs=8, seed=seed, env_kwargs=CONFIG),
                        norm_obs=False, norm_reward=True)
    model = PPO("MlpPolicy", envs, n_steps=128, batch_size=256, n_epochs=4, learning_rate=3e-4,
                ent_coef=0.01, policy_kwargs={"net_arch": [128, 128]}, seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(steps)
    model.save(out / "sb3-ppo")
    return model, time.perf_counter() - start


def main():
    import hale

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200_000, help="training budget of each learner")
    p.add_argument("--seed", type=int, default=1, help="training seed of both")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes per policy")
    p.add_argument("--hale", default="target/release/hale", help="the hale binary that trains hale's PPO")
    p.add_argument("--out", type=Path, default=Path("runs/sb3-scaling"), help="where runs and the table go")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    run, hale_s = train_hale(a.hale, a.steps, a.seed, a.out)
    model, sb3_s = train_sb3(a.steps, a.seed, a.out)
    print(f"training wall time: hale {hale_s:.0f} s, SB3 {sb3_s:.0f} s")
    frame = hale.evaluate(
        "Scaling-v0",
        {"hpa": "hpa", "static": "static", "hale-ppo": str(run), "sb3-ppo": model},
        episodes=a.episodes, seed=10_000, **CONFIG,
    )
    frame.to_csv(a.out / "comparison.csv")
    metrics = ["episode_return", "cost", "slo_violation_min", "p95_ms", "cpu_slack", "availability", "actions"]
    print(frame.loc[(slice(None), metrics), :].to_string())


if __name__ == "__main__":
    main()
