"""Orchestration overhead: a sweep of a trivial model on the dev Slurm cluster, packed and unpacked,
against cluster=local; and a tiny LLM, four cells in one process (one engine load) vs four.

For each Slurm cell: submit→start latency (Slurm's Submit and Start times) and in-job overhead =
the job's wall time − the cells' own work (from their meta.json: the runner's start to end),
per cell. Every sweep runs in this command, one after another.

    source <(bash launchers/dev_slurm/up.sh)
    python benchmarks/sweep_overhead.py [--cells 20] [--skip-llm]

Goals (issue 10): packed dev_slurm wall <= 1.3x local; in-job overhead per packed cell <= 0.5 s;
4 packed tiny-LLM cells <= 0.5x the wall of 4 unpacked.
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

REPO = Path(__file__).resolve().parents[1]


def sweep(cluster: str, cells: int, out: Path, *extra: str) -> float:
    args = [sys.executable, "-m", "energy_hpc", "-m", f"seed=range(0,{cells})", f"cluster={cluster}",
            "model=linear_bow", "repetitions=1", "energy.min_window_s=0", "energy.interval_s=1",
            "progress=false", f"out_dir={out}", "sweep=bench", *extra]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True, cwd=REPO)
    return time.perf_counter() - t0


def own_work_s(out: Path) -> dict[str, float]:
    work = {}
    for meta_path in out.glob("cells/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        start = datetime.fromisoformat(meta["started_at"])
        end = datetime.fromisoformat(meta["ended_at"])
        work[meta["cell_id"]] = (end - start).total_seconds()
    return work


def slurm_jobs(out: Path) -> dict[str, tuple[list[str], float, float]]:
    """Per job id: its cells, submit→start latency and wall time (sacct)."""
    entries = [json.loads(line) for line in (out / "sweeps" / "bench.jsonl").read_text().splitlines()]
    cells: dict[str, list[str]] = {}
    for e in entries:
        if e.get("job_id"):
            cells.setdefault(str(e["job_id"]), []).append(e["cell_id"])
    proc = subprocess.run(["sacct", "-a", "-n", "-P", "-X", "-j", ",".join(cells), "-o",
                           "JobID,Submit,Start,End"], capture_output=True, text=True)
    by_id = {r.split("|")[0]: r.split("|")[1:] for r in proc.stdout.splitlines()}
    unknown = [jid for jid in cells if jid not in by_id]
    if unknown:
        raise SystemExit(
            f"sacct knows {len(cells) - len(unknown)} of {len(cells)} jobs (missing e.g. {unknown[0]}): "
            f"Slurm accounting is not answering ({proc.stderr.strip() or 'no error text'}). "
            "Restart the dev cluster's daemons with: source <(bash launchers/dev_slurm/up.sh)")
    out_rows = {}
    for jid, ids in cells.items():
        submit, start, end = (datetime.fromisoformat(x) for x in by_id[jid])
        out_rows[jid] = (ids, (start - submit).total_seconds(), (end - start).total_seconds())
    return out_rows


def slurm_line(name: str, wall: float, out: Path, cells: int, local_wall: float) -> None:
    jobs = slurm_jobs(out)
    work = own_work_s(out)
    lat = [j[1] for j in jobs.values()]
    overhead = [(j[2] - sum(work.get(c, 0.0) for c in j[0])) / len(j[0]) for j in jobs.values()]
    print(f"dev_slurm {name:9s}: sweep wall {wall:6.1f} s in {len(jobs)} job(s); submit->start median "
          f"{statistics.median(lat):4.1f} s; in-job overhead per cell median "
          f"{statistics.median(overhead):5.2f} s; wall ratio to local {wall / local_wall:.2f}")


def llm_pack(tmp: Path) -> None:
    sys.path.insert(0, str(REPO))
    from energy_hpc.data.loading import demo_path
    from tests.tiny_llama import build_tiny_llama

    model = build_tiny_llama(tmp / "tiny", demo_path().read_text().splitlines()[:200])
    base = ["model=llama8b", f"model.hf_id={model}", "model.engine=transformers", "model.dtype=float32",
            "model.max_tokens=12", "dataset.n_train=8", "dataset.n_test=6", "repetitions=1",
            "progress=false", "energy.interval_s=1"]
    combos = [(d, b) for d in ("free", "choice") for b in ("sequential", "batched")]
    t0 = time.perf_counter()
    for i, (d, b) in enumerate(combos):  # unpacked: a process, imports and an engine load each
        subprocess.run([sys.executable, "-m", "energy_hpc", *base, f"model.decoding={d}",
                        f"model.batching={b}", f"out_dir={tmp / 'u'}", f"sweep=u{i}"], check=True,
                       capture_output=True, cwd=REPO)
    unpacked = time.perf_counter() - t0
    t0 = time.perf_counter()  # packed: the same 4 cells in one process
    subprocess.run([sys.executable, "-m", "energy_hpc", "-m", *base, "model.decoding=free,choice",
                    "model.batching=sequential,batched", f"out_dir={tmp / 'p4'}", "sweep=p4"],
                   check=True, capture_output=True, cwd=REPO)
    packed = time.perf_counter() - t0
    loads = [json.loads(line).get("engine_reused") for f in sorted((tmp / "p4").glob("cells/*/records.jsonl"))
             for line in f.read_text().splitlines()]
    print(f"tiny LLM, transformers: 4 cells unpacked {unpacked:5.1f} s; the same 4 in one process "
          f"{packed:5.1f} s (engine reused in {sum(bool(x) for x in loads)} of {len(loads)} cells); "
          f"ratio packed/unpacked {packed / unpacked:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20)
    ap.add_argument("--skip-llm", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        local_wall = sweep("local", args.cells, tmp / "local")
        lw = sum(own_work_s(tmp / "local").values())
        print(f"{args.cells} cells of linear_bow on the demo data, 1 split each")
        print(f"local            : sweep wall {local_wall:6.1f} s; cells' own work {lw:5.1f} s; "
              f"orchestration {(local_wall - lw) / args.cells:5.2f} s/cell")
        for name, pack in (("unpacked", "pack=1"), ("packed", "pack=auto")):
            out = tmp / name
            wall = sweep("dev_slurm", args.cells, out, "gpus=0", pack)
            slurm_line(name, wall, out, args.cells, local_wall)
        if not args.skip_llm:
            llm_pack(tmp)


if __name__ == "__main__":
    main()
