"""From a model's answer to one of the categories, or ``None`` (counted wrong, raises invalid_rate)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from energy_hpc.classifiers.llm.prompt import normalise

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FIELD = re.compile(r"\[\[\s*##\s*category\s*##\s*\]\]\s*(.*?)(?=\[\[\s*##|\Z)", re.DOTALL | re.IGNORECASE)
_STRIP = " \t\r\n\"'`*.:;,-_()[]{}«»„“”"


def drop_reasoning(output: str) -> str | None:
    """Remove DeepSeek-R1 ``<think>…</think>`` blocks; an unfinished block leaves no answer."""
    text = _THINK.sub("", output)
    if "</think>" in text.lower():  # opening tag was in the prompt: keep what follows the last close
        text = re.split(r"</think>", text, flags=re.IGNORECASE)[-1]
    if "<think>" in text.lower():
        return None
    return text


def extract_field(text: str) -> str:
    """The ``category`` field between its marker and the next marker; the whole text without markers."""
    match = _FIELD.search(text)
    return match.group(1) if match else text


def match_category(answer: str, categories: Sequence[str]) -> tuple[str | None, str]:
    """Exact, then normalised (case, spacing, Unicode, quotes), then a conservative closest match."""
    stripped = answer.strip()
    if stripped in categories:
        return stripped, "exact"
    norm = {normalise(c): c for c in categories}
    key = normalise(stripped.strip(_STRIP))
    if key in norm:
        return norm[key], "normalised"
    first_line = normalise(stripped.splitlines()[0].strip(_STRIP)) if stripped else ""
    if first_line in norm:
        return norm[first_line], "normalised"
    contained = [c for k, c in norm.items() if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", key)]
    if len(contained) == 1:
        return contained[0], "contained"
    close = difflib.get_close_matches(key, list(norm), n=2, cutoff=0.85)
    if len(close) == 1 or (len(close) == 2 and difflib.SequenceMatcher(None, key, close[0]).ratio()
                           - difflib.SequenceMatcher(None, key, close[1]).ratio() > 0.05):
        return norm[close[0]], "closest"
    return None, "invalid"


def parse_answer(output: str, categories: Sequence[str]) -> tuple[str | None, str]:
    text = drop_reasoning(output)
    if text is None:
        return None, "unfinished-reasoning"
    return match_category(extract_field(text), categories)
