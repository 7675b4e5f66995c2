"""Load, overload and a short soak on loopback, bounded in time: bench/loadtest.py as a test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.server import ROOT

pytestmark = pytest.mark.load


def test_load_and_overload() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadtest",
            "--clients",
            "32",
            "--seconds",
            "15",
            "--overload",
            "100",
            "--soak",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    load, over = result["load"], result["overload"]
    assert load["errors"] == 0 and load["requests"] > 100
    # Flat memory: no growth beyond 64 MiB over the run.
    assert load["rss_end_mib"] - load["rss_start_mib"] < 64, load
    assert over["other"] == 0 and over["server_alive"], over
    assert over["ok"] >= 1 and over["busy_503"] >= 1, over
    # Bounded work: slots + queue (2 + 64) jobs admitted, only 2 computing at once.
    assert over["peak_rss_mib"] < 4096, over
    # Every kind of client at once: nothing but 200/413/503, every admission given back.
    soak = result["soak"]
    assert soak["errors"] == 0 and soak["normal_ok"] > 20, soak
    assert soak["abandoned"] > 20 and soak["admitted_end"] == 0, soak
    assert soak["slow_uploads"] >= 2 and soak["slow_uploads_ok"] == soak["slow_uploads"], soak
    assert soak["oversized"] >= 5 and soak["oversized_413"] == soak["oversized"], soak
    assert soak["rss_peak_mib"] - soak["rss_start_mib"] < 1024, soak
