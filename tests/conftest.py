from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from energy_hpc.config import compose_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings_for(tmp_path):
    """Compose a validated cell with fast measurement defaults and records under tmp_path."""

    def make(*overrides: str):
        base = [f"out_dir={tmp_path / 'out'}", "repetitions=2", "energy.min_window_s=0.05",
                "progress=false"]
        return compose_settings([*base, *overrides])

    return make


@pytest.fixture
def csv_file(tmp_path):
    def make(rows, name="data.csv", columns=("text", "label")):
        path = tmp_path / name
        pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
        return path

    return make


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "energy_hpc", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, env=env, timeout=timeout)
