"""The site's energy accounting (Slurm's ConsumedEnergy), read per job; samples in tests/data/sacct."""

from __future__ import annotations

from pathlib import Path

import pytest

from energy_hpc.cluster.accounting import job_accounting, parse_config, parse_sacct

DATA = Path(__file__).parent / "data" / "sacct"


def _read(kind: str, job: str):
    return job_accounting(job, (DATA / f"scontrol_{kind}.txt").read_text(),
                          (DATA / f"{kind}.txt").read_text())


def test_the_dev_slurm_gathers_no_energy_and_says_so():
    acct = _read("none_dev_slurm", "2")
    assert acct.plugin == "acct_gather_energy/none" and acct.node_freq_s == 0
    assert acct.consumed_energy_wh is None and acct.scope is None
    assert "gathers no energy (AcctGatherEnergyType=acct_gather_energy/none)" in acct.reason
    assert acct.elapsed_s == 9 and [s["step"] for s in acct.steps] == ["2", "2.batch", "2.0"]


@pytest.mark.parametrize(("kind", "job", "scope", "wh", "freq"), [
    ("gpu_format", "4242", "gpu", 180000 / 3600, 30),
    ("rapl_format", "5150", "cpu", 190400 / 3600, 10),  # empty allocation line: the largest step
    ("ipmi_format", "777", "node", 2160000 / 3600, 60),
])
def test_each_plugin_kind_is_read_with_its_scope(kind, job, scope, wh, freq):
    acct = _read(kind, job)
    assert acct.scope == scope and acct.node_freq_s == freq and acct.reason is None
    assert acct.consumed_energy_wh == pytest.approx(wh)


def test_a_recording_of_slurms_own_rapl_plugin_is_read_as_cpu_and_dram():
    """Recorded on the dev Slurm running acct_gather_energy/rapl (scripts/record_site_accounting.sh):
    the job's line is its numbered steps' sum (540 + 135 J), never the batch step added to them."""
    acct = _read("rapl_dev_slurm", "8")
    assert acct.plugin == "acct_gather_energy/rapl" and acct.scope == "cpu" and acct.node_freq_s == 1
    assert acct.consumed_energy_wh == pytest.approx(675 / 3600) and acct.reason is None
    assert [s["step"] for s in acct.steps] == ["8", "8.batch", "8.0", "8.1"]
    assert acct.elapsed_s == 9
    # 45 W (40 W package + 5 W DRAM, what the stand-in MSRs advance) over each step's time
    for step in acct.steps[1:]:
        nodes = 2 if step["nodes"] == "n[1-2]" else 1
        assert step["energy_j"] == pytest.approx(45 * step["elapsed_s"] * nodes, rel=0.1)


def test_parsing_keeps_unknown_apart_from_zero_and_other_jobs_out():
    rows = parse_sacct("JobID|ElapsedRaw|ConsumedEnergyRaw|NodeList\n9|5||n1\n9.batch|5|0|n1\n")
    assert [r.energy_j for r in rows] == [None, 0.0]
    assert parse_config("AcctGatherEnergyType = acct_gather_energy/ipmi\n") == (
        "acct_gather_energy/ipmi", None)
    other = job_accounting("10", "AcctGatherEnergyType = acct_gather_energy/ipmi",
                           (DATA / "ipmi_format.txt").read_text())
    assert other.consumed_energy_wh is None and "sacct knows no job 10" in other.reason
    empty = job_accounting("9", "AcctGatherEnergyType = acct_gather_energy/gpu",
                           "9|5||n1\n9.batch|5||n1\n")
    assert "recorded no energy for job 9" in empty.reason


def test_the_report_sets_the_site_figure_beside_the_measured_windows():
    import pandas as pd

    from energy_hpc.analysis.tables import table_site_accounting

    acct = _read("gpu_format", "4242")
    records = pd.DataFrame([{"cell_id": c, "passes": 2, "gpu_wh": 10.0, "fit_gpu_wh": 5.0,
                             "fit_passes": 1, "window_s": 100.0, "fit_window_s": 50.0,
                             "slurm_job_id": "4242", "slurm_energy_scope": acct.scope,
                             "slurm_energy_plugin": acct.plugin,
                             "slurm_consumed_energy_wh": acct.consumed_energy_wh,
                             "slurm_job_elapsed_s": acct.elapsed_s, "slurm_energy_reason": None}
                            for c in ("a", "b")])
    [row] = table_site_accounting(records).to_dict("records")
    assert row["Measured in windows (Wh)"] == 50.0  # 2 cells x (2 passes x 10 + 1 fit x 5)
    assert row["Site / measured"] == pytest.approx(50.0 / 50.0)
    assert row["Windows / elapsed"] == pytest.approx(300.0 / 612)
    assert row["Scope"] == "the job's GPUs" and row["Cells"] == 2


def test_rapl_accounting_is_set_beside_cpu_and_ram_together():
    """Slurm's rapl plugin adds the package and DRAM counters: the measured side adds both."""
    import json

    import pandas as pd

    from energy_hpc.analysis.tables import table_site_accounting

    meta = json.loads((DATA / "meta_rapl_dev_slurm.json").read_text())  # recorded, as above
    assert meta["plugin"] == "acct_gather_energy/rapl" and meta["consumed_energy_wh"] > 0
    records = pd.DataFrame([{"cell_id": "a", "passes": 4, "cpu_wh": 0.01, "ram_wh": 0.005,
                             "gpu_wh": None, "window_s": 2.0, "slurm_job_id": meta["job_id"],
                             "slurm_energy_scope": meta["scope"],
                             "slurm_energy_plugin": meta["plugin"],
                             "slurm_consumed_energy_wh": meta["consumed_energy_wh"],
                             "slurm_job_elapsed_s": meta["elapsed_s"], "slurm_energy_reason": None}])
    [row] = table_site_accounting(records).to_dict("records")
    assert row["Measured in windows (Wh)"] == pytest.approx(4 * 0.015)
    assert row["Scope"] == "the CPU packages and DRAM of the job's nodes"
