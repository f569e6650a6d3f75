#!/usr/bin/env python3
"""GNN training step: hale (burn, flex CPU backend) beside PyTorch, same workload.

    pip install torch numpy
    python3 benches/scripts/gnn_torch.py [--iterations 50] [--threads 1,2]

The workload of `cargo bench -p hale-benches --bench gnn`: 64 graphs x 50 nodes x 32
features batched as one disjoint union (a spanning chain plus one random edge per
node, both directions), an input projection to 64, two GraphSAGE mean-aggregation
layers (messages gathered with index_select and summed with index_add_), a 4-score
head per node and a value from each graph's mean embedding; loss = mean (value - 1)^2
+ mean score^2; backward; Adam step. The graphs here are drawn with numpy (the same
shapes and degree distribution, not the same numbers: the timing does not depend on
them). hale runs its example `gnn_step` (release profile unless --profile says otherwise)
twice: the fused CPU step that `hale train` uses for the GNN, and burn's autodiff.
Prints one JSON object with milliseconds per step for each and the ratio hale
(fused) / PyTorch (PyTorch at its faster thread count).
"""
import argparse
import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRAPHS, NODES, FEATURES, HIDDEN = 64, 50, 32, 64


def torch_ms(iterations, threads):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = GRAPHS * NODES
    x = torch.tensor(rng.uniform(-1, 1, size=(n, FEATURES)), dtype=torch.float32)
    src, dst = [], []
    for g in range(GRAPHS):
        base = g * NODES
        for i in range(1, NODES):
            for a, b in ((base + i - 1, base + i), (base + i, base + int(rng.integers(NODES)))):
                src += [a, b]
                dst += [b, a]
    src, dst = torch.tensor(src), torch.tensor(dst)
    deg = torch.zeros(n).index_add_(0, dst, torch.ones(len(dst)))
    inv_deg = torch.where(deg > 0, 1.0 / deg.clamp(min=1), torch.zeros_like(deg)).unsqueeze(1)
    graph_of = torch.arange(GRAPHS).repeat_interleave(NODES)

    class Sage(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.self_proj = torch.nn.Linear(d, d)
            self.neigh_proj = torch.nn.Linear(d, d, bias=False)

        def forward(self, h):
            summed = torch.zeros_like(h).index_add_(0, dst, h.index_select(0, src))
            return torch.relu(self.self_proj(h) + self.neigh_proj(summed * inv_deg))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.input = torch.nn.Linear(FEATURES, HIDDEN)
            self.layers = torch.nn.ModuleList([Sage(HIDDEN), Sage(HIDDEN)])
            self.node_head = torch.nn.Linear(HIDDEN, 4)
            self.value_head = torch.nn.Linear(HIDDEN, 1)

        def forward(self, x):
            h = torch.relu(self.input(x))
            for layer in self.layers:
                h = layer(h)
            pooled = torch.zeros(GRAPHS, HIDDEN).index_add_(0, graph_of, h) / NODES
            return self.node_head(h), self.value_head(pooled).squeeze(1)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        scores, values = net(x)
        loss = ((values - 1) ** 2).mean() + (scores**2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) * 1e3 / iterations


def hale_ms(iterations, profile, path):
    out = subprocess.run(
        [
            "cargo", "run", "--quiet", "--profile", profile, "-p", "hale-benches", "--example", "gnn_step",
            "--", str(iterations), str(GRAPHS), str(NODES), path,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--threads", default="1,2", help="PyTorch thread counts to try (the faster is kept)")
    ap.add_argument(
        "--profile",
        default="release",
        help="cargo profile of hale's run (dev also optimises burn fully: deps build at opt-level 3)",
    )
    args = ap.parse_args()
    torch_runs = {t: torch_ms(args.iterations, int(t)) for t in args.threads.split(",")}
    best_threads = min(torch_runs, key=torch_runs.get)
    hale = hale_ms(args.iterations, args.profile, "fused")
    hale_burn = hale_ms(args.iterations, args.profile, "burn")
    print(
        json.dumps(
            {
                "workload": f"{GRAPHS} graphs x {NODES} nodes x {FEATURES} features, 2 SAGE layers x {HIDDEN}",
                "hale_ms_per_step": hale["ms_per_step"],
                "hale_threads": hale["threads"],
                "hale_burn_ms_per_step": hale_burn["ms_per_step"],
                "torch_ms_per_step": {t: round(v, 3) for t, v in torch_runs.items()},
                "torch_best_threads": int(best_threads),
                "ratio_hale_over_torch": round(hale["ms_per_step"] / torch_runs[best_threads], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
