"""What needs a real server: uvicorn on a loopback port, in its own process.

Clients that hang up while queued, computing or streaming; bodies that come slowly or
never end; answers nobody reads; a connection closed after a refusal; overload, and the
log it leaves; the server process's own memory and CPU (read from /proc); several
workers. Each test reproduces a finding of issue 9 (docs/HARDENING.md). Everything that
is not about the socket or the process is tested in-process, in the module's own file.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from bench.server import running
from tests import files
from tests.sockets import (
    admission,
    cpu_seconds,
    gaussian_npz_request,
    hang_up,
    host_port,
    multipart,
    peak_growth_mib,
    raw_request,
    reset_peak,
    send_and_leave,
    serve,
    status_kib,
    wait_idle,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def tight_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server with one compute slot, a queue of one, and a short time budget."""
    log = tmp_path / "server.log"
    env = {
        "ONEBYONE_COMPUTE_SLOTS": "1",
        "ONEBYONE_QUEUE_LIMIT": "1",
        "ONEBYONE_REQUEST_TIMEOUT_S": "0.5",
    }
    with running(env=env, log_path=log) as (url, _):
        yield url, log


BIG = {
    "input": {"generator": "gaussian", "height": 256, "width": 256, "channels": 256},
    "weights": {"preset": "random", "out_channels": 256},
}


async def _burst(url: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post("/api/v1/compare", params={"format": "npz"}, json=BIG)
                    for _ in range(n)
                )
            )
        )


def test_overload_gets_only_200_or_503_and_the_server_stays_up(
    tight_server: tuple[str, Path],
) -> None:
    url, log = tight_server
    responses = asyncio.run(_burst(url, 10))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503}, codes
    busy = [r for r in responses if r.status_code == 503]
    assert busy, codes
    assert all(r.headers["retry-after"] == "1" for r in busy)
    assert all("Retry" in r.json()["detail"] or "retry" in r.json()["detail"] for r in busy)
    assert httpx.get(url + "/healthz").status_code == 200
    lines = [
        json.loads(line.split(" onebyone ", 1)[1])
        for line in log.read_text().splitlines()
        if " onebyone {" in line
    ]
    assert any(r["path"] == "/api/v1/compare" and r["status"] == 503 for r in lines)
    assert "Traceback" not in log.read_text()


def test_lying_upload_over_http_is_a_4xx_on_a_kept_alive_connection(live: httpx.Client) -> None:
    for data in files.LYING:
        r = live.post("/api/v1/compare", files={"input": ("liar.npy", data)})
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["field"] == "input" and r.json()["detail"]
    assert live.get("/healthz").json()["admission"]["admitted"] == 0


# One compute thread, a short queue and short timeouts: leaks and overruns show at once.
ABUSE_ENV = {
    "ONEBYONE_COMPUTE_SLOTS": "1",
    "ONEBYONE_QUEUE_LIMIT": "3",
    "ONEBYONE_REQUEST_TIMEOUT_S": "1.5",
    "ONEBYONE_TORCH_THREADS": "1",
    "ONEBYONE_SEND_TIMEOUT_S": "1",
    "ONEBYONE_BODY_IDLE_TIMEOUT_S": "1",
    "ONEBYONE_BODY_TIMEOUT_S": "4",
}


@pytest.fixture(scope="module")
def abuse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with serve(ABUSE_ENV, tmp_path_factory.mktemp("abuse")) as server:
        yield server


# Default limits (128 MiB uploads, 2 slots), short send and body timeouts.
@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    env = {
        "ONEBYONE_SEND_TIMEOUT_S": "1",
        "ONEBYONE_BODY_IDLE_TIMEOUT_S": "1",
        "ONEBYONE_TORCH_THREADS": "1",
    }
    with serve(env, tmp_path_factory.mktemp("roomy")) as server:
        yield server


FIT_STREAM = raw_request(
    "/api/v1/experiments/fit?stream=true", json.dumps({"steps": 2000, "every": 1}).encode()
)
COMPARE = raw_request(
    "/api/v1/compare",
    json.dumps(
        {"input": {"generator": "gaussian", "height": 128, "width": 128, "channels": 64}}
    ).encode(),
)
COMPARE_NPZ = raw_request(
    "/api/v1/compare?format=npz",
    json.dumps(
        {"input": {"generator": "gaussian", "height": 256, "width": 256, "channels": 32}}
    ).encode(),
)
# 256×64×64 = the experiment limit: thousands of steps take far over any test's budget.
LONG_FIT = {
    "input": {"generator": "catdog", "height": 64, "width": 64, "channels": 256},
    "steps": 5000,
}


