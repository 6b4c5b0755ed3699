#!/usr/bin/env bash
# What `pip install .`, `pip install git+URL` or a site's module build gets: build the wheel,
# install it into a clean virtual environment away from the source tree, and run the embedded
# default and --help from there. Fails when the wheel misses a package or a data file.
#   bash scripts/wheel_check.sh [VENV_DIR]     (default: in this user's cache, one per checkout,
#   ~/.cache/energy_hpc/wheel-check-<hash of the checkout's path>: never a shared path another
#   user or checkout could have made, or be using at the same moment; not inside the checkout,
#   which the check must not import from)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
key=$(printf %s "$repo" | sha256sum | cut -c1-12)
venv=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/energy_hpc/wheel-check-$key}
mkdir -p "$(dirname "$venv")" && chmod 700 "$(dirname "$venv")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip wheel -q --no-deps -w "$work/dist" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; echo "wheel_check: building the wheel failed" >&2; exit 1; }
[ -x "$venv/bin/python" ] || python -m venv "$venv"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$work"/dist/*.whl
"$venv/bin/python" -m pip install -q "$work"/dist/*.whl >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; echo "wheel_check: installing the wheel's dependencies failed" >&2; exit 1; }
mkdir -p "$work/run"
cd "$work/run"  # away from the source tree: nothing can be imported from the checkout
"$venv/bin/python" - "$repo" <<'PY'
import pathlib, sys
import energy_hpc
where = pathlib.Path(energy_hpc.__file__).resolve()
assert pathlib.Path(sys.argv[1]).resolve() not in where.parents, f"imported from the checkout: {where}"
PY
"$venv/bin/python" -m energy_hpc --help >"$work/help.txt" || { cat "$work/help.txt"; exit 1; }
grep -q "energy_hpc: what a text classifier costs" "$work/help.txt" || { cat "$work/help.txt"; exit 1; }
"$venv/bin/python" -m energy_hpc >"$work/run.log" 2>&1 \
  || { cat "$work/run.log" >&2; echo "wheel_check: python -m energy_hpc failed from the wheel" >&2; exit 1; }
grep -q "Linear Tf-idf" "$work/run.log" || { cat "$work/run.log" >&2; exit 1; }
echo "wheel_check: the wheel installs into $venv and runs the default and --help away from the source tree"
