"""app.protocol.HeadDeadline, on a real `onebyone serve`: the deadline is on a socket's
request heads, so only a socket can show it (the CLI passes the protocol its setting)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.sockets import answers, closed_after, host_port, raw_request, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def head_deadline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    env = {"ONEBYONE_HEADER_TIMEOUT_S": "2"}
    with serve(env, tmp_path_factory.mktemp("head")) as server:
        yield server


def test_connections_that_send_no_whole_request_head_are_closed(
    head_deadline: tuple[str, int],
) -> None:
    """uvicorn alone keeps a silent socket, or one dribbling its head, open for ever."""
    url, _ = head_deadline
    silent = [socket.create_connection(host_port(url)) for _ in range(20)]
    dribbling = socket.create_connection(host_port(url))
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    t0 = time.monotonic()
    for i, byte in enumerate(head):
        if time.monotonic() - t0 > 4:
            break
        with contextlib.suppress(OSError):
            dribbling.sendall(bytes([byte]))
        time.sleep(0.2 if i else 0)
    closed = closed_after(dribbling, 3)
    assert closed is not None, "a head dribbled for 4 s kept its connection"
    for s in silent:
        assert closed_after(s, 3) is not None, "a silent connection was kept"
        s.close()
    dribbling.close()


def test_the_head_deadline_never_cuts_a_kept_alive_client_a_slow_body_or_pipelining(
    head_deadline: tuple[str, int],
) -> None:
    """With a 2 s deadline, on one socket: requests 1.5 s apart, a body sent over 3.5 s,
    and two pipelined requests are all answered on that same socket."""
    url, _ = head_deadline
    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    body = b'{"input": {"generator": "catdog"}}' + b" " * 96_000  # JSON may end in spaces
    with socket.create_connection(host_port(url)) as sock:
        for _ in range(3):  # each head within the deadline of the last answer's end
            sock.sendall(get)
            assert answers(sock, 1) == [200]
            time.sleep(1.5)
        # A body of 96 KB sent over 3.5 s (about 27 KB/s, over the minimum rate): its head
        # came on time, so the deadline leaves it alone however long the body takes.
        sock.sendall(raw_request("/api/v1/compare?heatmaps=false", b"", declared=len(body)))
        for i in range(0, len(body), len(body) // 7 + 1):
            sock.sendall(body[i : i + len(body) // 7 + 1])
            time.sleep(0.5)
        assert answers(sock, 1) == [200]
        sock.sendall(get + get)  # pipelined
        assert answers(sock, 2) == [200, 200]
        # And then, silent past the deadline, the same socket is closed.
        assert closed_after(sock, 3) is not None  # uvicorn alone: 5 s (keep-alive)
