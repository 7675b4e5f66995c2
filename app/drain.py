"""Shutdown with a bound: stop admitting, let admitted work finish within a limit, refuse
what is left with 503 and Retry-After, exit.

uvicorn, on SIGTERM or SIGINT, stops accepting connections, closes idle ones and waits for
the running requests without a bound; only then does it run the lifespan's shutdown, too
late to bound anything. So the lifespan wraps the handler uvicorn installed (`on_signals`,
`draining`): the wrapper starts the drain on the event loop and calls uvicorn's handler,
whose own shutdown goes on as before. uvicorn installs its handler with `signal.signal` in
the main thread before the lifespan starts, in each worker with `--workers N` (whose
supervisor sends every worker SIGTERM), so the wrapper is installed there too and chains to
it. Wrapping the installed handler, rather than replacing uvicorn's `Server`, keeps
`uvicorn app.main:app` and `onebyone serve` alike and leaves uvicorn's own steps alone.

The drain (`Drain.run`): the gate admits nothing more (503, /readyz "draining"); requests
already admitted have ONEBYONE_DRAIN_TIMEOUT_S to finish; at the limit every one still open
is stopped and refused (`ComputeGate.stop_admitted`). JSON log lines record its start, each
second of it, the limit if reached, and its end, with the admission counts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from app.gate import ComputeGate

log = logging.getLogger("onebyone")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_POLL_S = 0.05


class Drain:
    """One process's shutdown: started once, by a signal or by `start()` directly."""

    def __init__(self, gate: ComputeGate, timeout_s: float) -> None:
        self.gate = gate
        self.timeout_s = timeout_s
        self.task: asyncio.Task[None] | None = None
        self.stopped = 0  # requests still open at the limit

    def start(self) -> None:
        """Begin the drain (on the event loop); a second call changes nothing."""
        if self.task is None:
            self.task = asyncio.ensure_future(self.run())

    def _log(self, event: str, started: float, **extra: Any) -> None:
        record = {
            "event": event,
            "s": round(time.monotonic() - started, 3),
            "limit_s": self.timeout_s,
            **extra,
            "admission": self.gate.snapshot(),
        }
        log.info(json.dumps(record))

    async def run(self) -> None:
        started = time.monotonic()
        deadline = started + self.timeout_s
        self.gate.start_draining(self.timeout_s)
        self._log("drain_start", started)
        next_log = started + 1.0
        while self._admitted() and (now := time.monotonic()) < deadline:
            if now >= next_log:
                self._log("draining", started)
                next_log += 1.0
            await asyncio.sleep(min(_POLL_S, deadline - now))
        if self._admitted():
            self.stopped = self.gate.stop_admitted()
            self._log("drain_limit", started, stopped=self.stopped)
            # The refusals go out as the requests' tasks run on, and the threads stop at
            # their next check; a thread that cannot stop is not waited for past this.
            while self._admitted() and time.monotonic() < deadline + 0.5:
                await asyncio.sleep(0.01)
        self._log("drain_end", started)

    def _admitted(self) -> int:
        return int(self.gate.snapshot()["admitted"])


@asynccontextmanager
async def draining(gate: ComputeGate, timeout_s: float) -> AsyncIterator[Drain]:
    """The lifespan's part: a Drain started by SIGTERM or SIGINT; on the way out, the signal
    handlers put back and the drain's last log line written."""
    drain = Drain(gate, timeout_s)
    undo = on_signals(drain)
    try:
        yield drain
    finally:
        undo()
        if drain.task is not None:
            await drain.task  # over once every request is (by the limit and half a second)


def on_signals(drain: Drain) -> Callable[[], None]:
    """Start `drain` on SIGTERM and SIGINT, before the handler already installed for them
    (uvicorn's), which is still called. Returns the function that undoes it.

    Only in the main thread (the only one Python delivers signals to), and only for a
    signal whose handler is a Python function to chain to: where nobody handles SIGTERM, it
    still ends the process at once.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        # A signal handler runs between two bytecodes of the main thread, which may hold
        # the gate's lock: it only schedules the drain, which runs on the loop.
        loop.call_soon_threadsafe(drain.start)
        previous[signum](signum, frame)

    for sig in SIGNALS:
        installed = signal.getsignal(sig)
        if callable(installed):
            previous[sig] = installed
            signal.signal(sig, handler)

    def undo() -> None:
        for sig, installed in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, installed)

    return undo
