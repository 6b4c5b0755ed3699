"""Emissions from energy and a country's grid carbon intensity (CodeCarbon's published energy mix)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from energy_hpc.errors import ConfigError


@lru_cache(maxsize=1)
def _energy_mix() -> dict[str, dict]:
    path = resources.files("codecarbon") / "data" / "private_infra" / "global_energy_mix.json"
    return json.loads(path.read_text())


def check_country(code: str) -> None:
    if code not in _energy_mix():
        codes = sorted(_energy_mix())
        raise ConfigError(
            f"energy.country={code!r} is not a known ISO 3166-1 alpha-3 code; "
            f"e.g. DEU, FRA, USA ({len(codes)} known, from CodeCarbon's energy mix data)"
        )


def carbon_intensity_g_per_kwh(code: str) -> float:
    check_country(code)
    return float(_energy_mix()[code]["carbon_intensity"])


def emissions_kg(energy_wh: float | None, country: str) -> float | None:
    if energy_wh is None:
        return None
    return energy_wh / 1000.0 * carbon_intensity_g_per_kwh(country) / 1000.0
