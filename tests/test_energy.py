from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from energy_hpc.config import EnergyConfig
from energy_hpc.energy import Reading, aggregate_nodes, create_meters, measure_window
from energy_hpc.energy.base import flag_implausible
from energy_hpc.energy.carbon import emissions_kg
from energy_hpc.energy.nvml import NvmlMeter, PynvmlInterface
from energy_hpc.energy.rapl import RaplMeter
from energy_hpc.energy.window import net_of_idle
from energy_hpc.errors import MeterUnavailable
from tests.fake_gpus import FakeGpus

# --- RAPL: a fake powercap tree drives the real reader -------------------------------------


def make_powercap(root: Path, zones: dict[str, tuple[str, int, int]]) -> Path:
    for dirname, (name, energy, max_range) in zones.items():
        zone = root / dirname
        zone.mkdir(parents=True)
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text(f"{energy}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


def set_counter(root: Path, dirname: str, value: int | str) -> None:
    """Replace the counter in one step, as sysfs reads are atomic (a plain rewrite is not)."""
    tmp = root / dirname / "energy_uj.tmp"
    tmp.write_text(f"{value}\n")
    os.replace(tmp, root / dirname / "energy_uj")


def test_rapl_sums_packages_and_dram_and_skips_core(tmp_path):
    root = make_powercap(tmp_path, {
        "intel-rapl:0": ("package-0", 1_000_000, 10**12),
        "intel-rapl:0:0": ("core", 0, 10**12),
        "intel-rapl:0:1": ("dram", 0, 10**12),
        "intel-rapl:1": ("package-1", 5, 10**12),
    })
    meter = RaplMeter(root, poll_s=60)
    meter.start()
    set_counter(root, "intel-rapl:0", 1_000_000 + 3_600_000_000)  # +1 Wh
    set_counter(root, "intel-rapl:1", 5 + 1_800_000_000)  # +0.5 Wh
    set_counter(root, "intel-rapl:0:0", 999_999_999_999)  # core: must not count
    set_counter(root, "intel-rapl:0:1", 360_000_000)  # +0.1 Wh
    r = meter.stop()
    assert r.cpu_wh == pytest.approx(1.5) and r.ram_wh == pytest.approx(0.1)
    assert r.gpu_wh is None and r.methods == {"cpu": "rapl", "gpu": None, "ram": "rapl-dram"}
    assert {d.device for d in r.devices} == {"package-0@intel-rapl:0", "package-1@intel-rapl:1",
                                             "dram@intel-rapl:0:1"}


def test_rapl_handles_wraparound_via_max_range(tmp_path):
    max_range = 262_143_328_850
    root = make_powercap(tmp_path, {"intel-rapl:0": ("package-0", max_range - 1_000_000, max_range)})
    meter = RaplMeter(root, poll_s=60)
    meter.start()
    set_counter(root, "intel-rapl:0", 2_600_000)  # wrapped: 1 J before the top + 2.6 J after
    r = meter.stop()
    assert r.cpu_wh == pytest.approx(3.6e6 / 3.6e9)
    assert r.info["wraparounds"] == 1


def wait_for_polls(meter: RaplMeter, n: int, timeout_s: float = 10.0) -> None:
    """Let the background thread poll n more times (not a fixed sleep: CI machines stall)."""
    target = meter._samples + n
    deadline = time.monotonic() + timeout_s
    while meter._samples < target and time.monotonic() < deadline:
        time.sleep(0.01)


def test_rapl_polls_so_two_wraps_in_a_long_window_are_caught(tmp_path):
    max_range = 10_000_000
    root = make_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, max_range)})
    meter = RaplMeter(root, poll_s=0.05)
    meter.start()
    for value in (8_000_000, 2_000_000, 9_000_000, 1_000_000):  # +8, +4 (wrap), +7, +2 (wrap) J
        set_counter(root, "intel-rapl:0", value)
        wait_for_polls(meter, 2)
    r = meter.stop()
    assert r.cpu_wh == pytest.approx(21e6 / 3.6e9)
    assert r.info["wraparounds"] == 2 and r.samples >= 4


