"""The API documentation pages, /docs (Swagger UI) and /redoc, with no internet needed.

The assets come from the fastapi-offline package (installed by pip, never copied
into this repository) and the pages run under the same strict CSP as ours: the
Swagger UI is started by /static/js/docs.js, not an inline script.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.routes.output import JSONResponse
from app.routes.pages import CSP, templates

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs-assets"
router = APIRouter(include_in_schema=False)
# ReDoc styles itself by injecting <style> elements (styled-components) and searches in a
# blob: worker; scripts stay 'self' only.
REDOC_CSP = (
    CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + "; worker-src blob:"
)


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS)


def _page(request: Request, template: str, csp: str) -> HTMLResponse:
    context = {"version": __version__, "assets": ASSETS_URL}
    response = templates.TemplateResponse(request, template, context)
    response.headers["Content-Security-Policy"] = csp
    return response


@router.get("/openapi.json")
def openapi(request: Request) -> JSONResponse:
    """The OpenAPI schema, written like every other JSON answer (FastAPI's own route is off)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def swagger(request: Request) -> HTMLResponse:
    return _page(request, "docs.html", CSP)


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return _page(request, "redoc.html", REDOC_CSP)
