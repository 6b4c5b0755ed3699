"""results.load at scale: JSONL only, the first load (which writes the columnar cache), a warm
load from the cache, and the same rows read from one Parquet file (the floor: the cache's own
file without decoding its JSON columns, and the rows in Parquet's nested types). Aim: warm <= 5x
Parquet on 10^4 records (issue 19).

Records are copies of real ones (a quick real run of Linear Tf-idf here, node readings and all),
written as ``--cells`` cells x ``--splits`` records.

    python benchmarks/load_cache.py [--cells 1000] [--splits 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from energy_hpc.records_cache import CACHE_DIR, DATA_FILE
from energy_hpc.results import load


def template(folder: Path) -> list[dict]:
    out = folder / "seed"
    subprocess.run([sys.executable, "-m", "energy_hpc", "repetitions=2", "progress=false",
                    "energy.min_window_s=0.05", f"out_dir={out}"], check=True,
                   capture_output=True)
    path = next(out.glob("cells/*/records.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = template(folder)
        out = folder / "out"
        for c in range(args.cells):
            cell = out / "cells" / f"cell-{c:05d}"
            cell.mkdir(parents=True)
            lines = []
            for s in range(args.splits):
                rec = dict(rows[s % len(rows)], cell_id=f"cell-{c:05d}", split=s,
                           accuracy=0.5 + (c % 50) / 100)
                lines.append(json.dumps(rec))
            (cell / "records.jsonl").write_text("\n".join(lines) + "\n")
        n = args.cells * args.splits
        # the floor twice: the cache's own file read raw (lists and mappings left as JSON text),
        # and the rows stored with Parquet's nested types (lists come back as numpy arrays)
        load(out, cache=False).to_parquet(folder / "native.parquet", index=False)
        timings: dict[str, list[float]] = {"jsonl": [], "first": [], "warm": [], "parquet": [],
                                           "native": []}
        for _ in range(args.rounds):
            for name, run in (("jsonl", lambda: load(out, cache=False)),
                              ("first", lambda: (_clear(out), load(out))[1]),
                              ("warm", lambda: load(out)),
                              ("parquet", lambda: pd.read_parquet(out / CACHE_DIR / DATA_FILE)),
                              ("native", lambda: pd.read_parquet(folder / "native.parquet"))):
                t0 = time.perf_counter()
                frame = run()
                timings[name].append(time.perf_counter() - t0)
                assert len(frame) == n, (name, len(frame))
        med = {k: statistics.median(v) for k, v in timings.items()}
        print(f"{n} records in {args.cells} files, median of {args.rounds}:")
        for k in ("jsonl", "first", "warm", "parquet", "native"):
            print(f"  {k:8s} {med[k]:.3f} s  ({med[k] / med['parquet']:.1f}x the raw cache file, "
                  f"{med[k] / med['native']:.1f}x nested Parquet)")
        print(f"warm cache / raw Parquet = {med['warm'] / med['parquet']:.2f}, / nested Parquet = "
              f"{med['warm'] / med['native']:.2f} (aim <= 5); JSONL / warm cache = "
              f"{med['jsonl'] / med['warm']:.1f}")


def _clear(out: Path) -> None:
    import shutil

    shutil.rmtree(out / CACHE_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
