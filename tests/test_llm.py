from __future__ import annotations

import json

import pandas as pd
import pytest

from energy_hpc.cell import compose_cell
from energy_hpc.classifiers import ClassifierContext
from energy_hpc.classifiers.llm import LLMClassifier
from energy_hpc.classifiers.llm.parsing import parse_answer
from energy_hpc.classifiers.llm.prompt import build_messages, check_categories
from energy_hpc.config import compose_settings
from energy_hpc.errors import ConfigError, UserError
from energy_hpc.results import CellStore
from energy_hpc.runner import run_cell
from tests.conftest import NEEDS_LLM
from tests.tiny_llama import build_tiny_llama

FKTG = ["geoWK", "Tongestein", "Aktive Störungszonen", "Öffentlichkeitsbeteiligung", "Kristallingestein",
        "FEP/Szenarien/Entwicklungen des Endlagersystems", "Anwendung geoWK", "Mindestanforderungen",
        "Steinsalz in steiler Lagerung", "Datenverfügbarkeit", "Modellierung", "Referenzdatensätze",
        "Bereitstellung der Daten", "Ausschlusskriterien"]

PAPER_SYSTEM = """Your input fields are:
1. `text` (str)

Your output fields are:
1. `category` (str)

All interactions will be structured in the following way, with the appropriate values filled in.

[[ ## text ## ]]
{text}

[[ ## category ## ]]
{category}

[[ ## completed ## ]]

In adhering to this structure, your objective is:
        Classify the text as one of the following categories:
        - geoWK
        - Tongestein
"""

PAPER_USER = """[[ ## text ## ]]
Die Daten fehlen.

Respond with the corresponding output fields, starting with the field `[[ ## category ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`."""


def test_prompt_reproduces_the_paper():
    messages = build_messages("Die Daten fehlen.", FKTG)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith(PAPER_SYSTEM)
    assert messages[0]["content"].endswith("        - Ausschlusskriterien")
    assert messages[1]["content"] == PAPER_USER
    german = build_messages("x", FKTG, language="de")[0]["content"]
    assert "Klassifiziere den Text als eine der folgenden Kategorien:" in german


def test_few_shot_demos_are_user_assistant_turns():
    messages = build_messages("new", ["a", "b"], demos=[("t1", "a"), ("t2", "b")])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == "[[ ## category ## ]]\na\n\n[[ ## completed ## ]]"


@pytest.mark.parametrize(
    ("output", "expected", "how"),
    [
        ("[[ ## category ## ]]\nTongestein\n\n[[ ## completed ## ]]", "Tongestein", "exact"),
        ("[[ ## category ## ]]\ntongestein\n[[ ## completed ## ]]", "Tongestein", "normalised"),
        ("[[ ## category ## ]]\n  Öffentlichkeitsbeteiligung.  ", "Öffentlichkeitsbeteiligung", "normalised"),
        ("[[ ## category ## ]]\nO\u0308ffentlichkeitsbeteiligung", "Öffentlichkeitsbeteiligung", "normalised"),
        ("[[ ## category ## ]]\n**Datenverfügbarkeit**\n[[ ## completed ## ]]", "Datenverfügbarkeit", "normalised"),
        ("Datenverfugbarkeit", "Datenverfügbarkeit", "closest"),
        ("<think>Maybe geoWK? No, it is about clay.</think>\n[[ ## category ## ]]\nTongestein\n[[ ## completed ## ]]",
         "Tongestein", "exact"),
        ("it is about clay.</think>\n\n[[ ## category ## ]]\nTongestein", "Tongestein", "exact"),
        ("<think>Let me think about whether this is geoWK or", None, "unfinished-reasoning"),
        ("The text is about Steinsalz in steiler Lagerung, clearly.", "Steinsalz in steiler Lagerung", "contained"),
        ("[[ ## category ## ]]\nAnwendung geoWK", "Anwendung geoWK", "exact"),
        ("[[ ## category ## ]]\nSomething about geoWK and Tongestein", None, "invalid"),
        ("[[ ## category ## ]]\nWeather", None, "invalid"),
        ("", None, "invalid"),
        ("[[ ## category ## ]]\nModellierung\n\n[[ ## completed ## ]]\nExtra prose afterwards.", "Modellierung", "exact"),
    ],
)
def test_parsing_realistic_outputs(output, expected, how):
    assert parse_answer(output, FKTG) == (expected, how)


