#!/usr/bin/env python3
"""Vector-env steps per second from Python: hale's package beside EnvPool and
Gymnasium, and hale from Python beside hale from Rust.

    maturin build --release -m python/Cargo.toml --out dist && pip install dist/hale-*.whl
    pip install envpool gymnasium
    python3 benches/scripts/python_vector.py --num-envs 64

From one Python process, each tool steps `num-envs` envs with actions drawn before the
clock starts (auto-reset on): CartPole-v1 with `hale.vector.make` (rayon, GIL
released), EnvPool's synchronous pool (`batch_size` = num-envs, `num_threads` =
cores) and Gymnasium's `SyncVectorEnv` over Gymnasium's own CartPole (fewer steps: it
is slow); then Scaling-v0 (`--scaling-config`) from Python, and from a Rust loop over
the same vector env in the same build of the module (`hale._hale.bench_rust`), its
actions drawn before the clock starts too. Prints one JSON object with steps/s and the ratios the issue asks for.
"""

import argparse
import json
import os
import time

import numpy as np



def timed(step, actions):
    start = time.perf_counter()
    for a in actions:
        step(a)
    return len(actions) * len(actions[0]) / (time.perf_counter() - start)


def hale_sps(env_id, n, steps, config):
    import hale

    envs = hale.vector.make(env_id, n, **config)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(steps)]
    for a in actions[: max(steps // 20, 1)]:  # warm the rayon pool and the caches
        envs.step(a)
    return timed(envs.step, actions)


def envpool_sps(n, steps, threads):
    import envpool

    env = envpool.make_gymnasium("CartPole-v1", num_envs=n, batch_size=n, num_threads=threads, seed=0)
    env.reset()
    actions = list(np.random.default_rng(0).integers(0, 2, size=(steps, n)))
    return timed(env.step, actions)


def gymnasium_sps(n, steps):
    import gymnasium as gym

    env = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])
    env.reset(seed=0)
    actions = list(np.random.default_rng(0).integers(0, 2, size=(steps, n)))
    return timed(env.step, actions)


def rust_sps(env_id, n, steps, config):
    # The same vector env stepped by a Rust loop inside the same build of the module.
    from hale import _hale

    _hale.bench_rust(env_id, json.dumps(config), n, max(steps // 20, 1))  # warm up
    return _hale.bench_rust(env_id, json.dumps(config), n, steps)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=64, help="envs per vector env")
    p.add_argument("--steps", type=int, default=20_000, help="CartPole vector steps")
    p.add_argument("--scaling-steps", type=int, default=200, help="Scaling-v0 vector steps")
    p.add_argument("--rounds", type=int, default=5, help="Scaling-v0 rounds (Python, Rust) for medians")
    p.add_argument("--scaling-config", default='{"scenario": "microservices-20", "fidelity": "fluid"}',
                   help="Scaling-v0's config (JSON)")
    a = p.parse_args()
    threads = os.cpu_count() or 1
    n = a.num_envs
    cart = hale_sps("CartPole-v1", n, a.steps, {})
    pool = envpool_sps(n, a.steps, threads)
    sync = gymnasium_sps(n, max(a.steps // 20, 10))
    config = json.loads(a.scaling_config)
    # Alternate the two, several rounds, and take medians: a 2-core machine's figures
    # drift by ±10 % from one minute to the next.
    rounds = [(hale_sps("Scaling-v0", n, a.scaling_steps, config),
               rust_sps("Scaling-v0", n, a.scaling_steps, config)) for _ in range(a.rounds)]
    scaling_py = float(np.median([r[0] for r in rounds]))
    scaling_rs = float(np.median([r[1] for r in rounds]))
    print(json.dumps({
        "num_envs": n, "threads": threads,
        "cartpole_steps_per_s": {"hale_python": cart, "envpool": pool, "gymnasium_sync": sync},
        "hale_python_over_envpool": cart / pool,
        "hale_python_over_gymnasium_sync": cart / sync,
        "scaling_steps_per_s": {"python": scaling_py, "rust": scaling_rs},
        "scaling_python_over_rust": scaling_py / scaling_rs,
        "scaling_rounds_python_rust": rounds,
    }, indent=1))


if __name__ == "__main__":
    main()
