"""The generous rule of thumb ``pack=auto`` fills jobs by when nothing else estimates a cell (an
LLM on a cluster without datasheet facts): the model's :class:`~energy_hpc.config.RoughSeconds`.
It is no estimate (``--time`` then asks for the cluster's time limit), only a bound for packing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from energy_hpc.cell import Cell


def rule_of_thumb_s(cell: Cell) -> float:
    """When nothing estimates a cell (packing only; ``--time`` then asks for the time limit): the
    model's generous :class:`~energy_hpc.config.RoughSeconds` (a load once; per split a warm-up
    and a measured window, the pass's texts and the fit), e.g. an LLM's 10 min load and 4 s
    (sequential) or 0.5 s (batched) per test text."""
    s = cell.settings
    window = max(s.energy.min_window_s, 0.5) + s.energy.idle_baseline_s
    n_test = s.dataset.n_test or 200
    rough = s.model.rough_seconds()
    return rough.load_s + s.repetitions * (2 * window + n_test * rough.per_text_s
                                           + rough.per_split_s)
