"""The trained network on this machine: `python -m bench.network [--rounds N]`.

One forward pass per built-in photo (torchvision's preprocessing included, and the
pass alone), median and spread over several rounds, with the torch threads the service
gives each compute slot (1 on 2 cores with 2 slots) and with every core; then the bytes
one cached photo holds (the input of all 35 1×1 layers) and, in a fresh process, the
peak and kept RSS increase of computing and caching one photo.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from app import network, photos
from bench.timing import alternate, machine, spread, status_kib, table

ROOT = Path(__file__).resolve().parents[1]
MAX_PIXELS = 16 * 1024 * 1024


@dataclass(frozen=True)
class Timing:
    photo: str
    threads: int
    run_ms: list[float]  # preprocessing + forward pass
    forward_ms: list[float]  # the forward pass alone


def forward_times(rounds: int, threads: tuple[int, ...]) -> list[Timing]:
    """Each photo's pass, alternating photos round after round, for each thread count."""
    net = network.load(None)
    images = {name: photos.load(name, MAX_PIXELS) for name in photos.PHOTOS}
    inputs = {name: network.preprocess(img) for name, img in images.items()}
    before = torch.get_num_threads()
    out = []
    try:
        for n in threads:
            torch.set_num_threads(n)
            fns = {}
            for name in images:
                fns[f"run {name}"] = lambda name=name: net.run(images[name])
                fns[f"fwd {name}"] = lambda name=name: net.forward(inputs[name])
            t = alternate(fns, rounds)
            out += [Timing(name, n, t[f"run {name}"], t[f"fwd {name}"]) for name in images]
    finally:
        torch.set_num_threads(before)
    return out


def _rss_child() -> None:
    """In a fresh process: RSS over the baseline while one photo is computed and cached."""
    net = network.load(None)
    cache = network.ActivationCache(1024**3)
    net.run(photos.load("coffee", MAX_PIXELS))  # warm up: kernels, thread pools, allocator
    image = photos.load("chelsea", MAX_PIXELS)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter (VmHWM)
    base = status_kib("VmRSS")
    acts = cache.get_or_compute(network.photo_key("chelsea"), lambda: net.run(image))
    peak, kept = status_kib("VmHWM"), status_kib("VmRSS")
    print(
        json.dumps(
            {
                "cached_bytes": cache.size,
                "photo_bytes": acts.nbytes,
                "peak_mib": (peak - base) / 1024,
                "kept_mib": (kept - base) / 1024,
            }
        )
    )


def rss(repeat: int) -> dict[str, float]:
    """Medians over `repeat` fresh processes of what `_rss_child` reports."""
    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-m", "bench.network", "--rss-child"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def report(rounds: int, repeat: int) -> str:
    """The markdown section: forward passes per photo, then memory per cached photo."""
    cores = os.cpu_count() or 1
    threads = tuple(sorted({1, cores}))
    t0 = time.perf_counter()
    timings = forward_times(rounds, threads)
    rows = [
        [
            t.photo,
            f"{t.threads}",
            f"{statistics.median(t.run_ms):.1f}",
            spread(t.run_ms),
            f"{statistics.median(t.forward_ms):.1f}",
            spread(t.forward_ms),
        ]
        for t in timings
    ]
    mem = rss(repeat)
    layers = network.load(None).layers
    parts = [
        "### 4b. The trained network (MobileNetV2, one pass per photo, CPU)",
        "",
        f"Command: `.venv/bin/python -m bench.network --rounds {rounds} --repeat {repeat}`  ",
        f"Machine: {machine()}",
        "",
        f"{rounds} alternating rounds over the photos; spread is the interquartile range.",
        "",
        table(
            [
                "photo",
                "torch threads",
                "preprocess + pass ms",
                "spread",
                "pass alone ms",
                "spread",
            ],
            rows,
        ),
        "",
        f"One cached photo holds {mem['photo_bytes'] / 2**20:.1f} MiB "
        f"({mem['photo_bytes']:,} bytes: the input of all {len(layers)} 1×1 layers, float32, "
        "and the logits). Computing and caching it in a warm process raised the peak RSS by "
        f"{mem['peak_mib']:.1f} MiB and kept {mem['kept_mib']:.1f} MiB "
        f"(medians of {repeat} fresh processes).",
        "",
        f"(measured in {time.perf_counter() - t0:.0f} s)",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.network", description=__doc__)
    parser.add_argument("--rounds", type=int, default=9, help="rounds over the photos")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes for the RSS")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        _rss_child()
        return
    print(report(args.rounds, args.repeat))


if __name__ == "__main__":
    main()
