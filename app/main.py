"""create_app(): settings, lifespan, middleware, routers, static files and error handlers."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__, render
from app.config import Settings, get_settings
from app.errors import Busy, OneByOneError, TooLarge
from app.gate import ComputeGate
from app.routes import api, checkpoints, docs, experiments, pages
from app.routes.bodies import validation_error
from app.schemas import REQUEST_MODELS, REQUEST_RULES

log = logging.getLogger("onebyone")


class BodyLimit:
    """Refuse bodies over the upload limit with 413, by header or while streaming.

    Counting as the body arrives means memory never grows with what a client
    sends past the limit, whatever its Content-Length says.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = (
            f"The request body is over the upload limit of {self.limit} bytes "
            "(ONEBYONE_MAX_UPLOAD_BYTES). Send a smaller file."
        )
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await error_response(413, detail, None, "too_large")(scope, receive, send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Raised inside the route's body read; the domain handler answers 413.
                    raise TooLarge(detail)
            return message

        await self.app(scope, limited_receive, send)


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
    """Security headers on every response, and one log line per request with its timing."""

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
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
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
    body = {"detail": detail, "field": field, "code": code}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OneByOneError)
    async def domain_error(request: Request, exc: OneByOneError) -> JSONResponse:
        headers = {"Retry-After": "1"} if isinstance(exc, Busy) else None
        return error_response(exc.status_code, exc.detail, exc.field, exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Query parameters (bodies are parsed by routes.bodies): drop FastAPI's "query" prefix.
        errors = [{**e, "loc": tuple(e.get("loc", ()))[1:]} for e in exc.errors()]
        err = validation_error(errors, None)
        return error_response(err.status_code, err.detail, err.field, err.code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), None, code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a bad request: the traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500, "Internal error; it has been logged. Please report it.", None, "internal"
        )


def _setup_logging() -> None:
    """One JSON line per request on stderr; tracebacks of bugs go there too, never to clients."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s onebyone %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _with_request_models(app: FastAPI) -> None:
    """Put the request bodies' models into the OpenAPI components.

    The routes read their bodies themselves (JSON or multipart, strictly), so FastAPI
    does not see the models; their `openapi_extra` refers to them by name.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in REQUEST_MODELS:
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = js
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    _setup_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        render.colormap(render.SEQUENTIAL)
        render.colormap(render.DIVERGING)
        yield

    app = FastAPI(
        docs_url=None,  # served by routes.docs from local assets
        redoc_url=None,
        title="onebyone",
        version=__version__,
        summary="What does a 1×1 convolution + ReLU add over a plain ReLU?",
        description=REQUEST_RULES,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.gate = ComputeGate(
        settings.compute_slots, settings.queue_limit, settings.request_timeout_s
    )
    app.dependency_overrides[get_settings] = lambda: settings
    _install_error_handlers(app)
    _with_request_models(app)
    app.include_router(api.router)
    app.include_router(experiments.router)
    app.include_router(checkpoints.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=pages.ROOT / "static"), name="static")
    app.mount(docs.ASSETS_URL, docs.assets(), name="docs-assets")

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + (1 << 20))
    app.add_middleware(HeadAsGet)
    app.add_middleware(HeadersAndLog)
    return app


app = create_app()
