"""Admission: exactly `slots` computing threads, a bounded number of admitted requests, a time
budget, and work that stops when nobody wants it.

A request is admitted (`ComputeGate.admit`) before its body is read and holds its `Ticket`
until its response is sent or abandoned; at most `slots + queue` tickets exist and the next
request gets 503 at once. `Ticket.run` runs a job on one of the gate's `slots` threads. When
the time budget runs out or the client leaves, the ticket's `CancelToken` is set and long
loops stop at their next check. When the process shuts down (app.drain) the gate admits
nothing more, and at the drain limit every request still admitted is stopped and refused
(`ComputeGate.stop_admitted`). A thread already running cannot be killed, so its ticket
stays admitted until the job really ends: neither the computing threads nor the memory held
by admitted requests can grow past the bound, and every ticket is given back exactly once.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from app.errors import Busy, Cancelled

T = TypeVar("T")
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
log = logging.getLogger("onebyone")


def _glibc() -> Any | None:
    """glibc, for malloc_trim and mallopt; None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


# glibc keeps memory a thread has freed in that thread's arena for reuse, and after a large
# block is freed it raises the size below which blocks come from the arenas (up to 32 MiB).
# After a job that held hundreds of MB in pieces of a few MB (heatmaps, encodings, parsing)
# the arenas keep them resident, and the next job's peak comes on top. So the gate maps
# every block over 8 MiB on its own (unmapped when freed) and trims after each job (a few
# ms, without the GIL): RSS follows what the jobs really hold. Not lower: a block mapped on
# its own is page-faulted anew each time, and the temporaries a job makes over and over
# (a fit step's (K, H·W) of at most 4 MiB, the statistics' tiles) would then cost 3–4× their
# arithmetic (measured: a 100-step fit 0.8 s → 2.9 s at 1 MiB).
_GLIBC = _glibc()
_M_MMAP_THRESHOLD = -3
MAP_ABOVE_BYTES = 8 << 20


def map_large_blocks() -> None:
    """Process-wide, once at startup (app.main's lifespan): blocks over MAP_ABOVE_BYTES get
    their own mapping, given back to the system when freed (see above)."""
    if _GLIBC is not None:
        _GLIBC.mallopt(_M_MMAP_THRESHOLD, MAP_ABOVE_BYTES)


class ClientGone(Exception):
    """The client closed the connection or stopped reading: nothing more goes to it."""


# The token's reason once the drain limit has passed (app.drain).
DRAINED = "drain limit"


