"""Abuse, measured: `python -m bench.abuse [--markdown]`.

The long versions of tests/test_sockets.py's findings, against one server with the
default settings (2 slots, queue 64, 128 MiB uploads), one scenario after another:

- uploads: 32 clients upload a 100 MB .npy at once (format=json);
- slow: 20 clients send 100 MiB JSON bodies slowly (over the JSON limit), and 20 send
  100 MiB multipart uploads at 4 MiB/s each;
- unread: 8 clients ask for a 537 MB .npz and never read a byte of it;
- bombs: 8 .npz files that inflate to 96 MiB and 8 JPEGs that declare 4000×4000;
- abandon: 300 requests (streaming fit, compare, npz) whose clients hang up at once;
- idle: nothing for 10 s, the control for /healthz latency on a shared machine.

Throughout, /healthz is asked every 50 ms. Per scenario: the status codes, the peak RSS
over idle (VmHWM, reset before each scenario), /healthz p50/p99/max, and the admitted
count once idle. Prints JSON (and a markdown table with --markdown).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
import struct
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from app.config import Settings
from bench.server import ROOT, running
from bench.timing import status_kib

MIB = 1024 * 1024


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def request(path: str, body: bytes, ctype: str, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    return head.encode()


def multipart(name: str, filename: str, data: bytes) -> tuple[bytes, bytes, str]:
    """The parts before and after the file's bytes, and the Content-Type."""
    before = (
        f'--b0undary\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
        "\r\n\r\n"
    ).encode()
    return before, b"\r\n--b0undary--\r\n", "multipart/form-data; boundary=b0undary"


async def read_answer(sock: socket.socket) -> int:
    """The status of the answer on `sock`, after reading all of it; 0 if none came."""
    loop = asyncio.get_running_loop()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                return 0
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        left = length - len(body)
        while left > 0 and (chunk := await loop.sock_recv(sock, min(left, 1 << 20))):
            left -= len(chunk)
        return status
    except OSError:
        return 0


async def exchange(
    url: str,
    head: bytes,
    pieces: list[bytes],
    *,
    rate: float | None = None,
    read: bool = True,
    hold: float = 0.0,
    leave_after: float | None = None,
) -> int:
    """Send a request (at `rate` bytes/s if given), then read its answer: its status, or 0
    when none came. `read=False`: never read, keep the connection open `hold` seconds;
    `leave_after`: hang up that many seconds after sending."""
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if not read:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, int(port)))
    try:
        try:
            await loop.sock_sendall(sock, head)
            for piece in pieces:
                view = memoryview(piece)
                step = 256 * 1024 if rate else max(len(view), 1)
                for start in range(0, len(view), step):
                    await loop.sock_sendall(sock, view[start : start + step])
                    if rate:
                        await asyncio.sleep(step / rate)
        except OSError:
            return await read_answer(sock)  # refused mid-body: the answer came first
        if leave_after is not None:
            await asyncio.sleep(leave_after)
            return 0
        if not read:
            await asyncio.sleep(hold)
            return 0
        return await read_answer(sock)
    finally:
        sock.close()


def poll(url: str) -> None:
    """`python -m bench.abuse --poll URL`: ask /healthz every 50 ms until stdin closes, then
    print the latencies and the highest admission numbers seen, as JSON.

    A process of its own, so the clients' work never delays its measurements.
    """
    import threading

    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    latencies: list[float] = []
    most = {"admitted": 0, "computing": 0, "failed": 0}
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                numbers = client.get("/healthz").json()["admission"]
                most["admitted"] = max(most["admitted"], numbers["admitted"])
                most["computing"] = max(most["computing"], numbers["computing"])
            except (httpx.HTTPError, KeyError, ValueError):
                most["failed"] += 1
            latencies.append((time.perf_counter() - t0) * 1e3)
            stop.wait(0.05)
    print(json.dumps({"latencies_ms": latencies, **most}))


