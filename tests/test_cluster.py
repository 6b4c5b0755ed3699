from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import pytest

from energy_hpc.cell import compose_cell, identity
from energy_hpc.cluster.placement import minimum_fit, plan_placement
from energy_hpc.config import LLMModelConfig, compose_settings
from energy_hpc.errors import ConfigError
from energy_hpc.launch.ray_cluster import RayNode, RayStartError, _wait_port, start_worker
from energy_hpc.launch.slurm import failure_reason, job_shape


def llm(params, dtype="bfloat16"):
    return LLMModelConfig(name=f"m{params}", kind="llm", family="llm", hf_id="x/y", params_billion=params,
                       dtype=dtype, engine="vllm")


@pytest.mark.parametrize("cluster", ["capella", "paula", "clara", "local", "dev_slurm"])
def test_shipped_cluster_files_validate(cluster):
    s = compose_settings([f"cluster={cluster}"])
    assert s.cluster.name == cluster


def test_paper_clusters_have_table_2_facts():
    capella = compose_settings(["cluster=capella"]).cluster
    paula = compose_settings(["cluster=paula"]).cluster
    clara = compose_settings(["cluster=clara"]).cluster
    assert (capella.gpus_per_node, capella.gpu_memory_gb, capella.gpu_power_w) == (4, 94, 700)
    assert (paula.gpus_per_node, paula.gpu_memory_gb, paula.gpu_power_w) == (8, 24, 165)
    assert (clara.gpus_per_node, clara.gpu_memory_gb, clara.gpu_power_w) == (4, 32, 250)
    assert (capella.ram_gb, paula.ram_gb, clara.ram_gb) == (768, 1024, 512)


def test_tp_is_gpus_per_node_and_pp_is_nodes():
    s = compose_settings(["cluster=capella", "gpus=8", "nodes=2"])
    p = plan_placement(s)
    assert (p.nodes, p.gpus_per_node, p.tensor_parallel, p.pipeline_parallel) == (2, 4, 4, 2)


def test_70b_in_16_bit_needs_two_v100_nodes_as_in_the_paper():
    clara = compose_settings(["cluster=clara"]).cluster
    capella = compose_settings(["cluster=capella"]).cluster
    assert minimum_fit(llm(70), clara) == (2, 4)
    assert minimum_fit(llm(70), capella) == (1, 2)
    assert minimum_fit(llm(8), capella) == (1, 1)


def test_model_that_does_not_fit_fails_with_the_minimum():
    from dataclasses import replace

    s = compose_settings(["cluster=clara", "gpus=4", "nodes=1"])
    s = replace(s, model=llm(70))
    with pytest.raises(ConfigError, match=r"needs ~161 GB.*minimum that fits on 'clara' is nodes=2 gpus=8"):
        plan_placement(s)
    auto = replace(s, gpus="auto", nodes="auto")
    p = plan_placement(auto)
    assert (p.nodes, p.gpus_per_node) == (2, 4)
    # an explicit nodes is a requirement: never raised silently (issue 11, item 5)
    with pytest.raises(ConfigError, match=r"nodes=1: m70 needs 2 node\(s\) x 4 V100\(s\).*give nodes=2 or nodes=auto"):
        plan_placement(replace(s, gpus="auto", nodes=1))
    spread = plan_placement(replace(s, model=llm(8), gpus="auto", nodes=2))
    assert (spread.nodes, spread.gpus_per_node) == (2, 1)  # the paper's 1 GPU x 2 nodes


def test_gpus_without_nodes_takes_the_fewest_nodes():
    p = plan_placement(compose_settings(["cluster=clara", "model=llama70b", "gpus=8"]))
    assert (p.nodes, p.gpus_per_node) == (2, 4)


def compose_with_cluster_file(tmp_path, name: str, text: str):
    """Compose with an admin's cluster file ``cluster/<name>.yaml`` on the search path."""
    conf = tmp_path / "cluster"
    conf.mkdir(exist_ok=True)
    (conf / f"{name}.yaml").write_text(text)
    return compose_settings([f"hydra.searchpath=[file://{tmp_path}]", f"cluster={name}"])