def test_rapl_background_read_failure_is_survived_and_flagged(tmp_path):
    root = make_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, 10**12)})
    meter = RaplMeter(root, poll_s=0.02)
    meter.start()
    set_counter(root, "intel-rapl:0", 1_000_000)
    wait_for_polls(meter, 2)
    set_counter(root, "intel-rapl:0", "")  # a read that fails while the poll thread runs
    deadline = time.monotonic() + 10
    while meter._poll_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    set_counter(root, "intel-rapl:0", 3_000_000)
    wait_for_polls(meter, 2)
    assert meter._thread is not None and meter._thread.is_alive()
    r = meter.stop()
    assert r.cpu_wh == pytest.approx(3e6 / 3.6e9)
    assert r.info["poll_errors"] >= 1
    assert any("background read(s) failed" in f for f in r.flags)


def test_rapl_unreadable_at_window_end_is_an_error_not_a_number(tmp_path):
    root = make_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, 10**12)})
    meter = RaplMeter(root, poll_s=60)
    meter.start()
    set_counter(root, "intel-rapl:0", "garbage")
    with pytest.raises(MeterUnavailable, match="end of the window"):
        meter.stop()


def test_rapl_unreadable_reasons(tmp_path, monkeypatch):
    with pytest.raises(MeterUnavailable, match="does not exist"):
        RaplMeter(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeterUnavailable, match="no RAPL package zones"):
        RaplMeter(tmp_path / "empty")
    root = make_powercap(tmp_path / "locked", {"intel-rapl:0": ("package-0", 1, 10)})

    def deny(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: deny(self)
                        if self.name == "energy_uj" else Path.open(self).read())
    with pytest.raises(MeterUnavailable, match="readable by root only"):
        RaplMeter(root)


# --- NVML: the meter's logic against an injected device interface ----------------------------


def test_nvml_counter_deltas_only_for_owned_gpus():
    gpus = FakeGpus()
    meter = NvmlMeter(gpus, visible="2,GPU-0000")
    assert [g.index for g in meter.gpus] == [2, 0]
    meter.start()
    gpus.energy[2] += 3_600_000  # 1 Wh
    gpus.energy[0] += 1_800_000
    gpus.energy[1] += 99_000_000  # not ours
    r = meter.stop()
    assert r.gpu_wh == pytest.approx(1.5)
    assert r.methods["gpu"] == "nvml-counter" and r.cpu_wh is None and r.ram_wh is None
    assert r.info["driver"] == "550.54" and r.info["gpus"][0]["power_limit_w"] == 700
    assert meter.rated_power_w == 1400


def test_nvml_without_counter_integrates_power_samples():
    gpus = FakeGpus(n=1, counter=False, power_mw=300_000)
    meter = NvmlMeter(gpus, sample_s=0.02, visible=None)
    meter.start()
    time.sleep(0.5)
    r = meter.stop()
    assert r.methods["gpu"].startswith("nvml-power-sampling")
    assert r.samples >= 5
    assert r.gpu_wh == pytest.approx(300 * r.duration_s / 3600, rel=0.1)


class DriftingGpus(FakeGpus):
    """A counter that advances by ``counter_share`` of what the steady power delivers: the
    counter and the sampled power then disagree by a known amount."""

    def __init__(self, counter_share, **kw):
        super().__init__(**kw)
        self.counter_share, self.t0 = counter_share, None

    def total_energy_mj(self, h):
        now = time.perf_counter()
        self.t0 = self.t0 or now
        return int(self.energy[h] + self.counter_share * self.power[h] * (now - self.t0))


@pytest.mark.parametrize(("share", "disagree"), [(1.0, False), (0.7, True)])
def test_nvml_checks_its_counter_against_power_sampling_once_per_gpu(monkeypatch, share, disagree):
    monkeypatch.setattr(NvmlMeter, "checked_uuids", set())
    gpus = DriftingGpus(share, n=2, power_mw=250_000)
    meter = NvmlMeter(gpus, sample_s=0.02, visible="0,1")
    meter.start()
    time.sleep(0.4)
    first = meter.stop()
    checks = first.info["counter_check"]
    assert [c["gpu"] for c in checks] == [0, 1]
    for c in checks:
        assert c["sampled_wh"] == pytest.approx(250 * c["window_s"] / 3600, rel=0.15)
        assert c["ratio"] == pytest.approx(share, rel=0.15) and c["disagree"] is disagree
    assert first.methods["gpu"] == "nvml-counter"  # the counter stays the number
    assert first.gpu_wh == pytest.approx(sum(c["counter_wh"] for c in checks))
    assert any("energy counter" in f and "sampled" in f for f in first.flags) is disagree
    meter.start()  # the same job's next window: checked already, no sampling thread
    assert meter._thread is None
    second = meter.stop()
    assert "counter_check" not in second.info
    other = NvmlMeter(gpus, sample_s=0.02, visible="0", counter_check=False)
    other.start()
    assert other._thread is None and "counter_check" not in other.stop().info


