"""Attribution beside a real neighbour (issue 25): the same cell measured alone, beside a one-core
and beside a two-core CPU burner that is not energy_hpc (started outside this process tree), in
one run. Prints, per condition, the whole-host energy ÷ alone, the attributed energy ÷ alone (goal:
within 1.10), the CPU part's two ratios, and the foreign CPU share the windows saw; then what the
neighbour accounting costs a window (benchmarks/host_share_cost.py measures it alone).

    python benchmarks/attribution.py [--model linear_tfidf] [--repetitions 3] [--rounds 2]
        [--dataset PATH.csv]   # a CSV text,label; default: the embedded demo set
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def burner(cores: int) -> list[int]:
    """``cores`` busy loops that are strangers: a shell starts them in the background and exits."""
    pids = []
    for _ in range(cores):
        out = subprocess.run(["sh", "-c", f"'{sys.executable}' -c 'while True: pass' "
                              ">/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
        pids.append(int(out.stdout.strip()))
    time.sleep(0.5)
    return pids


def stop(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def measure(args: argparse.Namespace, out: str) -> list[dict]:
    from energy_hpc.cell import compose_cell
    from energy_hpc.runner import run_cell

    overrides = [f"model={args.model}", f"repetitions={args.repetitions}", f"out_dir={out}",
                 "force=true", "progress=false"]
    if args.dataset:
        overrides += ["dataset=csv", f"dataset.path={args.dataset}", "dataset.name=bench"]
    return run_cell(compose_cell(overrides))


def mean(records: list[dict], key: str) -> float:
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.mean(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="linear_tfidf")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="alone/1-core/2-core, this many times")
    ap.add_argument("--dataset", default=None)
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    out = tempfile.mkdtemp(prefix="ehpc-attr-")
    results: dict[str, list[dict]] = {"alone": [], "1-core burner": [], "2-core burner": []}
    try:
        measure(args, out)  # warm: imports, the dataset, CodeCarbon's first start
        for _ in range(args.rounds):
            for name, cores in (("alone", 0), ("1-core burner", 1), ("2-core burner", 2)):
                pids = burner(cores)
                try:
                    results[name] += measure(args, out)
                finally:
                    stop(pids)
                time.sleep(1.0)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    base = {k: mean(results["alone"], k) for k in
            ("energy_wh", "energy_wh_attributed", "cpu_wh", "cpu_wh_attributed")}
    print(f"{args.model}, {args.repetitions} split(s) x {args.rounds} round(s) per condition, "
          f"{os.cpu_count()} CPUs; ratios of means against alone (whole-host energy alone: "
          f"{base['energy_wh']:.4g} Wh per pass)")
    print(f"{'condition':<15}{'whole/alone':>12}{'attributed/alone':>18}{'cpu whole':>11}"
          f"{'cpu attr.':>11}{'duration':>10}{'foreign share':>15}{'cpu wait':>10}  status")
    for name, recs in results.items():
        statuses = sorted({r.get("attribution", "?") for r in recs})
        attributed = mean(recs, "energy_wh_attributed") / base["energy_wh"]
        print(f"{name:<15}{mean(recs, 'energy_wh') / base['energy_wh']:>12.3f}"
              f"{'n/a' if attributed != attributed else f'{attributed:.3f}':>18}"
              f"{mean(recs, 'cpu_wh') / base['cpu_wh']:>11.2f}"
              f"{mean(recs, 'cpu_wh_attributed') / base['cpu_wh']:>11.2f}"
              f"{mean(recs, 'duration_s') / mean(results['alone'], 'duration_s'):>10.2f}"
              f"{mean(recs, 'foreign_cpu_share'):>15.2f}{mean(recs, 'cpu_contention'):>10.2f}"
              f"  {' | '.join(statuses)[:160]}")
    from energy_hpc.energy.host_share import cpu_share, snapshot

    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        cpu_share(snapshot(), snapshot(memory=True))
    cost = (time.perf_counter() - t0) / n
    print(f"neighbour accounting: {cost * 1e3:.2f} ms per window (two snapshots and the share; "
          "a window lasts >= energy.min_window_s, 2 s by default)")


if __name__ == "__main__":
    main()
