"""CPU package and DRAM energy from Linux powercap (RAPL) counters; Intel and AMD expose the same files."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from energy_hpc.energy.base import DeviceEnergy, Reading
from energy_hpc.errors import MeterUnavailable

POWERCAP_ROOT = Path("/sys/class/powercap")


@dataclass
class RaplZone:
    path: Path
    name: str
    part: str
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def discover_zones(root: Path = POWERCAP_ROOT) -> list[RaplZone]:
    """Package zones (``intel-rapl:N``) count as CPU, their ``dram`` subzones as RAM.

    Core/uncore subzones are part of the package and are skipped so nothing is counted twice.
    """
    root = Path(root)
    if not root.is_dir():
        raise MeterUnavailable(f"rapl: {root} does not exist (no powercap interface on this kernel)")
    zones: list[RaplZone] = []
    for path in sorted(root.glob("*rapl:*")):
        if not (path / "energy_uj").exists():
            continue
        name = (path / "name").read_text().strip() if (path / "name").exists() else path.name
        depth = path.name.count(":")
        if depth == 1 and name.startswith("package"):
            part = "cpu"
        elif name == "dram":
            part = "ram"
        else:
            continue
        try:
            max_range = int((path / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            max_range = 0
        zones.append(RaplZone(path, f"{name}@{path.name}", part, max_range))
    if not zones:
        raise MeterUnavailable(f"rapl: no RAPL package zones under {root}")
    for zone in zones:
        try:
            zone.read_uj()
        except PermissionError:
            raise MeterUnavailable(
                f"rapl: {zone.path / 'energy_uj'} is readable by root only; ask an admin to "
                "grant read access (e.g. a udev rule or the msr-safe/powercap group) or use "
                "energy.meters=[codecarbon]"
            ) from None
        except (OSError, ValueError) as exc:
            raise MeterUnavailable(f"rapl: cannot read {zone.path / 'energy_uj'}: {exc}") from None
    return zones


class RaplMeter:
    """Counter deltas over the window; a background poll catches every wraparound on long windows."""

    name = "rapl"
    resolution_s = 0.0  # µJ counters read at the window's edges
    scope = "node"  # reads the whole machine

    def __init__(self, root: Path | str = POWERCAP_ROOT, poll_s: float = 10.0) -> None:
        self.zones = discover_zones(Path(root))
        self.poll_s = poll_s
        self._last: list[int] = []
        self._acc: list[int] = []
        self._wraps: list[int] = []
        self._samples = 0
        self._poll_errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def _poll(self, final: bool = False) -> None:
        """Fold each zone's advance since the last read into its total.

        A zone that cannot be read in a background poll keeps its last value and is read again
        next time (the delta then spans both intervals); only a missed wraparound would be lost,
        so failed polls are counted and flagged. The closing read retries and must succeed.
        """
        with self._lock:
            for i, zone in enumerate(self.zones):
                try:
                    now = self._read(zone, attempts=5 if final else 1)
                except (OSError, ValueError) as exc:
                    if final:
                        raise MeterUnavailable(
                            f"rapl: cannot read {zone.path / 'energy_uj'} at the end of the window: {exc}"
                        ) from exc
                    self._poll_errors += 1
                    continue
                delta = now - self._last[i]
                if delta < 0:
                    if zone.max_range_uj > 0:
                        delta += zone.max_range_uj
                        self._wraps[i] += 1
                    # without max_energy_range_uj a backwards step stays negative and is flagged
                self._acc[i] += delta
                self._last[i] = now
            self._samples += 1

    @staticmethod
    def _read(zone: RaplZone, attempts: int) -> int:
        for attempt in range(attempts):
            try:
                return zone.read_uj()
            except (OSError, ValueError):
                if attempt == attempts - 1:
                    raise
                time.sleep(0.002)
        raise AssertionError("unreachable")

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._poll()

    def start(self) -> None:
        self._last = [z.read_uj() for z in self.zones]
        self._acc = [0] * len(self.zones)
        self._wraps = [0] * len(self.zones)
        self._samples = 1
        self._poll_errors = 0
        self._stop.clear()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, name="rapl-poll", daemon=True)
        self._thread.start()

    def stop(self) -> Reading:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._poll(final=True)
        duration = time.perf_counter() - self._t0
        devices = [
            DeviceEnergy(z.part, z.name, acc / 3.6e9, "rapl" if z.part == "cpu" else "rapl-dram")
            for z, acc in zip(self.zones, self._acc, strict=True)
        ]
        totals: dict[str, float | None] = {"cpu": None, "ram": None}
        for d in devices:
            totals[d.part] = (totals[d.part] or 0.0) + d.energy_wh
        return Reading(
            meter=self.name,
            duration_s=duration,
            cpu_wh=totals["cpu"],
            ram_wh=totals["ram"],
            methods={"cpu": "rapl", "gpu": None, "ram": "rapl-dram" if totals["ram"] is not None else None},
            devices=devices,
            samples=self._samples,
            flags=[f"rapl: {self._poll_errors} background read(s) failed; a wraparound in those "
                   "intervals would be missed"] if self._poll_errors else [],
            info={"wraparounds": sum(self._wraps), "poll_errors": self._poll_errors},
        )
