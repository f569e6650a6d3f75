"""Runs a hale sweep's trials as Ray Tune trials, on any number of machines.

    python experiments/ray/hale_tune.py SWEEP.toml --out DIR --address HEAD:6379

Each trial is one `hale train` process, started by a Tune function trainable on
whichever node Ray places it (one CPU each by default), with its threads capped. The
rows hale writes to the run's metrics.csv are reported to Tune as they appear
(`ray.tune.report`, CleanRL's metric names), with a copy of the run folder (config, metrics,
the newest checkpoint) as a Tune checkpoint each time hale writes a checkpoint of its
own. A trial whose process dies is retried
(FailureConfig) and resumes from its last checkpoint: the run folder when it is on
the node (a shared filesystem), else the one Tune kept. Running the command again
after the driver was stopped restores the experiment (`Tuner.restore`) and skips the
finished trials.

The sweep folder is the same as `hale sweep`'s: `hale sweep SWEEP.toml --out DIR
--prepare` writes it first, and `hale sweep SWEEP.toml --out DIR` at the end, finding
every trial finished, writes the same trials.csv and trials.parquet as the local
backend (and runs the sweep's [bench] tasks, if any, here). DIR must be reachable at
the same path on every node (NFS or the like) for the table to see every trial.
"""

import argparse
import csv
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
from ray import tune

POLL_S = 0.5


def die_with_parent():
    """Linux: the trial's process gets SIGKILL when its Tune worker dies."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_folder(trial_dir: Path):
    runs = sorted(p for p in trial_dir.iterdir() if (p / "config.toml").is_file()) if trial_dir.is_dir() else []
    return runs[-1] if runs else None


def checkpoints(run: Path):
    d = run / "checkpoints"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def append_attempt(trial_dir: Path, event: dict):
    with open(trial_dir / "attempts.jsonl", "a") as f:
        f.write(json.dumps(event) + "\n")


def numbers(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def trainable(config):
    """One trial: `hale train`, its metrics reported to Tune as they are written."""
    hale, sweep_dir, name = config["hale"], Path(config["sweep_dir"]), config["trial"]
    trial_dir = sweep_dir / "trials" / name
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "ray-node.txt").write_text(ray.get_runtime_context().get_node_id())
    run = run_folder(trial_dir)
    # No run folder here (another node's disk): the one Tune kept comes back.
    kept = tune.get_checkpoint()
    if kept is not None and (run is None or not checkpoints(run)):
        with kept.as_directory() as d:
            src = Path(d)
            dest = trial_dir / json.loads((src / "hale-run.json").read_text())["run"]
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("hale-run.json"))
        run = dest
    if run is not None and (run / "summary.json").is_file():
        tune.report(final_metrics(run))
        return
    if run is not None and checkpoints(run):
        cmd, resume = [hale, "train", "--resume", str(run)], True
    else:
        if run is not None:
            shutil.rmtree(run)
        cmd, resume = [hale, "train", str(trial_dir / "config.toml"), "--out", str(trial_dir)], False
    env = dict(os.environ, RAYON_NUM_THREADS=str(config["threads"]))
    append_attempt(trial_dir, {"event": "start", "unix_s": time.time(), "resume": resume, "runner": "ray"})
    started = time.monotonic()
    with open(trial_dir / "train.log", "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, preexec_fn=die_with_parent)
        seen_rows, seen_ckpt = 0, None
        while True:
            done = proc.poll() is not None
            run = run_folder(trial_dir)
            if run is not None:
                rows = read_rows(run / "metrics.csv")
                ckpts = checkpoints(run)
                new_ckpt = ckpts[-1] if ckpts and ckpts[-1] != seen_ckpt else None
                for i, row in enumerate(rows[seen_rows:]):
                    copy = snapshot(run, new_ckpt) if (new_ckpt and seen_rows + i == len(rows) - 1) else None
                    # Tune persists the copy to its storage before report returns.
                    tune.report(numbers(row), checkpoint=tune.Checkpoint.from_directory(str(copy)) if copy else None)
                    if copy:
                        shutil.rmtree(copy, ignore_errors=True)
                        seen_ckpt = new_ckpt
                seen_rows = max(seen_rows, len(rows))
            if done:
                break
            time.sleep(POLL_S)
    append_attempt(trial_dir, {"event": "end", "wall_s": time.monotonic() - started, "exit": proc.returncode})
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: hale train exited with {proc.returncode} (see {trial_dir / 'train.log'})")
    tune.report(final_metrics(run_folder(trial_dir)))


def read_rows(path: Path):
    """metrics.csv's complete rows (a row being written is left for the next poll)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = text.splitlines()
    if not text.endswith("\n") and lines:
        lines = lines[:-1]
    return list(csv.DictReader(lines))


