"""Start the real service on a free loopback port and wait until it is healthy.

One way to do it for the tests, the benchmark, the load test and the screenshot script.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server process from the checkout; its output to `log_path`, or nowhere."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        if not isinstance(log, int):
            log.close()  # the child holds its own copy


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} not healthy after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running(
    workers: int = 1, env: dict[str, str] | None = None, log_path: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`onebyone serve` on a free port, healthy: yields its URL and process, then stops it."""
    port = free_port()
    args = [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
            "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
    proc = start(args, env, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=120)
        yield url, proc
    finally:
        stop(proc)
