"""Repeated stratified train/test splits, deterministic from the seed and identical for every model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


def _class_counts(labels: pd.Series) -> str:
    return ", ".join(f"{k}: {v}" for k, v in labels.value_counts().sort_index().items())


def _check_stratifiable(labels: pd.Series, where: str, n_a: int, n_b: int) -> None:
    counts = labels.value_counts()
    small = counts[counts < 2]
    if len(small):
        raise DataError(
            f"{where}: class(es) {sorted(small.index)} have fewer than 2 rows, too few for a "
            f"stratified split. Class counts: {_class_counts(labels)}. Drop them with "
            "dataset.min_class_size=2 (or larger)."
        )
    n_classes = len(counts)
    if min(n_a, n_b) < n_classes:
        raise DataError(
            f"{where}: a stratified split needs at least one row per class on each side, but "
            f"train={n_a}, test={n_b} with {n_classes} classes. Class counts: {_class_counts(labels)}"
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


def make_splits(corpus: Corpus, cfg: DatasetConfig, repetitions: int, seed: int) -> list[Split]:
    """Split ``i`` uses seed ``seed + i`` and depends on nothing but the data and the seed."""
    splits = []
    pool = corpus.pool
    for i in range(repetitions):
        s = seed + i
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
        splits.append(Split(i, s, train, test))
    return splits