def snapshot(run: Path, name: str):
    """A copy of the run folder as hale resumes it (config, metrics, the checkpoint
    `name`), for Tune to keep; `None` if hale rotated the checkpoint away meanwhile
    (the next one is taken then). hale keeps writing while Tune would copy, so Tune
    is handed the copy, never the live folder."""
    tmp = Path(tempfile.mkdtemp(prefix="hale-ckpt-"))
    try:
        for f in ["config.toml", "metrics.csv", "episodes.csv"]:
            if (run / f).is_file():
                shutil.copy2(run / f, tmp / f)
        shutil.copytree(run / "checkpoints" / name, tmp / "checkpoints" / name)
    except FileNotFoundError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    (tmp / "hale-run.json").write_text(json.dumps({"run": run.name}))
    return tmp


def final_metrics(run: Path) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    out = {"global_step": float(summary["global_step"]), "done_by_hale": 1.0}
    if summary.get("eval_mean_return") is not None:
        out["eval/mean_return"] = float(summary["eval_mean_return"])
    return out


def check_address(address: str):
    """Exits naming the address when nothing accepts a connection there."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        sys.exit(f"--address {address}: not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        sys.exit(f"--address {address}: no Ray cluster answers there ({e}); start one with `ray start --head`")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", help="the sweep file (as hale sweep takes it)")
    p.add_argument("--out", required=True, help="the sweep's folder, on a filesystem every node sees")
    p.add_argument("--address", default="auto", help="the Ray cluster (HEAD:PORT, ray://HEAD:10001, or auto)")
    p.add_argument("--hale", default=shutil.which("hale") or "hale", help="the hale binary, at this path on every node")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves for each trial")
    p.add_argument("--threads", type=int, default=1, help="threads each hale train may use")
    p.add_argument("--max-failures", type=int, default=3, help="retries of a trial whose process died")
    p.add_argument("--storage", help="where Tune keeps its state and checkpoints (default: OUT/ray)")
    args = p.parse_args()
    out = Path(args.out).resolve()
    # ray.init waits minutes on an address where nothing listens: ask first.
    check_address(args.address)

    # The sweep is checked and its folder written by hale itself: the same trials.
    prep = subprocess.run([args.hale, "sweep", args.sweep, "--out", str(out), "--prepare"], capture_output=True, text=True)
    if prep.returncode != 0:
        sys.exit(f"hale sweep --prepare failed:\n{prep.stderr.strip()}")
    print(prep.stdout.strip())
    plan = json.loads((out / "plan.json").read_text())
    names = [t["name"] for t in plan["trials"]]
    if not names:
        sys.exit(f"{args.sweep}: no training trials (a sweep of benchmark tasks runs with hale sweep)")

    try:
        ray.init(address=args.address, log_to_driver=False)
    except Exception as e:  # ConnectionError, or Ray's own on a bad address
        sys.exit(f"--address {args.address}: no Ray cluster answers there ({e})")
    storage = Path(args.storage).resolve() if args.storage else out / "ray"
    name = "hale-sweep"
    trial_fn = tune.with_resources(trainable, {"cpu": args.cpus_per_trial})
    if tune.Tuner.can_restore(str(storage / name)):
        print(f"restoring the Tune experiment in {storage / name}")
        tuner = tune.Tuner.restore(str(storage / name), trainable=trial_fn, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trial_fn,
            param_space={
                "trial": tune.grid_search(names),
                "hale": str(Path(args.hale).resolve()) if Path(args.hale).exists() else args.hale,
                "sweep_dir": str(out),
                "threads": args.threads,
            },
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                failure_config=tune.FailureConfig(max_failures=args.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                verbose=1,
            ),
        )
    results = tuner.fit()
    errors = [r for r in results if r.error]
    # The table, as the local backend writes it (every trial is finished: none runs).
    table = subprocess.run([args.hale, "sweep", args.sweep, "--out", str(out)])
    if errors:
        sys.exit(f"{len(errors)} of {len(names)} trials failed after their retries; run again to resume them")
    sys.exit(table.returncode)


if __name__ == "__main__":
    main()
