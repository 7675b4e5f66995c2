"""The compute gate in-process: exact admission, bounded threads, time budget, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from app.errors import Busy, Cancelled
from app.gate import ClientGone, ComputeGate, Ticket


class Meter:
    """Counts jobs that start, and the most running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started = 0
        self.ended = 0

    def job(self, ticket: Ticket, seconds: float, check: bool = True) -> Callable[[], str]:
        def work() -> str:
            with self.lock:
                self.started += 1
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    if check:
                        ticket.token.check()
                    time.sleep(0.005)
                return "done"
            finally:
                with self.lock:
                    self.running -= 1
                    self.ended += 1

        return work


def admitted(gate: ComputeGate) -> int:
    return int(gate.snapshot()["admitted"])


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_admission_is_refused_past_capacity_and_given_back_on_close() -> None:
    gate = ComputeGate(slots=2, queue=1, timeout_s=5)
    tickets = [gate.admit() for _ in range(3)]
    with pytest.raises(Busy, match="busy"):
        gate.admit()
    assert gate.snapshot()["ready"] is False
    for t in tickets:
        t.close()
        t.close()  # a second close changes nothing
    assert admitted(gate) == 0 and gate.snapshot()["ready"] is True
    gate.close()


def test_run_returns_the_result_and_errors_propagate() -> None:
    gate = ComputeGate(slots=1, queue=0, timeout_s=5)

    async def main() -> None:
        ticket = gate.admit()
        assert await ticket.run(lambda: 6 * 7) == 42
        with pytest.raises(ZeroDivisionError):
            await ticket.run(lambda: 1 // 0)
        ticket.close()

    asyncio.run(main())
    assert admitted(gate) == 0
    gate.close()


def test_over_the_budget_the_job_is_told_to_stop_and_keeps_its_admission_until_it_does() -> None:
    gate = ComputeGate(slots=1, queue=4, timeout_s=0.2)
    meter = Meter()
    cleaned: list[int] = []

    async def main() -> None:
        ticket = gate.admit()
        ticket.on_release(lambda: cleaned.append(1))
        t0 = time.monotonic()
        with pytest.raises(Busy, match="time budget"):
            await ticket.run(meter.job(ticket, 30))
        assert time.monotonic() - t0 < 1.0
        assert ticket.token.is_set() and ticket.token.reason == "timeout"
        ticket.close()

    asyncio.run(main())
    wait_until(lambda: meter.ended == 1, 2.0)  # it stopped at its next check
    wait_until(lambda: admitted(gate) == 0, 1.0)
    assert cleaned == [1]  # released exactly once, after the thread ended
    gate.close()


def test_a_thread_that_cannot_stop_keeps_its_slot_so_threads_never_exceed_slots() -> None:
    gate = ComputeGate(slots=2, queue=20, timeout_s=0.1)
    meter = Meter()

    async def one() -> None:
        ticket = gate.admit()
        try:
            # Ignores its token: runs its full 0.3 s after the request has given up.
            await ticket.run(meter.job(ticket, 0.3, check=False))
        except Busy:
            pass
        finally:
            ticket.close()

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(10)))
        # The requests are over; their threads are not: the admissions stay.
        snap = gate.snapshot()
        assert snap["admitted"] >= 1 and snap["abandoned"] >= 1
        assert snap["computing"] <= 2

    asyncio.run(main())
    wait_until(lambda: admitted(gate) == 0, 5.0)
    assert meter.peak <= 2
    # Only jobs that got a thread before their request gave up ever ran.
    assert meter.started < 10
    gate.close()


def test_a_job_still_waiting_for_a_thread_never_starts_once_abandoned() -> None:
    gate = ComputeGate(slots=1, queue=4, timeout_s=10)
    meter = Meter()

    async def main() -> None:
        first, second = gate.admit(), gate.admit()
        running = asyncio.ensure_future(first.run(meter.job(first, 0.5)))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(second.run(meter.job(second, 0.5)))
        await asyncio.sleep(0.05)
        assert gate.snapshot()["waiting_for_slot"] == 1
        waiting.cancel()  # the client of the second request left while it waited
        with pytest.raises(asyncio.CancelledError):
            await waiting
        second.close()
        assert await running == "done"
        first.close()

    asyncio.run(main())
    assert meter.started == 1
    assert admitted(gate) == 0
    gate.close()


def test_a_client_that_disconnects_stops_its_job() -> None:
    gate = ComputeGate(slots=1, queue=0, timeout_s=10)
    meter = Meter()

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.1)
        return {"type": "http.disconnect"}

    async def main() -> None:
        ticket = gate.admit()
        with pytest.raises(ClientGone):
            await ticket.run(meter.job(ticket, 30), receive)
        assert ticket.token.reason == "client gone"
        ticket.close()

    asyncio.run(main())
    wait_until(lambda: admitted(gate) == 0, 2.0)
    assert meter.ended == 1
    gate.close()


