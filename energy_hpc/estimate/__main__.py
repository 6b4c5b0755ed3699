"""``python -m energy_hpc.estimate [--csv PATH] OVERRIDES…``: what a sweep would cost, and a CSV.

The same composition and plan as ``python -m energy_hpc -m OVERRIDES… dry_run=true``: per cell
and in total the estimated wall time, node- and GPU-hours, energy and CO2 with their basis, the
Slurm jobs with their ``--time``; every cell's row also goes to the CSV (default
``<out_dir>/estimates/<sweep>.csv``). Nothing is measured or submitted.
"""

from __future__ import annotations

import re
import sys

DEFAULT_CSV = "${out_dir}/estimates/${sweep}.csv"
USAGE = ("usage: python -m energy_hpc.estimate [--csv PATH] [OVERRIDE ...]\n"
         "  e.g. python -m energy_hpc.estimate model=llama8b,llama70b cluster=capella,clara "
         "--csv costs.csv")


def hydra_argv(argv: list[str]) -> list[str] | tuple[str, int]:
    """The energy_hpc command line this stands for, or (what to print, exit status)."""
    csv, rest = DEFAULT_CSV, []
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help"):
            return f"{(__doc__ or '').strip()}\n\n{USAGE}", 0
        if arg == "--csv":
            csv = next(args, "")
            if not csv:
                return f"--csv needs a path\n{USAGE}", 2
        elif arg.startswith("--csv="):
            csv = arg.split("=", 1)[1]
        elif arg in ("-m", "--multirun") or arg.startswith("dry_run="):
            continue  # always a multirun dry run
        elif arg.startswith("estimate_csv="):
            csv = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            return f"unknown option {arg}\n{USAGE}", 2
        else:
            rest.append(arg)
    quoted = csv if re.fullmatch(r"[\w./${}-]+", csv) else "'" + csv.replace("'", "\\'") + "'"
    return ["-m", *rest, "dry_run=true", f"estimate_csv={quoted}"]


def main(argv: list[str] | None = None) -> None:
    got = hydra_argv(list(sys.argv[1:] if argv is None else argv))
    if isinstance(got, tuple):
        text, status = got
        print(text if status == 0 else f"energy_hpc.estimate: error: {text}",
              file=sys.stdout if status == 0 else sys.stderr)
        sys.exit(status)
    from energy_hpc.cli import main as energy_hpc_main

    sys.argv = ["python -m energy_hpc.estimate", *got]
    energy_hpc_main()


if __name__ == "__main__":
    main()
