"""``python -m energy_hpc``: the Hydra app (see energy_hpc/cli.py)."""

from __future__ import annotations

from energy_hpc.cli import main

if __name__ == "__main__":
    main()