def test_hundreds_of_abandoned_requests_give_every_admission_back(abuse: tuple[str, int]) -> None:
    """Finding 1: clients that hang up while queued, computing or streaming."""
    url, _ = abuse
    rng = np.random.default_rng(0)

    async def main() -> None:
        todo = [FIT_STREAM, COMPARE, COMPARE_NPZ] * 100
        gate = asyncio.Semaphore(24)

        async def one(request: bytes, after: float) -> None:
            async with gate:
                await send_and_leave(url, request, after)

        await asyncio.gather(*(one(r, float(rng.uniform(0.001, 0.03))) for r in todo))

    asyncio.run(main())
    numbers = wait_idle(url, 15)
    assert numbers["ready"] and numbers["abandoned"] == 0
    # Full capacity again: slots + queue requests at once, every one answered.
    capacity = numbers["capacity"]

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            small = {"input": {"generator": "gaussian", "height": 64, "width": 64, "channels": 16}}
            rs = await asyncio.gather(
                *(client.post("/api/v1/compare", json=small) for _ in range(capacity))
            )
        return [r.status_code for r in rs]

    assert asyncio.run(burst()) == [200] * capacity
    assert wait_idle(url)["admitted"] == 0


def test_work_past_its_time_budget_stops_within_two_seconds(abuse: tuple[str, int]) -> None:
    """Finding 2: the 503 comes at the budget, and the computing stops with it."""
    url, pid = abuse

    async def fits() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return list(
                await asyncio.gather(
                    *(client.post("/api/v1/experiments/fit", json=LONG_FIT) for _ in range(4))
                )
            )

    t0 = time.monotonic()
    rs = asyncio.run(fits())
    assert [r.status_code for r in rs] == [503] * 4, [r.text for r in rs]
    assert all("time budget" in r.json()["detail"] for r in rs)
    assert time.monotonic() - t0 < 6
    wait_idle(url, 2.0)
    busy = cpu_seconds(pid)
    time.sleep(1.0)
    assert cpu_seconds(pid) - busy < 0.15  # nothing computes for nobody


def test_abandoned_compares_are_not_computed_to_the_end(abuse: tuple[str, int]) -> None:
    """Finding 2: clients gone after 0.5 s; their compares stop or never start."""
    url, pid = abuse
    big = gaussian_npz_request(96)

    async def main() -> None:
        await asyncio.gather(*(send_and_leave(url, big, 0.5) for _ in range(4)))

    asyncio.run(main())
    wait_idle(url, 2.0)
    busy = cpu_seconds(pid)
    time.sleep(1.0)
    assert cpu_seconds(pid) - busy < 0.15


def test_computing_threads_never_exceed_the_slots(abuse: tuple[str, int]) -> None:
    """Finding 2: waves of requests over their budget; one slot, one torch thread each."""
    url, pid = abuse
    seen: list[int] = []

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def wave() -> None:
                await asyncio.gather(
                    *(client.post("/api/v1/experiments/fit", json=LONG_FIT) for _ in range(4)),
                    return_exceptions=True,
                )

            async def watch() -> None:
                for _ in range(60):
                    seen.append((await client.get("/healthz")).json()["admission"]["computing"])
                    await asyncio.sleep(0.05)

            await asyncio.gather(watch(), *(wave() for _ in range(3)))

    t0, c0 = time.monotonic(), cpu_seconds(pid)
    asyncio.run(main())
    cores = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    assert max(seen) <= 1, seen
    assert cores < 1.4, cores  # one computing thread (plus the event loop), never more
    wait_idle(url, 3.0)


