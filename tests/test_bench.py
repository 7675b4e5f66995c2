"""The benchmark still runs against today's API (a smoke test, not a timed test)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.server import ROOT


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


def test_scaling_child_reports_time_and_memory() -> None:
    row = json.loads(run("--scaling-child", "8,16,16,8").strip().splitlines()[-1])
    assert row["total_ms"] > 0 and row["peak_mib"] >= 0
