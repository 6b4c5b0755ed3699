"""energy_hpc: energy per accuracy of text classifiers, measured on Slurm HPC clusters."""

from __future__ import annotations

__version__ = "0.1.0"
RECORD_SCHEMA_VERSION = 1
