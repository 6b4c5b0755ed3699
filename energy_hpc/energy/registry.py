"""Meters by name, and ``auto``: the best available source per device class."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from energy_hpc.energy.base import PARTS, DeviceEnergy, Meter, Reading
from energy_hpc.errors import MeterUnavailable
from energy_hpc.kinds import resolve

log = logging.getLogger(__name__)

EnergyConfig = Any  # energy_hpc.config.EnergyConfig (config, above this module, imports it)
MeterFactory = Callable[[EnergyConfig], Meter]
SCOPES = ("node", "job")  # what a meter reads: the whole machine, or only the job's own devices


@dataclass(frozen=True)
class MeterEntry:
    """A registered meter: how to build it from the energy config, and its class ("module:Class"
    or the class), which carries ``resolution_s`` and ``scope`` (imported only when asked)."""

    factory: MeterFactory
    meter_class: str | type

    def cls(self) -> type:
        return resolve(self.meter_class)


_REGISTRY: dict[str, MeterEntry] = {}


def register_meter(name: str, factory: MeterFactory, meter_class: str | type) -> None:
    """One registration makes a meter usable by name (``energy.meters=[name]``): its factory and
    its class, whose ``resolution_s`` and ``scope`` (the :class:`Meter` protocol) are read from
    it, never from a second table."""
    if not isinstance(meter_class, str):
        _check_class(name, meter_class)
    _REGISTRY[name] = MeterEntry(factory, meter_class)


def _check_class(name: str, cls: type) -> type:
    missing = [a for a in ("name", "resolution_s", "scope", "start", "stop") if not hasattr(cls, a)]
    if missing:
        raise TypeError(f"meter {name!r}: {cls.__name__} lacks {', '.join(missing)} "
                        "(the Meter protocol in energy_hpc/energy/base.py)")
    if cls.scope not in SCOPES:
        raise ValueError(f"meter {name!r}: scope={cls.scope!r}; use one of {', '.join(SCOPES)}")
    return cls


def meter_class(name: str) -> type:
    return _check_class(name, _REGISTRY[name].cls())


def reads_whole_node(names: list[str]) -> bool:
    """Whether any of these meters reads the whole machine (``auto`` may use CodeCarbon/RAPL)."""
    return any(name == "auto" or name not in _REGISTRY or meter_class(name).scope == "node"
               for name in names)


def available_meter_names() -> list[str]:
    return sorted(_REGISTRY)


def _codecarbon(cfg: EnergyConfig) -> Meter:
    from energy_hpc.energy.codecarbon_meter import CodeCarbonMeter

    return CodeCarbonMeter(cfg.country, cfg.interval_s, cfg.ram_model, cfg.codecarbon_tracking_mode)


def _nvml(cfg: EnergyConfig) -> Meter:
    from energy_hpc.energy.nvml import NvmlMeter

    return NvmlMeter()


def _rapl(cfg: EnergyConfig) -> Meter:
    from energy_hpc.energy.rapl import RaplMeter

    return RaplMeter(poll_s=min(cfg.interval_s, 10.0))


register_meter("codecarbon", _codecarbon, "energy_hpc.energy.codecarbon_meter:CodeCarbonMeter")
register_meter("nvml", _nvml, "energy_hpc.energy.nvml:NvmlMeter")
register_meter("rapl", _rapl, "energy_hpc.energy.rapl:RaplMeter")


AUTO_CANDIDATES = ("nvml", "rapl", "codecarbon")


class AutoMeter:
    """Runs the available meters together and takes each part from the best one.

    Preference: GPU from NVML, CPU and RAM from RAPL, anything left from CodeCarbon.
    """

    name = "auto"
    scope = "node"  # it may use CodeCarbon or RAPL
    PREFERENCE = {"gpu": ("nvml", "codecarbon"), "cpu": ("rapl", "codecarbon"),
                  "ram": ("rapl", "codecarbon")}

    def __init__(self, meters: dict[str, Meter], fallbacks: list[str]) -> None:
        self.meters = meters
        self.fallbacks = fallbacks
        self.resolution_s = max((m.resolution_s for m in meters.values()), default=0.0)

    def start(self) -> None:
        for meter in self.meters.values():
            meter.start()

    def stop(self) -> Reading:
        readings = {name: m.stop() for name, m in reversed(list(self.meters.items()))}
        info: dict[str, Any] = {"sources": sorted(readings), "fallbacks": self.fallbacks}
        checks = [c for r in readings.values() for c in r.info.get("counter_check") or []]
        if checks:  # NVML's counter check, kept where the record looks for it
            info["counter_check"] = checks
        parts: dict[str, float | None] = {}
        methods: dict[str, str | None] = {}
        devices: list[DeviceEnergy] = []
        for part in PARTS:
            parts[part], methods[part] = None, None
            for source in self.PREFERENCE[part]:
                r = readings.get(source)
                if r is not None and r.part(part) is not None:
                    parts[part], methods[part] = r.part(part), r.methods.get(part)
                    devices.extend(d for d in r.devices if d.part == part)
                    break
        return Reading(
            meter=self.name,
            duration_s=max(r.duration_s for r in readings.values()),
            cpu_wh=parts["cpu"], gpu_wh=parts["gpu"], ram_wh=parts["ram"],
            methods=methods,
            devices=devices,
            samples=max(r.samples for r in readings.values()),
            flags=[f"{n}: {f}" for n, r in readings.items() for f in r.flags],
            info=info,
        )


def meter_resolution(name: str) -> float:
    """The shortest window a named meter resolves (``auto``: the coarsest it may use)."""
    if name == "auto":
        return max((meter_resolution(n) for n in AUTO_CANDIDATES), default=0.0)
    return float(meter_class(name).resolution_s) if name in _REGISTRY else 0.0


def create_meters(cfg: EnergyConfig) -> list[Meter]:
    """Build the meters a run asked for; an unavailable named meter fails before anything runs."""
    meters: list[Meter] = []
    for name in cfg.meters:
        if name == "auto":
            found: dict[str, Meter] = {}
            fallbacks: list[str] = []
            for candidate in AUTO_CANDIDATES:
                try:
                    found[candidate] = _REGISTRY[candidate].factory(cfg)
                except MeterUnavailable as exc:
                    fallbacks.append(str(exc))
                    log.warning("auto meter: %s; falling back", exc)
            meters.append(AutoMeter(found, fallbacks))
            continue
        if name not in _REGISTRY:
            raise MeterUnavailable(f"energy.meters: unknown meter {name!r}; use one of "
                                   f"{', '.join(available_meter_names())} or auto")
        meters.append(_REGISTRY[name].factory(cfg))
    return meters
