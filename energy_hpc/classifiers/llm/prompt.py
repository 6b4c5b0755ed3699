"""The paper's zero-shot prompt (dspy's chat format, Appendix A), plus the options it lacked.

The system and user messages reproduce the paper's English form exactly. ``language="de"`` gives
our German rendering of the instruction (the paper's German original is not printed); ``few_shot``
adds k demonstrations from the split's training part as user/assistant turns, as dspy does.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from energy_hpc.errors import ConfigError

MARKER_OPEN = "[[ ##"
MARKER_CLOSE = "## ]]"

SYSTEM_TEMPLATE = """Your input fields are:
1. `text` (str)

Your output fields are:
1. `category` (str)

All interactions will be structured in the following way, with the appropriate values filled in.

[[ ## text ## ]]
{{text}}

[[ ## category ## ]]
{{category}}

[[ ## completed ## ]]

In adhering to this structure, your objective is:
        {instruction}
{category_lines}"""

INSTRUCTIONS = {
    "en": "Classify the text as one of the following categories:",
    "de": "Klassifiziere den Text als eine der folgenden Kategorien:",
}

USER_TEMPLATE = """[[ ## text ## ]]
{text}

Respond with the corresponding output fields, starting with the field `[[ ## category ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`."""

ASSISTANT_TEMPLATE = """[[ ## category ## ]]
{category}

[[ ## completed ## ]]"""
# the answer up to where the category's value begins: what decoding=score appends to the prompt
ANSWER_PREFIX = ASSISTANT_TEMPLATE.split("{category}")[0]


def check_categories(categories: Sequence[str]) -> list[str]:
    """Categories must be non-empty, distinct (after normalisation) and free of the marker syntax."""
    cats = [str(c) for c in categories]
    if not cats:
        raise ConfigError("the category list is empty; the dataset has no labels to classify into")
    seen: dict[str, str] = {}
    for c in cats:
        if not c.strip():
            raise ConfigError(f"category {c!r} is empty or whitespace")
        if MARKER_OPEN in c or MARKER_CLOSE in c:
            raise ConfigError(f"category {c!r} contains the prompt's field marker syntax '[[ ## … ## ]]'; "
                              "rename it (dataset.label_map) so answers can be parsed")
        key = normalise(c)
        if key in seen:
            raise ConfigError(f"categories {seen[key]!r} and {c!r} are duplicates (they differ only in "
                              "case, spacing or Unicode form); merge them with dataset.label_map")
        seen[key] = c
    return cats


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def system_message(categories: Sequence[str], language: str = "en") -> str:
    if language not in INSTRUCTIONS:
        raise ConfigError(f"model.instruction_language={language!r}; use one of {', '.join(INSTRUCTIONS)}")
    lines = "\n".join(f"        - {c}" for c in categories)
    return SYSTEM_TEMPLATE.format(instruction=INSTRUCTIONS[language], category_lines=lines)


def build_messages(text: str, categories: Sequence[str], language: str = "en",
                   demos: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
    """System message, optional demonstrations, then the text to classify."""
    messages = [{"role": "system", "content": system_message(categories, language)}]
    for demo_text, demo_label in demos:
        messages.append({"role": "user", "content": USER_TEMPLATE.format(text=demo_text)})
        messages.append({"role": "assistant", "content": ASSISTANT_TEMPLATE.format(category=demo_label)})
    messages.append({"role": "user", "content": USER_TEMPLATE.format(text=text)})
    return messages
