"""What GPUs ``cluster=local`` has: asked of NVML on this machine, so a GPU workstation needs no edits.

A Slurm cluster's facts come from its file (the login node is not the compute node); only the
machine a local cell runs on can answer for itself. The entry points (the CLI task and the
launcher, through :func:`energy_hpc.cell.make_cell`) apply :func:`with_detected_gpus` to the validated settings, so ``config`` stays free of
hardware and both compute the same cell id.
"""

from __future__ import annotations

import dataclasses
import logging

from energy_hpc.config import ClusterConfig, Settings
from energy_hpc.energy.nvml import GpuInterface, PynvmlInterface, visible_gpu_indices
from energy_hpc.errors import MeterUnavailable

log = logging.getLogger("energy_hpc.cluster")


def detect_local_gpus(cluster: ClusterConfig, interface: GpuInterface | None = None,
                      visible: str | None = None) -> ClusterConfig:
    """Fill GPU facts the cluster file leaves open from the GPUs this process may use.

    Only for a ``kind: local`` cluster with ``detect_gpus: true`` and no ``gpus_per_node`` of its
    own; every fact given explicitly wins. Without NVML (no driver, no ``nvml`` extra) the
    cluster stays CPU-only, and the log says why.
    """
    if cluster.kind != "local" or not cluster.detect_gpus or cluster.gpus_per_node:
        return cluster
    try:
        gpu = interface if interface is not None else PynvmlInterface()
        indices = visible_gpu_indices(gpu, visible)
    except MeterUnavailable as exc:
        log.debug("cluster %s: no GPUs detected (%s)", cluster.name, exc)
        return cluster
    if not indices:
        return cluster
    handles = [gpu.handle(i) for i in indices]
    names = sorted({gpu.name(h) for h in handles})
    if len(names) > 1:
        log.warning("cluster %s: GPUs of different models (%s); placement assumes the smallest memory",
                    cluster.name, ", ".join(names))
    memories = [m for m in (gpu.memory_total_mb(h) for h in handles) if m]
    limits = [p for p in (gpu.power_limit_mw(h) for h in handles) if p]
    detected = {
        "gpus_per_node": len(indices),
        "gpu_model": " + ".join(names),
        "gpu_memory_gb": round(min(memories) / 1024, 1) if memories else None,
        "gpu_power_w": max(limits) / 1000 if limits else None,
    }
    updates = {k: v for k, v in detected.items() if getattr(cluster, k) in (None, 0)}
    log.info("cluster %s: detected %d GPU(s) %s via NVML (%s)", cluster.name, len(indices),
             detected["gpu_model"], ", ".join(f"{k}={v}" for k, v in updates.items()))
    return dataclasses.replace(cluster, **updates)


def with_detected_gpus(settings: Settings) -> Settings:
    cluster = detect_local_gpus(settings.cluster)
    return settings if cluster is settings.cluster else dataclasses.replace(settings, cluster=cluster)
