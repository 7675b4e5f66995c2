"""app.main in-process: its middlewares (CloseUnread, TrustedOrigin, HeadAsGet, HeadersAndLog),
its error handlers and its static files. Issue 9's finding 8 (foreign pages and hosts) is here;
what only a socket shows (the connection closed after a 413) is in tests/test_sockets.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from app.config import Settings
from app.main import create_app
from tests import files
from tests.conftest import LIMITS, app_with, in_process

X = np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log() -> Iterator[list[logging.LogRecord]]:
    """The records of the app's logger (it does not propagate: it writes its own lines)."""
    logger, keep = logging.getLogger("onebyone"), _Keep()
    logger.addHandler(keep)
    try:
        yield keep.records
    finally:
        logger.removeHandler(keep)


# CloseUnread: an answer that starts before the body ended closes the connection.


@pytest.mark.parametrize(
    ("send", "status"),
    [
        # Over the 4 MiB test limit by Content-Length: refused before a byte is read.
        ({"content": b" " * (5 << 20), "headers": {"content-type": "application/json"}}, 413),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415),
    ],
)
def test_an_answer_before_the_body_is_read_says_connection_close(
    client: httpx.Client, send: dict[str, Any], status: int
) -> None:
    r = client.post("/api/v1/compare", **send)
    assert r.status_code == status, r.text
    assert r.headers["connection"] == "close"


@pytest.mark.parametrize(("body", "status"), [({}, 200), ({"input": {"height": 0}}, 422)])
def test_an_answer_after_the_body_keeps_the_connection(
    client: httpx.Client, body: dict[str, Any], status: int
) -> None:
    r = client.post("/api/v1/compare", json=body, params={"heatmaps": "false"})
    assert r.status_code == status, r.text
    assert "connection" not in r.headers


# TrustedOrigin: foreign pages and host names (issue 9, finding 8).


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
    client: httpx.Client, headers: dict[str, str], status: int
) -> None:
    for send in (
        {"json": {}},
        {"files": {"input": ("x.npy", files.npy(X))}},
    ):
        r = client.post("/api/v1/compare", headers=headers, **send)  # type: ignore[arg-type]
        assert r.status_code == status, r.text[:200]
        if status == 403:
            assert r.json()["field"] == "origin" and r.json()["code"] == "foreign_origin"


def test_the_page_itself_is_same_origin(client: httpx.Client) -> None:
    r = client.post("/api/v1/compare", json={}, headers={"Origin": str(client.base_url)})
    assert r.status_code == 200


def test_listed_origins_are_allowed_with_cors_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    # As a server reads them: from the environment.
    monkeypatch.setenv("ONEBYONE_CORS_ORIGINS", '["http://notebook.example:8888"]')
    with in_process(create_app(Settings(**LIMITS))) as c:
        ok = c.post("/api/v1/compare", json={}, headers={"Origin": "http://notebook.example:8888"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://notebook.example:8888"
        bad = c.post("/api/v1/compare", json={}, headers={"Origin": "http://evil.example"})
        assert bad.status_code == 403
    monkeypatch.delenv("ONEBYONE_CORS_ORIGINS")
    # ONEBYONE_ALLOWED_HOSTS serves a name that is not loopback (a container's).
    # Loopback names stay served (the container's HEALTHCHECK asks 127.0.0.1).
    monkeypatch.setenv("ONEBYONE_ALLOWED_HOSTS", '["onebyone.lan"]')
    with in_process(create_app(Settings(**LIMITS))) as c:
        assert c.get("/healthz", headers={"Host": "onebyone.lan"}).status_code == 200
        assert c.get("/readyz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert c.get("/healthz", headers={"Host": "evil.example"}).status_code == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "10.0.0.1", "[fe80::1]"])
def test_a_loopback_server_refuses_foreign_host_names(client: httpx.Client, host: str) -> None:
    r = client.get("/healthz", headers={"Host": host})
    assert r.status_code == 403 and r.json()["code"] == "foreign_host"


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1", "[::1]:8000"])
def test_a_loopback_server_answers_loopback_names(client: httpx.Client, host: str) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_a_server_bound_to_every_address_serves_any_host_name() -> None:
    with in_process(app_with(host="0.0.0.0")) as c:  # the container binds every address
        assert c.get("/healthz", headers={"Host": "evil.example"}).status_code == 200


# HeadAsGet and HeadersAndLog.


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/v1/catalogue", "/static/js/app.js"])
def test_head_gets_the_status_and_headers_of_get(client: httpx.Client, path: str) -> None:
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


def test_head_of_a_post_route_is_a_405_as_get_would_be(client: httpx.Client) -> None:
    assert client.head("/api/v1/compare").status_code == 405


def test_no_cors_by_default_and_security_headers(client: httpx.Client) -> None:
    r = client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/healthz", {}, 200),
        ("GET", "/no/such/page", {}, 404),
        ("GET", "/healthz", {"Host": "evil.example"}, 403),
        ("POST", "/api/v1/compare", {"content-type": "text/plain"}, 415),
    ],
)
def test_every_answer_has_the_security_headers(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    r = client.request(method, path, headers=headers, content=b"x" if method == "POST" else None)
    assert r.status_code == status
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_each_request_logs_one_json_line_with_its_status_and_time(
    client: httpx.Client, log: list[logging.LogRecord]
) -> None:
    client.post("/api/v1/compare?heatmaps=false", json={"input": {"height": 0}})
    client.get("/healthz")
    lines = [json.loads(r.getMessage()) for r in log]
    assert [(x["method"], x["path"], x["query"], x["status"]) for x in lines] == [
        ("POST", "/api/v1/compare", "heatmaps=false", 422),
        ("GET", "/healthz", "", 200),
    ]
    assert all(x["ms"] >= 0 for x in lines)


# The error handlers: one shape for every refusal, and a bug is a 500 that says nothing.


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no/such/page", 404, "not_found"),
        ("GET", "/api/v1/compare", 405, "method_not_allowed"),
        ("GET", "/api/v1/colormaps?nope=1", 422, "unknown_parameter"),
    ],
)
def test_http_errors_have_the_one_error_shape(
    client: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    r = client.request(method, path)
    assert r.status_code == status
    assert (
        r.json()["code"] == code
        and r.json()["detail"]
        and set(r.json())
        == {
            "detail",
            "field",
            "code",
        }
    )


def test_a_bug_is_a_500_whose_traceback_goes_to_the_log_only(
    log: list[logging.LogRecord],
) -> None:
    app = app_with()

    @app.get("/bug")
    def bug() -> None:
        raise RuntimeError("secret internals")

    with in_process(app, raise_app_exceptions=False) as c:
        r = c.get("/bug")
    assert r.status_code == 500
    assert r.json() == {
        "detail": "Internal error; it has been logged. Please report it.",
        "field": None,
        "code": "internal",
    }
    assert "secret" not in r.text
    # Like every other answer (a bug's 500 was sent from outside the middleware that adds them).
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    traced = [x for x in log if x.exc_info]
    assert len(traced) == 1 and "secret internals" in str(traced[0].exc_info)
    lines = [json.loads(x.getMessage()) for x in log if not x.exc_info]
    assert [(x["path"], x["status"]) for x in lines] == [("/bug", 500)]


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
