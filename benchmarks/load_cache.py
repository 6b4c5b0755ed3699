"""results.load at scale: JSONL only, the first load (which writes the columnar cache), a warm
load from the cache, and the same rows read from one Parquet file (the floor: the cache's own
file without decoding its JSON columns, and the rows in Parquet's nested types). Aims (issue 24):
warm <= 3x and first <= 8x the same rows from one Parquet file, on 10^4 records; peak memory of
a first and a warm load of 10^5 records <= 1 GB (``--memory-cells 10000``: each load in a fresh
process, its peak resident set as the kernel counts it, imports included).

Records are copies of real ones (a quick real run of Linear Tf-idf here, node readings and all),
written as ``--cells`` cells x ``--splits`` records.

    python benchmarks/load_cache.py [--cells 1000] [--splits 10] [--rounds 3] [--memory-cells 10000]
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


def write_cells(out: Path, rows: list[dict], cells: int, splits: int) -> None:
    for c in range(cells):
        cell = out / "cells" / f"cell-{c:05d}"
        cell.mkdir(parents=True)
        lines = []
        for s in range(splits):
            rec = dict(rows[s % len(rows)], cell_id=f"cell-{c:05d}", split=s,
                       accuracy=0.5 + (c % 50) / 100)
            lines.append(json.dumps(rec))
        (cell / "records.jsonl").write_text("\n".join(lines) + "\n")


PEAK = """
import resource, sys
from energy_hpc.results import load
frame = load(sys.argv[1])
print(len(frame), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(folder: Path, rows: list[dict], cells: int, splits: int) -> None:
    """A first and a warm load of cells x splits records, each in a fresh process."""
    out = folder / "memory"
    write_cells(out, rows, cells, splits)
    for name in ("first", "warm"):
        done = subprocess.run([sys.executable, "-c", PEAK, str(out)], check=True,
                              capture_output=True, text=True).stdout.split()
        assert int(done[0]) == cells * splits
        mb = int(done[1]) / 1024
        print(f"peak memory, {name} load of {cells * splits} records: {mb:.0f} MB "
              f"(aim <= 1024 MB: {'met' if mb <= 1024 else 'NOT met'})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-cells", type=int, default=0,
                    help="also the peak memory of loading this many cells x --splits records")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = template(folder)
        out = folder / "out"
        write_cells(out, rows, args.cells, args.splits)
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
        print(f"warm cache / nested Parquet = {med['warm'] / med['native']:.2f} (aim <= 3), "
              f"/ raw Parquet = {med['warm'] / med['parquet']:.2f}; first load / nested Parquet = "
              f"{med['first'] / med['native']:.2f} (aim <= 8), / raw Parquet = "
              f"{med['first'] / med['parquet']:.2f}; JSONL / warm cache = "
              f"{med['jsonl'] / med['warm']:.1f}")
        if args.memory_cells:
            peak_memory(folder, rows, args.memory_cells, args.splits)


def _clear(out: Path) -> None:
    import shutil

    shutil.rmtree(out / CACHE_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
