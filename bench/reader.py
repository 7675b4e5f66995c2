"""The checkpoint reader, attacked (issue 17): `python -m bench.reader [--markdown] [CASE …]`.

Each case is one upload a tester made in a few lines, sent to one server with the default
settings (`bench.server.running`). Per case: the status, the seconds until the answer, the
seconds until the server's admission is idle again (work that goes on after a 503 holds
it), the peak RSS over the RSS before (VmHWM, reset before each case) and the RSS kept
once idle. Cases:

- long_name_png: one 1×1 layer (16 → 16) named with 60,000 characters, compared on a
  (16, 28, 28) input as `format=png`;
- self_reference: a 1.6 KB .pt whose dict holds itself six times, on /checkpoints/layers;
- zero_size: a .safetensors of 1,000,000 zero-size tensors (68 MB), on /checkpoints/layers;
- suggestions: 50,000 1×1 convs with 1,000-character names and a near-miss `layer`.

and the same within the reader's bounds: long_name_png_1000 (the longest name a layer
may have) and suggestions_4000 (4,000 such convs, under the 4,096-tensor limit).
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from bench.abuse import npy
from bench.server import running
from bench.timing import status_kib

MIB = 1024 * 1024


def pt(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def safetensors_header(entries: dict[str, Any]) -> bytes:
    """A .safetensors file of header entries alone (every tensor zero-size: no data)."""
    header = json.dumps(entries, separators=(",", ":")).encode()
    return struct.pack("<Q", len(header)) + header


def long_name_png(length: int = 60_000) -> tuple[str, dict[str, Any]]:
    name = "n" * length
    weights = pt({f"{name}.weight": torch.ones(16, 16, 1, 1)})
    # The only 1×1 layer of the file: the request need not name it.
    spec = {"input": {"layout": "chw"}, "device": "cpu"}
    x = np.random.default_rng(0).standard_normal((16, 28, 28)).astype(np.float32)
    files = {"input": ("x.npy", npy(x)), "weights": ("m.pt", weights)}
    return "/api/v1/compare?format=png", {"files": files, "data": {"spec": json.dumps(spec)}}


def self_reference() -> tuple[str, dict[str, Any]]:
    d: dict[str, Any] = {"w": torch.zeros(0)}
    for i in range(6):
        d[f"k{i}"] = d
    return "/api/v1/checkpoints/layers", {"files": {"weights": ("loop.pt", pt(d))}}


def zero_size() -> tuple[str, dict[str, Any]]:
    entry = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    data = safetensors_header({f"t{i}": entry for i in range(1_000_000)})
    return "/api/v1/checkpoints/layers", {"files": {"weights": ("zero.safetensors", data)}}


def suggestions(count: int = 50_000) -> tuple[str, dict[str, Any]]:
    entries = {}
    for i in range(count):
        name = f"{i:06d}" + "c" * 994
        offsets = [4 * i, 4 * i + 4]
        entries[f"{name}.weight"] = {"dtype": "F32", "shape": [1, 1, 1, 1], "data_offsets": offsets}
    header = json.dumps(entries, separators=(",", ":")).encode()
    data = struct.pack("<Q", len(header)) + header + np.ones(count, np.float32).tobytes()
    near = "000001" + "c" * 993 + "x"
    spec = {"input": {"layout": "chw"}, "device": "cpu", "weights": {"layer": near}}
    files = {
        "input": ("x.npy", npy(np.ones((1, 2, 2), np.float32))),
        "weights": ("many.safetensors", data),
    }
    return "/api/v1/compare", {"files": files, "data": {"spec": json.dumps(spec)}}


CASES: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
    "long_name_png": long_name_png,
    "long_name_png_1000": lambda: long_name_png(1000),
    "self_reference": self_reference,
    "zero_size": zero_size,
    "suggestions": suggestions,
    "suggestions_4000": lambda: suggestions(4000),
}


def wait_idle(url: str, limit: float) -> float:
    """Seconds until nothing is admitted (polled every 50 ms), at most `limit`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        numbers = httpx.get(url + "/healthz", timeout=10).json()["admission"]
        if numbers["admitted"] == 0 and numbers["computing"] == 0:
            break
        time.sleep(0.05)
    return time.monotonic() - t0


def run_case(url: str, pid: int, name: str) -> dict[str, Any]:
    path, parts = CASES[name]()
    size = sum(len(f[1]) for f in parts["files"].values())
    rss0 = status_kib("VmRSS", pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again at VmRSS
    t0 = time.monotonic()
    r = httpx.post(url + path, timeout=600, **parts)
    answered = time.monotonic() - t0
    idle = answered + wait_idle(url, 600)
    return {
        "case": name,
        "upload_bytes": size,
        "status": r.status_code,
        "answer_bytes": len(r.content),
        "detail": r.json().get("detail", "")[:160] if r.status_code >= 400 else "",
        "answered_s": round(answered, 2),
        "idle_after_s": round(idle, 2),
        "peak_rss_growth_mib": round((status_kib("VmHWM", pid) - rss0) / 1024),
        "rss_kept_mib": round((status_kib("VmRSS", pid) - rss0) / 1024),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reader", description=__doc__)
    parser.add_argument("cases", nargs="*", metavar="CASE", help=", ".join(CASES))
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if unknown := set(args.cases) - set(CASES):
        parser.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(CASES)}")
    rows = []
    with running(env={"ONEBYONE_TORCH_THREADS": "1"}) as (url, proc):
        for name in args.cases or CASES:
            rows.append(run_case(url, proc.pid, name))
            print(json.dumps(rows[-1]), file=sys.stderr)
    if args.markdown:
        print("| case | upload | status | answer | answered | idle after | peak RSS | kept |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['case']} | {r['upload_bytes'] / 1e3:,.0f} kB | {r['status']} | "
                f"{r['answer_bytes']:,} B | {r['answered_s']} s | {r['idle_after_s']} s | "
                f"+{r['peak_rss_growth_mib']} MiB | +{r['rss_kept_mib']} MiB |"
            )
    else:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
