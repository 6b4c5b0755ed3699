"""Each way of classifying with one LLM, in one run (issue 27): free sequential (the paper's way),
free batched, choice, score — wall time and energy per text as ratios to free sequential, on one
engine loaded once, over the same prompts.

    .venv-vllm/bin/python benchmarks/llm_methods.py [--engine vllm|transformers] [--prompts 48]

The tiny random Llama of the tests (tests/tiny_llama.py) on this CPU: the ratios are the CPU's
and a 2-layer model's, not a GPU's or a real model's (there prompt processing and generation
weigh differently); free generation runs to --max-tokens most of the time on random weights.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WAYS = (("free", "sequential"), ("free", "batched"), ("choice", "batched"), ("score", "batched"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="vllm", choices=("vllm", "transformers"))
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=16)
    args = ap.parse_args()
    import pandas as pd

    from energy_hpc.classifiers import ClassifierContext
    from energy_hpc.classifiers.llm import LLMClassifier
    from energy_hpc.cluster.placement import Placement
    from energy_hpc.config import LLMModelConfig
    from energy_hpc.data.loading import demo_path
    from energy_hpc.energy.codecarbon_meter import CodeCarbonMeter
    from energy_hpc.energy.window import measure_window
    from tests.tiny_llama import build_tiny_llama

    demo = pd.read_csv(demo_path())
    cats = tuple(sorted(demo["label"].unique()))
    texts = [demo["text"].iloc[i % len(demo)] for i in range(args.prompts)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_llama(Path(tmp) / "tiny", demo["text"].tolist())
        engine = None
        for decoding, batching in WAYS:
            model = LLMModelConfig(name="tiny", kind="llm", family="llm", hf_id=str(path),
                                   engine=args.engine, dtype="float32", decoding=decoding,
                                   batching=batching, max_tokens=args.max_tokens,
                                   context_length=2048, gpu_memory_utilization=0.5)
            context = ClassifierContext(categories=cats, placement=Placement(1, 0, 1, 1, None, None, None))
            clf = LLMClassifier(model, context, engine=engine)
            engine = clf.engine
            clf.predict(texts[:2])  # warm, as a cell's warm-up request is
            holder: dict = {}

            def work(clf: LLMClassifier = clf, holder: dict = holder) -> None:
                holder["pred"] = clf.predict(texts)

            t0 = time.perf_counter()
            reading = measure_window([CodeCarbonMeter(interval_s=1.0)], work, max_passes=1).readings[0]
            rows.append((f"{decoding}/{batching}", time.perf_counter() - t0,
                         reading.energy_wh / len(texts), holder["pred"].info.get("output_tokens_mean")))
    base_s, base_wh = rows[0][1], rows[0][2]
    print(f"{args.engine}, tiny Llama on this CPU, {len(texts)} prompts, max_tokens={args.max_tokens}")
    print(f"{'way':18s} {'wall s':>8s} {'Wh/text':>10s} {'time ratio':>10s} {'energy ratio':>12s} {'out tokens':>10s}")
    for way, wall, wh, out in rows:
        print(f"{way:18s} {wall:8.2f} {wh:10.3g} {wall / base_s:10.3f} {wh / base_wh:12.3f} {out!s:>10s}")


if __name__ == "__main__":
    main()
