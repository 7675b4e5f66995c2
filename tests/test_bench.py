"""The benchmark still runs against today's API (a smoke test, not a timed test)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.server import ROOT

pytestmark = pytest.mark.slow


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quick_sections_run_and_print_their_tables() -> None:
    out = run("--quick", "--only", "wire", "--only", "gemm", "--no-browser")
    assert "bytes per value" in out and "torch.mm ms" in out


def test_scaling_child_reports_time_and_the_memory_its_arrays_take() -> None:
    c, h, w, k = 64, 256, 256, 64
    row = json.loads(run("--scaling-child", f"{c},{h},{w},{k}").strip().splitlines()[-1])
    assert row["total_ms"] >= row["compute_ms"] > 0
    # The comparison's four float32 arrays live at once at its end: input and ReLU-only
    # (C, H, W), pre-activation and conv + ReLU (K, H, W): 64 MiB the peak must show, and
    # docs/BENCHMARKS.md promises at most 4× of them.
    arrays_mib = 4 * (2 * c * h * w + 2 * k * h * w) / 2**20
    assert arrays_mib == 64
    assert 0.9 * arrays_mib <= row["peak_mib"] <= 4 * arrays_mib, row