def test_fit_with_a_wide_uploaded_target_stays_small(roomy: tuple[str, int]) -> None:
    """Finding 3: the per-pair loss no longer builds a (C, K, H·W) temporary."""
    url, pid = roomy
    wait_idle(url)
    x = np.random.default_rng(0).standard_normal((1024, 32, 32)).astype(np.float32)
    t = np.random.default_rng(1).random((64, 32, 32)).astype(np.float32)
    before = status_kib(pid, "VmRSS")
    reset_peak(pid)
    r = httpx.post(
        url + "/api/v1/experiments/fit",
        files={"input": ("x.npy", files.npy(x)), "target": ("t.npy", files.npy(t))},
        data={"spec": json.dumps({"target": "upload", "steps": 3})},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert peak_growth_mib(pid, before) < 300  # was +1.3 GB
    wide = np.zeros((32768, 4, 4), np.float32)
    r = httpx.post(
        url + "/api/v1/experiments/fit",
        files={
            "input": ("x.npy", files.npy(np.ones((2, 4, 4), np.float32))),
            "target": ("t.npy", files.npy(wide)),
        },
        data={"spec": json.dumps({"target": "upload", "steps": 3})},
        timeout=60,
    )
    assert r.status_code == 422 and r.json()["field"] == "target", r.text


def test_queued_uploads_wait_on_disk_not_in_ram(roomy: tuple[str, int]) -> None:
    """Finding 4: bodies of waiting requests are spooled, not decoded arrays in RAM."""
    url, pid = roomy
    wait_idle(url)
    body, ctype = multipart({"input": ("x.npy", files.npy(np.ones((6, 1024, 1024), np.float32)))})
    upload = raw_request("/api/v1/compare?heatmaps=false", body, ctype)
    # A fit that takes seconds with little memory, so only the uploads can add any.
    small_fit = {**LONG_FIT, "input": {**LONG_FIT["input"], "channels": 64}}
    blocker = raw_request("/api/v1/experiments/fit", json.dumps(small_fit).encode())

    async def main() -> list[bytes]:
        # Two long fits hold both slots while 12 uploads of 24 MiB arrive and wait.
        blockers = [await asyncio.open_connection(*host_port(url)) for _ in range(2)]
        for _, w in blockers:
            w.write(blocker)
        await asyncio.sleep(2.5)
        held.append(status_kib(pid, "VmHWM"))  # the fits train steadily: measure from here
        reset_peak(pid)
        uploads_ = [await asyncio.open_connection(*host_port(url)) for _ in range(12)]
        for _, w in uploads_:
            w.write(upload)
        await asyncio.gather(*(w.drain() for _, w in uploads_))
        end = time.monotonic() + 20
        while admission(url)["admitted"] < 14:
            assert time.monotonic() < end
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        held.append(status_kib(pid, "VmHWM"))
        for _, w in blockers:  # the fits' clients leave: the uploads get their turn
            await hang_up(w)
        answers = [await r.readuntil(b"\r\n") for r, _ in uploads_]
        for _, w in uploads_:
            await hang_up(w)
        return answers

    held: list[int] = []
    answers = asyncio.run(main())
    growth = (held[1] - held[0]) / 1024
    assert growth < 40, growth  # 12 × 24 MiB were waiting
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
    wait_idle(url, 20)


def test_decoding_happens_off_the_event_loop(roomy: tuple[str, int]) -> None:
    """Finding 4: inflating archives and image bombs no longer stall /healthz."""
    url, _ = roomy
    wait_idle(url)
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros((24, 1024, 1024), np.float32))  # 96 MiB from ~100 KB
    bomb = buf.getvalue()
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16)).save(jpeg, format="JPEG")
    sof = jpeg.getvalue().find(b"\xff\xc0")
    # 340 bytes that declare 4000×4000 pixels in their frame header.
    jpeg_big = bytearray(jpeg.getvalue())
    jpeg_big[sof + 5 : sof + 9] = struct.pack(">HH", 4000, 4000)
    latencies: list[float] = []

    async def main() -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            done = False

            async def poll() -> None:
                while not done:
                    t0 = time.perf_counter()
                    await client.get("/healthz")
                    latencies.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.02)

            poller = asyncio.ensure_future(poll())
            sends = [
                client.post(
                    "/api/v1/compare",
                    params={"heatmaps": "false"},
                    files={"input": ("a.npz", bomb)},
                    data={"spec": json.dumps({"weights": {"preset": "mean"}})},
                )
                for _ in range(6)
            ] + [
                client.post("/api/v1/compare", files={"input": ("b.jpg", bytes(jpeg_big))})
                for _ in range(8)
            ]
            rs = await asyncio.gather(*sends)
            done = True
            await poller
            return [r.status_code for r in rs]

    codes = asyncio.run(main())
    assert set(codes) <= {200, 413, 503}, codes
    assert codes[6:] == [413] * 8  # the bomb's values are refused before it is decoded
    assert max(latencies) < 0.5, sorted(latencies)[-5:]
    wait_idle(url, 20)


