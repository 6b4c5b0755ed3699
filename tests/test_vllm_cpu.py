"""Real vLLM on CPU, in its own environment (scripts/vllm_cpu_env.sh); skipped unless it exists."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

VLLM_PYTHON = os.environ.get("ENERGY_HPC_VLLM_PYTHON", str(REPO / ".venv-vllm" / "bin" / "python"))


@pytest.mark.slow
@pytest.mark.skipif(not Path(VLLM_PYTHON).exists(),
                    reason="no vllm-cpu environment: bash scripts/vllm_cpu_env.sh")
def test_tiny_llama_through_real_vllm_on_cpu(tmp_path):
    out = tmp_path / "vllm.json"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([VLLM_PYTHON, str(REPO / "tests" / "vllm_cpu_check.py"), str(out)],
                          capture_output=True, text=True, env=env, timeout=1200, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-5000:]
    data = json.loads(out.read_text())
    cats, results = data["categories"], data["results"]
    independent = results.pop("independent")
    one = results.pop("score_one_token")  # one request per text, logprob_token_ids
    assert len(one["categories"]) == 3 and one["requests_per_text"] == 1
    for label, raw, expected in zip(one["labels"], one["raw"], one["independent"], strict=True):
        mine = [float(x) for x in raw.split("\t", 1)[1].strip("[]").split(",")]
        assert mine == pytest.approx(expected, abs=2e-2)
        assert label == one["categories"][max(range(3), key=expected.__getitem__)]
    thinking = results.pop("thinking")  # a thinking budget of 4 tokens, then a 6-token answer
    assert thinking["thinking_tokens_mean"] <= 4 and 0 <= thinking["capped"] <= 6
    assert thinking["output_tokens_mean"] <= 4 + 6
    assert all("</think>" in raw for raw in thinking["raw"])
    assert set(results) == {"choice/sequential", "choice/batched", "free/sequential", "free/batched",
                            "score/sequential", "score/batched"}
    for key, r in results.items():
        assert len(r["labels"]) == len(r["raw"]) == 6, key
        assert all(label is None or label in cats for label in r["labels"])
    for batching in ("sequential", "batched"):  # structured outputs: every answer is a category
        assert all(label in cats for label in results[f"choice/{batching}"]["labels"])
        assert results[f"choice/{batching}"]["parse_methods"] == {"exact": 6}
    assert all(isinstance(text, str) for r in results.values() for text in r["raw"])
    # score through vLLM's prompt log-probabilities = transformers' full passes, computed apart
    for batching in ("sequential", "batched"):
        r = results[f"score/{batching}"]
        assert r["parse_methods"] == {"scored": 6} and r["output_tokens_mean"] == 0
        assert r["requests_per_text"] == len(cats)  # multi-token categories: one request each
        for label, raw, expected in zip(r["labels"], r["raw"], independent, strict=True):
            mine = [float(x) for x in raw.split("\t", 1)[1].strip("[]").split(",")]
            assert mine == pytest.approx(expected, abs=2e-2)
            assert label == cats[max(range(len(cats)), key=expected.__getitem__)]
    assert 0 < results["free/batched"]["output_tokens_mean"] <= 12
    # a model with no model file, as a whole cell on vLLM (issue 26): placed, measured, recorded
    cell = data["cell"]
    assert cell["model"] == "llm" and cell["n_test"] == 4 and cell["energy_wh"] > 0
    assert cell["quantization"] == "none" and cell["serving"] == "16-bit weights on the CPU"
    assert cell["model_facts"]["layers"] == 2
    assert cell["model_facts"]["sources"]["params"] == "safetensors headers"
    assert cell["engine_loads"] == 0  # the engine loaded above served it
