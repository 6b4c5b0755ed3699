"""Combine one reading per node into the cell's reading: energy summed, duration the maximum."""

from __future__ import annotations

from collections.abc import Sequence

from energy_hpc.energy.base import PARTS, Reading


def _sum_part(readings: Sequence[Reading], part: str, flags: list[str]) -> float | None:
    values = [(r.node, r.part(part)) for r in readings]
    known = [v for _, v in values if v is not None]
    if not known:
        return None
    missing = [node for node, v in values if v is None]
    if missing:
        flags.append(f"{part}_wh unknown on node(s) {', '.join(missing)}; sum covers the others")
    return float(sum(known))


def aggregate_nodes(readings: Sequence[Reading]) -> Reading:
    """The paper's rule for multi-node cells: sum energy over nodes, take the longest duration."""
    if not readings:
        raise ValueError("aggregate_nodes needs at least one reading")
    if len(readings) == 1:
        return readings[0]
    meters = {r.meter for r in readings}
    if len(meters) != 1:
        raise ValueError(f"cannot combine readings of different meters: {sorted(meters)}")
    flags: list[str] = []
    for r in readings:
        flags.extend(f"{r.node}: {f}" for f in r.flags)
    methods: dict[str, str | None] = {}
    for part in PARTS:
        seen = sorted({m for r in readings if (m := r.methods.get(part))})
        methods[part] = "+".join(seen) if seen else None
    parts = {f"{p}_wh": _sum_part(readings, p, flags) for p in PARTS}
    return Reading(
        meter=readings[0].meter,
        duration_s=max(r.duration_s for r in readings),
        methods=methods,
        devices=[d for r in readings for d in r.devices],
        samples=sum(r.samples for r in readings),
        node="+".join(r.node for r in readings),
        flags=flags,
        info={"nodes": [r.node for r in readings]},
        **parts,
    )
