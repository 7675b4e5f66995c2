"""Refresh docs/screenshot.png: start the service, open the page in headless Chromium, shoot.

Usage: .venv/bin/python -m bench.screenshot [URL-QUERY] [OUT.png]
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from bench.chromium import launch

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    query = sys.argv[1] if len(sys.argv) > 1 else ""
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "screenshot.png"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/{query}")
            page.wait_for_selector("body[data-status=ready]")
            page.screenshot(path=str(out))
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
