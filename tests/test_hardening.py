"""Hostile and oversized input, overload and time budgets, safe defaults."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app import uploads
from app.errors import OneByOneError
from bench.server import running
from tests import files

LIMITS = {"max_values": 100_000, "max_pixels": 100_000}
X = np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)
VALID = [
    files.npy(X),
    files.npz(input=X),
    files.pt({"weight": torch.from_numpy(X)}),
    files.pt_legacy({"weight": torch.from_numpy(X), "b": {"bias": torch.ones(3)}}),
    files.safetensors(input=X),
    files.png((np.abs(X[0]) * 60).astype(np.uint8)),
    files.jpeg((np.abs(X[0]) * 60).astype(np.uint8)),
]


def decode_or_refuse(data: bytes) -> None:
    """Any bytes: a decoded array in (C, H, W), or a domain error; never anything else."""
    try:
        decoded = uploads.decode(data, "input", "fuzz", **LIMITS)
        for arr in decoded.arrays.values():
            uploads.to_chw(arr, decoded.layout or "chw")
    except OneByOneError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_decoders_refuse_random_bytes_cleanly(data: bytes) -> None:
    decode_or_refuse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.integers(0, 10**6), st.integers(0, 255), st.booleans())
def test_decoders_refuse_damaged_files_cleanly(data: bytes, pos: int, byte: int, cut: bool) -> None:
    i = pos % len(data)
    damaged = data[:i] if cut else data[:i] + bytes([byte]) + data[i + 1 :]
    decode_or_refuse(damaged)


def test_zip_member_with_an_empty_name_is_refused() -> None:
    # Found by hypothesis: zipfile's is_dir() indexes the name and raised IndexError.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", b"x")
        zf.writestr(zipfile.ZipInfo(""), b"y")
    with pytest.raises(OneByOneError):
        uploads.decode(buf.getvalue(), "input", "damaged", **LIMITS)


def test_npz_member_lying_about_its_size_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("input.npy", files.npy(np.zeros(50_000, np.float32)))
    data = bytearray(buf.getvalue())
    # Patch the central directory's uncompressed size down to 100 bytes.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    with pytest.raises(OneByOneError):
        uploads.decode(bytes(data), "input", "bomb", max_values=10**6, max_pixels=10**6)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app/config.py",
        "/static/%2e%2e/app/config.py",
        "/static/..%2fapp%2fconfig.py",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static//etc/passwd",
    ],
)
def test_static_files_cannot_escape_their_folder(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "Settings" not in r.text and "root:" not in r.text


def test_no_cors_by_default_and_security_headers(client: httpx.Client) -> None:
    r = client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"


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


def test_request_over_its_time_budget_gets_503(tight_server: tuple[str, Path]) -> None:
    url, _ = tight_server
    huge = {
        "input": {"generator": "gaussian", "height": 512, "width": 512, "channels": 128},
        "weights": {"preset": "random", "out_channels": 128},
    }
    r = httpx.post(url + "/api/v1/compare", json=huge, timeout=60)
    assert r.status_code == 503 and "time budget" in r.json()["detail"]
    assert httpx.get(url + "/healthz").status_code == 200


def test_fuzzed_requests_never_get_a_5xx(server: str) -> None:
    """schemathesis draws requests from our own OpenAPI schema, for every operation."""
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    seen: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label

        @settings(
            max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=server, timeout=60)
            seen[label] = seen.get(label, 0) + 1  # noqa: B023 (runs before the loop moves on)
            assert response.status_code < 500, (case.path, case.body, response.text)

        check()
    assert len(seen) >= 4 and seen["POST /api/v1/compare"] >= 50, seen


# ================================================================ issue 9: findings 5 and 6
# Lying headers: every one a 4xx before anything is allocated or converted.


def _st(entries: object, payload: bytes = b"\0" * 64) -> bytes:
    header = json.dumps(entries).encode()
    return struct.pack("<Q", len(header)) + header + payload


LYING = [
    files.npy_raw("<f4", (3, 0xAAAAAAAAAAAAAAAB), b"\0" * 64),
    files.npy_raw("<f4", (2**32, 2**32), b"\0" * 64),
    files.npy_raw("<f4", (-1, -1), b"\0" * 64),
    files.npy_raw("<f4", (2**63 - 1, 2), b"\0" * 64),
    files.npy_raw("<f4", (-1, 4), b"\0" * 64),
    files.npy_raw("|b1", (-1, 1024, 1024), b"\0" * (1 << 20)),
    _st({"x": {"dtype": "F32", "shape": "abc", "data_offsets": [0, 16]}}),
    _st({"x": {"dtype": "F32", "shape": [None], "data_offsets": [0, 16]}}),
    _st({"x": {"dtype": "F32", "shape": 5, "data_offsets": [0, 16]}}),
    _st({"x": {"dtype": "F32", "shape": [2**64], "data_offsets": [0, 16]}}),
    _st({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 10**12]}}),
    _st({"x": {"dtype": "F32", "shape": [4], "data_offsets": [8, 4]}}),
    _st({"x": {"dtype": "Q99", "shape": [4], "data_offsets": [0, 16]}}),
]


@pytest.mark.parametrize("data", LYING)
def test_lying_headers_are_refused_before_allocating(data: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(OneByOneError) as err:
            uploads.decode(data, "input", "liar", max_values=10**9, max_pixels=10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 400 <= err.value.status_code < 500
    assert peak < 4 * len(data) + (1 << 20), peak  # no conversion, no array of the lie's size


@pytest.mark.parametrize("shape", [(0, 4), (0, 4, 1, 1)])
def test_weights_without_filters_are_refused(client: httpx.Client, shape: tuple[int, ...]) -> None:
    r = client.post(
        "/api/v1/compare",
        files={
            "input": ("x.npy", files.npy(np.ones((4, 3, 3), np.float32))),
            "weights": ("w.npy", files.npy(np.ones(shape, np.float32))),
        },
    )
    assert r.status_code == 422, r.text
    assert r.headers["x-content-type-options"] == "nosniff"


def test_lying_upload_over_http_is_a_4xx_on_a_kept_alive_connection(client: httpx.Client) -> None:
    for data in LYING:
        r = client.post("/api/v1/compare", files={"input": ("liar.npy", data)})
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["field"] == "input" and r.json()["detail"]
    assert client.get("/healthz").json()["admission"]["admitted"] == 0


_DIMS = st.one_of(
    st.integers(-3, 6),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64, 0xAAAAAAAAAAAAAAAB]),
    st.booleans(),
)
_SHAPES = st.one_of(
    st.lists(_DIMS, max_size=5).map(tuple),
    st.lists(_DIMS, max_size=40).map(tuple),
    st.none(),
    st.integers(-5, 5),
    st.text(max_size=4),
    st.floats(allow_nan=False),
)
_NPY_DESCR = st.one_of(
    st.sampled_from(["<f4", "<f8", "|b1", "<i8", "|u1", "<f2", ">f4", "|O", "<U4", "|V8", "<c8"]),
    st.text(max_size=6),
)


def _npy_with_header(header: str, payload: bytes) -> bytes:
    text = header.encode("utf-8", "replace")
    pad = -(10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _refused_or_small(data: bytes) -> None:
    """Decoded (and converted) or refused with a 4xx, with little memory either way."""
    tracemalloc.start()
    try:
        try:
            decoded = uploads.decode(data, "input", "fuzz", max_values=10**9, max_pixels=10**9)
            for arr in decoded.arrays.values():
                if arr.ndim in (2, 3):
                    uploads.to_chw(arr, "chw")
        except OneByOneError as exc:
            assert 400 <= exc.status_code < 500
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(data) + (2 << 20), peak


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    descr=_NPY_DESCR,
    fortran=st.one_of(st.booleans(), st.integers(-1, 2), st.none()),
    shape=_SHAPES,
    extra=st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    payload=st.binary(max_size=512),
)
def test_fuzzed_npy_header_dicts_are_refused_cleanly(
    descr: str, fortran: object, shape: object, extra: dict[str, int], payload: bytes
) -> None:
    header = {"descr": descr, "fortran_order": fortran, "shape": shape, **extra}
    _refused_or_small(_npy_with_header(repr(header), payload))


_ST_DTYPES = st.one_of(
    st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F64"]), st.text(max_size=4)
)
_JSON_DIMS = st.one_of(st.integers(-3, 6), st.integers(-(2**66), 2**66), st.booleans(), st.none())
_OFFSETS = st.one_of(
    st.lists(st.integers(-(2**65), 2**65), max_size=3),
    st.lists(st.integers(0, 300), min_size=2, max_size=2),
    st.none(),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.dictionaries(
        st.text(max_size=6),
        st.one_of(
            st.fixed_dictionaries(
                {
                    "dtype": _ST_DTYPES,
                    "shape": st.one_of(
                        st.lists(_JSON_DIMS, max_size=4), st.integers(), st.text(max_size=3)
                    ),
                    "data_offsets": _OFFSETS,
                }
            ),
            st.integers(),
            st.text(max_size=3),
        ),
        max_size=4,
    ),
    payload=st.binary(max_size=300),
)
def test_fuzzed_safetensors_headers_are_refused_cleanly(
    entries: dict[str, object], payload: bytes
) -> None:
    _refused_or_small(_st(entries, payload))


def _npz_fields() -> tuple[bytes, dict[str, tuple[int, str]]]:
    """A valid two-member .npz, and where each field of its zip directory lies: name ->
    (offset, struct format)."""
    data = files.npz(
        a=np.arange(12, dtype=np.float32).reshape(3, 2, 2), b=np.ones((2, 2), np.float32)
    )
    eocd = data.rfind(b"PK\x05\x06")
    cd = data.find(b"PK\x01\x02")
    local = data.find(b"PK\x03\x04")
    fields = {
        "eocd.disk": (eocd + 4, "<H"),
        "eocd.entries_here": (eocd + 8, "<H"),
        "eocd.entries": (eocd + 10, "<H"),
        "eocd.cd_size": (eocd + 12, "<I"),
        "eocd.cd_offset": (eocd + 16, "<I"),
        "eocd.comment_len": (eocd + 20, "<H"),
        "cd.flags": (cd + 8, "<H"),
        "cd.method": (cd + 10, "<H"),
        "cd.csize": (cd + 20, "<I"),
        "cd.usize": (cd + 24, "<I"),
        "cd.name_len": (cd + 28, "<H"),
        "cd.extra_len": (cd + 30, "<H"),
        "cd.comment_len": (cd + 32, "<H"),
        "cd.local_offset": (cd + 42, "<I"),
        "local.method": (local + 8, "<H"),
        "local.csize": (local + 18, "<I"),
        "local.usize": (local + 22, "<I"),
        "local.name_len": (local + 26, "<H"),
        "local.extra_len": (local + 28, "<H"),
    }
    return data, fields


_NPZ, _ZIP_FIELDS = _npz_fields()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    patches=st.lists(
        st.tuples(st.sampled_from(sorted(_ZIP_FIELDS)), st.integers(0, 2**32 - 1)),
        min_size=1,
        max_size=4,
    )
)
def test_fuzzed_zip_directories_are_refused_cleanly(patches: list[tuple[str, int]]) -> None:
    data = bytearray(_NPZ)
    for name, value in patches:
        offset, fmt = _ZIP_FIELDS[name]
        data[offset : offset + struct.calcsize(fmt)] = struct.pack(
            fmt, value % (1 << (8 * struct.calcsize(fmt)))
        )
    _refused_or_small(bytes(data))


def test_a_zip_directory_of_millions_of_entries_is_refused_before_it_is_read() -> None:
    # 30,000 empty entries (1.7 MB of directory): zipfile would build an object for each.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(30_000):
            zf.writestr(f"{i}.npy", b"")
    tracemalloc.start()
    try:
        with pytest.raises(OneByOneError) as err:
            uploads.decode(buf.getvalue(), "input", "many.npz", max_values=10**9, max_pixels=10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.status_code == 413
    assert peak < 8 << 20, peak


# ================================================================ issue 9: a real server, abused
# Each test here reproduces one finding against a real uvicorn server on loopback.


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


# ================================================================ finding 7: 413 closes


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


# ================================================================ finding 8: origins, hosts, echoes


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),  # curl and scripts send no Origin
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "http://127.0.0.1:1"}, 403),  # another port is another origin
    ],
)
def test_requests_from_foreign_pages_are_refused(
    server: str, headers: dict[str, str], status: int
) -> None:
    for send in (
        {"json": {}},
        {"files": {"input": ("x.npy", files.npy(X))}},
    ):
        r = httpx.post(server + "/api/v1/compare", headers=headers, timeout=30, **send)  # type: ignore[arg-type]
        assert r.status_code == status, r.text[:200]
        if status == 403:
            assert r.json()["field"] == "origin" and r.json()["code"] == "foreign_origin"


def test_the_page_itself_is_same_origin(server: str) -> None:
    r = httpx.post(server + "/api/v1/compare", json={}, headers={"Origin": server}, timeout=30)
    assert r.status_code == 200


def test_listed_origins_are_allowed_with_cors_headers(tmp_path: Path) -> None:
    env = {"ONEBYONE_CORS_ORIGINS": '["http://notebook.example:8888"]'}
    with serve(env, tmp_path) as (url, _):
        ok = httpx.post(
            url + "/api/v1/compare",
            json={},
            headers={"Origin": "http://notebook.example:8888"},
            timeout=30,
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://notebook.example:8888"
        bad = httpx.post(
            url + "/api/v1/compare", json={}, headers={"Origin": "http://evil.example"}, timeout=30
        )
        assert bad.status_code == 403
        # ONEBYONE_ALLOWED_HOSTS serves a name that is not loopback (a container's).
    # Loopback names stay served (the container's HEALTHCHECK asks 127.0.0.1).
    with serve({"ONEBYONE_ALLOWED_HOSTS": '["onebyone.lan"]'}, tmp_path) as (url, _):
        assert httpx.get(url + "/healthz", headers={"Host": "onebyone.lan"}).status_code == 200
        assert httpx.get(url + "/readyz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert httpx.get(url + "/healthz", headers={"Host": "evil.example"}).status_code == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "10.0.0.1", "[fe80::1]"])
def test_a_loopback_server_refuses_foreign_host_names(server: str, host: str) -> None:
    r = httpx.get(server + "/healthz", headers={"Host": host})
    assert r.status_code == 403 and r.json()["code"] == "foreign_host"


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1", "[::1]:8000"])
def test_a_loopback_server_answers_loopback_names(server: str, host: str) -> None:
    assert httpx.get(server + "/healthz", headers={"Host": host}).status_code == 200


JUNK = "\x00\x1b[2J" + "A" * (1 << 20)


@pytest.mark.parametrize(
    "send",
    [
        {
            "content": json.dumps({JUNK: 1}).encode(),
            "headers": {"content-type": "application/json"},
        },
        {
            "content": json.dumps({"input": {JUNK: 1}}).encode(),
            "headers": {"content-type": "application/json"},
        },
        {
            "content": b'{"' + b"a" * (1 << 20) + b'": 1, "' + b"a" * (1 << 20) + b'": 2}',
            "headers": {"content-type": "application/json"},
        },
        {"json": {"input": {"generator": JUNK}}},
        {"json": {"weights": {"preset": JUNK}}},
        {"json": {"input": {"layout": JUNK}}},
        {"json": {"device": JUNK}},
        {"content": JUNK.encode(), "headers": {"content-type": "application/json"}},
        {"content": b"x", "headers": {"content-type": "text/" + "x" * 8000}},
        {"files": {"a" * (1 << 16): ("x.npy", b"x")}},
        {"files": {"input": ("x" * (1 << 16) + ".npy", b"\x93NUMPY junk")}},
        {"files": {"input": ("x.npy", files.npy_raw("<f4", (2,) * 32, b""))}},
    ],
)
def test_errors_quote_at_most_a_short_excerpt(client: httpx.Client, send: dict[str, Any]) -> None:
    r = client.post("/api/v1/compare", **send)
    assert 400 <= r.status_code < 500, r.text[:300]
    assert len(r.content) < 2048, r.text[:300]
    assert "\x1b" not in r.text and "\\x00" not in r.json()["detail"][:0]


# ================================================================ health that tells the truth


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


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # 3 MB: a million wrong items of one matrix row, or of the bias list.
        (b'{"weights":{"matrix":[[' + b",".join([b'""'] * 1_000_000) + b"]]}}", "invalid"),
        (b'{"weights":{"bias":[' + b",".join([b'""'] * 1_000_000) + b"]}}", "invalid"),
        # 300,000 rows, each wrong.
        (b'{"weights":{"matrix":[' + b",".join([b'["x"]'] * 300_000) + b"]}}", "invalid"),
        # 200,000 unknown keys in one object.
        (b"{" + b",".join(b'"k%d":1' % i for i in range(200_000)) + b"}", "too_many_keys"),
    ],
    ids=["matrix-row", "bias", "matrix-rows", "keys"],
)
def test_a_million_wrong_values_make_one_short_error(server: str, body: bytes, code: str) -> None:
    """Each wrong value used to be its own error: 1.4 GB, 8 s and a 68–88 MB 422 for a 3 MB
    body. Now the first wrong item of a list is the error, and objects have a key limit."""
    t0 = time.monotonic()
    r = httpx.post(
        server + "/api/v1/compare",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 422, r.text[:300]
    assert r.json()["code"] == code
    assert len(r.content) < 2048
    assert time.monotonic() - t0 < 5


@pytest.fixture(scope="module")
def head_deadline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    env = {"ONEBYONE_HEADER_TIMEOUT_S": "2"}
    with serve(env, tmp_path_factory.mktemp("head")) as server:
        yield server


def _closed_after(sock: socket.socket, limit: float) -> float | None:
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


def test_connections_that_send_no_whole_request_head_are_closed(
    head_deadline: tuple[str, int],
) -> None:
    """uvicorn alone keeps a silent socket, or one dribbling its head, open for ever."""
    url, _ = head_deadline
    silent = [socket.create_connection(host_port(url)) for _ in range(20)]
    dribbling = socket.create_connection(host_port(url))
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    t0 = time.monotonic()
    for i, byte in enumerate(head):
        if time.monotonic() - t0 > 4:
            break
        with contextlib.suppress(OSError):
            dribbling.sendall(bytes([byte]))
        time.sleep(0.2 if i else 0)
    closed = _closed_after(dribbling, 3)
    assert closed is not None, "a head dribbled for 4 s kept its connection"
    for s in silent:
        assert _closed_after(s, 3) is not None, "a silent connection was kept"
        s.close()
    dribbling.close()


def _answers(sock: socket.socket, count: int, limit: float = 10) -> list[int]:
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


def test_the_head_deadline_never_cuts_a_kept_alive_client_a_slow_body_or_pipelining(
    head_deadline: tuple[str, int],
) -> None:
    """With a 2 s deadline, on one socket: requests 1.5 s apart, a body sent over 3.5 s,
    and two pipelined requests are all answered on that same socket."""
    url, _ = head_deadline
    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    body = b'{"input": {"generator": "catdog"}}' + b" " * 96_000  # JSON may end in spaces
    with socket.create_connection(host_port(url)) as sock:
        for _ in range(3):  # each head within the deadline of the last answer's end
            sock.sendall(get)
            assert _answers(sock, 1) == [200]
            time.sleep(1.5)
        # A body of 96 KB sent over 3.5 s (about 27 KB/s, over the minimum rate): its head
        # came on time, so the deadline leaves it alone however long the body takes.
        sock.sendall(raw_request("/api/v1/compare?heatmaps=false", b"", declared=len(body)))
        for i in range(0, len(body), len(body) // 7 + 1):
            sock.sendall(body[i : i + len(body) // 7 + 1])
            time.sleep(0.5)
        assert _answers(sock, 1) == [200]
        sock.sendall(get + get)  # pipelined
        assert _answers(sock, 2) == [200, 200]
        # And then, silent past the deadline, the same socket is closed.
        assert _closed_after(sock, 3) is not None  # uvicorn alone: 5 s (keep-alive)
