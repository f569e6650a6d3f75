#!/usr/bin/env python3
"""hale's M/M/c engine beside SimPy's, on the same model, in one run.

Both simulate an M/M/c queue (Poisson arrivals at `lam`, `c` servers with exponential
service at `mu`, one FIFO queue) for the same number of customers and report the mean
wait and P(wait) next to Erlang C. Speed is compared in customers per wall second
(each customer is two events in hale's count: an arrival and a departure).

    pip install simpy
    python3 benches/scripts/simpy_mmc.py --servers 8 --rho 0.9 --customers 1000000

hale is built with the `bench` profile (fat LTO, one codegen unit). SimPy is timed on the classic process-per-customer model (Resource + timeouts), the
way its documentation writes queueing examples.
"""
import argparse
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def erlang_c(c, a):
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho * (1 - b))


def simpy_mmc(c, lam, mu, customers, seed):
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=c)
    stats = {"wait": 0.0, "waited": 0, "served": 0}

    def customer(env):
        arrived = env.now
        if server.count >= c:
            stats["waited"] += 1
        with server.request() as req:
            yield req
            stats["wait"] += env.now - arrived
            stats["served"] += 1
            yield env.timeout(rng.expovariate(mu))

    def source(env):
        for _ in range(customers):
            env.process(customer(env))
            yield env.timeout(rng.expovariate(lam))

    env.process(source(env))
    start = time.perf_counter()
    env.run()
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "customers_per_s": customers / wall,
        "mean_wait": stats["wait"] / stats["served"],
        "p_wait": stats["waited"] / customers,
    }


def hale_mmc(c, lam, mu, customers, seed):
    cmd = [
        "cargo", "run", "--quiet", "--profile", "bench", "-p", "hale-sim", "--example", "mmc", "--",
        "--servers", str(c), "--lam", str(lam), "--mu", str(mu),
        "--customers", str(customers), "--seed", str(seed), "--warmup", "0",
    ]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["customers_per_s"] = customers / r["wall_s"]
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", type=int, default=8)
    p.add_argument("--rho", type=float, default=0.9)
    p.add_argument("--mu", type=float, default=1.0)
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--simpy-customers", type=int, default=None,
                   help="customers for SimPy (default: same as hale)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    lam = a.rho * a.servers * a.mu
    p_wait = erlang_c(a.servers, lam / a.mu)
    wq = p_wait / (a.servers * a.mu - lam)
    try:
        import simpy  # noqa: F401
    except ImportError:
        sys.exit("simpy is not installed: pip install simpy")
    h = hale_mmc(a.servers, lam, a.mu, a.customers, a.seed)
    s = simpy_mmc(a.servers, lam, a.mu, a.simpy_customers or a.customers, a.seed)
    print(json.dumps({
        "model": f"M/M/{a.servers}", "rho": a.rho, "customers": a.customers,
        "erlang_c": {"p_wait": p_wait, "mean_wait": wq},
        "hale": {k: h[k] for k in ("wall_s", "customers_per_s", "events_per_s", "mean_wait", "p_wait")},
        "simpy": s,
        "speedup": h["customers_per_s"] / s["customers_per_s"],
    }, indent=1))


if __name__ == "__main__":
    main()
