"""app.drain: a shutdown with a bound, on a real `onebyone serve` (signals and sockets are the
point), and the settings that keep the drain inside a pod's grace period."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app import drain
from app.config import Settings
from app.gate import ComputeGate
from bench.server import ROOT, free_port, start, stop, wait_healthy

# A fit of several seconds here (5000 steps on 8×128×128), far past the drain limits below.
LONG_FIT = {
    "input": {"generator": "catdog", "height": 128, "width": 128, "channels": 8},
    "steps": 5000,
}
# A fit well under a second.
SHORT_FIT = {**LONG_FIT, "steps": 200}


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"drain_timeout_s": 20, "grace_period_s": 30, "prestop_s": 5}, False),
        ({"drain_timeout_s": 24, "grace_period_s": 30, "prestop_s": 5}, False),
        ({"drain_timeout_s": 25, "grace_period_s": 30, "prestop_s": 5}, True),
        ({"drain_timeout_s": 30, "grace_period_s": 30}, True),
        ({"drain_timeout_s": 40, "grace_period_s": 30}, True),
        ({"drain_timeout_s": 600}, False),  # no orchestrator: no grace period to fit in
    ],
)
def test_the_drain_must_end_a_second_before_the_grace_period(
    values: dict[str, float], refused: bool
) -> None:
    if not refused:
        assert Settings(**values).drain_timeout_s == values["drain_timeout_s"]
        return
    with pytest.raises(ValidationError, match="ONEBYONE_DRAIN_TIMEOUT_S") as info:
        Settings(**values)
    assert "terminationGracePeriodSeconds" in str(info.value)


@pytest.mark.slow
def test_serve_refuses_a_drain_limit_not_shorter_than_the_grace_period() -> None:
    env = {**os.environ, "ONEBYONE_DRAIN_TIMEOUT_S": "30", "ONEBYONE_GRACE_PERIOD_S": "30"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("onebyone: error: settings: Value error, the drain limit")
    assert "ONEBYONE_GRACE_PERIOD_S (30 s)" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------- in-process


def test_on_signals_starts_the_drain_and_still_calls_the_handler_it_wraps() -> None:
    calls: list[int] = []
    saved = signal.getsignal(signal.SIGTERM)

    async def main() -> None:
        gate = ComputeGate(slots=1, queue=1, timeout_s=5)
        d = drain.Drain(gate, timeout_s=5)

        def server_handler(signum: int, frame: object) -> None:
            calls.append(signum)

        signal.signal(signal.SIGTERM, server_handler)
        undo = drain.on_signals(d)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert calls == [signal.SIGTERM]  # the server's own handler ran
        assert d.task is not None
        await d.task  # nothing admitted: over at once
        assert gate.snapshot()["draining"] is True
        undo()
        assert signal.getsignal(signal.SIGTERM) is server_handler
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == [signal.SIGTERM] * 2
        gate.close()

    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_on_signals_leaves_a_signal_nobody_handles_alone() -> None:
    saved = signal.getsignal(signal.SIGTERM)

    async def main() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        undo = drain.on_signals(drain.Drain(ComputeGate(1, 0, 1), 1))
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # still ends the process
        undo()

    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_while_draining_requests_get_503_and_readyz_says_draining() -> None:
    from app.main import create_app

    app = create_app(Settings())

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                assert (await c.get("/readyz")).json()["status"] == "ready"
                app.state.drain.start()
                await app.state.drain.task
                r = await c.post("/api/v1/compare", json={})
                assert r.status_code == 503 and r.headers["retry-after"] == "1"
                assert r.json()["code"] == "busy" and "shutting down" in r.json()["detail"]
                ready = await c.get("/readyz")
                assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
                assert ready.json()["status"] == "draining"
                health = await c.get("/healthz")
                assert health.status_code == 200
                assert health.json()["admission"]["draining"] is True
                assert "onebyone_draining 1.0" in (await c.get("/metrics")).text

    asyncio.run(main())


# ---------------------------------------------------------------- a real server


@contextmanager
def serving(
    tmp_path: Path, workers: int = 1, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    log = tmp_path / "server.log"
    args = [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
            "--workers", str(workers)]  # fmt: skip
    proc = start(args, {f"ONEBYONE_{k.upper()}": v for k, v in env.items()}, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=120)
        yield url, proc, log
    finally:
        if proc.poll() is None:
            stop(proc)


def admitted(url: str) -> int:
    return int(httpx.get(url + "/healthz", timeout=5).json()["admission"]["admitted"])


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:  # the assertion below names it
            out["error"] = exc
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        if ' onebyone {"event": "drain' in line:
            found.append(json.loads(line.split(" onebyone ", 1)[1]))
    return found


@pytest.mark.slow
def test_a_request_admitted_before_sigterm_completes_and_new_connections_are_refused(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, drain_timeout_s="20") as (url, proc, log):
        fit, out = in_thread(
            lambda: httpx.post(url + "/api/v1/experiments/fit", json=SHORT_FIT, timeout=60)
        )
        wait_for(lambda: admitted(url) == 1)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/healthz", timeout=5)
        fit.join(30)
        assert "error" not in out, out
        assert out["value"].status_code == 200, out["value"].text
        assert out["value"].json()["final"]["conv_relu"] >= 0
        proc.wait(20)
        # Out as soon as its work was done, not at the 20 s limit.
        assert time.monotonic() - sent < 10
        assert out["at"] - sent < 10
    kinds = [e["event"] for e in events(log)]
    assert kinds[0] == "drain_start" and kinds[-1] == "drain_end" and "drain_limit" not in kinds
    assert events(log)[-1]["admission"]["admitted"] == 0


def _slow_upload(url: str) -> bytes:
    """A compare whose JSON body never finishes arriving: all it ever gets is its answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/v1/compare HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"input": '
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.slow
def test_requests_still_running_at_the_limit_get_503_and_the_process_exits_in_time(
    tmp_path: Path,
) -> None:
    limit = 2.0
    with serving(
        tmp_path, drain_timeout_s=str(limit), body_min_bytes_per_s="0", body_idle_timeout_s="60"
    ) as (url, proc, log):

        def stream() -> str:
            with httpx.stream(
                "POST", url + "/api/v1/experiments/fit?stream=true", json=LONG_FIT, timeout=60
            ) as r:
                assert r.status_code == 200
                return "".join(r.iter_text())

        threads = [
            in_thread(
                lambda: httpx.post(url + "/api/v1/experiments/fit", json=LONG_FIT, timeout=60)
            ),
            in_thread(stream),
            in_thread(lambda: _slow_upload(url)),
        ]
        wait_for(lambda: admitted(url) == 3)
        time.sleep(0.3)  # the two fits are computing
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(limit + 10)
        exited = time.monotonic() - sent
        for thread, _ in threads:
            thread.join(10)
    outs = [out for _, out in threads]
    assert all("error" not in out for out in outs), outs
    fit, sse, upload = (out["value"] for out in outs)
    assert fit.status_code == 503 and fit.headers["retry-after"] == "1"
    assert fit.json()["code"] == "busy" and "drain limit" in fit.json()["detail"]
    assert "event: progress" in sse
    error = sse.rsplit("event: error\ndata: ", 1)[1]
    assert json.loads(error)["status"] == 503 and "event: result" not in sse
    head = upload.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 503") and b"\r\nretry-after: 1" in head, upload
    for out in outs:  # answered at the limit, not before, and not much after
        assert limit - 0.1 < out["at"] - sent < limit + 1.0, out["at"] - sent
    assert exited < limit + 1.0, exited
    logged = events(log)
    assert logged[0]["event"] == "drain_start"
    assert logged[0]["admission"]["admitted"] == 3 and logged[0]["admission"]["draining"]
    stopped = next(e for e in logged if e["event"] == "drain_limit")
    assert stopped["stopped"] == 3
    assert logged[-1]["event"] == "drain_end" and logged[-1]["admission"]["admitted"] == 0


@pytest.mark.slow
def test_with_workers_each_worker_drains_and_the_supervisor_exits_in_time(
    tmp_path: Path,
) -> None:
    limit = 2.0
    with serving(tmp_path, workers=2, drain_timeout_s=str(limit)) as (url, proc, log):
        fit, out = in_thread(
            lambda: httpx.post(url + "/api/v1/experiments/fit", json=LONG_FIT, timeout=60)
        )
        # Either worker may have it (/healthz asks one of them): give it a second to start.
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # the supervisor passes it to each worker
        proc.wait(limit + 10)
        exited = time.monotonic() - sent
        fit.join(10)
    assert "error" not in out, out
    assert out["value"].status_code == 503 and out["value"].headers["retry-after"] == "1"
    assert exited < limit + 1.0, exited
    ends = [e for e in events(log) if e["event"] == "drain_end"]
    assert len(ends) == 2 and all(e["admission"]["admitted"] == 0 for e in ends)
