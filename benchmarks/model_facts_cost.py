"""What reading a model's own facts adds to planning (issue 26): composing and placing one cell of
a paper model whose files are not here (its facts cost a ``stat``) against one of a model known
only by its folder, whose config.json and safetensors headers are read — a 70B-shaped checkpoint
of 30 shards (sparse files: the headers are real, the weights are holes) and the index alone.
The facts are read afresh for every cell here (the cache cleared); in a sweep they are read once
per distinct model.

    python benchmarks/model_facts_cost.py [--cells 20]

Prints ms per cell and the ratio to the paper model's, and the facts' read alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def seventy_b(folder: Path, shards: int = 30) -> Path:
    """Llama 3.1 70B's layout: 80 layers of 9 tensors + embeddings, head and norm, in 30 shards."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "num_hidden_layers": 80, "hidden_size": 8192,
        "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256,
        "intermediate_size": 28672, "max_position_embeddings": 131072}))
    h, kv, inter = 8192, 1024, 28672
    layer = {"self_attn.q_proj.weight": [h, h], "self_attn.k_proj.weight": [kv, h],
             "self_attn.v_proj.weight": [kv, h], "self_attn.o_proj.weight": [h, h],
             "mlp.gate_proj.weight": [inter, h], "mlp.up_proj.weight": [inter, h],
             "mlp.down_proj.weight": [h, inter], "input_layernorm.weight": [h],
             "post_attention_layernorm.weight": [h]}
    tensors = {"model.embed_tokens.weight": [128256, h], "lm_head.weight": [128256, h],
               "model.norm.weight": [h]}
    for i in range(80):
        tensors.update({f"model.layers.{i}.{k}": v for k, v in layer.items()})
    names = list(tensors)
    for s in range(shards):
        header, offset = {}, 0
        for name in names[s::shards]:
            n = 2
            for d in tensors[name]:
                n *= d
            header[name] = {"dtype": "BF16", "shape": tensors[name], "data_offsets": [offset, offset + n]}
            offset += n
        raw = json.dumps(header).encode()
        path = folder / f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        with open(path, "wb") as fh:
            fh.write(struct.pack("<Q", len(raw)) + raw)
            fh.truncate(8 + len(raw) + offset)  # a hole, not 141 GB on disk
    return folder


def index_only(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text((Path(folder.parent / "70b") / "config.json").read_text())
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 141_107_412_992}, "weight_map": {}}))
    return folder


def per_cell_ms(overrides: list[str], cells: int) -> float:
    from energy_hpc.cell import compose_cell
    from energy_hpc.config.model_facts import _read

    times = []
    for _ in range(cells):
        _read.cache_clear()
        t0 = time.perf_counter()
        compose_cell(overrides)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=20)
    args = ap.parse_args()
    from energy_hpc.config.model_facts import _read, read_facts

    with tempfile.TemporaryDirectory() as tmp:
        big = seventy_b(Path(tmp) / "70b")
        idx = index_only(Path(tmp) / "index")
        per_cell_ms(["model=llama70b", "cluster=capella"], 3)  # imports and Hydra warmed
        base = per_cell_ms(["model=llama70b", "cluster=capella"], args.cells)
        rows = [("llama70b (model file; its files not here)", base)]
        for label, folder in (("model=llm, 70B folder: config + 30 safetensors headers", big),
                              ("model=llm, 70B folder: config + index only", idx)):
            rows.append((label, per_cell_ms(["model=llm", f"model.hf_id={folder}", "cluster=capella"],
                                            args.cells)))
        reads = []
        for _ in range(args.cells):
            _read.cache_clear()
            t0 = time.perf_counter()
            facts = read_facts(str(big))
            reads.append((time.perf_counter() - t0) * 1000)
        print(f"facts of the 30-shard folder: {facts.params / 1e9:.1f} B parameters, "
              f"{facts.weight_bytes / 1e9:.1f} GB; read alone: {statistics.median(reads):.2f} ms")
    for label, ms in rows:
        print(f"{label:58s} {ms:8.1f} ms per cell   x{ms / base:.2f}")


if __name__ == "__main__":
    main()
