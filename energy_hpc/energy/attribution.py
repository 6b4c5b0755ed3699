"""The cell's own part of what a whole-host meter read, when the host ran other work meanwhile.

A meter that reads the whole node (RAPL package and DRAM, CodeCarbon in machine mode) counts a
neighbour's work too. Each window records whose CPU work the host did (host_share.py); from that,
each part of a reading gets an attributed value and the method that made it:

- ``none needed (alone)``: the foreign CPU share is at most ``ALONE_SHARE`` (the host's own
  housekeeping), or the foreign CPU time is within two clock ticks per CPU (what /proc/stat
  cannot tell from nothing in a window of a few ticks); the whole-host number is the cell's.
- a counted part (RAPL, CodeCarbon reading RAPL): power taken as linear in the host's busy cores,
  fitted through the idle baseline and the window (so a baseline a neighbour was busy in still
  gives the true floor); the floor by the share of the host's CPUs the job holds, the rest by the
  cell's own busy cores. Assumes every busy core draws about the same power above idle — wrong for
  a neighbour running AVX-512 beside a light cell. Without an idle baseline (or with the same
  load in both) the baseline's power is the floor and the rest is split by own CPU time; without
  any, the whole part is split by CPU time, idle included.
- CodeCarbon's load model (machine mode: TDP × (0.1 + 0.9 · load³) over the whole host): not
  linear in load, so a share of it is wrong (half of a doubled load is about 2.4× the cell alone).
  The cell's part is the same model at its own load: × (0.1·a + 0.9·L_own³) ÷ (0.1 + 0.9·L_host³),
  ``a`` the share of CPUs held, L the busy CPU seconds over window × host CPUs.
- CodeCarbon's constant model (TDP × 0.5): by the share of CPUs held.
- RAM modelled from the memory size (CodeCarbon, the paper's 0.375 W/GB of the job's memory or
  the process RSS): a neighbour does not change it; taken whole.
- GPU energy is read per device (NVML; CodeCarbon through NVML): the job's GPUs are its own —
  unless a process that is not the job's ran on one (``foreign_gpu_processes``): then the GPU part
  cannot be attributed and the split's energy is left out (docs/measurement.md#isolation).

A share above ``max_foreign_share`` (energy config) is not attributed either: the cell's own work
is then a small remainder of what was read, and the error of the assumptions above dominates it.
Nor is a window in which the cell's threads waited for a CPU more than ``MAX_CONTENTION`` of their
runnable time while a neighbour ran (``cpu_contention``, from the scheduler's run-queue delay): the
neighbour slowed the cell itself, so its duration and every part that grows with time are not what
it would measure alone, and no split of the energy can give that back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from energy_hpc.energy.base import PARTS, Reading

ALONE_SHARE = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MAX_CONTENTION = 0.10
ALONE = "none needed (alone)"
NOT_ATTRIBUTABLE = "not attributable"


@dataclass
class Attribution:
    """The attributed Wh of each part over the whole window (None: not attributable), the method
    per part, and the split's status: ``alone``, ``attributed`` or ``not attributable: why``."""

    parts: dict[str, float | None] = field(default_factory=dict)
    methods: dict[str, str | None] = field(default_factory=dict)
    status: str = "alone"
    foreign_cpu_share: float | None = None

    @property
    def energy_wh(self) -> float | None:
        if self.status.startswith(NOT_ATTRIBUTABLE):
            return None
        known = [v for v in self.parts.values() if v is not None]
        return sum(known) if known else None


def _load_model(load: float, floor_share: float = 1.0) -> float:
    """CodeCarbon's machine-mode CPU model over TDP: 0.1 (× the share of the floor carried) +
    0.9 · load³."""
    return 0.1 * floor_share + 0.9 * min(1.0, max(0.0, load)) ** 3


def _cpu_part(wh: float, method: str, share: dict[str, Any], f: float, idle: Reading | None,
              duration_s: float, info: dict[str, Any]) -> tuple[float | None, str]:
    a = share.get("allocated_cpu_share") or 1.0
    low = method.lower()
    if low.startswith("codecarbon") and info.get("tracking_mode") == "process":
        return wh, "none needed (CodeCarbon process mode: the cell's own load)"
    if "cpu_load" in low:
        cpus, window = share.get("host_cpus"), share.get("window_s") or duration_s
        own, host = share.get("own_cpu_s"), share.get("host_busy_cpu_s")
        if not cpus or not window or own is None or host is None:
            return None, f"{NOT_ATTRIBUTABLE}: own or host CPU time unknown"
        l_own, l_host = own / (window * cpus), host / (window * cpus)
        factor = _load_model(l_own, a) / _load_model(l_host)
        return wh * factor, (f"CodeCarbon load model at the cell's own load ({l_own:.2f} of "
                             f"{l_host:.2f}; CPUs held {a:.2f})")
    if "constant" in low:
        return wh * a, f"share of CPUs held ({a:.2f}; CodeCarbon's constant model)"
    return _counted(wh, share, f, idle, "cpu", duration_s)


