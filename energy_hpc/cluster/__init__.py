"""Clusters: placement (TP/PP, memory fit), Slurm submission, Ray inside an allocation, per-node meters."""

from __future__ import annotations

from energy_hpc.cluster.placement import Placement, plan_placement

__all__ = ["Placement", "plan_placement"]
