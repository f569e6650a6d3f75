#!/usr/bin/env python3
"""What `hale sweep --jobs J` costs over running its trials one by one.

    cargo build --release -p hale-experiments --bin hale
    python3 benches/scripts/sweep_overhead.py --trials 4 --steps 200000 --jobs 2

Makes a sweep of `trials` CartPole-v1 PPO trials (seeds 1..trials, `steps` each, the
evaluation cut to 5 episodes), times each trial alone with `hale train` (all cores,
one after another), then the whole sweep with `--jobs J`, and prints one JSON object:
the sum of the standalone times, the sweep's time, and the ratio of the sweep's time
to (sum / J), which the sweep should keep within 1.1.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def hale_binary(profile):
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / profile / "hale"
    if not path.exists():
        raise SystemExit(f"{path} is not built: cargo build --release -p hale-experiments --bin hale")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--profile", default="release", help="cargo profile folder of the binary")
    args = ap.parse_args()
    hale = hale_binary(args.profile)
    base = ROOT / "experiments/configs/cartpole-ppo.toml"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seeds = list(range(1, args.trials + 1))
        sweep = tmp / "sweep.toml"
        sweep.write_text(
            f'base = "{base}"\nseeds = {seeds}\n[grid]\n'
            f'"ppo.total_timesteps" = [{args.steps}]\n"eval_episodes" = [5]\n'
        )
        # The trial configs the sweep makes, run alone.
        subprocess.run([hale, "sweep", sweep, "--out", tmp / "plan", "--dry-run"], check=True,
                       capture_output=True)
        alone = []
        for s in seeds:
            cfg = tmp / f"alone-{s}.toml"
            text = base.read_text().replace("seed = 1", f"seed = {s}")
            text = text.replace("total_timesteps = 500_000", f"total_timesteps = {args.steps}")
            text = text.replace("eval_episodes = 100", "eval_episodes = 5")
            cfg.write_text(text)
            start = time.perf_counter()
            subprocess.run([hale, "train", cfg, "--out", tmp / "alone"], check=True,
                           capture_output=True)
            alone.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([hale, "sweep", sweep, "--out", tmp / "sweep", "--jobs", str(args.jobs)],
                       check=True, capture_output=True)
        swept = time.perf_counter() - start
    total = sum(alone)
    print(json.dumps({
        "trials": args.trials,
        "steps": args.steps,
        "jobs": args.jobs,
        "cores": os.cpu_count(),
        "standalone_s": [round(a, 2) for a in alone],
        "standalone_sum_s": round(total, 2),
        "sweep_s": round(swept, 2),
        "ratio_to_sum_over_jobs": round(swept / (total / args.jobs), 3),
    }))


if __name__ == "__main__":
    main()
