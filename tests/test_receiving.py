"""routes.receiving: a body's headers checked before admission (`plan_body`), then its bytes
received within a byte limit and a time limit (`receive_body`), in-process. Slow clients
over a real socket, and the connection closed after a refusal, are in tests/test_sockets.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.errors import OneByOneError, TooLarge, UnreadableFile, UnsupportedType
from app.routes.receiving import plan_body
from tests.conftest import LIMITS, app_with, assert_short_refusal, concurrent

SETTINGS = Settings(**LIMITS)  # 4 MiB uploads, and so 4 MiB JSON bodies too
ROOMY = Settings(max_upload_bytes=64 << 20, max_json_bytes=1 << 20)


@pytest.mark.parametrize(
    ("headers", "settings", "kind", "limit", "boundary"),
    [
        ({}, SETTINGS, "empty", 0, b""),
        ({"content-type": "application/json"}, SETTINGS, "json", 4 << 20, b""),
        ({"content-type": "Application/JSON; charset=utf-8"}, SETTINGS, "json", 4 << 20, b""),
        ({"content-type": "application/json"}, ROOMY, "json", 1 << 20, b""),
        (
            {"content-type": "multipart/form-data; boundary=xyz"},
            ROOMY,
            "multipart",
            64 << 20,
            b"xyz",
        ),
        (
            {"content-type": 'multipart/form-data; Boundary="a b"'},
            ROOMY,
            "multipart",
            64 << 20,
            b"a b",
        ),
    ],
)
def test_the_headers_give_the_kind_its_limit_and_the_boundary(
    headers: dict[str, str], settings: Settings, kind: str, limit: int, boundary: bytes
) -> None:
    plan = plan_body(headers, settings)
    assert (plan.kind, plan.limit, plan.boundary) == (kind, limit, boundary)


@pytest.mark.parametrize(
    ("headers", "declared", "chunked"),
    [
        ({"content-length": "12"}, 12, False),
        ({"content-length": "-1"}, None, False),
        ({"content-length": "1e3"}, None, False),
        ({"transfer-encoding": "chunked"}, None, True),
    ],
)
def test_the_declared_size_is_a_number_or_nothing(
    headers: dict[str, str], declared: int | None, chunked: bool
) -> None:
    plan = plan_body({"content-type": "application/json", **headers}, SETTINGS)
    assert (plan.declared, plan.chunked) == (declared, chunked)


@pytest.mark.parametrize(
    ("headers", "settings", "error", "code", "words"),
    [
        (
            {"content-type": "application/json", "content-length": str((4 << 20) + 1)},
            SETTINGS,
            TooLarge,
            "too_large",
            "limit for application/json is 4194304 bytes (ONEBYONE_MAX_UPLOAD_BYTES)",
        ),
        (
            {"content-type": "application/json", "content-length": str((1 << 20) + 1)},
            ROOMY,
            TooLarge,
            "too_large",
            "(ONEBYONE_MAX_JSON_BYTES). Send large arrays as files (multipart).",
        ),
        (
            {"content-type": "multipart/form-data; boundary=x", "content-length": str(65 << 20)},
            ROOMY,
            TooLarge,
            "too_large",
            "Send a smaller file.",
        ),
        (
            {"content-length": "5"},
            SETTINGS,
            UnsupportedType,
            "missing_content_type",
            "no Content-Type",
        ),
        (
            {"content-type": "text/plain"},
            SETTINGS,
            UnsupportedType,
            "unsupported_content_type",
            "'text/plain'",
        ),
        (
            {"content-type": "multipart/form-data"},
            SETTINGS,
            UnreadableFile,
            "bad_multipart",
            "boundary",
        ),
        (
            {"content-type": "multipart/form-data; charset=x"},
            SETTINGS,
            UnreadableFile,
            "bad_multipart",
            "boundary",
        ),
    ],
)
def test_bodies_the_headers_refuse_are_refused_before_a_byte_is_read(
    headers: dict[str, str], settings: Settings, error: type[Exception], code: str, words: str
) -> None:
    with pytest.raises(OneByOneError) as err:
        plan_body(headers, settings)
    assert type(err.value) is error and err.value.code == code
    assert words in err.value.detail, err.value.detail


def test_a_body_is_refused_as_it_passes_its_limit_not_after(client: httpx.Client) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b" " * 100_000

    r = client.post(
        "/api/v1/compare", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "4194304 bytes" in r.json()["detail"]
    assert sent == 42  # 4,194,304 bytes are 41.9 chunks: the 42nd passes the limit


def test_a_multipart_body_without_its_closing_boundary_is_cut_short(client: httpx.Client) -> None:
    body = (
        b'--x\r\nContent-Disposition: form-data; name="input"; filename="a"\r\n\r\nabc\r\n--x\r\n'
    )
    r = client.post(
        "/api/v1/compare", content=body, headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert r.status_code == 400 and r.json()["code"] == "bad_multipart"
    assert "cut short" in r.json()["detail"]


def _post_slowly(app: FastAPI, pieces: int, pause_s: float) -> httpx.Response:
    """A JSON body sent in `pieces`, `pause_s` apart, on this test's own event loop."""

    async def body() -> AsyncIterator[bytes]:
        yield b'{"input": {"generator": "catdog"}'
        for _ in range(pieces):
            await anyio.sleep(pause_s)
            yield b" "
        yield b"}"

    async def main() -> httpx.Response:
        async with concurrent(app) as c:
            return await c.post(
                "/api/v1/compare?heatmaps=false",
                content=body(),
                headers={"content-type": "application/json"},
            )

    return anyio.run(main)


@pytest.mark.parametrize(
    ("settings", "pieces", "pause_s", "status"),
    [
        ({"body_idle_timeout_s": 0.3}, 3, 0.1, 200),  # pauses under the idle limit
        ({"body_idle_timeout_s": 0.3}, 1, 0.8, 408),  # one pause over it
        ({"body_idle_timeout_s": 0.3, "body_timeout_s": 0.6}, 10, 0.1, 408),  # too long in all
    ],
)
def test_a_body_must_keep_coming_and_end_in_time(
    settings: dict[str, Any], pieces: int, pause_s: float, status: int
) -> None:
    r = _post_slowly(app_with(**settings), pieces, pause_s)
    assert r.status_code == status, r.text
    if status == 408:
        assert r.json()["code"] == "body_timeout" and "arrived too slowly" in r.json()["detail"]
        assert r.headers["connection"] == "close"


def test_errors_quote_at_most_a_short_excerpt(client: httpx.Client) -> None:
    # Issue 9, finding 8: an 8,000-character Content-Type is not echoed whole.
    r = client.post("/api/v1/compare", content=b"x", headers={"content-type": "text/" + "x" * 8000})
    assert_short_refusal(r)
