"""Orchestration overhead: a 20-cell sweep of a trivial model on the dev Slurm cluster vs cluster=local.

For each cell: submit→start latency (Slurm's Submit and Start times) and orchestration seconds =
everything that is not the cell's own work (job wall time − the runner's own time, from the
records' meta). The same sweep with cluster=local runs beside it in this command.

    source <(bash launchers/dev_slurm/up.sh)
    python benchmarks/sweep_overhead.py [--cells 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path


def sweep(cluster: str, cells: int, out: Path) -> float:
    args = [sys.executable, "-m", "energy_hpc", "-m", f"seed=range(0,{cells})", f"cluster={cluster}",
            "model=linear_bow", "repetitions=1", "energy.min_window_s=0", "energy.interval_s=1",
            "progress=false", f"out_dir={out}", f"sweep={cluster}"]
    if cluster != "local":
        args.append("gpus=0")
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def own_work_s(out: Path) -> dict[str, float]:
    work = {}
    for meta_path in out.glob("cells/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        start = datetime.fromisoformat(meta["started_at"])
        end = datetime.fromisoformat(meta["ended_at"])
        work[meta["cell_id"]] = (end - start).total_seconds()
    return work


def slurm_times(out: Path, sweep_name: str) -> list[tuple[str, float, float]]:
    entries = [json.loads(line) for line in (out / "sweeps" / f"{sweep_name}.jsonl").read_text().splitlines()]
    ids = {e["cell_id"]: str(e["job_id"]) for e in entries if e.get("job_id")}
    proc = subprocess.run(["sacct", "-a", "-n", "-P", "-X", "-j", ",".join(ids.values()), "-o",
                           "JobID,Submit,Start,End"], capture_output=True, text=True)
    by_id = {r.split("|")[0]: r.split("|")[1:] for r in proc.stdout.splitlines()}
    unknown = [jid for jid in ids.values() if jid not in by_id]
    if unknown:
        raise SystemExit(
            f"sacct knows {len(ids) - len(unknown)} of {len(ids)} jobs (missing e.g. {unknown[0]}): "
            f"Slurm accounting is not answering ({proc.stderr.strip() or 'no error text'}). "
            "Restart the dev cluster's daemons with: source <(bash launchers/dev_slurm/up.sh)")
    out_rows = []
    for cell, jid in ids.items():
        submit, start, end = (datetime.fromisoformat(x) for x in by_id[jid])
        out_rows.append((cell, (start - submit).total_seconds(), (end - start).total_seconds()))
    return out_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local_out, slurm_out = Path(tmp) / "local", Path(tmp) / "slurm"
        local_wall = sweep("local", args.cells, local_out)
        slurm_wall = sweep("dev_slurm", args.cells, slurm_out)
        local_work = own_work_s(local_out)
        slurm_work = own_work_s(slurm_out)
        times = slurm_times(slurm_out, "dev_slurm")
    lat = [t[1] for t in times]
    orch = [t[2] - slurm_work.get(t[0], 0.0) for t in times]
    lw = sum(local_work.values())
    print(f"{args.cells} cells of linear_bow on the demo data, 1 split each")
    print(f"cluster=local    : sweep wall {local_wall:7.1f} s; cells' own work {lw:6.1f} s; "
          f"orchestration {(local_wall - lw) / args.cells:5.2f} s/cell (Hydra, imports, CodeCarbon start)")
    print(f"cluster=dev_slurm: sweep wall {slurm_wall:7.1f} s; submit->start latency median "
          f"{statistics.median(lat):5.1f} s (max {max(lat):.1f}); in-job orchestration median "
          f"{statistics.median(orch):5.2f} s/cell; wall per cell {slurm_wall / args.cells:5.2f} s")
    print(f"ratio of sweep wall times (dev_slurm / local): {slurm_wall / local_wall:.2f}")


if __name__ == "__main__":
    main()
