"""Datasets: loading (bundled demo, local files, Hugging Face), cleaning, repeated stratified splits."""

from __future__ import annotations

from energy_hpc.data.loading import Corpus, load_corpus
from energy_hpc.data.splits import Split, make_splits

__all__ = ["Corpus", "Split", "load_corpus", "make_splits"]
