#!/usr/bin/env python3
"""CartPole-v1 steps per second: hale beside EnvPool and Gymnasium, same batch size.

    pip install envpool gymnasium
    python3 benches/scripts/cartpole_peers.py --num-envs 64 --steps 20000

Each tool steps `num-envs` CartPole-v1 environments `steps` times with random actions
and auto-reset: EnvPool's synchronous pool (`num_threads` = cores, `batch_size` =
num-envs), Gymnasium's `SyncVectorEnv` (a fraction of the steps: it is slow), and
`hale env bench` (rayon over the machine's cores). Prints one JSON object with
steps/s for each and the ratios.
"""
import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def envpool_sps(n, steps, threads):
    import envpool

    env = envpool.make_gymnasium("CartPole-v1", num_envs=n, batch_size=n, num_threads=threads, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(steps, n))
    start = time.perf_counter()
    for t in range(steps):
        env.step(actions[t])
    return n * steps / (time.perf_counter() - start)


def gymnasium_sps(n, steps):
    import gymnasium as gym

    env = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(steps, n))
    start = time.perf_counter()
    for t in range(steps):
        env.step(actions[t])
    return n * steps / (time.perf_counter() - start)


def hale_sps(n, steps):
    cmd = ["cargo", "run", "--quiet", "--profile", "bench", "--bin", "hale", "--",
           "env", "bench", "--env", "CartPole-v1", "--num-envs", str(n), "--steps", str(steps)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    # EnvPool and Gymnasium get their random actions drawn before the clock starts;
    # hale draws them per step, so compare the figure without that time.
    return r["steps_per_s_excluding_action_sampling"], r["threads"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=20_000)
    a = p.parse_args()
    threads = os.cpu_count() or 1
    h, hale_threads = hale_sps(a.num_envs, a.steps)
    e = envpool_sps(a.num_envs, a.steps, threads)
    g = gymnasium_sps(a.num_envs, max(a.steps // 20, 10))
    print(json.dumps({
        "num_envs": a.num_envs, "threads": threads, "hale_threads": hale_threads,
        "steps_per_s": {"hale": h, "envpool": e, "gymnasium_sync": g},
        "hale_over_envpool": h / e, "hale_over_gymnasium": h / g,
    }, indent=1))


if __name__ == "__main__":
    main()
