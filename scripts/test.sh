#!/usr/bin/env bash
# The test command (README, CI): install the project with its test extras, start the services the
# tests need, run the suite. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

# torch is pinned to the CPU build this machine kind ships; a looser pin pulls a multi-GB CUDA build.
python -m pip install -q 'torch==2.13.0' -e '.[dev]'

ruff check .
python -m pytest "$@"
