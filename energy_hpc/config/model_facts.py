"""An LLM's facts read from its own files, offline: ``config.json`` and the safetensors headers.

A model is found as a local folder or in the Hugging Face cache (``HF_HUB_CACHE``, else
``HF_HOME/hub``, else ``~/.cache/huggingface/hub``); nothing is fetched (compute nodes often
cannot reach the hub). From ``config.json``: layers, hidden size, attention and KV heads, head dim,
context length, vocabulary, experts and experts per token, which layers are attention (hybrids),
the checkpoint's quantization. From the safetensors headers (8-byte length + JSON: dtype, shape,
offsets — no weights loaded): the exact weight bytes and, for an unquantized checkpoint, the exact
parameter count, the experts' share of it (tensors named ``.experts.``) and so the parameters one
token uses. Without the weight files, the index's ``total_size`` gives the bytes and the
parameters are estimated from the config. Each fact says where it came from (``sources``).
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from energy_hpc.config.quantization import checkpoint_method
from energy_hpc.errors import ConfigError

CONFIG_MAX_BYTES = 4 * 2**20
HEADER_MAX_BYTES = 100 * 2**20  # the safetensors format's own limit on a header
DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8,
               "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class ModelFacts:
    """What the model's files say; ``None`` where they do not."""

    folder: str
    architecture: str | None = None
    layers: int | None = None
    attention_layers: int | None = None
    # a hybrid's Mamba layers: their state per sequence (SSM d_inner x d_state + conv d_inner x
    # (d_conv - 1) values per layer), whatever the sequence's length
    mamba_state_values: int | None = None
    hidden_size: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    context_length: int | None = None
    vocab_size: int | None = None
    experts: int | None = None
    experts_per_token: int | None = None
    quantization: str | None = None
    quantization_bits: int | None = None
    embedding_params: int | None = None  # input embeddings and LM head (one matrix when tied)
    weight_bytes: int | None = None
    params: int | None = None
    active_params: int | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def params_billion(self) -> float | None:
        return self.params / 1e9 if self.params else None

    @property
    def active_params_billion(self) -> float | None:
        return self.active_params / 1e9 if self.active_params else None

    @property
    def weights_gb(self) -> float | None:
        return self.weight_bytes / 1e9 if self.weight_bytes else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def model_folder(hf_id: str, revision: str | None = None) -> Path | None:
    """A local folder, else the cached snapshot of a hub id (the revision's, else ``main``'s,
    else the only one); None when neither is here."""
    local = Path(hf_id).expanduser()
    if local.is_dir():
        return local
    if hf_id.count("/") != 1 or hf_id.startswith(("/", ".", "~")):
        return None
    repo = hub_cache() / ("models--" + hf_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = revision or "main"
    ref_file = repo / "refs" / ref
    commit = ref_file.read_text().strip() if ref_file.is_file() else ref
    if (snapshots / commit).is_dir():
        return snapshots / commit
    found = sorted(p for p in snapshots.iterdir() if p.is_dir())
    return found[0] if len(found) == 1 and revision is None else None


def _json(path: Path, limit: int) -> dict[str, Any]:
    if path.stat().st_size > limit:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes, more than the {limit} a model's "
                          "config may have; not read")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a JSON object was expected")
    return data


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name → dtype, shape, data_offsets)."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ConfigError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (size,) = struct.unpack("<Q", raw)
        if size > HEADER_MAX_BYTES:
            raise ConfigError(f"{path}: a header of {size} bytes is not a safetensors header")
        try:
            header = json.loads(fh.read(size))
        except ValueError as exc:
            raise ConfigError(f"{path}: the safetensors header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{path}: the safetensors header is not a JSON object")
    return header


