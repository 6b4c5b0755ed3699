"""The meter protocol and the reading every meter returns."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

PARTS = ("cpu", "gpu", "ram")


def node_name() -> str:
    """Slurm's node name when inside a job (two slurmd on one host share a hostname)."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


@dataclass
class DeviceEnergy:
    """Energy of one device (a CPU package, a GPU, a DRAM domain) over the window."""

    part: str
    device: str
    energy_wh: float | None
    method: str
    name: str | None = None
    node: str | None = None


@dataclass
class Reading:
    """What one meter saw over one window on one node.

    A part with no sensor is ``None`` (unknown), never 0.
    """

    meter: str
    duration_s: float
    cpu_wh: float | None = None
    gpu_wh: float | None = None
    ram_wh: float | None = None
    methods: dict[str, str | None] = field(default_factory=dict)
    devices: list[DeviceEnergy] = field(default_factory=list)
    samples: int = 0
    node: str = field(default_factory=node_name)
    flags: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def energy_wh(self) -> float | None:
        parts = [p for p in (self.cpu_wh, self.gpu_wh, self.ram_wh) if p is not None]
        return sum(parts) if parts else None

    @property
    def avg_power_w(self) -> float | None:
        energy = self.energy_wh
        if energy is None or self.duration_s <= 0:
            return None
        return energy * 3600.0 / self.duration_s

    def part(self, name: str) -> float | None:
        return getattr(self, f"{name}_wh")

    def infos(self) -> list[tuple[str | None, dict[str, Any]]]:
        """This reading's info (node None) and, for a multi-node reading, each node's with its
        name: what a window noted, wherever it was noted."""
        return [(None, self.info)] + [(node.get("node"), node.get("info") or {})
                                      for node in self.info.get("node_readings") or []]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["energy_wh"] = self.energy_wh
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reading:
        data = dict(data)
        data.pop("energy_wh", None)
        data["devices"] = [DeviceEnergy(**d) for d in data.get("devices", [])]
        return cls(**data)


@runtime_checkable
class Meter(Protocol):
    """Start/stop one window; ``stop`` returns what was measured since ``start``.

    ``resolution_s``: the shortest window it resolves (windows are never shorter); ``scope``:
    ``node`` when it reads the whole machine (another job on the node is in its readings), ``job``
    when only the job's own devices. Both are class attributes, so a meter's needs are known
    without starting it (a multi-node cell's driver, the planner)."""

    name: str
    resolution_s: float
    scope: str

    def start(self) -> None: ...

    def stop(self) -> Reading: ...


def flag_implausible(reading: Reading, max_power_w: dict[str, float | None]) -> Reading:
    """Flag parts that went backwards or exceed the devices' rated power × time; never clip."""
    for part in PARTS:
        value = reading.part(part)
        if value is None:
            continue
        if value < 0:
            reading.flags.append(f"{part}_wh negative ({value:.6g} Wh): counter went backwards")
            continue
        limit = max_power_w.get(part)
        if limit and reading.duration_s > 0:
            ceiling = limit * reading.duration_s / 3600.0
            if value > ceiling * 1.05:
                reading.flags.append(
                    f"{part}_wh {value:.6g} Wh exceeds rated {limit:g} W x {reading.duration_s:.3g} s"
                )
    return reading
