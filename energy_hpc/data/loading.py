"""Load a dataset into a clean ``text,label`` frame and say what was dropped and why."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from energy_hpc.config import DatasetConfig
from energy_hpc.errors import DataError

log = logging.getLogger(__name__)

SEPARATORS = (",", ";", "\t", "|")


def _python_encoding(encoding: str) -> str:
    """UTF-8 reads a byte-order mark too (a spreadsheet's 'CSV UTF-8' export writes one)."""
    import codecs

    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def check_text_file(path: Path, encoding: str) -> None:
    """A file that is empty, binary or not in ``encoding`` fails with what it is and the option
    to set, before a parser reports it as a separator problem."""
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    if not head.strip():
        raise DataError(f"dataset file {path} is empty; give a file with a header row and data")
    wide = encoding.lower().replace("-", "").replace("_", "").startswith(("utf16", "utf32"))
    if b"\0" in head and not wide:
        raise DataError(f"dataset file {path} is not a text file (it holds NUL bytes); give a "
                        "CSV/TSV text file, or an .xlsx/.parquet file with that extension")


def not_decodable(path: Path, encoding: str, exc: UnicodeDecodeError) -> DataError:
    return DataError(
        f"dataset file {path} is not {encoding} text (byte 0x{exc.object[exc.start]:02x} cannot "
        f"be decoded as {encoding}); give the file's encoding with dataset.encoding=NAME, e.g. "
        "dataset.encoding=latin-1 or cp1252")


def detect_separator(path: Path, default: str, encoding: str = "utf-8") -> str:
    """The delimiter of a delimited text file (``,`` ``;`` tab ``|``), sniffed from its start."""
    import csv

    with open(path, encoding=_python_encoding(encoding), errors="replace", newline="") as fh:
        sample = fh.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        return default


def _read_delimited(path: Path, sep: str | None, default: str,
                    encoding: str = "utf-8") -> pd.DataFrame:
    check_text_file(path, encoding)
    chosen = sep or detect_separator(path, default, encoding)
    try:
        return pd.read_csv(path, sep=chosen, encoding=_python_encoding(encoding))
    except UnicodeDecodeError as exc:
        raise not_decodable(path, encoding, exc) from None
    except Exception as exc:  # noqa: BLE001 - the message names the separator and the way out
        how = "given as dataset.sep" if sep else "detected"
        raise DataError(
            f"dataset file {path}: could not be read with separator {chosen!r} ({how}): "
            f"{str(exc).strip()}. "
            f"Set dataset.sep to the file's separator (one of {', '.join(map(repr, SEPARATORS))})"
        ) from None


def _read_json(path: Path, encoding: str, lines: bool) -> pd.DataFrame:
    check_text_file(path, encoding)
    try:
        if lines:
            return _read_jsonl(path, encoding)
        return pd.read_json(path, lines=False, encoding=_python_encoding(encoding))
    except UnicodeDecodeError as exc:
        raise not_decodable(path, encoding, exc) from None


def _read_jsonl(path: Path, encoding: str) -> pd.DataFrame:
    """One JSON object per line; a line that is not one is named by its line number."""
    import json

    rows = []
    with open(path, encoding=_python_encoding(encoding)) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"dataset file {path}, line {lineno}: not a JSON object "
                                f"({exc.msg} at column {exc.colno}); fix or remove that line"
                                ) from None
            if not isinstance(row, dict):
                raise DataError(f"dataset file {path}, line {lineno}: a JSON "
                                f"{type(row).__name__}, not an object with the text and label "
                                "fields")
            rows.append(row)
    return pd.DataFrame(rows)


def _read_excel(path: Path, sheet: str | None) -> pd.DataFrame:
    """One sheet of a workbook: the one named, else the first (with a warning naming the others
    when there are several)."""
    with pd.ExcelFile(path) as book:
        names = [str(n) for n in book.sheet_names]
        if sheet is not None and sheet not in names:
            raise DataError(f"dataset file {path}: no sheet named {sheet!r}; its sheets are "
                            f"{', '.join(map(repr, names))} (dataset.sheet=NAME)")
        chosen = sheet if sheet is not None else names[0]
        if sheet is None and len(names) > 1:
            log.warning("dataset file %s has %d sheets (%s); reading the first, %r: choose "
                        "another with dataset.sheet=NAME", path, len(names),
                        ", ".join(map(repr, names)), chosen)
        return pd.read_excel(book, sheet_name=chosen)


