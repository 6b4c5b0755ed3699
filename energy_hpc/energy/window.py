"""The measured window: warm-up outside, repeated passes inside until the window is long enough."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from energy_hpc.energy.base import PARTS, Meter, Reading
from energy_hpc.energy.host_share import cpu_share, snapshot
from energy_hpc.energy.ledger import host_ledger, note_overlaps

log = logging.getLogger(__name__)


def cuda_synchronize() -> None:
    """Wait for queued GPU work so it lands inside the window it belongs to (no-op without CUDA)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
    except Exception:  # noqa: BLE001 - a broken CUDA must not hide the measurement
        log.debug("cuda synchronize failed", exc_info=True)


@dataclass
class WindowResult:
    readings: list[Reading]
    passes: int
    wall_s: float
    output: Any


def measure_window(meters: Sequence[Meter], work: Callable[[], Any], *, min_window_s: float = 0.0,
                   min_passes: int = 1, max_passes: int | None = None,
                   ledger_label: str | None = None) -> WindowResult:
    """Run ``work`` repeatedly between meter start and stop.

    Inference on a small test set can take milliseconds, below any meter's resolution, so the
    work is repeated until ``min_window_s`` has passed; callers divide by ``passes``. The window is
    never shorter than the coarsest meter's ``resolution_s``; a window that still ends shorter
    (``max_passes`` reached) is flagged in every reading. With ``ledger_label`` (the cell id) the
    window is entered in this host's ledger; one that overlapped another measured window is
    flagged ``overlapping_window`` and names it (``info["overlapped_with"]``).
    """
    resolution = max((m.resolution_s for m in meters), default=0.0)
    min_window_s = max(min_window_s, resolution)
    cuda_synchronize()
    ledger = host_ledger() if ledger_label is not None else None
    entry = ledger.open(ledger_label) if ledger is not None and ledger_label is not None else None
    try:
        for meter in meters:
            meter.start()
    except BaseException:
        if ledger is not None:
            ledger.close(entry)
        raise
    cpu_before = snapshot()
    t0 = time.perf_counter()
    passes = 0
    output = None
    try:
        while True:
            output = work()
            passes += 1
            if passes >= min_passes and time.perf_counter() - t0 >= min_window_s:
                break
            if max_passes is not None and passes >= max_passes:
                break
        cuda_synchronize()
        wall = time.perf_counter() - t0
    finally:
        cpu = cpu_share(cpu_before, snapshot(memory=True))
        try:
            readings = [meter.stop() for meter in reversed(meters)][::-1]
        finally:  # a meter that fails to stop must not leave the window open in the ledger
            overlapped = ledger.close(entry) if ledger is not None else []
    note_overlaps(readings, overlapped)
    note_cpu_share(readings, cpu)
    for meter, reading in zip(meters, readings, strict=True):
        needed = meter.resolution_s
        if reading.duration_s < needed:
            reading.flags.append(f"window {reading.duration_s:.3g} s is shorter than {meter.name}'s "
                                 f"resolution ({needed:g} s); its energy is unreliable")
    return WindowResult(readings=readings, passes=passes, wall_s=wall, output=output)


def measure_idle(meters: Sequence[Meter], seconds: float,
                 ledger_label: str | None = None) -> list[Reading]:
    """Idle power over ``seconds`` with the process asleep (no busy-waiting); entered in the
    host's ledger and flagged like any window (another run's work is no idle baseline)."""
    ledger = host_ledger() if ledger_label is not None else None
    entry = ledger.open(ledger_label) if ledger is not None and ledger_label is not None else None
    overlapped: list[str] = []
    try:
        for meter in meters:
            meter.start()
        cpu_before = snapshot()
        threading.Event().wait(seconds)
        cpu = cpu_share(cpu_before, snapshot(memory=True))
        readings = [meter.stop() for meter in reversed(meters)][::-1]
    finally:
        overlapped = ledger.close(entry) if ledger is not None else []
    note_overlaps(readings, overlapped)
    note_cpu_share(readings, cpu)
    return readings


def note_cpu_share(readings: list[Reading], cpu: dict[str, Any]) -> None:
    """Every reading of a window keeps whose CPU work the host did meanwhile (host_share.py)."""
    for reading in readings:
        reading.info["cpu_share"] = dict(cpu)


def net_of_idle(gross: Reading, idle: Reading) -> dict[str, float | None]:
    """Subtract idle power × window length from each part; unknown stays unknown."""
    out: dict[str, float | None] = {}
    for part in PARTS:
        g, i = gross.part(part), idle.part(part)
        if g is None or i is None or idle.duration_s <= 0:
            out[part] = None
        else:
            out[part] = g - i / idle.duration_s * gross.duration_s
    known = [v for v in out.values() if v is not None]
    out["total"] = sum(known) if known else None
    return out
