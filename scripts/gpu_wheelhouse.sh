#!/usr/bin/env bash
# The wheels a GPU machine without a package index needs for scripts/gpu_check.sh, built here:
# the project, its dependencies and accelerate/tabulate, for CPython PYTHON_VERSION on x86-64
# Linux, less what such a machine already has (torch and its CUDA wheels, transformers,
# tokenizers, sentence-transformers, numpy, pandas, scipy, scikit-learn, matplotlib,
# nvidia-ml-py). hydra's antlr4 runtime has no wheel on PyPI: it is built here (pure Python).
#   bash scripts/gpu_wheelhouse.sh [DIR] [PYTHON_VERSION]   (default: wheelhouse 3.12)
# Carry DIR to the GPU machine (run's carry) and run scripts/gpu_check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-wheelhouse}
PYV=${2:-3.12}
ABI="cp${PYV/./}"
if [ -L "$DIR" ] || { [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ] && [ ! -f "$DIR/requirements.txt" ]; }; then
  echo "gpu_wheelhouse: $DIR exists and is not a wheelhouse this script built (no requirements.txt); give an empty or new folder" >&2
  exit 2
fi
rm -f "$DIR"/*.whl "$DIR"/requirements.txt && mkdir -p "$DIR"
python -m pip wheel -q --no-deps -w "$DIR" . 'antlr4-python3-runtime==4.9.3'
TARGET=(--only-binary=:all: --python-version "$PYV" --implementation cp --abi "$ABI"
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any)
REPORT=$(mktemp)
python -m pip install -q --dry-run --ignore-installed --report "$REPORT" --find-links "$DIR" \
  "${TARGET[@]}" --target "$(mktemp -d)" "$DIR"/energy_hpc-*.whl accelerate tabulate
# what the GPU machine has: left out (pip there finds them installed)
python - "$REPORT" > "$DIR/requirements.txt" <<'PY'
import json, re, sys
HAVE = re.compile(r"^(torch|triton|nvidia-.*|transformers|tokenizers|safetensors|huggingface[-_]hub|"
                  r"hf-xet|sentence-transformers|numpy|pandas|scipy|scikit-learn|matplotlib|"
                  r"sympy|networkx|mpmath|pillow|setuptools|energy[-_]hpc|antlr4-python3-runtime)$", re.I)
for item in json.load(open(sys.argv[1]))["install"]:
    name, version = item["metadata"]["name"], item["metadata"]["version"]
    if not HAVE.match(name):
        print(f"{name}=={version}")
PY
rm -f "$REPORT"
python -m pip download -q --no-deps -d "$DIR" "${TARGET[@]}" -r "$DIR/requirements.txt"
echo "$DIR: $(ls "$DIR"/*.whl | wc -l) wheels, $(du -sh "$DIR" | cut -f1)"
