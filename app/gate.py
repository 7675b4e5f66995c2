"""Bounded compute: a fixed number of jobs at once, a bounded queue, a time budget."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio

from app.errors import Busy

T = TypeVar("T")


class ComputeGate:
    """Bounded compute: `slots` jobs at once, `queue` more waiting, the rest refused with 503.

    A job over the time budget is answered with 503 at once; its thread cannot be
    killed, so it keeps its place in the count until it really ends, and the
    number of jobs in memory never exceeds slots + queue.
    """

    def __init__(self, slots: int, queue: int, timeout_s: float) -> None:
        self.limiter = anyio.CapacityLimiter(slots)
        self.capacity = slots + queue
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        self.admitted = 0

    async def run(self, fn: Callable[[], T]) -> T:
        with self.lock:
            if self.admitted >= self.capacity:
                raise Busy("The server is busy: every compute slot is taken. Retry in a moment.")
            self.admitted += 1
        state = {"started": False, "abandoned": False}

        def job() -> T:
            with self.lock:
                if state["abandoned"]:
                    raise Busy("abandoned before it started")
                state["started"] = True
            try:
                return fn()
            finally:
                with self.lock:
                    self.admitted -= 1

        try:
            with anyio.fail_after(self.timeout_s):
                return await anyio.to_thread.run_sync(
                    job, limiter=self.limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            with self.lock:
                state["abandoned"] = True
                if not state["started"]:
                    self.admitted -= 1
            raise Busy(
                f"The request took longer than its time budget of {self.timeout_s:g} s "
                "(ONEBYONE_REQUEST_TIMEOUT_S); try smaller maps, or retry when the server "
                "is less busy."
            ) from None
