"""The site's own energy accounting: what Slurm says a job consumed, beside what we measured.

Slurm gathers energy when ``AcctGatherEnergyType`` (``scontrol show config``) names a plugin;
``sacct -j JOB -P --format=JobID,ElapsedRaw,ConsumedEnergyRaw,NodeList`` then gives, per job and
step, ``ConsumedEnergyRaw`` in joules (the sacct man page: "Total energy consumed by all tasks
in a job, in joules"; it reflects the job's real consumption only for exclusive allocations).
What the number covers depends on the plugin (slurm.conf man page, AcctGatherEnergyType):

- ``acct_gather_energy/gpu``: the job's GPUs (NVML/RSMI);
- ``acct_gather_energy/rapl``: the CPU packages (and DRAM) of the job's nodes;
- ``acct_gather_energy/ipmi``, ``pm_counters`` (HPE/Cray), ``xcc`` (Lenovo): whole nodes;
- ``acct_gather_energy/none`` (the dev Slurm): nothing is gathered; the value is null, with that
  reason.

The job's total is its allocation line's value, else the largest of its steps' (steps overlap:
the ``extern`` and ``batch`` steps span the job), never their sum.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

SCOPES = {
    "acct_gather_energy/gpu": "gpu",
    "acct_gather_energy/rapl": "cpu",
    "acct_gather_energy/ipmi": "node",
    "acct_gather_energy/pm_counters": "node",
    "acct_gather_energy/xcc": "node",
}
SCOPE_WORDS = {"gpu": "the job's GPUs", "cpu": "the CPU packages and DRAM of the job's nodes",
               "node": "whole nodes"}
SACCT_FORMAT = "JobID,ElapsedRaw,ConsumedEnergyRaw,NodeList"


@dataclass(frozen=True)
class StepEnergy:
    step: str
    elapsed_s: float | None
    energy_j: float | None
    nodes: str


@dataclass
class JobAccounting:
    """One job's energy as the site accounts it; ``consumed_energy_wh`` null with ``reason``."""

    job_id: str
    plugin: str | None
    scope: str | None
    node_freq_s: float | None
    consumed_energy_wh: float | None
    elapsed_s: float | None
    reason: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_config(text: str) -> tuple[str | None, float | None]:
    """``AcctGatherEnergyType`` and ``AcctGatherNodeFreq`` (seconds) from ``scontrol show config``."""
    plugin = freq = None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key == "AcctGatherEnergyType":
            plugin = value or None
        elif key == "AcctGatherNodeFreq":
            number = re.match(r"(\d+(?:\.\d+)?)", value)
            freq = float(number.group(1)) if number else None
    return plugin, freq


def parse_sacct(text: str) -> list[StepEnergy]:
    """Rows of ``sacct -P --format=JobID,ElapsedRaw,ConsumedEnergyRaw,NodeList`` (with or
    without its header); an empty ConsumedEnergyRaw is unknown, not 0."""
    rows = []
    for line in text.strip().splitlines():
        parts = line.split("|")
        if len(parts) < 4 or parts[0] == "JobID":
            continue
        rows.append(StepEnergy(step=parts[0], elapsed_s=_number(parts[1]),
                               energy_j=_number(parts[2]), nodes=parts[3]))
    return rows


def _number(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def job_accounting(job_id: str, config_text: str, sacct_text: str) -> JobAccounting:
    """The job's accounting from the two commands' outputs (see the module docstring)."""
    plugin, freq = parse_config(config_text)
    steps = parse_sacct(sacct_text)
    mine = [s for s in steps if s.step == job_id or s.step.startswith(f"{job_id}.")]
    top = next((s for s in mine if s.step == job_id), None)
    elapsed = top.elapsed_s if top is not None else max(
        (s.elapsed_s for s in mine if s.elapsed_s is not None), default=None)
    base = dict(job_id=job_id, plugin=plugin, scope=SCOPES.get(plugin or ""), node_freq_s=freq,
                elapsed_s=elapsed, steps=[asdict(s) for s in mine])
    if not plugin or plugin.endswith("/none"):
        return JobAccounting(**base, consumed_energy_wh=None,
                             reason=f"the site gathers no energy (AcctGatherEnergyType="
                                    f"{plugin or 'unset'})")
    if not mine:
        return JobAccounting(**base, consumed_energy_wh=None,
                             reason=f"sacct knows no job {job_id} (accounting storage off?)")
    known = [s.energy_j for s in mine if s.energy_j]
    if top is not None and top.energy_j:
        joules = top.energy_j
    elif known:
        joules = max(known)
    else:
        return JobAccounting(**base, consumed_energy_wh=None,
                             reason=f"{plugin} is set but sacct recorded no energy for job {job_id}")
    return JobAccounting(**base, consumed_energy_wh=joules / 3600.0)


def read_job_accounting(job_id: str) -> JobAccounting:
    """Ask this Slurm (``scontrol show config``, ``sacct``) about a finished job; never raises."""
    def run(cmd: list[str]) -> str | None:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    config = run(["scontrol", "show", "config"])
    if config is None:
        return JobAccounting(job_id=job_id, plugin=None, scope=None, node_freq_s=None,
                             consumed_energy_wh=None, elapsed_s=None,
                             reason="scontrol show config could not be asked")
    sacct = run(["sacct", "-j", str(job_id), "-P", f"--format={SACCT_FORMAT}"]) or ""
    return job_accounting(str(job_id), config, sacct)
