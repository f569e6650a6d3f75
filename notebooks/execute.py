"""Executes hale's notebooks with nbclient, as CI does: every cell must run.

    python notebooks/execute.py --run RUN_DIR --eval EVAL_DIR --sweep SWEEP_DIR --out DIR

The folders reach the notebooks as HALE_RUN, HALE_EVAL and HALE_SWEEP; the executed
notebooks and their figures go to --out (the notebooks in the repository stay as they
are). Exit status 1, naming the notebook and the cell, when a cell fails.
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a training run's folder")
    p.add_argument("--eval", required=True, help="an evaluation folder (hale eval --out)")
    p.add_argument("--sweep", required=True, help="a sweep's folder")
    p.add_argument("--out", required=True, help="where executed notebooks and figures go")
    p.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = p.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        HALE_RUN=str(Path(args.run).resolve()),
        HALE_EVAL=str(Path(args.eval).resolve()),
        HALE_SWEEP=str(Path(args.sweep).resolve()),
        HALE_FIGURES=str(out / "figures"),
    )
    failed = 0
    for name in ["run.ipynb", "evaluation.ipynb", "sweep.ipynb"]:
        nb = nbformat.read(HERE / name, as_version=4)
        client = NotebookClient(
            nb, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(out)}}
        )
        try:
            client.execute()
            print(f"ok    {name}: {len(nb.cells)} cells")
        except CellExecutionError as e:
            failed += 1
            print(f"FAIL  {name}: {e}", file=sys.stderr)
        nbformat.write(nb, out / name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
