"""What a cell is built from on a cluster: placement (TP/PP, memory fit), the Slurm job shape, the
GPUs of this machine, other jobs on a node, the site's energy accounting. Submitting, packing,
the job body, Ray and per-node meters consume a cell: they are in :mod:`energy_hpc.launch`."""

from __future__ import annotations

from energy_hpc.cluster.placement import Placement, plan_placement

__all__ = ["Placement", "plan_placement"]
