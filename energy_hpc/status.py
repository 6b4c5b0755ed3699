"""``python -m energy_hpc.status OUT_DIR [--sweep NAME]``: pending/running/done/failed per cell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from energy_hpc.errors import UserError
from energy_hpc.launch.slurm import sweep_status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m energy_hpc.status", description=__doc__)
    ap.add_argument("out_dir", nargs="?", default="energy_results",
                    help="the sweep's out_dir (default: %(default)s)")
    ap.add_argument("--sweep", default="default", help="sweep name (the sweep= option)")
    args = ap.parse_args(argv)
    if not Path(args.out_dir).is_dir():
        print(f"energy_hpc.status: error: {args.out_dir} does not exist or is not a folder; give "
              "the out_dir of a run (out_dir=, default energy_results)", file=sys.stderr)
        return 2
    try:
        rows = sweep_status(args.out_dir, args.sweep)
    except UserError as exc:
        print(f"energy_hpc.status: error: {str(exc).replace('sweep=', '--sweep ', 1)}",
              file=sys.stderr)
        return 2
    if not rows:
        print(f"no cells recorded for sweep {args.sweep!r} under {args.out_dir}/sweeps/", file=sys.stderr)
        return 2
    headers = ["cell_id", "cell", "job_id", "slurm_state", "splits", "status"]
    table = [[r["cell_id"], r["cell"] or "-", str(r["job_id"] or "-"), r["slurm_state"],
              f"{r['splits_done']}/{r['repetitions'] or '?'}", r["status"]] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
    counts = {"pending": 0, "waiting": 0, "running": 0, "done": 0, "failed": 0,
              "not started": 0}
    for r in rows:
        word = r["status"]
        key = ("waiting" if word.startswith("waiting") else
               "not started" if "before it started" in word else word)
        counts[key] = counts.get(key, 0) + 1
    print(", ".join(f"{v} {k}" for k, v in counts.items()
                    if v or k in ("pending", "running", "done", "failed")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
