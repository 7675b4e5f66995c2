"""routes.spool: bytes kept in RAM up to a bound and the rest in a temporary file, read back
whole or in pieces, from a compute thread or the event loop alike."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.routes.spool import Spool

_WRITES = st.lists(st.binary(max_size=300), max_size=12)


def _filled(memory: int, writes: list[bytes]) -> Spool:
    spool = Spool(memory)
    for data in writes:
        spool.write(data)
    return spool


@settings(max_examples=200, deadline=None)
@given(memory=st.integers(0, 1000), writes=_WRITES, piece=st.integers(1, 700))
def test_the_bytes_come_back_as_written(memory: int, writes: list[bytes], piece: int) -> None:
    spool = _filled(memory, writes)
    try:
        whole = b"".join(writes)
        assert spool.size == len(whole)
        assert bytes(spool.read()) == whole
        assert b"".join(spool.chunks(piece)) == whole
        assert all(0 < len(c) <= piece for c in spool.chunks(piece))
        assert bytes(spool.read()) == whole  # read again, after the pieces
    finally:
        spool.close()


@settings(max_examples=100, deadline=None)
@given(memory=st.integers(0, 1000), writes=_WRITES)
def test_written_on_the_event_loop_they_come_back_the_same(
    memory: int, writes: list[bytes]
) -> None:
    spool = Spool(memory)

    async def main() -> None:
        for data in writes:
            await spool.write_async(data)
        await spool.flush_async()

    try:
        anyio.run(main)
        assert bytes(spool.read()) == b"".join(writes)
    finally:
        spool.close()


@pytest.mark.parametrize(
    ("memory", "writes", "in_ram", "file"),
    [
        (10, [b"12345", b"67890"], b"1234567890", False),  # exactly the bound: all in RAM
        (10, [b"12345", b"678901"], b"12345", True),  # the write that passes it goes to the file
        (0, [b"1"], b"", True),
        (0, [b""], b"", False),  # nothing written, no file
    ],
)
def test_the_first_bytes_stay_in_ram_and_the_rest_go_to_a_file(
    memory: int, writes: list[bytes], in_ram: bytes, file: bool
) -> None:
    spool = _filled(memory, writes)
    try:
        spool.flush()
        assert bytes(spool.head) == in_ram
        assert (spool.file is not None) == file
    finally:
        spool.close()


def test_writes_past_the_ram_bound_go_to_the_file_in_batches() -> None:
    spool = Spool(1024)
    try:
        spool.write(b"x" * 200_000)
        spool.write(b"y" * 200_000)
        assert spool.file is None  # 400 KB wait for a batch of 512 KiB
        spool.write(b"z" * 200_000)
        assert spool.file is not None and spool.file.tell() == 600_000
        assert spool.head == bytearray()  # the first write was already over the bound
        assert bytes(spool.read()) == b"x" * 200_000 + b"y" * 200_000 + b"z" * 200_000
    finally:
        spool.close()


def test_what_is_read_from_the_file_is_a_mutable_buffer_of_its_own() -> None:
    spool = _filled(4, [b"abcdef"])
    try:
        data = spool.read()
        data[0] = ord("z")
        assert bytes(spool.read()) == b"abcdef"  # from the file: a new buffer each time
    finally:
        spool.close()


def test_closing_lets_go_of_the_bytes_and_the_file() -> None:
    spool = _filled(2, [b"abcd"])
    spool.flush()
    file = spool.file
    spool.close()
    assert file is not None and file.closed and spool.head == bytearray()
