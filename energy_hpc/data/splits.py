"""Repeated stratified train/test splits, deterministic from the seed and identical for every model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import pandas as pd

from energy_hpc.config import DatasetConfig
from energy_hpc.data.loading import Corpus
from energy_hpc.errors import DataError


@dataclass
class Split:
    index: int
    seed: int
    train: pd.DataFrame
    test: pd.DataFrame

    @staticmethod
    def _hash(frame: pd.DataFrame) -> str:
        h = hashlib.sha256()
        for row_id, text, label in zip(frame.index, frame["text"], frame["label"], strict=True):
            h.update(f"{row_id}\x1f{text}\x1f{label}\x1e".encode())
        return h.hexdigest()[:16]

    @property
    def train_fingerprint(self) -> str:
        return self._hash(self.train)

    @property
    def test_fingerprint(self) -> str:
        return self._hash(self.test)


def _class_counts(labels: pd.Series, shown: int = 8) -> str:
    """The class counts, the smallest first; only a few when there are many."""
    counts = labels.value_counts().sort_values(kind="stable")
    head = ", ".join(f"{k}: {v}" for k, v in counts.head(shown).items())
    if len(counts) <= shown:
        return head
    return f"{len(counts)} classes, the smallest {head}, …"


def _names(values: list, shown: int = 5) -> str:
    head = ", ".join(repr(v) for v in values[:shown])
    return head if len(values) <= shown else f"{head} and {len(values) - shown} more"


def _check_stratifiable(labels: pd.Series, where: str, n_a: int, n_b: int) -> None:
    counts = labels.value_counts()
    small = counts[counts < 2]
    if len(small):
        raise DataError(
            f"{where}: {len(small)} class(es) have fewer than 2 rows, too few for a stratified "
            f"split ({_names(sorted(small.index, key=str))}). Class counts: "
            f"{_class_counts(labels)}. Drop them with dataset.min_class_size=2 (or larger)"
            + (", or check dataset.label_column: this many classes looks like an id or text "
               "column" if len(counts) > 100 else "") + "."
        )
    n_classes = len(counts)
    if min(n_a, n_b) < n_classes:
        raise DataError(
            f"{where}: a stratified split needs at least one row per class on each side, but "
            f"train={n_a}, test={n_b} with {n_classes} classes. Class counts: "
            f"{_class_counts(labels)}. Raise dataset.n_train / dataset.n_test, merge classes with "
            "dataset.label_map or drop the rare ones with dataset.min_class_size=N"
        )


def train_test_split(*args, **kwargs):  # noqa: ANN002, ANN003 - scikit-learn's, imported on use
    """scikit-learn's ``train_test_split``, imported when a split is made (planning a sweep reads
    datasets without paying scikit-learn's second of import time)."""
    from sklearn.model_selection import train_test_split as split

    return split(*args, **kwargs)


def _sample(frame: pd.DataFrame, n: int, seed: int, where: str) -> pd.DataFrame:
    if n > len(frame):
        raise DataError(f"{where}: asked for {n} rows but only {len(frame)} are available")
    if n == len(frame):
        return frame
    _check_stratifiable(frame["label"], where, n, len(frame) - n)
    picked, _ = train_test_split(frame.index.to_numpy(), train_size=n, stratify=frame["label"],
                                 random_state=seed)
    return frame.loc[np.sort(picked)]


class Splits(Sequence[Split]):
    """The cell's splits, each drawn when asked for (from the data and ``seed + i`` alone, so the
    same as drawing them all up front): memory does not grow with the repetition count. The
    first split is drawn on creation, so data that cannot be split fails before anything runs."""

    def __init__(self, corpus: Corpus, cfg: DatasetConfig, repetitions: int, seed: int) -> None:
        self.corpus, self.cfg, self.repetitions, self.seed = corpus, cfg, repetitions, seed
        if repetitions:
            self[0]

    def __len__(self) -> int:
        return self.repetitions

    @overload
    def __getitem__(self, i: int) -> Split: ...

    @overload
    def __getitem__(self, i: slice) -> list[Split]: ...

    def __getitem__(self, i: int | slice) -> Split | list[Split]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return draw_split(self.corpus, self.cfg, i, self.seed + i)


def make_splits(corpus: Corpus, cfg: DatasetConfig, repetitions: int, seed: int) -> Splits:
    """Split ``i`` uses seed ``seed + i`` and depends on nothing but the data and the seed."""
    return Splits(corpus, cfg, repetitions, seed)


def draw_split(corpus: Corpus, cfg: DatasetConfig, i: int, s: int) -> Split:
    pool = corpus.pool
    where = f"dataset {cfg.name!r}"
    if cfg.test_fraction is not None:
        n_test = int(round(len(pool) * cfg.test_fraction))
        _check_stratifiable(pool["label"], where, len(pool) - n_test, n_test)
        train_idx, test_idx = train_test_split(pool.index.to_numpy(), test_size=n_test,
                                               stratify=pool["label"], random_state=s)
        train, test = pool.loc[np.sort(train_idx)], pool.loc[np.sort(test_idx)]
    elif corpus.test_pool is not None:
        train = _sample(pool, cfg.n_train, s, where + " [train]")
        test = _sample(corpus.test_pool, cfg.n_test, s, where + " [test]")
    else:
        n_train, n_test = cfg.n_train, cfg.n_test
        if n_train + n_test > len(pool):
            raise DataError(
                f"{where}: n_train={n_train} + n_test={n_test} = {n_train + n_test} is more "
                f"than the {len(pool)} rows available; lower dataset.n_train / dataset.n_test"
            )
        _check_stratifiable(pool["label"], where, n_train, n_test)
        train_idx, test_idx = train_test_split(pool.index.to_numpy(), train_size=n_train,
                                               test_size=n_test, stratify=pool["label"],
                                               random_state=s)
        train, test = pool.loc[np.sort(train_idx)], pool.loc[np.sort(test_idx)]
    return Split(i, s, train, test)
