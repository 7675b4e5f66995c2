"""Replicas behind HAProxy, the way a Kubernetes Service with readiness gating would send them
traffic: `python -m bench.cluster [--settle 5] [--clients 12] [--fits 3] [--throughput 20]
[--markdown]`.

Starts three replicas (`onebyone serve` processes on loopback ports; pods, here) and HAProxy
(Debian's package) in front of them:
- a replica gets traffic only while `GET /readyz` answers 200 (a readinessProbe: 503 when
  every place is taken, and from the start of a drain);
- a request is retried on another replica (`retry-on`, `option redispatch 1`) when the
  connection fails (a replica gone), when a replica closes it without an answer
  (`empty-response`: killed mid-request, or closing an idle connection as it shuts down),
  and on a 503 (full, or still running at its drain limit); a Service's kube-proxy does
  not retry, the ingress or mesh in front of it does;
- with no replica ready, HAProxy answers itself: 503 with Retry-After, in the API's
  error shape.

Failover: while clients post comparisons (and a few post fits of a second or more) through
HAProxy, one replica is killed with
SIGKILL (and started again, as the kubelet would) and, once it is back, another is rolled
(SIGTERM: it drains, exits, and starts again); the load goes on a few seconds more. Every
answer is counted: only 200, and 503 with Retry-After, may come back, and every replica's
admission count must end at 0. Throughput: the same load through HAProxy to 1, 2 and 3
replicas, and to one replica directly. Prints JSON (and markdown tables with --markdown);
the replicas' and HAProxy's logs stay in build/cluster/. Bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.loadtest import DEFAULT, KEEPALIVE_S
from bench.server import ROOT, free_port, start, stop, wait_healthy

LOGS = ROOT / "build" / "cluster"

# Each replica: two compute slots of one torch thread (three replicas share two cores here;
# while a fit holds one slot, comparisons go on in the other), and a drain limit shorter
# than a fit, so a roll shows both ends of a drain: comparisons finish, a fit still running
# at the limit is answered 503 and HAProxy replays it on another replica.
REPLICA_ENV = {
    "ONEBYONE_COMPUTE_SLOTS": "2",
    "ONEBYONE_TORCH_THREADS": "1",
    "ONEBYONE_DRAIN_TIMEOUT_S": "1",
}
COMPARE = ("/api/v1/compare", DEFAULT)
# About a second alone, several under this load.
FIT = (
    "/api/v1/experiments/fit",
    {"input": {"generator": "catdog", "height": 64, "width": 64, "channels": 8}, "steps": 1500},
)
DRAIN_LIMIT_S = float(REPLICA_ENV["ONEBYONE_DRAIN_TIMEOUT_S"])
# HAProxy's own answer when no replica is ready: the API's error shape, and Retry-After.
NO_REPLICA = (
    '{"detail":"No replica is ready to answer; retry in a moment.",'
    '"field":null,"code":"no_replica"}'
)

CONFIG = """\
global
    log stderr format raw local0 info
    maxconn 4096

defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    # Retried on another replica: refused or failed connections, a replica that closes
    # without answering (SIGKILL mid-request, or an idle connection closed as it shuts
    # down), and 503 (full, or at its drain limit). Safe for POSTs here: a refused or
    # unanswered request has no effect, and a comparison has none either.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503
    option http-buffer-request

frontend web
    bind 127.0.0.1:{port}
    default_backend replicas
    http-error status 503 content-type application/json string '{no_replica}' hdr Retry-After 1

frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats

backend replicas
    balance roundrobin
    # A readinessProbe: in rotation while /readyz answers 200.
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
    timeout check 2s
{servers}
"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy")
    if found is None:
        raise RuntimeError("haproxy is missing: apt-get install haproxy (scripts/test does)")
    return found


@dataclass
class Replica:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port),
                "--log-level", "warning"]  # fmt: skip
        self.proc = start(args, REPLICA_ENV, self.log)
        self.starts += 1

    def wait_healthy(self) -> None:
        assert self.proc is not None
        wait_healthy(self.url, self.proc, timeout=120)

    def admitted(self) -> int:
        r = httpx.get(self.url + "/healthz", timeout=5)
        return int(r.json()["admission"]["admitted"])


@contextmanager
def replicas(count: int, folder: Path) -> Iterator[list[Replica]]:
    pool = [Replica(f"r{i + 1}", free_port(), folder / f"r{i + 1}.log") for i in range(count)]
    try:
        for r in pool:
            r.start()
        for r in pool:
            r.wait_healthy()
        yield pool
    finally:
        for r in pool:
            if r.proc is not None and r.proc.poll() is None:
                stop(r.proc)


@dataclass
class HAProxy:
    url: str
    stats_url: str
    proc: subprocess.Popen[bytes]

    def stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's own counters, by proxy/server (its CSV statistics)."""
        text = httpx.get(self.stats_url + "/stats;csv", timeout=5).text
        header, *rows = text.lstrip("# ").splitlines()
        names = header.split(",")
        out = {}
        for row in rows:
            values = dict(zip(names, row.split(","), strict=False))
            out[f"{values['pxname']}/{values['svname']}"] = values
        return out