READERS = {
    ".csv": lambda p, sep, enc, sheet: _read_delimited(p, sep, ",", enc),
    ".tsv": lambda p, sep, enc, sheet: _read_delimited(p, sep, "\t", enc),
    ".xlsx": lambda p, sep, enc, sheet: _read_excel(p, sheet),
    ".xls": lambda p, sep, enc, sheet: _read_excel(p, sheet),
    ".json": lambda p, sep, enc, sheet: _read_json(p, enc, lines=False),
    ".jsonl": lambda p, sep, enc, sheet: _read_json(p, enc, lines=True),
    ".parquet": lambda p, sep, enc, sheet: pd.read_parquet(p),
}


@dataclass
class Corpus:
    """Clean texts and labels; ``test_pool`` is set when the source has its own test split."""

    name: str
    pool: pd.DataFrame
    test_pool: pd.DataFrame | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    source: str = ""

    @property
    def labels(self) -> list[str]:
        frames = [self.pool] + ([self.test_pool] if self.test_pool is not None else [])
        return sorted(set().union(*(set(f["label"]) for f in frames)))

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for frame in (self.pool, self.test_pool):
            if frame is not None:
                for text, label in zip(frame["text"], frame["label"], strict=True):
                    h.update(text.encode())
                    h.update(b"\x1f")
                    h.update(label.encode())
                    h.update(b"\x1e")
        return h.hexdigest()[:16]


def demo_path() -> Path:
    return Path(str(resources.files("energy_hpc") / "data" / "bundled" / "demo.csv"))


