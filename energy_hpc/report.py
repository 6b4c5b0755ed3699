"""``python -m energy_hpc.report FOLDER… --out DIR``: the paper's tables, figures and a recommendation.

Reads only records, so it works on results from any cluster, old or new.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from energy_hpc.analysis.figures import drawn_configurations, grade_note, make_figures
from energy_hpc.analysis.payback import break_even_table, total_cost_table
from energy_hpc.analysis.quality import grade_label, meter_agreement
from energy_hpc.analysis.recommend import cheapest_ways, recommend_all
from energy_hpc.analysis.summary import left_out_reasons, model_labels, summarize
from energy_hpc.analysis.tables import (
    as_markdown,
    estimates_by_cell,
    table_b1,
    table_b2,
    table_b3,
    table_b6,
    table_b45,
    table_estimates,
    table_llm_methods,
    table_precisions,
    table_site_accounting,
    write_table,
)
from energy_hpc.errors import UserError
from energy_hpc.results import find_record_files, load
from energy_hpc.safe_paths import file_name, open_file, umask

log = logging.getLogger("energy_hpc.report")

ANALYSIS_MODULES = ("matplotlib", "statsmodels", "tabulate")


def missing_modules(names: tuple[str, ...]) -> list[str]:
    import importlib.util

    return [name for name in names if importlib.util.find_spec(name) is None]


def mixed_input_cells(records: pd.DataFrame) -> list[str]:
    """Cells whose records disagree on what defines the measurement but is not in the cell id
    (written before resumes were checked, or merged by hand)."""
    keys = [k for k in ("dataset_fingerprint", "model_weights") if k in records]
    if not keys or "cell_id" not in records:
        return []
    counts = records.groupby("cell_id")[keys].nunique()
    return sorted(counts.index[(counts > 1).any(axis=1)])


def build_report(folders: list[str], out: Path, floor: float | None = None,
                 within: float | None = None, with_paper: bool = True,
                 progress: bool = True, volume: int | None = None,
                 overlapping_splits: str = "exclude") -> Path:
    """Build the report in a folder beside ``out`` and put it in place whole: an existing report
    there is replaced only by a complete one; a failure or Ctrl-C leaves it as it was."""
    import shutil
    import tempfile

    out = Path(out)
    refuse_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        _write_report(folders, stage, floor, within, with_paper, progress, volume,
                      overlapping_splits)
        _put_in_place(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out / "report.md"


def billed_lines(summary: pd.DataFrame) -> list[str]:
    """What exclusivity cost: configurations whose job held more GPUs than the cell used (an
    --exclusive job holds every GPU of its nodes, and the site bills them)."""
    if "billed_gpus" not in summary or "gpus" not in summary:
        return []
    billed = pd.to_numeric(summary["billed_gpus"], errors="coerce")
    used = pd.to_numeric(summary["gpus"], errors="coerce")
    over = summary[(billed > used) & (used > 0)]
    if over.empty:
        return []
    items = []
    for label, row in zip(model_labels(over), over.itertuples(), strict=True):
        b, g = int(row.billed_gpus), int(row.gpus)
        per_1000 = ""
        dur, n = getattr(row, "duration_s_mean", None), getattr(row, "n_test", None)
        if dur is not None and n and not pd.isna(dur) and not pd.isna(n):
            gpu_h = dur / float(n) * 1000 / 3600
            per_1000 = f"; per 1000 texts {gpu_h * g:.3g} GPU-h used, {gpu_h * b:.3g} billed"
        items.append(f"{label} on {row.cluster}: {b} GPU(s) held --exclusive for its {g} "
                     f"({b / g:.0f}x the GPU-hours{per_1000})")
    return [f"**Allocation billed**: {len(over)} configuration(s) ran in jobs holding whole "
            "nodes — " + "; ".join(items) + ". `cluster.isolation=attribute` holds only the "
            "cell's GPUs and attributes what neighbours add (docs/measurement.md#isolation).", ""]


def refuse_out(out: Path) -> None:
    """An ``--out`` the report must not replace: a file, or a folder holding something else."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; the report is a folder (report.md, tables/, "
                        "figures/): choose a folder name")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.md").is_file():
        raise UserError(f"--out {out} is a folder that holds no energy_hpc report (no report.md); "
                        "it would be replaced: choose an empty or new folder")


