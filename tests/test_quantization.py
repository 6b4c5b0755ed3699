"""model.quantization (issue 26): what a checkpoint is quantized as, what it weighs, what each of
the paper's GPUs runs (vLLM's own table), the cell id, the plan and the records; every refusal one
line, exit 2, nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.config.model_facts import read_facts
from energy_hpc.config.quantization import checkpoint_method, compute_capability
from tests.conftest import run_cli
from tests.test_model_facts import _llama8b_shaped, _safetensors


def _awq(folder: Path) -> Path:
    """An AWQ checkpoint's layout: int32-packed 4-bit weights, 16-bit embeddings."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "vocab_size": 1000, "hidden_size": 256,
        "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 8192,
        "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}))
    _safetensors(folder / "model.safetensors", {
        "model.layers.0.mlp.up_proj.qweight": ("I32", [256, 64], 65536),
        "model.embed_tokens.weight": ("F16", [1000, 256], 512000)})
    return folder


def _one_line_refusal(tmp_path: Path, *overrides: str) -> str:
    out = tmp_path / "out"
    proc = run_cli(*overrides, "dry_run=true", f"out_dir={out}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert not (out / "cells").exists()
    return lines[0]


def test_a_checkpoints_method_is_read_from_its_quantization_config():
    assert checkpoint_method({"quant_method": "awq", "bits": 4}) == ("awq", 4)
    assert checkpoint_method({"quant_method": "gptq", "bits": 8}) == ("gptq", 8)
    assert checkpoint_method({"quant_method": "fp8", "activation_scheme": "dynamic"}) == ("fp8", 8)
    assert checkpoint_method({"quant_method": "bitsandbytes", "load_in_8bit": True}) == ("bitsandbytes", 8)
    # llm-compressor's FP8 (the RedHatAI / neuralmagic FP8 checkpoints)
    assert checkpoint_method({"quant_method": "compressed-tensors", "config_groups": {"group_0": {
        "weights": {"num_bits": 8, "type": "float"}}}}) == ("fp8", 8)
    assert checkpoint_method({"quant_method": "compressed-tensors", "config_groups": {"group_0": {
        "weights": {"num_bits": 4, "type": "int"}}}}) == ("compressed-tensors", 4)
    assert checkpoint_method(None) == (None, None)
    assert compute_capability("H100") == 9.0 and compute_capability("A30") == 8.0
    assert compute_capability("NVIDIA A100-SXM4-80GB") == 8.0
    assert compute_capability("Tesla V100-SXM2-32GB") == 7.0
    assert compute_capability("fake-gpu") is None and compute_capability("fake-gpu", 8.9) == 8.9


def test_an_awq_checkpoint_is_served_as_it_is_where_the_gpu_runs_it(tmp_path):
    folder = _awq(tmp_path / "m")
    cell = compose_cell(["model=llm", f"model.hf_id={folder}", "model.engine=vllm", "cluster=capella",
                         f"out_dir={tmp_path / 'out'}"])
    q = cell.settings.model.quantization_plan()
    assert (q.method, q.prequantized, q.bits, q.vllm_quantization) == ("awq", True, 4, None)
    assert cell.settings.model.weights_gb() == pytest.approx((65536 + 512000) / 1e9)  # its bytes
    assert "awq_marlin kernel, as vLLM picks" in cell.placement.serving
    assert "awq_marlin" in cell.placement.describe()
    line = _one_line_refusal(tmp_path, "model=llm", f"model.hf_id={folder}", "model.engine=vllm",
                             "cluster=clara")
    assert "model.quantization=awq: a V100 (compute capability 7) cannot run it in vLLM; it runs " \
           "gptq, bitsandbytes (or model.quantization=none)" in line
    line = _one_line_refusal(tmp_path, "model=llm", f"model.hf_id={folder}", "model.quantization=none")
    assert re.search(r"model.quantization=none but .* is a awq checkpoint .*use model.quantization="
                     r"auto \(or awq\)", line)
    line = _one_line_refusal(tmp_path, "model=llm", f"model.hf_id={folder}", "model.quantization=fp8")
    assert "model.quantization=fp8 but" in line and "one checkpoint is quantized one way" in line


def test_fp8_halves_the_weights_and_follows_each_gpus_rule(tmp_path):
    """Dynamic FP8 on a 16-bit checkpoint: one byte per weight, the embeddings and LM head kept
    at bfloat16; W8A8 on an H100, weight-only on an A30, refused on a V100."""
    folder = _llama8b_shaped(tmp_path / "m")
    facts = read_facts(str(folder))
    base = ["model=llm", f"model.hf_id={folder}", "model.engine=vllm", f"out_dir={tmp_path / 'out'}"]
    bf16 = compose_cell([*base, "cluster=capella"])
    fp8 = compose_cell([*base, "cluster=capella", "model.quantization=fp8"])
    embed = facts.embedding_params / 1e9
    assert fp8.settings.model.weights_gb() == pytest.approx((facts.params / 1e9 - embed) + 2 * embed)
    assert fp8.settings.model.weights_gb() < 0.6 * bf16.settings.model.weights_gb()
    assert fp8.placement.serving == "FP8 weights and activations (W8A8)"
    assert bf16.placement.serving == "16-bit weights and arithmetic"
    assert fp8.cell_id != bf16.cell_id
    assert fp8.settings.model.quantization_plan().vllm_quantization == "fp8"
    # the estimate reads half the bytes per generated token
    assert fp8.settings.model.sizes()[2] < 0.6 * bf16.settings.model.sizes()[2]
    a30 = compose_cell([*base, "cluster=paula", "model.quantization=fp8"])
    assert a30.placement.serving.startswith("FP8 weight-only (FP8 Marlin")
    line = _one_line_refusal(tmp_path, *base[:-1], "cluster=clara", "model.quantization=fp8")
    assert "a V100 (compute capability 7) cannot run it in vLLM; it runs gptq, bitsandbytes" in line
    line = _one_line_refusal(tmp_path, *base[:-1], "model.quantization=gptq")
    assert "model.quantization=gptq needs a checkpoint quantized with GPTQ" in line
    assert "model.quantization=fp8 or bitsandbytes" in line


def test_quantization_can_halve_the_gpus_a_paper_model_holds(tmp_path):
    """Llama 3.1 70B on Paula's 24 GB A30s: 8 GPUs in bfloat16 (Table B1), fewer in FP8; a
    mixture of experts has no FP8 kernel below compute capability 8.9."""
    bf16 = compose_cell(["model=llama70b", "cluster=paula", "gpus=auto", "nodes=auto"])
    fp8 = compose_cell(["model=llama70b", "cluster=paula", "gpus=auto", "nodes=auto",
                        "model.quantization=fp8"])
    assert bf16.placement.gpus == 8 and fp8.placement.gpus == 4
    assert fp8.settings.model.gpu_memory().how.startswith("70.6 GB of fp8 (8-bit) weights")
    line = _one_line_refusal(tmp_path, "model=phi_moe", "cluster=paula", "model.quantization=fp8")
    assert "(FP8 Marlin, the weight-only kernel below 8.9, has no mixture-of-experts kernel)" in line
    assert compose_cell(["model=phi_moe", "cluster=capella", "model.quantization=fp8"]).placement.serving \
        == "FP8 weights and activations (W8A8)"


def test_the_knob_keeps_old_cell_ids_and_refuses_a_quantized_dtype(tmp_path):
    from energy_hpc.cell import identity

    auto = compose_cell(["model=llama8b", "cluster=capella"])

    assert "quantization" not in json.dumps(identity(auto.settings, auto.placement))
    assert compose_cell(["model=llama8b", "cluster=capella", "model.quantization=auto"]).cell_id \
        == auto.cell_id
    line = _one_line_refusal(tmp_path, "model=llama8b", "model.dtype=fp8")
    assert "model.dtype=fp8 is a quantization, not a dtype: use model.quantization=fp8" in line
    line = _one_line_refusal(tmp_path, "model=llama8b", "model.quantization=int3")
    assert "model.quantization" in line and "auto, none, fp8, awq, gptq, bitsandbytes" in line
    line = _one_line_refusal(tmp_path, "model=llama8b", "model.engine=transformers", "gpus=0",
                             "model.quantization=bitsandbytes")
    assert "model.quantization=bitsandbytes quantizes on a GPU; this cell has none (gpus=0)" in line


def test_the_plan_says_how_many_sequences_the_kv_room_holds_at_once(tmp_path):
    """Beside the fit: what the memory left after weights, activations and the engine holds in
    sequences of context_length tokens (vLLM logs it as 'Maximum concurrency'); FP8 weights leave
    more room."""
    folder = _llama8b_shaped(tmp_path / "m")
    base = ["model=llm", f"model.hf_id={folder}", "model.engine=vllm", "cluster=capella", "gpus=1"]
    bf16 = compose_cell(base)
    room = 94 * 0.9 - 16.060522496 * 1.05 - 1.0
    per_sequence = 2 * 32 * 8 * 128 * 2 * 4096 / 1e9
    assert bf16.placement.concurrency == (f"KV cache room ~{room:.0f} GB: ~{room / per_sequence:.0f} "
                                          "sequences of 4096 tokens at once")
    assert bf16.placement.concurrency in bf16.placement.describe()
    fp8 = compose_cell([*base, "model.quantization=fp8"])
    more = int(fp8.placement.concurrency.split("~")[2].split()[0])
    assert more > room / per_sequence
    assert compose_cell(["model=llama8b", "cluster=capella"]).placement.concurrency is None  # no files here


def test_the_report_puts_one_models_precisions_side_by_side():
    """Cells of one model differing only in quantization: one row each, energy per text against
    the 16-bit cell's; a quantized paper model is not the paper's setup; LLM records from before
    the knob (no quantization column) count as 16-bit, not as a third precision."""
    import pandas as pd

    from energy_hpc.analysis.summary import summarize
    from energy_hpc.analysis.tables import table_b2, table_precisions

    def rec(quant, energy, acc, split, gpus=8, nodes=1):
        r = {"cell_id": f"llama70b-{quant}-{nodes}", "split": split, "model": "llama70b",
             "model_display": "Llama 3.1 70B" + (f" [{quant}]" if quant not in (None, "none") else ""),
             "model_family": "llm", "model_kind": "llm", "dataset": "tomatoes", "cluster": "paula",
             "gpu_type": "A30", "gpus": gpus, "nodes": nodes, "decoding": "free",
             "batching": "batched", "accuracy": acc, "energy_wh": energy, "duration_s": 100.0,
             "avg_power_w": energy * 36, "energy_per_sample_wh": energy / 200}
        if quant is not None:
            r["quantization"] = quant
        return r

    records = pd.DataFrame([rec(None, 40.0, 0.80, 0), rec("none", 44.0, 0.82, 1),
                            rec("fp8", 20.0, 0.79, 0, gpus=4), rec("fp8", 22.0, 0.81, 1, gpus=4),
                            rec("fp8", 30.0, 0.80, 0, gpus=4, nodes=2)])
    summary = summarize(records)
    assert sorted(summary["quantization"]) == ["fp8", "fp8", "none"]
    table = table_precisions(summary)
    assert list(table["Quantization"]) == ["none", "fp8"]
    assert list(table["GPUs"]) == [8, 4]
    assert table["Energy vs 16-bit"].tolist() == pytest.approx([1.0, 21.0 / 42.0])
    assert table["Energy per text (Wh)"].tolist() == pytest.approx([42.0 / 200, 21.0 / 200])
    fp8 = summary[summary["quantization"] == "fp8"]
    assert fp8["paper_mismatch"].str.startswith("quantized (fp8").all()
    # single vs double node compares like with like: the fp8 cells, not the 16-bit one
    b2 = table_b2(summary)
    [row] = b2[b2["Energy double (Wh)"].notna()].to_dict("records")
    assert row["Energy single (Wh)"] == pytest.approx(21.0) and row["Energy ratio"] == pytest.approx(30 / 21)
    assert table_precisions(summary[summary["quantization"] == "fp8"]).empty


def test_a_method_for_a_checkpoint_not_here_is_taken_at_its_word_and_checked_at_load(tmp_path):
    """Planning on a login node without the files: awq is assumed (4-bit bytes), the plan says so,
    and vLLM is told the method so that a checkpoint that is not AWQ fails at load rather than
    being measured as 16-bit under an awq label; where the files are, they decide."""
    cell = compose_cell(["model=llama8b", "cluster=capella", "model.quantization=awq"])
    q = cell.settings.model.quantization_plan()
    assert q.assumed and q.vllm_quantization == "awq"
    assert cell.settings.model.weights_gb() == pytest.approx(8.03 * 0.5)
    assert "assumed awq, checked when it loads" in cell.placement.serving
    folder = _awq(tmp_path / "m")
    here = compose_cell(["model=llm", f"model.hf_id={folder}", "cluster=capella",
                         "model.quantization=awq", "model.engine=vllm"])
    q = here.settings.model.quantization_plan()
    assert not q.assumed and q.vllm_quantization is None
