"""Any LLM by its own files (issue 26, first part): facts from config.json and the safetensors
headers of real tiny models built here, the Hugging Face cache layout, offline; placement and the
estimate from those facts; what a missing or unreadable model says."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.config.model_facts import model_folder, read_facts
from tests.conftest import run_cli
from tests.tiny_llama import build_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"))


def _numel(model, where=lambda name: True) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if where(name))


def test_a_tiny_llamas_facts_come_from_its_config_and_safetensors(tiny):
    from transformers import AutoModelForCausalLM

    facts = read_facts(str(tiny))
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert (facts.layers, facts.hidden_size, facts.heads, facts.kv_heads, facts.head_dim) == (2, 64, 2, 2, 32)
    assert facts.attention_layers == 2 and facts.context_length == 4096
    assert facts.architecture == "LlamaForCausalLM" and facts.quantization is None
    assert facts.params == _numel(model)  # exact: the headers' element counts
    stored = (tiny / "model.safetensors").stat().st_size
    assert facts.weight_bytes < stored < facts.weight_bytes + 64_000  # the file less its header
    assert facts.sources["params"] == "safetensors headers"
    assert facts.sources["layers"] == "config.json"
    assert facts.experts is None and facts.active_params is None


def test_a_mixture_of_experts_gives_its_active_parameters(tmp_path):
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM

    config = MixtralConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                           num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=4096)
    torch.manual_seed(0)
    model = MixtralForCausalLM(config)
    model.save_pretrained(tmp_path)
    facts = read_facts(str(tmp_path))
    total, experts = _numel(model), _numel(model, lambda n: ".experts." in n)
    assert experts > 0 and facts.experts == 4 and facts.experts_per_token == 2
    assert facts.params == total
    assert facts.active_params == total - experts // 2  # 2 of 4 experts per token
    cell = compose_cell(["model=llm", f"model.hf_id={tmp_path}", "model.engine=transformers",
                         "model.dtype=float32", f"out_dir={tmp_path / 'out'}"])
    params, active, per_param, source = cell.settings.model.sizes()
    assert params == pytest.approx(total / 1e9) and active == pytest.approx((total - experts // 2) / 1e9)
    assert per_param == pytest.approx(4, rel=0.01)  # float32 weights, from the bytes themselves
    assert source == "safetensors headers"
    assert cell.settings.model.display_name == tmp_path.name


def _safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> None:
    header, offset = {}, 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_a_quantized_checkpoint_weighs_its_bytes_and_estimates_its_parameters(tmp_path):
    """AWQ packs 8 int4 weights into an int32: the headers' bytes are exact, their element counts
    are not parameters — those come from the config."""
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 1000,
           "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
           "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 8192,
           "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    _safetensors(tmp_path / "model.safetensors", {"model.layers.0.mlp.up_proj.qweight": ("I32", [256, 64], 65536),
                                                   "model.embed_tokens.weight": ("F16", [1000, 256], 512000)})
    facts = read_facts(str(tmp_path))
    assert facts.quantization == "awq" and facts.weight_bytes == 65536 + 512000
    head_dim = 64
    attn = 256 * 4 * head_dim * 2 + 256 * 2 * head_dim * 2
    expected = 2 * 1000 * 256 + 4 * (attn + 3 * 256 * 512 + 2 * 256) + 256
    assert facts.params == expected and facts.sources["params"].startswith("config.json (estimated")


def test_a_hybrid_counts_its_attention_layers_and_the_index_its_bytes(tmp_path):
    """A Jamba-shaped config (attention every 8th layer from the 4th) without its weight files:
    the index's total_size is the bytes; parameters of a Mamba hybrid are not estimated."""
    cfg = {"architectures": ["JambaForCausalLM"], "num_hidden_layers": 32, "hidden_size": 4096,
           "num_attention_heads": 32, "num_key_value_heads": 8, "attn_layer_period": 8,
           "attn_layer_offset": 4, "num_experts": 16, "num_experts_per_tok": 2, "vocab_size": 65536,
           "intermediate_size": 14336, "max_position_embeddings": 262144, "mamba_d_state": 16,
           "mamba_d_conv": 4, "mamba_expand": 2}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 103_000_000_000}, "weight_map": {}}))
    facts = read_facts(str(tmp_path))
    assert facts.attention_layers == 4 and facts.layers == 32 and facts.experts == 16
    assert facts.weight_bytes == 103_000_000_000 and facts.params is None
    assert facts.mamba_state_values == 28 * (8192 * 16 + 8192 * 3)  # per sequence, any length
    cell = compose_cell(["model=llm", f"model.hf_id={tmp_path}", "cluster=capella", "gpus=auto",
                         f"out_dir={tmp_path / 'out'}"])
    assert cell.placement.gpus == 2 and cell.placement.weights_gb == 103.0  # x 1.15 on 94 GB H100s
    how = cell.settings.model.gpu_memory().how
    assert how.startswith("103 GB of weights (the model's safetensors) x 1.15 headroom (holds the KV "
                          "cache: 0.076 GB for 1 sequence x 4096 tokens x 2 x 4 attention layers")
    assert how.endswith(", + Mamba state 8.72 MB per sequence)")


