"""Shoot the page: every scenario on a phone (390×844) and a desktop (1400×1000), a photo sent
to the trained network with two classes picked by name (network-photo-*.png), and the two
pictures the README shows (docs/page-desktop.png, docs/page-phone.png).

Usage: .venv/bin/python -m bench.screenshot [OUT_DIR]   (default: build/screenshots)
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import sync_playwright

from app.scenarios import SCENARIOS
from bench.chromium import launch
from bench.server import ROOT, running

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1400, "height": 1000}}
TALLEST = 4000  # px of a full-page shot; a 192-channel page is ten times taller


def shoot(page: Any, url: str, scenario: str, full: bool) -> bytes:
    page.goto(f"{url}/?scenario={scenario}")
    page.wait_for_selector("body[data-status=ready]", timeout=120_000)
    if not full:
        return bytes(page.screenshot())
    return full_shot(page)


def full_shot(page: Any) -> bytes:
    """The page from the top, up to TALLEST px, with what lazy drawing left for later drawn."""
    height = page.evaluate("document.documentElement.scrollHeight")
    width = page.viewport_size["width"]
    for y in range(0, min(height, TALLEST), 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(30)
    page.evaluate("window.scrollTo(0, 0)")
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, TALLEST)}
    return bytes(page.screenshot(full_page=True, clip=clip))


def small_png(data: bytes, path: Path) -> None:
    """A palette PNG (the page is flat colours and two colour maps): a fraction of the size."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def readme_pictures(browser: Any, url: str) -> None:
    """Scenario 1 with a pixel read out on a desktop, and the same on a phone."""
    desktop = browser.new_page(viewport=SIZES["desktop"])
    desktop.goto(f"{url}/?scenario=relu-enough")
    desktop.wait_for_selector("body[data-status=ready]")
    box = desktop.locator('canvas.cell[data-col="conv_relu"][data-ch="0"]').bounding_box()
    desktop.mouse.move(box["x"] + 0.62 * box["width"], box["y"] + 0.62 * box["height"])
    small_png(bytes(desktop.screenshot()), ROOT / "docs" / "page-desktop.png")
    desktop.close()
    context = browser.new_context(viewport=SIZES["phone"], has_touch=True, is_mobile=True)
    phone = context.new_page()
    phone.goto(f"{url}/?scenario=relu-enough")
    phone.wait_for_selector("body[data-status=ready]")
    cell = phone.locator('canvas.cell[data-col="conv_relu"][data-ch="0"]')
    cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    phone.touchscreen.tap(box["x"] + 0.62 * box["width"], box["y"] + 0.62 * box["height"])
    phone.evaluate("window.scrollTo(0, document.getElementById('headline').offsetTop - 8)")
    small_png(bytes(phone.screenshot()), ROOT / "docs" / "page-phone.png")
    context.close()


def photo_shot(page: Any, url: str, folder: Path) -> bytes:
    """ "Cat minus dog, for real" on a photo sent as a person would (a built-in one re-encoded
    as JPEG), with the classes typed by name."""
    from app import photos

    path = folder / "astronaut.jpg"
    with Image.open(io.BytesIO(photos.read(photos.PHOTOS["astronaut"]))) as img:
        img.convert("RGB").save(path, "JPEG", quality=88)
    page.goto(f"{url}/?scenario=cat-minus-dog")
    page.wait_for_selector("body[data-status=ready]", timeout=120_000)
    if page.is_hidden("#class-a"):
        page.click("#settings summary")
    for field, name in (("#class-a", "space shuttle"), ("#class-b", "bobsled")):
        page.fill(field, "")
        page.locator(field).press_sequentially(name, delay=40)
    page.set_input_files("#photo-file", str(path))
    page.wait_for_timeout(600)
    page.wait_for_selector("body[data-status=ready]", timeout=120_000)
    return full_shot(page)


def main() -> None:
    parser = argparse.ArgumentParser(description="Shoot the page at 390 and 1400 px.")
    parser.add_argument(
        "out",
        nargs="?",
        type=Path,
        default=ROOT / "build" / "screenshots",
        help="folder for the per-scenario shots (default: build/screenshots)",
    )
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with running() as (url, _), sync_playwright() as p:
        browser = launch(p)
        for name, viewport in SIZES.items():
            context = browser.new_context(viewport=viewport, has_touch=name == "phone")
            page = context.new_page()
            for s in SCENARIOS:
                path = out / f"{s.id}-{viewport['width']}.png"
                small_png(shoot(page, url, s.id, full=True), path)
                print(f"wrote {path}")
            path = out / f"network-photo-{viewport['width']}.png"
            small_png(photo_shot(page, url, out), path)
            print(f"wrote {path}")
            context.close()
        readme_pictures(browser, url)
        browser.close()
    print(f"wrote {ROOT / 'docs' / 'page-desktop.png'} and {ROOT / 'docs' / 'page-phone.png'}")


if __name__ == "__main__":
    main()