def _put_in_place(stage: Path, out: Path) -> None:
    """Swap the built report in under a lock, so two reports into one ``--out`` never mix: the
    later one wins whole."""
    import fcntl
    import os
    import shutil
    import tempfile

    with open_file(out.parent / f".{out.name}.report-lock", "a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        refuse_out(out)  # again: something may have appeared there while the report was built
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "report")
        os.chmod(stage, 0o777 & ~umask())  # mkdtemp's 0700: as a plain mkdir would
        os.rename(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write_report(folders: list[str], out: Path, floor: float | None, within: float | None,
                  with_paper: bool, progress: bool, volume: int | None,
                  overlapping_splits: str) -> Path:
    try:
        files = find_record_files(folders)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    if not files:
        raise UserError(f"no records.jsonl under {', '.join(folders)}; "
                         "point it at an out_dir of energy_hpc (default energy_results)")
    records = load(files, progress=progress)
    if records.empty:
        raise UserError(f"{len(files)} record file(s) found but none readable "
                         "(see the warnings above)")
    summary = summarize(records, overlapping_splits)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "cells.csv", index=False)
    tables_dir, fig_dir = out / "tables", out / "figures"
    datasets = list(dict.fromkeys(summary["dataset"]))

    sections: list[str] = ["# energy_hpc report", "",
                           f"{len(records)} records of {records['cell_id'].nunique()} cells (cell "
                           f"ids, as `python -m energy_hpc.status` counts them) from "
                           f"{len(files)} records file(s) under "
                           + ", ".join(sorted({str(Path(f).parent.parent) for f in files}))
                           + f"; the tables pool them into {len(summary)} configurations (model "
                           "x dataset x cluster x GPUs x nodes: cells that differ only in seed or "
                           "repetitions are one row).", ""]
    sections += ["Energies and durations are **per pass over the test set** (one classification of "
                 "every test text; docs/measurement.md#units), mean over the splits; intervals "
                 "are the 95% t-interval of that mean.", ""]
    if "measurement" in summary and summary["measurement"].notna().any():
        grades = summary["measurement"].value_counts().to_dict()
        sections += ["Measurement (column *Measurement*): `counted` = every Wh from a counter or "
                     "sensor (RAPL, NVML), `modelled` = none (CodeCarbon's load x TDP, a RAM "
                     "model), `partly modelled` between; here "
                     + ", ".join(f"{n} {grade_label(g)}" for g, n in grades.items())
                     + " (docs/measurement.md#quality).", ""]
    sections += billed_lines(summary)
    if "attributed_splits" in summary and int(summary["attributed_splits"].sum()):
        n = int(summary["attributed_splits"].sum())
        worst_share = pd.to_numeric(summary.get("foreign_share_max"), errors="coerce").max()
        sections += [f"**{n} split(s) ran beside other work on their host** and use the energy "
                     "attributed to the cell (columns `*_wh_attributed`, method per part in "
                     "`cpu_attribution`, `ram_attribution`; grade *…, attributed*), the largest "
                     f"foreign share of the host's CPU work {worst_share:.0%}; "
                     "docs/measurement.md#isolation.", ""]
    counted = "overlapping_left_out" if overlapping_splits == "exclude" else "overlapping_kept"
    if counted in summary and int(summary[counted].sum()):
        n, cells_hit = int(summary[counted].sum()), int((summary[counted] > 0).sum())
        how = ("left out of every energy figure, their accuracy kept (`--overlapping mark` keeps "
               "them)" if overlapping_splits == "exclude" else "kept in the figures, marked here")
        reasons = left_out_reasons(summary)
        why = f" — {'; '.join(reasons)}" if reasons else (
            " (flags `overlapping_window`, `node_shared_with_jobs`)")
        sections += [f"**{n} split(s) of {cells_hit} configuration(s) have energy that is not "
                     f"the cell's alone and could not be attributed to it**{why}: {how}; "
                     "docs/measurement.md#isolation.", ""]
    if "incomplete" in summary and summary["incomplete"].fillna(False).astype(bool).any():
        partial = summary[summary["incomplete"].fillna(False).astype(bool)]
        names = ", ".join(f"{label} on {ds} @ {cl} ({int(n)} of {int(p)} splits)" for label, ds, cl,
                          n, p in zip(model_labels(partial), partial["dataset"], partial["cluster"],
                                      partial["splits"] + partial.get("overlapping_left_out", 0),
                                      partial["splits_planned"], strict=True))
        sections += [f"**{len(partial)} configuration(s) are incomplete** — fewer splits recorded "
                     f"than planned (still running, stopped or failed): {names}. Their intervals "
                     "and the recommendation use only the splits recorded so far; rerunning the "
                     "sweep completes them (column *Incomplete* below).", ""]
        print(f"energy_hpc.report: warning: {len(partial)} configuration(s) incomplete: {names}",
              file=sys.stderr)
    if {"cluster", "nodes"} <= set(records.columns) and (
            (records["cluster"] == "dev_slurm") & (pd.to_numeric(records["nodes"]) > 1)).any():
        sections += ["Note: `dev_slurm`'s two nodes are one machine, so a 2-node cell there "
                     "counts that machine twice (about 2x the energy of its 1-node twin); compare "
                     "node counts on a real cluster.", ""]
    if with_paper and "paper_mismatch" in summary:
        other = summary[summary["paper_mismatch"].notna()]
        for (ds, reason), group in other.groupby(["dataset", "paper_mismatch"], sort=False):
            names = ", ".join(dict.fromkeys(model_labels(group)))
            sections += [f"Not compared with the paper on {ds} ({names}): {reason}.", ""]
    mixed = mixed_input_cells(records)
    if mixed:
        names = ", ".join(mixed[:5]) + (f" and {len(mixed) - 5} more" if len(mixed) > 5 else "")
        sections += [f"**{len(mixed)} cell(s) hold splits measured on different inputs** (their "
                     f"records disagree on the dataset's fingerprint or the weights): {names}. "
                     "Their numbers mix two measurements; rerun them with `force=true`.", ""]
        print(f"energy_hpc.report: warning: {len(mixed)} cell(s) mix splits of different inputs: "
              f"{names}; rerun them with force=true", file=sys.stderr)
    lost = {"corrupt record line(s)": records.attrs.get("skipped_lines", 0),
            "unreadable record file(s)": records.attrs.get("unreadable_files", 0)}
    for what, count in lost.items():
        if count:
            line = (f"**{count} {what} skipped** (named in the warnings); a rerun of the sweep "
                    "measures the splits they held again.")
            sections += [line, ""]
            print(f"energy_hpc.report: warning: {count} {what} skipped", file=sys.stderr)
    sections += ["## Recommendation", ""]
    sections += [f"- {rec.sentence}" for rec in recommend_all(summary, floor, within)]
    sections += [f"- {sentence}" for sentence in cheapest_ways(summary, within)]
    sections.append("")

    b2, b3 = table_b2(summary), table_b3(summary)
    by_cell = estimates_by_cell(records, overlapping_splits)
    tables = []
    for ds in datasets:
        b1 = table_b1(summary, ds, with_paper=with_paper)
        paper = " (paper columns: Capella H100)" if "Paper Energy (Wh)" in b1 else ""
        tables.append((f"table_b1_{file_name(ds)}", f"Table B1 shape: all models on {ds}, single node{paper}",
                       b1))
    tables += [("table_b2", "Table B2 shape: single vs double node", b2),
               ("table_b3", "Table B3 shape: GPU architectures, single node (cells whose model "
                "computes on GPUs; CPU-only cells are no GPU comparison)", b3),
               ("table_b45", "Tables B4/B5 shape: energy and accuracy per dataset", table_b45(summary, with_paper=with_paper)),
               ("table_b6", "Table B6 shape: OLS of energy on duration, GPUs and their interaction",
                table_b6(summary)),
               ("table_estimates", "Estimated vs measured, per pass over the test set "
                "(est./meas. = the estimate's geometric middle ÷ the measured mean; "
                "docs/estimate.md)", table_estimates(by_cell)),
               ("table_total_cost", "Total cost per number of texts: one split's fit plus "
                "inference per text x N (docs/adapted.md)",
                total_cost_table(summary, volume=volume)),
               ("table_site_accounting", "The site's energy accounting (Slurm's "
                "ConsumedEnergy) per job beside what its cells measured in their windows "
                "(docs/measurement.md#the-sites-accounting)", table_site_accounting(records)),
               ("table_meter_agreement", "Meters against each other: per cell and part, the "
                "direct meter ÷ CodeCarbon (median over splits; disagree = more than 10% apart)",
                meter_agreement(records)),
               ("table_llm_methods", "Classifying with one LLM, each way (decoding, batching, "
                "few-shot, quantization; energy ÷ the paper's way: free, sequential, zero-shot, "
                "16-bit; score has no invalid answers by construction; docs/llm.md)",
                table_llm_methods(summary)),
               ("table_precisions", "One model's precisions side by side (model.quantization: "
                "accuracy, energy per text, GPUs held; energy ÷ the 16-bit cell's; docs/llm.md)",
                table_precisions(summary)),
               ("table_break_even", "Break-even: texts after which the cell costlier to fit has "
                "used less energy in total (pairs on each cluster's accuracy/energy frontier)",
                break_even_table(summary))]
    sections += ["## Tables", ""]
    for name, caption, table in tables:
        write_table(table, tables_dir, name, caption)
        sections += [f"### {caption}", "", f"Files: `tables/{name}.md`, `.csv`, `.tex`", ""]
        sections += [as_markdown(table) if not table.empty else "*no cells in these records*", ""]

    drawn = drawn_configurations(summary, by_cell)
    made, skipped = make_figures(records, fig_dir, with_paper=with_paper, summary=summary,
                                 by_cell=by_cell, drawn=drawn)
    sections += ["## Figures", ""]
    for name, paths in made.items():
        png = paths[0].relative_to(out)
        sections += [f"### {name}", "", f"![{name}]({png})", f"(PDF: `{paths[1].relative_to(out)}`)", ""]
        note = grade_note(drawn[name])
        if note:
            sections += [f"Measurement of the {len(drawn[name])} configuration(s) drawn: {note} "
                         "(docs/measurement.md#quality).", ""]
    for name, why in skipped.items():
        sections += [f"### {name}", "", f"*Not drawn: {why}.*", ""]
    sections += ["## Cells", "", as_markdown(summary[[c for c in summary.columns if c in (
        "model", "dataset", "cluster", "gpus", "nodes", "splits", "splits_planned", "incomplete",
        "overlapping_left_out",
        "overlapping_kept", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high",
        "energy_wh_mean", "energy_wh_ci_low", "energy_wh_ci_high", "energy_wh_dex",
        "duration_s_mean", "duration_s_dex", "measurement", "modelled_share_mean")]]), ""]
    report = out / "report.md"
    report.write_text("\n".join(sections))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m energy_hpc.report", description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="out_dirs, cell folders, records files or globs")
    ap.add_argument("--out", required=True, help="where the report, tables and figures go")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--floor", type=float, help="accuracy the recommendation must reach")
    group.add_argument("--within", type=float, help="accept this much below the best accuracy")
    ap.add_argument("--no-paper", action="store_true", help="leave out the paper's published numbers")
    ap.add_argument("--volume", type=int, help="texts you classify a year: the total cost table "
                    "gains kWh and kg CO2 a year at that volume")
    ap.add_argument("--overlapping", choices=("exclude", "mark"), default="exclude",
                    help="splits measured beside another measurement on the same host: left "
                    "out of means (default) or kept and counted")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    missing = missing_modules(ANALYSIS_MODULES)
    if missing:
        print(f"energy_hpc.report: error: the report needs {', '.join(missing)}, from the "
              "'analysis' extra: pip install -e '.[analysis]' (or pip install 'energy_hpc[analysis]')",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.floor is not None and not 0 <= args.floor <= 1:
        ap.error(f"--floor={args.floor} must be an accuracy between 0 and 1")
    if args.within is not None and not 0 <= args.within <= 1:
        ap.error(f"--within={args.within} must be an accuracy difference between 0 and 1 (e.g. "
                 "0.02: accept two points below the best)")
    if args.volume is not None and args.volume <= 0:
        ap.error(f"--volume={args.volume} must be a number of texts > 0")
    out = Path(args.out)
    try:
        report = build_report(args.folders, out, args.floor, args.within, not args.no_paper,
                              progress=not args.no_progress, volume=args.volume,
                              overlapping_splits=args.overlapping)
    except UserError as exc:
        print(f"energy_hpc.report: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"energy_hpc.report: interrupted; no report written ({_kept(out)})", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a full disk surfaces through matplotlib too
        full = _write_fault(exc)
        if full is None:
            raise
        print(f"energy_hpc.report: error: cannot write the report beside {out}: {full}; no report "
              f"written ({_kept(out)}). Free space there or choose another --out", file=sys.stderr)
        return 2
    print(f"report: {report}")
    return 0


def _kept(out: Path) -> str:
    return f"the report in {out} is unchanged" if (out / "report.md").is_file() else \
        f"{out} is as it was"


def _write_fault(exc: BaseException) -> str | None:
    """The full-disk or read-only error behind an exception (matplotlib raises its own after
    the OSError), or None."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                                                        errno.EACCES):
            return seen.strerror or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    sys.exit(main())
