"""Load, overload and a soak on loopback: `python -m bench.loadtest [--clients 32]
[--seconds 60] [--soak 300]`.

Starts its own server (`onebyone serve` on a free loopback port), then:
- load: N clients post the default scenario for S seconds; errors, p50/p99, server RSS;
- overload: many large requests at once; only 200 and 503 may come back, peak RSS;
- soak (--soak SECONDS): normal clients, clients that hang up at once, slow uploaders and
  oversized bodies, all at the same time; errors, p50/p99, /healthz p99, peak RSS, and
  the admitted count once idle (must be 0).
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
import numpy as np

from bench import abuse
from bench.server import running

# Below uvicorn's 5 s keep-alive: a connection idle for just that long may be closed by the
# server as the client sends on it, and httpx does not retry a POST.
KEEPALIVE_S = 2.0

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

    limits = httpx.Limits(max_connections=clients, keepalive_expiry=KEEPALIVE_S)
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
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_S)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
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


async def soak(url: str, seconds: float, pid: int) -> dict[str, Any]:
    """Every kind of client at once for `seconds`; see the module doc."""
    deadline = time.monotonic() + seconds
    normal: list[tuple[int, float]] = []
    kinds: dict[str, list[int]] = {"abandoning": [], "slow_upload": [], "oversized": []}
    rss = [rss_kib(pid)]
    body = json.dumps(DEFAULT).encode()
    fit = json.dumps({"steps": 2000, "every": 1}).encode()
    leaving = [
        abuse.request("/api/v1/experiments/fit?stream=true", fit, "application/json") + fit,
        abuse.request("/api/v1/compare", body, "application/json") + body,
        abuse.request("/api/v1/compare?format=npz", body, "application/json") + body,
    ]
    upload = abuse.npy(np.random.default_rng(0).random((8, 512, 512), dtype=np.float32))
    before, after, ctype = abuse.multipart("input", "acts.npy", upload)
    size = len(before) + len(upload) + len(after)
    slow_head = abuse.request("/api/v1/compare?heatmaps=false", b"", ctype, size)
    huge_head = abuse.request("/api/v1/compare", b"", ctype, 1 << 30)

    async def normal_client(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            r = await client.post("/api/v1/compare", json=DEFAULT)
            normal.append((r.status_code, (time.perf_counter() - t0) * 1e3))

    async def abandoning_client(i: int) -> None:
        # A tab closed or a scenario switched a few times a second, not a flood.
        while time.monotonic() < deadline:
            request = leaving[len(kinds["abandoning"]) % 3]
            await abuse.exchange(url, request, [], leave_after=0.002 * (i % 10))
            kinds["abandoning"].append(0)
            await asyncio.sleep(0.1)

    async def slow_uploader() -> None:
        while time.monotonic() < deadline:
            status = await abuse.exchange(
                url, slow_head, [before, upload, after], rate=2 * 1024 * 1024
            )
            kinds["slow_upload"].append(status)

    async def oversized_client() -> None:
        while time.monotonic() < deadline:
            status = await abuse.exchange(url, huge_head, [b"\0" * (1 << 20)])
            kinds["oversized"].append(status)
            await asyncio.sleep(0.2)

    async def sample() -> None:
        while time.monotonic() < deadline:
            rss.append(rss_kib(pid))
            await asyncio.sleep(1)

    limits = httpx.Limits(max_connections=16, keepalive_expiry=KEEPALIVE_S)
    async with (
        abuse.Watch(url) as watch,
        httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client,
    ):
        await asyncio.gather(
            sample(),
            *(normal_client(client) for _ in range(8)),
            *(abandoning_client(i) for i in range(4)),
            *(slow_uploader() for _ in range(2)),
            oversized_client(),
        )
        admitted = (await abuse.idle(url))["admitted"]
    codes = [c for c, _ in normal]
    q = statistics.quantiles([ms for _, ms in normal], n=100)
    health = watch.summary()
    return {
        "seconds": seconds,
        "normal_requests": len(normal),
        "normal_ok": codes.count(200),
        "normal_busy_503": codes.count(503),
        "errors": len(codes) - codes.count(200) - codes.count(503),
        "p50_ms": round(q[49], 1),
        "p99_ms": round(q[98], 1),
        "abandoned": len(kinds["abandoning"]),
        "slow_uploads": len(kinds["slow_upload"]),
        "slow_uploads_ok": kinds["slow_upload"].count(200),
        "slow_upload_statuses": sorted(set(kinds["slow_upload"])),
        "oversized": len(kinds["oversized"]),
        "oversized_413": kinds["oversized"].count(413),
        "healthz_p99_ms": health["healthz_p99_ms"],
        "healthz_max_ms": health["healthz_max_ms"],
        "rss_start_mib": round(rss[0] / 1024, 1),
        "rss_peak_mib": round(rss_kib(pid, "VmHWM") / 1024, 1),
        "rss_end_mib": round(rss_kib(pid) / 1024, 1),
        "admitted_end": admitted,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--overload", type=int, default=128, help="large requests sent at once")
    parser.add_argument("--soak", type=float, default=0, help="seconds of mixed abuse; 0: none")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with running() as (url, server):
        asyncio.run(load(url, 4, 2, server.pid))  # warm up
        result = {
            "load": asyncio.run(load(url, args.clients, args.seconds, server.pid)),
            "overload": asyncio.run(overload(url, args.overload, server.pid)),
        }
    if args.soak:
        with running() as (url, server):  # a fresh server: its own peak RSS
            asyncio.run(load(url, 4, 2, server.pid))  # warm up
            result["soak"] = asyncio.run(soak(url, args.soak, server.pid))
    print(json.dumps(result, indent=2))
    if args.markdown:
        for name, row in result.items():
            print(f"\n{name}\n\n| " + " | ".join(row) + " |\n|" + "---|" * len(row))
            print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
