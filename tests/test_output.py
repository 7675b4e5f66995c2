"""routes.output: the one JSON writer (what json.dumps would write, byte for byte where the
two agree: compact separators, no ASCII escaping; never a NaN), the response class and
events that use it, answers sent in timed pieces, and files streamed."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message

from app.gate import ClientGone, ComputeGate
from app.routes.output import CHUNK, FILE_READ, JSONResponse, Sender, json_bytes, sse
from app.schemas.responses import ErrorResponse

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    # Long strings: base64-like, and ones that need escaping.
    st.sampled_from(["A" * (1 << 20) + "x", 'é"\\\n' * 300_000]),
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(_JSON)
def test_json_bytes_parse_back_to_the_same_value(content: Any) -> None:
    assert json.loads(json_bytes(content)) == content


def test_non_finite_numbers_are_written_as_null() -> None:
    assert json.loads(json_bytes({"a": [math.nan, math.inf, -math.inf, 1.5]})) == {
        "a": [None, None, None, 1.5]
    }


def test_the_response_class_writes_content_with_json_bytes_and_bytes_as_they_are() -> None:
    assert JSONResponse({"a": math.nan}).body == b'{"a":null}'
    assert JSONResponse(b'{"ready": true}').body == b'{"ready": true}'
    assert JSONResponse(ErrorResponse(detail="d", field=None, code="c")).body == json_bytes(
        {"detail": "d", "field": None, "code": "c"}
    )


def test_an_event_is_its_name_and_its_data_as_one_json_line() -> None:
    event = sse("progress", {"step": 3, "loss": math.inf, "note": "a\nb"})
    assert event == b'event: progress\ndata: {"step":3,"loss":null,"note":"a\\nb"}\n\n'


def _send_through(body: bytes, more: bool, timeout_s: float = 5.0) -> list[Message]:
    """`body` through a Sender to an ASGI send that keeps what it is given."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    gate = ComputeGate(1, 0, 10)
    try:
        ticket = gate.admit()
        sender = Sender(send, ticket, timeout_s)
        anyio.run(sender, {"type": "http.response.body", "body": body, "more_body": more})
        ticket.close()
    finally:
        gate.close()
    return sent


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
@pytest.mark.parametrize("more", [False, True])
def test_answers_go_out_in_pieces_of_at_most_a_chunk(size: int, more: bool) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sent = _send_through(body, more)
    assert b"".join(m["body"] for m in sent) == body
    assert all(len(m["body"]) <= CHUNK for m in sent)
    assert len(sent) == max(1, -(-size // CHUNK))
    # Only the last piece may end the answer, and it ends it only if the message did.
    assert [m["more_body"] for m in sent] == [True] * (len(sent) - 1) + [more]


def test_a_client_that_takes_nothing_is_dropped_and_its_work_told_to_stop() -> None:
    async def send(message: Message) -> None:
        await anyio.sleep_forever()  # a client whose socket buffer is full

    gate = ComputeGate(1, 0, 10)
    try:
        ticket = gate.admit()
        sender = Sender(send, ticket, 0.05)
        with pytest.raises(ClientGone):
            anyio.run(sender, {"type": "http.response.body", "body": b"x" * (3 * CHUNK)})
        assert ticket.token.reason == "client stopped reading"
        with pytest.raises(ClientGone):  # and nothing more goes to it
            anyio.run(sender, {"type": "http.response.body", "body": b"x"})
        ticket.close()
    finally:
        gate.close()


def test_an_npz_answer_is_streamed_from_its_file_with_its_length(client: httpx.Client) -> None:
    body = {"input": {"generator": "gaussian", "height": 64, "width": 64, "channels": 64}}
    r = client.post("/api/v1/compare", params={"format": "npz"}, json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npz"
    # Over a file read's 1 MiB and a chunk's 64 KiB: streamed in pieces, whole at the end.
    assert int(r.headers["content-length"]) == len(r.content) > FILE_READ
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        assert z["input"].shape == z["relu_only"].shape == (64, 64, 64)
