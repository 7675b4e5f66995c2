"""How the benchmark times things: medians, alternating runs, the machine, markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def alternate(
    fns: dict[str, Callable[[], Any]], rounds: int, per_round: dict[str, int] | None = None
) -> dict[str, list[float]]:
    """Run each function in turn, round after round: ms of every run, by name.

    On a shared machine the load drifts; alternating gives every contender the same
    share of good and bad moments, so their medians compare. `per_round` runs some
    several times a round (the fast ones, next to a slow one).
    """
    for fn in fns.values():
        fn()  # warm up: imports, caches, first allocations
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range((per_round or {}).get(name, 1)):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def status_kib(field: str, pid: int | str = "self") -> int:
    """A memory figure of a process from /proc (VmRSS now, VmHWM its peak), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def med(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], digits: int = 1) -> str:
    """The interquartile range of some timings or ratios, as "lo–hi"."""
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{q[0]:.{digits}f}–{q[2]:.{digits}f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}, {dev}"
    )


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def spec(
    c: int, h: int, w: int, k: int, gen: str = "smooth", device: str = "auto"
) -> dict[str, Any]:
    return {
        "input": {"generator": gen, "height": h, "width": w, "channels": c},
        "weights": {"preset": "random", "out_channels": k},
        "device": device,
    }