MIN_LOAD_STEP = 0.2  # busy cores between the idle baseline and the window, to fit a line through


def _busy_cores(share: dict[str, Any], duration_s: float) -> float | None:
    busy, window = share.get("host_busy_cpu_s"), share.get("window_s") or duration_s
    return busy / window if busy is not None and window else None


def _counted(wh: float, share: dict[str, Any], f: float, idle: Reading | None, part: str,
             duration_s: float) -> tuple[float, str]:
    """A counter that reads the whole host (RAPL): power taken as linear in the host's busy
    cores, P = P0 + k · cores, through the idle baseline and the window — so an idle baseline
    a neighbour was busy in still gives the true floor P0. The cell gets P0 × the CPUs it holds
    plus k × its own busy cores. Without an idle baseline, or with the same load in both, the
    idle part is the baseline's and the rest is split by own CPU time."""
    a = share.get("allocated_cpu_share") or 1.0
    idle_w = _idle_power(idle, part)
    if idle is None or idle_w is None:
        return wh * (1.0 - f), f"own CPU time share ({1 - f:.2f}; no idle baseline: idle split alike)"
    idle_share = idle.info.get("cpu_share") or {}
    b_i, b_w = _busy_cores(idle_share, idle.duration_s), _busy_cores(share, duration_s)
    own = share.get("own_cpu_s")
    window = share.get("window_s") or duration_s
    if b_i is not None and b_w is not None and own is not None and window and \
            b_w - b_i >= MIN_LOAD_STEP:
        p_w = wh * 3600.0 / duration_s
        k = max(0.0, (p_w - idle_w) / (b_w - b_i))
        p0 = max(0.0, idle_w - k * b_i)
        own_cores = own / window
        value = (p0 * a + k * own_cores) * duration_s / 3600.0
        return min(value, wh), (f"linear in busy cores ({p0:.3g} W idle x CPUs held {a:.2f} + "
                                f"{k:.3g} W per core x {own_cores:.2f} own cores)")
    idle_wh = min(wh, idle_w * duration_s / 3600.0)
    return (idle_wh * a + (wh - idle_wh) * (1.0 - f),
            f"active by own CPU time ({1 - f:.2f}), idle by CPUs held ({a:.2f})")


def _ram_part(wh: float, method: str, share: dict[str, Any], f: float, idle: Reading | None,
              duration_s: float) -> tuple[float | None, str]:
    if "rapl" not in method.lower():
        return wh, "none needed (modelled from the memory size, not its use)"
    return _counted(wh, share, f, idle, "ram", duration_s)


def _idle_power(idle: Reading | None, part: str) -> float | None:
    if idle is None or idle.duration_s <= 0 or idle.part(part) is None:
        return None
    return idle.part(part) * 3600.0 / idle.duration_s


def _within_tick_noise(share: dict[str, Any]) -> bool:
    """Whether the foreign CPU time (host busy − own) is within the counters' resolution:
    /proc/stat and a process's times advance by clock ticks (1/100 s), two reads per window,
    so up to two ticks per CPU of difference is no neighbour."""
    host, own = share.get("host_busy_cpu_s"), share.get("own_cpu_s")
    if host is None or own is None:
        return False
    return host - own <= 2 * (share.get("host_cpus") or 1) / CLOCK_TICKS


