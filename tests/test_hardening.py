"""Hostile and oversized input, overload and time budgets, safe defaults."""

from __future__ import annotations

import asyncio
import io
import json
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