class CancelToken(threading.Event):
    """Set when a request's work should stop: time budget spent, client gone, or shutdown."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""

    def cancel(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
            self.set()

    def check(self) -> None:
        """Raise Cancelled if the work should stop; call it between steps and chunks."""
        if self.is_set():
            raise Cancelled(self.reason)


async def _disconnected(receive: Receive) -> None:
    """Return when the client closes the connection (only once its body has been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Ticket:
    """One admitted request: its cancellation token, its time budget, what it must let go."""

    def __init__(self, gate: ComputeGate) -> None:
        self.gate = gate
        self.token = CancelToken()
        self.deadline: float | None = None
        self.jobs = 0  # submitted and not yet ended (guarded by the gate's lock)
        self.closed = False  # the request is over
        self.released = False
        self._cleanups: list[Callable[[], None]] = []
        # Set by run() while it waits, so the drain limit can wake it (on the event loop).
        self._wakes: set[asyncio.Future[None]] = set()
        # How the route stops this request at the drain limit (routes.admission); without
        # one, run() calls in progress are woken and refuse.
        self.on_drain: Callable[[], object] | None = None

    def on_release(self, cleanup: Callable[[], None]) -> None:
        """Run `cleanup` (close a temporary file) when the admission is given back."""
        self._cleanups.append(cleanup)

    def _refusal(self) -> Exception:
        if self.token.reason == "timeout":
            return Busy(
                f"The request took longer than its time budget of {self.gate.timeout_s:g} s "
                "(ONEBYONE_REQUEST_TIMEOUT_S); try smaller maps, or retry when the server "
                "is less busy."
            )
        if self.token.reason == DRAINED:
            return Busy(self.gate.drain_message())
        return ClientGone(self.token.reason)

    async def run(self, fn: Callable[[], T], receive: Receive | None = None) -> T:
        """fn() on a compute thread, within the time budget (counted from the first run).

        With `receive` (only once the body has been read) it also gives up when the client
        disconnects. Giving up, or being cancelled, sets the token; a job still waiting for
        a thread then never starts.
        """
        if self.deadline is None:
            self.deadline = time.monotonic() + self.gate.timeout_s
        if self.token.is_set():
            raise self._refusal()
        waiter = asyncio.wrap_future(self.gate._submit(self, fn))
        watcher = asyncio.ensure_future(_disconnected(receive)) if receive else None
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wakes.add(wake)
        pending: set[asyncio.Future[Any]] = {waiter, wake}
        if watcher is not None:
            pending.add(watcher)
        try:
            done, _ = await asyncio.wait(
                pending,
                timeout=max(0.0, self.deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if waiter in done:
                try:
                    return waiter.result()
                except Cancelled:
                    # The job saw its token before run() was woken (or timed out): the
                    # refusal for the token's reason, as if it had been, not a bare stop.
                    raise self._refusal() from None
            if wake in done:  # the drain limit: the token is set already
                raise self._refusal()
            self.token.cancel("client gone" if watcher in done else "timeout")
            raise self._refusal()
        finally:
            self._wakes.discard(wake)
            if watcher is not None:
                watcher.cancel()
            if not waiter.done():
                self.token.cancel("abandoned")
                waiter.cancel()  # cancels the job too if no thread has picked it up yet

    def close(self) -> None:
        """The request is over (the route's `finally`): give the admission back now, or when
        its last job ends. A job still running is told to stop."""
        if self.gate._close(self):
            self.token.cancel("request over")

    def wake(self) -> None:
        """Make run() calls in progress return at once, with the refusal for the token."""
        for wake in self._wakes:
            if not wake.done():
                wake.set_result(None)

    def _drained(self) -> None:
        self.token.cancel(DRAINED)
        if self.on_drain is not None:
            self.on_drain()
        else:
            self.wake()

    def _cleanup(self) -> None:
        for cleanup in self._cleanups:
            cleanup()
        self._cleanups.clear()


class ComputeGate:
    """`slots` threads compute; at most `slots + queue` requests are admitted; the rest get 503."""

    def __init__(self, slots: int, queue: int, timeout_s: float) -> None:
        self.slots = slots
        self.capacity = slots + queue
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="compute")
        self._lock = threading.Lock()
        self._tickets: set[Ticket] = set()
        self._computing = 0
        self._jobs = 0
        self.draining = False
        self.drain_timeout_s = 0.0

    def admit(self) -> Ticket:
        with self._lock:
            if self.draining:
                raise Busy(
                    "The server is shutting down and admits no more requests; retry in a "
                    "moment (another replica answers)."
                )
            if len(self._tickets) >= self.capacity:
                computing = self._computing
                waiting = self._jobs - computing
                receiving = len(self._tickets) - self._jobs
                raise Busy(
                    f"The server is busy: all {self.capacity} places are taken ({computing} "
                    f"computing, {waiting} waiting for a slot, {receiving} still sending "
                    "or being answered). Retry in a moment."
                )
            ticket = Ticket(self)
            self._tickets.add(ticket)
        return ticket

    def _submit(self, ticket: Ticket, fn: Callable[[], T]) -> Future[T]:
        def job() -> T:
            with self._lock:
                self._computing += 1
            started = time.monotonic()
            try:
                ticket.token.check()
                return fn()
            finally:
                with self._lock:
                    self._computing -= 1
                if _GLIBC is not None:
                    _GLIBC.malloc_trim(0)
                if ticket.token.is_set():
                    ms = round((time.monotonic() - started) * 1e3, 1)
                    event = {"event": "job_stopped", "reason": ticket.token.reason, "ms": ms}
                    log.info(json.dumps(event))

        with self._lock:
            ticket.jobs += 1
            self._jobs += 1
        try:
            future = self._executor.submit(job)
        except RuntimeError:  # shut down
            self._job_ended(ticket)
            raise Busy("The server is shutting down. Retry in a moment.") from None
        future.add_done_callback(lambda _: self._job_ended(ticket))
        return future

    def _job_ended(self, ticket: Ticket) -> None:
        with self._lock:
            ticket.jobs -= 1
            self._jobs -= 1
            release = self._release(ticket)
        if release:
            ticket._cleanup()

    def _close(self, ticket: Ticket) -> bool:
        """Mark the request over; True if a job of it still runs (and keeps the admission)."""
        with self._lock:
            ticket.closed = True
            release = self._release(ticket)
            running = ticket.jobs > 0
        if release:
            ticket._cleanup()
        return running

    def _release(self, ticket: Ticket) -> bool:
        """With the lock held: give the admission back once the request and its jobs are over."""
        if ticket.closed and ticket.jobs == 0 and not ticket.released:
            ticket.released = True
            self._tickets.discard(ticket)
            return True
        return False

    def start_draining(self, timeout_s: float) -> None:
        """Shutdown begins: admit nothing more; what is admitted has `timeout_s` to finish."""
        with self._lock:
            self.draining = True
            self.drain_timeout_s = timeout_s

    def drain_message(self) -> str:
        return (
            "The server is shutting down and this request was still running at the end of "
            f"its drain limit ({self.drain_timeout_s:g} s, ONEBYONE_DRAIN_TIMEOUT_S); its work "
            "was stopped. Retry: another replica answers."
        )

    def stop_admitted(self) -> int:
        """The drain limit (on the event loop): every request still admitted is told to stop
        and is refused with Busy (or, once its answer has begun, ends it as it can). Returns
        how many were stopped."""
        with self._lock:
            tickets = [t for t in self._tickets if not t.closed]
        for ticket in tickets:
            ticket._drained()
        return len(tickets)

    def snapshot(self) -> dict[str, Any]:
        """The numbers health checks report: what is admitted, computing and waiting."""
        with self._lock:
            admitted = len(self._tickets)
            return {
                "worker": os.getpid(),
                "slots": self.slots,
                "capacity": self.capacity,
                "admitted": admitted,
                "computing": self._computing,
                "waiting_for_slot": self._jobs - self._computing,
                "abandoned": sum(1 for t in self._tickets if t.closed),
                "ready": admitted < self.capacity and not self.draining,
                "draining": self.draining,
            }

    def close(self) -> None:
        """Shutdown: tell every job to stop; jobs that have not started never will."""
        with self._lock:
            tickets = list(self._tickets)
        for ticket in tickets:
            ticket.token.cancel("shutdown")
        self._executor.shutdown(wait=False, cancel_futures=True)
