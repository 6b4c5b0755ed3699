"""Per-GPU energy from NVML: the total-energy counter (Volta+) or, without it, integrated power samples."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from energy_hpc.energy.base import DeviceEnergy, Reading
from energy_hpc.errors import MeterUnavailable


class CounterNotSupported(Exception):
    """The GPU has no total-energy counter (pre-Volta)."""


class GpuInterface(Protocol):
    """The few NVML calls the meter needs; tests inject their own, production wraps pynvml."""

    def device_count(self) -> int: ...
    def handle(self, index: int) -> Any: ...
    def uuid(self, handle: Any) -> str: ...
    def name(self, handle: Any) -> str: ...
    def total_energy_mj(self, handle: Any) -> int: ...
    def power_mw(self, handle: Any) -> int: ...
    def power_limit_mw(self, handle: Any) -> int | None: ...
    def memory_total_mb(self, handle: Any) -> float | None: ...
    def driver_version(self) -> str | None: ...
    # optional: (pid, used memory MB or None) of each compute process on the GPU, and
    # {pid: SM utilisation %} since a time in µs where the driver samples it
    # def compute_processes(self, handle: Any) -> list[tuple[int, float | None]]: ...
    # def process_utilization(self, handle: Any, since_us: int) -> dict[int, float]: ...


class PynvmlInterface:
    """The real NVML through ``pynvml`` (nvidia-ml-py)."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise MeterUnavailable(
                "nvml: the NVML Python bindings are not installed; pip install 'energy_hpc[nvml]'"
            ) from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise MeterUnavailable(f"nvml: NVML could not start ({exc}); no NVIDIA driver here?") from None
        self.nv = pynvml

    def device_count(self) -> int:
        return self.nv.nvmlDeviceGetCount()

    def handle(self, index: int) -> Any:
        return self.nv.nvmlDeviceGetHandleByIndex(index)

    def uuid(self, handle: Any) -> str:
        return _text(self.nv.nvmlDeviceGetUUID(handle))

    def name(self, handle: Any) -> str:
        return _text(self.nv.nvmlDeviceGetName(handle))

    def total_energy_mj(self, handle: Any) -> int:
        try:
            return int(self.nv.nvmlDeviceGetTotalEnergyConsumption(handle))
        except self.nv.NVMLError_NotSupported:
            raise CounterNotSupported() from None

    def power_mw(self, handle: Any) -> int:
        return int(self.nv.nvmlDeviceGetPowerUsage(handle))

    def power_limit_mw(self, handle: Any) -> int | None:
        try:
            return int(self.nv.nvmlDeviceGetEnforcedPowerLimit(handle))
        except self.nv.NVMLError:
            return None

    def memory_total_mb(self, handle: Any) -> float | None:
        try:
            return self.nv.nvmlDeviceGetMemoryInfo(handle).total / 2**20
        except self.nv.NVMLError:
            return None

    def driver_version(self) -> str | None:
        try:
            return _text(self.nv.nvmlSystemGetDriverVersion())
        except self.nv.NVMLError:
            return None

    def compute_processes(self, handle: Any) -> list[tuple[int, float | None]]:
        procs = self.nv.nvmlDeviceGetComputeRunningProcesses(handle)
        return [(int(p.pid), p.usedGpuMemory / 2**20 if p.usedGpuMemory else None) for p in procs]

    def process_utilization(self, handle: Any, since_us: int) -> dict[int, float]:
        """Mean SM utilisation per process over the driver's samples since ``since_us`` (empty
        where the driver keeps none: older GPUs, MIG)."""
        try:
            samples = self.nv.nvmlDeviceGetProcessUtilization(handle, since_us)
        except self.nv.NVMLError:
            return {}
        per: dict[int, list[float]] = {}
        for sample in samples:
            per.setdefault(int(sample.pid), []).append(float(sample.smUtil))
        return {pid: sum(v) / len(v) for pid, v in per.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_gpu_indices(gpu: GpuInterface, visible: str | None = None) -> list[int]:
    """Map ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs, prefixes allowed) to NVML indices.

    ``visible`` stands in for the variable; ``None`` reads it from the environment (unset: all).
    """
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = gpu.device_count()
    if visible is None:
        return list(range(count))
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if not entries:
        return []
    uuids = {i: gpu.uuid(gpu.handle(i)) for i in range(count)}
    out: list[int] = []
    for entry in entries:
        if entry.isdigit():
            idx = int(entry)
            if idx >= count:
                raise MeterUnavailable(
                    f"nvml: CUDA_VISIBLE_DEVICES names GPU {idx}, but NVML sees {count} GPU(s)"
                )
            out.append(idx)
            continue
        matches = [i for i, u in uuids.items() if u == entry or u.startswith(entry)]
        if len(matches) != 1:
            raise MeterUnavailable(
                f"nvml: CUDA_VISIBLE_DEVICES entry {entry!r} matches {len(matches)} GPU(s); "
                f"known UUIDs: {', '.join(uuids.values())}"
            )
        out.append(matches[0])
    return out


@dataclass
class _Gpu:
    index: int
    handle: Any
    name: str
    uuid: str
    has_counter: bool
    power_limit_w: float | None


COUNTER_CHECK_TOLERANCE = 0.10  # counter vs power sampling past this: flagged


class NvmlMeter:
    """Energy of the GPUs this job owns only.

    A GPU with the energy counter is read from it; the first window on each such GPU in this
    process (once per job: a packed job is one process) also samples its power, so the record
    shows on the same window whether the counter and the sampled power agree
    (``info["counter_check"]``, flagged past 10%)."""

    name = "nvml"
    scope = "job"  # only the GPUs in CUDA_VISIBLE_DEVICES (Slurm sets the job's)
    resolution_s = 0.1  # the energy counter and power readings refresh every few tens of ms
    checked_uuids: set[str] = set()  # GPUs whose counter this process has checked

    def __init__(self, interface: GpuInterface | None = None, sample_s: float = 0.1,
                 visible: str | None = None, counter_check: bool = True) -> None:
        self.gpu = interface if interface is not None else PynvmlInterface()
        self.sample_s = sample_s
        self.counter_check = counter_check
        self._checking: list[_Gpu] = []
        self.gpus: list[_Gpu] = []
        for idx in visible_gpu_indices(self.gpu, visible):
            h = self.gpu.handle(idx)
            try:
                self.gpu.total_energy_mj(h)
                has_counter = True
            except CounterNotSupported:
                has_counter = False
            limit = self.gpu.power_limit_mw(h)
            self.gpus.append(_Gpu(idx, h, self.gpu.name(h), self.gpu.uuid(h), has_counter,
                                  limit / 1000.0 if limit else None))
        if not self.gpus:
            raise MeterUnavailable("nvml: this job owns no GPU (CUDA_VISIBLE_DEVICES is empty or NVML sees none)")
        self.driver = self.gpu.driver_version()
        self._start_mj: dict[int, int] = {}
        self._energy_j: dict[int, float] = {}
        self._last_sample: dict[int, tuple[float, float]] = {}
        self._samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._seen: dict[tuple[int, int], float | None] = {}
        self._wall0 = 0.0

    def _note_processes(self) -> None:
        """Remember every compute process on the job's GPUs (read at start and stop)."""
        lister = getattr(self.gpu, "compute_processes", None)
        if lister is None:
            return
        for g in self.gpus:
            try:
                for pid, used_mb in lister(g.handle):
                    self._seen[(g.index, pid)] = used_mb
            except Exception:  # noqa: BLE001 - a driver without the call: nothing seen
                continue

    def foreign_processes(self) -> list[dict[str, Any]]:
        """The processes seen on the job's GPUs during the window that are not the job's, with
        their SM utilisation over the window where the driver samples it."""
        from energy_hpc.energy.host_share import own_pids

        mine = own_pids()
        strangers = [{"gpu": gpu, "pid": pid, "used_mb": used} for (gpu, pid), used in
                     sorted(self._seen.items()) if pid not in mine]
        utilization = getattr(self.gpu, "process_utilization", None)
        if strangers and utilization is not None:
            since = int(self._wall0 * 1e6)
            handles = {g.index: g.handle for g in self.gpus}
            per_gpu = {gpu: utilization(handles[gpu], since) for gpu in {s["gpu"] for s in strangers}}
            for s in strangers:
                s["sm_util_pct"] = per_gpu[s["gpu"]].get(s["pid"])
        return strangers

    @property
    def rated_power_w(self) -> float | None:
        limits = [g.power_limit_w for g in self.gpus]
        return sum(limits) if all(limits) else None

    def _sampled(self) -> list[_Gpu]:
        """The GPUs whose power is sampled in this window: those without the counter, and those
        being checked against it."""
        return [g for g in self.gpus if not g.has_counter or g in self._checking]

    def _sample_power(self) -> None:
        now = time.perf_counter()
        for g in self._sampled():
            watts = self.gpu.power_mw(g.handle) / 1000.0
            t_prev, w_prev = self._last_sample[g.index]
            self._energy_j[g.index] += (w_prev + watts) / 2.0 * (now - t_prev)  # trapezoid
            self._last_sample[g.index] = (now, watts)
        self._samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.sample_s):
            self._sample_power()

    def start(self) -> None:
        self._checking = [g for g in self.gpus if self.counter_check and g.has_counter
                          and g.uuid not in NvmlMeter.checked_uuids]
        self._t0 = time.perf_counter()
        self._samples = 1
        for g in self.gpus:
            self._energy_j[g.index] = 0.0
            if g.has_counter:
                self._start_mj[g.index] = self.gpu.total_energy_mj(g.handle)
        for g in self._sampled():
            self._last_sample[g.index] = (self._t0, self.gpu.power_mw(g.handle) / 1000.0)
        self._seen = {}
        self._wall0 = time.time()
        self._note_processes()
        self._stop.clear()
        if self._sampled():
            self._thread = threading.Thread(target=self._loop, name="nvml-power", daemon=True)
            self._thread.start()

    def stop(self) -> Reading:
        duration = time.perf_counter() - self._t0
        flags: list[str] = []
        devices: list[DeviceEnergy] = []
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._sample_power()
        methods = set()
        checks: list[dict[str, Any]] = []
        for g in self.gpus:
            if g.has_counter:
                delta_mj = self.gpu.total_energy_mj(g.handle) - self._start_mj[g.index]
                if delta_mj < 0:
                    flags.append(f"gpu{g.index} energy counter went backwards ({delta_mj} mJ)")
                energy_wh = delta_mj / 3.6e6
                method = "nvml-counter"
                if g in self._checking:
                    checks.append(self._check(g, energy_wh, duration, flags))
            else:
                energy_wh = self._energy_j[g.index] / 3600.0
                method = f"nvml-power-sampling@{self.sample_s:g}s"
            methods.add(method)
            devices.append(DeviceEnergy("gpu", f"gpu{g.index}", energy_wh, method, g.name))
        self._checking = []
        self._note_processes()
        strangers = self.foreign_processes()
        for gpu in sorted({s["gpu"] for s in strangers}):
            pids = ", ".join(str(s["pid"]) + (f" ({s['sm_util_pct']:.0f}% SM)" if s.get("sm_util_pct")
                                              is not None else "")
                             for s in strangers if s["gpu"] == gpu)
            flags.append(f"gpu_shared_with_stranger: gpu{gpu} ran process(es) {pids} that are "
                         "not this job's; its energy includes theirs")
        return Reading(
            meter=self.name,
            duration_s=duration,
            gpu_wh=sum(d.energy_wh for d in devices),
            methods={"cpu": None, "gpu": "+".join(sorted(methods)), "ram": None},
            devices=devices,
            samples=self._samples,
            flags=flags,
            info={
                **({"counter_check": checks} if checks else {}),
                "foreign_gpu_processes": strangers,
                "driver": self.driver,
                "gpus": [{"index": g.index, "name": g.name, "uuid": g.uuid,
                          "power_limit_w": g.power_limit_w} for g in self.gpus],
            },
        )

    def _check(self, g: _Gpu, counter_wh: float, window_s: float, flags: list[str]) -> dict[str, Any]:
        """The counter against the power sampled on the same window, once per GPU and process."""
        NvmlMeter.checked_uuids.add(g.uuid)
        sampled_wh = self._energy_j[g.index] / 3600.0
        ratio = counter_wh / sampled_wh if sampled_wh > 0 else None
        check = {"gpu": g.index, "uuid": g.uuid, "counter_wh": counter_wh,
                 "sampled_wh": sampled_wh, "sample_s": self.sample_s, "window_s": window_s,
                 "ratio": ratio,
                 "disagree": ratio is not None and abs(ratio - 1) > COUNTER_CHECK_TOLERANCE}
        if check["disagree"]:
            flags.append(f"gpu{g.index}: energy counter {counter_wh:.4g} Wh vs power sampled every "
                         f"{self.sample_s:g}s {sampled_wh:.4g} Wh on the same {window_s:.1f}s "
                         f"window ({ratio:.2f}x; docs/measurement.md#meters-against-each-other)")
        return check
