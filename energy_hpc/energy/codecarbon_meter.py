"""CodeCarbon, the paper's method, with the RAM model made explicit."""

from __future__ import annotations

import logging
import os
import threading
import time

import psutil

from energy_hpc.energy.base import DeviceEnergy, Reading
from energy_hpc.errors import MeterUnavailable

log = logging.getLogger(__name__)

PAPER_RAM_W_PER_GB = 0.375


def job_memory_gb() -> tuple[float, str]:
    """Memory the job may use: Slurm's allocation, else the cgroup limit, else the machine's RAM."""
    mem_node = os.environ.get("SLURM_MEM_PER_NODE")
    if mem_node and mem_node.isdigit():
        return int(mem_node) / 1024.0, "SLURM_MEM_PER_NODE"
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(path).read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < psutil.virtual_memory().total:
            return int(raw) / 1024**3, path
    return psutil.virtual_memory().total / 1024**3, "total RAM"


class _RssSampler:
    """Mean resident set size of this process (and children) over the window, sampled without busy-waiting."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss_gb(self) -> float:
        proc = psutil.Process()
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 1024**3

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(self._rss_gb())

    def start(self) -> None:
        self.samples = [self._rss_gb()]
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.samples.append(self._rss_gb())
        return sum(self.samples) / len(self.samples)


class CodeCarbonMeter:
    """One offline CodeCarbon tracker per window (start → stop), never writing files."""

    name = "codecarbon"
    scope = "node"  # reads the whole machine
    # CodeCarbon skips the closing measurement when < 0.05 s passed since the last one, and its
    # load-based CPU model samples every second; shorter windows read near zero (seen here).
    resolution_s = 0.5

    def __init__(self, country: str = "DEU", interval_s: float = 15.0,
                 ram_model: str = "codecarbon", tracking_mode: str = "machine") -> None:
        try:
            import codecarbon  # noqa: F401
        except ImportError as exc:  # pragma: no cover - codecarbon is a core dependency
            raise MeterUnavailable(f"codecarbon: not installed ({exc}); pip install codecarbon") from None
        self.country = country
        self.interval_s = interval_s
        self.ram_model = ram_model
        self.tracking_mode = tracking_mode
        self._tracker = None
        self._rss: _RssSampler | None = None
        self._t0 = 0.0

    def start(self) -> None:
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        try:  # CodeCarbon >= 3: an empty output list writes nothing
            from codecarbon.output_methods.base_output import OutputMethod  # noqa: F401

            quiet: dict = {"output_methods": []}
        except ImportError:
            quiet = {"save_to_file": False}
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country,
            measure_power_secs=self.interval_s,
            **quiet,
            log_level="error",
            allow_multiple_runs=True,
            tracking_mode=self.tracking_mode,
            project_name="energy_hpc",
        )
        if self.ram_model == "paper_rss":
            self._rss = _RssSampler(min(self.interval_s, 1.0))
            self._rss.start()
        self._t0 = time.perf_counter()
        self._tracker.start()

    def stop(self) -> Reading:
        import codecarbon

        tracker = self._tracker
        if tracker is None:
            raise RuntimeError("CodeCarbonMeter.stop() without start()")
        tracker.stop()
        wall = time.perf_counter() - self._t0
        data = tracker.final_emissions_data
        self._tracker = None
        cpu_mode = None
        has_gpu = False
        for hw in getattr(tracker, "_hardware", []):
            if type(hw).__name__ == "CPU":
                cpu_mode = getattr(hw, "_mode", None)
            has_gpu = has_gpu or type(hw).__name__ in ("GPU", "AMDGPU")
        cpu_method = f"codecarbon-{cpu_mode}" if cpu_mode else "codecarbon"
        duration = float(data.duration) if data.duration else wall
        cpu_wh = data.cpu_energy * 1000.0
        gpu_wh = data.gpu_energy * 1000.0 if has_gpu else None  # CUDA_VISIBLE_DEVICES alone is no GPU
        info = {
            "codecarbon_version": codecarbon.__version__,
            "cpu_model": data.cpu_model,
            "gpu_model": data.gpu_model or None,
            "cpu_power_w": data.cpu_power,
            "codecarbon_ram_wh": data.ram_energy * 1000.0,
            "codecarbon_emissions_kg": data.emissions,
            "interval_s": self.interval_s,
            "tracking_mode": self.tracking_mode,
        }
        if self.ram_model == "codecarbon":
            ram_wh = data.ram_energy * 1000.0
            ram_method = f"codecarbon-{codecarbon.__version__}-ram-model"
        elif self.ram_model == "paper_job":
            gb, source = job_memory_gb()
            ram_wh = PAPER_RAM_W_PER_GB * gb * duration / 3600.0
            ram_method = "paper-0.375W/GB-job-memory"
            info.update(ram_gb=gb, ram_gb_source=source)
        else:
            assert self._rss is not None
            gb = self._rss.stop()
            ram_wh = PAPER_RAM_W_PER_GB * gb * duration / 3600.0
            ram_method = "paper-0.375W/GB-process-rss"
            info.update(ram_gb=gb, ram_gb_source="process RSS (mean over window)")
        devices = [DeviceEnergy("cpu", "cpu", cpu_wh, cpu_method, data.cpu_model)]
        if gpu_wh is not None:
            devices.append(DeviceEnergy("gpu", "gpus", gpu_wh, "codecarbon-nvml", data.gpu_model))
        devices.append(DeviceEnergy("ram", "ram", ram_wh, ram_method))
        return Reading(
            meter=self.name,
            duration_s=duration,
            cpu_wh=cpu_wh,
            gpu_wh=gpu_wh,
            ram_wh=ram_wh,
            methods={"cpu": cpu_method, "gpu": "codecarbon-nvml" if gpu_wh is not None else None,
                     "ram": ram_method},
            devices=devices,
            samples=max(1, int(duration // self.interval_s) + 1),
            info=info,
        )