def test_the_hub_cache_is_read_offline_by_revision(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--org--tiny"
    for sha in ("aaaa", "bbbb"):
        (repo / "snapshots" / sha).mkdir(parents=True)
        (repo / "snapshots" / sha / "config.json").write_text(json.dumps(
            {"num_hidden_layers": 2 if sha == "aaaa" else 3, "hidden_size": 64}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("bbbb\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert model_folder("org/tiny") == repo / "snapshots" / "bbbb"
    assert read_facts("org/tiny").layers == 3
    assert read_facts("org/tiny", "aaaa").layers == 2
    assert read_facts("org/absent") is None


@pytest.mark.parametrize(("setup", "message"), [
    ("empty", r"model.hf_id=.*: no config.json there .*give model.params_billion"),
    ("absent", r"model.hf_id='org/not-cached' is neither a folder here nor in the Hugging Face "
               r"cache .*models--org--not-cached.*give model.params_billion by hand"),
    ("unknown", r"its parameters cannot be derived — no \*.safetensors there and config.json "
                r"\(WeirdNet\) lacks layers, hidden_size, heads, vocab_size; give model.params_billion"),
    ("broken", r"config.json: not valid JSON"),
])
def test_a_model_without_readable_facts_is_refused_in_one_line(tmp_path, setup, message):
    folder = tmp_path / "m"
    folder.mkdir()
    hf_id = str(folder)
    if setup == "absent":
        hf_id = "org/not-cached"
    elif setup == "unknown":
        (folder / "config.json").write_text(json.dumps({"architectures": ["WeirdNet"]}))
    elif setup == "broken":
        (folder / "config.json").write_text("{not json")
    proc = run_cli("model=llm", f"model.hf_id={hf_id}", "dry_run=true", f"out_dir={tmp_path / 'out'}",
                   env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    import re

    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(message, lines[0]), proc.stderr
    assert not (tmp_path / "out" / "cells").exists()  # no cell (Hydra's own run log aside)


def test_a_model_file_that_contradicts_the_weights_is_warned(tiny, caplog):
    cell = compose_cell(["model=llama8b", f"model.hf_id={tiny}", "model.engine=transformers"])
    with caplog.at_level("WARNING"):
        cell.settings.model.sizes()
    assert "model.params_billion=8.03 (the model file) but" in caplog.text
    assert "safetensors headers" in caplog.text


def test_any_model_by_its_folder_is_planned_estimated_and_measured(tiny, tmp_path):
    """No model file: model=llm with the folder; the transformers engine on this CPU."""
    out = tmp_path / "out"
    proc = run_cli("model=llm", f"model.hf_id={tiny}", "model.engine=transformers",
                   "model.dtype=float32", "model.max_tokens=8", "dataset.n_train=8",
                   "dataset.n_test=4", "repetitions=1", "progress=false", "energy.interval_s=1",
                   f"out_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [path] = out.glob("cells/llm-demo-*/records.jsonl")
    record = json.loads(path.read_text().splitlines()[0])
    assert record["model"] == "llm" and record["model_display"] == tiny.name
    facts = record["model_facts"]
    assert facts["layers"] == 2 and facts["sources"]["params"] == "safetensors headers"
    assert record["quantization"] == "none" and record["serving"] == "16-bit weights on the CPU"
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["model_facts"]["params"] == facts["params"]


def _llama8b_shaped(folder: Path) -> Path:
    """Llama 3.1 8B's layout (32 layers, 8 KV heads of 128, 131072 tokens), its weights' size
    from the index (the weight files themselves absent)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32, "hidden_size": 4096,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "intermediate_size": 14336, "max_position_embeddings": 131072}))
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 16_060_522_496}}))
    return folder


def test_the_memory_check_counts_the_kv_cache_of_a_long_context(tmp_path):
    folder = _llama8b_shaped(tmp_path / "m")
    short = compose_cell(["model=llm", f"model.hf_id={folder}", "cluster=capella"])
    need = short.settings.model.gpu_memory()
    assert need.needed_gb == pytest.approx(16.06 * 1.15, rel=1e-3)  # the headroom holds its KV
    assert "holds the KV cache: 0.54 GB for 1 sequence x 4096 tokens x 2 x 32 attention layers " \
           "x 8 KV heads x 128 x 2 bytes" in need.how
    long = compose_cell(["model=llm", f"model.hf_id={folder}", "cluster=paula",
                         "model.context_length=131072"])
    need = long.settings.model.gpu_memory()
    kv = 2 * 32 * 8 * 128 * 2 * 131072 / 1e9
    assert need.needed_gb == pytest.approx(16.06 + kv + 16.06 * 0.05 + 1.0, rel=1e-3)
    assert need.how.startswith("16.1 GB weights + 17.2 GB KV cache (1 sequence x 131072 tokens")
    assert long.placement.gpus == 2  # 35 GB on 24 GB A30s (one holds the weights, not the KV)
    proc = run_cli("model=llm", f"model.hf_id={folder}", "cluster=paula", "gpus=1",
                   "model.context_length=131072", "dry_run=true", f"out_dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert "needs ~35 GB of GPU memory (16.1 GB weights + 17.2 GB KV cache" in proc.stderr


def test_a_context_longer_than_the_models_is_refused(tmp_path):
    folder = _llama8b_shaped(tmp_path / "m")
    proc = run_cli("model=llm", f"model.hf_id={folder}", "model.context_length=200000",
                   "dry_run=true", f"out_dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert ("model.context_length=200000 is more than " + str(folder) + " holds: 131072 tokens "
            "(its config.json)") in proc.stderr