def attribute_one(reading: Reading, idle: Reading | None, max_foreign_share: float,
                  scope: str = "node") -> Attribution:
    """One node's reading (the module docstring)."""
    share = reading.info.get("cpu_share") or {}
    f = share.get("foreign_cpu_share")
    out = Attribution(foreign_cpu_share=f)
    if f is not None and _within_tick_noise(share):
        f = 0.0  # what /proc/stat cannot tell from nothing (a window of a few ticks)
    strangers = reading.info.get("foreign_gpu_processes") or []
    reasons: list[str] = []
    contention, waited = share.get("cpu_contention"), share.get("cpu_wait_s")
    if waited is not None:
        waited -= share.get("cpu_self_wait_s") or 0.0  # the neighbour's part of the wait
    window = share.get("window_s") or reading.duration_s
    # slowed: its threads waited for a CPU a real part of their runnable time and of the window
    # (a node that only hosts an idle Ray worker waits a large share of almost nothing)
    if f is not None and f > ALONE_SHARE and contention is not None and contention > MAX_CONTENTION \
            and waited is not None and window and waited > MAX_CONTENTION * window / 2:
        reasons.append(f"the cell waited for a CPU {contention:.0%} of its runnable time beside "
                       "other work (slowed by a neighbour: not what it would measure alone)")
    for part in PARTS:
        wh = reading.part(part)
        method = reading.methods.get(part) or ""
        if wh is None:
            out.parts[part], out.methods[part] = None, None
            continue
        if part == "gpu":
            if strangers:
                gpus = sorted({str(s.get("gpu")) for s in strangers})
                why = f"another user's process on gpu {', '.join(gpus)}"
                out.parts[part], out.methods[part] = None, f"{NOT_ATTRIBUTABLE}: {why}"
                reasons.append(why)
            else:
                out.parts[part], out.methods[part] = wh, "none needed (read per device)"
            continue
        if scope == "job":
            out.parts[part], out.methods[part] = wh, "none needed (the job's own devices)"
            continue
        if f is None:
            why = "own CPU time unknown"
            out.parts[part], out.methods[part] = None, f"{NOT_ATTRIBUTABLE}: {why}"
            reasons.append(why)
            continue
        if f <= ALONE_SHARE:
            out.parts[part], out.methods[part] = wh, ALONE
            continue
        if f > max_foreign_share:
            why = f"foreign CPU share {f:.2f} above energy.max_foreign_share={max_foreign_share:g}"
            out.parts[part], out.methods[part] = None, f"{NOT_ATTRIBUTABLE}: {why}"
            reasons.append(why)
            continue
        if part == "cpu":
            value, how = _cpu_part(wh, method, share, f, idle, reading.duration_s, reading.info)
        else:
            value, how = _ram_part(wh, method, share, f, idle, reading.duration_s)
        if value is None:
            reasons.append(how.split(": ", 1)[-1])
        out.parts[part], out.methods[part] = value, how
    if reasons:
        out.status = f"{NOT_ATTRIBUTABLE}: {'; '.join(dict.fromkeys(reasons))}"
    elif any(m and not m.startswith("none needed") for m in out.methods.values()):
        out.status = "attributed"
    return out


def attribute(reading: Reading, idle: Reading | None, max_foreign_share: float,
              scope: str = "node") -> Attribution:
    """A reading's attribution; a multi-node reading node by node, summed (the paper's rule),
    the status the worst of its nodes'."""
    nodes = reading.info.get("node_readings")
    if not nodes:
        return attribute_one(reading, idle, max_foreign_share, scope)
    idle_nodes = {n.get("node"): Reading.from_dict(n)
                  for n in ((idle.info.get("node_readings") or []) if idle is not None else [])}
    per = [attribute_one(Reading.from_dict(n), idle_nodes.get(n.get("node")), max_foreign_share,
                         scope) for n in nodes]
    out = Attribution()
    for part in PARTS:
        values = [a.parts.get(part) for a in per]
        read = [n.get(f"{part}_wh") for n in nodes]
        known = [v for v, r in zip(values, read, strict=True) if r is not None]
        out.parts[part] = (None if not known or any(v is None for v in known)
                           else float(sum(known)))
        methods = sorted({a.methods.get(part) for a in per if a.methods.get(part)})
        out.methods[part] = " + ".join(methods) if methods else None
    bad = [f"{n.get('node')}: {a.status}" for n, a in zip(nodes, per, strict=True)
           if a.status.startswith(NOT_ATTRIBUTABLE)]
    shares = [a.foreign_cpu_share for a in per if a.foreign_cpu_share is not None]
    out.foreign_cpu_share = max(shares) if shares else None
    out.status = (f"{NOT_ATTRIBUTABLE}: {'; '.join(bad)}" if bad else
                  "attributed" if any(a.status == "attributed" for a in per) else "alone")
    return out


def attribution_columns(reading: Reading, idle: Reading | None, passes: int,
                        max_foreign_share: float, scope: str = "node",
                        prefix: str = "") -> dict[str, Any]:
    """The record's attributed columns, per pass like the whole-host ones."""
    a = attribute(reading, idle, max_foreign_share, scope)
    cols: dict[str, Any] = {}
    for part in PARTS:
        v = a.parts.get(part)
        cols[f"{prefix}{part}_wh_attributed"] = v / passes if v is not None else None
        cols[f"{prefix}{part}_attribution"] = a.methods.get(part)
    total = a.energy_wh
    cols[f"{prefix}energy_wh_attributed"] = total / passes if total is not None else None
    cols[f"{prefix}attribution"] = a.status
    return cols


__all__ = ["ALONE_SHARE", "MAX_CONTENTION", "Attribution", "attribute", "attribution_columns"]
