"""What share of a host's busy CPU time over a window was this measurement's own — read from the
operating system, so a neighbour that is not energy_hpc (another user's compile, a service, a job
step Slurm does not show) is seen too, where the ledger sees only energy_hpc's windows.

Own CPU time: the Slurm job's cgroup (``cpuacct.usage`` of cgroup v1, ``cpu.stat``'s
``usage_usec`` of v2) when the process runs in a job that has one of its own; else this process and
every descendant alive at the snapshot, plus the children it has reaped (``psutil``). Host busy
time: ``/proc/stat``'s first line, every state but idle and iowait. ``foreign_cpu_share`` =
1 − own ÷ host busy, clipped to 0–1: the share of the window's CPU work that was not this
measurement's (docs/measurement.md#isolation).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CpuSnapshot:
    own_s: float | None
    host_busy_s: float | None
    source: str  # where own_s came from: "cgroup v1", "cgroup v2", "process tree"
    at: float


def _host_busy_s(stat: Path = Path("/proc/stat")) -> float | None:
    """Busy CPU seconds of the whole host since boot: user nice system irq softirq steal."""
    try:
        first = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:]]
    busy = sum(ticks[:3]) + sum(ticks[5:8])  # user nice system | idle iowait | irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _job_cgroup_s(proc_cgroup: Path = Path("/proc/self/cgroup"),
                  root: Path = _CGROUP_ROOT) -> tuple[float, str] | None:
    """CPU seconds of this process's cgroup, when it is a Slurm job's own (its path names the
    job); None outside one (the root cgroup is the whole host, not the job)."""
    if not os.environ.get("SLURM_JOB_ID"):
        return None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "job_" not in path:
            continue
        if "cpuacct" in controllers.split(","):
            for folder in (root / "cpuacct" / path.lstrip("/"),
                           root / "cpu,cpuacct" / path.lstrip("/")):
                try:
                    return int((folder / "cpuacct.usage").read_text()) / 1e9, "cgroup v1"
                except (OSError, ValueError):
                    continue
        if controllers == "":
            try:
                for entry in (root / path.lstrip("/") / "cpu.stat").read_text().splitlines():
                    key, value = entry.split()
                    if key == "usage_usec":
                        return int(value) / 1e6, "cgroup v2"
            except (OSError, ValueError):
                continue
    return None


def _process_tree_s() -> float | None:
    try:
        import psutil

        me = psutil.Process()
        times = me.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in me.children(recursive=True):
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue  # gone meanwhile: its time is its parent's children_* once reaped
        return total
    except Exception:  # noqa: BLE001 - no psutil, no /proc: the share is unknown, said as None
        return None


def snapshot() -> CpuSnapshot:
    job = _job_cgroup_s()
    own, source = job if job is not None else (_process_tree_s(), "process tree")
    return CpuSnapshot(own_s=own, host_busy_s=_host_busy_s(), source=source, at=time.time())


def cpu_share(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, Any]:
    """The window's own and host-busy CPU seconds and the foreign share (None where unknown)."""
    own = (after.own_s - before.own_s) if None not in (after.own_s, before.own_s) else None
    host = ((after.host_busy_s - before.host_busy_s)
            if None not in (after.host_busy_s, before.host_busy_s) else None)
    share = None
    if own is not None and host is not None:
        share = 0.0 if host <= 0 else min(1.0, max(0.0, 1.0 - own / host))
    return {"own_cpu_s": own, "host_busy_cpu_s": host, "foreign_cpu_share": share,
            "own_cpu_source": after.source}


__all__ = ["CpuSnapshot", "cpu_share", "snapshot"]
