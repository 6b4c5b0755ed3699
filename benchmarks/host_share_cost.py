"""What seeing the host's other CPU work costs a measured window (issue 25): the same empty window
(one trivial meter, one pass of no work) with the neighbour accounting — two snapshots of own CPU
time (process tree or the job's cgroup) and of the host's busy time (/proc/stat) — and with it
stubbed out, alternated in one run; the difference is what every window pays.

    python benchmarks/host_share_cost.py [--windows 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from energy_hpc.energy import window
from energy_hpc.energy.base import Reading


class Trivial:
    name, resolution_s, scope = "trivial", 0.0, "job"

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def stop(self) -> Reading:
        return Reading(meter="trivial", duration_s=time.perf_counter() - self.t0, cpu_wh=0.0,
                       gpu_wh=None, ram_wh=None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=2000)
    args = ap.parse_args()
    real = (window.snapshot, window.cpu_share)
    stub = (lambda **_: None, lambda before, after: {})
    times: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.windows):
        for name, (snap, share) in (("with", real), ("without", stub)):
            window.snapshot, window.cpu_share = snap, share
            t0 = time.perf_counter()
            window.measure_window([Trivial()], lambda: None)
            times[name].append(time.perf_counter() - t0)
    window.snapshot, window.cpu_share = real
    w, wo = statistics.median(times["with"]), statistics.median(times["without"])
    print(f"{args.windows} empty windows, median: {w * 1e3:.3f} ms with the neighbour accounting, "
          f"{wo * 1e3:.3f} ms without: +{(w - wo) * 1e3:.3f} ms per window ({w / wo:.1f}x an empty "
          "window; a real one lasts >= energy.min_window_s, 2 s by default)")


if __name__ == "__main__":
    main()