def _int(cfg: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = cfg.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _attention_layers(cfg: dict[str, Any], layers: int | None) -> int | None:
    """Attention layers of a hybrid (Jamba, Qwen3-Next, LFM2…); all layers of a transformer."""
    types = cfg.get("layer_types") or cfg.get("layers_block_type")
    if isinstance(types, list) and types:
        return sum("attention" in str(t) or str(t) == "attention" for t in types)
    period, offset = _int(cfg, "attn_layer_period"), cfg.get("attn_layer_offset")
    if layers and period and isinstance(offset, int):
        return sum(1 for i in range(layers) if i % period == offset)
    return layers


def _mamba_state_values(cfg: dict[str, Any], f: dict[str, Any]) -> int | None:
    """Values of state a hybrid's Mamba layers keep per sequence (Jamba's ``mamba_d_state``,
    ``mamba_d_conv``, ``mamba_expand``; Mamba's ``state_size``, ``conv_kernel``, ``expand``)."""
    layers, attention, hidden = f["layers"], f["attention_layers"], f["hidden_size"]
    if not (layers and attention is not None and hidden) or attention >= layers:
        return None
    d_state = _int(cfg, "mamba_d_state", "state_size", "ssm_state_size")
    d_conv = _int(cfg, "mamba_d_conv", "conv_kernel")
    expand = _int(cfg, "mamba_expand", "expand")
    if not (d_state and d_conv and expand):
        return None
    inner = expand * hidden
    return (layers - attention) * (inner * d_state + inner * (d_conv - 1))


def _estimated_params(cfg: dict[str, Any], f: dict[str, Any]) -> tuple[int, int | None] | None:
    """Parameters (total, active) from a transformer's config, where no weight file says them:
    embeddings, attention, a gated MLP or its experts, per layer."""
    hidden, layers, vocab = f["hidden_size"], f["layers"], f["vocab_size"]
    heads, kv, head_dim = f["heads"], f["kv_heads"] or f["heads"], f["head_dim"]
    inter = _int(cfg, "intermediate_size")
    if not all((hidden, layers, vocab, heads, head_dim, inter)) or f["attention_layers"] != layers:
        return None
    embed = vocab * hidden * (1 if cfg.get("tie_word_embeddings") else 2)
    attn = hidden * heads * head_dim * 2 + hidden * kv * head_dim * 2
    experts, k = f["experts"], f["experts_per_token"]
    if experts:
        moe_inter = _int(cfg, "moe_intermediate_size") or inter
        mlp_total = experts * 3 * hidden * moe_inter + hidden * experts
        mlp_active = (k or experts) * 3 * hidden * moe_inter + hidden * experts
    else:
        mlp_total = mlp_active = 3 * hidden * inter
    total = embed + layers * (attn + mlp_total + 2 * hidden) + hidden
    active = embed + layers * (attn + mlp_active + 2 * hidden) + hidden if experts else None
    return total, active


@lru_cache(maxsize=64)
def _read(folder: str, mtime: float) -> ModelFacts:
    path = Path(folder)
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"model.hf_id={folder}: no config.json there (a model folder holds "
                          "config.json and its *.safetensors); point model.hf_id at the folder "
                          "transformers' save_pretrained wrote, or give model.params_billion and "
                          "model.context_length by hand")
    top = _json(config_path, CONFIG_MAX_BYTES)
    cfg = top.get("text_config") if isinstance(top.get("text_config"), dict) else top
    src: dict[str, str] = {}
    f: dict[str, Any] = {}
    archs = top.get("architectures")
    f["architecture"] = archs[0] if isinstance(archs, list) and archs else top.get("model_type")
    f["layers"] = _int(cfg, "num_hidden_layers", "n_layer", "num_layers")
    f["hidden_size"] = _int(cfg, "hidden_size", "n_embd", "d_model")
    f["heads"] = _int(cfg, "num_attention_heads", "n_head")
    f["kv_heads"] = _int(cfg, "num_key_value_heads", "num_kv_heads") or f["heads"]
    f["head_dim"] = _int(cfg, "head_dim") or (
        f["hidden_size"] // f["heads"] if f["hidden_size"] and f["heads"] else None)
    f["context_length"] = _int(cfg, "max_position_embeddings", "max_sequence_length", "n_positions",
                               "seq_length")
    f["vocab_size"] = _int(cfg, "vocab_size")
    f["experts"] = _int(cfg, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
    f["experts_per_token"] = _int(cfg, "num_experts_per_tok", "num_experts_per_token", "moe_top_k")
    f["attention_layers"] = _attention_layers(cfg, f["layers"])
    f["mamba_state_values"] = _mamba_state_values(cfg, f)
    f["quantization"], f["quantization_bits"] = checkpoint_method(
        top.get("quantization_config") or cfg.get("quantization_config"))
    tied = cfg.get("tie_word_embeddings", top.get("tie_word_embeddings"))
    f["embedding_params"] = (f["vocab_size"] * f["hidden_size"] * (1 if tied else 2)
                             if f["vocab_size"] and f["hidden_size"] else None)
    for key, value in f.items():
        if value is not None:
            src[key] = "config.json"
    files = sorted(path.glob("*.safetensors"))
    index = path / "model.safetensors.index.json"
    weight_bytes = params = expert_params = None
    if files:
        weight_bytes = params = expert_params = 0
        for file in files:
            for name, tensor in safetensors_header(file).items():
                if name == "__metadata__" or not isinstance(tensor, dict):
                    continue
                start, end = tensor.get("data_offsets", (0, 0))
                weight_bytes += int(end) - int(start)
                numel = math.prod(int(d) for d in tensor.get("shape", []))
                params += numel
                if ".experts." in name:
                    expert_params += numel
        src["weight_bytes"] = f"safetensors headers ({len(files)} file(s))"
        if f["quantization"]:
            params = None  # packed integers: element counts are not parameters
        else:
            src["params"] = "safetensors headers"
    elif index.is_file():
        total = (_json(index, 64 * 2**20).get("metadata") or {}).get("total_size")
        if isinstance(total, int) and total > 0:
            weight_bytes = total
            src["weight_bytes"] = "model.safetensors.index.json total_size (weight files absent)"
    active = None
    if params and f["experts"] and f["experts_per_token"] and expert_params:
        active = params - round(expert_params * (1 - f["experts_per_token"] / f["experts"]))
        src["active_params"] = "safetensors headers (tensors of .experts.) and config.json"
    if params is None:
        estimate = _estimated_params(cfg, f)
        if estimate:
            params, active = estimate
            src["params"] = "config.json (estimated: embeddings, attention, gated MLP)"
            if active:
                src["active_params"] = src["params"]
    return ModelFacts(folder=folder, weight_bytes=weight_bytes, params=params or None,
                      active_params=active, sources=src, **f)


def read_facts(hf_id: str, revision: str | None = None) -> ModelFacts | None:
    """The facts of the model at ``hf_id`` (folder or cached hub id), None when it is not here."""
    folder = model_folder(hf_id, revision)
    if folder is None:
        return None
    config = folder / "config.json"
    mtime = config.stat().st_mtime if config.exists() else 0.0
    return _read(str(folder), mtime)


def not_here(hf_id: str) -> str:
    """Why no facts could be read for ``hf_id``, and what to do (one line)."""
    where = hub_cache() / ("models--" + hf_id.replace("/", "--"))
    return (f"model.hf_id={hf_id!r} is neither a folder here nor in the Hugging Face cache ({where}); "
            "energy_hpc reads a model's facts offline, from its files: download it there (or point "
            "HF_HUB_CACHE at the cluster's cache), or give model.params_billion by hand")


__all__ = ["ModelFacts", "model_folder", "not_here", "read_facts", "safetensors_header"]
