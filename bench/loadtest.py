"""Load and overload on loopback: `python -m bench.loadtest [--clients 32] [--seconds 60]`.

Starts its own server (`onebyone serve` on a free loopback port), then:
- load: N clients post the default scenario for S seconds; errors, p50/p99, server RSS;
- overload: many large requests at once; only 200 and 503 may come back, peak RSS.
Prints a JSON summary (and a markdown table with --markdown). Bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import running

DEFAULT = {"input": {"generator": "catdog", "height": 28, "width": 28, "channels": 4}}
LARGE = {
    "input": {"generator": "gaussian", "height": 224, "width": 224, "channels": 128},
    "weights": {"preset": "random", "out_channels": 128},
}


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def load(url: str, clients: int, seconds: float, pid: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    rss = [rss_kib(pid)]

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            r = await client.post("/api/v1/compare", json=DEFAULT)
            latencies.append((time.perf_counter() - t0) * 1e3)
            errors += r.status_code != 200

    async def sample() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            rss.append(rss_kib(pid))

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(sample(), *(client_loop(client) for _ in range(clients)))
    q = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(q[49], 1),
        "p99_ms": round(q[98], 1),
        "rss_start_mib": round(rss[0] / 1024, 1),
        "rss_end_mib": round(rss[-1] / 1024, 1),
        "rss_max_mib": round(max(rss) / 1024, 1),
    }


async def overload(url: str, requests: int, pid: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/compare", params={"heatmaps": "false"}, json=LARGE)
                for _ in range(requests)
            )
        )
    codes = [r.status_code for r in responses]
    alive = (await httpx.AsyncClient(base_url=url).get("/healthz")).status_code == 200
    return {
        "requests": requests,
        "ok": codes.count(200),
        "busy_503": codes.count(503),
        "other": len(codes) - codes.count(200) - codes.count(503),
        "server_alive": alive,
        "peak_rss_mib": round(rss_kib(pid, "VmHWM") / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--overload", type=int, default=128, help="large requests sent at once")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with running() as (url, server):
        asyncio.run(load(url, 4, 2, server.pid))  # warm up
        result = {
            "load": asyncio.run(load(url, args.clients, args.seconds, server.pid)),
            "overload": asyncio.run(overload(url, args.overload, server.pid)),
        }
    print(json.dumps(result, indent=2))
    if args.markdown:
        for name, row in result.items():
            print(f"\n{name}\n\n| " + " | ".join(row) + " |\n|" + "---|" * len(row))
            print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
