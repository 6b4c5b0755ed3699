"""What sbatch is told for a cell: its job shape, derived from the cluster file and the placement.

Cells with equal shapes can share one job array (and, later, one job).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from energy_hpc.cluster.placement import Placement
from energy_hpc.config import REDACTED, Settings
from energy_hpc.errors import ConfigError


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
    # why the job is --exclusive (or may share its node), for the plan
    exclusive_why: str = field(default="", compare=False)
    setup: tuple[str, ...] = field(default_factory=tuple)
    # secret environment variables: never written into the sbatch script, handed to sbatch
    # through its environment instead (energy_hpc.config.secret_env)
    secret_env: tuple[str, ...] = field(default_factory=tuple)
    # cluster.slurm_extra: more submitit/sbatch parameters (mail, comment, dependency, raw flags)
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def sbatch_args(self) -> list[str]:
        """The sbatch flags submitit makes of :meth:`executor_parameters` (for plans and messages)."""
        args = []
        params = self.executor_parameters()
        raw = params.pop("additional_parameters", {})
        for key, value in [*params.items(), *raw.items()]:
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
        for key, value in self.extra:
            params[key] = dict(value) if key == "additional_parameters" else value
        return params


# What energy_hpc derives from the cluster file and the placement: not settable via slurm_extra.
DERIVED = ("job_name", "partition", "time", "nodes", "ntasks_per_node", "cpus_per_task",
           "cpus_per_gpu", "num_gpus", "gpus_per_node", "gpus_per_task", "qos", "setup", "teardown",
           "mem", "mem_per_gpu", "mem_per_cpu", "constraint", "account", "gres", "exclusive",
           "array_parallelism", "stderr_to_stdout", "srun_args", "use_srun")


def slurm_extra(cluster_name: str, extra: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """``cluster.slurm_extra`` checked the submitit way: an unknown key is refused with the valid
    ones; a key energy_hpc sets itself names the cluster field to use instead."""
    if not extra:
        return ()
    try:
        from submitit.slurm.slurm import _get_default_parameters
    except ImportError:  # planning without the slurm extra; submission says to install it
        return tuple(sorted((k, _frozen(v)) for k, v in extra.items()))
    valid = sorted(set(_get_default_parameters()) - set(DERIVED))
    for key, value in extra.items():
        if key in DERIVED:
            raise ConfigError(
                f"cluster {cluster_name!r}: slurm_extra.{key} is set by energy_hpc from the cluster "
                f"file and the placement; use the cluster's own fields (partition, account, qos, "
                f"constraint, exclusive, cpus_per_task, mem_gb, time_limit_min, setup)")
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"cluster {cluster_name!r}: slurm_extra.{key} is not an sbatch "
                              f"parameter submitit knows{hint} Valid: {', '.join(valid)} "
                              "(additional_parameters: {flag: value} passes raw sbatch flags)")
        if key == "additional_parameters" and not isinstance(value, dict):
            raise ConfigError(f"cluster {cluster_name!r}: slurm_extra.additional_parameters must "
                              "be a mapping of sbatch flags to values, e.g. {reservation: ml}")
    return tuple(sorted((k, _frozen(v)) for k, v in extra.items()))


def _frozen(value: Any) -> Any:
    """Hashable (a shape is a dict key): mappings become sorted item tuples."""
    return tuple(sorted(value.items())) if isinstance(value, dict) else value


def exclusivity(settings: Settings, gpus: int = 0, cpus: int | None = None) -> tuple[bool, str]:
    """Whether the job is submitted ``--exclusive``, and why (the plan prints it per job array):
    a site of whole nodes (``cluster.exclusive``) or ``cluster.isolation=exclusive`` — else the
    job holds only what the cell needs and whole-node meters are attributed (attribution.py)."""
    from energy_hpc.energy.registry import reads_whole_node

    c = settings.cluster
    if c.exclusive:
        return True, "cluster.exclusive=true: the site hands out whole nodes"
    if c.isolation == "exclusive":
        held = f" (bills {c.gpus_per_node} GPU(s) of each node)" if c.gpus_per_node else ""
        return True, f"cluster.isolation=exclusive: the node to itself{held}"
    holds = f"only its {gpus} GPU(s) and {cpus} core(s)" if cpus is not None else "only what it needs"
    if not reads_whole_node(list(settings.energy.meters)):
        return False, (f"energy.meters={list(settings.energy.meters)} read only the job's own "
                       f"devices: the job holds {holds} and may share the node")
    return False, (f"cluster.isolation=attribute: the job holds {holds}; what a neighbour adds to "
                   f"the whole-node meters ({', '.join(settings.energy.meters)}) is measured and "
                   "attributed (docs/measurement.md#isolation)")


def job_shape(settings: Settings, placement: Placement) -> JobShape:
    c = settings.cluster
    cpus = c.cpus_per_task or (max(1, (c.cpus_per_node or 1) // max(c.gpus_per_node, 1))
                              * max(placement.gpus_per_node, 1))
    setup = tuple(c.setup) + tuple(f"export {k}={json.dumps(str(v))}" for k, v in sorted(c.env.items())
                                   if v != REDACTED)
    exclusive, why = exclusivity(settings, placement.gpus_per_node, cpus)
    mem = c.mem_gb
    if mem is None and not exclusive and c.ram_gb and c.gpus_per_node:
        # shared: the cell's GPUs' share of the node's memory, not Slurm's default of all of it
        mem = c.ram_gb * max(placement.gpus_per_node, 1) / c.gpus_per_node
    return JobShape(partition=c.partition, account=c.account, qos=c.qos, nodes=placement.nodes,
                    gpus_per_node=placement.gpus_per_node, cpus_per_task=cpus, mem_gb=mem,
                    time_min=c.time_limit_min, constraint=c.constraint, exclusive=exclusive,
                    exclusive_why=why,
                    setup=setup, extra=slurm_extra(c.name, c.slurm_extra),
                    secret_env=tuple(sorted(k for k, v in c.env.items() if v == REDACTED)))
