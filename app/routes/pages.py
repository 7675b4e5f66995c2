"""The HTML page: one Jinja2 template, plain ES modules from /static, and what the server
knows (catalogue, colour maps, panel titles) in a JSON data block, so the page starts without
fetching it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import __version__, catalogue, montage, report
from app.routes.output import json_bytes
from app.scenarios import SCENARIOS

# The checkout (or image) root, which holds templates/ and static/.
ROOT = Path(__file__).resolve().parent.parent.parent
templates = Jinja2Templates(directory=ROOT / "templates")
router = APIRouter(include_in_schema=False)

# No inline scripts or styles anywhere, so the page works under this policy. The data block is
# <script type="application/json">: a browser never runs it, so script-src does not apply.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

# Inside <script>, "</script>" or "<!--" in a string would end or change the block: written as
# JSON escapes, the parsed value is the same and the HTML parser never sees them.
_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def page_data(app: FastAPI) -> dict[str, Any]:
    """What the page reads at start: the catalogue and colour maps exactly as their API endpoints
    serve them (the devices present are in the catalogue), and the panels as the PNG has them:
    title, short caption, and whether it is drawn without asking."""
    return {
        "catalogue": catalogue.build(app.state.settings, app.state.sources.trained),
        "colormaps": report.colormaps(),
        "panels": {
            name: {
                "title": title,
                "short": montage.PANEL_SHORT[name],
                "default": name in montage.DEFAULT_PANELS,
            }
            for name, title in montage.PANELS.items()
        },
    }


def _data_block(app: FastAPI) -> str:
    """page_data as the text of a data block (the template writes it unescaped), built on the
    first page request of this app and kept: the registries are complete by then, and nothing
    in them changes while it serves."""
    block: str | None = getattr(app.state, "page_data_block", None)
    if block is None:
        block = json_bytes(page_data(app)).decode().translate(_ESCAPES)
        app.state.page_data_block = block
    return block


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    context = {
        "version": __version__,
        "scenarios": SCENARIOS,
        "page_data": _data_block(request.app),
    }
    response = templates.TemplateResponse(request, "index.html", context)
    response.headers["Content-Security-Policy"] = CSP
    return response
