"""Energy meters behind one protocol, the measured window, and aggregation across nodes."""

from __future__ import annotations

from energy_hpc.energy.aggregate import aggregate_nodes
from energy_hpc.energy.base import DeviceEnergy, Meter, Reading
from energy_hpc.energy.registry import available_meter_names, create_meters
from energy_hpc.energy.window import WindowResult, measure_window

__all__ = [
    "DeviceEnergy",
    "Meter",
    "Reading",
    "WindowResult",
    "aggregate_nodes",
    "available_meter_names",
    "create_meters",
    "measure_window",
]
