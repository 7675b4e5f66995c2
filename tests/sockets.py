"""Talking to a real server over sockets: raw requests, clients that leave, and the server
process's own numbers (/proc) — for the tests whose point is the socket or the process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.server import running


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """Start a new peak-RSS (VmHWM) measurement at the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_growth_mib(pid: int, before_kib: int) -> float:
    return (status_kib(pid, "VmHWM") - before_kib) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of the process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admission(url: str) -> dict[str, Any]:
    r = httpx.get(url + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    return dict(r.json()["admission"])


def wait_idle(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll /healthz until nothing is admitted; the last numbers seen."""
    end = time.monotonic() + timeout
    while True:
        numbers = admission(url)
        if numbers["admitted"] == 0 and numbers["computing"] == 0:
            return numbers
        assert time.monotonic() < end, numbers
        time.sleep(0.05)


def raw_request(
    path: str,
    body: bytes,
    ctype: str = "application/json",
    extra: str = "",
    declared: int | None = None,
) -> bytes:
    """A POST as bytes; `declared` sets a Content-Length other than the body's (a client
    that will send more, or lies)."""
    length = len(body) if declared is None else declared
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    )
    return head.encode() + body


def gaussian_npz_request(channels: int, side: int = 512) -> bytes:
    """A compare of `channels` gaussian maps of side × side through as many random
    filters, answered as npz: four float32 arrays of channels × side² (24 channels: 100 MB)."""
    spec = {
        "input": {"generator": "gaussian", "height": side, "width": side, "channels": channels},
        "weights": {"preset": "random", "out_channels": channels},
    }
    return raw_request("/api/v1/compare?format=npz", json.dumps(spec).encode())


def multipart(parts: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type (filename None: a text field)."""
    out = b""
    for name, (filename, data) in parts.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--xyzzy\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + b"--xyzzy--\r\n", "multipart/form-data; boundary=xyzzy"


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def send_and_leave(url: str, request: bytes, after: float) -> None:
    """What a closed browser tab does: send the whole request, wait, hang up."""
    _, writer = await asyncio.open_connection(*host_port(url))
    writer.write(request)
    await writer.drain()
    await asyncio.sleep(after)
    await hang_up(writer)


@contextmanager
def serve(env: dict[str, str], tmp: Path) -> Iterator[tuple[str, int]]:
    with running(env=env, log_path=tmp / "server.log") as (url, proc):
        yield url, proc.pid


def closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes `sock` (reads b""), or None within `limit`."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - t0


def answers(sock: socket.socket, count: int, limit: float = 10) -> list[int]:
    """Read `count` whole HTTP answers (Content-Length bodies) from `sock`: their statuses."""
    sock.settimeout(limit)
    data, statuses = b"", []
    while len(statuses) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(statuses)} answers"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            int(v) for k, _, v in (x.partition(":") for x in lines) if k.lower() == "content-length"
        )
        while len(data) < length:
            data += sock.recv(65536)
        data = data[length:]
        statuses.append(int(lines[0].split()[1]))
    return statuses
