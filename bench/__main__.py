"""The benchmark: `python -m bench [--quick] [--out docs/BENCHMARKS.md]`.

Every comparison is measured side by side in this one run and quoted as medians
and ratios. Prints one markdown report and writes it to the --out file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import torch

from app import compare, mixing, report
from app.config import Settings
from app.schemas.requests import CompareRequest
from bench import network as bench_network
from bench.chromium import launch
from bench.png import case_encoders, case_notebook
from bench.server import ROOT, running
from bench.timing import alternate, machine, med, median_ms, spec, spread, status_kib, table

# ---------------------------------------------------------------- 2. the hardware limit


def case_gemm(client: httpx.Client, quick: bool) -> list[list[str]]:
    rows = []
    shapes = [(256, 224, 224, 256), (512, 112, 112, 512)]
    for c, h, w, k in shapes:
        x = torch.randn(c, h, w)
        wt = torch.randn(k, c)
        b = torch.randn(k)
        a = wt.clone()
        m = x.reshape(c, h * w).clone()
        macs = k * c * h * w
        # Alternating, so the product and ours see the same moments of a shared machine.
        t = alternate(
            {
                "mm": lambda: torch.mm(a, m),
                "conv": lambda: mixing.conv1x1(x, wt, b),
                "paths": lambda: mixing.run_paths(x, wt, b),
            },
            rounds=3 if quick else 9,
        )
        t_mm, t_conv, t_paths = med(t["mm"]), med(t["conv"]), med(t["paths"])
        body = spec(c, h, w, k, "gaussian", "cpu")
        t_npz = median_ms(
            lambda: client.post("/api/v1/compare", params={"format": "npz"}, json=body), 3
        )
        computes: list[float] = []

        def json_request() -> None:
            r = client.post("/api/v1/compare", json=body).raise_for_status()
            computes.append(r.json()["timings_ms"]["compute"])

        t_json = median_ms(json_request, 3)
        server_compute = med(computes[1:])  # the server's own, over the timed requests
        rows.append([
            f"{c}→{k} on {h}×{w} ({macs / 1e9:.1f} G MACs)",
            f"{t_mm:.1f}",
            f"{2 * macs / t_mm / 1e6:.0f}",
            f"{t_conv:.1f} ({t_mm / t_conv:.0%})",
            f"{t_paths:.1f}",
            f"{server_compute:.1f}",
            f"{t_json:.0f} ({t_json / server_compute:.1f}×)",
            f"{t_npz:.0f} ({t_npz / server_compute:.1f}×)",
        ])  # fmt: skip
    return rows


# ---------------------------------------------------------------- 3. on the wire


def case_wire(client: httpx.Client) -> list[list[str]]:
    body = spec(192, 28, 28, 192)
    j = client.post("/api/v1/compare", json=body).json()
    z = np.load(
        io.BytesIO(client.post("/api/v1/compare", params={"format": "npz"}, json=body).content)
    )
    names = ["input", "relu_only", "pre_activation", "conv_relu"]
    values = sum(z[n].size for n in names)
    # Ours: exact float32 of the input and the pre-activation; the page derives both ReLU
    # outputs from them exactly, so the four arrays cost two.
    ours = sum(len(json.dumps(j["heatmaps"][n])) for n in ("input", "pre_activation"))
    naive = sum(len(json.dumps(z[n].tolist())) for n in names)
    short = sum(len(json.dumps(np.round(z[n], 4).tolist())) for n in names)
    raw = sum(len(base64.b64encode(z[n].tobytes())) for n in names)
    return [
        ["JSON floats (json.dumps of the float32 values)", f"{naive / values:.2f}", "1×"],
        [
            "JSON floats rounded to 4 decimals",
            f"{short / values:.2f}",
            f"{naive / short:.1f}× smaller",
        ],
        ["base64 float32 of all four", f"{raw / values:.2f}", f"{naive / raw:.1f}× smaller"],
        [
            "ours: base64 float32 of input and pre-activation, ReLU outputs derived (exact)",
            f"{ours / values:.2f}",
            f"{naive / ours:.1f}× smaller",
        ],
    ]


# ---------------------------------------------------------------- 4. in the browser


def case_browser(url: str, quick: bool) -> list[list[str]]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for scenario in ("keep192", "reduce64", "relu-enough"):
            times = []
            for _ in range(3 if quick else 7):
                page.goto(f"{url}/?scenario={scenario}")
                page.wait_for_selector("body[data-status=ready]")
                times.append(float(page.evaluate("document.body.dataset.renderMs")))
                drawn = page.locator("canvas.cell[data-drawn]").count()
                total = page.locator("canvas.cell").count()
            rows.append([scenario, f"{total}", f"{drawn}", f"{statistics.median(times):.1f}"])
        browser.close()
    return rows


# ---------------------------------------------------------------- 4b. the trained network

NET = {"generator": "network", "network": "mobilenet_v2", "photo": "chelsea"}
# Layers whose input is 28×28×192 (the question's size), and classes to switch between.
SWITCH_LAYERS = ("features.5.conv.2", "features.6.conv.2")
CLASS_PAIRS = (
    ("Egyptian cat", "golden retriever"),
    ("tabby", "tiger cat"),
    ("coffee mug", "espresso"),
    ("space shuttle", "missile"),
)


def case_switch(client: httpx.Client, quick: bool) -> list[list[str]]:
    """On a photo already through the network: a switch of layer or class, end to end."""
    layer_i, pair_i = [0], [0]

    def layer() -> None:
        name = SWITCH_LAYERS[layer_i[0] % len(SWITCH_LAYERS)]
        layer_i[0] += 1
        body = {"input": {**NET, "layer": name}, "weights": {"network": "mobilenet_v2"}}
        client.post("/api/v1/compare", json=body).raise_for_status()

    def classes() -> None:
        a, b = CLASS_PAIRS[pair_i[0] % len(CLASS_PAIRS)]
        pair_i[0] += 1
        weights = {"network": "mobilenet_v2", "classes": [a], "minus": b}
        body = {"input": {**NET, "layer": "classifier.1"}, "weights": weights}
        client.post("/api/v1/compare", json=body).raise_for_status()

    layer()  # the photo's one pass, then every 1×1 input comes from the cache
    times = alternate({"layer": layer, "class": classes}, rounds=10 if quick else 30)
    rows = []
    for name, label in (
        ("layer", "switch layer: 28×28×192 in (features.5/6.conv.2), JSON with heatmaps"),
        ("class", "switch class pair: classifier.1, W[a] − W[b] on 7×7×1280, JSON"),
    ):
        t = times[name]
        rows.append([label, f"{med(t):.1f}", spread(t), f"{max(t):.1f}", f"{len(t)}"])
    return rows


# ---------------------------------------------------------------- 5. scaling


SCALING = [
    (64, 28, 28, 64),
    (64, 56, 56, 64),
    (64, 112, 112, 64),
    (64, 224, 224, 64),
    (256, 56, 56, 64),
    (1024, 56, 56, 64),
    (256, 56, 56, 256),
    (256, 56, 56, 1024),
]


def _scaling_child(c: int, h: int, w: int, k: int) -> None:
    """Run in a fresh process: peak RSS over the baseline for one JSON comparison."""
    settings = Settings()
    req = CompareRequest.model_validate(spec(c, h, w, k, "gaussian", "cpu"))
    compare.run(CompareRequest.model_validate(spec(2, 4, 4, 2, "gaussian", "cpu")), settings)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter (VmHWM)
    base = status_kib("VmRSS")
    t0 = time.perf_counter()
    cmp = compare.run(req, settings)
    t1 = time.perf_counter()
    report.build(
        cmp, heatmap_budget=settings.max_heatmap_values, with_heatmaps=True, echo_weights=0
    ).model_dump_json()
    t2 = time.perf_counter()
    peak = status_kib("VmHWM")
    print(json.dumps({"compute_ms": (t1 - t0) * 1e3, "total_ms": (t2 - t0) * 1e3,
                      "peak_mib": (peak - base) / 1024}))  # fmt: skip


def case_scaling() -> list[list[str]]:
    rows = []
    for c, h, w, k in SCALING:
        times, peaks = [], []
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-m", "bench", "--scaling-child", f"{c},{h},{w},{k}"],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            times.append(r["total_ms"])
            peaks.append(r["peak_mib"])
        data_mib = 4 * (c * h * w + 2 * k * h * w + c * h * w) / 2**20  # input + pre + out + relu
        macs = k * c * h * w
        t = statistics.median(times)
        rows.append([
            f"{c}", f"{h}×{w}", f"{k}", f"{macs / 1e6:.0f}", f"{t:.1f}",
            f"{macs / t / 1e6:.2f}", f"{statistics.median(peaks):.0f}", f"{data_mib:.0f}",
            f"{statistics.median(peaks) / max(data_mib, 1e-9):.1f}×",
        ])  # fmt: skip
    return rows


# ---------------------------------------------------------------- 6. throughput


async def _hammer(url: str, seconds: float, clients: int) -> tuple[int, int]:
    body = spec(4, 28, 28, 4, "catdog")
    ok = errors = 0
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal ok, errors
        while time.monotonic() < deadline:
            r = await client.post("/api/v1/compare", json=body)
            if r.status_code == 200:
                ok += 1
            else:
                errors += 1

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(one(client) for _ in range(clients)))
    return ok, errors


def case_throughput(quick: bool) -> list[list[str]]:
    rows = []
    seconds = 3 if quick else 10
    for workers in (1, 2):
        with running(workers) as (url, _):
            asyncio.run(_hammer(url, 1, 4))
            ok, errors = asyncio.run(_hammer(url, seconds, 8))
        rows.append([f"{workers}", "8", f"{seconds}", f"{ok}", f"{errors}", f"{ok / seconds:.0f}"])
    return rows


SECTIONS = (
    "notebook",
    "encoders",
    "gemm",
    "wire",
    "browser",
    "network",
    "scaling",
    "throughput",
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run these sections, print, write nothing"
    )
    parser.add_argument("--scaling-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling_child:
        _scaling_child(*(int(v) for v in args.scaling_child.split(",")))
        return
    run = set(args.only or SECTIONS) - ({"browser"} if args.no_browser else set())

    parts = [
        "## Latest run",
        "",
        f"Command: `.venv/bin/python -m bench{' --quick' if args.quick else ''}`  ",
        f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {machine()}",
        "",
        "All numbers are medians measured side by side in this one run; HTTP times are",
        "whole requests from a client on loopback to `onebyone serve`.",
    ]
    with running() as (url, _), httpx.Client(base_url=url, timeout=300) as client:
        if "notebook" in run:
            ratios, split = case_notebook(client, args.quick)
            parts += [
                "",
                "### 1. Against the notebook way (28×28×192 → 192, every channel drawn)",
                "",
                "Alternating rounds: one notebook run, then five PNG and five JSON requests. "
                "Spread: the interquartile range over the runs (ms) or over the rounds (each "
                "round's notebook run over the median of its five requests); lowest: the "
                "worst round's ratio.",
                "",
                table(["path", "ms", "spread", "ratio", "spread", "lowest"], ratios),
                "",
                "Where the PNG request's time goes (medians of the server's `Server-Timing`):",
                "",
                table(["stage", "ms"], split),
            ]
        if "encoders" in run:
            encoders, floor = case_encoders(args.quick)
            parts += ["", "### 1b. PNG encoders on the same montage (in process, alternating)", ""]
            parts += [table(["encoder", "ms", "× ours", "bytes"], encoders), "", floor]
        if "gemm" in run:
            parts += ["", "### 2. Against the hardware limit (CPU GEMM)", ""]
            parts.append(table(
                ["case", "torch.mm ms", "GEMM GFLOP/s", "our 1×1 conv ms (% of mm)",
                 "both paths ms", "server compute ms", "HTTP json ms (× compute)",
                 "HTTP npz ms (× compute)"],
                case_gemm(client, args.quick),
            ))  # fmt: skip
        if "wire" in run:
            parts += ["", "### 3. On the wire (heatmaps for 4 × 192 × 28 × 28 values)", ""]
            parts.append(table(["encoding", "bytes per value", "ratio"], case_wire(client)))
        if "browser" in run:
            parts += [
                "",
                "### 4. In the browser (headless Chromium, response → visible canvases drawn)",
                "",
            ]
            parts.append(table(
                ["scenario", "canvases", "drawn at once", "ms"], case_browser(url, args.quick)
            ))  # fmt: skip
    if "network" in run:
        parts += ["", bench_network.report(5 if args.quick else 9, 3).strip(), ""]
        parts += [
            "Switching layer or class on that photo, end to end (HTTP JSON, the report the "
            "page draws; the photo's pass is cached, so no new pass), alternating:",
            "",
        ]
        with running() as (url, _), httpx.Client(base_url=url, timeout=300) as client:
            parts.append(
                table(
                    ["request", "ms", "spread", "max", "requests"], case_switch(client, args.quick)
                )
            )
    if "scaling" in run:
        parts += ["", "### 5. Scaling (one JSON comparison in a fresh process, CPU)", ""]
        parts.append(table(
            ["C", "H×W", "K", "M MACs", "ms", "G MACs/s", "peak MiB over baseline",
             "arrays MiB", "peak / arrays"],
            case_scaling(),
        ))  # fmt: skip
    if "throughput" in run:
        parts += ["", "### 6. Throughput (catdog 4×28×28, 8 concurrent clients)", ""]
        parts.append(table(
            ["workers", "clients", "seconds", "requests", "errors", "req/s"],
            case_throughput(args.quick),
        ))  # fmt: skip
    report = "\n".join(parts) + "\n"
    print(report)
    if not args.only:
        write_between_markers(Path(args.out), report)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_between_markers(path: Path, report: str) -> None:
    """Replace the generated part of the file, keeping hand-written notes around it."""
    block = f"{START}\n{report}{END}\n"
    old = path.read_text() if path.exists() else ""
    if START in old and END in old:
        head, rest = old.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        path.write_text(head + block + ("\n" + tail if tail else ""))
    else:
        path.write_text(block + old)


if __name__ == "__main__":
    main()
