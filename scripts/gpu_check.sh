#!/usr/bin/env bash
# The GPU check in one command (benchmarks/gpu_check.py): install the carried wheels offline,
# then meters, the LLM ways and fine-tuning on the GPU; --cpu runs the same on the CPU with tiny
# shapes (to know the script works before a GPU is seen).
#   bash scripts/gpu_check.sh [--cpu] [--wheels DIR] [--out DIR] [gpu_check.py options]
# Prints the Markdown summary; OUT/gpu_check.json and .md hold it (default OUT: $OUT or gpu_check).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=wheelhouse
DEST=${OUT:-gpu_check}
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS=$2; shift 2 ;;
    --out) DEST=$2; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ -d "$WHEELS" ]; then
  # offline: the index is not reachable; what the machine has already satisfies the rest
  python -m pip install -q --no-index --find-links "$WHEELS" -r "$WHEELS/requirements.txt"
  python -m pip install -q --no-index --find-links "$WHEELS" --no-deps "$WHEELS"/energy_hpc-*.whl \
    "$WHEELS"/antlr4_python3_runtime-*.whl
fi
exec timeout 540 python benchmarks/gpu_check.py --out "$DEST" "${ARGS[@]}"