def test_cluster_file_without_gpu_memory_is_refused_or_the_check_said_skipped(tmp_path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match=r"cluster/nomem.yaml: cluster 'nomem' has gpus_per_node=4 but no gpu_memory_gb"):
        compose_with_cluster_file(tmp_path, "nomem",
                                  "name: nomem\nkind: slurm\nnodes_available: 2\ngpus_per_node: 4\n")
    # a local workstation stated by hand: gpus=auto says why it cannot size; gpus=N says it skipped
    local = compose_settings(["cluster=local", "cluster.detect_gpus=false", "cluster.gpus_per_node=2",
                              "model=llama8b"])
    with pytest.raises(ConfigError, match=r"cluster 'local'.*states no gpu_memory_gb"):
        plan_placement(local)
    placed = plan_placement(replace(local, gpus=1))
    assert placed.memory_check.startswith("skipped") and "check skipped" in placed.describe()


def test_more_gpus_per_node_than_the_cluster_has():
    s = compose_settings(["cluster=clara", "gpus=8", "nodes=1"])
    with pytest.raises(ConfigError, match=r"8 GPU\(s\) per node asked.*'clara' has 4"):
        plan_placement(s)
    with pytest.raises(ConfigError, match="cannot be spread evenly"):
        plan_placement(compose_settings(["cluster=clara", "gpus=3", "nodes=2"]))
    with pytest.raises(ConfigError, match="has 1 node"):
        plan_placement(compose_settings(["nodes=2"]))


def test_job_shape_comes_from_the_cells_own_config():
    s = compose_settings(["cluster=capella", "gpus=2", "cluster.account=p_llm",
                          "cluster.setup=[module load CUDA]", "+cluster.env={HF_HOME: /data/hf}"])
    shape = job_shape(s, plan_placement(s))
    args = shape.sbatch_args()
    assert "--gpus-per-node=2" in args and "--partition=capella" in args
    assert "--account=p_llm" in args and "--exclusive" not in args and "--cpus-per-task=32" in args
    assert "--mem=393216M" in args  # shared (isolation=attribute): two GPUs' half of 768 GB
    assert shape.setup == ("module load CUDA", 'export HF_HOME="/data/hf"')


def test_bad_cluster_file_names_field_and_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"cluster/mine.yaml: unknown field 'gpu_per_node'; did you mean 'gpus_per_node'\?"):
        compose_with_cluster_file(tmp_path, "mine", "name: mine\nkind: slurm\ngpu_per_node: 4\n")
    with pytest.raises(ConfigError, match=r"cluster.kind='slurmm'.*local, slurm"):
        compose_with_cluster_file(tmp_path, "typo", "name: typo\nkind: slurmm\n")


def test_worker_without_head_names_node_and_where_to_look(tmp_path):
    with pytest.raises(RayStartError, match=r"node n2: the Ray head did not publish.*ray_head.json"):
        start_worker(tmp_path, "n2", 1, 0, timeout=0.3)


