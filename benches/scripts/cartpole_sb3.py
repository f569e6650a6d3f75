#!/usr/bin/env python3
"""PPO on CartPole-v1: wall time to a mean return of 475, hale beside Stable-Baselines3.

    pip install stable-baselines3 gymnasium torch
    python3 benches/scripts/cartpole_sb3.py [--seeds 1,2,3] [--threads 1,2]

SB3's PPO runs with the rl-baselines3-zoo CartPole-v1 hyperparameters (8 envs,
n_steps 32, batch 256, 20 epochs, gamma 0.98, GAE lambda 0.8, no entropy bonus,
learning rate and clip range annealed linearly from 1e-3 and 0.2), on the CPU, with
1 and 2 torch threads (the faster is kept). hale runs `hale train` with
experiments/configs/cartpole-ppo-zoo.toml (the same hyperparameters, but for a
constant clip range) unless --config names another.
Both measure the same thing: the wall time at which the mean return of the last 20
finished training episodes first reaches 475 (hale reads it from the run's
episodes.csv; SB3 from a callback, stopping there). Prints one JSON object per tool
and seed, then the ratio of the medians (hale / SB3).
"""
import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET, WINDOW = 475.0, 20


def sb3_seconds(seed, threads, budget=300_000):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(threads)

    def lin(v):
        return lambda progress: progress * v

    class Stop(BaseCallback):
        def __init__(self):
            super().__init__()
            self.recent = deque(maxlen=WINDOW)
            self.reached = None

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.recent.append(info["episode"]["r"])
            if len(self.recent) == WINDOW and sum(self.recent) / WINDOW >= TARGET:
                self.reached = (time.perf_counter() - start, self.num_timesteps)
                return False
            return True

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=lin(1e-3),
        clip_range=lin(0.2),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    stop = Stop()
    start = time.perf_counter()
    model.learn(total_timesteps=budget, callback=stop)
    return stop.reached


def hale_seconds(seed, config_path):
    config = (ROOT / config_path).read_text()
    config = config.replace("seed = 1", f"seed = {seed}").replace("eval_episodes = 100", "eval_episodes = 2")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cartpole.toml"
        cfg.write_text(config)
        subprocess.run(
            ["cargo", "run", "--quiet", "--bin", "hale", "--", "train", str(cfg), "--out", str(Path(tmp) / "runs")],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        run = next((Path(tmp) / "runs").iterdir())
        recent = deque(maxlen=WINDOW)
        for line in (run / "episodes.csv").read_text().splitlines()[1:]:
            step, _, ret, _, wall = line.split(",")
            recent.append(float(ret))
            if len(recent) == WINDOW and sum(recent) / WINDOW >= TARGET:
                return float(wall), int(step)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument(
        "--config",
        default="experiments/configs/cartpole-ppo-zoo.toml",
        help="hale's config (default: the same rl-zoo hyperparameters as SB3's)",
    )
    ap.add_argument("--threads", default="1,2", help="torch thread counts for SB3 (the faster is kept)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    hale, sb3 = [], {}
    for seed in seeds:
        r = hale_seconds(seed, args.config)
        print(json.dumps({"tool": "hale", "seed": seed, "seconds_to_475": r and r[0], "steps": r and r[1]}))
        if r:
            hale.append(r[0])
    for t in args.threads.split(","):
        sb3[t] = []
        for seed in seeds:
            r = sb3_seconds(seed, int(t))
            print(json.dumps({"tool": "sb3", "threads": int(t), "seed": seed, "seconds_to_475": r and r[0], "steps": r and r[1]}))
            if r:
                sb3[t].append(r[0])
    best = min((t for t in sb3 if sb3[t]), key=lambda t: statistics.median(sb3[t]), default=None)
    if hale and best:
        h, s = statistics.median(hale), statistics.median(sb3[best])
        print(json.dumps({"hale_median_s": round(h, 2), "sb3_median_s": round(s, 2), "sb3_threads": int(best), "ratio_hale_over_sb3": round(h / s, 3)}))


if __name__ == "__main__":
    main()