def read_table(path: str | Path, sep: str | None = None, encoding: str = "utf-8",
               sheet: str | None = None) -> pd.DataFrame:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"dataset file not found: {path} (set dataset.path to an existing file)")
    if path.is_dir():
        hint = ""
        if any((path / name).exists() for name in ("dataset_dict.json", "dataset_info.json")):
            hint = (f"; it looks like a saved Hugging Face dataset: use dataset.source=hf "
                    f"dataset.hf_id={path}")
        raise DataError(f"dataset.path={path} is a directory; give a file "
                        f"({', '.join(READERS)}){hint}")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(
            f"dataset file {path}: unsupported extension {path.suffix!r}; use one of {', '.join(READERS)}"
        )
    try:
        if sheet is not None and path.suffix.lower() not in (".xlsx", ".xls"):
            raise DataError(f"dataset.sheet={sheet!r} is for a workbook (.xlsx/.xls); "
                            f"{path.name} is a {path.suffix} file: leave dataset.sheet unset")
        return reader(path, sep, encoding, sheet)
    except DataError:
        raise
    except ImportError as exc:
        raise DataError(f"dataset file {path}: a reader library is missing ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any parse error becomes one clear message
        raise DataError(f"dataset file {path}: could not be read as {path.suffix}: {exc}") from None


def _select_columns(frame: pd.DataFrame, cfg: DatasetConfig, where: str) -> pd.DataFrame:
    missing = [c for c in (cfg.text_column, cfg.label_column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: column(s) {', '.join(map(repr, missing))} not found; the file has "
            f"{', '.join(map(repr, map(str, frame.columns)))}. Set dataset.text_column / dataset.label_column."
        )
    return pd.DataFrame({"text": frame[cfg.text_column], "label": frame[cfg.label_column]})


def clean(frame: pd.DataFrame, cfg: DatasetConfig, where: str, dropped: dict[str, int]) -> pd.DataFrame:
    """Drop empty/NaN texts and labels, map labels, apply the minimum class size."""
    frame = frame.copy()
    bad_text = frame["text"].isna() | (frame["text"].astype(str).str.strip() == "")
    # a label of spaces is as empty as a blank one
    bad_label = frame["label"].isna() | (frame["label"].astype(str).str.strip() == "")
    dropped["empty_text"] = dropped.get("empty_text", 0) + int(bad_text.sum())
    dropped["empty_label"] = dropped.get("empty_label", 0) + int((bad_label & ~bad_text).sum())
    frame = frame[~bad_text & ~bad_label]
    frame["text"] = frame["text"].astype(str)
    labels = frame["label"]
    if pd.api.types.is_float_dtype(labels) and (labels == labels.round()).all():
        labels = labels.astype(int)
    frame["label"] = labels.astype(str)
    _warn_whitespace_twins(frame["label"], where)
    if cfg.label_map:
        mapping = {str(k): str(v) for k, v in cfg.label_map.items()}
        unknown = sorted(set(frame["label"]) - set(mapping))
        if unknown:
            raise DataError(
                f"{where}: dataset.label_map has no entry for label(s) {unknown[:10]}; "
                f"it maps {sorted(mapping)}"
            )
        frame["label"] = frame["label"].map(mapping)
    if cfg.min_class_size > 1:
        counts = frame["label"].value_counts()
        small = counts[counts < cfg.min_class_size]
        if len(small):
            log.info("%s: dropping %d class(es) with fewer than %d rows: %s", where, len(small),
                     cfg.min_class_size, dict(small))
        dropped["small_class"] = dropped.get("small_class", 0) + int(small.sum())
        frame = frame[~frame["label"].isin(small.index)]
    if frame.empty:
        raise DataError(f"{where}: no rows left after cleaning (dropped: {dropped})")
    return frame.reset_index(drop=True)


_WARNED: set[str] = set()


def _warn_whitespace_twins(labels: pd.Series, where: str) -> None:
    """Labels that differ only in surrounding whitespace ('pos' and 'pos ') or in how a number is
    written ('1' and '1.0') are kept as the different classes the data says they are, but named:
    usually a typo in the file."""
    groups: dict[str, set[str]] = {}
    for label in labels.unique():
        groups.setdefault(_label_key(label), set()).add(label)
    twins = [sorted(g) for g in groups.values() if len(g) > 1]
    key = f"{where}: {twins}"
    if twins and key not in _WARNED:  # planning and running load the same file: say it once
        _WARNED.add(key)
        log.warning("%s: label(s) %s differ only in surrounding whitespace or in how a number is "
                    "written and count as different classes; clean the file or merge them with "
                    "dataset.label_map", where,
                    "; ".join(" vs ".join(repr(v) for v in g) for g in twins))


def _label_key(label: str) -> str:
    """What two spellings of one label share: '1', '1.0' and ' 1 ' are one number."""
    text = label.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return repr(int(number)) if number.is_integer() else repr(number)


def _load_hf(cfg: DatasetConfig) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"dataset {cfg.name!r} comes from the Hugging Face hub ({cfg.hf_id}); install the "
            "'datasets' package (pip install datasets) or export it to CSV and use dataset=file"
        ) from None
    try:
        ds = datasets.load_dataset(cfg.hf_id, cfg.hf_config)
    except Exception as exc:  # noqa: BLE001
        raise DataError(
            f"dataset {cfg.name!r}: could not load {cfg.hf_id} from the hub or the local cache "
            f"(HF_HOME / HF_DATASETS_CACHE): {type(exc).__name__}: {exc}"
        ) from None
    frames = {}
    for split in ("train", "test"):
        if split not in ds:
            continue
        part = ds[split]
        frame = part.to_pandas()
        feature = part.features.get(cfg.label_column)
        if feature is not None and hasattr(feature, "names") and cfg.label_column in frame:
            frame[cfg.label_column] = [feature.names[i] for i in frame[cfg.label_column]]
        frames[split] = frame
    if "train" not in frames:
        raise DataError(f"dataset {cfg.hf_id}: no 'train' split; found {list(ds)}")
    return frames["train"], frames.get("test")


def load_corpus(cfg: DatasetConfig) -> Corpus:
    dropped: dict[str, int] = {}
    if cfg.source == "hf":
        train, test = _load_hf(cfg)
        where = f"dataset {cfg.hf_id}"
        pool = clean(_select_columns(train, cfg, where), cfg, where + " [train]", dropped)
        test_pool = None
        if test is not None:
            test_pool = clean(_select_columns(test, cfg, where), cfg, where + " [test]", dropped)
        source = cfg.hf_id or ""
    else:
        path = demo_path() if cfg.source == "demo" and not cfg.path else Path(cfg.path or "")
        raw = read_table(path, cfg.sep, cfg.encoding, cfg.sheet)
        where = f"dataset file {path}"
        pool = clean(_select_columns(raw, cfg, where), cfg, where, dropped)
        test_pool = None
        source = str(path)
    classes = sorted(set(pool["label"]) | (set(test_pool["label"]) if test_pool is not None else set()))
    if len(classes) < 2:
        raise DataError(
            f"{where}: the label column {cfg.label_column!r} has a single class ({classes[0]!r}) "
            "after cleaning; a classifier needs at least 2. Check dataset.label_column (and "
            "dataset.label_map / dataset.min_class_size)")
    if any(dropped.values()):
        log.info("dataset %s: dropped rows %s", cfg.name, {k: v for k, v in dropped.items() if v})
    return Corpus(cfg.name, pool, test_pool, dropped, source)
