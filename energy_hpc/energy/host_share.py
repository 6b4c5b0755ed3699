"""What share of a host's busy CPU time over a window was this measurement's own — read from the
operating system, so a neighbour that is not energy_hpc (another user's compile, a service, a job
step Slurm does not show) is seen too, where the ledger sees only energy_hpc's windows.

Own CPU time: the Slurm job's cgroups on the host (``cpuacct.usage`` of cgroup v1, ``cpu.stat``'s
``usage_usec`` of v2) when the process runs in a job that has one of its own; in a job without,
its processes found by ``SLURM_JOB_ID`` in their environment; else this process and every
descendant alive at the snapshot, plus the children it has reaped (``psutil``). The run-queue
wait of the same processes (``schedstat``), less the wait their own threads make beyond the CPUs
they may use (their affinity: a job's cpuset), says whether a neighbour slowed them. Host busy
time: ``/proc/stat``'s first line, every state but idle and iowait. ``foreign_cpu_share`` =
1 − own ÷ host busy, clipped to 0–1: the share of the window's CPU work that was not this
measurement's (docs/measurement.md#isolation).

Memory, at the window's end: the job cgroup's usage (v1 ``memory.usage_in_bytes``, v2
``memory.current``) or the process tree's resident set, against the host's used memory (total −
available): ``own_mem_gb``, ``host_used_mem_gb``, ``foreign_mem_share``. Own processes (for a
GPU's process list): the process tree, and in a Slurm job every process in the job's cgroup.
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
    source: str  # "cgroup v1", "cgroup v2", "job processes (SLURM_JOB_ID)", "process tree"
    at: float
    host_cpus: int | None = None
    own_wait_s: float | None = None
    own_mem_gb: float | None = None
    host_used_mem_gb: float | None = None
    own_cpus: int | None = None  # CPUs the own processes may run on (their affinity, a job's cpuset)


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


def _host_wide(base: Path, path: str) -> list[Path]:
    """Every cgroup of this job on the host: the job's path with the components above its
    ``job_<id>`` left open — one on a site (one slurmd per host), one per slurmd where several
    share a host (the dev Slurm's ``slurm_n1``, ``slurm_n2``), so the job's work on this host is
    all its own."""
    parts = path.strip("/").split("/")
    return sorted(base.glob("/".join(["*"] * (len(parts) - 1) + [parts[-1]]))) or [base / path.strip("/")]


def job_level(path: str) -> str | None:
    """A cgroup path cut after its ``job_<id>`` part (the whole job: every step and task of it on
    this node), None when it names no job."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part.startswith("job_"):
            return "/".join(parts[: i + 1])
    return None


def _job_cgroups(proc_cgroup: Path = Path("/proc/self/cgroup")) -> list[tuple[list[str], str]]:
    """(controllers, job-level path) of each of this process's cgroups that is a Slurm job's
    (v2: no controllers); empty outside a job — the root cgroup is the whole host, not the job."""
    if not os.environ.get("SLURM_JOB_ID"):
        return []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        level = job_level(path)
        if level is not None:
            out.append((controllers.split(",") if controllers else [], level))
    return out


def _summed(folders: list[Path], read: Any) -> float | None:
    """``read(folder)`` summed over the folders that have it (None when none does)."""
    total, seen = 0.0, False
    for folder in folders:
        try:
            total += read(folder)
            seen = True
        except (OSError, ValueError):
            continue
    return total if seen else None


def _usage_usec(folder: Path) -> float:
    for entry in (folder / "cpu.stat").read_text().splitlines():
        key, value = entry.split()
        if key == "usage_usec":
            return int(value) / 1e6
    raise ValueError("cpu.stat has no usage_usec")


def _job_cgroup_s(proc_cgroup: Path = Path("/proc/self/cgroup"),
                  root: Path = _CGROUP_ROOT) -> tuple[float, str] | None:
    """CPU seconds of this job's cgroups on the host (None outside a job's own cgroup)."""
    for controllers, path in _job_cgroups(proc_cgroup):
        if "cpuacct" in controllers:
            for base in (root / "cpuacct", root / "cpu,cpuacct"):
                v1 = _summed(_host_wide(base, path),
                             lambda f: int((f / "cpuacct.usage").read_text()) / 1e9)
                if v1 is not None:
                    return v1, "cgroup v1"
        if not controllers and (v2 := _summed(_host_wide(root, path), _usage_usec)) is not None:
            return v2, "cgroup v2"
    return None


def _job_cgroup_path(controller: str | None) -> str | None:
    """This process's job-level cgroup path for a v1 controller (None: the v2 line)."""
    for controllers, path in _job_cgroups():
        if (controller is None and not controllers) or (controller in controllers):
            return path
    return None


def _job_memory_gb(root: Path = _CGROUP_ROOT) -> float | None:
    for base, path, name in ((root / "memory", _job_cgroup_path("memory"), "memory.usage_in_bytes"),
                             (root, _job_cgroup_path(None), "memory.current")):
        if path and (used := _summed(_host_wide(base, path),
                                     lambda f, n=name: int((f / n).read_text()))) is not None:
            return used / 1024**3
    return None


def _process_tree_mem_gb(tree: list[Any] | None = None) -> float | None:
    tree = _tree() if tree is None else tree
    total, seen = 0, False
    for proc in tree:
        try:
            total += proc.memory_info().rss
            seen = True
        except Exception:  # noqa: BLE001 - gone meanwhile
            continue
    return total / 1024**3 if seen else None


def _host_used_mem_gb() -> float | None:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return (vm.total - vm.available) / 1024**3
    except Exception:  # noqa: BLE001
        return None


def _scan_job(job_id: str, cgroup: str | None) -> tuple[set[int], set[int]]:
    """One pass over /proc: the processes in this job's cgroups on the host (``job_<id>`` under
    whichever slurmd's tree), and those of our uid naming its ``SLURM_JOB_ID`` in their
    environment (where the job has no cgroup, that still finds a Ray worker that is not our
    descendant)."""
    name = cgroup.rsplit("/", 1)[-1] if cgroup else None
    needle = f"SLURM_JOB_ID={job_id}".encode() + b"\0"
    uid = os.getuid()
    in_cgroup, in_env = set(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if name is not None:
                for line in (entry / "cgroup").read_text().splitlines():
                    level = job_level(line.split(":", 2)[2]) if line.count(":") >= 2 else None
                    if level is not None and level.rsplit("/", 1)[-1] == name:
                        in_cgroup.add(pid)
                        break
            if entry.stat().st_uid == uid and needle in (entry / "environ").read_bytes() + b"\0":
                in_env.add(pid)
        except OSError:
            continue
    return in_cgroup, in_env


def _job_scan() -> tuple[set[int], set[int]]:
    """:func:`_scan_job` for this process's Slurm job (nothing outside one)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return set(), set()
    return _scan_job(job, _job_cgroup_path("cpuacct") or _job_cgroup_path(None))


def own_pids() -> set[int]:
    """This measurement's processes: the process tree, and in a Slurm job every process whose
    cgroup is the job's or, where the job has none, that names the job's ``SLURM_JOB_ID`` (Ray
    workers and vLLM engines started by another step of the job: not strangers on its GPUs)."""
    in_cgroup, in_env = _job_scan()
    return {p.pid for p in _tree()} | {os.getpid()} | in_cgroup | in_env


def _cpu_s(pids: set[int]) -> float | None:
    """CPU seconds of the live processes among ``pids`` (None when none is readable)."""
    try:
        import psutil
    except ImportError:
        return None
    total, seen = 0.0, False
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
        seen = True
    return total if seen else None


def _run_queue_wait_s(pids: set[int]) -> float | None:
    """Seconds the processes' threads were runnable but waited for a CPU (``/proc/PID/task/TID/
    schedstat``, second field): what a neighbour that takes the cell's CPUs costs it in time."""
    total, seen = 0.0, False
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[1]) / 1e9
                seen = True
            except (OSError, ValueError, IndexError):
                continue
    return total if seen else None


