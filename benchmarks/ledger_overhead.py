"""What the per-host window ledger adds to a measured window (issue 18: aim <= 5 ms per window).

In one process, alternating: ``measure_window`` with no meters and a no-op, without and with a
ledger label; then the same with another window held open on the host the whole time, after N distinct
cells' windows closed during it (each left it a note: the directory every close lists grows with
them).

    python benchmarks/ledger_overhead.py [--windows 300] [--held 0,100,500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from energy_hpc.energy.ledger import LEDGER_ENV, WindowLedger
from energy_hpc.energy.window import measure_window


def per_window_ms(n: int, label: str | None) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        measure_window([], lambda: None, ledger_label=label)
    return (time.perf_counter() - t0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=300)
    ap.add_argument("--held", default="0,100,500",
                    help="distinct cells whose windows closed while another window stayed open")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ[LEDGER_ENV] = folder
        per_window_ms(20, "warm-up")
        for held in (int(h) for h in args.held.split(",")):
            other = WindowLedger(folder)
            holder = other.open("held-open") if held else None
            for i in range(held):  # closed windows an open one keeps alive
                other.close(other.open(f"old-{i}"))
            bare, ledgered = [], []
            for _ in range(5):
                bare.append(per_window_ms(args.windows, None))
                ledgered.append(per_window_ms(args.windows, "cell"))
            b, w = statistics.median(bare), statistics.median(ledgered)
            print(f"{held:4d} other cells noted to an open window: bare {b:.3f} ms/window, with "
                  f"ledger {w:.3f} ms/window: +{w - b:.3f} ms per window, "
                  f"{(2000 + w - b) / 2000:.5f}x a default 2 s window")
            if holder is not None:
                other.close(holder)


if __name__ == "__main__":
    main()
