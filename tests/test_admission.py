"""routes.admission in-process: JSON made in pieces is the JSON json.dumps makes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.routes.admission import json_bytes

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    # Long strings, the ones encoded apart: base64-like, and ones that need escaping.
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
def test_json_bytes_are_exactly_what_json_dumps_writes(content: Any) -> None:
    expected = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert json_bytes(content) == expected.encode()
