"""The GPU half in one run (issue 27): what a session lent a GPU runs once, in at most ~8 minutes.

1. meters: ~20 s of bf16 matrix multiplies, measured at once by NVML's energy counter, NVML power
   sampling (0.1 s) and CodeCarbon — per device, with their ratios;
2. LLM ways: the transformers engine on a Llama-3.1-8B-shaped model with random weights (no
   download), N prompts of the paper's length (the demo texts in the paper's prompt): free
   sequential (the paper's way), free batched, choice, score — energy per text, output tokens
   per text, wall time, energy ÷ free sequential;
3. fine-tuning: a BERT-base-shaped random encoder (12 layers, 768 wide) fine-tuned for a few
   hundred steps through energy_hpc's finetune kind, its fit window measured.

``--cpu`` runs the same steps on the CPU with tiny shapes (CodeCarbon only: no NVML), so the
script is known to work before a GPU is seen. Random weights make free-text answers meaningless
(accuracy is not the point) and free generation runs to ``--max-tokens`` most of the time:
energies are comparable in kind with the paper's Table B1, not a reproduction.
Writes OUT/gpu_check.json and OUT/gpu_check.md.

    python benchmarks/gpu_check.py --out OUT [--cpu] [--prompts 200] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAPER_LLAMA8B = {"energy_wh": 5.86, "duration_s": 36.88, "texts": 189}  # Table B1, one H100


def tokenizer_folder(folder: Path, texts: list[str], vocab: int) -> Any:
    """The tests' byte-level BPE trained on the prompts (the real tokenizers need the hub), with
    BERT's special tokens too, saved in ``folder``."""
    from tests.tiny_llama import byte_level_tokenizer

    fast = byte_level_tokenizer(texts, vocab, cls_token="[CLS]", sep_token="[SEP]",
                                mask_token="[MASK]")
    fast.save_pretrained(folder)
    return fast


def meters(cpu: bool) -> list:
    from energy_hpc.energy.codecarbon_meter import CodeCarbonMeter

    found: list = [CodeCarbonMeter(interval_s=1.0)]
    if not cpu:
        from energy_hpc.energy.nvml import NvmlMeter

        found.insert(0, NvmlMeter(visible="0"))
    return found


def step_meters(args: argparse.Namespace) -> dict:
    """NVML counter vs NVML sampling vs CodeCarbon over one steady load."""
    from benchmarks.gpu_energy_check import steady_load

    readings = steady_load(args.meter_seconds, 512 if args.cpu else 8192,
                           "cpu" if args.cpu else "cuda")
    out: dict[str, Any] = {"window_s": readings[0].duration_s}
    for name, reading in zip(("nvml_counter", "nvml_sampling", "codecarbon")[-len(readings):],
                             readings, strict=True):
        out[name] = {"gpu_wh": reading.gpu_wh, "cpu_wh": reading.cpu_wh, "ram_wh": reading.ram_wh,
                     "avg_power_w": reading.avg_power_w,
                     "devices": [d.__dict__ for d in reading.devices]}
    if not args.cpu:
        counter = out["nvml_counter"]["gpu_wh"]
        out["sampling_vs_counter"] = out["nvml_sampling"]["gpu_wh"] / counter
        cc = out["codecarbon"]["gpu_wh"]
        out["codecarbon_vs_counter"] = cc / counter if cc else None
        out["gpu"] = readings[0].info.get("gpus")
    return out


def step_llm(args: argparse.Namespace, tmp: Path) -> dict:
    """The four ways of one LLM on the transformers engine, each measured over the same prompts."""
    import pandas as pd
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from energy_hpc.classifiers import ClassifierContext
    from energy_hpc.classifiers.llm import LLMClassifier
    from energy_hpc.classifiers.llm.engines import TransformersEngine
    from energy_hpc.classifiers.llm.prompt import build_messages
    from energy_hpc.config import LLMModelConfig
    from energy_hpc.data.loading import demo_path
    from energy_hpc.energy.window import measure_window

    demo = pd.read_csv(demo_path())
    cats = sorted(demo["label"].unique())
    texts = [demo["text"].iloc[i % len(demo)] for i in range(args.prompts)]
    corpus = [m["content"] for t in texts[:50] for m in build_messages(t, cats)]
    folder = tmp / "llm"
    tok = tokenizer_folder(folder, corpus, 2000)
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=32) if args.cpu else dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8)  # Llama 3.1 8B's layout
    config = LlamaConfig(vocab_size=128256 if not args.cpu else len(tok), max_position_embeddings=8192,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **shape)
    device = "cpu" if args.cpu else "cuda"
    dtype = torch.float32 if args.cpu else torch.bfloat16
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        net = LlamaForCausalLM(config).to(dtype).eval()
    built_s = time.perf_counter() - t0
    engine = TransformersEngine.from_loaded(net, tok, device)
    results: dict[str, Any] = {"params_billion": sum(p.numel() for p in net.parameters()) / 1e9,
                               "built_s": built_s, "prompts": len(texts), "ways": {}}
    for decoding, batching in (("free", "sequential"), ("free", "batched"), ("choice", "batched"),
                               ("score", "batched")):
        model = LLMModelConfig(name="llama8b_shaped", kind="llm", family="llm", hf_id=str(folder),
                               params_billion=results["params_billion"], dtype="bfloat16",
                               decoding=decoding, batching=batching, max_tokens=args.max_tokens,
                               context_length=4096)
        clf = LLMClassifier(model, ClassifierContext(categories=tuple(cats)), engine=engine)
        holder: dict[str, Any] = {}

        def work(clf: LLMClassifier = clf, holder: dict = holder) -> None:
            holder["pred"] = clf.predict(texts)

        t0 = time.perf_counter()
        window = measure_window(meters(args.cpu), work, max_passes=1)
        wall = time.perf_counter() - t0
        reading = window.readings[0]
        info = holder["pred"].info
        results["ways"][f"{decoding}/{batching}"] = {
            "wall_s": wall, "energy_wh": reading.energy_wh, "meter": reading.meter,
            "energy_per_text_wh": reading.energy_wh / len(texts) if reading.energy_wh else None,
            "output_tokens_mean": info.get("output_tokens_mean"),
            "prompt_tokens_mean": info.get("prompt_tokens_mean"), "flags": reading.flags}
    base = results["ways"]["free/sequential"]["energy_per_text_wh"]
    for way in results["ways"].values():
        way["vs_free_sequential"] = way["energy_per_text_wh"] / base if base and way["energy_per_text_wh"] else None
    del net, engine
    if not args.cpu:
        torch.cuda.empty_cache()
    return results