class Watch:
    """The /healthz poller (see `poll`) as a child process, for one scenario."""

    async def __aenter__(self) -> Watch:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.abuse",
            "--poll",
            self.url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        return self

    def __init__(self, url: str) -> None:
        self.url = url
        self.result: dict[str, Any] = {}

    async def __aexit__(self, *exc: object) -> None:
        out, _ = await self.proc.communicate(b"")
        self.result = json.loads(out)

    def summary(self) -> dict[str, Any]:
        lat = self.result["latencies_ms"]
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0]] * 99
        return {
            "healthz_requests": len(lat),
            "healthz_p50_ms": round(q[49], 1),
            "healthz_p99_ms": round(q[98], 1),
            "healthz_max_ms": round(max(lat), 1),
            "healthz_failed": self.result["failed"],
            "max_admitted": self.result["admitted"],
            "max_computing": self.result["computing"],
        }


async def idle(url: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until nothing is admitted or computing; the last numbers seen."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        end = time.monotonic() + timeout
        while True:
            numbers: dict[str, Any] = (await client.get("/healthz")).json()["admission"]
            if (numbers["admitted"] == 0 and numbers["computing"] == 0) or time.monotonic() > end:
                return numbers
            await asyncio.sleep(0.1)


async def scenario(
    name: str, url: str, pid: int, idle_kib: int, clients: Callable[[], Sequence[Awaitable[int]]]
) -> dict[str, Any]:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    async with Watch(url) as watch:
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        codes = await asyncio.gather(*clients())
        seconds = time.monotonic() - t0
        numbers = await idle(url)
        await asyncio.sleep(1.0)  # /healthz once idle again, too
    return {
        "scenario": name,
        "requests": len(codes),
        "statuses": dict(sorted(Counter(codes).items())),
        "seconds": round(seconds, 1),
        "peak_rss_over_idle_mib": round((status_kib("VmHWM", pid) - idle_kib) / 1024, 1),
        **watch.summary(),
        "admitted_after": numbers["admitted"],
    }


async def staggered(delay: float, client: Awaitable[int]) -> int:
    await asyncio.sleep(delay)
    return await client


def scenarios(url: str) -> dict[str, Callable[[], Sequence[Awaitable[int]]]]:
    # 100 MB: (25, 1024, 1024) float32.
    upload = npy(np.random.default_rng(0).standard_normal((25, 1024, 1024), dtype=np.float32))
    before, after, ctype = multipart("input", "acts.npy", upload)
    up_head = request("/api/v1/compare", b"", ctype, len(before) + len(upload) + len(after))
    json_head = request("/api/v1/compare", b"", "application/json", 100 * MIB)
    slow_data = b"\0" * (100 * MIB)
    s_before, s_after, s_ctype = multipart("input", "slow.npy", b"")
    slow_npy = npy(np.zeros((25, 1024, 1024), np.float32))  # 100 MiB and its header
    slow_head = request(
        "/api/v1/compare?heatmaps=false",
        b"",
        s_ctype,
        len(s_before) + len(slow_npy) + len(s_after),
    )
    # 32×1024×1024 in and out: five float32 arrays of 128 MiB, 537 MB of npz.
    big = json.dumps(
        {
            "input": {"generator": "gaussian", "height": 1024, "width": 1024, "channels": 32},
            "weights": {"preset": "random", "out_channels": 32},
        }
    ).encode()
    npz_head = request("/api/v1/compare?format=npz", big, "application/json")
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros((24, 1024, 1024), np.float32))
    bomb = buf.getvalue()
    b_before, b_after, b_ctype = multipart("input", "bomb.npz", bomb)
    bomb_head = request(
        "/api/v1/compare?heatmaps=false", b"", b_ctype, len(b_before) + len(bomb) + len(b_after)
    )
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16)).save(jpeg, format="JPEG")
    sof = jpeg.getvalue().find(b"\xff\xc0")
    liar = bytearray(jpeg.getvalue())
    liar[sof + 5 : sof + 9] = struct.pack(">HH", 4000, 4000)
    j_before, j_after, j_ctype = multipart("input", "liar.jpg", bytes(liar))
    jpeg_head = request("/api/v1/compare", b"", j_ctype, len(j_before) + len(liar) + len(j_after))
    fit = json.dumps({"steps": 2000, "every": 1}).encode()
    small = json.dumps(
        {"input": {"generator": "gaussian", "height": 256, "width": 256, "channels": 32}}
    ).encode()
    kinds = [
        request("/api/v1/experiments/fit?stream=true", fit, "application/json") + fit,
        request("/api/v1/compare", small, "application/json") + small,
        request("/api/v1/compare?format=npz", small, "application/json") + small,
    ]
    return {
        # The control: /healthz on an idle server, for the machine's own noise.
        "idle, 10 s (control)": lambda: [staggered(10.0, asyncio.sleep(0, 200))],
        "32 × 100 MB uploads at once": lambda: [
            exchange(url, up_head, [before, upload, after]) for _ in range(32)
        ],
        "20 slow 100 MiB JSON bodies": lambda: [
            exchange(url, json_head, [slow_data], rate=4 * MIB) for _ in range(20)
        ],
        "20 slow 100 MiB uploads (4 MiB/s)": lambda: [
            exchange(url, slow_head, [s_before, slow_npy, s_after], rate=4 * MIB) for _ in range(20)
        ],
        "8 unread 537 MB npz answers": lambda: [
            exchange(url, npz_head + big, [], read=False, hold=30) for _ in range(8)
        ],
        "8 npz bombs + 8 lying JPEGs": lambda: (
            [exchange(url, bomb_head, [b_before, bomb, b_after]) for _ in range(8)]
            + [exchange(url, jpeg_head, [j_before, bytes(liar), j_after]) for _ in range(8)]
        ),
        "300 abandoned requests": lambda: [
            staggered(0.01 * i, exchange(url, kinds[i % 3], [], leave_after=0.001 * (i % 20)))
            for i in range(300)
        ],
    }