@pytest.mark.parametrize(
    ("categories", "pattern"),
    [([], "category list is empty"), (["a", "A "], "duplicates"), (["ok", "[[ ## x ## ]]"], "marker syntax"),
     (["a", "  "], "empty or whitespace")],
)
def test_bad_category_lists(categories, pattern):
    with pytest.raises(ConfigError, match=pattern):
        check_categories(categories)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from energy_hpc.data.loading import demo_path

    texts = demo_path().read_text().splitlines()[:200]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"), texts)


def llm_settings(tiny, out, *extra):
    return compose_cell([
        "model=llama8b", f"model.hf_id={tiny}", "model.engine=transformers", "model.dtype=float32",
        "model.display_name=tiny", "model.max_tokens=12", "dataset.n_train=8", "dataset.n_test=6",
        "repetitions=2", "progress=false", f"out_dir={out}", "energy.interval_s=1", *extra])


@NEEDS_LLM
def test_tiny_llama_end_to_end_through_transformers(tiny, tmp_path):
    s = llm_settings(tiny, tmp_path)
    records = run_cell(s)
    assert len(records) == 2
    for r in records:
        assert r["model_kind"] == "llm" and r["passes"] == 1 and r["n_test"] == 6
        assert 0.0 <= r["invalid_rate"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 - r["invalid_rate"] + 1e-9
        assert r["energy_wh"] > 0 and r["cpu_method"].startswith("codecarbon")
        assert r["decoding"] == "free" and r["batching"] == "sequential"
        assert sum(r["parse_methods"].values()) == 6 and r["truncated_texts"] == 0
        assert r["classifier"]["engine"] == "transformers"
        # zero-shot: nothing is fitted, so the fit is 0 Wh with the reason, not a measurement
        assert r["fit_energy_wh"] == 0.0 and r["fit_method"] == "zero-shot: nothing to fit"
    raw = CellStore(s.out_dir, s.cell_id).dir / "raw" / "split000.jsonl"
    lines = [json.loads(line) for line in raw.read_text().splitlines()]
    assert len(lines) == 6 and all("raw" in line and "label" in line for line in lines)
    assert "raw" not in records[0]  # raw outputs live in the side file, not the record


@NEEDS_LLM
def test_choice_decoding_and_batching(tiny, tmp_path):
    records = run_cell(llm_settings(tiny, tmp_path, "model.decoding=choice", "model.batching=batched",
                                    "repetitions=1"))
    r = records[0]
    assert r["invalid_rate"] == 0.0 and r["parse_methods"] == {"exact": 6}
    assert r["decoding"] == "choice" and r["batching"] == "batched"


@NEEDS_LLM
def test_long_texts_are_truncated_counted_and_recorded(tiny, tmp_path):
    probe = LLMClassifier(llm_settings(tiny, tmp_path).settings.model, ClassifierContext(
        categories=("building_permit", "public_transport", "taxes_fees", "waste_collection")))
    overhead = probe.model.context_length - probe._budget() - probe.model.max_tokens - 8
    room = 30  # tokens left for each text: the demo texts are longer
    records = run_cell(llm_settings(tiny, tmp_path, f"model.context_length={overhead + 12 + 8 + room}",
                                    "repetitions=1"))
    assert records[0]["truncated_texts"] == 6


@NEEDS_LLM
def test_few_shot_picks_demos_from_the_training_split(tiny):
    s = llm_settings(tiny, "/tmp", "model.few_shot=3")
    clf = LLMClassifier(s.settings.model, ClassifierContext(categories=("a", "b")), engine=object())
    clf.fit(["t1", "t2", "t3", "t4"], ["a", "a", "b", "b"])
    assert clf.demos == [("t1", "a"), ("t3", "b"), ("t2", "a")]


@NEEDS_LLM
def test_context_too_small_for_the_prompt(tiny, tmp_path):
    with pytest.raises(ConfigError, match="leaves no room for the text"):
        run_cell(llm_settings(tiny, tmp_path, "model.context_length=64", "repetitions=1"))


def test_vllm_not_installed_names_the_install(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    s = compose_settings(["model=llama8b", "model.hf_id=/nonexistent", "cluster=capella", f"out_dir={tmp_path}"])
    from energy_hpc.classifiers.llm.engines import VllmEngine

    with pytest.raises(UserError, match=r"vLLM is not installed.*pip install vllm"):
        VllmEngine(s.model, ClassifierContext())


@NEEDS_LLM
def test_uncached_model_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = compose_cell(["model=qwen7b", "model.engine=transformers", f"out_dir={tmp_path}",
                          "repetitions=1", "dataset.n_train=8", "dataset.n_test=4"])
    with pytest.raises(UserError, match=r"Qwen/Qwen2-7B-Instruct.*not a local path.*Hugging Face cache"):
        run_cell(s)


def test_catalogue_has_the_papers_eleven_models():
    from tests.conftest import REPO

    names = sorted(p.stem for p in (REPO / "energy_hpc" / "hydra_conf" / "model").glob("*.yaml"))
    # hf_classifier and llm are templates: they name no model until model.hf_id is given
    llms = [n for n in names if n not in ("hf_classifier", "llm")
            and compose_settings([f"model={n}"]).model.kind == "llm"]
    assert compose_settings(["model=hf_classifier", "model.hf_id=x"]).model.kind == "hf_classifier"
    assert compose_settings(["model=llm", "model.hf_id=org/x"]).model.kind == "llm"
    assert len(llms) == 11
    ds = compose_settings(["model=ds_llama70b"]).model
    assert ds.family == "reasoning" and ds.max_tokens >= 4096
    assert compose_settings(["model=qwen72b"]).model.hf_id == "Qwen/Qwen2-72B-Instruct"


@NEEDS_LLM
def test_packed_llm_cells_share_one_engine_and_predict_as_alone(tiny, tmp_path):
    """Four cells that differ in decoding, batching, few-shot count and repetitions: one load."""
    from energy_hpc.classifiers.llm import engines

    variants = [("model.decoding=free", "repetitions=1"), ("model.decoding=choice", "repetitions=1"),
                ("model.batching=batched", "repetitions=2"), ("model.few_shot=1", "repetitions=1")]

    def raw_answers(out, records):
        cell_dir = CellStore(out, records[0]["cell_id"]).dir
        return [p.read_text() for p in sorted((cell_dir / "raw").glob("*.jsonl"))]

    engines.release_engine()
    loads = engines._Loaded.loads
    packed = [run_cell(llm_settings(tiny, tmp_path / "packed", *v)) for v in variants]
    assert engines._Loaded.loads == loads + 1
    assert [r[0]["engine_reused"] for r in packed] == [False, True, True, True]
    assert packed[0][0]["engine_load_s"] > 0 and packed[1][0]["engine_load_s"] == 0.0
    alone = []
    for v in variants:
        engines.release_engine()  # unpacked: every cell loads its own engine
        alone.append(run_cell(llm_settings(tiny, tmp_path / "alone", *v)))
    assert engines._Loaded.loads == loads + 1 + len(variants)
    for p, a in zip(packed, alone, strict=True):
        assert [r["accuracy"] for r in p] == [r["accuracy"] for r in a]
        assert raw_answers(tmp_path / "packed", p) == raw_answers(tmp_path / "alone", a)


def _independent_scores(engine, messages, categories) -> list[float]:
    """Each category's summed log-probability by a full forward pass of its own (no cache)."""
    import torch

    from energy_hpc.classifiers.llm.prompt import ANSWER_PREFIX

    tok = engine.tokenizer
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + ANSWER_PREFIX
    prefix = tok(prompt, add_special_tokens=False)["input_ids"]
    scores = []
    for category in categories:
        cat = tok(category, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prefix + cat])
        with torch.inference_mode():
            logits = engine.model(ids).logits[0, len(prefix) - 1:-1].float()
        scores.append(torch.log_softmax(logits, -1).gather(1, ids[0, len(prefix):, None]).sum().item())
    return scores


@NEEDS_LLM
def test_score_picks_the_argmax_of_the_summed_log_probabilities_reusing_the_prompts_cache(tiny):
    """decoding=score on the transformers engine: one pass over the prompt, then each category's
    tokens on its KV cache; equal to full passes computed independently, categories sharing a
    first token included, with 1 + (multi-token categories) passes per text instead of one per
    category; no answer can be invalid."""
    model = llm_settings(tiny, "/tmp", "model.decoding=score", "model.batching=batched").settings.model
    probe = LLMClassifier(model, ClassifierContext(categories=("a", "b")))
    tok = probe.engine.tokenizer
    first = {}
    for word in ("bus", "buses", "bus stop", "taxes", "tax office", "waste", "waste collection", "park"):
        first.setdefault(tok(word, add_special_tokens=False)["input_ids"][0], []).append(word)
    shared = next(words for words in first.values() if len(words) > 1)
    categories = tuple(dict.fromkeys([*shared, "taxes", "park", "waste collection"]))
    clf = LLMClassifier(model, ClassifierContext(categories=categories), engine=probe.engine)
    texts = ["The bus was late again.", "When is the waste collected?", "My tax bill is wrong."]
    before = clf.engine.forward_passes, clf.engine.forward_tokens
    pred = clf.predict(texts)
    lengths = [len(tok(c, add_special_tokens=False)["input_ids"]) for c in clf.categories]
    assert clf.engine.forward_passes - before[0] == len(texts) * (1 + sum(n > 1 for n in lengths))
    scored_tokens = clf.engine.forward_tokens - before[1]
    assert scored_tokens == pred.info["prompt_tokens_mean"] * len(texts) + len(texts) * sum(n - 1 for n in lengths)
    # the choice decoding runs the whole prompt once per category
    choice = LLMClassifier(llm_settings(tiny, "/tmp", "model.decoding=choice").settings.model,
                           ClassifierContext(categories=categories), engine=probe.engine)
    before = choice.engine.forward_tokens
    choice.predict(texts)
    assert choice.engine.forward_tokens - before > len(categories) * pred.info["prompt_tokens_mean"] * len(texts) * 0.9
    assert choice.engine.forward_tokens - before > 4 * scored_tokens
    for text, label, raw in zip(texts, pred.labels, pred.raw, strict=True):
        messages = build_messages(text, clf.categories, "en", [])
        expected = _independent_scores(clf.engine, messages, clf.categories)
        assert label == clf.categories[max(range(len(expected)), key=expected.__getitem__)]
        mine = [float(x) for x in raw.split("\t", 1)[1].strip("[]").split(",")]
        assert mine == pytest.approx(expected, abs=1e-3)
    assert pred.info["parse_methods"] == {"scored": 3} and pred.info["output_tokens_mean"] == 0
    assert pred.info["prompt_tokens_mean"] > 50 and pred.info["score_margin_mean"] >= 0


@NEEDS_LLM
def test_score_cells_record_no_invalid_answers_and_the_tokens_per_text(tiny, tmp_path):
    [scored] = run_cell(llm_settings(tiny, tmp_path, "model.decoding=score", "repetitions=1"))
    assert scored["decoding"] == "score" and scored["invalid_rate"] == 0.0
    assert scored["output_tokens_mean"] == 0 and scored["prompt_tokens_mean"] > 50
    assert scored["score_margin_mean"] >= 0
    [free] = run_cell(llm_settings(tiny, tmp_path / "f", "repetitions=1"))
    assert 0 < free["output_tokens_mean"] <= 12 and free["prompt_tokens_mean"] > 50


@NEEDS_LLM
def test_the_report_puts_one_llms_ways_side_by_side(tiny, tmp_path):
    """Four real cells of the tiny Llama (free one at a time — the paper's way —, free batched,
    choice, score): one row each with tokens and energy per text against the paper's way, and a
    sentence naming the cheapest way within the accuracy margin."""
    from energy_hpc.report import main as report_main

    out = tmp_path / "out"
    for extra in ([], ["model.batching=batched"], ["model.decoding=choice"],
                  ["model.decoding=score", "model.batching=batched"]):
        run_cell(llm_settings(tiny, out, "repetitions=1", "model.max_tokens=8", *extra))
    assert report_main([str(out), "--out", str(tmp_path / "report"), "--within", "1"]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    table = pd.read_csv(tmp_path / "report" / "tables" / "table_llm_methods.csv")
    assert sorted(table["Way"]) == ["choice, sequential, 0-shot", "free, batched, 0-shot",
                                    "free, sequential, 0-shot", "score, batched, 0-shot"]
    ways = table.set_index("Way")
    assert ways.loc["free, sequential, 0-shot", "Energy vs the paper's way"] == pytest.approx(1.0)
    assert ways.loc["score, batched, 0-shot", "Output tokens per text"] == 0
    assert ways.loc["score, batched, 0-shot", "Invalid rate"] == 0
    assert 0 < ways.loc["free, batched, 0-shot", "Output tokens per text"] <= 8
    cheapest = ways["Energy per text (Wh)"].idxmin()
    assert f"the cheapest within 1 of its best accuracy is **{cheapest}**" in text
    assert "Classifying with one LLM, each way" in text


@NEEDS_LLM
@pytest.mark.parametrize("budget", [5, 0])
def test_a_thinking_budget_is_honoured_and_the_forced_answers_counted(tiny, tmp_path, budget):
    """A reasoning model (the tiny Llama as ds_llama8b): it thinks at most thinking_tokens tokens
    (stopping at its own </think>), then the block is closed for it and it answers; 0 skips the
    thinking. The engine's calls are watched, not replaced."""
    cell = compose_cell([
        "model=ds_llama8b", f"model.hf_id={tiny}", "model.engine=transformers", "model.dtype=float32",
        "model.max_tokens=6", f"model.thinking_tokens={budget}", "model.context_length=2048",
        "dataset.n_train=8", "dataset.n_test=4", "repetitions=1", "progress=false",
        f"out_dir={tmp_path}", "energy.interval_s=1"])
    clf = LLMClassifier(cell.settings.model, ClassifierContext(categories=("a", "b")))
    calls = []
    real = clf.engine.complete

    def watched(prompts, max_tokens, stop=None):
        done = real(prompts, max_tokens, stop)
        calls.append((list(prompts), max_tokens, stop, done))
        return done

    clf.engine.complete = watched
    try:
        pred = clf.predict(["The bus was late.", "My tax bill is wrong."])
    finally:
        del clf.engine.complete
    thinking = [c for c in calls if c[2] == ["</think>"]]
    answers = [c for c in calls if c[2] is None]
    assert len(thinking) == (2 if budget else 0) and len(answers) == 2  # sequential: per text
    for _, max_tokens, _, done in thinking:
        assert max_tokens == budget and all(d.tokens <= budget for d in done)
    for prompts, max_tokens, _, _ in answers:
        assert max_tokens == 6 and all(p.endswith("\n</think>\n\n") and "<think>" in p for p in prompts)
    forced = sum(not d.stopped for c in thinking for d in c[3]) if budget else 2
    assert pred.info["thinking_capped"] == forced
    assert pred.info["thinking_tokens_mean"] <= budget
    assert all("</think>" in raw for raw in pred.raw)
    [record] = run_cell(cell)
    assert record["thinking_tokens"] == budget and "thinking_capped" in record
    assert record["output_tokens_mean"] <= budget + 6


@pytest.mark.parametrize(("overrides", "message"), [
    (["model=llama8b", "model.thinking_tokens=64"], "llama8b is not a reasoning model (family: llm)"),
    (["model=ds_llama8b", "model.thinking_tokens=64", "model.decoding=score"],
     "a thinking budget bounds free generation; use decoding=free"),
    (["model=ds_llama8b", "model.thinking_tokens=-1"], "model.thinking_tokens=-1 is not valid"),
])
def test_a_thinking_budget_where_it_means_nothing_is_refused(overrides, message):
    import re

    with pytest.raises(ConfigError, match=re.escape(message)):
        compose_cell([*overrides, "cluster=capella"])


@NEEDS_LLM
def test_the_gpu_check_runs_its_steps_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.py --cpu: the same three steps a lent GPU runs, tiny shapes, so the
    script is known to work before a GPU is seen; every step ends without an error and the four
    ways of the LLM step are measured over the same prompts."""
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu",
                           "--out", str(tmp_path), "--prompts", "4", "--steps", "2",
                           "--meter-seconds", "1"], capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(result["steps"]) == {"meters", "llm", "finetune"}
    assert not any("error" in step for step in result["steps"].values())
    ways = result["steps"]["llm"]["ways"]
    assert set(ways) == {"free/sequential", "free/batched", "choice/batched", "score/batched"}
    assert ways["free/sequential"]["vs_free_sequential"] == pytest.approx(1.0)
    assert ways["score/batched"]["output_tokens_mean"] == 0
    assert result["steps"]["finetune"]["fit_energy_wh"] > 0
    assert "| free/sequential |" in (tmp_path / "gpu_check.md").read_text()