def step_finetune(args: argparse.Namespace, tmp: Path) -> dict:
    """A BERT-base-shaped random encoder fine-tuned through energy_hpc's finetune kind."""
    import pandas as pd
    import torch
    from transformers import BertConfig, BertModel

    from energy_hpc.cell import compose_cell
    from energy_hpc.data.loading import demo_path
    from energy_hpc.runner import run_cell

    folder = tmp / "encoder"
    tok = tokenizer_folder(folder, pd.read_csv(demo_path())["text"].tolist(), 4000)
    shape = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) \
        if args.cpu else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                              intermediate_size=3072)  # BERT-base
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **shape)).save_pretrained(folder)
    cell = compose_cell(["model=finetune_minilm", f"model.hf_id={folder}", "model.display_name=BERT-base-shaped",
                         f"model.max_steps={args.steps}", "model.params_million=null",
                         "repetitions=1", "progress=false", f"out_dir={tmp / 'out'}",
                         f"gpus={0 if args.cpu else 1}", "energy.interval_s=1",
                         f"energy.meters=[{'codecarbon' if args.cpu else 'nvml,codecarbon'}]"])
    t0 = time.perf_counter()
    [record] = run_cell(cell)
    keep = ("fit_energy_wh", "fit_duration_s", "energy_wh", "duration_s", "accuracy", "gpus",
            "energy_method", "fit_method")
    return {**{k: record.get(k) for k in keep}, "steps": args.steps, "wall_s": time.perf_counter() - t0}


def markdown(result: dict) -> str:
    lines = [f"# GPU check ({result['device']}, {result['date']})", ""]
    for name, step in result["steps"].items():
        lines += [f"## {name}", ""]
        if "error" in step:
            lines += ["```", step["error"][-1500:], "```", ""]
            continue
        if name == "llm":
            lines += [f"{step['prompts']} prompts, {step['params_billion']:.2f} B parameters (random)", "",
                      "| way | wall s | energy Wh | Wh per text | ÷ free sequential | output tokens per text |",
                      "|---|---|---|---|---|---|"]
            for way, w in step["ways"].items():
                lines.append(f"| {way} | {w['wall_s']:.1f} | {w['energy_wh'] or 0:.4g} | "
                             f"{w['energy_per_text_wh'] or 0:.4g} | {w['vs_free_sequential'] or 0:.3g} | "
                             f"{w['output_tokens_mean']} |")
            lines.append("")
            if result["device"] != "cpu":
                p = PAPER_LLAMA8B
                lines += [f"Paper, Table B1 (Llama 3.1 8B, free sequential, one H100): "
                          f"{p['energy_wh'] / p['texts']:.4g} Wh per text.", ""]
        else:
            lines += ["```json", json.dumps(step, indent=1, default=str)[:3000], "```", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpu", action="store_true", help="the same steps on the CPU, tiny shapes")
    ap.add_argument("--prompts", type=int, default=None, help="default 200 (GPU), 8 (CPU)")
    ap.add_argument("--steps", type=int, default=None, help="fine-tuning steps: 300 (GPU), 4 (CPU)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--meter-seconds", type=float, default=None, help="20 (GPU), 2 (CPU)")
    ap.add_argument("--only", default="meters,llm,finetune")
    args = ap.parse_args()
    args.prompts = args.prompts or (8 if args.cpu else 200)
    args.steps = args.steps or (4 if args.cpu else 300)
    args.meter_seconds = args.meter_seconds or (2.0 if args.cpu else 20.0)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; --cpu runs the same steps on the CPU", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "device": "cpu" if args.cpu else torch.cuda.get_device_name(0),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version(),
        "torch": torch.__version__, "steps": {}}
    steps = {"meters": step_meters, "llm": step_llm, "finetune": step_finetune}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            t0 = time.perf_counter()
            print(f"gpu_check: {name} …", flush=True)
            try:
                fn = steps[name]
                result["steps"][name] = fn(args) if name == "meters" else fn(args, Path(tmp))
            except Exception:  # noqa: BLE001 - one failed step must not lose the others
                result["steps"][name] = {"error": traceback.format_exc()}
            result["steps"][name]["step_s"] = time.perf_counter() - t0
            (out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
            print(f"gpu_check: {name} done in {result['steps'][name]['step_s']:.0f} s", flush=True)
    (out / "gpu_check.md").write_text(markdown(result))
    print(markdown(result))
    return 1 if any("error" in s for s in result["steps"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
