"""Three replicas behind HAProxy, as a Kubernetes Service with readiness gating would send
them traffic: one killed with SIGKILL and one rolled under load, and no request fails
(bench/cluster.py, bounded: about a minute and a half here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.cluster import DRAIN_LIMIT_S, LOGS, Replica, haproxy
from bench.server import ROOT, free_port


@pytest.fixture(autouse=True)
def needs_haproxy() -> None:
    if shutil.which("haproxy") is None:
        message = "haproxy is missing; scripts/test installs Debian's when run as root"
        if os.environ.get("ONEBYONE_REQUIRE_DEPLOY_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)


def test_with_no_replica_ready_haproxy_answers_503_with_retry_after_itself(
    tmp_path: Path,
) -> None:
    nobody = Replica("r1", free_port(), tmp_path / "r1.log")  # never started
    with haproxy([nobody], tmp_path, wait_up=False) as proxy:
        r = httpx.post(proxy.url + "/api/v1/compare", json={}, timeout=10)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["code"] == "no_replica" and set(r.json()) == {"detail", "field", "code"}


@pytest.mark.load
def test_a_replica_killed_and_one_rolled_under_load_fail_no_request() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--settle", "3", "--throughput", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    f = json.loads(done.stdout)["failover"]
    logs = f"(logs in {LOGS / 'failover'})"
    for kind in (f, f["fits"]):
        # Only 200, and 503 with Retry-After: no cut connection, no 502.
        assert kind["failures"] == {} and kind["other_statuses"] == {}, (kind, logs)
        assert kind["busy_503_without_retry_after"] == 0, (kind, logs)
    assert f["ok"] > 200 and f["fits"]["ok"] >= 1, f
    assert [e["event"] for e in f["events"]] == [
        "sigkill", "restarted", "sigterm_exit", "restarted"
    ]  # fmt: skip
    (exit_event,) = [e for e in f["events"] if e["event"] == "sigterm_exit"]
    assert exit_event["exit_s"] < DRAIN_LIMIT_S + 1.0, f["events"]
    drain = f["rolled_replica_drain"]
    assert drain[0]["event"] == "drain_start" and drain[-1]["event"] == "drain_end", drain
    assert drain[-1]["admitted"] == 0, drain
    # Every replica, the one killed and the one rolled (both started again) included.
    assert f["admitted_end"] == {"r1": 0, "r2": 0, "r3": 0}, f