def test_ray_process_that_dies_names_node_and_log(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    node = RayNode("n7", proc, tmp_path / "ray-n7.log")
    with pytest.raises(RayStartError, match=r"node n7: Ray exited with code 3; see .*ray-n7.log"):
        _wait_port("127.0.0.1", 9, node, timeout=5)


def test_failure_reason_picks_the_remote_exception_line():
    text = ("Job (task=0) failed\nTraceback...\n  File x\nenergy_hpc.launch.ray_cluster.RayStartError: "
            "Ray node(s) n2 did not join\nsrun: error: n1: task 0: Exited\n  - /x/log.out")
    assert failure_reason(Exception(text)).startswith("energy_hpc.launch.ray_cluster.RayStartError: Ray")


def test_secrets_in_cluster_env_never_reach_meta_or_the_printed_plan():
    from energy_hpc.launch.plan import build_plan

    cell = compose_cell(["cluster=capella", "+cluster.env={HF_TOKEN: hf_abc123secret, HF_HOME: /data/hf}"])
    meta_config = cell.settings.resolved_dict()
    assert meta_config["cluster"]["env"] == {"HF_TOKEN": "<redacted>", "HF_HOME": "/data/hf"}
    assert "hf_abc123secret" not in json.dumps(identity(cell.settings, cell.placement))
    text = build_plan([cell]).show()
    assert "hf_abc123secret" not in text and "HF_TOKEN" not in cell.shape.setup
    assert "secret env (through sbatch's environment, in no file): HF_TOKEN" in text
    assert 'export HF_HOME="/data/hf"' in text


# --- cluster=local asks NVML for its GPUs ---------------------------------------------------


def test_local_cluster_detects_visible_gpus_and_places_an_llm_on_them():
    from energy_hpc.cluster.local_gpus import detect_local_gpus
    from tests.fake_gpus import FakeGpus

    base = compose_settings(["cluster=local", "model=llama8b"])
    cluster = detect_local_gpus(base.cluster, FakeGpus(n=4), visible="1,3")
    assert (cluster.gpus_per_node, cluster.gpu_model) == (2, "NVIDIA H100")
    assert cluster.gpu_memory_gb == pytest.approx(79.6) and cluster.gpu_power_w == 700
    placement = plan_placement(dataclasses.replace(base, cluster=cluster, gpus="auto"))
    assert (placement.nodes, placement.gpus_per_node) == (1, 1)


def test_local_cluster_detection_keeps_stated_facts_and_can_be_switched_off():
    from energy_hpc.cluster.local_gpus import detect_local_gpus
    from tests.fake_gpus import FakeGpus

    stated = compose_settings(["cluster=local", "cluster.gpus_per_node=1",
                               "cluster.gpu_memory_gb=40"]).cluster
    assert detect_local_gpus(stated, FakeGpus(n=4)).gpus_per_node == 1
    off = compose_settings(["cluster=local", "cluster.detect_gpus=false"]).cluster
    assert detect_local_gpus(off, FakeGpus(n=4)).gpus_per_node == 0
    hidden = compose_settings(["cluster=local"]).cluster
    assert detect_local_gpus(hidden, FakeGpus(n=4), visible="").gpus_per_node == 0


def test_local_cluster_without_nvml_stays_cpu_only():
    from energy_hpc.cluster.local_gpus import with_detected_gpus

    # this machine has no NVIDIA driver: the real NVML path answers "none", not an error
    s = with_detected_gpus(compose_settings(["cluster=local"]))
    assert s.cluster.detect_gpus and s.cluster.gpus_per_node == 0
    assert plan_placement(s).gpus_per_node == 0


def test_detect_gpus_on_a_slurm_cluster_is_refused():
    with pytest.raises(ConfigError, match="detect_gpus is only for kind=local"):
        compose_settings(["cluster=clara", "cluster.detect_gpus=true"])


def _listeners_of(pid: int) -> set[int]:
    """Ports the process group of ``pid`` listens on (``ss``), to check who holds what."""
    import re

    group = set(subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split())
    ports = set()
    for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines():
        owner = re.search(r"pid=(\d+),", line)
        if owner and owner.group(1) in group:
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


def test_two_jobs_ray_heads_on_one_node_share_no_port(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    import tempfile
    import time

    from energy_hpc.launch import ray_cluster

    short_tmp = tempfile.mkdtemp(prefix="ehrt", dir="/tmp")
    monkeypatch.setenv("ENERGY_HPC_RAY_TMP", short_tmp)
    heads = []
    try:
        for job in ("9001", "9002"):
            monkeypatch.setenv("SLURM_JOB_ID", job)
            heads.append(ray_cluster.start_head(tmp_path / job, "n1", 1, 0))
        time.sleep(6)  # the metrics servers come up a few seconds after the GCS
        first, second = (_listeners_of(head.process.pid) for head, _ in heads)
        assert all(head.process.poll() is None for head, _ in heads)
        assert first and second and not first & second
        assert not {44217, 44227} & (first | second)  # Ray's fixed metrics ports
        assert (tmp_path / "9001" / "ray_token").stat().st_mode & 0o077 == 0
    finally:
        for head, _ in heads:
            head.stop()
        shutil.rmtree(short_tmp, ignore_errors=True)


def test_a_ray_head_whose_port_was_taken_meanwhile_starts_again_on_other_ports(tmp_path, monkeypatch,
                                                                              caplog):
    """A port picked free can be taken before Ray binds it: the head is started again on fresh
    ports (the CI failure of a two-node cell), and the message quotes Ray's own log."""
    pytest.importorskip("ray")
    import socket
    import tempfile

    from energy_hpc.launch import ray_cluster

    short_tmp = tempfile.mkdtemp(prefix="ehrt", dir="/tmp")
    monkeypatch.setenv("ENERGY_HPC_RAY_TMP", short_tmp)
    monkeypatch.setenv("SLURM_JOB_ID", "9003")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))  # bound, not listening: Ray cannot bind it, nothing answers on it
    real, calls = ray_cluster.free_ports, []

    def first_gcs_port_taken(address, n):
        calls.append(n)
        ports = real(address, n)
        return [taken.getsockname()[1], *ports[1:]] if len(calls) == 1 else ports

    monkeypatch.setattr(ray_cluster, "free_ports", first_gcs_port_taken)
    monkeypatch.setattr(ray_cluster, "node_address", lambda node: "127.0.0.1")
    head = None
    try:
        with caplog.at_level("WARNING"):
            head, gcs = ray_cluster.start_head(tmp_path, "n1", 1, 0)
        assert head.process.poll() is None and gcs != f"127.0.0.1:{taken.getsockname()[1]}"
        assert (tmp_path / "ray-n1.log").exists() and head.log_path.name == "ray-n1-2.log"
        assert "starting it again on other ports (attempt 2 of 3)" in caplog.text
        assert "Ray exited with code" in caplog.text

        # a worker whose Ray exits before the cell is done is started again alike
        import threading
        import time

        died = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
        died.wait()
        worker = RayNode("n2", died, tmp_path / "ray-n2.log", (1, 0))
        result = {}
        waiter = threading.Thread(target=lambda: result.update(
            worker=ray_cluster.wait_done(tmp_path, worker, poll_s=0.2, join_timeout=5)))
        waiter.start()
        deadline = time.monotonic() + 90
        while not (tmp_path / "ray-n2-2.log").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        ray_cluster.signal_done(tmp_path)
        waiter.join(timeout=30)
        again = result["worker"]
        assert again.log_path.name == "ray-n2-2.log" and again.process.poll() is None
        again.stop()
    finally:
        taken.close()
        if head is not None:
            head.stop()
        shutil.rmtree(short_tmp, ignore_errors=True)


def test_a_ray_temp_dir_too_long_for_unix_sockets_is_named(tmp_path, monkeypatch):
    from energy_hpc.launch import ray_cluster

    monkeypatch.setenv("ENERGY_HPC_RAY_TMP", str(tmp_path / ("x" * 40)))
    with pytest.raises(RayStartError, match=r"ENERGY_HPC_RAY_TMP=.* is too long for Ray.*at most 44"):
        ray_cluster.start_head(tmp_path, "n1", 1, 0)


def test_a_slurm_cluster_without_submitit_names_the_extra(monkeypatch):
    import importlib.util

    from energy_hpc.errors import UserError
    from energy_hpc.launch.slurm import require_slurm

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "submitit" else real(name, *a))
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(UserError, match=r"submitit, which is not installed: pip install -e '.\[slurm\]'"):
        require_slurm("dev_slurm")