def test_the_counter_check_reaches_the_record_of_a_multi_node_cell():
    from energy_hpc.runner import counter_checks

    node = Reading("nvml", 2.0, gpu_wh=1.0, node="n2",
                   info={"counter_check": [{"gpu": 0, "ratio": 0.99, "disagree": False}]})
    combined = Reading("nvml", 2.0, gpu_wh=2.0, info={"node_readings": [node.to_dict()]})
    assert counter_checks([combined]) == [{"gpu": 0, "ratio": 0.99, "disagree": False, "node": "n2"}]
    assert counter_checks([Reading("codecarbon", 1.0, cpu_wh=1.0)]) == []


def test_nvml_counter_backwards_is_flagged_not_clipped():
    gpus = FakeGpus(n=1)
    meter = NvmlMeter(gpus, visible="0")
    meter.start()
    gpus.energy[0] -= 5
    r = meter.stop()
    assert r.gpu_wh < 0 and any("backwards" in f for f in r.flags)


def test_nvml_bad_visible_devices():
    with pytest.raises(MeterUnavailable, match="NVML sees 4"):
        NvmlMeter(FakeGpus(), visible="7")
    with pytest.raises(MeterUnavailable, match="GPU-zz"):
        NvmlMeter(FakeGpus(), visible="GPU-zz")
    with pytest.raises(MeterUnavailable, match="owns no GPU"):
        NvmlMeter(FakeGpus(), visible="")


def test_nvml_library_missing_gives_reason():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        with pytest.raises(MeterUnavailable, match="nvml: NVML could not start"):
            PynvmlInterface()
    else:  # pragma: no cover - only on a GPU machine
        pytest.skip("NVML works here")


def test_named_meter_unavailable_fails_before_running():
    with pytest.raises(MeterUnavailable, match="nvml"):
        create_meters(EnergyConfig(meters=["nvml"]))


def test_auto_falls_back_and_records_it():
    [meter] = create_meters(EnergyConfig(meters=["auto"], interval_s=1))
    assert meter.name == "auto"
    window = measure_window([meter], lambda: sum(range(10000)), min_window_s=0.2)
    r = window.readings[0]
    assert r.info["fallbacks"] and any("nvml" in f for f in r.info["fallbacks"])
    assert r.cpu_wh is not None and r.methods["cpu"].startswith(("rapl", "codecarbon"))
    assert r.gpu_wh is None and r.methods["gpu"] is None


# --- CodeCarbon: real, offline, on this machine --------------------------------------------------


