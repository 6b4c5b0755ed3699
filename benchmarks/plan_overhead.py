"""Planning cost: dry runs of a 1-, 100- and 1,000-cell sweep, as ratios to the 1-cell dry run.

Each dry run is a fresh ``python -m energy_hpc … dry_run=true`` process (Python start, imports,
Hydra, planning, printing the plan); nothing is submitted or measured. The sweeps mix what a
study varies: models (traditional and LLM) x datasets x clusters x nodes (x seeds for 1,000).

    python benchmarks/plan_overhead.py [--rounds 3]

Goal (issue 9): 100 cells <= 2.5x one cell, 1,000 cells <= 15 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = "model=linear_bow,linear_tfidf,xgboost_bow,llama8b,qwen7b"
DATASETS = "dataset=demo,tomatoes,news,yelp,emotion"
SWEEPS = {
    1: ["cluster=capella", "model=llama8b"],
    100: ["-m", MODELS, DATASETS, "cluster=capella,paula", "nodes=1,2"],
    1000: ["-m", MODELS, DATASETS, "cluster=capella,paula", "nodes=1,2", "seed=range(0,10)"],
}


def dry_run(args: list[str], out_dir: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "energy_hpc", *args, "dry_run=true",
                           f"out_dir={out_dir}"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dry run failed ({' '.join(args)}):\n{proc.stderr[-2000:]}")
    cells = sum(line.startswith("  - ") for line in proc.stdout.splitlines())
    return wall, cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    walls: dict[int, list[float]] = {n: [] for n in SWEEPS}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):  # interleaved, so drift on a shared VM hits every size alike
            for n, sweep in SWEEPS.items():
                wall, cells = dry_run(sweep, out)
                if cells != n:
                    raise SystemExit(f"expected {n} planned cells, the plan lists {cells}")
                walls[n].append(wall)
    one = statistics.median(walls[1])
    print(f"dry runs, median of {args.rounds} rounds (fresh process each):")
    for n, values in walls.items():
        med = statistics.median(values)
        print(f"  {n:5d} cell(s): {med:6.2f} s  (min {min(values):.2f}, max {max(values):.2f})  "
              f"ratio to 1 cell = {med / one:.2f}  per cell beyond the first = "
              f"{(med - one) / max(n - 1, 1) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
