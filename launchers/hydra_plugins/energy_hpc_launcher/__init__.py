"""Hydra launcher plugin: each multirun cell becomes its own Slurm job (or runs here on cluster=local)."""