def test_the_budget_is_shared_by_every_job_of_a_request() -> None:
    gate = ComputeGate(slots=1, queue=0, timeout_s=0.3)

    async def main() -> None:
        ticket = gate.admit()
        await ticket.run(lambda: time.sleep(0.2))
        with pytest.raises(Busy):
            await ticket.run(lambda: time.sleep(0.5))
        with pytest.raises(Busy):  # spent: refused before it starts
            await ticket.run(lambda: None)
        ticket.close()

    asyncio.run(main())
    wait_until(lambda: admitted(gate) == 0, 2.0)
    gate.close()


def test_token_check_raises_cancelled_with_its_reason() -> None:
    gate = ComputeGate(slots=1, queue=0, timeout_s=1)
    ticket = gate.admit()
    ticket.token.check()
    ticket.token.cancel("client gone")
    ticket.token.cancel("timeout")  # the first reason stays
    with pytest.raises(Cancelled, match="client gone"):
        ticket.token.check()
    ticket.close()
    gate.close()


def test_shutdown_stops_running_jobs_and_drops_waiting_ones() -> None:
    gate = ComputeGate(slots=1, queue=4, timeout_s=30)
    meter = Meter()

    async def main() -> None:
        tickets = [gate.admit() for _ in range(3)]
        runs = [asyncio.ensure_future(t.run(meter.job(t, 30))) for t in tickets]
        await asyncio.sleep(0.1)
        gate.close()
        results = await asyncio.gather(*runs, return_exceptions=True)
        assert all(isinstance(r, BaseException) for r in results), results
        for t in tickets:
            t.close()

    asyncio.run(main())
    assert meter.started == 1 and meter.ended == 1
    assert admitted(gate) == 0


def test_draining_admits_nothing_more_and_is_not_ready() -> None:
    gate = ComputeGate(slots=1, queue=4, timeout_s=5)
    kept = gate.admit()
    gate.start_draining(7)
    with pytest.raises(Busy, match="shutting down"):
        gate.admit()
    snap = gate.snapshot()
    assert snap["draining"] is True and snap["ready"] is False and snap["admitted"] == 1
    kept.close()
    assert admitted(gate) == 0
    gate.close()


def test_at_the_drain_limit_a_waiting_run_is_refused_at_once_and_its_thread_told_to_stop() -> None:
    gate = ComputeGate(slots=1, queue=4, timeout_s=30)
    meter = Meter()

    async def main() -> None:
        running, queued, receiving = gate.admit(), gate.admit(), gate.admit()
        runs = [asyncio.ensure_future(t.run(meter.job(t, 30))) for t in (running, queued)]
        await asyncio.sleep(0.1)
        gate.start_draining(2)
        t0 = time.monotonic()
        assert gate.stop_admitted() == 3
        for run in runs:
            with pytest.raises(Busy, match=r"drain limit \(2 s, ONEBYONE_DRAIN_TIMEOUT_S\)"):
                await run
        assert time.monotonic() - t0 < 0.5
        # A request that had not started computing (still receiving) is refused when it tries.
        with pytest.raises(Busy, match="drain limit"):
            await receiving.run(lambda: "never")
        for t in (running, queued, receiving):
            t.close()

    asyncio.run(main())
    wait_until(lambda: admitted(gate) == 0, 2.0)
    assert meter.started == 1 and meter.ended == 1  # the queued job never started
    gate.close()


def test_at_the_drain_limit_a_route_that_stops_its_request_itself_is_called() -> None:
    gate = ComputeGate(slots=1, queue=1, timeout_s=5)
    ticket = gate.admit()
    stopped: list[str] = []
    ticket.on_drain = lambda: stopped.append(ticket.token.reason)
    assert gate.stop_admitted() == 1
    assert stopped == ["drain limit"]
    ticket.close()
    assert gate.stop_admitted() == 0  # a request over is not stopped again
    gate.close()


def test_a_job_that_stops_itself_for_a_refusal_gives_the_refusal_not_cancelled() -> None:
    """The job may see its token (and stop, raising Cancelled) before run() is woken: a
    streaming fit at the drain limit then ended without its error event. The refusal for
    the token's reason comes out either way."""
    gate = ComputeGate(slots=1, queue=1, timeout_s=30)
    meter = Meter()

    async def main() -> None:
        ticket = gate.admit()
        gate.start_draining(2)
        run = asyncio.ensure_future(ticket.run(meter.job(ticket, 30)))
        await asyncio.sleep(0.1)
        ticket.token.cancel("drain limit")  # the token first, as _drained() does ...
        wait_until(lambda: meter.ended == 1)  # ... and the job stops before any wake
        with pytest.raises(Busy, match="drain limit"):
            await run
        ticket.close()

    asyncio.run(main())
    gate.close()
