"""Meter overhead: a fixed CPU workload with no meter and with each meter, alternating, in one process.

Prints each meter's duration ratio per pass against no meter (aim <= 1.01) and the smallest window
it resolves (the shortest window whose energy is non-zero and within 10% of the long-window power).
A meter's window is at least its resolution, so the workload may run several times inside it:
both sides are compared per pass (window wall time, start and stop included, / passes), as
benchmarks/overhead.py does, not a whole window against one bare pass.

    python benchmarks/meter_overhead.py [--rounds 5] [--work 2000000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from energy_hpc.config import EnergyConfig
from energy_hpc.energy import create_meters, measure_window
from energy_hpc.errors import MeterUnavailable


def workload(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", type=int, default=2_000_000)
    args = ap.parse_args()

    meters = {}
    for name in ("codecarbon", "rapl", "nvml"):
        try:
            meters[name] = create_meters(EnergyConfig(meters=[name], interval_s=15.0))
        except MeterUnavailable as exc:
            print(f"{name:10s}: unavailable here ({exc})")
    for m in meters.values():  # first start (CodeCarbon's hardware detection) outside the rounds
        measure_window(m, lambda: None, min_passes=1)

    times: dict[str, list[float]] = {"none": [], **{k: [] for k in meters}}  # s per pass
    passes: dict[str, list[int]] = {name: [] for name in times}
    for _ in range(args.rounds):
        for name in times:
            t0 = time.perf_counter()
            window = measure_window(meters.get(name, []), lambda: workload(args.work), min_passes=1)
            times[name].append((time.perf_counter() - t0) / window.passes)
            passes[name].append(window.passes)
    base = statistics.median(times["none"])
    print(f"workload: {base:.3f} s per pass without a meter (median of {args.rounds})")
    for name in meters:
        print(f"{name:10s}: {statistics.median(passes[name]):g} pass(es) per window (its "
              "resolution), compared per pass")
    for name in meters:
        # paired per round (metered run right after the unmetered one), so machine drift cancels
        ratios = sorted(m / n for m, n in zip(times[name], times["none"], strict=True))
        q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
        print(f"{name:10s}: duration ratio per pass {statistics.median(ratios):.4f} "
              f"(paired per round; quartiles {q[0]:.4f}-{q[2]:.4f})")

    for name, m in meters.items():
        long = measure_window(m, lambda: workload(args.work), min_window_s=3.0).readings[0]
        ref = long.avg_power_w or 0
        smallest = None
        for window in (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0):
            r = measure_window(m, lambda: workload(20_000), min_window_s=window).readings[0]
            if r.energy_wh and ref and abs((r.avg_power_w or 0) - ref) / ref <= 0.10:
                smallest = window
                break
        print(f"{name:10s}: smallest window resolved within 10% of the 3 s power "
              f"({ref:.1f} W): {smallest if smallest is not None else '> 2'} s")


if __name__ == "__main__":
    main()
