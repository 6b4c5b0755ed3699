"""One short GPU check: ~20 s of matrix multiplies on one GPU, measured three ways at once.

NVML's energy counter, NVML power sampling (0.1 s) and CodeCarbon measure the same window; the
script prints the three energies and their ratios (expected agreement within 5%). Needs a CUDA
torch and an NVIDIA GPU:

    python benchmarks/gpu_energy_check.py [--seconds 20] [--size 8192]
"""

from __future__ import annotations

import argparse
import time

from energy_hpc.energy.codecarbon_meter import CodeCarbonMeter
from energy_hpc.energy.nvml import NvmlMeter, PynvmlInterface
from energy_hpc.energy.window import measure_window


class SamplingOnly(PynvmlInterface):
    """The real NVML with the counter hidden, so the meter integrates power samples instead."""

    def total_energy_mj(self, handle):  # noqa: ANN001
        from energy_hpc.energy.nvml import CounterNotSupported

        raise CounterNotSupported()


def steady_load(seconds: float, size: int, device: str = "cuda") -> list:
    """``seconds`` of bf16 matrix multiplies measured at once by NVML's counter, NVML power
    sampling (0.1 s) and CodeCarbon, in that order (on ``device="cpu"``: CodeCarbon alone)."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    cuda = device != "cpu"

    def burst() -> None:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            a @ b
        if cuda:
            torch.cuda.synchronize()

    for _ in range(10):
        a @ b
    meters = [CodeCarbonMeter(interval_s=1.0)]
    if cuda:
        torch.cuda.synchronize()
        meters = [NvmlMeter(visible="0"), NvmlMeter(SamplingOnly(), sample_s=0.1, visible="0"), *meters]
    return measure_window(meters, burst, min_window_s=seconds).readings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", type=int, default=8192)
    args = ap.parse_args()
    import torch

    assert torch.cuda.is_available(), "needs a CUDA GPU"
    rc, rs, rcc = steady_load(args.seconds, args.size)
    print(f"GPU: {rc.info['gpus'][0]['name']}, driver {rc.info['driver']}, window {rc.duration_s:.2f} s")
    print(f"nvml counter      : {rc.gpu_wh:.4f} Wh  ({rc.avg_power_w:.1f} W)")
    print(f"nvml sampling 0.1s: {rs.gpu_wh:.4f} Wh  ratio to counter {rs.gpu_wh / rc.gpu_wh:.4f}")
    gpu_cc = rcc.gpu_wh
    print(f"codecarbon GPU    : {gpu_cc if gpu_cc is not None else float('nan'):.4f} Wh  ratio to counter "
          f"{(gpu_cc or float('nan')) / rc.gpu_wh:.4f}")


if __name__ == "__main__":
    main()
