"""Hostile and oversized input, overload and time budgets, safe defaults."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