def bound_mib(s: Settings) -> dict[str, float]:
    """docs/HARDENING.md's worst case, from the settings: RSS over idle, in MiB."""
    job = s.max_upload_bytes + 20 * s.max_values
    queued = s.spool_bytes + 512 * 1024 + 320 * 1024  # spool, write batch, uvicorn buffer
    return {
        "per_job_mib": round(job / MIB, 1),
        "per_admitted_request_mib": round(queued / MIB, 2),
        "generator_cache_mib": round(s.generator_cache_bytes / MIB, 1),
        "worst_case_over_idle_mib": round(
            (
                s.generator_cache_bytes
                + s.compute_slots * job
                + (s.compute_slots + s.queue_limit) * queued
            )
            / MIB,
            1,
        ),
    }


async def run_one(url: str, pid: int, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.post("/api/v1/compare", json={})  # warm up
    idle_kib = status_kib("VmRSS", pid)
    row = await scenario(name, url, pid, idle_kib, scenarios(url)[name])
    row["idle_rss_mib"] = round(idle_kib / 1024, 1)
    return row


def run_all(only: list[str] | None) -> list[dict[str, Any]]:
    """Each scenario on a fresh server, so each peak is its own."""
    rows = []
    for name in scenarios("http://127.0.0.1:1"):
        if only and not any(word in name for word in only):
            continue
        with running() as (url, server):
            rows.append(asyncio.run(run_one(url, server.pid, name)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="run the scenarios whose name has a word")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--poll", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll:
        poll(args.poll)
        return
    rows = run_all(args.only)
    result = {"bound": bound_mib(Settings()), "scenarios": rows}
    print(json.dumps(result, indent=2))
    if args.markdown:
        cols = [
            "scenario",
            "statuses",
            "peak_rss_over_idle_mib",
            "healthz_p50_ms",
            "healthz_p99_ms",
            "healthz_max_ms",
            "max_admitted",
            "admitted_after",
        ]
        print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for row in rows:
            print("| " + " | ".join(str(row[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