def _allowed_cpus(pids: set[int]) -> int | None:
    """How many CPUs the processes may run on together (the union of their affinity masks: a
    Slurm job's cpuset, a ``taskset``), None when none is readable."""
    cpus: set[int] = set()
    for pid in pids:
        try:
            cpus |= os.sched_getaffinity(pid)
        except OSError:
            continue
    return len(cpus) or None


def allocated_cpu_share() -> float:
    """The share of this host's CPUs the measurement holds: a Slurm job's CPUs on the node over
    the host's, else 1 (a run outside Slurm has the machine)."""
    cpus = os.environ.get("SLURM_CPUS_ON_NODE")
    host = os.cpu_count() or 1
    if cpus and cpus.isdigit() and int(cpus) > 0:
        return min(1.0, int(cpus) / host)
    return 1.0


def _tree() -> list[Any]:
    """This process and its live descendants (one scan of /proc: psutil's children() is the
    costly part of a snapshot, so it is taken once)."""
    try:
        import psutil

        me = psutil.Process()
        return [me, *me.children(recursive=True)]
    except Exception:  # noqa: BLE001 - no psutil, no /proc: unknown, said as None
        return []


def _process_tree_s(tree: list[Any] | None = None) -> float | None:
    tree = _tree() if tree is None else tree
    if not tree:
        return None
    total = 0.0
    for i, proc in enumerate(tree):
        try:
            t = proc.cpu_times()
        except Exception:  # noqa: BLE001 - gone meanwhile: its time is its parent's children_* once reaped
            continue
        total += t.user + t.system
        if i == 0:
            total += t.children_user + t.children_system
    return total


