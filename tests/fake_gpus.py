"""An NVML stand-in (this machine has no NVIDIA driver): drives the real NVML meter and GPU detection."""

from __future__ import annotations

from energy_hpc.energy.nvml import CounterNotSupported


class FakeGpus:
    """Devices with an energy counter (mJ) and power (mW) that tests advance by hand."""

    def __init__(self, n=4, counter=True, power_mw=200_000):
        """n devices; counter=False models pre-Volta GPUs (power sampling only)."""
        self.counter = counter
        self.energy = [10_000 * (i + 1) for i in range(n)]
        self.power = [power_mw] * n
        self.n = n
        self.processes = {i: [] for i in range(n)}  # gpu -> [(pid, used MB)], as NVML lists them
        self.utilization = {i: {} for i in range(n)}  # gpu -> {pid: SM %} the driver sampled

    def device_count(self):
        return self.n

    def handle(self, index):
        return index

    def uuid(self, h):
        return f"GPU-{h:04d}-aaaa"

    def name(self, h):
        return "NVIDIA H100"

    def total_energy_mj(self, h):
        if not self.counter:
            raise CounterNotSupported()
        return self.energy[h]

    def power_mw(self, h):
        return self.power[h]

    def power_limit_mw(self, h):
        return 700_000

    def memory_total_mb(self, h):
        return 81_559.0  # what NVML reports for an H100 80GB HBM3

    def driver_version(self):
        return "550.54"

    def compute_processes(self, h):
        return list(self.processes[h])

    def process_utilization(self, h, since_us):
        return dict(self.utilization[h])
