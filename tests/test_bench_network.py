"""bench.network still runs (a smoke test, not a timed test)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import network as bench_network
from bench.server import ROOT


@pytest.mark.slow
def test_the_rss_child_reports_one_cached_photo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.network", "--rss-child"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["cached_bytes"] == row["photo_bytes"] == 11_751_456  # 35 inputs + logits
    # What caching one photo keeps is its 11.2 MiB, not a copy of the pass beside it (RSS may
    # grow by less: the warm-up pass's freed pages are reused), and its peak stays near it.
    photo_mib = row["photo_bytes"] / 2**20
    assert 0 < row["kept_mib"] <= 1.5 * photo_mib, row
    assert row["kept_mib"] <= row["peak_mib"] <= 4 * photo_mib, row


def test_forward_times_cover_every_photo() -> None:
    timings = bench_network.forward_times(rounds=1, threads=(1,))
    assert [t.photo for t in timings] == [
        "chelsea",
        "coffee",
        "astronaut",
        "rocket",
        "grace_hopper",
    ]
    assert all(t.run_ms[0] > 0 and t.forward_ms[0] > 0 for t in timings)
