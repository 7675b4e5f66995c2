"""Refresh docs/screenshot.png: start the service, open the page in headless Chromium, shoot.

Usage: .venv/bin/python -m bench.screenshot [URL-QUERY] [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.chromium import launch
from bench.server import ROOT, running


def main() -> None:
    query = sys.argv[1] if len(sys.argv) > 1 else ""
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "screenshot.png"
    with running() as (url, _), sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/{query}")
        page.wait_for_selector("body[data-status=ready]")
        page.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
