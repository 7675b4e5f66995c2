"""Spool: bytes that may be large, the first ones in RAM and the rest in a temporary file.

One buffer for a request body while it waits for a compute slot (written on the event
loop, the file writes batched onto a worker thread) and for each part of a multipart body
(written in the compute slot). Read back in pieces, or whole into one bytearray by preadv,
which does not hold the GIL: a 100 MB copy done in Python would hold the event loop (and
/healthz) for tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from typing import IO

# Bytes gathered before they are written to the file at once.
_BATCH = 512 * 1024
# Bytes read back at a time by chunks().
_PIECE = 1024 * 1024


class Spool:
    """Its first `memory` bytes in RAM (`head`), the rest in a temporary file."""

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.head = bytearray()
        self.file: IO[bytes] | None = None
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def _add(self, data: bytes) -> bool:
        """Keep `data`; True when enough waits for the file that it should be written."""
        self.size += len(data)
        if self.file is None and not self._pending and len(self.head) + len(data) <= self.memory:
            self.head += data
            return False
        self._pending.append(data)
        self._pending_bytes += len(data)
        return self._pending_bytes >= _BATCH

    def write(self, data: bytes) -> None:
        """Append, writing to the file in this thread (a compute slot)."""
        if self._add(data):
            self.flush()

    async def write_async(self, data: bytes) -> None:
        """Append on the event loop; the file writes go to the loop's default executor, a
        plain thread hop (anyio's to_thread costs more on the loop than the write itself)."""
        if self._add(data):
            await self.flush_async()

    def flush(self) -> None:
        """Write what waits to the file (blocking)."""
        if not self._pending:
            return
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if self.file is None:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.file.writelines(pending)
        self.file.flush()

    async def flush_async(self) -> None:
        if self._pending:
            await asyncio.get_running_loop().run_in_executor(None, self.flush)

    def chunks(self, size: int = _PIECE) -> Iterator[bytes]:
        """The bytes again, from the start, in pieces (in a compute slot)."""
        self.flush()
        for start in range(0, len(self.head), size):
            yield bytes(self.head[start : start + size])
        if self.file is not None:
            self.file.seek(0)
            while chunk := self.file.read(size):
                yield chunk

    def read(self) -> bytearray:
        """All the bytes, mutable (arrays decoded from them in place are writable too)."""
        self.flush()
        if self.file is None:
            return self.head
        data = bytearray(self.size)
        view = memoryview(data)
        view[: len(self.head)] = self.head
        done, fd = len(self.head), self.file.fileno()
        while done < self.size:  # os.preadv reads without the GIL; a short read may happen
            got = os.preadv(fd, [view[done:]], done - len(self.head))
            if got == 0:
                raise OSError(f"a spooled body ended at {done} of its {self.size} bytes")
            done += got
        return data

    def close(self) -> None:
        self.head = bytearray()
        self._pending = []
        if self.file is not None:
            self.file.close()