@pytest.mark.parametrize("ram_model", ["codecarbon", "paper_job", "paper_rss"])
def test_codecarbon_reading_structure_and_methods(ram_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [meter] = create_meters(EnergyConfig(meters=["codecarbon"], interval_s=1, ram_model=ram_model))
    window = measure_window([meter], lambda: sum(i * i for i in range(20000)), min_window_s=0.3)
    r = window.readings[0]
    assert window.passes > 1 and r.duration_s >= 0.3
    assert r.cpu_wh is not None and r.cpu_wh > 0 and r.methods["cpu"].startswith("codecarbon-")
    assert r.gpu_wh is None and r.methods["gpu"] is None  # no GPU here: unknown, not 0
    assert r.ram_wh is not None and r.ram_wh > 0
    expected = {"codecarbon": "codecarbon-", "paper_job": "paper-0.375W/GB-job-memory",
                "paper_rss": "paper-0.375W/GB-process-rss"}[ram_model]
    assert r.methods["ram"].startswith(expected)
    assert r.info["codecarbon_version"]
    if ram_model != "codecarbon":
        assert r.ram_wh == pytest.approx(0.375 * r.info["ram_gb"] * r.duration_s / 3600)
    assert list(tmp_path.iterdir()) == []  # CodeCarbon dropped no files into the working dir


# --- aggregation, plausibility, carbon, idle ---------------------------------------------------


def reading(node, duration, cpu=None, gpu=None, ram=None, meter="nvml"):
    return Reading(meter=meter, duration_s=duration, cpu_wh=cpu, gpu_wh=gpu, ram_wh=ram,
                   methods={"cpu": "rapl" if cpu is not None else None,
                            "gpu": "nvml-counter" if gpu is not None else None, "ram": None},
                   node=node)


def test_aggregate_sums_energy_and_takes_max_duration():
    agg = aggregate_nodes([reading("n1", 10.0, cpu=1.0, gpu=4.0), reading("n2", 12.5, cpu=2.0, gpu=5.0),
                           reading("n3", 7.0, cpu=0.5, gpu=1.0)])
    assert agg.duration_s == 12.5
    assert agg.cpu_wh == pytest.approx(3.5) and agg.gpu_wh == pytest.approx(10.0)
    assert agg.ram_wh is None and agg.methods["ram"] is None  # null parts stay null
    assert agg.energy_wh == pytest.approx(13.5) and agg.node == "n1+n2+n3"


def test_aggregate_flags_part_missing_on_some_nodes():
    agg = aggregate_nodes([reading("n1", 1.0, gpu=1.0), reading("n2", 1.0, cpu=1.0)])
    assert agg.gpu_wh == 1.0 and agg.cpu_wh == 1.0
    assert "gpu_wh unknown on node(s) n2; sum covers the others" in agg.flags
    assert "cpu_wh unknown on node(s) n1; sum covers the others" in agg.flags


def test_aggregate_refuses_mixed_meters():
    with pytest.raises(ValueError, match="different meters"):
        aggregate_nodes([reading("n1", 1, cpu=1), reading("n2", 1, cpu=1, meter="rapl")])


def test_implausible_reading_is_flagged_never_clipped():
    r = flag_implausible(reading("n1", 3600.0, gpu=1000.0), {"gpu": 700.0})
    assert r.gpu_wh == 1000.0 and any("exceeds rated 700 W" in f for f in r.flags)
    ok = flag_implausible(reading("n1", 3600.0, gpu=600.0), {"gpu": 700.0})
    assert ok.flags == []


def test_emissions_from_energy_and_country():
    assert emissions_kg(1000.0, "DEU") == pytest.approx(0.38095, rel=1e-3)
    assert emissions_kg(None, "DEU") is None
    assert emissions_kg(1000.0, "FRA") < emissions_kg(1000.0, "DEU")


def test_net_of_idle_subtracts_idle_power_times_window():
    gross = reading("n1", 10.0, cpu=2.0, gpu=3.0)
    idle = reading("n1", 5.0, cpu=0.5, gpu=None)
    net = net_of_idle(gross, idle)
    assert net["cpu"] == pytest.approx(1.0) and net["gpu"] is None and net["total"] == pytest.approx(1.0)


def test_window_repeats_until_min_window():
    calls = []
    window = measure_window([], lambda: calls.append(1), min_window_s=0.1)
    assert window.passes == len(calls) > 1 and window.wall_s >= 0.1
    assert measure_window([], lambda: None, min_window_s=0.0, min_passes=3).passes == 3
    assert not math.isnan(window.wall_s)


def test_window_never_shorter_than_the_coarsest_meters_resolution():
    class Coarse:
        name = "coarse"
        resolution_s = 0.3
        scope = "job"

        def start(self):
            import time as t

            self.t0 = t.perf_counter()

        def stop(self):
            import time as t

            return Reading(meter="coarse", duration_s=t.perf_counter() - self.t0, cpu_wh=1e-6,
                           methods={"cpu": "x", "gpu": None, "ram": None})

    w = measure_window([Coarse()], lambda: None, min_window_s=0.0)
    assert w.wall_s >= 0.3 and w.readings[0].flags == []
    capped = measure_window([Coarse()], lambda: None, min_window_s=0.0, max_passes=1)
    assert capped.passes == 1 and "shorter than coarse's resolution (0.3 s)" in capped.readings[0].flags[0]
