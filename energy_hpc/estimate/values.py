"""What an estimate is: ranges (low, high) and the guesses a model kind makes, nothing about how
they are made, so a :class:`~energy_hpc.cell.Cell` can carry one (``cost.py`` and the kinds'
estimators, above the Cell, make them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Span = tuple[float, float]


@dataclass(frozen=True)
class PassGuess:
    """A kind's estimate of one pass over the test set, before anything is measured."""

    pass_s: Span
    basis: str
    load_s: float = 0.0  # loading weights or an engine, once per cell (outside every window)


@dataclass(frozen=True)
class FitGuess:
    """A kind's estimate of one split's fit (0 s for a model that trains nothing)."""

    seconds: Span
    basis: str


@dataclass(frozen=True)
class Estimate:
    """Ranges (low, high) for one cell; ``basis`` names the source or why there is none."""

    basis: str
    pass_s: Span | None = None  # one pass over the test set
    pass_wh: Span | None = None
    wall_s: Span | None = None  # the whole cell inside its job
    energy_wh: Span | None = None  # every measured window of the cell (fits and passes)
    fit_s: Span | None = None  # one split's fit (None: not estimated)
    fit_wh: Span | None = None
    nodes: int = 1
    gpus: int = 0
    # GPUs the job holds and the site bills (an --exclusive job: every GPU of its nodes)
    billed_gpus: int | None = None
    pue: float | None = None
    carbon_g_per_kwh: float | None = None

    @property
    def available(self) -> bool:
        return self.wall_s is not None

    def hours(self, per: int) -> Span | None:
        return None if self.wall_s is None else (self.wall_s[0] * per / 3600, self.wall_s[1] * per / 3600)

    def kwh(self, with_pue: bool = False) -> Span | None:
        if self.energy_wh is None or (with_pue and not self.pue):
            return None
        factor = (self.pue if with_pue else 1.0) / 1000
        return (self.energy_wh[0] * factor, self.energy_wh[1] * factor)

    def co2_kg(self) -> Span | None:
        if self.energy_wh is None or self.carbon_g_per_kwh is None:
            return None
        factor = (self.pue or 1.0) * self.carbon_g_per_kwh / 1e6
        return (self.energy_wh[0] * factor, self.energy_wh[1] * factor)

    def describe(self) -> str:
        if not self.available:
            return f"estimate: none ({self.basis})"
        parts = [f"{_span(self.wall_s, 60, 'min')} wall",
                 f"{_span(self.hours(self.nodes), 1, 'node-h')}"]
        if self.fit_s is not None and self.fit_s[1] > 0:
            fit_wh = f", {_span(self.fit_wh, 1, 'Wh')}" if self.fit_wh is not None else ""
            parts.append(f"fit {_span(self.fit_s, 1, 's')}{fit_wh} per split")
        if self.gpus:
            parts.append(f"{_span(self.hours(self.gpus), 1, 'GPU-h')}")
        if self.billed_gpus and self.billed_gpus > self.gpus:
            parts.append(f"{_span(self.hours(self.billed_gpus), 1, 'GPU-h')} billed (the job "
                         f"holds {self.billed_gpus} GPU(s) --exclusive for its {self.gpus})")
        if self.energy_wh is None:
            parts.append("energy unknown (the cluster file states no power: gpu_power_w, "
                         "cpu_power_w, ram_gb)")
            return f"estimate: {', '.join(parts)} [{self.basis}]"
        parts.append(f"{_span(self.kwh(), 1, 'kWh')}" + (
            f" ({_span(self.kwh(with_pue=True), 1, 'kWh')} with PUE {self.pue:g})"
            if self.pue else " (PUE not stated)"))
        co2 = self.co2_kg()
        if co2 is not None:
            parts.append(f"{_span((co2[0] * 1000, co2[1] * 1000), 1, 'g CO2')}")
        return f"estimate: {', '.join(parts)} [{self.basis}]"


def _span(pair: Span | None, unit: float, name: str) -> str:
    if pair is None:
        return "?"
    lo, hi = pair[0] / unit, pair[1] / unit
    return f"{lo:.3g}–{hi:.3g} {name}" if not math.isclose(lo, hi, rel_tol=0.005) else f"{lo:.3g} {name}"


def midpoint(pair: Span | None) -> float | None:
    """The point an estimated range stands for: its geometric middle (ranges span factors)."""
    if pair is None:
        return None
    return math.sqrt(pair[0] * pair[1]) if pair[0] > 0 and pair[1] > 0 else (pair[0] + pair[1]) / 2