@contextmanager
def haproxy(pool: list[Replica], folder: Path, wait_up: bool = True) -> Iterator[HAProxy]:
    """HAProxy in front of `pool`; once it sees every replica up, unless not `wait_up`."""
    port, stats_port = free_port(), free_port()
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in pool)
    config = folder / f"haproxy-{port}.cfg"
    # str.format would trip over the braces of the JSON body: fill the fields one by one.
    text = CONFIG.replace("{port}", str(port)).replace("{stats_port}", str(stats_port))
    config.write_text(text.replace("{no_replica}", NO_REPLICA).replace("{servers}", servers))
    binary = haproxy_binary()
    checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"haproxy refuses its configuration: {checked.stdout}{checked.stderr}")
    log = open(folder / f"haproxy-{port}.log", "ab")  # noqa: SIM115 (the child holds a copy)
    proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)
    log.close()
    proxy = HAProxy(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}", proc)
    try:
        deadline = time.monotonic() + 30
        while wait_up:  # every replica in rotation (rise 2 × 500 ms)
            if proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {proc.returncode}")
            try:
                up = [s for k, s in proxy.stats().items() if k.startswith("replicas/r")]
                if up and all(s["status"] == "UP" for s in up):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy did not see its replicas up in 30 s")
            time.sleep(0.1)
        if not wait_up:  # its frontend answers
            while True:
                try:
                    httpx.get(proxy.stats_url + "/stats", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        yield proxy
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Tally:
    """Every answer a load got: statuses, 503s with and without Retry-After, failures."""

    started: float = field(default_factory=time.monotonic)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    busy_without_retry_after: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    failed_at: list[str] = field(default_factory=list)  # when and what, the first 20

    def summary(self, seconds: float) -> dict[str, Any]:
        q = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 else [0] * 99
        ok = self.statuses[200]
        return {
            "requests": sum(self.statuses.values()) + sum(self.failures.values()),
            "ok": ok,
            "busy_503": self.statuses[503],
            "busy_503_without_retry_after": self.busy_without_retry_after,
            "other_statuses": {str(k): v for k, v in self.statuses.items() if k not in (200, 503)},
            "failures": dict(self.failures),
            "failed_at": self.failed_at,
            "ok_per_s": round(ok / seconds, 1),
            "p50_ms": round(q[49], 1),
            "p99_ms": round(q[98], 1),
        }


async def load(
    url: str,
    clients: int,
    seconds: float,
    tally: Tally,
    until: threading.Event | None = None,
    fits: int = 0,
    fit_tally: Tally | None = None,
) -> float:
    """`clients` post comparisons, and `fits` more post fits, for `seconds` or until `until`
    is set; returns the time it took."""
    started = time.monotonic()
    deadline = started + seconds

    def going() -> bool:
        return time.monotonic() < deadline and not (until is not None and until.is_set())

    async def client_loop(
        client: httpx.AsyncClient, request: tuple[str, dict[str, Any]], tally: Tally
    ) -> None:
        path, body = request
        while going():
            t0 = time.perf_counter()
            try:
                r = await client.post(path, json=body)
            except httpx.HTTPError as exc:  # a cut or refused connection: a failure
                tally.failures[type(exc).__name__] += 1
                if len(tally.failed_at) < 20:
                    at = time.monotonic() - started
                    tally.failed_at.append(f"{at:.2f} s: {type(exc).__name__}: {exc}")
                continue
            tally.latencies.append((time.perf_counter() - t0) * 1e3)
            tally.statuses[r.status_code] += 1
            if r.status_code == 503 and "retry-after" not in r.headers:
                tally.busy_without_retry_after += 1

    limits = httpx.Limits(max_connections=clients + fits, keepalive_expiry=KEEPALIVE_S)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(client_loop(client, COMPARE, tally) for _ in range(clients)),
            *(client_loop(client, FIT, fit_tally or tally) for _ in range(fits)),
        )
    return time.monotonic() - started


def chaos(
    pool: list[Replica], settle: float, events: list[dict[str, Any]], done: threading.Event
) -> None:
    """In a thread, during the load: SIGKILL one replica and start it again; once it is
    back, roll another (SIGTERM, wait for its exit, start it again); `settle` seconds
    between steps and after the last, then `done`."""
    t0 = time.monotonic()
    killed, rolled = pool[0], pool[1]

    def note(event: str, **extra: Any) -> None:
        events.append({"event": event, "t_s": round(time.monotonic() - t0, 2), **extra})

    try:
        _chaos(killed, rolled, settle, note)
    finally:
        done.set()


