"""routes.multipart: a received multipart body split into its named parts, strictly."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.errors import InvalidContent, OneByOneError, TooLarge, UnreadableFile
from app.routes.multipart import Part, split
from app.routes.receiving import Body
from app.routes.spool import Spool
from tests.conftest import assert_short_refusal

ALLOWED = {"input", "weights", "spec"}


def encode(parts: list[tuple[str, str | None, bytes]], boundary: bytes = b"x") -> bytes:
    """A multipart/form-data body: (name, filename or None for a text field, bytes) each."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode()
        out += b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def split_bytes(
    raw: bytes, boundary: bytes = b"x", spec_limit: int = 1024, memory: int = 1 << 20
) -> dict[str, tuple[str | None, bytes, bool]]:
    """Each part's filename, bytes, and whether they had gone to a file; every spool closed
    (as routes.pipeline closes them), whatever happens."""
    spool = Spool(memory)
    parts: dict[str, Part] = {}
    try:
        spool.write(raw)
        split(Body("multipart", spool, boundary), parts, ALLOWED, spec_limit)
        return {
            k: (p.filename, bytes(p.data.read()), p.data.file is not None) for k, p in parts.items()
        }
    finally:
        for part in parts.values():
            part.data.close()
        spool.close()


def refusal(raw: bytes, spec_limit: int = 1024) -> OneByOneError:
    with pytest.raises(OneByOneError) as err:
        split_bytes(raw, spec_limit=spec_limit)
    return err.value


def test_parts_come_out_by_name_with_their_filename_and_bytes() -> None:
    raw = encode([("input", "x.npy", b"\x93NUMPY\r\n--y"), ("spec", None, b'{"a": 1}')])
    assert split_bytes(raw) == {
        "input": ("x.npy", b"\x93NUMPY\r\n--y", False),
        "spec": (None, b'{"a": 1}', False),
    }


def test_a_large_part_waits_in_a_file_and_comes_back_whole() -> None:
    data = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit, over a part's 1 MiB in RAM
    assert split_bytes(encode([("input", "big.npy", data)])) == {"input": ("big.npy", data, True)}


@pytest.mark.parametrize(
    ("raw", "error", "code", "field", "words"),
    [
        (
            b'--x\r\nContent-Disposition: form-data; filename="a"\r\n\r\n1\r\n--x--\r\n',
            UnreadableFile,
            "bad_multipart",
            None,
            "has no name",
        ),
        (
            encode([("target", "t.npy", b"1")]),
            InvalidContent,
            "unknown_part",
            "target",
            "input, spec, weights",
        ),
        (encode([("a b", "t.npy", b"1")]), InvalidContent, "unknown_part", None, "'a b'"),
        (
            encode([("w" * 41, None, b"1")]),
            InvalidContent,
            "unknown_part",
            None,
            "Unknown multipart part",
        ),
        (
            encode([("input", "a.npy", b"1"), ("input", "b.npy", b"2")]),
            InvalidContent,
            "repeated_part",
            "input",
            "more than once",
        ),
        (encode([("spec", None, b" " * 1025)]), TooLarge, "too_large", "spec", "over 1024 bytes"),
        (encode([("input", "a", b"1")])[:-4], UnreadableFile, "bad_multipart", None, "cut short"),
        (
            b"--x\r\nContent-Disposition: form-data\r\n",
            UnreadableFile,
            "bad_multipart",
            None,
            "cut short",
        ),
        (b"not a multipart body at all", UnreadableFile, "bad_multipart", None, "malformed"),
    ],
)
def test_refusals_name_their_code_and_field(
    raw: bytes, error: type[Exception], code: str, field: str | None, words: str
) -> None:
    err = refusal(raw)
    assert type(err) is error, err
    assert (err.code, err.field) == (code, field)
    assert words in err.detail, err.detail


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Long: " + b"a" * (1 << 20),  # one header value of 1 MiB
        b"".join(b"X-%d: v\r\n" % i for i in range(10_000)).rstrip(),  # ten thousand headers
    ],
    ids=["long", "many"],
)
def test_a_parts_headers_are_bounded(headers: bytes) -> None:
    """Our callbacks gather a part's headers: python-multipart (from 0.0.27, CVE-2026-42561;
    our floor is 0.0.31) bounds each and how many, so a part cannot make the split copy
    megabytes again and again."""
    raw = (
        b'--x\r\nContent-Disposition: form-data; name="input"; filename="a"\r\n'
        + headers
        + b"\r\n\r\ndata\r\n--x--\r\n"
    )
    err = refusal(raw)
    assert isinstance(err, UnreadableFile) and err.code == "bad_multipart", err
    assert "header" in err.detail


def test_a_spec_at_its_limit_is_taken() -> None:
    assert split_bytes(encode([("spec", None, b" " * 1024)]))["spec"][1] == b" " * 1024


def test_an_epilogue_after_the_closing_boundary_is_ignored() -> None:
    raw = encode([("input", "a.npy", b"abc")]) + b"This is the epilogue.\r\n"
    assert split_bytes(raw)["input"][:2] == ("a.npy", b"abc")


_NAMES = st.sampled_from(sorted(ALLOWED))


@settings(max_examples=150, deadline=None)
@given(
    parts=st.dictionaries(
        _NAMES,
        st.tuples(st.one_of(st.none(), st.sampled_from(["a.npy", "é.pt", "x y"])), st.binary()),
        min_size=1,
    ),
    boundary=st.text("abcdefghijklmnopqrstuvwxyz0123456789'()+_,-./:=?", min_size=1, max_size=70),
    memory=st.integers(0, 64),
)
def test_any_parts_split_back_into_themselves(
    parts: dict[str, tuple[str | None, bytes]], boundary: str, memory: int
) -> None:
    """Whatever the bytes (CRLFs, dashes, anything but the boundary), and wherever the body
    is split between RAM and disk."""
    b = boundary.encode()
    raw = encode([(name, f, data) for name, (f, data) in parts.items()], b)
    assume(not any(b"\r\n--" + b in data for _, data in parts.values()))  # a delimiter
    got = split_bytes(raw, b, spec_limit=1 << 20, memory=memory)
    assert {k: (f, data) for k, (f, data, _) in got.items()} == parts


def test_errors_quote_at_most_a_short_excerpt(client: httpx.Client) -> None:
    # Issue 9, finding 8: a part name of 64 KiB is not echoed whole.
    assert_short_refusal(client.post("/api/v1/compare", files={"a" * (1 << 16): ("x.npy", b"x")}))
