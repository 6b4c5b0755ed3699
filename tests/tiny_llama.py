"""A tiny Llama built on the fly: random weights, a BPE tokenizer trained here, a chat template.

head_dim is 32 so vLLM's CPU attention accepts it. Answers are random: tests assert the pipeline.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def byte_level_tokenizer(corpus: list[str], vocab_size: int, **specials: str):
    """A byte-level BPE trained here on ``corpus`` (a model's real tokenizer needs the hub), with
    ``<unk> <s> </s> <pad>`` and any further named special tokens (``cls_token="[CLS]"``), and
    the chat template above. Also the benchmarks' (benchmarks/gpu_check.py, llm_gpu_check.py)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                  special_tokens=["<unk>", "<s>", "</s>", "<pad>", *specials.values()],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>", **specials)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(path: Path, corpus: list[str] | None = None) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from energy_hpc.classifiers.llm.prompt import build_messages

    corpus = list(corpus or [])
    corpus += [m["content"] for m in build_messages("Hello there, the bus was late.", ["a", "b"])]
    corpus += ["[[ ## category ## ]]", "[[ ## completed ## ]]", "Grüße aus Öffentlichkeitsbeteiligung"]
    fast = byte_level_tokenizer(corpus * 3, 600)
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(path)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, head_dim=32,
                         max_position_embeddings=4096, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path
