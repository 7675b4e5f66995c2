"""The one place that knows how to start Debian's Chromium headless on these machines."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
# No sandbox as root; no background traffic, which this machine's closed network refuses.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
