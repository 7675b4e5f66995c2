"""The HTML page: one Jinja2 template, plain ES modules from /static."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import __version__
from app.scenarios import SCENARIOS

# The checkout (or image) root, which holds templates/ and static/.
ROOT = Path(__file__).resolve().parent.parent.parent
templates = Jinja2Templates(directory=ROOT / "templates")
router = APIRouter(include_in_schema=False)

# No inline scripts or styles anywhere, so the page works under this policy.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    context = {"version": __version__, "scenarios": SCENARIOS}
    response = templates.TemplateResponse(request, "index.html", context)
    response.headers["Content-Security-Policy"] = CSP
    return response
