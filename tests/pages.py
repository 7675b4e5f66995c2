"""A Playwright page for the browser tests: records console errors, waits for re-renders."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from axe_playwright_python.sync_playwright import Axe

ROOT = Path(__file__).resolve().parent.parent
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}


class Page:
    """One browser context and page on the app, with helpers that wait the way the page works."""

    def __init__(self, browser: Any, server: str, **context: Any) -> None:
        self.server = server
        self.context = browser.new_context(**({"viewport": DESKTOP} | context))
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def close(self) -> None:
        self.context.close()

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.server}/{query}")
        self.page.wait_for_selector("body[data-status=ready]", timeout=60_000)

    def runs(self) -> int:
        return int(self.page.evaluate("document.body.dataset.runs || '0'"))

    def status(self) -> str:
        return str(self.page.evaluate("document.body.dataset.status"))

    def settle(self, before: int, want: str = "ready", timeout: float = 60) -> None:
        """Wait until the page has finished a run after `before` runs and shows `want`.

        An edit marks the page as loading at once, so "ready" means the latest edit is shown.
        """
        # Polled from here: wait_for_function would eval a string, which the page's CSP forbids.
        deadline = time.monotonic() + timeout
        state: list[Any] = []
        while time.monotonic() < deadline:
            state = self.page.evaluate(
                "[Number(document.body.dataset.runs || 0), document.body.dataset.status]"
            )
            if want == "ready" and state[0] > before and state[1] == "ready":
                return
            if want in ("error", "waiting") and state[1] == want:
                return
            self.page.wait_for_timeout(20)
        raise AssertionError(f"the page did not reach {want}; runs and status {state}")

    def after(self, action: Callable[[], Any], want: str = "ready") -> None:
        """Do something that re-runs the request, and wait until the page shows its result."""
        before = self.runs()
        action()
        self.settle(before, want)

    def scenario(self, name: str) -> None:
        self.after(lambda: self.page.click(f"button[data-scenario={name}]"))

    def request(self) -> dict[str, Any]:
        """The request the page's URL (and so the copied link) holds now."""
        spec: dict[str, Any] = json.loads(
            self.page.evaluate("new URLSearchParams(location.search).get('spec')")
        )
        return spec

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))

    def readout(self) -> dict[str, Any]:
        values: dict[str, Any] = json.loads(
            self.page.get_attribute("#readout", "data-values") or "{}"
        )
        return values

    def pixel(self, col: str, ch: int, y: int, x: int) -> list[int]:
        return list(
            self.page.evaluate(
                """([col, ch, y, x]) => {
                    const c = document.querySelector(`canvas.cell[data-col="${col}"][data-ch="${ch}"]`);
                    return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
                }""",
                [col, ch, y, x],
            )
        )


def npz_for(server: str, spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The exact arrays the API returns for a request."""
    r = httpx.post(f"{server}/api/v1/compare", params={"format": "npz"}, json=spec, timeout=60)
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def report_for(server: str, spec: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{server}/api/v1/compare", params={"heatmaps": "false"}, json=spec, timeout=60)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def shown_number(text: str) -> float:
    """A number as the page prints it (true minus sign, thousands separators)."""
    return float(text.replace("−", "-").replace(",", ""))


def network_files(folder: Path) -> dict[str, Any]:
    """The test network's checkpoint, the activations feeding some of its 1×1 layers, what the
    network computes after them, and a checkpoint with no 1×1 layer, written to `folder`."""
    import torch
    from torch import nn

    from tests import files, nets

    net = nets.trained()
    torch.save(net.state_dict(), folder / "model.pt")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 128, 128, generator=g) * 1.5 + 0.3
    layers = ["layer1.1.conv1", "inception3a.branch1.conv"]
    inputs = nets.activations(net, x, layers, inputs=True)
    convs = nets.activations(net, x, layers)
    relus = nets.activations(net, x, [nets.RELU_AFTER[n] for n in layers])
    out: dict[str, Any] = {"net": net, "folder": folder, "model": folder / "model.pt"}
    for name in layers:
        path = folder / f"{name}.npy"
        path.write_bytes(files.npy(inputs[name].numpy()))
        out[name] = {
            "input": path,
            "relu": relus[nets.RELU_AFTER[name]].numpy(),
            "raw": torch.relu(convs[name]).numpy(),
        }
    # A file from `onebyone capture`, run as a user runs it, and what the network computes.
    from PIL import Image

    from app.cli import Preprocessing

    rgb = np.random.default_rng(5).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "photo.png")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "onebyone"),
            "capture",
            "tests.nets:resnet_like",
            "--weights",
            "model.pt",
            "--layer",
            "layer1.0.conv1",
            "--image",
            "photo.png",
            "--resize",
            "0",
            "--crop",
            "0",
            "-o",
            "captured.safetensors",
        ],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with Image.open(folder / "photo.png") as img:
        photo = Preprocessing(resize=0, crop=0)(img)[None]  # (1, 3, 96, 96)
    out["captured"] = {
        "file": folder / "captured.safetensors",
        "relu": nets.activations(net, photo, ["layer1.0.relu1"])["layer1.0.relu1"].numpy(),
    }
    stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3))
    torch.save(stem.state_dict(), folder / "only3x3.pt")
    out["only3x3"] = folder / "only3x3.pt"
    return out


def overflow(page: Page) -> list[str]:
    """Elements that stick out past the right edge of the screen, and the page's scroll width."""
    return list(
        page.page.evaluate(
            """() => {
                const w = document.documentElement.clientWidth;
                const out = [];
                if (document.documentElement.scrollWidth > w) out.push(`page ${document.documentElement.scrollWidth}`);
                for (const e of document.querySelectorAll('body *')) {
                    const r = e.getBoundingClientRect();
                    if (r.width && r.right > w + 0.5 && !e.closest('[hidden], dialog:not([open])')) out.push(`${e.tagName}#${e.id}.${e.className} ${Math.round(r.right)}`);
                }
                return out.slice(0, 10);
            }"""
        )
    )


AXE = Axe()


def axe_violations(page: Page) -> list[str]:
    result = AXE.run(page.page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in result.response["violations"]
    ]
