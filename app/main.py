"""create_app(): settings, lifespan, middleware, routers, static files and error handlers."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar
from urllib.parse import urlsplit

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__, drain, gate, generators, inputs, metrics, render, trained
from app.config import Settings, get_settings
from app.errors import Busy, OneByOneError, excerpt
from app.experiments import warm_up
from app.gate import ComputeGate
from app.routes import api, checkpoints, docs, experiments, pages, photos
from app.routes import metrics as metrics_route
from app.routes.admission import ComputeRoute
from app.routes.output import JSONResponse
from app.routes.pipeline import REQUEST_RULES, document_request_models
from app.routes.validation import validation_error
from app.schemas.responses import ErrorResponse

log = logging.getLogger("onebyone")


class CloseUnread:
    """Close the connection after a response that starts before the request body has ended.

    A 413, 415 or 503 is sent without reading the body; on a kept-alive connection the
    server would then read and discard whatever the client still sends (100 GB, if it says
    so). `Connection: close` makes uvicorn close the socket once the answer is out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(
            b"content-length", b"0" if b"transfer-encoding" not in headers else b""
        )
        ended = length == b"0"

        async def tracked_receive() -> Message:
            nonlocal ended
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                ended = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not ended:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, tracked_receive, closing_send)


def _host_allowed(host: str, allowed: list[str]) -> bool:
    if "*" in allowed or host in allowed:
        return True
    return any(p.startswith("*.") and host.endswith(p[1:]) for p in allowed)


def _loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hostname(netloc: str) -> str:
    """The host name of a Host header or an origin's netloc, without port and brackets."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")].lower()
    return netloc.rsplit(":", 1)[0].lower() if netloc.count(":") == 1 else netloc.lower()


class TrustedOrigin:
    """Refuse (403) a Host this server does not serve, and requests from foreign web pages.

    Bound to loopback, only loopback host names are served unless ONEBYONE_ALLOWED_HOSTS
    adds more (loopback names always are), so a page cannot reach the service by DNS
    rebinding. A request that
    carries an `Origin` (every cross-site fetch or form POST does) must come from the
    page's own origin or one in ONEBYONE_CORS_ORIGINS; curl and scripts send none.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.origins = set(settings.cors_origins)
        if settings.allowed_hosts is not None:
            self.hosts: list[str] | None = [h.lower() for h in settings.allowed_hosts]
        else:
            self.hosts = None if not _loopback(_hostname(settings.host)) else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        name = _hostname(host)
        # Loopback names are always served: a rebound page sends its own domain as Host,
        # never "localhost", and the container's HEALTHCHECK asks 127.0.0.1.
        if (
            host
            and self.hosts is not None
            and not _loopback(name)
            and not _host_allowed(name, self.hosts)
        ):
            detail = (
                f"This server does not serve the host name {excerpt(name)}; it answers to "
                f"{', '.join([*self.hosts, 'loopback names (localhost, 127.0.0.1, ::1)'])}. "
                "Set ONEBYONE_ALLOWED_HOSTS to serve more."
            )
            await error_response(403, detail, "host", "foreign_host")(scope, receive, send)
            return
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1")
            # Same origin: the page was served by this host and port. The scheme is left
            # out, so a TLS proxy in front (https outside, http here) changes nothing.
            try:
                same = bool(host) and urlsplit(text).netloc.lower() == host.lower()
            except ValueError:  # "http://[" and the like
                same = False
            if not same and text not in self.origins and "*" not in self.origins:
                detail = (
                    f"Requests from the web page at {excerpt(text)} are refused: only this "
                    "server's own page, and origins listed in ONEBYONE_CORS_ORIGINS, may call it."
                )
                await error_response(403, detail, "origin", "foreign_origin")(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answer HEAD like GET, for every GET route: uvicorn sends the headers and no body.

    Only the app's copy of the scope says GET; the server's still says HEAD, which is
    what makes it drop the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)


class HeadersAndLog:
    """Security headers on every response, one log line per request with its timing, and a
    bug's 500 (its traceback to the log, never to the client).

    The bug is answered here rather than by an exception handler: Starlette sends those
    from its outermost middleware, outside this one, without the headers.
    """

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        # 499: the client left before an answer started (nginx's code for it).
        status = 499

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # A bug, not a bad request.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                status = 500
                raise  # half an answer is out: the server closes the connection
            await error_response(
                500, "Internal error; it has been logged. Please report it.", None, "internal"
            )(scope, receive, send_with_headers)
        finally:
            record = {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "status": status,
                "ms": round((time.perf_counter() - t0) * 1e3, 2),
            }
            log.info(json.dumps(record))


def error_response(
    status: int,
    detail: str,
    field: str | None = None,
    code: str = "bad_request",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error shape of the API."""
    body = ErrorResponse(detail=detail, field=field, code=code)
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OneByOneError)
    async def domain_error(request: Request, exc: OneByOneError) -> JSONResponse:
        headers = {"Retry-After": "1"} if isinstance(exc, Busy) else None
        return error_response(exc.status_code, exc.detail, exc.field, exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Query parameters (bodies are parsed by routes.pipeline): drop FastAPI's "query" prefix.
        errors = [{**e, "loc": tuple(e.get("loc", ()))[1:]} for e in exc.errors()]
        err = validation_error(errors, None)
        return error_response(err.status_code, err.detail, err.field, err.code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), None, code, dict(exc.headers or {}))


def _setup_logging() -> None:
    """One JSON line per request on stderr; tracebacks of bugs go there too, never to clients."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s onebyone %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _threads_per_slot(settings: Settings) -> int:
    """The cores this process may use, shared by its compute slots: two slots each running
    torch on every core would fight for them, and the event loop (/healthz) would wait."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // settings.compute_slots)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    _setup_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads or _threads_per_slot(settings))
        gate.map_large_blocks()
        render.colormap(render.SEQUENTIAL)
        render.colormap(render.DIVERGING)
        warm_up()
        app.state.gate = ComputeGate(
            settings.compute_slots, settings.queue_limit, settings.request_timeout_s
        )
        app.state.sources = inputs.Sources(
            generators.Cache(settings.generator_cache_bytes),
            trained.Trained(
                settings.mobilenet_v2_weights,
                settings.network_cache_bytes,
                settings.max_image_pixels,
            ),
        )
        try:
            async with drain.draining(app.state.gate, settings.drain_timeout_s) as app.state.drain:
                yield
        finally:
            app.state.gate.close()

    app = FastAPI(
        docs_url=None,  # served by routes.docs from local assets, with the schema
        redoc_url=None,
        openapi_url=None,
        title="onebyone",
        version=__version__,
        summary="What does a 1×1 convolution + ReLU add over a plain ReLU?",
        description=REQUEST_RULES,
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    _install_error_handlers(app)
    computing = [api.compute_router, experiments.router, checkpoints.router]
    others = [photos.router, pages.router, docs.router, metrics_route.router]
    for router in [api.router, *computing, *others]:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=pages.ROOT / "static"), name="static")
    app.mount(docs.ASSETS_URL, docs.assets(), name="docs-assets")
    readers = [r.body_reader for c in computing for r in c.routes if isinstance(r, ComputeRoute)]
    document_request_models(app, readers)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    # The last added runs first: log and headers, then the connection's fate, then who asks.
    app.add_middleware(TrustedOrigin, settings=settings)
    metrics.instrument(app)  # counts every request, 403s included, HEAD as GET
    app.add_middleware(HeadAsGet)
    app.add_middleware(CloseUnread)
    app.add_middleware(HeadersAndLog)
    return app


app = create_app()