def test_json_bodies_have_their_own_limit_and_parse_within_it(roomy: tuple[str, int]) -> None:
    """Finding 4: a JSON body costs at most a bounded parse; a 1024×1024 matrix still fits."""
    url, pid = roomy
    wait_idle(url)
    before = status_kib(pid, "VmRSS")
    reset_peak(pid)
    # 16 Mi tiny values in 32 MiB: a parse would cost over a gigabyte.
    many = b'{"weights": {"matrix": [[' + b"0," * (16 * 1024 * 1024 - 1) + b"0]]}}"
    r = httpx.post(
        url + "/api/v1/compare",
        content=many,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 413, r.text[:300]
    assert peak_growth_mib(pid, before) < 150
    matrix = np.random.default_rng(0).standard_normal((1024, 1024)).round(6).tolist()
    body = {
        "input": {"generator": "gaussian", "height": 4, "width": 4, "channels": 1024},
        "weights": {"matrix": matrix},
    }
    r = httpx.post(url + "/api/v1/compare", json=body, params={"heatmaps": "false"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["shapes"]["weight"] == [1024, 1024]


def test_slow_bodies_time_out_and_oversized_ones_are_refused_at_once(
    abuse: tuple[str, int],
) -> None:
    """Finding 4: bodies one byte short, and bodies over the limit, hold nothing."""
    url, pid = abuse
    wait_idle(url)
    before = status_kib(pid, "VmRSS")
    reset_peak(pid)

    def short_by_one(size: int) -> tuple[bytes, float]:
        head = raw_request("/api/v1/compare", b"", declared=size)
        with socket.create_connection(host_port(url)) as sock:
            sock.settimeout(10)
            with contextlib.suppress(OSError):  # refused by its headers: closed mid-send
                sock.sendall(head + b" " * min(size - 1, 3 << 20))
            t0 = time.monotonic()
            answer = b""
            with contextlib.suppress(ConnectionResetError):  # unread bytes: a reset
                while chunk := sock.recv(65536):  # until the server closes
                    answer += chunk
        return answer, time.monotonic() - t0

    async def main() -> list[tuple[bytes, float]]:
        slow = [asyncio.to_thread(short_by_one, 3 << 20) for _ in range(3)]  # never finished
        big = [asyncio.to_thread(short_by_one, 100 << 20) for _ in range(20)]  # over the limit
        return list(await asyncio.gather(*slow, *big))

    results = asyncio.run(main())
    for answer, seconds in results[:3]:
        assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()
        assert seconds < 4
    for answer, seconds in results[3:]:
        assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
        assert seconds < 4
    assert peak_growth_mib(pid, before) < 60
    wait_idle(url)


def test_a_body_dribbled_byte_by_byte_is_dropped_after_the_grace(server: str) -> None:
    """Slowloris: 1 byte a second keeps under the idle timeout, but not the minimum rate;
    the places it took are given back within seconds, and others are served meanwhile."""

    def dribble() -> tuple[bytes, float]:
        head = raw_request("/api/v1/compare", b"", declared=1000)
        t0 = time.monotonic()
        answer = b""
        with socket.create_connection(host_port(server)) as sock:
            sock.settimeout(10)
            sock.sendall(head)
            with contextlib.suppress(OSError):
                for _ in range(10):
                    sock.sendall(b" ")
                    time.sleep(1)
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    answer += chunk
        return answer, time.monotonic() - t0

    async def main() -> tuple[list[tuple[bytes, float]], int]:
        slow = [asyncio.to_thread(dribble) for _ in range(6)]
        await asyncio.sleep(0.5)
        ok = httpx.post(server + "/api/v1/compare", json={}, params={"heatmaps": "false"})
        return list(await asyncio.gather(*slow)), ok.status_code

    results, ok = asyncio.run(main())
    assert ok == 200
    for answer, seconds in results:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body_timeout" in answer and b"bytes/s" in answer
        assert seconds < 6
    wait_idle(server)


def test_unread_responses_are_dropped_and_hold_no_memory(abuse: tuple[str, int]) -> None:
    """Finding 4: clients that never read a large npz response."""
    url, pid = abuse
    wait_idle(url)
    request = gaussian_npz_request(24)  # a 100 MB answer
    before = status_kib(pid, "VmRSS")
    reset_peak(pid)

    async def main() -> None:
        conns = []
        for _ in range(3):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(host_port(url))
            sock.sendall(request)
            conns.append(sock)
        await asyncio.sleep(0.1)
        numbers = wait_idle(url, 12)  # each is dropped once its send times out
        assert numbers["admitted"] == 0
        for sock in conns:
            sock.close()

    asyncio.run(main())
    # Three 100 MB answers were asked for: one job's arrays (4 × 24 MiB) are in RAM at a
    # time, each answer goes to disk and out in pieces, never whole into RAM.
    assert peak_growth_mib(pid, before) < 180


# Finding 7: a response that starts before the body ended closes the connection.


def test_413_closes_the_connection_without_reading_the_body(server: str) -> None:
    sock = socket.create_connection(host_port(server))
    sock.settimeout(5)
    head = (
        "POST /api/v1/compare HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000000000\r\n\r\n"
    )
    with contextlib.suppress(OSError):  # the server may close before it is all sent
        sock.sendall(head.encode() + b" " * 65536)
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
    t0 = time.monotonic()
    closed = False
    try:
        while time.monotonic() - t0 < 3:
            sock.sendall(b" " * 65536)
            time.sleep(0.01)
    except OSError:
        closed = True
    assert closed and time.monotonic() - t0 < 1.5
    sock.close()


def test_413_while_streaming_a_chunked_body_closes_the_connection(server: str) -> None:
    sock = socket.create_connection(host_port(server))
    sock.settimeout(5)
    _, ctype = multipart({"input": ("x.npy", b"\0" * 100)})
    head = (
        f"POST /api/v1/compare HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode())
    chunk = b"x" * 1_000_000
    with contextlib.suppress(OSError):  # the server stops reading after the limit (4 MiB)
        for _ in range(8):
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b"connection: close" in answer.lower()
    t0 = time.monotonic()
    with contextlib.suppress(OSError):
        while sock.recv(65536):  # b"" once the server has closed the connection
            pass
    assert time.monotonic() - t0 < 1.0
    sock.close()


# Health that tells the truth, and workers that each give their admissions back.


def test_healthz_stays_ok_and_readyz_says_when_no_work_can_be_admitted(
    abuse: tuple[str, int],
) -> None:
    url, _ = abuse
    wait_idle(url)
    assert httpx.get(url + "/readyz").status_code == 200
    fit = raw_request("/api/v1/experiments/fit", json.dumps(LONG_FIT).encode())

    async def main() -> None:
        conns = [await asyncio.open_connection(*host_port(url)) for _ in range(4)]
        for _, w in conns:
            w.write(fit)
        await asyncio.sleep(0.5)
        health = httpx.get(url + "/healthz")
        ready = httpx.get(url + "/readyz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        numbers = health.json()["admission"]
        assert numbers["admitted"] == numbers["capacity"] == 4 and not numbers["ready"]
        assert numbers["computing"] == 1
        assert ready.status_code == 503 and ready.json()["status"] == "busy"
        assert ready.headers["retry-after"] == "1"
        busy = httpx.post(url + "/api/v1/compare", json={})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        for _, w in conns:
            await hang_up(w)

    asyncio.run(main())
    wait_idle(url, 5)
    assert httpx.get(url + "/readyz").status_code == 200


def test_with_workers_each_worker_gives_its_admissions_back(tmp_path: Path) -> None:
    """--workers N: every worker has its own gate, and each one returns to 0."""
    env = {"ONEBYONE_COMPUTE_SLOTS": "1", "ONEBYONE_QUEUE_LIMIT": "2"}
    with running(workers=2, env=env, log_path=tmp_path / "server.log") as (url, _):

        async def main() -> None:
            todo = [FIT_STREAM, COMPARE_NPZ] * 40
            await asyncio.gather(
                *(send_and_leave(url, r, 0.01 * (i % 3)) for i, r in enumerate(todo))
            )

        asyncio.run(main())
        idle: dict[int, dict[str, Any]] = {}
        end = time.monotonic() + 30
        while len(idle) < 2:
            assert time.monotonic() < end, idle
            numbers = admission(url)
            if numbers["admitted"] == 0:
                idle[numbers["worker"]] = numbers
            time.sleep(0.02)
        assert all(n["capacity"] == 3 and n["ready"] for n in idle.values())
