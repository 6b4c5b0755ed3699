"""GPU check for the LLM path: a Llama-3.1-8B-shaped model with dummy weights on vLLM, 189 prompts
(the FKTG test-set size), ``choice`` decoding, ``sequential`` vs ``batched``, duration and NVML energy.

The paper's Table B1 gives 36.88 s and 5.86 Wh on one H100 for the real model (free decoding,
sequential). Dummy weights make free-text length meaningless, so this uses choice decoding: the
energy is comparable in kind, not a reproduction. Needs vLLM and a GPU; no network.

    python benchmarks/llm_gpu_check.py [--prompts 189]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.tiny_llama's tokenizer

# Llama 3.1 8B's published architecture (config.json of meta-llama/Meta-Llama-3.1-8B-Instruct).
LLAMA31_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu", "torch_dtype": "bfloat16",
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "bos_token_id": 128000, "eos_token_id": 128009, "tie_word_embeddings": False,
}


def write_model(folder: Path) -> Path:
    """config.json plus the tests' byte-level tokenizer trained here (the real one needs the hub)."""
    from energy_hpc.classifiers.llm.prompt import build_messages
    from tests.tiny_llama import byte_level_tokenizer

    corpus = [m["content"] for m in build_messages("Die Endlagersuche braucht Daten.", ["geoWK", "Tongestein"])]
    byte_level_tokenizer(corpus * 5, 2000).save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(LLAMA31_8B))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=189)
    args = ap.parse_args()
    from energy_hpc.classifiers import ClassifierContext
    from energy_hpc.classifiers.llm import LLMClassifier
    from energy_hpc.cluster.placement import Placement
    from energy_hpc.config import LLMModelConfig
    from energy_hpc.energy.nvml import NvmlMeter
    from energy_hpc.energy.window import measure_window

    cats = ["geoWK", "Tongestein", "Aktive Störungszonen", "Öffentlichkeitsbeteiligung", "Kristallingestein",
            "FEP/Szenarien/Entwicklungen des Endlagersystems", "Anwendung geoWK", "Mindestanforderungen",
            "Steinsalz in steiler Lagerung", "Datenverfügbarkeit", "Modellierung", "Referenzdatensätze",
            "Bereitstellung der Daten", "Ausschlusskriterien"]
    texts = [f"Stellungnahme {i}: Die Bürgerbeteiligung und die geologischen Daten zur Endlagersuche "
             f"sollten transparenter werden, insbesondere bei Tongestein und Kristallin ({i})." for i in range(args.prompts)]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_model(Path(tmp))
        meter = NvmlMeter(visible="0")
        results = {}
        engine = None
        for batching in ("sequential", "batched"):
            model = LLMModelConfig(name="llama8b_dummy", kind="llm", family="llm", hf_id=str(path), params_billion=8.03,
                                engine="vllm", load_format="dummy", decoding="choice", batching=batching,
                                max_tokens=32, context_length=4096)
            context = ClassifierContext(categories=tuple(cats),
                                        placement=Placement(1, 1, 1, 1, None, None, None))
            clf = LLMClassifier(model, context, engine=engine)
            engine = clf.engine
            clf.predict(texts[:1])  # warm-up outside the window
            w = measure_window([meter], lambda clf=clf: clf.predict(texts), min_passes=1)
            r = w.readings[0]
            results[batching] = r
            print(f"{batching:10s}: {r.duration_s:8.2f} s  {r.gpu_wh:8.3f} Wh  ({r.avg_power_w:.0f} W, "
                  f"{r.methods['gpu']}, {r.info['gpus'][0]['name']})")
        s, b = results["sequential"], results["batched"]
        print(f"batched / sequential: duration {b.duration_s / s.duration_s:.3f}, energy {b.gpu_wh / s.gpu_wh:.3f}")
        print("paper Table B1 (real Llama 3.1 8B, free decoding, sequential, H100): 36.88 s, 5.86 Wh")


if __name__ == "__main__":
    main()
