"""What sbatch is told for a cell: its job shape, derived from the cluster file and the placement.

Cells with equal shapes can share one job array (and, later, one job).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from energy_hpc.cluster.placement import Placement
from energy_hpc.config import Settings


@dataclass(frozen=True)
class JobShape:
    """Everything sbatch is told; cells with equal shapes can share one job array."""

    partition: str | None
    account: str | None
    qos: str | None
    nodes: int
    gpus_per_node: int
    cpus_per_task: int
    mem_gb: float | None
    time_min: int
    constraint: str | None
    exclusive: bool
    setup: tuple[str, ...] = field(default_factory=tuple)

    def sbatch_args(self) -> list[str]:
        """The sbatch flags submitit makes of :meth:`executor_parameters` (for plans and messages)."""
        args = []
        for key, value in self.executor_parameters().items():
            if key == "setup":
                continue
            flag = "--" + key.replace("_", "-")
            args.append(flag if value is True else f"{flag}={value}")
        return args

    def executor_parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"nodes": self.nodes, "ntasks_per_node": 1,
                                  "cpus_per_task": self.cpus_per_task, "time": self.time_min,
                                  "setup": list(self.setup)}
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.mem_gb:
            params["mem"] = f"{int(self.mem_gb * 1024)}M"
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key):
                params[key] = getattr(self, key)
        if self.exclusive:
            params["exclusive"] = True
        return params


def job_shape(settings: Settings, placement: Placement) -> JobShape:
    c = settings.cluster
    cpus = c.cpus_per_task or (max(1, (c.cpus_per_node or 1) // max(c.gpus_per_node, 1))
                              * max(placement.gpus_per_node, 1))
    setup = tuple(c.setup) + tuple(f"export {k}={json.dumps(str(v))}" for k, v in sorted(c.env.items()))
    return JobShape(partition=c.partition, account=c.account, qos=c.qos, nodes=placement.nodes,
                    gpus_per_node=placement.gpus_per_node, cpus_per_task=cpus, mem_gb=c.mem_gb,
                    time_min=c.time_limit_min, constraint=c.constraint, exclusive=c.exclusive,
                    setup=setup)