def _chaos(killed: Replica, rolled: Replica, settle: float, note: Any) -> None:
    time.sleep(settle)
    assert killed.proc is not None
    killed.proc.kill()
    killed.proc.wait()
    note("sigkill", replica=killed.name)
    killed.start()  # as the kubelet restarts a container that died
    killed.wait_healthy()
    note("restarted", replica=killed.name)
    time.sleep(settle)
    assert rolled.proc is not None
    sent = time.monotonic()
    rolled.proc.send_signal(signal.SIGTERM)
    rolled.proc.wait(DRAIN_LIMIT_S + 10)
    note("sigterm_exit", replica=rolled.name, exit_s=round(time.monotonic() - sent, 2))
    rolled.start()
    rolled.wait_healthy()
    note("restarted", replica=rolled.name)
    time.sleep(settle)


def wait_idle(pool: list[Replica], timeout: float = 15) -> dict[str, int]:
    """Each replica's admission count once the load is over (0 expected)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {r.name: r.admitted() for r in pool}
        if not any(counts.values()) or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def folder(name: str) -> Path:
    path = LOGS / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def failover(settle: float, clients: int, fits: int, limit: float) -> dict[str, Any]:
    logs = folder("failover")
    with replicas(3, logs) as pool, haproxy(pool, logs) as proxy:
        events: list[dict[str, Any]] = []
        tally, fit_tally = Tally(), Tally()
        done = threading.Event()

        async def run() -> float:
            took, _ = await asyncio.gather(
                load(proxy.url, clients, limit, tally, done, fits, fit_tally),
                asyncio.to_thread(chaos, pool, settle, events, done),
            )
            return float(took)

        seconds = asyncio.run(run())
        stats = proxy.stats()["replicas/BACKEND"]
        admitted = wait_idle(pool)
    drains = [
        json.loads(line.split(" onebyone ", 1)[1])
        for line in pool[1].log.read_text().splitlines()
        if ' onebyone {"event": "drain_' in line
    ]
    roll = drains[: 1 + next(i for i, d in enumerate(drains) if d["event"] == "drain_end")]
    return {
        "seconds": round(seconds, 1),
        "clients": clients,
        **tally.summary(seconds),
        "fits": {"clients": fits, **fit_tally.summary(seconds)},
        "events": events,
        "haproxy_retries": int(stats["wretr"] or 0),
        "haproxy_redispatches": int(stats["wredis"] or 0),
        "rolled_replica_drain": [
            {"event": d["event"], "s": d["s"], "admitted": d["admission"]["admitted"]}
            | ({"stopped": d["stopped"]} if "stopped" in d else {})
            for d in roll
        ],
        "admitted_end": admitted,
    }


def throughput(seconds: float, clients: int) -> list[dict[str, Any]]:
    rows = []
    logs = folder("throughput")
    with replicas(3, logs) as pool:
        for r in pool:
            asyncio.run(load(r.url, 4, 2, Tally()))  # warm up each replica a little
        for n in (0, 1, 2, 3):  # 0: one replica, directly
            tally = Tally()
            if n == 0:
                asyncio.run(load(pool[0].url, clients, seconds, tally))
            else:
                with haproxy(pool[:n], logs) as proxy:
                    asyncio.run(load(proxy.url, clients, seconds, tally))
            label = "1, no HAProxy" if n == 0 else str(n)
            rows.append({"replicas": label, **tally.summary(seconds)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--settle", type=float, default=5, help="failover: seconds of load between steps"
    )
    parser.add_argument(
        "--limit", type=float, default=180, help="failover: the load stops by then, seconds"
    )
    parser.add_argument("--clients", type=int, default=12, help="clients posting compares")
    parser.add_argument("--fits", type=int, default=2, help="failover: clients posting fits")
    parser.add_argument(
        "--throughput", type=float, default=20, help="seconds per replica count; 0: none"
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores",
        "failover": failover(args.settle, args.clients, args.fits, args.limit),
    }
    if args.throughput:
        result["throughput"] = throughput(args.throughput, args.clients)
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    f = result["failover"]
    exit_s = next(e["exit_s"] for e in f["events"] if e["event"] == "sigterm_exit")
    stopped = sum(d.get("stopped", 0) for d in f["rolled_replica_drain"])
    lines = [
        "| requests | kind | 200 | 503 (without Retry-After) | other | failures |",
        "|---|---|---|---|---|---|",
    ]
    for kind, row in (("compare", f), ("fit", f["fits"])):
        lines.append(
            f"| {row['requests']} | {kind} | {row['ok']} | {row['busy_503']} "
            f"({row['busy_503_without_retry_after']}) | {row['other_statuses'] or 0} | "
            f"{row['failures'] or 0} |"
        )
    lines += [
        "",
        f"SIGKILL, restart and roll over {f['seconds']} s; HAProxy retried "
        f"{f['haproxy_retries']} requests and redispatched {f['haproxy_redispatches']}; the "
        f"rolled replica exited {exit_s} s after SIGTERM ({stopped} stopped at its drain "
        f"limit); admitted at the end: {f['admitted_end']}.",
    ]
    if "throughput" in result:
        lines += ["", "| replicas | answers/s | p50 ms | p99 ms | 503 | failures |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for row in result["throughput"]:
            lines.append(
                f"| {row['replicas']} | {row['ok_per_s']} | {row['p50_ms']} | "
                f"{row['p99_ms']} | {row['busy_503']} | {row['failures'] or 0} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
