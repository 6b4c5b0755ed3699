"""Zero-shot (or k-shot) LLM classification: the paper's prompt, an engine, and answer parsing."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from energy_hpc.classifiers.base import ClassifierContext, Prediction
from energy_hpc.classifiers.llm.engines import Completion, build_engine
from energy_hpc.classifiers.llm.parsing import parse_answer
from energy_hpc.classifiers.llm.prompt import build_messages, check_categories
from energy_hpc.config import LLMModelConfig
from energy_hpc.errors import ConfigError

log = logging.getLogger(__name__)

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class LLMClassifier:
    """``fit`` only picks few-shot demonstrations (zero-shot by default); ``predict`` prompts the engine."""

    def __init__(self, model: LLMModelConfig, context: ClassifierContext, engine: Any = None) -> None:
        self.model = model
        self.categories = check_categories(list(context.categories))
        self.load_info: dict[str, Any] = {}  # engine_load_s, engine_reused: into the records
        if engine is None:
            engine, self.load_info = build_engine(model, context)
        self.engine = engine
        self.demos: list[tuple[str, str]] = []
        self._overhead: int | None = None
        # nothing is trained: the fit is recorded as 0 Wh with this reason, not measured
        self.fit_note = ("few-shot: demonstrations picked, nothing trained (their cost is in the "
                         "longer prompts)" if model.few_shot else "zero-shot: nothing to fit")

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        """Pick k demonstrations, one class after another in the split's training order."""
        k = self.model.few_shot
        self.demos = []
        if not k:
            return
        by_class: dict[str, list[str]] = {c: [] for c in self.categories}
        for text, label in zip(texts, labels, strict=True):
            by_class.setdefault(label, []).append(text)
        i = 0
        while len(self.demos) < k and i < k * len(self.categories):
            label = self.categories[i % len(self.categories)]
            pool = by_class.get(label, [])
            if i // len(self.categories) < len(pool):
                self.demos.append((pool[i // len(self.categories)], label))
            i += 1

    def _budget(self) -> int:
        if self._overhead is None:
            tok = self.engine.tokenizer
            empty = build_messages("", self.categories, self.model.instruction_language, self.demos)
            prompt = tok.apply_chat_template(empty, add_generation_prompt=True, tokenize=False)
            self._overhead = len(tok(prompt, add_special_tokens=False)["input_ids"])
        budget = (self.model.context_length - self.model.max_tokens - (self.model.thinking_tokens or 0)
                  - self._overhead - 8 - (16 if self.model.thinking_tokens is not None else 0))
        if budget <= 0:
            raise ConfigError(
                f"model.context_length={self.model.context_length} leaves no room for the text: the "
                f"prompt takes {self._overhead} tokens and model.max_tokens={self.model.max_tokens}"
                + (f" plus model.thinking_tokens={self.model.thinking_tokens}"
                   if self.model.thinking_tokens is not None else "")
                + "; raise model.context_length or lower those")
        return budget

    def truncate(self, texts: Sequence[str]) -> tuple[list[str], int]:
        """Cut texts that would overflow the context; return them and how many were cut."""
        budget, tok = self._budget(), self.engine.tokenizer
        out, cut = [], 0
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            if len(ids) > budget:
                text = tok.decode(ids[:budget], skip_special_tokens=True)
                cut += 1
            out.append(text)
        return out, cut

    def predict(self, texts: Sequence[str]) -> Prediction:
        texts, cut = self.truncate(texts)
        batch = [build_messages(t, self.categories, self.model.instruction_language, self.demos)
                 for t in texts]
        if cut:
            log.warning("%d text(s) longer than the context were truncated", cut)
        tokens = Counter[str]()
        if self.model.decoding == "score":
            return self._scored(batch, cut, tokens)
        if self.model.thinking_tokens is not None:
            return self._bounded(batch, cut, tokens)
        choices = self.categories if self.model.decoding == "choice" else None
        outputs = []
        for group in self._groups(batch):
            outputs += self.engine.generate(group, self.model.max_tokens, choices)
            tokens.update(getattr(self.engine, "last_tokens", {}))
        parsed = [parse_answer(o, self.categories) for o in outputs]
        return Prediction(labels=[label for label, _ in parsed], raw=list(outputs),
                          info={"truncated_texts": cut,
                                "parse_methods": dict(Counter(how for _, how in parsed)),
                                **self._token_means(tokens, len(batch))})

    def _scored(self, batch: list, cut: int, tokens: Counter) -> Prediction:
        """decoding=score: the category of highest summed log-probability, no generation; the
        margin to the runner-up is its confidence. No answer can be invalid (invalid_rate 0 by
        construction: a different method from free generation, not a faster copy of it)."""
        rows: list[list[float]] = []
        for group in self._groups(batch):
            rows += self.engine.score(group, self.categories)
            tokens.update(getattr(self.engine, "last_tokens", {}))
        labels, margins = [], []
        for row in rows:
            order = sorted(range(len(row)), key=row.__getitem__, reverse=True)
            labels.append(self.categories[order[0]])
            margins.append(row[order[0]] - row[order[1]] if len(row) > 1 else 0.0)
        return Prediction(labels=labels, raw=[f"{label}\t{row}" for label, row in zip(labels, rows, strict=True)],
                          info={"truncated_texts": cut, "parse_methods": {"scored": len(labels)},
                                "score_margin_mean": sum(margins) / len(margins) if margins else None,
                                **self._token_means(tokens, len(batch))})

    def _bounded(self, batch: list, cut: int, tokens: Counter) -> Prediction:
        """A reasoning model with a thinking budget: it thinks until it closes its ``<think>``
        block or has thought ``thinking_tokens`` tokens; then the block is closed for it and it
        answers in up to ``max_tokens``. ``thinking_tokens=0`` skips the thinking (the closed
        empty block DeepSeek-R1's distills answer after). Answers forced at the cap are counted."""
        tok, budget = self.engine.tokenizer, self.model.thinking_tokens or 0
        prompts = []
        for messages in batch:
            prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            prompts.append(prompt if prompt.rstrip().endswith(THINK_OPEN) else prompt + THINK_OPEN + "\n")
        outputs, thought, capped = [], [], 0
        for group in self._groups(prompts):
            if budget:
                thinking = self.engine.complete(group, budget, stop=[THINK_CLOSE])
                tokens.update(getattr(self.engine, "last_tokens", {}))
            else:
                thinking = [Completion("", 0, False)] * len(group)
            capped += sum(not t.stopped for t in thinking)
            thought += [t.tokens for t in thinking]
            answers = self.engine.complete(
                [p + t.text + f"\n{THINK_CLOSE}\n\n" for p, t in zip(group, thinking, strict=True)],
                self.model.max_tokens)
            answer_tokens = getattr(self.engine, "last_tokens", {})
            tokens.update({"output": answer_tokens.get("output", 0)})
            if not budget:
                tokens.update({"prompt": answer_tokens.get("prompt", 0)})
            outputs += [t.text + THINK_CLOSE + a.text for t, a in zip(thinking, answers, strict=True)]
        parsed = [parse_answer(o, self.categories) for o in outputs]
        return Prediction(labels=[label for label, _ in parsed], raw=outputs,
                          info={"truncated_texts": cut,
                                "parse_methods": dict(Counter(how for _, how in parsed)),
                                "thinking_capped": capped,
                                "thinking_tokens_mean": sum(thought) / len(thought) if thought else None,
                                **self._token_means(tokens, len(batch))})

    def _groups(self, items: list) -> list[list]:
        """What one engine call gets: every prompt at once (batched), or one at a time."""
        return [items] if self.model.batching == "batched" else [[item] for item in items]

    @staticmethod
    def _token_means(tokens: Counter, n: int) -> dict[str, float | None]:
        """Prompt and generated tokens per text, where the engine counts them."""
        if not n or not tokens:
            return {"prompt_tokens_mean": None, "output_tokens_mean": None}
        out = {"prompt_tokens_mean": tokens["prompt"] / n, "output_tokens_mean": tokens["output"] / n}
        if tokens.get("requests"):  # engine requests per text (vLLM's score: 1, or one per category)
            out["requests_per_text"] = tokens["requests"] / n
        return out

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {"hf_id": m.hf_id, "revision": m.revision, "engine": m.engine, "dtype": m.dtype,
                "decoding": m.decoding, "batching": m.batching, "max_tokens": m.max_tokens,
                "few_shot": m.few_shot, "instruction_language": m.instruction_language,
                "load_format": m.load_format, "quantization": m.quantization_plan().label,
                "thinking_tokens": m.thinking_tokens}