def snapshot(memory: bool = False) -> CpuSnapshot:
    """CPU times now; with ``memory`` also the own and host memory in use (the window's end)."""
    tree = _tree()
    in_cgroup, in_env = _job_scan()  # one pass over /proc, in a Slurm job only
    job = _job_cgroup_s()
    if job is None and in_env and (env_own := _cpu_s(in_env)) is not None:
        job = (env_own, "job processes (SLURM_JOB_ID)")
    own, source = job if job is not None else (_process_tree_s(tree or None), "process tree")
    pids = {p.pid for p in tree} | in_cgroup | in_env
    wait = _run_queue_wait_s(pids)
    own_mem = host_mem = None
    if memory:
        own_mem = _job_memory_gb() if source.startswith("cgroup") else None
        own_mem = own_mem if own_mem is not None else _process_tree_mem_gb(tree or None)
        host_mem = _host_used_mem_gb()
    return CpuSnapshot(own_s=own, host_busy_s=_host_busy_s(), source=source, at=time.time(),
                       host_cpus=os.cpu_count(), own_wait_s=wait, own_mem_gb=own_mem,
                       host_used_mem_gb=host_mem, own_cpus=_allowed_cpus(pids or {os.getpid()}))


def cpu_share(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, Any]:
    """The window's own and host-busy CPU seconds and the foreign share (None where unknown)."""
    own = (after.own_s - before.own_s) if None not in (after.own_s, before.own_s) else None
    host = ((after.host_busy_s - before.host_busy_s)
            if None not in (after.host_busy_s, before.host_busy_s) else None)
    share = None
    if own is not None and host is not None:
        share = 0.0 if host <= 0 else min(1.0, max(0.0, 1.0 - own / host))
    wait = ((after.own_wait_s - before.own_wait_s)
            if None not in (after.own_wait_s, before.own_wait_s) else None)
    window = after.at - before.at
    contention = self_wait = None
    if wait is not None and own is not None and own + wait > 0:
        # the wait its own threads make beyond the CPUs they may use is theirs, neighbour or not
        # (a 1-core job whose meter thread runs beside its work): at least runnable − CPUs × window
        cpus = after.own_cpus
        self_wait = min(wait, max(0.0, own + wait - cpus * window)) if cpus and window > 0 else 0.0
        contention = min(1.0, max(0.0, (wait - self_wait) / (own + wait)))
    mem_share = None
    if after.own_mem_gb is not None and after.host_used_mem_gb:
        mem_share = min(1.0, max(0.0, 1.0 - after.own_mem_gb / after.host_used_mem_gb))
    return {"own_cpu_s": own, "host_busy_cpu_s": host, "foreign_cpu_share": share,
            "own_cpu_source": after.source, "host_cpus": after.host_cpus,
            "cpu_wait_s": wait, "cpu_self_wait_s": self_wait, "cpu_contention": contention,
            "own_cpus": after.own_cpus, "window_s": window, "own_mem_gb": after.own_mem_gb,
            "host_used_mem_gb": after.host_used_mem_gb, "foreign_mem_share": mem_share,
            "allocated_cpu_share": allocated_cpu_share()}


__all__ = ["CpuSnapshot", "allocated_cpu_share", "cpu_share", "own_pids", "snapshot"]
